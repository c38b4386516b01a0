#pragma once
// Raw-pointer launcher of the voxel-KD region's seed (kd_region_launch.cu); the Tensor API is
// kd_region.h.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace tlk::kernels::cuda::launch {

/// mask[n, i] = 1 (else 0) for each of the outer x inner positions of logits [outer, channels, inner]
/// (f32 or f64) when `labels` ([outer, inner] i64, or null) is not `background` there, or when
/// `use_teacher` and the logits' argmax is not `background`.
template <class T>
cudaError_t kd_region_seed(const T* logits, std::int64_t outer, std::int64_t channels, std::int64_t inner,
                           const std::int64_t* labels, bool use_teacher, std::int64_t background, float* mask,
                           cudaStream_t stream);

}  // namespace tlk::kernels::cuda::launch
