#pragma once
// The per-position test of the voxel-KD region (transfer::kd_region_mask), shared by its CPU loop in
// transfer/distillation_losses.cpp and the CUDA kernel of kernels/cuda/kd_region_launch.cu (Note
// [Kernel bodies on the host] in kernels/augment_voxel.h).
#include <cstdint>

#include "tlk/kernels/host_device.h"

namespace tlk::kernels::kd_region {

/// The class with the largest of `channels` logits lying `stride` apart from `x`; the first maximum
/// wins ties (as argmax in PyTorch and nnUNet).
template <class T>
TLK_HOST_DEVICE inline std::int64_t argmax_class(const T* x, std::int64_t channels, std::int64_t stride) {
  std::int64_t best = 0;
  for (std::int64_t c = 1; c < channels; ++c)
    if (x[c * stride] > x[best * stride]) best = c;
  return best;
}

}  // namespace tlk::kernels::kd_region
