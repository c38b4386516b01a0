#include "tlk/kernels/cuda/linear.h"

#include <algorithm>
#include <cstdint>

#include "tlk/kernels/cuda/cudnn_context.h"
#include "tlk/kernels/cuda/launch.h"

namespace tlk::kernels::cuda {

namespace {

// Note [Row-major products on cuBLAS]: cuBLAS is column-major, and the column-major reading of a
// row-major [r, c] buffer with leading dimension s0 is its transpose [c, r]. So TLK's C = A · B (all
// row-major) is computed as Cᵀ = Bᵀ · Aᵀ in cuBLAS's terms, with C's buffer as a column-major [N, M]
// matrix. A transposed view (strides (1, s1)) is already column-major: cuBLAS reads it with op T.
struct GemmOperand {
  Tensor t;                  // the data cuBLAS reads
  cublasOperation_t to_rowmajor_transpose;  // the op that gives this operand's transpose (see the Note)
  std::int64_t ld;           // leading dimension of the buffer, in elements
};

GemmOperand gemm_operand(const Tensor& m, const char* op) {
  const std::int64_t r = m.size(0), c = m.size(1), s0 = m.strides()[0], s1 = m.strides()[1];
  if ((c == 1 || s1 == 1) && (r == 1 || s0 >= c)) return {m, CUBLAS_OP_N, r == 1 ? std::max<std::int64_t>(c, 1) : s0};
  if ((r == 1 || s0 == 1) && (c == 1 || s1 >= r)) return {m, CUBLAS_OP_T, c == 1 ? std::max<std::int64_t>(r, 1) : s1};
  return {dense_as(m, Layout::plain, op), CUBLAS_OP_N, std::max<std::int64_t>(c, 1)};
}

// A · B for 2-D operands on one GPU (checked by the caller), into a new plain [M, N] tensor.
Tensor gemm(const Tensor& a, const Tensor& b, const char* op) {
  const std::int64_t m = a.size(0), k = a.size(1), n = b.size(1);
  Tensor c = empty_like_shape(a, Shape{m, n});
  if (c.numel() == 0) return c;
  if (k == 0) return c.zero_();
  const GemmOperand ga = gemm_operand(a, op), gb = gemm_operand(b, op);
  const DType dtype = a.dtype();
  const cudaDataType type = dtype == DType::f64 ? CUDA_R_64F : CUDA_R_32F;
  const Scale one = scale(1.0), zero = scale(0.0);
  check_cublas(cublasGemmEx_64(cublas_handle(a.device().index), gb.to_rowmajor_transpose, ga.to_rowmajor_transpose,
                               n, m, k, one.of(dtype), gb.t.raw_data(), type, gb.ld, ga.t.raw_data(), type, ga.ld,
                               zero.of(dtype), c.raw_data(), type, n, gemm_compute_type(dtype), CUBLAS_GEMM_DEFAULT),
               op, "cublasGemmEx");
  return c;
}

// [..., k] as a plain [rows, k] matrix (a view of a plain tensor, else of a plain copy); 2-D operands
// stay as they are (gemm reads strided matrices).
Tensor as_matrix(const Tensor& t, const char* op, const char* what) {
  check(t.dim() >= 1, "{}: {} must have at least one dimension, got a 0-D tensor", op, what);
  if (t.dim() == 2) return t.detach();
  const Tensor c = dense_as(t, Layout::plain, op);
  const std::int64_t cols = c.shape()[c.dim() - 1];
  const Shape shape{cols == 0 ? 0 : c.numel() / cols, cols};
  return make_view(c, shape, contiguous_strides(shape), c.offset());
}

// A plain matrix as a plain tensor of `shape` (the same elements).
Tensor reshaped(const Tensor& m, const Shape& shape) { return make_view(m, shape, contiguous_strides(shape), m.offset()); }

Tensor transposed(const Tensor& m) {
  return make_view(m, Shape{m.shape()[1], m.shape()[0]}, Dims{m.strides()[1], m.strides()[0]}, m.offset());
}

Shape with_last(Shape like, std::int64_t last) {
  like[like.size() - 1] = last;
  return like;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  const char* op = "matmul";
  require_cuda_float(a, op, "left operand");
  require_same(b, a, op, "right operand");
  check(a.dim() == 2 && b.dim() == 2, "{}: expected 2-D operands, got {} and {}", op, a.shape().str(), b.shape().str());
  check(a.shape()[1] == b.shape()[0], "{}: inner extents differ ({} · {}; expected [M, K] · [K, N])", op,
        a.shape().str(), b.shape().str());
  return gemm(a.detach(), b.detach(), op);
}

Tensor linear_forward(const Tensor& input, const Tensor& weight, const Tensor& bias) {
  const char* op = "linear";
  check(input.defined() && weight.defined(), "linear: input and weight must be defined");
  require_cuda_float(input, op, "input");
  require_same(weight, input, op, "weight");
  if (bias.defined()) require_same(bias, input, op, "bias");
  check(input.dim() >= 1, "linear: expected an input [N, in] or [..., in], got a 0-D tensor");
  check(weight.dim() == 2, "linear: expected a 2-D weight [out, in], got {}-D with shape {}", weight.dim(),
        weight.shape().str());
  const std::int64_t in = input.shape()[input.dim() - 1], out = weight.shape()[0];
  check(weight.shape()[1] == in, "linear: input has {} features but weight expects {} (input {}, weight {})", in,
        weight.shape()[1], input.shape().str(), weight.shape().str());
  check(!bias.defined() || bias.shape() == Shape{out}, "linear: bias has shape {}, expected [{}] (weight {})",
        bias.defined() ? bias.shape().str() : "", out, weight.shape().str());
  Tensor y = gemm(as_matrix(input, op, "input"), transposed(weight.detach()), op);
  if (bias.defined()) add_channel_bias(y, bias, op);
  return reshaped(y, with_last(input.shape(), out));
}

Tensor linear_backward_input(const Tensor& grad_output, const Tensor& weight) {
  const char* op = "linear backward input";
  check(grad_output.defined() && weight.defined(), "{}: grad_output and weight must be defined", op);
  require_cuda_float(grad_output, op, "grad_output");
  require_same(weight, grad_output, op, "weight");
  check(weight.dim() == 2 && grad_output.dim() >= 1 && grad_output.shape()[grad_output.dim() - 1] == weight.shape()[0],
        "{}: grad_output has shape {} and weight {}, expected grad_output [..., out] and weight [out, in]", op,
        grad_output.shape().str(), weight.shape().str());
  Tensor dx = gemm(as_matrix(grad_output, op, "grad_output"), weight.detach(), op);
  return reshaped(dx, with_last(grad_output.shape(), weight.shape()[1]));
}

Tensor linear_backward_weights(const Tensor& grad_output, const Tensor& input) {
  const char* op = "linear backward weights";
  check(grad_output.defined() && input.defined(), "{}: grad_output and input must be defined", op);
  require_cuda_float(grad_output, op, "grad_output");
  require_same(input, grad_output, op, "input");
  const int nd = grad_output.dim();
  bool leading_match = nd >= 1 && input.dim() == nd;
  for (int i = 0; leading_match && i + 1 < nd; ++i) leading_match = grad_output.shape()[i] == input.shape()[i];
  check(leading_match,
        "{}: grad_output has shape {} and input {}, expected [..., out] and [..., in] with the same leading axes", op,
        grad_output.shape().str(), input.shape().str());
  return gemm(transposed(as_matrix(grad_output, op, "grad_output")), as_matrix(input, op, "input"), op);
}

Tensor linear_backward_bias(const Tensor& grad_output) {
  const char* op = "linear backward bias";
  check(grad_output.defined(), "{}: grad_output must be defined", op);
  require_cuda_float(grad_output, op, "grad_output");
  const Tensor g = as_matrix(grad_output, op, "grad_output");
  return channel_sum(g, op);
}

}  // namespace tlk::kernels::cuda
