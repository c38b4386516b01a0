// The voxel-KD region's seed (launcher declared in kd_region_launch.h).
#include <cuda_runtime.h>

#include <cstdint>

#include "tlk/kernels/cuda/grid_size.h"
#include "tlk/kernels/cuda/kd_region_launch.h"
#include "tlk/kernels/kd_region_voxel.h"

namespace tlk::kernels::cuda::launch {

namespace {

template <class T>
__global__ void kd_region_seed_kernel(const T* logits, std::int64_t outer, std::int64_t channels,
                                      std::int64_t inner, const std::int64_t* labels, bool use_teacher,
                                      std::int64_t background, float* mask) {
  const std::int64_t n = outer * inner, stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t p = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; p < n; p += stride) {
    bool in = labels != nullptr && labels[p] != background;
    if (!in && use_teacher) {
      const std::int64_t sample = p / inner, i = p - sample * inner;
      in = kd_region::argmax_class(logits + sample * channels * inner + i, channels, inner) != background;
    }
    mask[p] = in ? 1.0f : 0.0f;
  }
}

}  // namespace

template <class T>
cudaError_t kd_region_seed(const T* logits, std::int64_t outer, std::int64_t channels, std::int64_t inner,
                           const std::int64_t* labels, bool use_teacher, std::int64_t background, float* mask,
                           cudaStream_t stream) {
  const std::int64_t n = outer * inner;
  if (n == 0) return cudaSuccess;
  kd_region_seed_kernel<T><<<blocks_for(n), kGridThreads, 0, stream>>>(logits, outer, channels, inner, labels,
                                                                          use_teacher, background, mask);
  return cudaGetLastError();
}

template cudaError_t kd_region_seed<float>(const float*, std::int64_t, std::int64_t, std::int64_t,
                                           const std::int64_t*, bool, std::int64_t, float*, cudaStream_t);
template cudaError_t kd_region_seed<double>(const double*, std::int64_t, std::int64_t, std::int64_t,
                                            const std::int64_t*, bool, std::int64_t, float*, cudaStream_t);

}  // namespace tlk::kernels::cuda::launch
