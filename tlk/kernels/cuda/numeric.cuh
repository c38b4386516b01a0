#pragma once
// Device-side element access for kernels templated over float, double, Bf16Bits and F16Bits
// (Note [Half precision on the GPU] in half_types.h). CUDA code only: include it from .cu files.
//
//   using C = compute_t<T>;          // float for float, bf16 and f16; double for double
//   const C v = load(x[i]);          // widen
//   y[i] = store<T>(f(v));           // round to nearest even, once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "tlk/kernels/cuda/half_types.h"

namespace tlk::kernels::cuda {

template <class T>
struct ComputeType {
  using type = T;
};
template <>
struct ComputeType<Bf16Bits> {
  using type = float;
};
template <>
struct ComputeType<F16Bits> {
  using type = float;
};
/// The type a kernel computes in for elements of type T.
template <class T>
using compute_t = typename ComputeType<T>::type;

__device__ __forceinline__ float load(float v) { return v; }
__device__ __forceinline__ double load(double v) { return v; }
__device__ __forceinline__ float load(Bf16Bits v) {
  __nv_bfloat16_raw raw;
  raw.x = v.bits;
  return __bfloat162float(__nv_bfloat16(raw));
}
__device__ __forceinline__ float load(F16Bits v) {
  __half_raw raw;
  raw.x = v.bits;
  return __half2float(__half(raw));
}

/// `v` as an element of type T (round to nearest even for the 16-bit types).
template <class T>
__device__ __forceinline__ T store(compute_t<T> v) {
  if constexpr (std::is_same_v<T, Bf16Bits>) {
    const __nv_bfloat16_raw raw = __float2bfloat16_rn(v);
    return Bf16Bits{raw.x};
  } else if constexpr (std::is_same_v<T, F16Bits>) {
    const __half_raw raw = __float2half_rn(v);
    return F16Bits{raw.x};
  } else {
    return v;
  }
}

}  // namespace tlk::kernels::cuda
