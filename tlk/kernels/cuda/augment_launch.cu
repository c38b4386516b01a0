// CUDA kernels of the training augmentation: grid-stride loops over voxels around the bodies of
// kernels/augment_voxel.h (Note [Kernel bodies on the host]), and the per-slice reductions that
// contrast and gamma need.
#include <cuda_runtime.h>

#include <cstdint>

#include "tlk/kernels/cuda/augment_launch.h"
#include "tlk/kernels/cuda/grid_size.h"
#include "tlk/kernels/cuda/block_sum.cuh"

namespace tlk::kernels::cuda::launch {

namespace {

constexpr unsigned kThreads = 256;

/// An extent passed by value (a kernel cannot read the caller's host array).
struct Extent {
  std::int64_t v[3];
  std::int64_t volume() const { return v[0] * v[1] * v[2]; }
};
Extent extent_of(const std::int64_t* e) { return {{e[0], e[1], e[2]}}; }

struct BlurTaps {
  float w[kMaxBlurTaps];
  int count;
};

#define TLK_FOR_EACH(i, n)                                                                         \
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)

__global__ void resample_kernel(augment::ResampleBuffers b, augment::ResampleGeometry g) {
  const std::int64_t n = b.out[0] * b.out[1] * b.out[2];
  TLK_FOR_EACH(o, n) { augment::resample_voxel(b, g, o); }
}

template <class T>
__global__ void mirror_kernel(T* dst, const T* src, std::int64_t channels, Extent e, unsigned flip) {
  const std::int64_t volume = e.v[0] * e.v[1] * e.v[2];
  TLK_FOR_EACH(i, channels * volume) {
    const std::int64_t c = i / volume, o = i % volume;
    dst[i] = src[c * volume + augment::mirrored_index(o, e.v, flip)];
  }
}

__global__ void noise_kernel(float* x, std::int64_t n, std::uint64_t seed, double sigma) {
  TLK_FOR_EACH(i, n) { x[i] += augment::noise_value(seed, i, sigma); }
}

__global__ void blur_kernel(float* dst, const float* src, Extent e, int axis, BlurTaps taps) {
  TLK_FOR_EACH(o, e.v[0] * e.v[1] * e.v[2]) { dst[o] = augment::blur_voxel(src, e.v, axis, taps.w, taps.count, o); }
}

__global__ void affine_kernel(float* x, std::int64_t n, float a, float b) {
  TLK_FOR_EACH(i, n) { x[i] = a * x[i] + b; }
}

__global__ void contrast_kernel(float* x, std::int64_t n, float mean, float factor, float lo, float hi, bool clip) {
  TLK_FOR_EACH(i, n) { x[i] = augment::contrast_voxel(x[i], mean, factor, lo, hi, clip); }
}

__global__ void gamma_kernel(float* x, std::int64_t n, float lo, float inv_range, float gamma, float range) {
  TLK_FOR_EACH(i, n) { x[i] = augment::gamma_voxel(x[i], lo, inv_range, gamma, range); }
}

__global__ void low_resolution_down_kernel(float* low, const float* x, Extent e, Extent small) {
  TLK_FOR_EACH(o, small.v[0] * small.v[1] * small.v[2]) {
    low[o] = augment::low_resolution_down_voxel(x, e.v, small.v, o);
  }
}

__global__ void low_resolution_up_kernel(float* x, const float* low, Extent e, Extent small) {
  TLK_FOR_EACH(o, e.v[0] * e.v[1] * e.v[2]) { x[o] = augment::low_resolution_up_voxel(low, small.v, e.v, o); }
}

/// One block per slice: the slice's sum in double (block_sum's fixed order) and its extrema.
__global__ void slice_stats_kernel(const float* x, std::int64_t plane, double* sums, float* mins, float* maxs) {
  __shared__ float lows[kThreads], highs[kThreads];
  const float* s = x + blockIdx.x * plane;
  double sum[1] = {0.0};
  float lo = s[0], hi = s[0];
  for (std::int64_t i = threadIdx.x; i < plane; i += blockDim.x) {
    const float v = s[i];
    sum[0] += static_cast<double>(v);
    lo = v < lo ? v : lo;  // as std::min(lo, v) on the CPU
    hi = hi < v ? v : hi;
  }
  lows[threadIdx.x] = lo;
  highs[threadIdx.x] = hi;
  detail::block_sum<1>(sum);
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) {
      const float l = lows[threadIdx.x + half], h = highs[threadIdx.x + half];
      if (l < lows[threadIdx.x]) lows[threadIdx.x] = l;
      if (highs[threadIdx.x] < h) highs[threadIdx.x] = h;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    sums[blockIdx.x] = sum[0];
    mins[blockIdx.x] = lows[0];
    maxs[blockIdx.x] = highs[0];
  }
}

__global__ void slice_squares_kernel(const float* x, std::int64_t plane, double mean, double* sums) {
  const float* s = x + blockIdx.x * plane;
  double sum[1] = {0.0};
  for (std::int64_t i = threadIdx.x; i < plane; i += blockDim.x) {
    const double d = static_cast<double>(s[i]) - mean;
    sum[0] += d * d;
  }
  detail::block_sum<1>(sum);
  if (threadIdx.x == 0) sums[blockIdx.x] = sum[0];
}

#undef TLK_FOR_EACH

}  // namespace

cudaError_t augment_resample(const augment::ResampleBuffers& b, const augment::ResampleGeometry& g,
                             cudaStream_t stream) {
  resample_kernel<<<blocks_for(b.out[0] * b.out[1] * b.out[2]), kThreads, 0, stream>>>(b, g);
  return cudaGetLastError();
}

cudaError_t augment_mirror(float* dst, const float* src, std::int64_t channels, const std::int64_t* e, unsigned flip,
                           cudaStream_t stream) {
  const Extent ext = extent_of(e);
  mirror_kernel<float><<<blocks_for(channels * ext.volume()), kThreads, 0, stream>>>(dst, src, channels, ext, flip);
  return cudaGetLastError();
}

cudaError_t augment_mirror_labels(std::uint8_t* dst, const std::uint8_t* src, const std::int64_t* e, unsigned flip,
                                  cudaStream_t stream) {
  const Extent ext = extent_of(e);
  mirror_kernel<std::uint8_t><<<blocks_for(ext.volume()), kThreads, 0, stream>>>(dst, src, 1, ext, flip);
  return cudaGetLastError();
}

cudaError_t augment_add_noise(float* x, std::int64_t n, std::uint64_t seed, double sigma, cudaStream_t stream) {
  noise_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, n, seed, sigma);
  return cudaGetLastError();
}

cudaError_t augment_blur_axis(float* dst, const float* src, const std::int64_t* e, int axis, const float* taps,
                              int tap_count, cudaStream_t stream) {
  if (tap_count < 1 || tap_count > kMaxBlurTaps || tap_count % 2 == 0) return cudaErrorInvalidValue;
  BlurTaps t{};
  for (int k = 0; k < tap_count; ++k) t.w[k] = taps[k];
  t.count = tap_count;
  const Extent ext = extent_of(e);
  blur_kernel<<<blocks_for(ext.volume()), kThreads, 0, stream>>>(dst, src, ext, axis, t);
  return cudaGetLastError();
}

cudaError_t augment_affine(float* x, std::int64_t n, float a, float b, cudaStream_t stream) {
  affine_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, n, a, b);
  return cudaGetLastError();
}

cudaError_t augment_contrast(float* x, std::int64_t n, float mean, float factor, float lo, float hi, bool clip,
                             cudaStream_t stream) {
  contrast_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, n, mean, factor, lo, hi, clip);
  return cudaGetLastError();
}

cudaError_t augment_gamma(float* x, std::int64_t n, float lo, float inv_range, float gamma, float range,
                          cudaStream_t stream) {
  gamma_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, n, lo, inv_range, gamma, range);
  return cudaGetLastError();
}

cudaError_t augment_low_resolution_down(float* low, const float* x, const std::int64_t* e, const std::int64_t* small,
                                        cudaStream_t stream) {
  const Extent ext = extent_of(e), sm = extent_of(small);
  low_resolution_down_kernel<<<blocks_for(sm.volume()), kThreads, 0, stream>>>(low, x, ext, sm);
  return cudaGetLastError();
}

cudaError_t augment_low_resolution_up(float* x, const float* low, const std::int64_t* e, const std::int64_t* small,
                                      cudaStream_t stream) {
  const Extent ext = extent_of(e), sm = extent_of(small);
  low_resolution_up_kernel<<<blocks_for(ext.volume()), kThreads, 0, stream>>>(x, low, ext, sm);
  return cudaGetLastError();
}

cudaError_t augment_slice_stats(const float* x, std::int64_t slices, std::int64_t plane, double* sums, float* mins,
                                float* maxs, cudaStream_t stream) {
  slice_stats_kernel<<<static_cast<unsigned>(slices), kThreads, 0, stream>>>(x, plane, sums, mins, maxs);
  return cudaGetLastError();
}

cudaError_t augment_slice_squares(const float* x, std::int64_t slices, std::int64_t plane, double mean, double* sums,
                                  cudaStream_t stream) {
  slice_squares_kernel<<<static_cast<unsigned>(slices), kThreads, 0, stream>>>(x, plane, mean, sums);
  return cudaGetLastError();
}

}  // namespace tlk::kernels::cuda::launch
