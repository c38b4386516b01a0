#pragma once
#include "tlk/kernels/conv_params.h"
#include "tlk/kernels/cpu/conv3d_backward_weights_avx2.h"
#include "tlk/tensor/tensor.h"

namespace tlk::kernels::cpu {

/// Gradient of conv3d w.r.t. its weight, plain [Co, Ci, kD, kH, kW], by the fastest implementation
/// this CPU has (Note [Backward-weights choice]): TLK's pointwise kernel for 1x1x1 heads with up to 3
/// output channels (conv3d_backward_weights_pointwise), else oneDNN's JIT primitive where oneDNN has one
/// for the shape (AVX-512 machines), else TLK's AVX2 kernels (conv3d_backward_weights_gemm for output
/// planes up to 32 wide, conv3d_backward_weights_avx2 for the others), else oneDNN's plain-layout GEMM.
Tensor conv3d_backward_weights(const Tensor& grad_output, const Tensor& input, const Shape& weight_shape,
                               const Conv3dOptions& opt);

/// TLK's AVX2 backward-weights kernels.
enum class Avx2WeightsKernel { pointwise, gemm, direct };

/// Which of TLK's AVX2 kernels conv3d_backward_weights takes for these shapes (the pointwise one even
/// where oneDNN has a JIT, the others only where it has none).
Avx2WeightsKernel avx2_backward_weights_kernel(const Shape& grad_output, const Shape& input, const Shape& weight_shape,
                                               const Conv3dOptions& opt);

}  // namespace tlk::kernels::cpu
