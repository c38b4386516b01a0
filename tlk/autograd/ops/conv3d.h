#pragma once
#include "tlk/kernels/conv_params.h"
#include "tlk/tensor/tensor.h"

namespace tlk::ops {

/// Differentiable 3D convolution (cross-correlation, as PyTorch's conv3d).
/// input [N, Ci, D, H, W], weight [Co, Ci, kD, kH, kW], bias [Co] or undefined; any kernel size
/// (anisotropic 1x3x3 included), per-axis stride, padding and dilation.
/// Example: `Tensor y = ops::conv3d(x, w, b, Conv3dOptions{}.with_padding({1, 1, 1}));`
Tensor conv3d(const Tensor& input, const Tensor& weight, const Tensor& bias = {}, const Conv3dOptions& options = {});

/// leaky_relu(conv3d(input, weight, bias)) with slope >= 0 (0 is relu). On the fast path the activation
/// is fused into the convolution (one oneDNN primitive, Note [Training-safe fusion]); otherwise the
/// two ops run in turn. Example: `ops::conv3d_leaky_relu(x, w, b, opt, 0.01)`.
Tensor conv3d_leaky_relu(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv3dOptions& options,
                         double negative_slope);

/// conv3d(input, weight, bias) + residual (a residual block's sum), the addition fused into the
/// convolution on the fast path. residual has the convolution's output shape.
Tensor conv3d_add(const Tensor& input, const Tensor& weight, const Tensor& bias, const Tensor& residual,
                  const Conv3dOptions& options);

/// Differentiable transposed 3D convolution (the UNet's upsampling when kernel == stride).
/// input [N, Ci, D, H, W], weight [Ci, Co, kD, kH, kW] (PyTorch's layout), bias [Co] or undefined.
/// Output extent per axis: (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1.
Tensor conv_transpose3d(const Tensor& input, const Tensor& weight, const Tensor& bias = {},
                        const Conv3dOptions& options = {});

}  // namespace tlk::ops
