#pragma once
#include "tlk/kernels/conv_params.h"
#include "tlk/tensor/tensor.h"

namespace tlk::ops {

/// Differentiable 3D convolution (cross-correlation, as PyTorch's conv3d).
/// input [N, Ci, D, H, W], weight [Co, Ci, kD, kH, kW], bias [Co] or undefined; any kernel size
/// (anisotropic 1x3x3 included), per-axis stride, padding and dilation.
/// Example: `Tensor y = ops::conv3d(x, w, b, Conv3dOptions{}.with_padding({1, 1, 1}));`
Tensor conv3d(const Tensor& input, const Tensor& weight, const Tensor& bias = {}, const Conv3dOptions& options = {});

/// Differentiable transposed 3D convolution (the UNet's upsampling when kernel == stride).
/// input [N, Ci, D, H, W], weight [Ci, Co, kD, kH, kW] (PyTorch's layout), bias [Co] or undefined.
/// Output extent per axis: (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1.
Tensor conv_transpose3d(const Tensor& input, const Tensor& weight, const Tensor& bias = {},
                        const Conv3dOptions& options = {});

}  // namespace tlk::ops
