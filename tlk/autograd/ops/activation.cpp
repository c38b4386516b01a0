#include "tlk/autograd/ops/activation.h"

#include "tlk/autograd/ops/op_support.h"
#include "tlk/autograd/ops/unary.h"
#include "tlk/kernels/cpu/eltwise.h"

namespace tlk::ops {

using kernels::ref::UnaryOp;

namespace {

// Note [Rectifier dispatch]: f32 on the CPU takes the fast path (kernels/cpu/eltwise: the raw buffer in
// the input's own layout, blocked included, so no reorder between a convolution and the next); others
// (f64, the gradcheck oracle) take the shared reference unary. The fast path saves the output when
// negative_slope >= 0 (Note [Rectifier backward from the output] in kernels/cpu/eltwise.cpp), else the input.
Tensor rectifier(const Tensor& x, UnaryOp op, double negative_slope) {
  namespace cpu = kernels::cpu;
  if (!cpu::eltwise_supported(x)) return detail::unary(x, op, negative_slope);
  const char* name = kernels::ref::op_name(op);
  Tensor y = cpu::leaky_relu_forward(x, negative_slope);
  attach(name, {x}, {y},
         [saved = SavedTensor(negative_slope >= 0.0 ? y : x, name), negative_slope](const Grads& g, const Node&) {
           return Grads{cpu::leaky_relu_backward(g[0], saved.unpack(), negative_slope)};
         });
  return y;
}

}  // namespace

Tensor relu(const Tensor& x) { return rectifier(x, UnaryOp::relu, 0.0); }
Tensor leaky_relu(const Tensor& x, double negative_slope) { return rectifier(x, UnaryOp::leaky_relu, negative_slope); }
Tensor sigmoid(const Tensor& x) { return detail::unary(x, UnaryOp::sigmoid); }
Tensor tanh(const Tensor& x) { return detail::unary(x, UnaryOp::tanh); }

}  // namespace tlk::ops
