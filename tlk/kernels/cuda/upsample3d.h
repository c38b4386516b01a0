#pragma once
#include "tlk/kernels/upsample_params.h"
#include "tlk/tensor/tensor.h"

/// CUDA 3D upsampling (nearest and trilinear): the API of kernels/ref/upsample3d.h for f32 and f64 CUDA
/// tensors, with the same index math (computed on the host exactly as ref does) and double sums.
/// Every function returns a new contiguous tensor on the input's GPU.
namespace tlk::kernels::cuda {

/// Resizes input [N, C, D, H, W] as `opt` says.
/// Example: `Tensor y = cuda::upsample3d_forward(x, Upsample3dOptions{}.with_scale_factor({2, 2, 2}));`
Tensor upsample3d_forward(const Tensor& input, const Upsample3dOptions& opt);
/// Gradient w.r.t. the input (of `input_shape`), gathered per input element (no atomics).
Tensor upsample3d_backward(const Tensor& grad_output, const Shape& input_shape, const Upsample3dOptions& opt);

}  // namespace tlk::kernels::cuda
