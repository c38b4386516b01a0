#include "tlk/autograd/ops/losses.h"

#include "tlk/autograd/autocast.h"
#include "tlk/autograd/ops/op_support.h"
#include "tlk/kernels/ref/elementwise.h"
#include "tlk/kernels/ref/losses.h"
#include "tlk/kernels/ref/soft_dice.h"

namespace tlk::ops {

// The kernels check every argument (shapes, dtypes, label ranges, options) before computing; the
// ops only wire the backward. Constants (targets, class weights, the teacher) are left out of
// attach's inputs, so no gradient is ever routed to them.

// Note [Autocast]: the losses compute in f32 (or f64); 16-bit logits are widened first.
using autograd::widen_half;

Tensor cross_entropy(const Tensor& logits_in, const Tensor& target, const CrossEntropyOptions& options) {
  const Tensor logits = widen_half(logits_in);
  Tensor loss = k::cross_entropy_forward(logits, target, options);
  const char* name = "cross_entropy";
  attach(name, {logits}, {loss},
         [xs = SavedTensor(logits, name), ts = SavedTensor(target, name), ws = SavedTensor(options.weight, name),
          ignore = options.ignore_index](const Grads& g, const Node&) {
           const auto opt = CrossEntropyOptions{}.with_weight(ws.unpack()).with_ignore_index(ignore);
           return Grads{k::cross_entropy_backward(g[0], xs.unpack(), ts.unpack(), opt)};
         });
  return loss;
}

Tensor soft_dice_loss(const Tensor& logits_in, const Tensor& target, const SoftDiceOptions& options) {
  const Tensor logits = widen_half(logits_in);
  Tensor loss = k::soft_dice_forward(logits, target, options);
  const char* name = "soft_dice_loss";
  attach(name, {logits}, {loss},
         [xs = SavedTensor(logits, name), ts = SavedTensor(target, name), options](const Grads& g, const Node&) {
           return Grads{k::soft_dice_backward(g[0], xs.unpack(), ts.unpack(), options)};
         });
  return loss;
}

Tensor bce_with_logits(const Tensor& logits_in, const Tensor& target_in, const BceOptions& options) {
  const Tensor logits = widen_half(logits_in), target = widen_half(target_in);
  Tensor loss = k::bce_with_logits_forward(logits, target, options);
  const char* name = "bce_with_logits";
  attach(name, {logits, target}, {loss},
         [xs = SavedTensor(logits, name), ys = SavedTensor(target, name), pws = SavedTensor(options.pos_weight, name)](
             const Grads& g, const Node& self) {
           auto grads =
               k::bce_with_logits_backward(g[0], xs.unpack(), ys.unpack(), BceOptions{}.with_pos_weight(pws.unpack()),
                                           self.needs_input_grad(0), self.needs_input_grad(1));
           return Grads{grads[0], grads[1]};
         });
  return loss;
}

Tensor kl_div_with_temperature(const Tensor& student_in, const Tensor& teacher_in, double temperature,
                               const Tensor& weights) {
  const Tensor student_logits = widen_half(student_in), teacher_logits = widen_half(teacher_in);
  Tensor loss = k::kl_div_with_temperature_forward(student_logits, teacher_logits, temperature, weights);
  const char* name = "kl_div_with_temperature";
  attach(name, {student_logits}, {loss},
         [ss = SavedTensor(student_logits, name), ts = SavedTensor(teacher_logits, name), w = weights.defined() ? weights.detach() : Tensor(),
          temperature](const Grads& g, const Node&) {
           return Grads{k::kl_div_with_temperature_backward(g[0], ss.unpack(), ts.unpack(), temperature, w)};
         });
  return loss;
}

Tensor mse_loss(const Tensor& a_in, const Tensor& b_in) {
  const Tensor a = widen_half(a_in), b = widen_half(b_in);
  Tensor loss = k::mse_loss_forward(a, b);
  const char* name = "mse_loss";
  attach(name, {a, b}, {loss},
         [as = SavedTensor(a, name), bs = SavedTensor(b, name)](const Grads& g, const Node& self) {
           Tensor ga = k::mse_loss_backward(g[0], as.unpack(), bs.unpack());
           Grads out(2);
           if (self.needs_input_grad(1)) out[1] = k::unary(ga, k::UnaryOp::neg);
           if (self.needs_input_grad(0)) out[0] = ga;
           return out;
         });
  return loss;
}

}  // namespace tlk::ops
