#pragma once
#include "tlk/kernels/ref/elementwise.h"
#include "tlk/tensor/tensor.h"

namespace tlk::ops::detail {

/// The differentiable form of a reference unary kernel: saves the input or the output, whichever the
/// derivative reads (kernels::ref::unary_reads_input), and nothing for neg. Shared by arith and activation.
Tensor unary(const Tensor& x, kernels::ref::UnaryOp op, double alpha = 0.0);

}  // namespace tlk::ops::detail
