#pragma once
// Raw-pointer launchers of the CUDA elementwise kernels (Note [CUDA kernel files] in launch.h):
// instantiated for float, double, Bf16Bits and F16Bits (where: float and double), queued on `stream`;
// the caller checks the launch. Scalars come as double and are rounded to the compute type (float
// for the 16-bit types, Note [Half precision on the GPU]).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "tlk/kernels/cuda/half_types.h"

namespace tlk::kernels::cuda {

/// The most dimensions a launch geometry holds (after merging dense neighbours).
inline constexpr int kMaxLaunchDims = 12;

/// Op codes: the values of kernels::ref::BinaryOp and UnaryOp (checked by static_asserts in elementwise.cpp).
enum BinaryCode : int { kAdd = 0, kSub = 1, kMul = 2, kDiv = 3 };
enum UnaryCode : int {
  kRelu = 0,
  kLeakyRelu = 1,
  kSigmoid = 2,
  kTanh = 3,
  kExp = 4,
  kLog = 5,
  kNeg = 6,
  kAbs = 7,
  kSqrt = 8,
  kSquare = 9,
};

/// A contiguous output of extents `shape` whose element at multi-index i reads a[sum i_d * a_strides[d]]
/// and b[sum i_d * b_strides[d]] (stride 0 along broadcast dimensions).
struct BroadcastGeometry {
  int ndim = 0;
  std::int64_t shape[kMaxLaunchDims] = {};
  std::int64_t a_strides[kMaxLaunchDims] = {};
  std::int64_t b_strides[kMaxLaunchDims] = {};
};

/// out = a op b over the geometry `g` (op a BinaryCode).
template <class T>
void launch_binary(T* out, const T* a, const T* b, const BroadcastGeometry& g, int op, cudaStream_t stream);
/// out[i] = a[i] op s, or s op a[i] when `scalar_first`, for i < n.
template <class T>
void launch_binary_scalar(T* out, const T* a, std::int64_t n, double s, int op, bool scalar_first,
                          cudaStream_t stream);
/// out[i] = f(x[i]) for i < n (op a UnaryCode; alpha is leaky_relu's slope).
template <class T>
void launch_unary(T* out, const T* x, std::int64_t n, int op, double alpha, cudaStream_t stream);
/// out[i] = grad[i] * f'(x[i], y[i]); `x` or `y` may be null when the op does not read it.
template <class T>
void launch_unary_backward(T* out, const T* grad, const T* x, const T* y, std::int64_t n, int op, double alpha,
                           cudaStream_t stream);
/// out[i] = mask[i] != 0 ? a[i] : b[i]; M is std::uint8_t, float or double.
template <class T, class M>
void launch_where(T* out, const M* mask, const T* a, const T* b, std::int64_t n, cudaStream_t stream);

/// A sum of a contiguous input over some of its dimensions: output element m (contiguous over the kept
/// dimensions) is the sum over r < reduced of x[kept offset of m + reduced offset of r], each offset
/// found by splitting the index over the listed extents (last fastest) and applying the strides.
struct ReduceGeometry {
  int kept_ndim = 0, reduced_ndim = 0;
  std::int64_t kept_shape[kMaxLaunchDims] = {}, kept_strides[kMaxLaunchDims] = {};
  std::int64_t reduced_shape[kMaxLaunchDims] = {}, reduced_strides[kMaxLaunchDims] = {};
  std::int64_t outputs = 1, reduced = 1;
};

/// How a sum is split: `chunks` pieces of each output's reduction summed by separate blocks into
/// `partials` (outputs * chunks doubles) and then combined, or 1 (no partials needed).
/// Note [Parallel sum]: see elementwise_launch.cu.
std::int64_t sum_chunks(const ReduceGeometry& g);
/// out[m] = sum over the reduced indices, accumulated in double; `partials` holds outputs * chunks
/// doubles when `chunks` (from sum_chunks) is above 1, else may be null.
template <class T>
void launch_sum(T* out, const T* x, const ReduceGeometry& g, double* partials, std::int64_t chunks,
                cudaStream_t stream);

}  // namespace tlk::kernels::cuda
