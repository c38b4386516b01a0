// 3D max and average pooling kernels (see pool3d_launch.h). One thread per output element in the
// forward passes and per input element in the average backward (a gather: each input reads the
// windows that contain it), grid-stride loops over int64 element indices.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "tlk/kernels/cuda/pool3d_launch.h"
#include "tlk/kernels/cuda/grid_size.h"

namespace tlk::kernels::cuda {

namespace {

using i64 = std::int64_t;

constexpr unsigned kThreads = 256;

__device__ inline i64 grid_start() { return blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; }
__device__ inline i64 grid_step() { return static_cast<i64>(gridDim.x) * blockDim.x; }

// The input positions [lo, hi) output position o reads along one axis, and the window length counting
// padded positions (the divisor with count_include_pad). Mirrors pool_spans / adaptive_spans in
// kernels/ref/pool3d.cpp.
struct Span {
  i64 lo, hi, padded;
};

__device__ inline Span span_of(const PoolAxis& a, i64 o, bool adaptive) {
  if (adaptive) {
    const i64 lo = o * a.in / a.out, hi = ((o + 1) * a.in + a.out - 1) / a.out;
    return {lo, hi, hi - lo};
  }
  const i64 start = o * a.stride - a.padding;
  const i64 end = min(start + a.kernel, a.in + a.padding);
  return {max(start, i64{0}), min(end, a.in), end - start};
}

// The outputs [first, last) whose window may contain input position x along one axis (each is then
// checked against span_of). Regular: start <= x < start + kernel. Adaptive: o in
// [floor(x * out / in), ceil((x + 1) * out / in)).
__device__ inline void outputs_reading(const PoolAxis& a, i64 x, bool adaptive, i64& first, i64& last) {
  if (adaptive) {
    first = x * a.out / a.in;
    last = min(a.out, ((x + 1) * a.out + a.in - 1) / a.in);
    return;
  }
  const i64 num = x + a.padding - a.kernel + 1;
  first = num <= 0 ? 0 : (num + a.stride - 1) / a.stride;
  last = min(a.out, (x + a.padding) / a.stride + 1);
}

__device__ inline double divisor(const Span& sd, const Span& sh, const Span& sw, bool include_pad) {
  return include_pad ? static_cast<double>(sd.padded * sh.padded * sw.padded)
                     : static_cast<double>((sd.hi - sd.lo) * (sh.hi - sh.lo) * (sw.hi - sw.lo));
}

template <class T>
__global__ void max_forward_kernel(const T* __restrict__ x, T* __restrict__ y, i64* __restrict__ indices,
                                   PoolGeometry g) {
  const PoolAxis &ad = g.axis[0], &ah = g.axis[1], &aw = g.axis[2];
  const i64 out_volume = ad.out * ah.out * aw.out, in_volume = ad.in * ah.in * aw.in;
  const i64 total = g.planes * out_volume;
  for (i64 i = grid_start(); i < total; i += grid_step()) {
    const i64 p = i / out_volume;
    i64 r = i - p * out_volume;
    const i64 ow = r % aw.out;
    r /= aw.out;
    const i64 oh = r % ah.out, od = r / ah.out;
    const Span sd = span_of(ad, od, false), sh = span_of(ah, oh, false), sw = span_of(aw, ow, false);
    const T* xs = x + p * in_volume;
    // Note [Max pooling ties and NaN] (ref/pool3d.cpp): start from -inf at the window's first input,
    // replace on a strictly larger value or a NaN, so the first maximum wins and NaN propagates.
    T best = static_cast<T>(-INFINITY);
    i64 best_index = (sd.lo * ah.in + sh.lo) * aw.in + sw.lo;
    for (i64 d = sd.lo; d < sd.hi; ++d)
      for (i64 h = sh.lo; h < sh.hi; ++h)
        for (i64 w = sw.lo; w < sw.hi; ++w) {
          const i64 k = (d * ah.in + h) * aw.in + w;
          const T v = xs[k];
          if (v > best || isnan(v)) {
            best = v;
            best_index = k;
          }
        }
    y[i] = best;
    indices[i] = best_index;
  }
}

template <class T>
__global__ void max_backward_kernel(const T* __restrict__ dy, const i64* __restrict__ indices, T* __restrict__ dx,
                                    i64 planes, i64 in_volume, i64 out_volume) {
  const i64 total = planes * out_volume;
  for (i64 i = grid_start(); i < total; i += grid_step()) {
    const i64 k = indices[i];
    if (k < 0 || k >= in_volume) continue;
    atomicAdd(dx + (i / out_volume) * in_volume + k, dy[i]);
  }
}

template <class T>
__global__ void avg_forward_kernel(const T* __restrict__ x, T* __restrict__ y, PoolGeometry g) {
  const PoolAxis &ad = g.axis[0], &ah = g.axis[1], &aw = g.axis[2];
  const i64 out_volume = ad.out * ah.out * aw.out, in_volume = ad.in * ah.in * aw.in;
  const i64 total = g.planes * out_volume;
  const bool include_pad = g.count_include_pad && !g.adaptive;
  for (i64 i = grid_start(); i < total; i += grid_step()) {
    const i64 p = i / out_volume;
    i64 r = i - p * out_volume;
    const i64 ow = r % aw.out;
    r /= aw.out;
    const i64 oh = r % ah.out, od = r / ah.out;
    const Span sd = span_of(ad, od, g.adaptive), sh = span_of(ah, oh, g.adaptive), sw = span_of(aw, ow, g.adaptive);
    const T* xs = x + p * in_volume;
    double acc = 0.0;
    for (i64 d = sd.lo; d < sd.hi; ++d)
      for (i64 h = sh.lo; h < sh.hi; ++h)
        for (i64 w = sw.lo; w < sw.hi; ++w) acc += static_cast<double>(xs[(d * ah.in + h) * aw.in + w]);
    y[i] = static_cast<T>(acc / divisor(sd, sh, sw, include_pad));
  }
}

template <class T>
__global__ void avg_backward_kernel(const T* __restrict__ dy, T* __restrict__ dx, PoolGeometry g) {
  const PoolAxis &ad = g.axis[0], &ah = g.axis[1], &aw = g.axis[2];
  const i64 out_volume = ad.out * ah.out * aw.out, in_volume = ad.in * ah.in * aw.in;
  const i64 total = g.planes * in_volume;
  const bool include_pad = g.count_include_pad && !g.adaptive;
  for (i64 i = grid_start(); i < total; i += grid_step()) {
    const i64 p = i / in_volume;
    i64 r = i - p * in_volume;
    const i64 xw = r % aw.in;
    r /= aw.in;
    const i64 xh = r % ah.in, xd = r / ah.in;
    i64 d0, d1, h0, h1, w0, w1;
    outputs_reading(ad, xd, g.adaptive, d0, d1);
    outputs_reading(ah, xh, g.adaptive, h0, h1);
    outputs_reading(aw, xw, g.adaptive, w0, w1);
    const T* dys = dy + p * out_volume;
    double acc = 0.0;
    for (i64 od = d0; od < d1; ++od) {
      const Span sd = span_of(ad, od, g.adaptive);
      if (xd < sd.lo || xd >= sd.hi) continue;
      for (i64 oh = h0; oh < h1; ++oh) {
        const Span sh = span_of(ah, oh, g.adaptive);
        if (xh < sh.lo || xh >= sh.hi) continue;
        for (i64 ow = w0; ow < w1; ++ow) {
          const Span sw = span_of(aw, ow, g.adaptive);
          if (xw < sw.lo || xw >= sw.hi) continue;
          acc += static_cast<double>(dys[(od * ah.out + oh) * aw.out + ow]) / divisor(sd, sh, sw, include_pad);
        }
      }
    }
    dx[i] = static_cast<T>(acc);
  }
}

i64 out_volume(const PoolGeometry& g) { return g.axis[0].out * g.axis[1].out * g.axis[2].out; }
i64 in_volume(const PoolGeometry& g) { return g.axis[0].in * g.axis[1].in * g.axis[2].in; }

}  // namespace

template <class T>
void max_pool3d_forward_launch(const T* x, T* y, std::int64_t* indices, const PoolGeometry& g, cudaStream_t stream) {
  const i64 n = g.planes * out_volume(g);
  if (n <= 0) return;
  max_forward_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(x, y, indices, g);
}

template <class T>
void max_pool3d_backward_launch(const T* dy, const std::int64_t* indices, T* dx, std::int64_t planes,
                                std::int64_t in_volume, std::int64_t out_volume, cudaStream_t stream) {
  const i64 n = planes * out_volume;
  if (n <= 0) return;
  max_backward_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(dy, indices, dx, planes, in_volume, out_volume);
}

template <class T>
void avg_pool3d_forward_launch(const T* x, T* y, const PoolGeometry& g, cudaStream_t stream) {
  const i64 n = g.planes * out_volume(g);
  if (n <= 0) return;
  avg_forward_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(x, y, g);
}

template <class T>
void avg_pool3d_backward_launch(const T* dy, T* dx, const PoolGeometry& g, cudaStream_t stream) {
  const i64 n = g.planes * in_volume(g);
  if (n <= 0) return;
  avg_backward_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(dy, dx, g);
}

#define TLK_POOL3D_INSTANTIATE(T)                                                                                  \
  template void max_pool3d_forward_launch<T>(const T*, T*, std::int64_t*, const PoolGeometry&, cudaStream_t);      \
  template void max_pool3d_backward_launch<T>(const T*, const std::int64_t*, T*, std::int64_t, std::int64_t,      \
                                              std::int64_t, cudaStream_t);                                         \
  template void avg_pool3d_forward_launch<T>(const T*, T*, const PoolGeometry&, cudaStream_t);                     \
  template void avg_pool3d_backward_launch<T>(const T*, T*, const PoolGeometry&, cudaStream_t);
TLK_POOL3D_INSTANTIATE(float)
TLK_POOL3D_INSTANTIATE(double)
#undef TLK_POOL3D_INSTANTIATE

}  // namespace tlk::kernels::cuda
