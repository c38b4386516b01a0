#pragma once
#include "tlk/kernels/upsample_params.h"
#include "tlk/tensor/tensor.h"

/// The CPU fast path of 3D upsampling: oneDNN 2.6 resampling primitives over f32 tensors in the
/// layout they come in (plain, channels-last, nCdhw8c / nCdhw16c), with outputs and input gradients in
/// that same layout (Note [Stay blocked] in conv3d.h), built once per geometry (Note [Primitive cache]).
///
/// Note [oneDNN resampling vs PyTorch]: oneDNN maps an output position to
/// src = (dst + 0.5) * in / out - 0.5 (align_corners=false), rounds it for nearest and blends
/// floor/ceil (clamped to the volume) for linear. Against ref::upsample3d (PyTorch's index math):
/// - trilinear, align_corners false: the same taps whenever PyTorch's scale is in / out, i.e. an
///   output `size` was given, or a scale factor with out == in * factor exactly -> fast path;
/// - nearest: PyTorch takes floor(dst * in / out); the two agree when out is an integer multiple of
///   in (and a scale factor, if given, equals that multiple) -> fast path;
/// - trilinear with align_corners true, nearest with a non-integer factor or downsampling, and scale
///   factors that do not land exactly on the output size stay on the reference kernels
///   (upsample3d_supported says no and the op dispatches there).
namespace tlk::kernels::cpu {

/// True when the fast path computes exactly what ref::upsample3d_forward does for these arguments:
/// a defined f32 CPU 5-D input and options in the cases of Note [oneDNN resampling vs PyTorch]. Bad
/// arguments give false (the reference kernels report them).
bool upsample3d_supported(const Tensor& input, const Upsample3dOptions& opt);

/// Upsampling as ref::upsample3d_forward, for the cases upsample3d_supported accepts.
/// Example: `Tensor y = cpu::upsample3d_forward(x, Upsample3dOptions{}.with_scale_factor({2, 2, 2}));`
Tensor upsample3d_forward(const Tensor& input, const Upsample3dOptions& opt);
/// Gradient w.r.t. `input` (read for its shape and layout only), in the input's layout.
Tensor upsample3d_backward(const Tensor& grad_output, const Tensor& input, const Upsample3dOptions& opt);

}  // namespace tlk::kernels::cpu
