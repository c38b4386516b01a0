#include "tlk/autograd/ops/reduce.h"

#include "tlk/autograd/ops/op_support.h"
#include "tlk/kernels/ref/elementwise.h"

namespace tlk::ops {

namespace {
// The reduced tensor's shape with the reduced axes kept as 1, so a gradient broadcasts back.
Shape kept_shape(const Shape& in, const std::vector<int>& axes, const char* op) {
  Shape kept = in;
  if (axes.empty())
    for (int i = 0; i < kept.size(); ++i) kept[i] = 1;
  for (int a : axes) kept[normalize_axis(a, in.size(), op)] = 1;
  return kept;
}

// The gradient of a reduction, broadcast back to the input's shape.
Tensor expand_gradient(const Tensor& g, const Shape& kept, const Shape& in) {
  Tensor gk = g.contiguous();
  return k::expand_to(make_view(gk, kept, contiguous_strides(kept), gk.offset()), in);
}
}  // namespace

Tensor sum(const Tensor& x, const std::vector<int>& axes, bool keepdim) {
  const Shape kept = kept_shape(x.shape(), axes, "sum");
  Tensor y = k::sum(x, axes, keepdim);
  attach("sum", {x}, {y},
         [in = x.shape(), kept](const Grads& g, const Node&) { return Grads{expand_gradient(g[0], kept, in)}; });
  return y;
}

Tensor mean(const Tensor& x, const std::vector<int>& axes, bool keepdim) {
  const Shape kept = kept_shape(x.shape(), axes, "mean");
  const double count = kept.numel() == 0 ? 0.0 : static_cast<double>(x.numel()) / static_cast<double>(kept.numel());
  check(count > 0, "mean: reducing an empty tensor of shape {}", x.shape().str());
  Tensor y = k::binary_scalar(k::sum(x, axes, keepdim), 1.0 / count, k::BinaryOp::mul);
  attach("mean", {x}, {y}, [in = x.shape(), kept, count](const Grads& g, const Node&) {
    return Grads{k::binary_scalar(expand_gradient(g[0], kept, in), 1.0 / count, k::BinaryOp::mul)};
  });
  return y;
}

}  // namespace tlk::ops
