#pragma once
#include "tlk/kernels/conv_params.h"
#include "tlk/tensor/tensor.h"

namespace tlk::kernels::cpu {

/// TLK's AVX2/FMA backward-weights kernel for a 1x1x1 convolution with at most 3 output channels, such as
/// a segmentation head: dW[co, ci] = Σ_{n, p} dy[n, co, p] · x[n, ci, p]. Reads x and dy in nCdhw8c or
/// nCdhw16c (other layouts are reordered, counted); needs stride 1, no padding, equal spatial extents,
/// at least 8 input channels, AVX2 and FMA.
///
/// Note [Pointwise weight gradient]: such a layer does 2 FMAs per element of x, so its time is the time
/// to read x and dy. The other kernels read x once per group of output channels and dy once per tile
/// of input channels (4 tiles x 1 group for a 32-channel, 2-class head). Here each thread takes a range
/// of positions and keeps Co x (up to 4) tiles of sums in registers, so x and dy are each read once
/// where Ci <= 32; the threads' partial sums are added in thread order, so results do not depend on
/// timing.
Tensor conv3d_backward_weights_pointwise(const Tensor& grad_output, const Tensor& input, const Shape& weight_shape,
                                         const Conv3dOptions& opt);

/// Whether conv3d_backward_weights_pointwise takes these shapes (see its conditions), and whether
/// conv3d_backward_weights hands them to it on an AVX2 CPU.
bool conv3d_backward_weights_pointwise_fits(const Shape& grad_output, const Shape& input, const Shape& weight_shape,
                                            const Conv3dOptions& opt);

}  // namespace tlk::kernels::cpu
