// Instance and batch normalisation kernels (launchers declared in norm_launch.h).
#include <cuda_runtime.h>

#include <cstdint>

#include "tlk/kernels/cuda/block_sum.cuh"
#include "tlk/kernels/cuda/norm_launch.h"
#include "tlk/kernels/cuda/numeric.cuh"

namespace tlk::kernels::cuda::launch {

namespace {

using detail::block_sum;
using detail::kReduceThreads;

// Note [GPU normalisation statistics]: one group's statistics are reduced by `parts` blocks, each
// over a contiguous slice of the group's elements, and a second kernel adds the parts in order
// (Note [Deterministic GPU sums]). One block per (n, c) alone would leave most of an H100 idle for
// the UNet's shapes (2 x 32 groups of 64^3 elements), so groups are split until about 1024 blocks
// run. Each block accumulates, in double, the sum and the sum of squares of x − K, with K the
// group's first element (a shifted-data variance): var = Σ(x−K)²/M − (Σ(x−K)/M)². Unshifted, the
// double sums would lose relative accuracy (mean/std)² · 1e-16 to cancellation, which for raw
// intensities (CT values around 1000 with a std of a few) starts to show in f32 results; shifting by a
// member of the group keeps (mean − K)/std of order one. Partial sums of shifted data merge by plain
// addition, which keeps the reduction simple and deterministic; Welford's update would need a
// division per element and a weighted merge of (count, mean, M2) triples for the same accuracy.
// Double arithmetic costs nothing noticeable here: the kernels are memory bound on Hopper.
constexpr std::int64_t kWantBlocks = 1024;

struct Parts {
  std::int64_t parts, part_len;
};

Parts parts_of(const NormGroups& g) {
  const std::int64_t per_group = g.size();
  const std::int64_t want = (kWantBlocks + g.count - 1) / g.count;
  const std::int64_t most = (per_group + kReduceThreads * 4 - 1) / (kReduceThreads * 4);
  std::int64_t parts = want < most ? want : most;
  if (parts < 1) parts = 1;
  const std::int64_t part_len = (per_group + parts - 1) / parts;
  return {(per_group + part_len - 1) / part_len, part_len};
}

// The index of group g's first element, whose value shifts the group's sums (Note [GPU normalisation
// statistics]).
__device__ __forceinline__ std::int64_t first_element(const NormGroups& gr, std::int64_t g) {
  return gr.channels_last ? (g / gr.channels) * gr.length * gr.channels + g % gr.channels : g * gr.length;
}

// Note [Channels-last normalisation]: in NDHWC memory the elements of one group (one channel of one
// sample) lie `channels` apart, so the per-group blocks above would use one element of each 32-byte
// sector they read. The channels-last kernels read the input as a [rows, channels] matrix instead: a
// block of kTileColumns x kTileRows threads takes 32 neighbouring channels and a slice of one sample's
// rows; a warp reads 32 neighbouring channels of one voxel (one 128-byte line in f32), each thread
// adds its channel's rows ty, ty + 8, ..., and the eight row sums of a channel are added in ty order
// through shared memory. Their partial sums have the plain kernels' layout (part k of group g at
// g * parts + k), so the same finish kernels combine them in the same fixed order.
constexpr int kTileColumns = 32, kTileRows = 8;

struct ColumnParts {
  std::int64_t parts, part_len, tiles, batches;
};

ColumnParts column_parts_of(std::int64_t batches, std::int64_t length, std::int64_t channels) {
  const std::int64_t tiles = (channels + kTileColumns - 1) / kTileColumns;
  if (length < 1 || batches < 1 || tiles < 1) return {1, 1, tiles, batches};
  const std::int64_t want = (kWantBlocks + batches * tiles - 1) / (batches * tiles);
  const std::int64_t most = (length + kTileRows * 16 - 1) / (kTileRows * 16);
  std::int64_t parts = want < most ? want : most;
  if (parts < 1) parts = 1;
  const std::int64_t part_len = (length + parts - 1) / parts;
  return {(length + part_len - 1) / part_len, part_len, tiles, batches};
}

ColumnParts column_parts_of(const NormGroups& g) { return column_parts_of(g.count / g.channels, g.length, g.channels); }

dim3 column_grid(const ColumnParts& p) {
  return dim3(static_cast<unsigned>(p.tiles * p.parts), static_cast<unsigned>(p.batches > 65535 ? 65535 : p.batches));
}

dim3 column_block() { return dim3(kTileColumns, kTileRows); }

// Adds each column's K values over the block's kTileRows row threads, in row order; the totals are
// valid in the threads of row 0. Every thread of the block must call it (it synchronises).
template <int K>
__device__ void column_sum(double (&acc)[K]) {
  __shared__ double sums[K][kTileRows][kTileColumns];
  for (int k = 0; k < K; ++k) sums[k][threadIdx.y][threadIdx.x] = acc[k];
  __syncthreads();
  if (threadIdx.y == 0)
    for (int k = 0; k < K; ++k) {
      double total = 0.0;
      for (int r = 0; r < kTileRows; ++r) total += sums[k][r][threadIdx.x];
      acc[k] = total;
    }
  __syncthreads();  // sums may be reused by the next batch of the loop
}

// The loop of a channels-last reduction block: blockIdx.x = tile * parts + part, blockIdx.y walks
// the samples. For each sample b, a thread of channel c calls start(b, c), then add(element index,
// acc) for its rows, and the row-0 threads get the channel's totals in done(b, c, part, acc).
template <int K, class Start, class Add, class Done>
__device__ void for_column_parts(std::int64_t channels, std::int64_t length, const ColumnParts& p, Start&& start,
                                 Add&& add, Done&& done) {
  const std::int64_t tile = blockIdx.x / p.parts, part = blockIdx.x % p.parts;
  const std::int64_t c = tile * kTileColumns + threadIdx.x;
  const std::int64_t begin = part * p.part_len;
  const std::int64_t end = begin + p.part_len < length ? begin + p.part_len : length;
  for (std::int64_t b = blockIdx.y; b < p.batches; b += gridDim.y) {  // uniform across the block
    double acc[K] = {};
    if (c < channels) {
      start(b, c);
      for (std::int64_t r = begin + threadIdx.y; r < end; r += kTileRows) add((b * length + r) * channels + c, acc);
    }
    column_sum<K>(acc);
    if (threadIdx.y == 0 && c < channels) done(b, c, part, acc);
  }
}

// Calls fn(element index) for group g's elements k in [begin, end) (k counts along the group's
// runs), spreading them over the block's threads. Long runs are walked piece by piece (one division
// per run); short runs (batch norm of [N, C]) divide per element.
template <class Fn>
__device__ void for_group_range(const NormGroups& gr, std::int64_t g, std::int64_t begin, std::int64_t end, Fn&& fn) {
  if (gr.length >= blockDim.x) {
    std::int64_t k = begin;
    while (k < end) {
      const std::int64_t s = k / gr.length, off = k - s * gr.length;
      const std::int64_t piece = (end - k) < (gr.length - off) ? (end - k) : (gr.length - off);
      const std::int64_t base = g * gr.length + s * gr.seg_stride + off;
      for (std::int64_t i = threadIdx.x; i < piece; i += blockDim.x) fn(base + i);
      k += piece;
    }
  } else {
    for (std::int64_t k = begin + threadIdx.x; k < end; k += blockDim.x) {
      const std::int64_t s = k / gr.length, off = k - s * gr.length;
      fn(g * gr.length + s * gr.seg_stride + off);
    }
  }
}

// Block b reduces part b % parts of group b / parts: {Σ(x − K), Σ(x − K)²} into partial[2b..2b+1].
template <class T>
__global__ void stats_partial_kernel(const T* x, NormGroups gr, Parts p, double* partial) {
  const std::int64_t g = blockIdx.x / p.parts, part = blockIdx.x % p.parts;
  const std::int64_t begin = part * p.part_len;
  const std::int64_t size = gr.segments * gr.length;
  const std::int64_t end = begin + p.part_len < size ? begin + p.part_len : size;
  const double shift = static_cast<double>(load(x[g * gr.length]));
  double acc[2] = {0.0, 0.0};
  for_group_range(gr, g, begin, end, [&](std::int64_t i) {
    const double d = static_cast<double>(load(x[i])) - shift;
    acc[0] += d;
    acc[1] += d * d;
  });
  block_sum<2>(acc);
  if (threadIdx.x == 0) {
    partial[2 * blockIdx.x] = acc[0];
    partial[2 * blockIdx.x + 1] = acc[1];
  }
}

// The channels-last stats_partial_kernel (Note [Channels-last normalisation]).
template <class T>
__global__ void stats_partial_channels_last_kernel(const T* x, NormGroups gr, ColumnParts p, double* partial) {
  double shift = 0.0;
  for_column_parts<2>(
      gr.channels, gr.length, p,
      [&](std::int64_t b, std::int64_t c) { shift = static_cast<double>(load(x[first_element(gr, b * gr.channels + c)])); },
      [&](std::int64_t i, double(&acc)[2]) {
        const double d = static_cast<double>(load(x[i])) - shift;
        acc[0] += d;
        acc[1] += d * d;
      },
      [&](std::int64_t b, std::int64_t c, std::int64_t part, const double(&acc)[2]) {
        const std::int64_t g = b * gr.channels + c;
        partial[2 * (g * p.parts + part)] = acc[0];
        partial[2 * (g * p.parts + part) + 1] = acc[1];
      });
}

// One thread per group: adds the parts, writes the statistics, the affine map and (batch norm in
// training) the running statistics (the reference's Note [Running statistics]).
template <class T, class P>
__global__ void stats_finish_kernel(const T* x, NormGroups gr, Parts p, const double* partial, double eps, const P* w,
                                    const P* b, P* mean, P* inv_std, double* scale_shift, P* running_mean,
                                    P* running_var, double momentum) {
  for (std::int64_t g = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; g < gr.count;
       g += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    double s1 = 0.0, s2 = 0.0;
    for (std::int64_t k = 0; k < p.parts; ++k) {
      s1 += partial[2 * (g * p.parts + k)];
      s2 += partial[2 * (g * p.parts + k) + 1];
    }
    const double m = static_cast<double>(gr.segments * gr.length);
    const double d = s1 / m;
    double var = s2 / m - d * d;
    if (var < 0.0) var = 0.0;
    const double mu = static_cast<double>(load(x[first_element(gr, g)])) + d;
    const double r = 1.0 / sqrt(var + eps);
    mean[g] = static_cast<P>(mu);
    inv_std[g] = static_cast<P>(r);
    const std::int64_t c = g % gr.channels;
    const double scale = r * (w ? static_cast<double>(w[c]) : 1.0);
    scale_shift[3 * g] = scale;
    scale_shift[3 * g + 1] = mu;
    scale_shift[3 * g + 2] = b ? static_cast<double>(b[c]) : 0.0;
    if (running_mean) {
      const double k = momentum;
      running_mean[g] = static_cast<P>((1.0 - k) * static_cast<double>(running_mean[g]) + k * mu);
      running_var[g] = static_cast<P>((1.0 - k) * static_cast<double>(running_var[g]) + k * var * m / (m - 1.0));
    }
  }
}

template <class T>
__global__ void stats_from_running_kernel(const T* rm, const T* rv, std::int64_t channels, double eps, const T* w,
                                          const T* b, T* mean, T* inv_std, double* scale_shift) {
  for (std::int64_t c = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; c < channels;
       c += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const double mu = static_cast<double>(rm[c]);
    const double r = 1.0 / sqrt(static_cast<double>(rv[c]) + eps);
    mean[c] = static_cast<T>(mu);
    inv_std[c] = static_cast<T>(r);
    const double scale = r * (w ? static_cast<double>(w[c]) : 1.0);
    scale_shift[3 * c] = scale;
    scale_shift[3 * c + 1] = mu;
    scale_shift[3 * c + 2] = b ? static_cast<double>(b[c]) : 0.0;
  }
}

// Elementwise maps over the [rows, length] grid of a normalisation: op(row, element index).
// Long rows: blockIdx.y walks rows (so the group is found once per row), x spans the row. Short
// rows: one flat grid-stride loop with a division per element.
template <class Op>
__global__ void rows_kernel(std::int64_t rows, std::int64_t length, Op op) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t r = blockIdx.y; r < rows; r += gridDim.y)
    for (std::int64_t k = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; k < length; k += stride)
      op(r, r * length + k);
}

template <class Op>
__global__ void flat_kernel(std::int64_t rows, std::int64_t length, Op op) {
  const std::int64_t n = rows * length, stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride)
    op(i / length, i);
}

template <class Op>
cudaError_t launch_rows(std::int64_t rows, std::int64_t length, const Op& op, cudaStream_t stream) {
  if (rows * length == 0) return cudaSuccess;
  constexpr unsigned threads = 256;
  if (length >= threads) {
    const std::int64_t bx = (length + threads * 4 - 1) / (threads * 4);
    const dim3 grid(static_cast<unsigned>(bx > 1024 ? 1024 : bx), static_cast<unsigned>(rows > 65535 ? 65535 : rows));
    rows_kernel<<<grid, threads, 0, stream>>>(rows, length, op);
  } else {
    const std::int64_t blocks = (rows * length + threads - 1) / threads;
    flat_kernel<<<static_cast<unsigned>(blocks > 65535 * 8 ? 65535 * 8 : blocks), threads, 0, stream>>>(rows, length,
                                                                                                        op);
  }
  return cudaGetLastError();
}

// The elementwise maps over a channels-last input: element i belongs to group
// (i / (length · channels)) · channels + i % channels. 32-bit indices where they suffice (the two
// divisions per element are then cheap).
template <class I, class Op>
__global__ void channels_last_kernel(I n, I channels, I per_sample, Op op) {
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    op.element(static_cast<std::int64_t>((i / per_sample) * channels + i % channels), static_cast<std::int64_t>(i));
}

template <class Op>
cudaError_t launch_groups(const NormGroups& gr, const Op& op, cudaStream_t stream) {
  if (!gr.channels_last) return launch_rows(gr.count * gr.segments, gr.length, op, stream);
  const std::int64_t per_sample = gr.length * gr.channels, n = (gr.count / gr.channels) * per_sample;
  if (n == 0) return cudaSuccess;
  constexpr unsigned threads = 256;
  const std::int64_t blocks = (n + threads - 1) / threads;
  const unsigned grid = static_cast<unsigned>(blocks > 65535 * 8 ? 65535 * 8 : blocks);
  if (n < (std::int64_t{1} << 31))
    channels_last_kernel<std::uint32_t><<<grid, threads, 0, stream>>>(
        static_cast<std::uint32_t>(n), static_cast<std::uint32_t>(gr.channels), static_cast<std::uint32_t>(per_sample),
        op);
  else
    channels_last_kernel<std::int64_t><<<grid, threads, 0, stream>>>(n, gr.channels, per_sample, op);
  return cudaGetLastError();
}

// Note [GPU norm + leaky ReLU]: with `activate`, the leaky ReLU is applied as the normalised value
// is written, and the backward takes the activation's derivative from the sign of that output
// (slope >= 0 keeps the sign of the pre-activation, and 0 maps to 0, whose derivative is the slope
// as in the reference), so the pre-activation is never stored: one pass over the volume less each
// way, as the CPU's Note [Instance norm + leaky ReLU fusion].
__device__ __forceinline__ double leaky(double v, bool activate, double slope) {
  return activate && !(v > 0.0) ? v * slope : v;
}

template <class T>
struct ApplyOp {
  const T* x;
  T* y;
  const double* scale_shift;
  std::int64_t count;
  bool activate;
  double slope;
  __device__ void operator()(std::int64_t row, std::int64_t i) const { element(row % count, i); }
  __device__ void element(std::int64_t g, std::int64_t i) const {
    // Note [Centre before scaling]: (x − μ)·s + b, not x·s + (b − μ·s): the latter cancels two terms
    // of size |μ·s| and keeps their rounding (a group of one voxel would not come out as exactly b).
    const double* m = scale_shift + 3 * g;
    const double v = (static_cast<double>(load(x[i])) - m[1]) * m[0] + m[2];
    y[i] = store<T>(static_cast<compute_t<T>>(leaky(v, activate, slope)));
  }
};

// The gradient at the normalisation's output: g, or g times the leaky ReLU's derivative read from
// the fused output `act` (Note [GPU norm + leaky ReLU]).
template <class T>
__device__ __forceinline__ double grad_at(const T* grad, const T* act, double slope, std::int64_t i) {
  const double g = static_cast<double>(load(grad[i]));
  return act && !(static_cast<double>(load(act[i])) > 0.0) ? g * slope : g;
}

// Block b reduces part b % parts of group b / parts of the backward: {Σ g, Σ g·x̂}.
template <class T, class P>
__global__ void grad_partial_kernel(const T* grad, const T* x, NormGroups gr, Parts p, const P* mean, const P* inv_std,
                                    const T* act, double slope, double* partial) {
  const std::int64_t g = blockIdx.x / p.parts, part = blockIdx.x % p.parts;
  const std::int64_t begin = part * p.part_len;
  const std::int64_t size = gr.segments * gr.length;
  const std::int64_t end = begin + p.part_len < size ? begin + p.part_len : size;
  const double mu = static_cast<double>(mean[g]), r = static_cast<double>(inv_std[g]);
  double acc[2] = {0.0, 0.0};
  for_group_range(gr, g, begin, end, [&](std::int64_t i) {
    const double gi = grad_at(grad, act, slope, i);
    acc[0] += gi;
    acc[1] += gi * (static_cast<double>(load(x[i])) - mu) * r;
  });
  block_sum<2>(acc);
  if (threadIdx.x == 0) {
    partial[2 * blockIdx.x] = acc[0];
    partial[2 * blockIdx.x + 1] = acc[1];
  }
}

// The channels-last grad_partial_kernel (Note [Channels-last normalisation]).
template <class T, class P>
__global__ void grad_partial_channels_last_kernel(const T* grad, const T* x, NormGroups gr, ColumnParts p,
                                                  const P* mean, const P* inv_std, const T* act, double slope,
                                                  double* partial) {
  double mu = 0.0, r = 0.0;
  for_column_parts<2>(
      gr.channels, gr.length, p,
      [&](std::int64_t b, std::int64_t c) {
        mu = static_cast<double>(mean[b * gr.channels + c]);
        r = static_cast<double>(inv_std[b * gr.channels + c]);
      },
      [&](std::int64_t i, double(&acc)[2]) {
        const double gi = grad_at(grad, act, slope, i);
        acc[0] += gi;
        acc[1] += gi * (static_cast<double>(load(x[i])) - mu) * r;
      },
      [&](std::int64_t b, std::int64_t c, std::int64_t part, const double(&acc)[2]) {
        const std::int64_t g = b * gr.channels + c;
        partial[2 * (g * p.parts + part)] = acc[0];
        partial[2 * (g * p.parts + part) + 1] = acc[1];
      });
}

// One thread per group: coef[5g..5g+4] = {μ, σ⁻¹, γσ⁻¹, Σg, Σg·x̂}.
template <class P>
__global__ void grad_finish_kernel(NormGroups gr, Parts p, const double* partial, const P* w, const P* mean,
                                   const P* inv_std, double* coef) {
  for (std::int64_t g = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; g < gr.count;
       g += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    double sg = 0.0, sgx = 0.0;
    for (std::int64_t k = 0; k < p.parts; ++k) {
      sg += partial[2 * (g * p.parts + k)];
      sgx += partial[2 * (g * p.parts + k) + 1];
    }
    const double r = static_cast<double>(inv_std[g]);
    coef[5 * g] = static_cast<double>(mean[g]);
    coef[5 * g + 1] = r;
    coef[5 * g + 2] = (w ? static_cast<double>(w[g % gr.channels]) : 1.0) * r;
    coef[5 * g + 3] = sg;
    coef[5 * g + 4] = sgx;
  }
}

// One thread per channel: dγ = Σ Σg·x̂ and dβ = Σ Σg over the channel's groups, in group order.
template <class P>
__global__ void channel_grads_kernel(NormGroups gr, const double* coef, P* dw, P* db) {
  for (std::int64_t c = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; c < gr.channels;
       c += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    double acc_w = 0.0, acc_b = 0.0;
    for (std::int64_t g = c; g < gr.count; g += gr.channels) {
      acc_w += coef[5 * g + 4];
      acc_b += coef[5 * g + 3];
    }
    dw[c] = static_cast<P>(acc_w);
    db[c] = static_cast<P>(acc_b);
  }
}

template <class T>
struct GradInputOp {
  const T *grad, *x;
  T* dx;
  const double* coef;
  std::int64_t count;
  double m;
  bool stats_from_input;
  const T* act;
  double slope;
  __device__ void operator()(std::int64_t row, std::int64_t i) const { element(row % count, i); }
  __device__ void element(std::int64_t g, std::int64_t i) const {
    const double* c = coef + 5 * g;
    using C = compute_t<T>;
    const double gi = grad_at(grad, act, slope, i);
    if (stats_from_input) {
      const double xhat = (static_cast<double>(load(x[i])) - c[0]) * c[1];
      dx[i] = store<T>(static_cast<C>(c[2] * (gi - c[3] / m - xhat * (c[4] / m))));
    } else {
      dx[i] = store<T>(static_cast<C>(c[2] * gi));
    }
  }
};

unsigned small_grid(std::int64_t n) {
  const std::int64_t blocks = (n + 255) / 256;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 4096 ? 4096 : blocks));
}

// The plain layout's parts, or the channels-last ones (whose finish kernels only read `parts`).
Parts parts_for(const NormGroups& g) {
  if (!g.channels_last) return parts_of(g);
  const ColumnParts c = column_parts_of(g);
  return {c.parts, c.part_len};
}

}  // namespace

std::int64_t norm_parts(const NormGroups& groups) { return parts_for(groups).parts; }

template <class T, class P>
cudaError_t norm_stats(const T* x, const NormGroups& groups, double eps, const P* weight, const P* bias, P* mean,
                       P* inv_std, double* scale_shift, P* running_mean, P* running_var, double momentum,
                       double* partial, cudaStream_t stream) {
  const Parts p = parts_for(groups);
  if (groups.channels_last) {
    const ColumnParts cp = column_parts_of(groups);
    stats_partial_channels_last_kernel<<<column_grid(cp), column_block(), 0, stream>>>(x, groups, cp, partial);
  } else {
    stats_partial_kernel<<<static_cast<unsigned>(groups.count * p.parts), kReduceThreads, 0, stream>>>(x, groups, p,
                                                                                                       partial);
  }
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  stats_finish_kernel<<<small_grid(groups.count), 256, 0, stream>>>(
      x, groups, p, partial, eps, weight, bias, mean, inv_std, scale_shift, running_mean, running_var, momentum);
  return cudaGetLastError();
}

template <class P>
cudaError_t norm_stats_from_running(const P* running_mean, const P* running_var, std::int64_t channels, double eps,
                                    const P* weight, const P* bias, P* mean, P* inv_std, double* scale_shift,
                                    cudaStream_t stream) {
  stats_from_running_kernel<<<small_grid(channels), 256, 0, stream>>>(running_mean, running_var, channels, eps, weight,
                                                                      bias, mean, inv_std, scale_shift);
  return cudaGetLastError();
}

template <class T>
cudaError_t norm_apply(const T* x, const NormGroups& groups, const double* scale_shift, T* y, cudaStream_t stream,
                       const double* leaky_slope) {
  const ApplyOp<T> op{x, y, scale_shift, groups.count, leaky_slope != nullptr, leaky_slope ? *leaky_slope : 0.0};
  return launch_groups(groups, op, stream);
}

template <class T, class P>
cudaError_t norm_backward(const T* grad, const T* x, const NormGroups& groups, const P* weight, const P* mean,
                          const P* inv_std, bool stats_from_input, T* grad_input, P* grad_weight, P* grad_bias,
                          double* partial, double* coef, cudaStream_t stream, const T* activation_output,
                          double leaky_slope) {
  const Parts p = parts_for(groups);
  if (groups.channels_last) {
    const ColumnParts cp = column_parts_of(groups);
    grad_partial_channels_last_kernel<<<column_grid(cp), column_block(), 0, stream>>>(
        grad, x, groups, cp, mean, inv_std, activation_output, leaky_slope, partial);
  } else {
    grad_partial_kernel<<<static_cast<unsigned>(groups.count * p.parts), kReduceThreads, 0, stream>>>(
        grad, x, groups, p, mean, inv_std, activation_output, leaky_slope, partial);
  }
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  grad_finish_kernel<<<small_grid(groups.count), 256, 0, stream>>>(groups, p, partial, weight, mean, inv_std, coef);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  channel_grads_kernel<<<small_grid(groups.channels), 256, 0, stream>>>(groups, coef, grad_weight, grad_bias);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  const GradInputOp<T> op{grad,        x, grad_input, coef, groups.count, static_cast<double>(groups.size()),
                          stats_from_input, activation_output, leaky_slope};
  return launch_groups(groups, op, stream);
}

// Note [Channels-last channel sums]: the bias gradient of a convolution with an NDHWC output is
// the sum of each column of a [rows, channels] matrix: the channels-last reduction of the
// normalisation (Note [Channels-last normalisation]) with one sample, then the parts of each channel
// added in order by one thread.
std::int64_t channel_sum_parts(std::int64_t rows, std::int64_t channels) {
  return column_parts_of(1, rows, channels).parts;
}

namespace {

template <class T>
__global__ void channel_sum_partial_kernel(const T* x, std::int64_t rows, std::int64_t channels, ColumnParts p,
                                           double* partial) {
  for_column_parts<1>(
      channels, rows, p, [](std::int64_t, std::int64_t) {},
      [&](std::int64_t i, double(&acc)[1]) { acc[0] += static_cast<double>(load(x[i])); },
      [&](std::int64_t, std::int64_t c, std::int64_t part, const double(&acc)[1]) {
        partial[c * p.parts + part] = acc[0];
      });
}

template <class T>
__global__ void channel_sum_finish_kernel(const double* partial, std::int64_t channels, std::int64_t parts, T* out) {
  for (std::int64_t c = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; c < channels;
       c += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    double total = 0.0;
    for (std::int64_t k = 0; k < parts; ++k) total += partial[c * parts + k];
    out[c] = store<T>(static_cast<compute_t<T>>(total));
  }
}

}  // namespace

template <class T>
cudaError_t channels_last_channel_sum(const T* x, std::int64_t rows, std::int64_t channels, T* out, double* partial,
                                      cudaStream_t stream) {
  if (channels == 0) return cudaSuccess;
  const ColumnParts p = column_parts_of(1, rows, channels);
  channel_sum_partial_kernel<<<column_grid(p), column_block(), 0, stream>>>(x, rows, channels, p, partial);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  channel_sum_finish_kernel<<<small_grid(channels), 256, 0, stream>>>(partial, channels, p.parts, out);
  return cudaGetLastError();
}

#define TLK_NORM_INSTANTIATE(T, P)                                                                             \
  template cudaError_t norm_stats<T, P>(const T*, const NormGroups&, double, const P*, const P*, P*, P*, double*, P*, \
                                        P*, double, double*, cudaStream_t);                                          \
  template cudaError_t norm_apply<T>(const T*, const NormGroups&, const double*, T*, cudaStream_t, const double*);   \
  template cudaError_t norm_backward<T, P>(const T*, const T*, const NormGroups&, const P*, const P*, const P*, bool,  \
                                           T*, P*, P*, double*, double*, cudaStream_t, const T*, double);
#define TLK_CHANNEL_SUM_INSTANTIATE(T) \
  template cudaError_t channels_last_channel_sum<T>(const T*, std::int64_t, std::int64_t, T*, double*, cudaStream_t);
TLK_CHANNEL_SUM_INSTANTIATE(float)
TLK_CHANNEL_SUM_INSTANTIATE(double)
TLK_CHANNEL_SUM_INSTANTIATE(Bf16Bits)
TLK_CHANNEL_SUM_INSTANTIATE(F16Bits)
#undef TLK_CHANNEL_SUM_INSTANTIATE
TLK_NORM_INSTANTIATE(float, float)
TLK_NORM_INSTANTIATE(double, double)
TLK_NORM_INSTANTIATE(Bf16Bits, float)
TLK_NORM_INSTANTIATE(F16Bits, float)
template cudaError_t norm_stats_from_running<float>(const float*, const float*, std::int64_t, double, const float*,
                                                    const float*, float*, float*, double*, cudaStream_t);
template cudaError_t norm_stats_from_running<double>(const double*, const double*, std::int64_t, double,
                                                     const double*, const double*, double*, double*, double*,
                                                     cudaStream_t);
#undef TLK_NORM_INSTANTIATE

}  // namespace tlk::kernels::cuda::launch
