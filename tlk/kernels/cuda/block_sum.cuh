#pragma once
// Device-side helpers shared by the reduction kernels of norm_launch.cu, losses_launch.cu and
// soft_dice_launch.cu (CUDA code only: include it from .cu files).
//
// Note [Deterministic GPU sums]: every reduction here adds in a fixed order. A block first reduces
// each warp with a fixed shuffle tree, then warp 0 adds the warp sums in order; blocks write one
// partial each (no atomics), and a later kernel adds the partials in index order. The grid a
// launcher picks depends on the problem's shape only, so a loss or a statistic has the same bits on
// every run (as the reference's Note [Deterministic loss sums]).
#include <cuda_runtime.h>

#include <cstdint>

namespace tlk::kernels::cuda::detail {

/// Threads per block of the reductions (a multiple of 32, at most 1024).
constexpr int kReduceThreads = 256;

/// Sums each of the K values `v` over the block; the totals are valid in thread 0 only. Every thread
/// of the block must call it (it synchronises); blockDim.x must be a multiple of 32.
template <int K>
__device__ inline void block_sum(double (&v)[K]) {
  __shared__ double warp_sums[K][32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int k = 0; k < K; ++k)
    for (int offset = 16; offset > 0; offset >>= 1) v[k] += __shfl_down_sync(0xffffffffu, v[k], offset);
  if (lane == 0)
    for (int k = 0; k < K; ++k) warp_sums[k][warp] = v[k];
  __syncthreads();
  if (warp == 0) {
    for (int k = 0; k < K; ++k) {
      v[k] = lane < warps ? warp_sums[k][lane] : 0.0;
      for (int offset = 16; offset > 0; offset >>= 1) v[k] += __shfl_down_sync(0xffffffffu, v[k], offset);
    }
  }
  __syncthreads();  // warp_sums may be reused by a later call
}

/// Adds `count` blocks' partial sums of width K (partial[b * K + k]) in a fixed order with one block;
/// the totals are valid in thread 0 only.
template <int K>
__device__ inline void sum_partials(const double* partial, std::int64_t count, double (&total)[K]) {
  for (int k = 0; k < K; ++k) total[k] = 0.0;
  for (std::int64_t b = threadIdx.x; b < count; b += blockDim.x)
    for (int k = 0; k < K; ++k) total[k] += partial[b * K + k];
  block_sum<K>(total);
}

/// log Σ_c exp(scale · x[c · stride]) for c < count, stable, as the reference's
/// loss_detail::log_sum_exp: NaN when any term is NaN, ±inf when the largest term is infinite.
template <class T>
__device__ inline double log_sum_exp(const T* x, std::int64_t stride, std::int64_t count, double scale) {
  double m = -INFINITY;
  for (std::int64_t c = 0; c < count; ++c) {
    const double v = scale * static_cast<double>(x[c * stride]);
    if (v > m || isnan(v)) m = v;
    if (isnan(m)) return m;
  }
  if (isinf(m)) return m;
  double s = 0.0;
  for (std::int64_t c = 0; c < count; ++c) s += exp(scale * static_cast<double>(x[c * stride]) - m);
  return m + log(s);
}

/// Blocks for a reduction over `n` items: enough to fill the GPU, capped at a constant (not the
/// device's SM count) so the summation order depends on the shape alone.
inline unsigned reduce_blocks(std::int64_t n) {
  const std::int64_t blocks = (n + kReduceThreads - 1) / kReduceThreads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 1024 ? 1024 : blocks));
}

}  // namespace tlk::kernels::cuda::detail
