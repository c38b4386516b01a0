#pragma once
#include "tlk/kernels/conv_params.h"
#include "tlk/tensor/tensor.h"

namespace tlk::kernels::cpu {

/// Gradient of conv3d w.r.t. its weight, plain [Co, Ci, kD, kH, kW], by the fastest implementation
/// this CPU has: oneDNN's JIT primitive where oneDNN has one for the shape (AVX-512 machines), else
/// TLK's own AVX2 kernel (conv3d_backward_weights_avx2) on the shapes where it beats oneDNN's
/// plain-layout GEMM path (own_backward_weights_preferred), else that GEMM path.
Tensor conv3d_backward_weights(const Tensor& grad_output, const Tensor& input, const Shape& weight_shape,
                               const Conv3dOptions& opt);

/// TLK's own AVX2/FMA backward-weights kernel, reading the channel-blocked layouts nCdhw8c and
/// nCdhw16c directly (inputs in any other layout are reordered, counted). Requires AVX2 and FMA.
///
/// Note [Backward-weights kernel]: oneDNN 2.6 has no JIT 3D backward-weights on AVX2 (DESIGN §3).
/// dW[co, ci, tap] = Σ_{n, o} dy[n, co, o] · x[n, ci, o·s − p + tap·dil]. The kernel works on 8x8
/// tiles (8 output channels of one dy block by 8 input channels of one x block): for each output
/// position it loads one x vector (8 input channels) and broadcasts 8 dy values, 8 FMAs into 8
/// accumulator registers, one register per output channel. The data are walked one output plane
/// (n, od) at a time; for that plane every channel-block pair runs all kernel taps while the dy plane
/// and the few x planes it reads stay in L2, so each byte fetched from memory feeds every tap. Threads
/// split the channel-block pairs, each pair's accumulators belong to one thread per plane, so no
/// reduction is needed and nothing serialises.
Tensor conv3d_backward_weights_avx2(const Tensor& grad_output, const Tensor& input, const Shape& weight_shape,
                                    const Conv3dOptions& opt);

/// Whether this CPU can run TLK's AVX2 kernel.
bool conv3d_backward_weights_has_avx2();

/// Whether TLK's AVX2 kernel is expected to beat oneDNN's GEMM path for a convolution with input
/// [N, Ci, ...] and output gradient [N, Co, D, H, W] (Note [Backward-weights choice]): at least one
/// full channel block of input (Ci >= 8) and at least 32^3 output voxels per sample. The choice
/// depends on the shapes only, so a run (and its resume) always takes the same path.
bool own_backward_weights_preferred(const Shape& input, const Shape& grad_output);

}  // namespace tlk::kernels::cpu
