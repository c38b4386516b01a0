#pragma once
#include "tlk/tensor/tensor.h"

/// Matrix product and fully connected layer on the GPU by cuBLAS, with the names and signatures of
/// kernels/ref/linear.h. Shapes: x [..., in] (leading axes are one batch axis), weight [out, in],
/// bias [out] or undefined; f32 (TF32 under the switch, Note [TF32 switch]) or f64. Results are new
/// plain tensors on the operands' GPU.
namespace tlk::kernels::cuda {

/// a [M, K] · b [K, N] -> [M, N]; either operand may be a strided view (a transpose is read as is).
/// Example: `Tensor c = cuda::matmul(a, b);`
Tensor matmul(const Tensor& a, const Tensor& b);

/// x · weightᵀ + bias, of shape [..., out].
Tensor linear_forward(const Tensor& input, const Tensor& weight, const Tensor& bias);
/// grad [..., out] · weight -> [..., in].
Tensor linear_backward_input(const Tensor& grad_output, const Tensor& weight);
/// gradᵀ · x over all leading axes -> [out, in].
Tensor linear_backward_weights(const Tensor& grad_output, const Tensor& input);
/// grad summed over all leading axes -> [out].
Tensor linear_backward_bias(const Tensor& grad_output);

}  // namespace tlk::kernels::cuda
