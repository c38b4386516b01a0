// The autograd members of tlk::Tensor (Note [Tensor and autograd] in tensor/tensor.h).
#include "tlk/autograd/engine.h"
#include "tlk/autograd/function.h"
#include "tlk/autograd/grad_mode.h"
#include "tlk/autograd/node.h"
#include "tlk/tensor/error.h"
#include "tlk/tensor/tensor.h"

namespace tlk {

using autograd::AutogradMeta;

namespace {
AutogradMeta& meta_of(const Tensor& t) {
  auto& impl = t.impl();
  if (!impl.autograd) impl.autograd = std::make_shared<AutogradMeta>();
  return *impl.autograd;
}
}  // namespace

bool Tensor::requires_grad() const {
  const auto& meta = impl().autograd;
  return meta && (meta->requires_grad || meta->grad_fn);
}

Tensor& Tensor::set_requires_grad(bool value) {
  check(is_leaf(), "set_requires_grad: only leaf tensors can be marked; this tensor of shape {} was made by {}",
        shape().str(), grad_fn() ? grad_fn()->name() : "an op");
  check(!value || is_floating(dtype()), "set_requires_grad: only floating-point tensors can require grad, got {}",
        dtype_name(dtype()));
  meta_of(*this).requires_grad = value;
  return *this;
}

Tensor Tensor::grad() const { return impl().autograd ? impl().autograd->grad : Tensor(); }

void Tensor::set_grad(const Tensor& grad) const {
  check(!grad.defined() || grad.shape() == shape(), "set_grad: gradient shape {} does not match tensor shape {}",
        grad.defined() ? grad.shape().str() : "", shape().str());
  meta_of(*this).grad = grad;
}

std::shared_ptr<autograd::Node> Tensor::grad_fn() const { return impl().autograd ? impl().autograd->grad_fn : nullptr; }

bool Tensor::is_leaf() const { return grad_fn() == nullptr; }

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  autograd::backward({*this}, {gradient}, retain_graph);
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>(this->impl());
  impl->autograd.reset();
  return Tensor(impl);
}

void Tensor::register_hook(GradHook hook) const {
  check(requires_grad(), "register_hook: tensor of shape {} does not require grad", shape().str());
  auto& meta = meta_of(*this);
  if (meta.grad_fn)
    meta.grad_fn->pre_hooks()[meta.output_nr].push_back(std::move(hook));
  else
    meta.leaf_hooks.push_back(std::move(hook));
}

void Tensor::register_post_accumulate_grad_hook(PostAccumulateHook hook) const {
  check(requires_grad() && is_leaf(), "register_post_accumulate_grad_hook: tensor of shape {} is not a leaf that "
        "requires grad", shape().str());
  meta_of(*this).post_accumulate_hooks.push_back(std::move(hook));
}

void Tensor::retain_grad() const {
  if (is_leaf()) return;
  auto& meta = meta_of(*this);
  if (meta.retains_grad) return;
  meta.retains_grad = true;
  // A weak reference: the hook lives in this tensor's own grad_fn, so a strong one would be a cycle.
  std::weak_ptr<TensorImpl> weak = impl_ptr();
  register_hook([weak](const Tensor& g) {
    if (auto impl = weak.lock()) {
      auto& meta = *impl->autograd;
      meta.grad = autograd::accumulate_gradient(meta.grad, g, true);
    }
    return Tensor();
  });
}

namespace detail {
void check_inplace_allowed(const Tensor& t, const char* op) {
  if (!autograd::GradMode::is_enabled() || !t.requires_grad()) return;
  if (t.is_leaf())
    fail(
        "{}: a leaf tensor of shape {} that requires grad cannot be modified in place while gradients are recorded; "
        "do it under NoGradGuard",
        op, t.shape().str());
  fail(
      "{}: the tensor of shape {} made by {} is part of a recorded graph, and in-place writes are not recorded; "
      "use an out-of-place op, or detach() it first",
      op, t.shape().str(), t.grad_fn()->name());
}

void record_conversion(const Tensor& src, const Tensor& out, const char* op) {
  autograd::attach(op, {src}, {out},
                   [dtype = src.dtype(), device = src.device()](const std::vector<Tensor>& g, const autograd::Node&) {
                     return std::vector<Tensor>{g[0].to(Layout::plain).to(dtype).to(device)};
                   });
}
}  // namespace detail

}  // namespace tlk
