#pragma once
#include "tlk/kernels/conv_params.h"
#include "tlk/tensor/tensor.h"

namespace tlk::kernels::cpu {

/// TLK's second AVX2/FMA backward-weights kernel, for convolutions with small output planes: a packed
/// GEMM. Reads x and dy in nCdhw8c or nCdhw16c (other layouts are reordered, counted); needs at least
/// 8 input channels, AVX2 and FMA, and a sample of the zero-bordered x under 2^31 floats.
///
/// Note [Packed GEMM for small planes]: dW, viewed as the matrix [Co, Ci·kD·kH·kW] (the plain weight
/// layout), is dY · X, where dY is [Co, positions] and X is im2col of x, [positions, Ci·kD·kH·kW].
/// The kernel never builds X whole. Its columns are cut into panels of 24; for a block of 128
/// positions, one panel of X is gathered (three AVX2 gathers per position, from a zero-bordered copy of
/// x and a table of column offsets) into 12 KiB that stays in L1. A micro-tile of 4 output channels x
/// 24 columns then keeps 12 accumulators in registers: per position, 3 loads of the panel and 4
/// broadcasts of dy feed 12 FMAs, and the tile ends in 12 contiguous stores into the weights.
/// The direct kernel (conv3d_backward_weights_avx2) needs the same FMAs per position, but pays
/// per-row and per-pass costs (set-up, edge checks, a scalar scatter into the weights) that rival the
/// FMAs where planes are 4 to 16 positions wide; this kernel pays a gather per position and column
/// instead, which 4·⌈Co/4⌉ rows amortise. Work is split into groups of panels, whose weight columns are
/// disjoint, so threads need no reduction.
Tensor conv3d_backward_weights_gemm(const Tensor& grad_output, const Tensor& input, const Shape& weight_shape,
                                    const Conv3dOptions& opt);

/// Whether conv3d_backward_weights hands a convolution with these shapes to the packed GEMM on an AVX2 CPU
/// (Note [Packed GEMM for small planes]): output planes at most 16 positions wide, at least 8 input and
/// 16 output channels.
bool conv3d_backward_weights_prefers_gemm(const Shape& grad_output, const Shape& input);

}  // namespace tlk::kernels::cpu
