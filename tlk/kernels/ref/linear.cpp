#include "tlk/kernels/ref/linear.h"

#include <vector>

#include "tlk/kernels/ref/common.h"

namespace tlk::kernels::ref {

namespace {

// [..., k] as a [rows, k] view of its contiguous data.
Tensor as_matrix(const Tensor& t, const char* op, const char* what) {
  Tensor c = cpu_contiguous(t, op, what);
  check(c.dim() >= 1, "{}: {} must have at least one dimension, got a 0-D tensor", op, what);
  const std::int64_t cols = c.shape()[c.dim() - 1];
  const Shape shape{cols == 0 ? 0 : c.numel() / cols, cols};
  return make_view(c, shape, contiguous_strides(shape), c.offset());
}

// The transpose of a 2-D tensor, as a view.
Tensor transposed(const Tensor& m) {
  return make_view(m, Shape{m.shape()[1], m.shape()[0]}, Dims{m.strides()[1], m.strides()[0]}, m.offset());
}

// Shape `like` with its last extent replaced by `last`.
Shape with_last(Shape like, std::int64_t last) {
  like[like.size() - 1] = last;
  return like;
}

// out[i, j] = Σ_k a[i, k] b[k, j] (+ bias[j]), reading both operands through their strides.
Tensor matmul_impl(const Tensor& a_in, const Tensor& b_in, const Tensor& bias_in, const char* op) {
  Tensor a = cpu_input(a_in, op, "left operand"), b = cpu_input(b_in, op, "right operand");
  check(a.dim() == 2 && b.dim() == 2, "{}: expected 2-D operands, got {} and {}", op, a.shape().str(), b.shape().str());
  check(a.shape()[1] == b.shape()[0], "{}: inner extents differ ({} · {}; expected [M, K] · [K, N])", op,
        a.shape().str(), b.shape().str());
  Tensor bias = bias_in.defined() ? cpu_contiguous(bias_in, op, "bias") : Tensor();
  check_same_dtype(op, {&a, &b, &bias});
  const std::int64_t m = a.shape()[0], kk = a.shape()[1], n = b.shape()[1];
  Tensor out = Tensor::empty(Shape{m, n}, TensorOptions{a.dtype()});
  visit_floating(a.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *pa = a.data<T>(), *pb = b.data<T>(), *pbias = bias.defined() ? bias.data<T>() : nullptr;
    const std::int64_t sa0 = a.strides()[0], sa1 = a.strides()[1], sb0 = b.strides()[0], sb1 = b.strides()[1];
    T* po = out.data<T>();
#pragma omp parallel for collapse(2) if (m * n * kk > 32768)
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        double acc = pbias ? static_cast<double>(pbias[j]) : 0.0;
        for (std::int64_t p = 0; p < kk; ++p) acc += static_cast<double>(pa[i * sa0 + p * sa1]) * pb[p * sb0 + j * sb1];
        po[i * n + j] = static_cast<T>(acc);
      }
  });
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) { return matmul_impl(a, b, Tensor(), "matmul"); }

Tensor linear_forward(const Tensor& input, const Tensor& weight, const Tensor& bias) {
  const char* op = "linear";
  check(input.defined() && weight.defined(), "linear: input and weight must be defined");
  check(input.dim() >= 1, "linear: expected an input [N, in] or [..., in], got a 0-D tensor");
  check(weight.dim() == 2, "linear: expected a 2-D weight [out, in], got {}-D with shape {}", weight.dim(),
        weight.shape().str());
  const std::int64_t in = input.shape()[input.dim() - 1], out = weight.shape()[0];
  check(weight.shape()[1] == in, "linear: input has {} features but weight expects {} (input {}, weight {})", in,
        weight.shape()[1], input.shape().str(), weight.shape().str());
  check(!bias.defined() || bias.shape() == Shape{out}, "linear: bias has shape {}, expected [{}] (weight {})",
        bias.defined() ? bias.shape().str() : "", out, weight.shape().str());
  check_same_dtype(op, {&input, &weight, &bias});
  Tensor w = cpu_input(weight, op, "weight");
  Tensor y = matmul_impl(as_matrix(input, op, "input"), transposed(w), bias, op);
  const Shape shape = with_last(input.shape(), out);
  return make_view(y, shape, contiguous_strides(shape), 0);
}

Tensor linear_backward_input(const Tensor& grad_output, const Tensor& weight) {
  const char* op = "linear backward input";
  check(grad_output.defined() && weight.defined(), "{}: grad_output and weight must be defined", op);
  check_same_dtype(op, {&grad_output, &weight});
  check(weight.dim() == 2 && grad_output.dim() >= 1 && grad_output.shape()[grad_output.dim() - 1] == weight.shape()[0],
        "{}: grad_output has shape {} and weight {}, expected grad_output [..., out] and weight [out, in]", op,
        grad_output.shape().str(), weight.shape().str());
  Tensor g = as_matrix(grad_output, op, "grad_output");
  Tensor dx = matmul_impl(g, cpu_input(weight, op, "weight"), Tensor(), op);
  const Shape shape = with_last(grad_output.shape(), weight.shape()[1]);
  return make_view(dx, shape, contiguous_strides(shape), 0);
}

Tensor linear_backward_weights(const Tensor& grad_output, const Tensor& input) {
  const char* op = "linear backward weights";
  check(grad_output.defined() && input.defined(), "{}: grad_output and input must be defined", op);
  check_same_dtype(op, {&grad_output, &input});
  const int nd = grad_output.dim();
  bool leading_match = nd >= 1 && input.dim() == nd;
  for (int i = 0; leading_match && i + 1 < nd; ++i) leading_match = grad_output.shape()[i] == input.shape()[i];
  check(leading_match,
        "{}: grad_output has shape {} and input {}, expected [..., out] and [..., in] with the same "
        "leading axes",
        op, grad_output.shape().str(), input.shape().str());
  return matmul_impl(transposed(as_matrix(grad_output, op, "grad_output")), as_matrix(input, op, "input"), Tensor(),
                     op);
}

Tensor linear_backward_bias(const Tensor& grad_output) {
  const char* op = "linear backward bias";
  Tensor g = as_matrix(grad_output, op, "grad_output");
  const std::int64_t rows = g.shape()[0], cols = g.shape()[1];
  Tensor out = Tensor::empty(Shape{cols}, TensorOptions{g.dtype()});
  visit_floating(g.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pg = g.data<T>();
    T* po = out.data<T>();
    for (std::int64_t j = 0; j < cols; ++j) {
      double acc = 0.0;
      for (std::int64_t i = 0; i < rows; ++i) acc += static_cast<double>(pg[i * cols + j]);
      po[j] = static_cast<T>(acc);
    }
  });
  return out;
}

}  // namespace tlk::kernels::ref
