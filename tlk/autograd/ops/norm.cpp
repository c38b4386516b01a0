#include "tlk/autograd/ops/norm.h"

#include "tlk/autograd/grad_mode.h"
#include "tlk/autograd/ops/op_support.h"
#include "tlk/kernels/ref/norm.h"

namespace tlk::ops {

namespace {
// Keeps the gradients the node's inputs need (weight and bias only when they were given).
Grads select(k::NormGrads grads, const Node& self) {
  Grads out(3);
  if (self.needs_input_grad(0)) out[0] = std::move(grads.input);
  if (self.needs_input_grad(1)) out[1] = std::move(grads.weight);
  if (self.needs_input_grad(2)) out[2] = std::move(grads.bias);
  return out;
}
}  // namespace

Tensor instance_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  k::NormForward f = k::instance_norm_forward(x, weight, bias, eps);
  attach("instance_norm", {x, weight, bias}, {f.output},
         [xs = SavedTensor(x, "instance_norm"), ws = SavedTensor(weight, "instance_norm"),
          ms = SavedTensor(f.mean, "instance_norm"),
          rs = SavedTensor(f.inv_std, "instance_norm")](const Grads& g, const Node& self) {
           return select(k::instance_norm_backward(g[0], xs.unpack(), ws.unpack(), ms.unpack(), rs.unpack()), self);
         });
  return f.output;
}

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, const BatchNormOptions& opt) {
  for (const auto& [t, what] : {std::pair{&running_mean, "running_mean"}, std::pair{&running_var, "running_var"}})
    check(!t->defined() || !t->requires_grad(), "batch_norm: {} is a buffer and must not require grad", what);
  k::NormForward f;
  {
    // The running statistics are updated outside the graph (Note [Running statistics]).
    NoGradGuard guard;
    f = k::batch_norm_forward(x, weight, bias, running_mean, running_var, opt);
  }
  attach("batch_norm", {x, weight, bias}, {f.output},
         [xs = SavedTensor(x, "batch_norm"), ws = SavedTensor(weight, "batch_norm"),
          ms = SavedTensor(f.mean, "batch_norm"), rs = SavedTensor(f.inv_std, "batch_norm"),
          training = opt.training](const Grads& g, const Node& self) {
           return select(k::batch_norm_backward(g[0], xs.unpack(), ws.unpack(), ms.unpack(), rs.unpack(), training),
                         self);
         });
  return f.output;
}

}  // namespace tlk::ops
