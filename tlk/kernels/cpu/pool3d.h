#pragma once
#include "tlk/kernels/pool_params.h"
#include "tlk/tensor/tensor.h"

/// The CPU fast path of 3D pooling: oneDNN 2.6 pooling primitives over f32 tensors in the layout they
/// come in (plain, channels-last, nCdhw8c / nCdhw16c), with outputs and input gradients in that same
/// layout (Note [Stay blocked] in conv3d.h). Primitives are built once per geometry and layout
/// (Note [Primitive cache]).
///
/// Note [oneDNN max pooling vs the reference]: oneDNN's max pooling starts from the lowest float and
/// replaces the running maximum only on a strictly greater value, scanning the window in (d, h, w)
/// order and skipping padded positions, so it agrees with ref::max_pool3d_forward (first maximum wins,
/// padding never wins). Its backward routes each gradient through the workspace the forward wrote (the
/// argmax offset within the window), which is why the training forward returns it.
namespace tlk::kernels::cpu {

/// Max pooling's output (in the input's layout) and oneDNN's workspace (raw bytes in an f32 tensor,
/// opaque: only max_pool3d_backward reads it).
struct MaxPool3dForward {
  Tensor output;
  Tensor workspace;
};

/// True when the fast path takes `input`: a defined f32 CPU tensor (argument checks stay with the
/// shared output-shape functions, which every entry point calls first). Every layout works; the op
/// dispatch still sends plain row-major inputs to the reference (Note [Pool3d dispatch]).
bool pool3d_supported(const Tensor& input);

/// Max pooling as ref::max_pool3d_forward, with the workspace its backward needs.
/// Example: `auto [y, ws] = cpu::max_pool3d_forward(x, Pool3dOptions{{1, 2, 2}});`
MaxPool3dForward max_pool3d_forward(const Tensor& input, const Pool3dOptions& opt);
/// Gradient w.r.t. `input` (read for its shape and layout only), in the input's layout.
Tensor max_pool3d_backward(const Tensor& grad_output, const Tensor& workspace, const Tensor& input,
                           const Pool3dOptions& opt);

/// Average pooling as ref::avg_pool3d_forward (count_include_pad picks oneDNN's
/// pooling_avg_include_padding or pooling_avg_exclude_padding).
Tensor avg_pool3d_forward(const Tensor& input, const Pool3dOptions& opt);
/// Gradient w.r.t. `input` (read for its shape and layout only), in the input's layout.
Tensor avg_pool3d_backward(const Tensor& grad_output, const Tensor& input, const Pool3dOptions& opt);

/// Global average pooling (adaptive average pooling to 1x1x1): one window over the whole volume.
/// Example: `Tensor y = cpu::global_avg_pool3d_forward(x);  // [N, C, 1, 1, 1]`
Tensor global_avg_pool3d_forward(const Tensor& input);
/// Gradient of global_avg_pool3d_forward w.r.t. `input` (read for its shape and layout only).
Tensor global_avg_pool3d_backward(const Tensor& grad_output, const Tensor& input);

}  // namespace tlk::kernels::cpu
