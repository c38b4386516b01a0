// Decoupled KD on the GPU (launchers declared in dkd_launch.h): one thread per position runs the
// shared per-position math of kernels/dkd_position.h; the forward's sums follow Note [Deterministic
// GPU sums] in block_sum.cuh.
#include <cuda_runtime.h>

#include <cstdint>

#include "tlk/kernels/cuda/block_sum.cuh"
#include "tlk/kernels/cuda/dkd_launch.h"
#include "tlk/kernels/cuda/grid_size.h"
#include "tlk/kernels/dkd_position.h"

namespace tlk::kernels::cuda::launch {

namespace {

using detail::block_sum;
using detail::kReduceThreads;
using detail::sum_partials;

constexpr std::int64_t kMaxBlocks = 1024;

std::int64_t forward_blocks(std::int64_t positions) {
  const std::int64_t blocks = (positions + kReduceThreads - 1) / kReduceThreads;
  return blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks);
}

__device__ __forceinline__ std::int64_t position_base(std::int64_t p, std::int64_t channels, std::int64_t inner) {
  const std::int64_t sample = p / inner;
  return sample * channels * inner + (p - sample * inner);
}

template <class T>
__global__ void dkd_partial_kernel(const T* s, const T* t, const std::int64_t* y, std::int64_t positions,
                                   std::int64_t channels, std::int64_t inner, double inv_t, double* partial) {
  double acc[2] = {0.0, 0.0};
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t p = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; p < positions;
       p += stride) {
    const std::int64_t base = position_base(p, channels, inner);
    dkd::add_terms(s + base, t + base, inner, channels, inv_t, y[p], acc);
  }
  block_sum<2>(acc);
  if (threadIdx.x == 0) {
    partial[2 * blockIdx.x] = acc[0];
    partial[2 * blockIdx.x + 1] = acc[1];
  }
}

template <class T>
__global__ void dkd_finish_kernel(const double* partial, std::int64_t blocks, std::int64_t positions, double scale,
                                  T* tckd, T* nckd) {
  double total[2];
  sum_partials<2>(partial, blocks, total);
  if (threadIdx.x == 0) {
    tckd[0] = static_cast<T>(positions == 0 ? NAN : scale * total[0]);
    nckd[0] = static_cast<T>(positions == 0 ? NAN : scale * total[1]);
  }
}

template <class T>
__global__ void dkd_grad_kernel(const T* s, const T* t, const std::int64_t* y, std::int64_t positions,
                                std::int64_t channels, std::int64_t inner, double inv_t, double g_tckd, double g_nckd,
                                double scale, T* grad) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t p = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; p < positions;
       p += stride) {
    const std::int64_t base = position_base(p, channels, inner);
    dkd::write_grad(s + base, t + base, inner, channels, inv_t, y[p], g_tckd, g_nckd, scale, grad + base);
  }
}

}  // namespace

std::int64_t dkd_partials(std::int64_t positions) { return 2 * forward_blocks(positions); }

template <class T>
cudaError_t dkd_forward(const T* student, const T* teacher, const std::int64_t* targets, std::int64_t outer,
                        std::int64_t channels, std::int64_t inner, double inv_t, double scale, T* tckd, T* nckd,
                        double* partial, cudaStream_t stream) {
  const std::int64_t positions = outer * inner, blocks = forward_blocks(positions);
  dkd_partial_kernel<T><<<static_cast<unsigned>(blocks), kReduceThreads, 0, stream>>>(
      student, teacher, targets, positions, channels, inner, inv_t, partial);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  dkd_finish_kernel<T><<<1, kReduceThreads, 0, stream>>>(partial, blocks, positions, scale, tckd, nckd);
  return cudaGetLastError();
}

template <class T>
cudaError_t dkd_backward(const T* student, const T* teacher, const std::int64_t* targets, std::int64_t outer,
                         std::int64_t channels, std::int64_t inner, double inv_t, double g_tckd, double g_nckd,
                         double scale, T* grad, cudaStream_t stream) {
  const std::int64_t positions = outer * inner;
  if (positions == 0) return cudaSuccess;
  dkd_grad_kernel<T><<<blocks_for(positions), kGridThreads, 0, stream>>>(student, teacher, targets, positions, channels,
                                                                        inner, inv_t, g_tckd, g_nckd, scale, grad);
  return cudaGetLastError();
}

#define TLK_DKD_INSTANTIATE(T)                                                                                    \
  template cudaError_t dkd_forward<T>(const T*, const T*, const std::int64_t*, std::int64_t, std::int64_t,       \
                                      std::int64_t, double, double, T*, T*, double*, cudaStream_t);              \
  template cudaError_t dkd_backward<T>(const T*, const T*, const std::int64_t*, std::int64_t, std::int64_t,      \
                                       std::int64_t, double, double, double, double, T*, cudaStream_t);
TLK_DKD_INSTANTIATE(float)
TLK_DKD_INSTANTIATE(double)
#undef TLK_DKD_INSTANTIATE

}  // namespace tlk::kernels::cuda::launch
