#pragma once
// Raw-pointer launchers of the optimizer updates (optimizer_update_launch.cu); the Tensor API is
// optimizer_update.h. The scalars arrive already rounded to T, exactly as the CPU loops of
// nn/sgd.cpp and nn/adam.cpp round them, so both devices run the same T arithmetic per element.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace tlk::kernels::cuda::launch {

/// One SGD step over n elements (nn/sgd.cpp): d = g + wd·w; with `buf` (momentum > 0):
/// buf = first ? d : mu·buf + d, d = nesterov ? d + mu·buf : buf; then w -= lr·d.
template <class T>
cudaError_t sgd_update(T* w, const T* g, T* buf, std::int64_t n, T lr, T weight_decay, T momentum, bool nesterov,
                       bool first, cudaStream_t stream);

/// One Adam / AdamW step over n elements (nn/adam.cpp): d = g (+ wd·w unless decoupled, where
/// w -= lr·wd·w first); m = b1·m + (1 − b1)·d; v = b2·v + (1 − b2)·d²;
/// w -= step_size·m / (sqrt(v) / bias2_sqrt + eps).
template <class T>
cudaError_t adam_update(T* w, const T* g, T* m, T* v, std::int64_t n, T beta1, T beta2, T step_size, T bias2_sqrt,
                        T eps, T weight_decay, T lr, bool decoupled, cudaStream_t stream);

}  // namespace tlk::kernels::cuda::launch
