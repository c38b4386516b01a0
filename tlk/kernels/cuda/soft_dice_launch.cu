// Soft Dice kernels (launchers declared in losses_launch.h), nnUNet's form as the reference's Note
// [nnUNet soft Dice] (kernels/ref/soft_dice.cpp).
#include <cuda_runtime.h>

#include <cstdint>

#include "tlk/kernels/cuda/block_sum.cuh"
#include "tlk/kernels/cuda/loss_reduce.cuh"
#include "tlk/kernels/cuda/losses_launch.h"

namespace tlk::kernels::cuda::launch {

namespace {

using detail::block_sum;
using detail::kReduceThreads;
using detail::position_base;
using detail::ref_max;

// Note [GPU soft Dice]: the forward needs, per sample (or batch) and class, tp = Σ p·y, fp and fn.
// Since 2tp + fp + fn = Σ p + Σ y, the kernels sum {Σ p·y, Σ p, Σ y} per row (n, c) of the
// probabilities, which the softmax kernel has written as [N, C, S]: each row is a contiguous run of
// S values, read coalesced by `parts` blocks (about 1024 blocks in all, as the normalisation
// statistics), whose partial sums are added in order. The backward recomputes p per voxel from the
// logits in double, so its per-voxel arithmetic is the reference's.
constexpr double kMinDenominator = 1e-8;  // nnUNet's clamp of the Dice denominator

struct RowParts {
  std::int64_t parts, part_len;
};

RowParts row_parts(const LossLayout& l) {
  const std::int64_t rows = l.outer * l.channels, s = l.inner;
  const std::int64_t want = (1024 + rows - 1) / rows, most = (s + 1023) / 1024;
  std::int64_t parts = want < most ? want : most;
  if (parts < 1) parts = 1;
  const std::int64_t part_len = (s + parts - 1) / parts;
  return {part_len == 0 ? 1 : (s + part_len - 1) / part_len, part_len};
}

template <class T, class L>
__global__ void dice_partial_kernel(const T* p, const L* labels, const T* onehot, LossLayout l, RowParts rp,
                                    unsigned long long* bad, double* partial) {
  const std::int64_t r = blockIdx.x / rp.parts, part = blockIdx.x % rp.parts;
  const std::int64_t n = r / l.channels, c = r % l.channels, S = l.inner;
  const std::int64_t begin = part * rp.part_len, end = begin + rp.part_len < S ? begin + rp.part_len : S;
  double acc[3] = {0.0, 0.0, 0.0};
  for (std::int64_t s = begin + threadIdx.x; s < end; s += blockDim.x) {
    const double pv = static_cast<double>(p[r * S + s]);
    double y;
    if (labels) {
      const std::int64_t label = static_cast<std::int64_t>(labels[n * S + s]);
      if (c == 0 && (label < 0 || label >= l.channels)) atomicMin(bad, static_cast<unsigned long long>(n * S + s));
      y = label == c ? 1.0 : 0.0;
    } else {
      y = static_cast<double>(onehot[r * S + s]);
    }
    acc[0] += pv * y;
    acc[1] += pv;
    acc[2] += y;
  }
  block_sum<3>(acc);
  if (threadIdx.x == 0)
    for (int k = 0; k < 3; ++k) partial[3 * blockIdx.x + k] = acc[k];
}

__global__ void dice_rows_kernel(std::int64_t rows, RowParts rp, const double* partial, double* row_sums) {
  for (std::int64_t r = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; r < rows;
       r += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    double acc[3] = {0.0, 0.0, 0.0};
    for (std::int64_t k = 0; k < rp.parts; ++k)
      for (int j = 0; j < 3; ++j) acc[j] += partial[3 * (r * rp.parts + k) + j];
    for (int j = 0; j < 3; ++j) row_sums[3 * r + j] = acc[j];
  }
}

// One thread: the Dice of every group and class, then the loss (grad null) or the coefficients.
template <class T>
__global__ void dice_finish_kernel(const double* row_sums, DiceSpec spec, const T* grad, T* loss, double* coef) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  const std::int64_t C = spec.layout.channels, first = spec.do_background ? 0 : 1,
                     G = spec.batch_dice ? 1 : spec.layout.outer;
  const double terms = static_cast<double>(G * (C - first));
  const double scale = grad ? -static_cast<double>(grad[0]) / terms : 0.0;
  double sum = 0.0;
  for (std::int64_t g = 0; g < G; ++g) {
    for (std::int64_t c = 0; c < C; ++c) {
      double tp = 0.0, sp = 0.0, sy = 0.0;
      const std::int64_t n_begin = spec.batch_dice ? 0 : g, n_end = spec.batch_dice ? spec.layout.outer : g + 1;
      for (std::int64_t n = n_begin; n < n_end; ++n) {
        const double* rs = row_sums + 3 * (n * C + c);
        tp += rs[0];
        sp += rs[1];
        sy += rs[2];
      }
      const double num = 2.0 * tp + spec.smooth, raw_den = sp + sy + spec.smooth;
      const bool clamped = !(raw_den >= kMinDenominator);
      const double den = ref_max(raw_den, kMinDenominator);
      const std::int64_t k = g * C + c;
      if (c >= first) sum += num / den;
      if (coef) {
        coef[2 * k] = c >= first ? scale * 2.0 / den : 0.0;
        coef[2 * k + 1] = (c >= first && !clamped) ? -scale * num / (den * den) : 0.0;
      }
    }
  }
  if (loss) loss[0] = static_cast<T>(-sum / terms);
}

template <class T, class L>
struct DiceGrad {
  const T* x;
  const L* labels;
  const T* onehot;
  DiceSpec spec;
  const double* coef;
  T* dx;
  __device__ double prob(std::int64_t i, double lse) const {
    return spec.apply_softmax ? exp(static_cast<double>(x[i]) - lse) : static_cast<double>(x[i]);
  }
  __device__ double target(std::int64_t pos, std::int64_t i, std::int64_t c) const {
    return labels ? (static_cast<std::int64_t>(labels[pos]) == c ? 1.0 : 0.0) : static_cast<double>(onehot[i]);
  }
  __device__ void operator()(std::int64_t pos) const {
    const LossLayout& l = spec.layout;
    const std::int64_t base = position_base(l, pos), C = l.channels;
    const double* k = coef + 2 * (spec.batch_dice ? 0 : pos / l.inner) * C;
    const double lse = spec.apply_softmax ? detail::log_sum_exp(x + base, l.inner, C, 1.0) : 0.0;
    double dot = 0.0;
    for (std::int64_t c = 0; c < C; ++c) {
      const std::int64_t i = base + c * l.inner;
      dot += prob(i, lse) * (k[2 * c] * target(pos, i, c) + k[2 * c + 1]);
    }
    // Softmax backward: dx_c = p_c·(dL/dp_c − Σ_k p_k·dL/dp_k).
    for (std::int64_t c = 0; c < C; ++c) {
      const std::int64_t i = base + c * l.inner;
      const double gp = k[2 * c] * target(pos, i, c) + k[2 * c + 1];
      dx[i] = static_cast<T>(spec.apply_softmax ? prob(i, lse) * (gp - dot) : gp);
    }
  }
};

}  // namespace

std::int64_t soft_dice_scratch(LossLayout layout) {
  return 3 * layout.outer * layout.channels * row_parts(layout).parts;
}

template <class T, class L>
cudaError_t soft_dice_sums(const T* p, const L* labels, const T* onehot, LossLayout layout, double* row_sums,
                           unsigned long long* bad, double* partial, cudaStream_t stream) {
  const std::int64_t rows = layout.outer * layout.channels;
  if (rows == 0) return cudaSuccess;
  const RowParts rp = row_parts(layout);
  dice_partial_kernel<<<static_cast<unsigned>(rows * rp.parts), kReduceThreads, 0, stream>>>(p, labels, onehot, layout,
                                                                                             rp, bad, partial);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  const std::int64_t blocks = (rows + 255) / 256;
  dice_rows_kernel<<<static_cast<unsigned>(blocks > 4096 ? 4096 : blocks), 256, 0, stream>>>(rows, rp, partial,
                                                                                             row_sums);
  return cudaGetLastError();
}

template <class T>
cudaError_t soft_dice_finish(const double* row_sums, const DiceSpec& spec, const T* grad, T* loss, double* coef,
                             cudaStream_t stream) {
  dice_finish_kernel<T><<<1, 32, 0, stream>>>(row_sums, spec, grad, loss, coef);
  return cudaGetLastError();
}

template <class T, class L>
cudaError_t soft_dice_backward(const T* x, const L* labels, const T* onehot, const DiceSpec& spec, const double* coef,
                               T* dx, cudaStream_t stream) {
  return detail::each(spec.layout.positions(), DiceGrad<T, L>{x, labels, onehot, spec, coef, dx}, stream);
}

#define TLK_DICE_INSTANTIATE_L(T, L)                                                                                \
  template cudaError_t soft_dice_sums<T, L>(const T*, const L*, const T*, LossLayout, double*, unsigned long long*, \
                                            double*, cudaStream_t);                                                 \
  template cudaError_t soft_dice_backward<T, L>(const T*, const L*, const T*, const DiceSpec&, const double*, T*,   \
                                                cudaStream_t);
#define TLK_DICE_INSTANTIATE(T)           \
  TLK_DICE_INSTANTIATE_L(T, std::int64_t) \
  TLK_DICE_INSTANTIATE_L(T, std::int32_t) \
  TLK_DICE_INSTANTIATE_L(T, std::uint8_t) \
  template cudaError_t soft_dice_finish<T>(const double*, const DiceSpec&, const T*, T*, double*, cudaStream_t);
TLK_DICE_INSTANTIATE(float)
TLK_DICE_INSTANTIATE(double)
#undef TLK_DICE_INSTANTIATE
#undef TLK_DICE_INSTANTIATE_L

}  // namespace tlk::kernels::cuda::launch
