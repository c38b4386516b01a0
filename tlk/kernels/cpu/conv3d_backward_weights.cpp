#include "tlk/kernels/cpu/conv3d_backward_weights.h"

#include "tlk/kernels/cpu/conv3d.h"
#include "tlk/kernels/cpu/conv3d_backward_weights_gemm.h"
#include "tlk/kernels/cpu/conv3d_backward_weights_pointwise.h"

namespace tlk::kernels::cpu {

// Note [Backward-weights choice]: where oneDNN 2.6 has JIT code for the shape (AVX-512 machines), it runs
// near forward speed and is taken. Without it (AVX2-only CPUs) oneDNN falls back to im2col + GEMM on plain
// layouts. TLK's two kernels beat that on every layer of the UNet (bench/ops, figures in the README), and
// they read the blocked activations without reordering them: the direct kernel where output planes are
// wide, the packed GEMM where they are at most 32 positions wide (Note [Packed GEMM for small planes]),
// and a pointwise kernel for 1x1x1 heads with few classes (Note [Pointwise weight gradient]).
Tensor conv3d_backward_weights(const Tensor& grad_output, const Tensor& input, const Shape& weight_shape,
                               const Conv3dOptions& opt) {
  check_backward_weights_arguments(grad_output, input, weight_shape, opt);
  const bool onednn_jit = conv3d_backward_weights_onednn_impl(input.shape(), weight_shape, grad_output.shape(), opt,
                                                              OneDnnWeightsLayout::chosen)
                              .rfind("jit", 0) == 0;
  if (onednn_jit)
    return conv3d_backward_weights_onednn(grad_output, input, weight_shape, opt, OneDnnWeightsLayout::chosen);
  if (conv3d_backward_weights_has_avx2()) {
    if (conv3d_backward_weights_pointwise_fits(grad_output.shape(), input.shape(), weight_shape, opt))
      return conv3d_backward_weights_pointwise(grad_output, input, weight_shape, opt);
    if (conv3d_backward_weights_prefers_gemm(grad_output.shape(), input.shape()))
      return conv3d_backward_weights_gemm(grad_output, input, weight_shape, opt);
    return conv3d_backward_weights_avx2(grad_output, input, weight_shape, opt);
  }
  return conv3d_backward_weights_onednn(grad_output, input, weight_shape, opt, OneDnnWeightsLayout::plain);
}

}  // namespace tlk::kernels::cpu
