#pragma once
#include "tlk/tensor/tensor.h"

/// Softmax and log-softmax along one axis of a CUDA tensor (f32 or f64, rank >= 2), computed in
/// double: the same functions and results as kernels/ref/softmax.h (Note [GPU softmax layouts] in
/// softmax_launch.cu). Results are new contiguous tensors on the input's device.
/// Example: `Tensor p = kernels::cuda::softmax_forward(logits, 1);`
namespace tlk::kernels::cuda {

/// exp(x - max) / Σ exp(x - max) along `dim` (negative counts from the end).
Tensor softmax_forward(const Tensor& input, int dim);
/// x - max - log Σ exp(x - max) along `dim`.
Tensor log_softmax_forward(const Tensor& input, int dim);
/// Input gradient from the forward's output y: y · (g - Σ g y).
Tensor softmax_backward(const Tensor& grad_output, const Tensor& output, int dim);
/// Input gradient from the forward's output y: g - exp(y) · Σ g.
Tensor log_softmax_backward(const Tensor& grad_output, const Tensor& output, int dim);

}  // namespace tlk::kernels::cuda
