#include "tlk/kernels/cpu/conv3d_backward_weights.h"

#include "tlk/kernels/cpu/conv3d.h"
#include "tlk/kernels/cpu/conv3d_backward_weights_gemm.h"
#include "tlk/kernels/cpu/conv3d_backward_weights_pointwise.h"

namespace tlk::kernels::cpu {

// Note [Backward-weights choice]: a 1x1x1 head with few classes is bound by reading x and dy, which TLK's
// pointwise kernel does once (Note [Pointwise weight gradient]): 1.7x oneDNN's jit_1x1 on AVX-512 and 2x
// its GEMM path under AVX2 (bench/ops, 2026-11-27), so it is taken first. Elsewhere, where oneDNN 2.6 has
// JIT code for the shape (AVX-512 machines), it runs near forward speed and is taken. Without it
// (AVX2-only CPUs) oneDNN falls back to im2col + GEMM on plain layouts, and TLK's kernels beat that on
// every layer of the UNet (figures in the README), reading the blocked activations without reordering
// them: the packed GEMM where output planes are at most 32 positions wide (Note [Packed GEMM for small
// planes]), the direct kernel elsewhere (Note [Backward-weights kernel]).
Avx2WeightsKernel avx2_backward_weights_kernel(const Shape& grad_output, const Shape& input, const Shape& weight_shape,
                                               const Conv3dOptions& opt) {
  if (conv3d_backward_weights_pointwise_fits(grad_output, input, weight_shape, opt))
    return Avx2WeightsKernel::pointwise;
  return conv3d_backward_weights_prefers_gemm(grad_output, input) ? Avx2WeightsKernel::gemm : Avx2WeightsKernel::direct;
}

Tensor conv3d_backward_weights(const Tensor& grad_output, const Tensor& input, const Shape& weight_shape,
                               const Conv3dOptions& opt) {
  check_backward_weights_arguments(grad_output, input, weight_shape, opt);
  const bool avx2 = conv3d_backward_weights_has_avx2();
  const Avx2WeightsKernel own = avx2_backward_weights_kernel(grad_output.shape(), input.shape(), weight_shape, opt);
  if (avx2 && own == Avx2WeightsKernel::pointwise)
    return conv3d_backward_weights_pointwise(grad_output, input, weight_shape, opt);
  const bool onednn_jit = conv3d_backward_weights_onednn_impl(input.shape(), weight_shape, grad_output.shape(), opt,
                                                              OneDnnWeightsLayout::chosen)
                              .rfind("jit", 0) == 0;
  if (onednn_jit)
    return conv3d_backward_weights_onednn(grad_output, input, weight_shape, opt, OneDnnWeightsLayout::chosen);
  if (avx2)
    return own == Avx2WeightsKernel::gemm ? conv3d_backward_weights_gemm(grad_output, input, weight_shape, opt)
                                          : conv3d_backward_weights_avx2(grad_output, input, weight_shape, opt);
  return conv3d_backward_weights_onednn(grad_output, input, weight_shape, opt, OneDnnWeightsLayout::plain);
}

}  // namespace tlk::kernels::cpu
