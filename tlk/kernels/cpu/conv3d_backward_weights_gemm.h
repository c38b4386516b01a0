#pragma once
#include "tlk/kernels/conv_params.h"
#include "tlk/tensor/tensor.h"

namespace tlk::kernels::cpu {

/// TLK's second AVX2/FMA backward-weights kernel, for convolutions with small output planes: a packed
/// GEMM. Reads x and dy in nCdhw8c or nCdhw16c (other layouts are reordered, counted); needs at least
/// 8 input channels, AVX2 and FMA, and a sample of x under 2^31 floats.
///
/// Note [Packed GEMM for small planes]: dW, viewed as the matrix [Co, Ci·kD·kH·kW] (the plain weight
/// layout), is dY · X, where dY is [Co, positions] and X is im2col of x, [positions, Ci·kD·kH·kW].
/// The kernel never builds X whole. A panel of X is 3 taps x 8 input channels (24 columns) over a block
/// of 128 positions: per position, three vector copies from the channel-blocked x (zeros where a
/// window reaches into the padding), 12 KiB that stay in L1. dY is packed once, 4 output channels per
/// position in 16 contiguous bytes. A micro-tile of 4 output channels x 24 columns keeps 12
/// accumulators in registers: per position, 3 loads of the panel and 4 broadcasts of dy feed 12 FMAs
/// (Note [Unrolled positions]). A unit of work is one tile of 8 input channels with all its taps (9
/// panels for 3x3x3): its panels read the same x, which stays in cache, and its weights are disjoint
/// from every other unit's, so threads need no reduction. The sums end in the plain weights, each
/// (output, input channel)'s taps in a row.
/// The direct kernel (conv3d_backward_weights_avx2) needs the same FMAs per position, but walks x
/// from L2 and pays per-row and per-pass costs (set-up, edge checks, a scalar scatter into the
/// weights) that rival the FMAs where planes are narrow; this kernel packs each panel once and reuses
/// it for every output channel (bench/ops: 1.2x to 1.7x the direct kernel on planes 4 to 16 wide).
Tensor conv3d_backward_weights_gemm(const Tensor& grad_output, const Tensor& input, const Shape& weight_shape,
                                    const Conv3dOptions& opt);

/// Whether conv3d_backward_weights hands a convolution with these shapes to the packed GEMM on an AVX2 CPU
/// (Note [Packed GEMM for small planes]): output planes at most 32 positions wide, at least 8 input and
/// 16 output channels.
bool conv3d_backward_weights_prefers_gemm(const Shape& grad_output, const Shape& input);

}  // namespace tlk::kernels::cpu
