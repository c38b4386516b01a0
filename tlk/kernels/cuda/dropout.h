#pragma once
#include "tlk/kernels/ref/dropout.h"
#include "tlk/tensor/random.h"
#include "tlk/tensor/tensor.h"

/// CUDA dropout: the API of kernels/ref/dropout.h for f32 and f64 CUDA tensors. The mask is drawn on
/// the CPU from the caller's generator exactly as ref draws it, then copied to the GPU, so the same
/// generator state gives a bit-identical mask and output on either device.
namespace tlk::kernels::cuda {

using kernels::ref::check_dropout_probability;
using kernels::ref::DropoutForward;

/// Drops each element with probability p in [0, 1) and scales the rest by 1 / (1 - p); p == 1 gives
/// zeros without drawing. Example: `auto [y, mask] = cuda::dropout_forward(x, 0.2, gen);`
DropoutForward dropout_forward(const Tensor& input, double p, Generator& gen);
/// grad * mask.
Tensor dropout_backward(const Tensor& grad_output, const Tensor& mask);

}  // namespace tlk::kernels::cuda
