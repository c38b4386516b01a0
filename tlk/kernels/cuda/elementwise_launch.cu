// CUDA elementwise kernels: broadcasting binary ops, unary ops and their derivatives, where, and sums.
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "tlk/kernels/cuda/elementwise_launch.h"
#include "tlk/kernels/cuda/grid_size.h"
#include "tlk/kernels/cuda/numeric.cuh"

namespace tlk::kernels::cuda {

namespace {

constexpr unsigned kThreads = 256;
// Reductions of at most this many elements per output run one thread per output (Note [Parallel sum]).
constexpr std::int64_t kSerialSumMax = 64;
// Blocks a sum aims for: enough to fill every SM of an H100 (132) many times over.
constexpr std::int64_t kSumTargetBlocks = 2048;
// Each chunk of a split reduction reads at least this many elements (8 per thread).
constexpr std::int64_t kMinChunkLength = 8 * kThreads;

// ---- Scalar math ----------------------------------------------------------------------------------

template <class T>
__device__ __forceinline__ T dev_exp(T v) {
  if constexpr (std::is_same_v<T, float>) return expf(v);
  else return exp(v);
}
template <class T>
__device__ __forceinline__ T dev_log(T v) {
  if constexpr (std::is_same_v<T, float>) return logf(v);
  else return log(v);
}
template <class T>
__device__ __forceinline__ T dev_tanh(T v) {
  if constexpr (std::is_same_v<T, float>) return tanhf(v);
  else return tanh(v);
}
template <class T>
__device__ __forceinline__ T dev_sqrt(T v) {
  if constexpr (std::is_same_v<T, float>) return sqrtf(v);
  else return sqrt(v);
}
template <class T>
__device__ __forceinline__ T dev_abs(T v) {
  if constexpr (std::is_same_v<T, float>) return fabsf(v);
  else return fabs(v);
}

template <int OP, class T>
__device__ __forceinline__ T binary_op(T a, T b) {
  if constexpr (OP == kAdd) return a + b;
  else if constexpr (OP == kSub) return a - b;
  else if constexpr (OP == kMul) return a * b;
  else return a / b;
}

// The same formulas as kernels/ref/elementwise.cpp (apply_unary, unary_derivative).
template <int OP, class T>
__device__ __forceinline__ T unary_op(T x, T alpha) {
  if constexpr (OP == kRelu) return x > T(0) ? x : T(0);
  else if constexpr (OP == kLeakyRelu) return x > T(0) ? x : alpha * x;
  else if constexpr (OP == kSigmoid)
    return x >= T(0) ? T(1) / (T(1) + dev_exp(-x)) : dev_exp(x) / (T(1) + dev_exp(x));
  else if constexpr (OP == kTanh) return dev_tanh(x);
  else if constexpr (OP == kExp) return dev_exp(x);
  else if constexpr (OP == kLog) return dev_log(x);
  else if constexpr (OP == kNeg) return -x;
  else if constexpr (OP == kAbs) return dev_abs(x);
  else if constexpr (OP == kSqrt) return dev_sqrt(x);
  else return x * x;
}

template <int OP, class T>
__device__ __forceinline__ T unary_derivative(T x, T y, T alpha) {
  if constexpr (OP == kRelu) return x > T(0) ? T(1) : T(0);
  else if constexpr (OP == kLeakyRelu) return x > T(0) ? T(1) : alpha;
  else if constexpr (OP == kSigmoid) return y * (T(1) - y);
  else if constexpr (OP == kTanh) return T(1) - y * y;
  else if constexpr (OP == kExp) return y;
  else if constexpr (OP == kLog) return T(1) / x;
  else if constexpr (OP == kNeg) return T(-1);
  else if constexpr (OP == kAbs) return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
  else if constexpr (OP == kSqrt) return T(0.5) / y;
  else return T(2) * x;
}

// Which saved tensor the derivative reads (ref's unary_reads_input; neg reads neither).
__host__ __device__ constexpr bool reads_x(int op) { return op == kRelu || op == kLeakyRelu || op == kLog || op == kAbs || op == kSquare; }
__host__ __device__ constexpr bool reads_y(int op) { return op == kSigmoid || op == kTanh || op == kExp || op == kSqrt; }

// ---- Broadcasting binary ops --------------------------------------------------------------------------

template <class I>
struct BinaryIndex {
  int ndim;
  I shape[kMaxLaunchDims], a[kMaxLaunchDims], b[kMaxLaunchDims];
};

template <class T, int OP, class I>
__global__ void binary_kernel(T* out, const T* a, const T* b, BinaryIndex<I> g, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    I rem = static_cast<I>(i), oa = 0, ob = 0;
    for (int d = g.ndim - 1; d > 0; --d) {
      const I idx = rem % g.shape[d];
      rem /= g.shape[d];
      oa += idx * g.a[d];
      ob += idx * g.b[d];
    }
    if (g.ndim > 0) {
      oa += rem * g.a[0];
      ob += rem * g.b[0];
    }
    out[i] = store<T>(binary_op<OP>(load(a[oa]), load(b[ob])));
  }
}

template <class I>
BinaryIndex<I> binary_index(const BroadcastGeometry& g) {
  BinaryIndex<I> r{};
  r.ndim = g.ndim;
  for (int d = 0; d < g.ndim; ++d) {
    r.shape[d] = static_cast<I>(g.shape[d]);
    r.a[d] = static_cast<I>(g.a_strides[d]);
    r.b[d] = static_cast<I>(g.b_strides[d]);
  }
  return r;
}

template <class T, int OP>
void binary_with(T* out, const T* a, const T* b, const BroadcastGeometry& g, cudaStream_t stream) {
  constexpr std::int64_t limit = std::int64_t{1} << 30;
  std::int64_t n = 1, amax = 0, bmax = 0;
  for (int d = 0; d < g.ndim; ++d) {
    n *= g.shape[d];
    amax += (g.shape[d] - 1) * g.a_strides[d];
    bmax += (g.shape[d] - 1) * g.b_strides[d];
  }
  if (n == 0) return;
  if (n < limit && amax < limit && bmax < limit)
    binary_kernel<T, OP, std::int32_t><<<blocks_for(n), kThreads, 0, stream>>>(out, a, b, binary_index<std::int32_t>(g), n);
  else
    binary_kernel<T, OP, std::int64_t><<<blocks_for(n), kThreads, 0, stream>>>(out, a, b, binary_index<std::int64_t>(g), n);
}

template <class T, int OP>
__global__ void binary_scalar_kernel(T* out, const T* a, std::int64_t n, double scalar, bool scalar_first) {
  using C = compute_t<T>;
  const C s = static_cast<C>(scalar);
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    out[i] = store<T>(scalar_first ? binary_op<OP>(s, load(a[i])) : binary_op<OP>(load(a[i]), s));
}

// ---- Unary ops ----------------------------------------------------------------------------------------

template <class T, int OP>
__global__ void unary_kernel(T* out, const T* x, std::int64_t n, double alpha_in) {
  using C = compute_t<T>;
  const C alpha = static_cast<C>(alpha_in);
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    out[i] = store<T>(unary_op<OP>(load(x[i]), alpha));
}

template <class T, int OP>
__global__ void unary_backward_kernel(T* out, const T* grad, const T* x, const T* y, std::int64_t n,
                                      double alpha_in) {
  using C = compute_t<T>;
  const C alpha = static_cast<C>(alpha_in);
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const C xv = reads_x(OP) ? load(x[i]) : C(0);
    const C yv = reads_y(OP) ? load(y[i]) : C(0);
    out[i] = store<T>(load(grad[i]) * unary_derivative<OP>(xv, yv, alpha));
  }
}

template <class T, int OP>
void unary_with(T* out, const T* x, std::int64_t n, double alpha, cudaStream_t stream) {
  unary_kernel<T, OP><<<blocks_for(n), kThreads, 0, stream>>>(out, x, n, alpha);
}

template <class T, int OP>
void unary_backward_with(T* out, const T* grad, const T* x, const T* y, std::int64_t n, double alpha,
                         cudaStream_t stream) {
  unary_backward_kernel<T, OP><<<blocks_for(n), kThreads, 0, stream>>>(out, grad, x, y, n, alpha);
}

// Calls fn(std::integral_constant<int, OP>{}) for the unary op code `op` (nothing for an unknown code;
// elementwise.cpp only passes valid ones).
template <class Fn>
void visit_unary(int op, Fn&& fn) {
  switch (op) {
    case kRelu: return fn(std::integral_constant<int, kRelu>{});
    case kLeakyRelu: return fn(std::integral_constant<int, kLeakyRelu>{});
    case kSigmoid: return fn(std::integral_constant<int, kSigmoid>{});
    case kTanh: return fn(std::integral_constant<int, kTanh>{});
    case kExp: return fn(std::integral_constant<int, kExp>{});
    case kLog: return fn(std::integral_constant<int, kLog>{});
    case kNeg: return fn(std::integral_constant<int, kNeg>{});
    case kAbs: return fn(std::integral_constant<int, kAbs>{});
    case kSqrt: return fn(std::integral_constant<int, kSqrt>{});
    case kSquare: return fn(std::integral_constant<int, kSquare>{});
    default: return;
  }
}

template <class Fn>
void visit_binary(int op, Fn&& fn) {
  switch (op) {
    case kAdd: return fn(std::integral_constant<int, kAdd>{});
    case kSub: return fn(std::integral_constant<int, kSub>{});
    case kMul: return fn(std::integral_constant<int, kMul>{});
    case kDiv: return fn(std::integral_constant<int, kDiv>{});
    default: return;
  }
}

// ---- where --------------------------------------------------------------------------------------------

template <class T, class M>
__global__ void where_kernel(T* out, const M* mask, const T* a, const T* b, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    out[i] = mask[i] != M(0) ? a[i] : b[i];
}

// ---- Sums ---------------------------------------------------------------------------------------------
// Note [Parallel sum]: the input is contiguous; the host merges neighbouring dimensions that are both
// kept or both reduced, so most sums have one or two extents on each side. An output whose reduction
// has at most kSerialSumMax elements is summed by one thread (many outputs: a sum over the batch axis).
// Longer reductions get one block of 256 threads per (output, chunk): each thread adds a strided part
// of the chunk in double, then the block adds its threads' values in a shared-memory tree. When few
// outputs cannot fill the GPU (a loss summed to a scalar, a bias gradient), each reduction is split
// into chunks of at least kMinChunkLength elements, summed into `partials`, and a second kernel adds
// each output's partials the same way. No atomics: the result depends only on the shapes.

template <class I>
struct ReduceIndex {
  int kept_ndim, reduced_ndim;
  I kept_shape[kMaxLaunchDims], kept_strides[kMaxLaunchDims];
  I reduced_shape[kMaxLaunchDims], reduced_strides[kMaxLaunchDims];
};

template <class I>
__device__ __forceinline__ I offset_of(I index, int ndim, const I* shape, const I* strides) {
  I off = 0;
  for (int d = ndim - 1; d > 0; --d) {
    off += (index % shape[d]) * strides[d];
    index /= shape[d];
  }
  return ndim > 0 ? off + index * strides[0] : off;
}

template <class T, class I>
__global__ void sum_serial_kernel(T* out, const T* x, ReduceIndex<I> g, std::int64_t outputs, std::int64_t reduced) {
  for (std::int64_t m = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; m < outputs;
       m += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const I base = offset_of(static_cast<I>(m), g.kept_ndim, g.kept_shape, g.kept_strides);
    double acc = 0.0;
    for (I r = 0; r < static_cast<I>(reduced); ++r)
      acc += static_cast<double>(load(x[base + offset_of(r, g.reduced_ndim, g.reduced_shape, g.reduced_strides)]));
    out[m] = store<T>(static_cast<compute_t<T>>(acc));
  }
}

// Adds the `kThreads` values of `shared` (one per thread); the total ends in shared[0].
__device__ __forceinline__ void block_tree_sum(double* shared) {
  for (unsigned s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
    __syncthreads();
  }
}

template <class T, class I>
__global__ void sum_block_kernel(T* out, const T* x, ReduceIndex<I> g, std::int64_t outputs, std::int64_t reduced,
                                 std::int64_t chunk_length, double* partials) {
  __shared__ double shared[kThreads];
  const std::int64_t chunk = blockIdx.y, chunks = gridDim.y;
  const I begin = static_cast<I>(chunk * chunk_length);
  const I end = static_cast<I>(reduced < (chunk + 1) * chunk_length ? reduced : (chunk + 1) * chunk_length);
  for (std::int64_t m = blockIdx.x; m < outputs; m += gridDim.x) {  // uniform across the block
    const I base = offset_of(static_cast<I>(m), g.kept_ndim, g.kept_shape, g.kept_strides);
    double acc = 0.0;
    for (I r = begin + static_cast<I>(threadIdx.x); r < end; r += static_cast<I>(kThreads))
      acc += static_cast<double>(load(x[base + offset_of(r, g.reduced_ndim, g.reduced_shape, g.reduced_strides)]));
    shared[threadIdx.x] = acc;
    __syncthreads();
    block_tree_sum(shared);
    if (threadIdx.x == 0) {
      if (chunks == 1)
        out[m] = store<T>(static_cast<compute_t<T>>(shared[0]));
      else
        partials[m * chunks + chunk] = shared[0];
    }
    __syncthreads();  // shared[0] is read before the next output overwrites it
  }
}

template <class T>
__global__ void sum_partials_kernel(T* out, const double* partials, std::int64_t outputs, std::int64_t chunks) {
  __shared__ double shared[kThreads];
  for (std::int64_t m = blockIdx.x; m < outputs; m += gridDim.x) {
    double acc = 0.0;
    for (std::int64_t k = threadIdx.x; k < chunks; k += kThreads) acc += partials[m * chunks + k];
    shared[threadIdx.x] = acc;
    __syncthreads();
    block_tree_sum(shared);
    if (threadIdx.x == 0) out[m] = store<T>(static_cast<compute_t<T>>(shared[0]));
    __syncthreads();
  }
}

template <class I>
ReduceIndex<I> reduce_index(const ReduceGeometry& g) {
  ReduceIndex<I> r{};
  r.kept_ndim = g.kept_ndim;
  r.reduced_ndim = g.reduced_ndim;
  for (int d = 0; d < g.kept_ndim; ++d) {
    r.kept_shape[d] = static_cast<I>(g.kept_shape[d]);
    r.kept_strides[d] = static_cast<I>(g.kept_strides[d]);
  }
  for (int d = 0; d < g.reduced_ndim; ++d) {
    r.reduced_shape[d] = static_cast<I>(g.reduced_shape[d]);
    r.reduced_strides[d] = static_cast<I>(g.reduced_strides[d]);
  }
  return r;
}

template <class T, class I>
void sum_with(T* out, const T* x, const ReduceGeometry& g, double* partials, std::int64_t chunks, cudaStream_t stream) {
  const ReduceIndex<I> index = reduce_index<I>(g);
  if (g.reduced <= kSerialSumMax) {
    sum_serial_kernel<T, I><<<blocks_for(g.outputs), kThreads, 0, stream>>>(out, x, index, g.outputs, g.reduced);
    return;
  }
  const std::int64_t chunk_length = (g.reduced + chunks - 1) / chunks;
  const dim3 grid(static_cast<unsigned>(g.outputs < (1 << 20) ? g.outputs : (1 << 20)), static_cast<unsigned>(chunks));
  sum_block_kernel<T, I><<<grid, kThreads, 0, stream>>>(out, x, index, g.outputs, g.reduced, chunk_length,
                                                        chunks > 1 ? partials : nullptr);
  if (chunks > 1) {
    const unsigned blocks = static_cast<unsigned>(g.outputs < (1 << 20) ? g.outputs : (1 << 20));
    sum_partials_kernel<T><<<blocks, kThreads, 0, stream>>>(out, partials, g.outputs, chunks);
  }
}

}  // namespace

// ---- Launchers ----------------------------------------------------------------------------------------

template <class T>
void launch_binary(T* out, const T* a, const T* b, const BroadcastGeometry& g, int op, cudaStream_t stream) {
  visit_binary(op, [&](auto code) { binary_with<T, decltype(code)::value>(out, a, b, g, stream); });
}

template <class T>
void launch_binary_scalar(T* out, const T* a, std::int64_t n, double s, int op, bool scalar_first,
                          cudaStream_t stream) {
  if (n == 0) return;
  visit_binary(op, [&](auto code) {
    binary_scalar_kernel<T, decltype(code)::value><<<blocks_for(n), kThreads, 0, stream>>>(out, a, n, s, scalar_first);
  });
}

template <class T>
void launch_unary(T* out, const T* x, std::int64_t n, int op, double alpha, cudaStream_t stream) {
  if (n == 0) return;
  visit_unary(op, [&](auto code) { unary_with<T, decltype(code)::value>(out, x, n, alpha, stream); });
}

template <class T>
void launch_unary_backward(T* out, const T* grad, const T* x, const T* y, std::int64_t n, int op, double alpha,
                           cudaStream_t stream) {
  if (n == 0) return;
  visit_unary(op, [&](auto code) { unary_backward_with<T, decltype(code)::value>(out, grad, x, y, n, alpha, stream); });
}

template <class T, class M>
void launch_where(T* out, const M* mask, const T* a, const T* b, std::int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  where_kernel<T, M><<<blocks_for(n), kThreads, 0, stream>>>(out, mask, a, b, n);
}

std::int64_t sum_chunks(const ReduceGeometry& g) {
  if (g.reduced <= kSerialSumMax || g.outputs <= 0) return 1;
  std::int64_t chunks = (kSumTargetBlocks + g.outputs - 1) / g.outputs;
  const std::int64_t most = (g.reduced + kMinChunkLength - 1) / kMinChunkLength;
  if (chunks > most) chunks = most;
  if (chunks > 65535) chunks = 65535;
  return chunks < 1 ? 1 : chunks;
}

template <class T>
void launch_sum(T* out, const T* x, const ReduceGeometry& g, double* partials, std::int64_t chunks,
                cudaStream_t stream) {
  if (g.outputs == 0 || g.reduced == 0) return;  // elementwise.cpp fills an empty reduction with zeros
  if (chunks < 1) chunks = 1;
  if (g.outputs * g.reduced < (std::int64_t{1} << 30))
    sum_with<T, std::int32_t>(out, x, g, partials, chunks, stream);
  else
    sum_with<T, std::int64_t>(out, x, g, partials, chunks, stream);
}

#define TLK_INSTANTIATE_ELEMENTWISE(T)                                                                          \
  template void launch_binary<T>(T*, const T*, const T*, const BroadcastGeometry&, int, cudaStream_t);         \
  template void launch_binary_scalar<T>(T*, const T*, std::int64_t, double, int, bool, cudaStream_t);          \
  template void launch_unary<T>(T*, const T*, std::int64_t, int, double, cudaStream_t);                        \
  template void launch_unary_backward<T>(T*, const T*, const T*, const T*, std::int64_t, int, double,         \
                                         cudaStream_t);                                                        \
  template void launch_sum<T>(T*, const T*, const ReduceGeometry&, double*, std::int64_t, cudaStream_t);
#define TLK_INSTANTIATE_WHERE(T)                                                                                \
  template void launch_where<T, std::uint8_t>(T*, const std::uint8_t*, const T*, const T*, std::int64_t,      \
                                              cudaStream_t);                                                   \
  template void launch_where<T, float>(T*, const float*, const T*, const T*, std::int64_t, cudaStream_t);      \
  template void launch_where<T, double>(T*, const double*, const T*, const T*, std::int64_t, cudaStream_t);

TLK_INSTANTIATE_ELEMENTWISE(float)
TLK_INSTANTIATE_ELEMENTWISE(double)
TLK_INSTANTIATE_ELEMENTWISE(Bf16Bits)
TLK_INSTANTIATE_ELEMENTWISE(F16Bits)
TLK_INSTANTIATE_WHERE(float)
TLK_INSTANTIATE_WHERE(double)

}  // namespace tlk::kernels::cuda
