#pragma once
#include "tlk/tensor/tensor.h"

/// Reference matrix product and fully connected layer: plain loops accumulated in double.
/// Shapes: x [..., in] (all leading axes are treated as one batch axis), weight [out, in] (PyTorch's
/// layout), bias [out] or undefined.
namespace tlk::kernels::ref {

/// a [M, K] · b [K, N] -> [M, N]; either operand may be a strided view (a transpose, say).
Tensor matmul(const Tensor& a, const Tensor& b);

/// x · weightᵀ + bias, of shape [..., out].
Tensor linear_forward(const Tensor& input, const Tensor& weight, const Tensor& bias);
/// grad [..., out] · weight -> [..., in].
Tensor linear_backward_input(const Tensor& grad_output, const Tensor& weight);
/// gradᵀ · x over all leading axes -> [out, in].
Tensor linear_backward_weights(const Tensor& grad_output, const Tensor& input);
/// grad summed over all leading axes -> [out].
Tensor linear_backward_bias(const Tensor& grad_output);

}  // namespace tlk::kernels::ref
