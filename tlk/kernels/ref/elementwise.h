#pragma once
#include <vector>

#include "tlk/tensor/tensor.h"

/// Reference elementwise kernels: plain loops over strided CPU tensors, f32 and f64.
namespace tlk::kernels::ref {

enum class BinaryOp { add, sub, mul, div };
enum class UnaryOp { relu, leaky_relu, sigmoid, tanh, exp, log, neg, abs, sqrt, square };

/// "add", "relu", ...: the op's name in messages.
const char* op_name(BinaryOp op);
const char* op_name(UnaryOp op);
/// Whether unary_backward needs the op's input (else its output) to compute the derivative.
bool unary_reads_input(UnaryOp op);

/// `a op b` with NumPy broadcasting; the result is contiguous.
Tensor binary(const Tensor& a, const Tensor& b, BinaryOp op);
/// `a op s`, or `s op a` when `scalar_first`.
Tensor binary_scalar(const Tensor& a, double s, BinaryOp op, bool scalar_first = false);
inline Tensor add(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::add); }
inline Tensor sub(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::sub); }
inline Tensor mul(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::mul); }
inline Tensor div(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::div); }

/// f(x); `alpha` is leaky_relu's negative slope.
Tensor unary(const Tensor& x, UnaryOp op, double alpha = 0.0);
/// grad * f'(x), where f' is computed from the input `x` when unary_reads_input(op), else from the
/// output `y` (neg needs neither).
Tensor unary_backward(const Tensor& grad, const Tensor& x, const Tensor& y, UnaryOp op, double alpha = 0.0);

/// Sums `grad` over the dimensions along which `shape` was broadcast, giving `shape`.
Tensor sum_to(const Tensor& grad, const Shape& shape);
/// The axes sum_to reduces (checking that `grad_shape` is a broadcast of `shape`); the CUDA family
/// uses it too.
std::vector<int> sum_to_axes(const Shape& grad_shape, const Shape& shape);
/// `x` broadcast (copied) to `shape`.
Tensor expand_to(const Tensor& x, const Shape& shape);
/// Sum over `axes` (all when empty), accumulated in double; keeps reduced axes as 1 when `keepdim`.
Tensor sum(const Tensor& x, const std::vector<int>& axes, bool keepdim);
/// Elementwise `cond ? a : b` for a mask `cond` (nonzero = true), all of one shape.
Tensor where(const Tensor& mask, const Tensor& a, const Tensor& b);

}  // namespace tlk::kernels::ref
