#pragma once
// Raw-pointer launchers of the loss kernels (losses_launch.cu: cross entropy, BCE on logits, the
// distillation KL, MSE; soft_dice_launch.cu: soft Dice); the Tensor API is losses.h. Forwards write
// the loss (a 0-D T) on the device, so no launcher waits for the GPU; backwards read the scalar
// gradient `grad` from device memory too. T is float or double; L (class labels) is std::int64_t,
// std::int32_t or std::uint8_t. Each launcher returns the first launch error (cudaSuccess if none).
#include <cuda_runtime_api.h>

#include <cstdint>

namespace tlk::kernels::cuda::launch {

/// A contiguous [N, C, ...spatial] tensor as [outer = N, channels = C, inner = spatial volume]; a
/// position p in [0, outer * inner) is one (sample, voxel) pair and its channel c lies at
/// (p / inner) * channels * inner + p % inner + c * inner.
struct LossLayout {
  std::int64_t outer = 0, channels = 0, inner = 0;
  std::int64_t positions() const { return outer * inner; }
};

/// Doubles of the `partial` scratch every forward (and cross_entropy_weight_total) needs.
constexpr std::int64_t kLossScratch = 4 * 1024;

/// Invalid labels (outside [0, C) and not the ignore index) are recorded in `bad`, which must hold
/// all ones before the launch: it ends as the smallest bad position (atomicMin). Such positions
/// are skipped by the sums; the caller checks `bad` and throws.
template <class T, class L>
cudaError_t cross_entropy_forward(const T* x, const L* target, const T* weight, LossLayout layout,
                                  std::int64_t ignore_index, T* loss, unsigned long long* bad, double* partial,
                                  cudaStream_t stream);
/// Σ w[t] over the positions not ignored, into the device double `total` (checks labels as above).
template <class T, class L>
cudaError_t cross_entropy_weight_total(const L* target, const T* weight, LossLayout layout, std::int64_t ignore_index,
                                       double* total, unsigned long long* bad, double* partial, cudaStream_t stream);
/// dx = g · w[t] / total · (softmax(x) − onehot(t)), zero at ignored (and invalid) positions.
template <class T, class L>
cudaError_t cross_entropy_backward(const T* grad, const T* x, const L* target, const T* weight, LossLayout layout,
                                   std::int64_t ignore_index, const double* total, T* dx, cudaStream_t stream);

/// pos_weight (or null) of element i is pos_weight[(i / pw_inner) % pw_channels].
template <class T>
cudaError_t bce_with_logits_forward(const T* x, const T* y, const T* pos_weight, std::int64_t n,
                                    std::int64_t pw_channels, std::int64_t pw_inner, T* loss, double* partial,
                                    cudaStream_t stream);
/// Writes the gradients whose pointers are not null.
template <class T>
cudaError_t bce_with_logits_backward(const T* grad, const T* x, const T* y, const T* pos_weight, std::int64_t n,
                                     std::int64_t pw_channels, std::int64_t pw_inner, T* grad_x, T* grad_y,
                                     cudaStream_t stream);

/// The distillation KL; `weights` (one double per position on the GPU) or null for the plain mean.
template <class T>
cudaError_t kl_div_forward(const T* student, const T* teacher, const double* weights, LossLayout layout,
                           double temperature, T* loss, double* partial, cudaStream_t stream);
/// Its gradient; `weight_total` is the position count, or the sum of `weights` (> 0).
template <class T>
cudaError_t kl_div_backward(const T* grad, const T* student, const T* teacher, const double* weights,
                            double weight_total, LossLayout layout, double temperature, T* dx, cudaStream_t stream);

template <class T>
cudaError_t mse_forward(const T* a, const T* b, std::int64_t n, T* loss, double* partial, cudaStream_t stream);
template <class T>
cudaError_t mse_backward(const T* grad, const T* a, const T* b, std::int64_t n, T* dx, cudaStream_t stream);

// ---- soft Dice (soft_dice_launch.cu) -------------------------------------------------------------

/// The options of one soft Dice evaluation (SoftDiceOptions plus the layout).
struct DiceSpec {
  LossLayout layout;
  bool batch_dice = false, do_background = false, apply_softmax = true;
  double smooth = 1e-5;
  std::int64_t groups() const { return batch_dice ? 1 : layout.outer; }
};

/// Doubles of scratch soft_dice_sums needs for `partial`.
std::int64_t soft_dice_scratch(LossLayout layout);
/// Per row r = n * C + c of the probabilities `p` ([N, C, S]): {Σ p·y, Σ p, Σ y} into row_sums[3r..3r+2],
/// with y the one-hot of `labels` ([N * S], checked: no ignore index) or `onehot` ([N, C, S]); the
/// other pointer is null.
template <class T, class L>
cudaError_t soft_dice_sums(const T* p, const L* labels, const T* onehot, LossLayout layout, double* row_sums,
                           unsigned long long* bad, double* partial, cudaStream_t stream);
/// From the row sums: with `grad` null, the loss −mean(Dice) into `loss`; else the coefficients of
/// dL/dp = coef[2k]·y + coef[2k + 1] for k = group * C + c (2 * groups * C doubles) into `coef`.
template <class T>
cudaError_t soft_dice_finish(const double* row_sums, const DiceSpec& spec, const T* grad, T* loss, double* coef,
                             cudaStream_t stream);
/// dx from the coefficients, through the softmax of `x` when spec.apply_softmax.
template <class T, class L>
cudaError_t soft_dice_backward(const T* x, const L* labels, const T* onehot, const DiceSpec& spec, const double* coef,
                               T* dx, cudaStream_t stream);

}  // namespace tlk::kernels::cuda::launch
