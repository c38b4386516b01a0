#include "tlk/nn/deep_supervision_loss.h"

#include "tlk/autograd/ops/arith.h"
#include "tlk/autograd/ops/losses.h"
#include "tlk/tensor/error.h"

namespace tlk::nn {

Tensor downsample_labels(const Tensor& labels_in, const Shape& size) {
  Tensor labels = labels_in.dim() == 5
                      ? labels_in.reshape({labels_in.size(0), labels_in.size(2), labels_in.size(3), labels_in.size(4)})
                      : labels_in;
  check(labels.dim() == 4 && size.size() == 3,
        "downsample_labels: expected labels [N, D, H, W] and a 3-D size, got {} and {}", labels.shape().str(),
        size.str());
  Shape shape{labels.size(0), size[0], size[1], size[2]};
  Dims strides = labels.strides();
  for (int a = 0; a < 3; ++a) {
    check(size[a] >= 1 && labels.size(1 + a) % size[a] == 0,
          "downsample_labels: label extent {} along axis {} is not a multiple of the output extent {}",
          labels.size(1 + a), a, size[a]);
    strides[1 + a] *= labels.size(1 + a) / size[a];
  }
  if (shape == labels.shape()) return labels;
  return make_view(labels.detach(), shape, strides, labels.offset()).contiguous();
}

Tensor deep_supervision_loss(const std::vector<Tensor>& outputs, const Tensor& labels,
                             const std::vector<double>& weights, bool batch_dice) {
  check(!outputs.empty() && outputs.size() == weights.size(), "deep_supervision_loss: {} outputs but {} weights",
        outputs.size(), weights.size());
  Tensor total;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    if (weights[i] == 0.0) continue;
    const Tensor& logits = outputs[i];
    check(logits.dim() == 5, "deep_supervision_loss: output {} must be [N, C, D, H, W], got {}", i,
          logits.shape().str());
    Tensor target = downsample_labels(labels, Shape{logits.size(2), logits.size(3), logits.size(4)});
    Tensor plain = logits.to(Layout::plain);  // the losses read plain memory: one counted reorder per output
    Tensor term = ops::cross_entropy(plain, target) +
                  ops::soft_dice_loss(plain, target, SoftDiceOptions{}.with_batch_dice(batch_dice));
    term = term * weights[i];
    total = total.defined() ? total + term : term;
  }
  check(total.defined(), "deep_supervision_loss: every weight is zero");
  return total;
}

}  // namespace tlk::nn
