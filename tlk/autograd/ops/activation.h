#pragma once
#include "tlk/tensor/tensor.h"

/// Differentiable activations.
namespace tlk::ops {

Tensor relu(const Tensor& x);
/// max(x, 0) + negative_slope * min(x, 0); nnUNet uses 0.01.
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);

}  // namespace tlk::ops
