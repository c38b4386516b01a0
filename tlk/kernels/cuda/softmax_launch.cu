// Softmax and log-softmax kernels (launchers declared in softmax_launch.h).
#include <cuda_runtime.h>

#include <cstdint>

#include "tlk/kernels/cuda/softmax_launch.h"
#include "tlk/kernels/cuda/grid_size.h"

namespace tlk::kernels::cuda::launch {

namespace {

// Note [GPU softmax layouts]: the UNet takes softmax over dim 1 of [N, C, D, H, W] with C of 2..16,
// so a line is C values `inner` (the spatial volume) apart. One thread per line, looping over C,
// makes neighbouring threads read neighbouring voxels: every access of a warp is coalesced, and the
// three passes over a line (max, sum, write) re-read it from L1. A softmax over the last axis
// (inner == 1, e.g. classifier logits [N, classes]) would make that loop stride by C across the warp;
// there, with many classes, one warp takes a line instead and its lanes split the classes. As in the
// reference (Note [Stable softmax]) the maximum is subtracted first and everything is in double.

constexpr unsigned kThreads = 256;

__device__ inline std::int64_t line_start(std::int64_t p, std::int64_t channels, std::int64_t inner) {
  const std::int64_t o = p / inner;
  return o * channels * inner + (p - o * inner);
}

template <class T>
__global__ void forward_lines_kernel(const T* x, T* y, std::int64_t outer, std::int64_t channels, std::int64_t inner,
                                     bool log) {
  const std::int64_t lines = outer * inner, stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t p = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; p < lines; p += stride) {
    const std::int64_t s = line_start(p, channels, inner);
    double m = -INFINITY;
    for (std::int64_t c = 0; c < channels; ++c) {
      const double v = static_cast<double>(x[s + c * inner]);
      if (m < v) m = v;  // as std::max(m, v): a NaN is skipped here and propagates through the sum
    }
    double sum = 0.0;
    for (std::int64_t c = 0; c < channels; ++c) sum += exp(static_cast<double>(x[s + c * inner]) - m);
    const double log_sum = ::log(sum);
    for (std::int64_t c = 0; c < channels; ++c) {
      const double shifted = static_cast<double>(x[s + c * inner]) - m;
      y[s + c * inner] = static_cast<T>(log ? shifted - log_sum : exp(shifted) / sum);
    }
  }
}

template <class T>
__global__ void backward_lines_kernel(const T* g, const T* y, T* dx, std::int64_t outer, std::int64_t channels,
                                      std::int64_t inner, bool log) {
  const std::int64_t lines = outer * inner, stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t p = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; p < lines; p += stride) {
    const std::int64_t s = line_start(p, channels, inner);
    double acc = 0.0;  // Σ g·y for softmax, Σ g for log_softmax
    for (std::int64_t c = 0; c < channels; ++c) {
      const std::int64_t i = s + c * inner;
      acc += log ? static_cast<double>(g[i]) : static_cast<double>(g[i]) * static_cast<double>(y[i]);
    }
    for (std::int64_t c = 0; c < channels; ++c) {
      const std::int64_t i = s + c * inner;
      const double gi = static_cast<double>(g[i]), yi = static_cast<double>(y[i]);
      dx[i] = static_cast<T>(log ? gi - exp(yi) * acc : yi * (gi - acc));
    }
  }
}

__device__ inline double warp_sum(double v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ inline double warp_max(double v) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    const double o = __shfl_xor_sync(0xffffffffu, v, offset);
    if (v < o) v = o;
  }
  return v;
}

// inner == 1: warp w of the grid takes lines w, w + warps, ...; its lanes split the channels.
template <class T>
__global__ void forward_rows_kernel(const T* x, T* y, std::int64_t rows, std::int64_t channels, bool log) {
  const int lane = threadIdx.x & 31;
  const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * (blockDim.x >> 5);
  for (std::int64_t r = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) >> 5; r < rows; r += warps) {
    const T* xr = x + r * channels;
    double m = -INFINITY;
    for (std::int64_t c = lane; c < channels; c += 32) {
      const double v = static_cast<double>(xr[c]);
      if (m < v) m = v;
    }
    m = warp_max(m);
    double sum = 0.0;
    for (std::int64_t c = lane; c < channels; c += 32) sum += exp(static_cast<double>(xr[c]) - m);
    sum = warp_sum(sum);
    const double log_sum = ::log(sum);
    for (std::int64_t c = lane; c < channels; c += 32) {
      const double shifted = static_cast<double>(xr[c]) - m;
      y[r * channels + c] = static_cast<T>(log ? shifted - log_sum : exp(shifted) / sum);
    }
  }
}

template <class T>
__global__ void backward_rows_kernel(const T* g, const T* y, T* dx, std::int64_t rows, std::int64_t channels,
                                     bool log) {
  const int lane = threadIdx.x & 31;
  const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * (blockDim.x >> 5);
  for (std::int64_t r = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) >> 5; r < rows; r += warps) {
    const std::int64_t base = r * channels;
    double acc = 0.0;
    for (std::int64_t c = lane; c < channels; c += 32) {
      const std::int64_t i = base + c;
      acc += log ? static_cast<double>(g[i]) : static_cast<double>(g[i]) * static_cast<double>(y[i]);
    }
    acc = warp_sum(acc);
    for (std::int64_t c = lane; c < channels; c += 32) {
      const std::int64_t i = base + c;
      const double gi = static_cast<double>(g[i]), yi = static_cast<double>(y[i]);
      dx[i] = static_cast<T>(log ? gi - exp(yi) * acc : yi * (gi - acc));
    }
  }
}

// The warp-per-line kernels pay off once a line has enough values for the lanes to share.
bool use_rows(std::int64_t channels, std::int64_t inner) { return inner == 1 && channels >= 64; }

}  // namespace

template <class T>
cudaError_t softmax_forward(const T* x, T* y, std::int64_t outer, std::int64_t channels, std::int64_t inner, bool log,
                            cudaStream_t stream) {
  if (outer * channels * inner == 0) return cudaSuccess;
  if (use_rows(channels, inner))
    forward_rows_kernel<<<blocks_for(outer * 32), kThreads, 0, stream>>>(x, y, outer, channels, log);
  else
    forward_lines_kernel<<<blocks_for(outer * inner), kThreads, 0, stream>>>(x, y, outer, channels, inner, log);
  return cudaGetLastError();
}

template <class T>
cudaError_t softmax_backward(const T* grad, const T* y, T* dx, std::int64_t outer, std::int64_t channels,
                             std::int64_t inner, bool log, cudaStream_t stream) {
  if (outer * channels * inner == 0) return cudaSuccess;
  if (use_rows(channels, inner))
    backward_rows_kernel<<<blocks_for(outer * 32), kThreads, 0, stream>>>(grad, y, dx, outer, channels, log);
  else
    backward_lines_kernel<<<blocks_for(outer * inner), kThreads, 0, stream>>>(grad, y, dx, outer, channels, inner, log);
  return cudaGetLastError();
}

#define TLK_SOFTMAX_INSTANTIATE(T)                                                                                     \
  template cudaError_t softmax_forward<T>(const T*, T*, std::int64_t, std::int64_t, std::int64_t, bool, cudaStream_t); \
  template cudaError_t softmax_backward<T>(const T*, const T*, T*, std::int64_t, std::int64_t, std::int64_t, bool,     \
                                           cudaStream_t);
TLK_SOFTMAX_INSTANTIATE(float)
TLK_SOFTMAX_INSTANTIATE(double)
#undef TLK_SOFTMAX_INSTANTIATE

}  // namespace tlk::kernels::cuda::launch
