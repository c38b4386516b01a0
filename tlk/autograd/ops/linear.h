#pragma once
#include "tlk/tensor/tensor.h"

namespace tlk::ops {

/// Differentiable fully connected layer, as PyTorch's linear: y = x · weightᵀ + bias.
/// x [N, in] or [..., in] (leading axes are one batch axis), weight [out, in], bias [out] or
/// undefined; y [..., out]. Gradients flow to x, weight and bias.
/// Example: `Tensor logits = ops::linear(features, w, b);  // [N, 512] -> [N, classes]`
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

}  // namespace tlk::ops
