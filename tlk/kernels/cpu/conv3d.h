#pragma once
#include <optional>
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

/// Work fused into the convolution's own pass over its output (oneDNN post-ops), in this order.
///
/// Note [Training-safe fusion]: oneDNN 2.6 keeps only fusions whose backward needs no value the
/// fused primitive does not return. A sum post-op (y = conv + residual) has the identity as backward
/// for the residual. A relu / leaky-relu post-op with slope >= 0 has the derivative
/// y > 0 ? 1 : slope, computable from the fused output y alone (Note [Rectifier backward from the
/// output] in eltwise.cpp), so backward never needs the pre-activation. Other fusions (a negative
/// slope, norms) are not offered.
struct Conv3dPostOps {
  Tensor sum_with;                         ///< added to the convolution's output (same shape)
  std::optional<double> leaky_relu_slope;  ///< then max(y, 0) + slope * min(y, 0), slope >= 0
};

/// y = conv3d(input, weight) + bias (+ post-ops); input in any layout, weight plain [Co, Ci, kD, kH, kW].
Tensor conv3d_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv3dOptions& opt,
                      const Conv3dPostOps& post = {});
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
