#pragma once
#include <string>

#include "tlk/kernels/conv_params.h"
#include "tlk/tensor/tensor.h"

/// The CPU fast path of conv3d: oneDNN 2.6 primitives in blocked layouts for forward and
/// backward-data, TLK's own AVX2 kernel for backward-weights (conv3d_backward_weights.h).
///
/// Note [Stay blocked]: outputs come back in the layout the convolution chose (nCdhw8c on AVX2), and
/// inputs already in that layout are used as they are, so a chain of convolutions (and, as the fast
/// path grows, the ops between them) runs without reorders. Every reorder that does happen is
/// counted (reorder_stats() in tensor/blocked_format.h).
namespace tlk::kernels::cpu {

/// True when the fast path handles this convolution: f32 tensors on the CPU.
bool conv3d_supported(const Tensor& input, const Tensor& weight);

/// y = conv3d(input, weight) + bias; input in any layout, weight plain [Co, Ci, kD, kH, kW].
Tensor conv3d_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv3dOptions& opt);
/// Gradient w.r.t. the input, in the layout the primitive chose.
Tensor conv3d_backward_data(const Tensor& grad_output, const Tensor& weight, const Shape& input_shape,
                            const Conv3dOptions& opt);
/// Which layouts oneDNN's backward-weights primitive is given (Note [oneDNN backward-weights formats]).
enum class OneDnnWeightsLayout {
  plain,   ///< ncdhw / oidhw: im2col + GEMM on every ISA
  chosen,  ///< `any`: oneDNN picks; a JIT kernel on AVX-512, its reference code on AVX2
};
/// Gradient w.r.t. the weight (plain [Co, Ci, kD, kH, kW]) by oneDNN's own backward-weights
/// primitive: the baseline TLK's kernel is measured against, and its fallback.
Tensor conv3d_backward_weights_onednn(const Tensor& grad_output, const Tensor& input, const Shape& weight_shape,
                                      const Conv3dOptions& opt,
                                      OneDnnWeightsLayout layout = OneDnnWeightsLayout::plain);
/// oneDNN's implementation name for that primitive ("jit:avx512_core", "gemm:jit", "ref:any", ...).
std::string conv3d_backward_weights_onednn_impl(const Shape& input_shape, const Shape& weight_shape,
                                                const Shape& output_shape, const Conv3dOptions& opt,
                                                OneDnnWeightsLayout layout);
/// Gradient w.r.t. the bias: grad_output summed over N, D, H, W (reads blocked layouts directly).
Tensor conv3d_backward_bias(const Tensor& grad_output);

}  // namespace tlk::kernels::cpu
