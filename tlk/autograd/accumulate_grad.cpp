#include "tlk/autograd/accumulate_grad.h"

#include "tlk/autograd/engine.h"
#include "tlk/tensor/error.h"

namespace tlk::autograd {

AccumulateGrad::AccumulateGrad(std::shared_ptr<TensorImpl> leaf) : leaf_(std::move(leaf)) {
  // The single "output" of an accumulator is the leaf itself; record() is not used for it.
  Tensor t(leaf_);
  add_output_meta({t.shape(), t.dtype(), t.device()});
}

std::vector<Tensor> AccumulateGrad::apply(const std::vector<Tensor>& grad_outputs) {
  Tensor grad = grad_outputs.at(0);
  auto& meta = *leaf_->autograd;
  for (auto& hook : meta.leaf_hooks) {
    Tensor changed = hook(grad);
    if (!changed.defined()) continue;
    check(changed.shape() == grad.shape() && changed.dtype() == grad.dtype(),
          "gradient hook on a leaf of shape {}: returned a gradient of shape {} and dtype {}, expected shape {} and "
          "dtype {}",
          grad.shape().str(), changed.shape().str(), dtype_name(changed.dtype()), grad.shape().str(),
          dtype_name(grad.dtype()));
    grad = changed;
  }
  // Note [Gradient ownership]: the first gradient is copied, never aliased: the incoming tensor may be
  // shared with another leaf's gradient or with the caller's backward() argument. Later gradients are
  // added out of place, so a gradient someone holds from an earlier backward never changes under them.
  meta.grad = accumulate_gradient(meta.grad, grad, true);
  // The engine runs each node once per pass with its summed input, so this is the leaf's last
  // gradient of the pass.
  if (!meta.post_accumulate_hooks.empty()) {
    const Tensor leaf(leaf_);
    for (auto& hook : meta.post_accumulate_hooks) hook(leaf);
  }
  return {};
}

}  // namespace tlk::autograd
