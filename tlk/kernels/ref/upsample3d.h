#pragma once
#include "tlk/kernels/upsample_params.h"
#include "tlk/tensor/tensor.h"

/// Reference 3D upsampling (nearest and trilinear) with torch.nn.functional.interpolate's index
/// math; sums accumulated in double. Every function returns a new contiguous tensor.
namespace tlk::kernels::ref {

/// Resizes input [N, C, D, H, W] as `opt` says.
/// Example: `Tensor y = upsample3d_forward(x, Upsample3dOptions{}.with_size({8, 16, 16}));`
Tensor upsample3d_forward(const Tensor& input, const Upsample3dOptions& opt);
/// Gradient w.r.t. the input (of `input_shape`): each output gradient is scattered back to the
/// input elements it was read from, with the forward's weights.
Tensor upsample3d_backward(const Tensor& grad_output, const Shape& input_shape, const Upsample3dOptions& opt);

}  // namespace tlk::kernels::ref
