#pragma once
#include "tlk/tensor/random.h"
#include "tlk/tensor/tensor.h"

/// Reference element-wise dropout with a mask drawn from the caller's generator.
namespace tlk::kernels::ref {

/// A dropout's output and the mask its backward multiplies by.
struct DropoutForward {
  Tensor output;
  Tensor mask;  ///< shaped like the input, in its dtype: 0 where dropped, 1 / (1 - p) where kept
};

/// Checks that the drop probability p is in [0, 1] (the one check behind dropout's p errors).
void check_dropout_probability(double p);

/// Drops each element with probability p in [0, 1) and scales the rest by 1 / (1 - p); p == 1 gives
/// zeros without drawing. The mask draws one uniform number per element in row-major order, so the
/// same generator state gives the same mask on any machine.
DropoutForward dropout_forward(const Tensor& input, double p, Generator& gen);
/// grad * mask.
Tensor dropout_backward(const Tensor& grad_output, const Tensor& mask);

}  // namespace tlk::kernels::ref
