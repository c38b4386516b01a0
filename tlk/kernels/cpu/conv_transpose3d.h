#pragma once
#include <string>

#include "tlk/kernels/conv_params.h"
#include "tlk/tensor/tensor.h"

/// The CPU fast path of conv_transpose3d (the UNet's upsampling): oneDNN 2.6 deconvolution primitives
/// in the layouts they choose (blocked: nCdhw16c on AVX-512, nCdhw8c on AVX2), built once through the
/// PrimitiveCache. Inputs already in a primitive's layout are used as they are (Note [Stay blocked] in
/// kernels/cpu/conv3d.h); any other layout is reordered, counted.
///
/// Shapes as in PyTorch: input [N, Ci, D, H, W], weight [Ci, Co, kD, kH, kW], bias [Co] or undefined,
/// output extent per axis (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1.
namespace tlk::kernels::cpu {

/// True when the fast path handles this transposed convolution: f32 tensors on the CPU.
bool conv_transpose3d_supported(const Tensor& input, const Tensor& weight);

/// y = conv_transpose3d(input, weight) + bias; input in any layout, weight plain [Ci, Co, kD, kH, kW].
/// Example: `Tensor up = cpu::conv_transpose3d_forward(x, w, b, Conv3dOptions{}.with_stride({2, 2, 2}));`
Tensor conv_transpose3d_forward(const Tensor& input, const Tensor& weight, const Tensor& bias,
                                const Conv3dOptions& opt);

/// Gradient w.r.t. the input (of shape `input_shape`), in the layout the primitive chose.
Tensor conv_transpose3d_backward_data(const Tensor& grad_output, const Tensor& weight, const Shape& input_shape,
                                      const Conv3dOptions& opt);

/// How the weight gradient is computed (Note [Transposed-convolution weight gradient]).
enum class ConvTranspose3dWeightsMethod {
  automatic,       ///< oneDNN's deconvolution primitive unless that is its reference code, else as_convolution
  onednn,          ///< always oneDNN's deconvolution backward-weights primitive
  as_convolution,  ///< kernels::cpu::conv3d_backward_weights with input and output gradient exchanged
};

/// Gradients of the parameters: weight plain [Ci, Co, kD, kH, kW], bias [Co] (undefined unless asked).
struct ConvTranspose3dParamGrads {
  Tensor weight;
  Tensor bias;
};

/// Gradients w.r.t. the weight and, when `with_bias`, the bias, from one pass over the data.
/// Example: `auto [dw, db] = cpu::conv_transpose3d_backward_weights(dy, x, w.shape(), opt, true);`
ConvTranspose3dParamGrads conv_transpose3d_backward_weights(
    const Tensor& grad_output, const Tensor& input, const Shape& weight_shape, const Conv3dOptions& opt, bool with_bias,
    ConvTranspose3dWeightsMethod method = ConvTranspose3dWeightsMethod::automatic);

/// oneDNN's implementation names of the three primitives for one geometry ("jit:avx512_core", "ref:any", ...).
struct ConvTranspose3dImpls {
  std::string forward, backward_data, backward_weights;
};
ConvTranspose3dImpls conv_transpose3d_impls(const Shape& input_shape, const Shape& weight_shape,
                                            const Conv3dOptions& opt);

}  // namespace tlk::kernels::cpu
