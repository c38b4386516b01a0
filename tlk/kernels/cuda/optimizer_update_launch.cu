// SGD and Adam update kernels (launchers declared in optimizer_update_launch.h).
#include <cuda_runtime.h>

#include <cstdint>

#include "tlk/kernels/cuda/optimizer_update_launch.h"
#include "tlk/kernels/cuda/grid_size.h"

namespace tlk::kernels::cuda::launch {

namespace {

// The bodies are the CPU loops of nn/sgd.cpp and nn/adam.cpp, statement for statement, in T.
template <class T>
__global__ void sgd_kernel(T* w, const T* g, T* buf, std::int64_t n, T lr, T wd, T mu, bool nesterov, bool first) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t j = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; j < n; j += stride) {
    T d = g[j] + wd * w[j];
    if (buf) {
      buf[j] = first ? d : mu * buf[j] + d;
      d = nesterov ? d + mu * buf[j] : buf[j];
    }
    w[j] -= lr * d;
  }
}

template <class T>
__global__ void adam_kernel(T* w, const T* g, T* m, T* v, std::int64_t n, T b1, T b2, T step_size, T bias2_sqrt, T eps,
                            T wd, T lr, bool decoupled) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t j = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; j < n; j += stride) {
    T d = g[j];
    if (decoupled)
      w[j] -= lr * wd * w[j];
    else
      d += wd * w[j];
    m[j] = b1 * m[j] + (T(1) - b1) * d;
    v[j] = b2 * v[j] + (T(1) - b2) * d * d;
    w[j] -= step_size * m[j] / (sqrt(v[j]) / bias2_sqrt + eps);
  }
}

}  // namespace

template <class T>
cudaError_t sgd_update(T* w, const T* g, T* buf, std::int64_t n, T lr, T weight_decay, T momentum, bool nesterov,
                       bool first, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  sgd_kernel<<<blocks_for(n), 256, 0, stream>>>(w, g, buf, n, lr, weight_decay, momentum, nesterov, first);
  return cudaGetLastError();
}

template <class T>
cudaError_t adam_update(T* w, const T* g, T* m, T* v, std::int64_t n, T beta1, T beta2, T step_size, T bias2_sqrt,
                        T eps, T weight_decay, T lr, bool decoupled, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  adam_kernel<<<blocks_for(n), 256, 0, stream>>>(w, g, m, v, n, beta1, beta2, step_size, bias2_sqrt, eps, weight_decay,
                                                 lr, decoupled);
  return cudaGetLastError();
}

#define TLK_OPTIMIZER_INSTANTIATE(T)                                                                     \
  template cudaError_t sgd_update<T>(T*, const T*, T*, std::int64_t, T, T, T, bool, bool, cudaStream_t); \
  template cudaError_t adam_update<T>(T*, const T*, T*, T*, std::int64_t, T, T, T, T, T, T, T, bool, cudaStream_t);
TLK_OPTIMIZER_INSTANTIATE(float)
TLK_OPTIMIZER_INSTANTIATE(double)
#undef TLK_OPTIMIZER_INSTANTIATE

}  // namespace tlk::kernels::cuda::launch
