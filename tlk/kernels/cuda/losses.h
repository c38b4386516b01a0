#pragma once
#include <array>

#include "tlk/kernels/loss_params.h"
#include "tlk/tensor/tensor.h"

/// Loss kernels on CUDA tensors: the functions, arguments and results of kernels/ref/losses.h and
/// kernels/ref/soft_dice.h (cross entropy, BCE on logits, distillation KL, MSE, soft Dice). Inputs are
/// f32 or f64 CUDA tensors on one GPU (integer labels i64, i32 or u8 on the same GPU); every forward
/// returns a 0-D tensor of the input's dtype on that GPU, summed in double in a fixed order (Note
/// [Deterministic GPU sums]); every backward takes the one-element gradient of that scalar (on the
/// same GPU, same dtype) and returns gradients shaped like the inputs. Losses that take labels wait
/// for the GPU once per call to check them (Note [Label checks on the GPU] in loss_args.h).
/// Example: `Tensor l = kernels::cuda::cross_entropy_forward(logits, labels, CrossEntropyOptions{});`
namespace tlk::kernels::cuda {

/// Σ w[t]·(−log softmax(x)[t]) / Σ w[t] over the elements whose target is not ignore_index; NaN when
/// all are ignored. logits [N, C, ...spatial]; target integer [N, ...spatial] or [N, 1, ...spatial].
Tensor cross_entropy_forward(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& options);
/// Gradient w.r.t. the logits: g·w[t]/Σw·(softmax(x) − onehot(t)); zero at ignored elements.
Tensor cross_entropy_backward(const Tensor& grad_output, const Tensor& logits, const Tensor& target,
                              const CrossEntropyOptions& options);

/// mean((1 − y)·x + lw·log(1 + exp(−x))), lw = 1 + (pos_weight − 1)·y (pos_weight one element or
/// [C] along dimension 1); logits and target (floating) of one shape.
Tensor bce_with_logits_forward(const Tensor& logits, const Tensor& target, const BceOptions& options);
/// Gradients {w.r.t. logits, w.r.t. target}; each is computed only when its flag is set.
std::array<Tensor, 2> bce_with_logits_backward(const Tensor& grad_output, const Tensor& logits, const Tensor& target,
                                               const BceOptions& options, bool need_logits = true,
                                               bool need_target = false);

/// T²·mean over N and spatial of KL_p = Σ_c q_c·(log q_c − log p_c), q = softmax(teacher/T),
/// p = softmax(student/T). With `weights` (one finite weight >= 0 per position, [N, ...spatial] or
/// [N, 1, ...spatial], loss_detail::position_weights) the weighted mean T²·Σ_p w_p·KL_p / Σ_p w_p
/// instead, 0 when every weight is 0 (voxel KD over a region, transfer::voxel_kd_loss).
Tensor kl_div_with_temperature_forward(const Tensor& student_logits, const Tensor& teacher_logits, double temperature,
                                       const Tensor& weights = Tensor());
/// Gradient w.r.t. the student logits: g·T/M·w_p·(p − q), M = N·spatial (w_p = 1), or Σ_p w_p with
/// `weights`. The teacher gets none.
Tensor kl_div_with_temperature_backward(const Tensor& grad_output, const Tensor& student_logits,
                                        const Tensor& teacher_logits, double temperature,
                                        const Tensor& weights = Tensor());

/// mean((a − b)²); a and b of one shape and dtype.
Tensor mse_loss_forward(const Tensor& a, const Tensor& b);
/// Gradient w.r.t. a: 2g·(a − b)/numel.
Tensor mse_loss_backward(const Tensor& grad_output, const Tensor& a, const Tensor& b);

/// nnUNet's soft Dice loss −mean(Dice) (ref/soft_dice.cpp, Note [nnUNet soft Dice]); target integer
/// labels [N, ...spatial] / [N, 1, ...spatial] or a floating one-hot (or soft) target like the logits.
Tensor soft_dice_forward(const Tensor& logits, const Tensor& target, const SoftDiceOptions& options);
/// Gradient w.r.t. the logits (through the softmax when apply_softmax).
Tensor soft_dice_backward(const Tensor& grad_output, const Tensor& logits, const Tensor& target,
                          const SoftDiceOptions& options);

}  // namespace tlk::kernels::cuda
