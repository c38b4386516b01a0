#include "tlk/task/metrics.h"

#include <limits>

#include "tlk/tensor/error.h"

namespace tlk::task {

Tensor argmax_channels(const Tensor& logits_in) {
  check(logits_in.dim() >= 2, "argmax_channels: expected logits [N, C, ...], got shape {}", logits_in.shape().str());
  Tensor logits = logits_in.detach().to(Layout::plain).to(DType::f64).to(Device::cpu()).contiguous();
  const std::int64_t n = logits.size(0), c = logits.size(1), inner = logits.numel() / std::max<std::int64_t>(1, n * c);
  Shape out_shape{n};
  for (int i = 2; i < logits.dim(); ++i) out_shape.push_back(logits.size(i));
  Tensor out = Tensor::empty(out_shape, TensorOptions{DType::i64});
  const double* x = logits.data<double>();
  std::int64_t* o = out.data<std::int64_t>();
#pragma omp parallel for if (n * inner > 65536)
  for (std::int64_t i = 0; i < n * inner; ++i) {
    const std::int64_t b = i / inner, v = i % inner;
    std::int64_t best = 0;
    for (std::int64_t k = 1; k < c; ++k)
      if (x[(b * c + k) * inner + v] > x[(b * c + best) * inner + v]) best = k;
    o[i] = best;
  }
  return out;
}

double dice(const Tensor& prediction, const Tensor& reference, std::int64_t label) {
  return dice_per_label(prediction, reference, {label})[0];
}

std::vector<double> dice_per_label(const Tensor& prediction, const Tensor& reference,
                                   const std::vector<std::int64_t>& labels) {
  check(prediction.shape() == reference.shape(), "dice: prediction shape {} differs from reference shape {}",
        prediction.shape().str(), reference.shape().str());
  const std::vector<double> p = prediction.to_doubles(), r = reference.to_doubles();
  std::vector<double> out;
  for (std::int64_t label : labels) {
    const double l = static_cast<double>(label);
    std::int64_t both = 0, in_p = 0, in_r = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
      in_p += p[i] == l;
      in_r += r[i] == l;
      both += p[i] == l && r[i] == l;
    }
    out.push_back(in_p + in_r == 0 ? std::numeric_limits<double>::quiet_NaN()
                                   : 2.0 * static_cast<double>(both) / static_cast<double>(in_p + in_r));
  }
  return out;
}

}  // namespace tlk::task
