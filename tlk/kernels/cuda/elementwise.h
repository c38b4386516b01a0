#pragma once
#include <vector>

#include "tlk/kernels/ref/elementwise.h"
#include "tlk/tensor/tensor.h"

/// CUDA elementwise kernels: the API of kernels/ref/elementwise.h for f32 and f64 CUDA tensors (same
/// names, signatures and results; sums accumulate in double). Binary, unary and their backward, sums
/// and add_inplace also take bf16 and f16 (computed in float, Note [Half precision on the GPU]). Inputs may be strided views; results are
/// new contiguous tensors on the inputs' GPU.
/// Example: `Tensor y = kernels::cuda::binary(a, b, BinaryOp::mul);  // a, b on cuda:0`
namespace tlk::kernels::cuda {

using kernels::ref::BinaryOp;
using kernels::ref::op_name;
using kernels::ref::unary_reads_input;
using kernels::ref::UnaryOp;

/// `a op b` with NumPy broadcasting (strided inputs are read in place); the result is contiguous.
Tensor binary(const Tensor& a, const Tensor& b, BinaryOp op);
/// `a op s`, or `s op a` when `scalar_first`.
Tensor binary_scalar(const Tensor& a, double s, BinaryOp op, bool scalar_first = false);
// Qualified: BinaryOp lives in kernels::ref, so an unqualified call would also find ref::binary by ADL.
inline Tensor add(const Tensor& a, const Tensor& b) { return cuda::binary(a, b, BinaryOp::add); }
inline Tensor sub(const Tensor& a, const Tensor& b) { return cuda::binary(a, b, BinaryOp::sub); }
inline Tensor mul(const Tensor& a, const Tensor& b) { return cuda::binary(a, b, BinaryOp::mul); }
inline Tensor div(const Tensor& a, const Tensor& b) { return cuda::binary(a, b, BinaryOp::div); }

/// f(x); `alpha` is leaky_relu's negative slope.
Tensor unary(const Tensor& x, UnaryOp op, double alpha = 0.0);
/// grad * f'(x), where f' is computed from the input `x` when unary_reads_input(op), else from the
/// output `y` (neg needs neither; the one not read may be undefined).
Tensor unary_backward(const Tensor& grad, const Tensor& x, const Tensor& y, UnaryOp op, double alpha = 0.0);

/// Sums `grad` over the dimensions along which `shape` was broadcast, giving `shape` (`grad` itself
/// when the shapes already agree, as ref does).
Tensor sum_to(const Tensor& grad, const Shape& shape);
/// `x` broadcast (copied) to `shape`.
Tensor expand_to(const Tensor& x, const Shape& shape);
/// Sum over `axes` (all when empty), accumulated in double (Note [Parallel sum] in
/// elementwise_launch.cu); keeps reduced axes as 1 when `keepdim`.
Tensor sum(const Tensor& x, const std::vector<int>& axes, bool keepdim);
/// out += b in place, `b` broadcast to out's shape (same dtype and GPU; `out` contiguous). For the
/// bias of a convolution, whose output is fresh. Example: `add_inplace(y, bias.reshape({1, C, 1, 1, 1}));`
void add_inplace(const Tensor& out, const Tensor& b);
/// Elementwise `cond ? a : b` for a mask `cond` (nonzero = true; any dtype) on a's GPU, all of one shape.
Tensor where(const Tensor& mask, const Tensor& a, const Tensor& b);

}  // namespace tlk::kernels::cuda
