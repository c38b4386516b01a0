#pragma once
#include "tlk/kernels/upsample_params.h"
#include "tlk/tensor/tensor.h"

namespace tlk::ops {

/// Differentiable resizing of [N, C, D, H, W] volumes (f32 or f64), as torch.nn.functional.interpolate
/// with mode "nearest" or "trilinear" (see Note [Interpolation index math]).
/// Example:
/// `Tensor y = ops::upsample3d(x, Upsample3dOptions{}.with_mode(UpsampleMode::trilinear).with_size({8, 64, 64}));`
Tensor upsample3d(const Tensor& x, const Upsample3dOptions& options);

}  // namespace tlk::ops
