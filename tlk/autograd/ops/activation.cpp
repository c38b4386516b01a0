#include "tlk/autograd/ops/activation.h"

#include "tlk/autograd/ops/unary.h"

namespace tlk::ops {

using kernels::ref::UnaryOp;

Tensor relu(const Tensor& x) { return detail::unary(x, UnaryOp::relu); }
Tensor leaky_relu(const Tensor& x, double negative_slope) {
  return detail::unary(x, UnaryOp::leaky_relu, negative_slope);
}
Tensor sigmoid(const Tensor& x) { return detail::unary(x, UnaryOp::sigmoid); }
Tensor tanh(const Tensor& x) { return detail::unary(x, UnaryOp::tanh); }

}  // namespace tlk::ops
