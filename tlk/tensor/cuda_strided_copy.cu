// GPU strided copy with dtype conversion, and strided fill: what Tensor::contiguous(), to(DType),
// copy_(), clone(), to(Layout::channels_last) and fill_() do for CUDA tensors.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "tlk/tensor/cuda_runtime.h"

namespace tlk::cuda {

namespace {

constexpr unsigned kThreads = 256;

// Note [Strided copy geometry]: before launching, the dimensions are normalised on the host: extent-1
// dimensions are dropped, the rest are ordered by the destination's stride (largest first, so the
// writes of neighbouring threads are coalesced, e.g. for a channels-last destination), and neighbours
// that are dense relative to each other in both arrays are merged. A contiguous copy thus becomes one
// dimension, and a copy that needs no conversion and is dense on both sides becomes a cudaMemcpyAsync.
// Element offsets use 32-bit arithmetic when every offset and the element count fit (index division is
// the kernel's main cost), else 64-bit.
struct Geometry {
  int ndim = 0;
  std::int64_t shape[kMaxStridedDims];
  std::int64_t dst[kMaxStridedDims];
  std::int64_t src[kMaxStridedDims];
};

template <class I>
struct DeviceGeometry {
  int ndim;
  I shape[kMaxStridedDims];
  I dst[kMaxStridedDims];
  I src[kMaxStridedDims];
};

void check_cuda(cudaError_t status, const char* op, const char* what) {
  if (status == cudaSuccess) return;
  cudaGetLastError();
  fail("{}: {} failed: {} ({})", op, what, cudaGetErrorString(status), cudaGetErrorName(status));
}

// Normalises the geometry (Note [Strided copy geometry]); returns false when there is nothing to copy.
bool normalise(Geometry& g, const std::int64_t* shape, const std::int64_t* dst, const std::int64_t* src, int ndim,
               const char* op) {
  if (ndim < 0 || ndim > kMaxStridedDims) fail("{}: {} dimensions given, at most {} supported", op, ndim, kMaxStridedDims);
  int order[kMaxStridedDims];
  int n = 0;
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] < 0) fail("{}: negative extent {} in dimension {}", op, shape[d], d);
    if (shape[d] == 0) return false;
    if (shape[d] != 1) order[n++] = d;
  }
  const auto abs64 = [](std::int64_t v) { return v < 0 ? -v : v; };
  std::stable_sort(order, order + n, [&](int a, int b) { return abs64(dst[a]) > abs64(dst[b]); });
  g.ndim = 0;
  for (int k = 0; k < n; ++k) {
    const int d = order[k];
    if (g.ndim > 0) {
      const int last = g.ndim - 1;
      // Merge d into the previous (outer) dimension when the outer one steps over exactly one run of d.
      if (g.dst[last] == dst[d] * shape[d] && g.src[last] == src[d] * shape[d]) {
        g.shape[last] *= shape[d];
        g.dst[last] = dst[d];
        g.src[last] = src[d];
        continue;
      }
    }
    g.shape[g.ndim] = shape[d];
    g.dst[g.ndim] = dst[d];
    g.src[g.ndim] = src[d];
    ++g.ndim;
  }
  return true;
}

std::int64_t count_of(const Geometry& g) {
  std::int64_t n = 1;
  for (int d = 0; d < g.ndim; ++d) n *= g.shape[d];
  return n;
}

bool fits_32_bits(const Geometry& g) {
  constexpr std::int64_t limit = std::int64_t{1} << 30;
  std::int64_t n = 1, dmax = 0, smax = 0;
  for (int d = 0; d < g.ndim; ++d) {
    n *= g.shape[d];
    dmax += (g.shape[d] - 1) * (g.dst[d] < 0 ? -g.dst[d] : g.dst[d]);
    smax += (g.shape[d] - 1) * (g.src[d] < 0 ? -g.src[d] : g.src[d]);
  }
  return n < limit && dmax < limit && smax < limit;
}

template <class I>
DeviceGeometry<I> narrow_geometry(const Geometry& g) {
  DeviceGeometry<I> r{};
  r.ndim = g.ndim;
  for (int d = 0; d < g.ndim; ++d) {
    r.shape[d] = static_cast<I>(g.shape[d]);
    r.dst[d] = static_cast<I>(g.dst[d]);
    r.src[d] = static_cast<I>(g.src[d]);
  }
  return r;
}

unsigned blocks_for(std::int64_t n) {
  const std::int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::min<std::int64_t>(std::max<std::int64_t>(blocks, 1), 65535 * 8));
}

// ---- Element conversion ---------------------------------------------------------------------------

// A half-precision value widened to float; every other type is returned as it is.
template <class T>
__device__ __forceinline__ T widen(T v) {
  return v;
}
__device__ __forceinline__ float widen(__half v) { return __half2float(v); }
__device__ __forceinline__ float widen(__nv_bfloat16 v) { return __bfloat162float(v); }

// static_cast<D>(s), with round-to-nearest conversions into and out of the half-precision types.
template <class D, class S>
__device__ __forceinline__ D convert(S s) {
  if constexpr (std::is_same_v<D, S>) {
    return s;
  } else {
    const auto w = widen(s);  // float, double or an integer
    using W = decltype(w);
    if constexpr (std::is_same_v<D, __half>) {
      if constexpr (std::is_same_v<W, float>)
        return __float2half_rn(w);
      else
        return __double2half(static_cast<double>(w));
    } else if constexpr (std::is_same_v<D, __nv_bfloat16>) {
      if constexpr (std::is_same_v<W, float>)
        return __float2bfloat16_rn(w);
      else
        return __double2bfloat16(static_cast<double>(w));
    } else {
      return static_cast<D>(w);
    }
  }
}

// ---- Kernels --------------------------------------------------------------------------------------

template <class D, class S, class I>
__global__ void copy_kernel(D* dst, const S* src, DeviceGeometry<I> g, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    I rem = static_cast<I>(i), doff = 0, soff = 0;
    for (int d = g.ndim - 1; d > 0; --d) {
      const I idx = rem % g.shape[d];
      rem /= g.shape[d];
      doff += idx * g.dst[d];
      soff += idx * g.src[d];
    }
    if (g.ndim > 0) {
      doff += rem * g.dst[0];
      soff += rem * g.src[0];
    }
    dst[doff] = convert<D>(src[soff]);
  }
}

template <class D, class I>
__global__ void fill_kernel(D* dst, DeviceGeometry<I> g, std::int64_t n, double value) {
  const D v = convert<D>(value);
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    I rem = static_cast<I>(i), doff = 0;
    for (int d = g.ndim - 1; d > 0; --d) {
      doff += (rem % g.shape[d]) * g.dst[d];
      rem /= g.shape[d];
    }
    if (g.ndim > 0) doff += rem * g.dst[0];
    dst[doff] = v;
  }
}

// ---- Dispatch -------------------------------------------------------------------------------------

template <class T>
struct Tag {
  using type = T;
};

template <class Fn>
void visit_dtype(DType t, const char* op, Fn&& fn) {
  switch (t) {
    case DType::f32:
      return fn(Tag<float>{});
    case DType::f64:
      return fn(Tag<double>{});
    case DType::bf16:
      return fn(Tag<__nv_bfloat16>{});
    case DType::f16:
      return fn(Tag<__half>{});
    case DType::i64:
      return fn(Tag<std::int64_t>{});
    case DType::i32:
      return fn(Tag<std::int32_t>{});
    case DType::u8:
      return fn(Tag<std::uint8_t>{});
  }
  fail("{}: unknown dtype code {}", op, static_cast<int>(t));
}

void select_device(int device_index, const char* op) { check_cuda(cudaSetDevice(device_index), op, "cudaSetDevice"); }

}  // namespace

void copy_strided(const StridedDeviceArray& dst, const StridedDeviceArray& src, const std::int64_t* shape, int ndim,
                  int device_index) {
  const char* op = "CUDA strided copy";
  Geometry g;
  if (!normalise(g, shape, dst.strides, src.strides, ndim, op)) return;
  select_device(device_index, op);
  const std::int64_t n = count_of(g);
  const bool dense = g.ndim == 0 || (g.ndim == 1 && g.dst[0] == 1 && g.src[0] == 1);
  if (dense && dst.dtype == src.dtype) {
    if (dst.data == src.data) return;
    check_cuda(cudaMemcpyAsync(dst.data, src.data, static_cast<std::size_t>(n) * element_size(dst.dtype),
                               cudaMemcpyDeviceToDevice, cudaStreamLegacy),
               op, "cudaMemcpyAsync");
    return;
  }
  const bool small = fits_32_bits(g);
  visit_dtype(dst.dtype, op, [&](auto dtag) {
    using D = typename decltype(dtag)::type;
    visit_dtype(src.dtype, op, [&](auto stag) {
      using S = typename decltype(stag)::type;
      D* d = static_cast<D*>(dst.data);
      const S* s = static_cast<const S*>(src.data);
      if (small)
        copy_kernel<D, S, std::int32_t><<<blocks_for(n), kThreads, 0, cudaStreamLegacy>>>(
            d, s, narrow_geometry<std::int32_t>(g), n);
      else
        copy_kernel<D, S, std::int64_t><<<blocks_for(n), kThreads, 0, cudaStreamLegacy>>>(
            d, s, narrow_geometry<std::int64_t>(g), n);
    });
  });
  check_cuda(cudaGetLastError(), op, "kernel launch");
}

void fill_strided(const StridedDeviceArray& dst, const std::int64_t* shape, int ndim, double value, int device_index) {
  const char* op = "CUDA strided fill";
  Geometry g;
  if (!normalise(g, shape, dst.strides, dst.strides, ndim, op)) return;
  select_device(device_index, op);
  const std::int64_t n = count_of(g);
  const bool small = fits_32_bits(g);
  visit_dtype(dst.dtype, op, [&](auto tag) {
    using D = typename decltype(tag)::type;
    D* d = static_cast<D*>(dst.data);
    if (small)
      fill_kernel<D, std::int32_t><<<blocks_for(n), kThreads, 0, cudaStreamLegacy>>>(
          d, narrow_geometry<std::int32_t>(g), n, value);
    else
      fill_kernel<D, std::int64_t><<<blocks_for(n), kThreads, 0, cudaStreamLegacy>>>(
          d, narrow_geometry<std::int64_t>(g), n, value);
  });
  check_cuda(cudaGetLastError(), op, "kernel launch");
}

}  // namespace tlk::cuda
