#pragma once
#include "tlk/kernels/conv_params.h"
#include "tlk/tensor/tensor.h"

/// Reference 3D convolution: direct loops accumulated in double (the oracle for faster kernels).
/// Shapes: input [N, Ci, D, H, W], weight [Co, Ci, kD, kH, kW], bias [Co] (undefined for none).
namespace tlk::kernels::ref {

Tensor conv3d_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv3dOptions& opt);
/// Gradient w.r.t. the input, of shape `input_shape`.
Tensor conv3d_backward_data(const Tensor& grad_output, const Tensor& weight, const Shape& input_shape,
                            const Conv3dOptions& opt);
/// Gradient w.r.t. the weight, of shape `weight_shape`.
Tensor conv3d_backward_weights(const Tensor& grad_output, const Tensor& input, const Shape& weight_shape,
                               const Conv3dOptions& opt);
/// Gradient w.r.t. the bias: grad_output summed over N, D, H, W.
Tensor conv3d_backward_bias(const Tensor& grad_output);

/// Transposed convolution: input [N, Ci, D, H, W], weight [Ci, Co, kD, kH, kW], bias [Co] or undefined.
/// Note [Transposed convolution as convolution]: its forward is conv3d_backward_data with the same
/// weight; its input gradient is conv3d_forward of the output gradient; its weight gradient is
/// conv3d_backward_weights with the roles of input and output gradient exchanged.
Tensor conv_transpose3d_forward(const Tensor& input, const Tensor& weight, const Tensor& bias,
                                const Conv3dOptions& opt);

}  // namespace tlk::kernels::ref
