#pragma once
#include <cstdint>

#include "tlk/kernels/conv_params.h"
#include "tlk/tensor/tensor.h"

/// 3D convolution on the GPU by cuDNN 9's convolution API, with the names and signatures of
/// kernels/ref/conv3d.h. Shapes: input [N, Ci, D, H, W] (plain or channels-last), weight
/// [Co, Ci, kD, kH, kW] (plain or channels-last), bias [Co] or undefined; f32 or f64 on one GPU.
/// Results are new plain (row-major) tensors on the input's GPU.
///
/// Note [Convolution algorithm cache]: each pass first tries cuDNN's graph API (cudnn_engine.h:
/// heuristic engines timed once per key, the fastest plan cached); a key it cannot serve falls back,
/// once and for good, to the legacy API described here. The first call for a key (pass, dtype, shapes, layouts,
/// pointer alignment, geometry, TF32 switch, device) times cuDNN's algorithms (cudnnFind*AlgorithmEx
/// with a workspace from the caching allocator) and keeps the fastest that succeeded, falling back to
/// cuDNN's heuristics (cudnnGet*Algorithm_v7) and then to the implicit-GEMM algorithm 0. Later calls
/// with the same key search nothing (conv_algorithm_searches() counts the searches).
namespace tlk::kernels::cuda {

/// y = conv3d(input, weight) + bias. Example: `Tensor y = cuda::conv3d_forward(x, w, b, Conv3dOptions{});`
Tensor conv3d_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv3dOptions& opt);
/// Gradient w.r.t. the input, of shape `input_shape` (opt.output_padding is ignored).
Tensor conv3d_backward_data(const Tensor& grad_output, const Tensor& weight, const Shape& input_shape,
                            const Conv3dOptions& opt);
/// Gradient w.r.t. the weight, of shape `weight_shape` (plain).
Tensor conv3d_backward_weights(const Tensor& grad_output, const Tensor& input, const Shape& weight_shape,
                               const Conv3dOptions& opt);
/// Gradient w.r.t. the bias: grad_output summed over N, D, H, W.
Tensor conv3d_backward_bias(const Tensor& grad_output);

/// Transposed convolution: input [N, Ci, D, H, W], weight [Ci, Co, kD, kH, kW], bias [Co] or undefined;
/// computed as conv3d_backward_data (Note [Transposed convolution as convolution] in ref/conv3d.h).
Tensor conv_transpose3d_forward(const Tensor& input, const Tensor& weight, const Tensor& bias,
                                const Conv3dOptions& opt);

/// How many algorithm searches (cache misses, Note [Convolution algorithm cache]) have run so far.
/// Example: `auto n = conv_algorithm_searches(); conv3d_forward(...); CHECK(conv_algorithm_searches() == n);`
std::int64_t conv_algorithm_searches();
/// Forgets every cached algorithm choice (the next call of each key searches again).
void clear_conv_algorithm_cache();

}  // namespace tlk::kernels::cuda
