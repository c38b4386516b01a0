#include "tlk/autograd/accumulate_grad.h"

#include "tlk/kernels/ref/elementwise.h"

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
    if (changed.defined()) grad = changed;
  }
  // Out of place, so a gradient someone holds from an earlier backward is never changed under them.
  meta.grad = meta.grad.defined() ? kernels::ref::add(meta.grad, grad) : grad.detach();
  return {};
}

}  // namespace tlk::autograd
