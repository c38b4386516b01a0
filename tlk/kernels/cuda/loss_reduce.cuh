#pragma once
// Device-side building blocks of the loss kernels (losses_launch.cu, soft_dice_launch.cu): a sum over
// n items finished by one block, an elementwise map, and the position arithmetic of LossLayout.
#include <cuda_runtime.h>

#include <cstdint>

#include "tlk/kernels/cuda/block_sum.cuh"
#include "tlk/kernels/cuda/losses_launch.h"

namespace tlk::kernels::cuda::detail {

/// The index of channel 0 of position p (see LossLayout).
__device__ inline std::int64_t position_base(const launch::LossLayout& l, std::int64_t p) {
  const std::int64_t o = p / l.inner;
  return o * l.channels * l.inner + (p - o * l.inner);
}

/// std::max(a, b) exactly: (a < b) ? b : a, so a NaN `a` propagates (fmax would drop it).
__device__ inline double ref_max(double a, double b) { return a < b ? b : a; }

/// Block b adds term(i, acc) over its grid-stride share of [0, n) and writes partial[b * K + k].
template <int K, class Term>
__global__ void sum_kernel(std::int64_t n, Term term, double* partial) {
  double acc[K];
  for (int k = 0; k < K; ++k) acc[k] = 0.0;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride)
    term(i, acc);
  block_sum<K>(acc);
  if (threadIdx.x == 0)
    for (int k = 0; k < K; ++k) partial[blockIdx.x * K + k] = acc[k];
}

/// One block adds the partials in order and calls finish(totals) in thread 0.
template <int K, class Finish>
__global__ void finish_kernel(const double* partial, std::int64_t blocks, Finish finish) {
  double total[K];
  sum_partials<K>(partial, blocks, total);
  if (threadIdx.x == 0) finish(total);
}

/// The deterministic sum of term over [0, n) (Note [Deterministic GPU sums]), handed to `finish` on
/// the device. `partial` holds K * 1024 doubles (launch::kLossScratch covers K <= 4).
template <int K, class Term, class Finish>
cudaError_t reduce(std::int64_t n, const Term& term, const Finish& finish, double* partial, cudaStream_t stream) {
  static_assert(K * 1024 <= launch::kLossScratch, "kLossScratch is too small for this reduction");
  const unsigned blocks = reduce_blocks(n);
  sum_kernel<K><<<blocks, kReduceThreads, 0, stream>>>(n, term, partial);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  finish_kernel<K><<<1, kReduceThreads, 0, stream>>>(partial, static_cast<std::int64_t>(blocks), finish);
  return cudaGetLastError();
}

template <class Op>
__global__ void each_kernel(std::int64_t n, Op op) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride) op(i);
}

/// op(i) for every i in [0, n), grid-stride.
template <class Op>
cudaError_t each(std::int64_t n, const Op& op, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const std::int64_t blocks = (n + 255) / 256;
  each_kernel<<<static_cast<unsigned>(blocks > 65535 * 8 ? 65535 * 8 : blocks), 256, 0, stream>>>(n, op);
  return cudaGetLastError();
}

}  // namespace tlk::kernels::cuda::detail
