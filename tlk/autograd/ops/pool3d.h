#pragma once
#include "tlk/kernels/pool_params.h"
#include "tlk/tensor/tensor.h"

/// Differentiable 3D pooling on [N, C, D, H, W] (f32 or f64), matching PyTorch's CPU results.
namespace tlk::ops {

/// Max over each window; padded positions never win and the gradient goes to the first maximum.
/// Example: `Tensor y = ops::max_pool3d(x, Pool3dOptions{{1, 2, 2}});  // [N, C, D, H/2, W/2]`
Tensor max_pool3d(const Tensor& x, const Pool3dOptions& options);

/// Mean over each window; with padding, `options.count_include_pad` picks the divisor.
/// Example: `Tensor y = ops::avg_pool3d(x, Pool3dOptions{{3, 3, 3}, {1, 1, 1}, {1, 1, 1}});  // same size`
Tensor avg_pool3d(const Tensor& x, const Pool3dOptions& options);

/// Mean over PyTorch's adaptive bins (see Note [Adaptive pooling bins]), giving [N, C, output_size...].
/// Example: `Tensor y = ops::adaptive_avg_pool3d(x, {2, 3, 3});`
Tensor adaptive_avg_pool3d(const Tensor& x, Int3 output_size);

/// The mean over D, H and W, kept as [N, C, 1, 1, 1] (a classifier head's global average pooling).
/// Example: `Tensor features = ops::global_avg_pool3d(x).flatten(1);  // [N, C]`
Tensor global_avg_pool3d(const Tensor& x);

}  // namespace tlk::ops
