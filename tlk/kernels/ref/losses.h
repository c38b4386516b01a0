#pragma once
#include <array>

#include "tlk/kernels/loss_params.h"
#include "tlk/tensor/tensor.h"

/// Reference loss kernels: cross entropy, binary cross entropy on logits, the distillation KL and
/// the mean squared error (soft Dice is in soft_dice.h). Every forward returns a 0-D tensor of the
/// input's dtype (f32 or f64), accumulated in double; every backward takes the 0-D gradient of that
/// scalar and returns gradients shaped like the inputs.
namespace tlk::kernels::ref {

/// Σ w[t]·(−log softmax(x)[t]) / Σ w[t] over the elements whose target is not ignore_index.
/// logits [N, C, ...spatial]; target integer (i64, i32, u8) [N, ...spatial] or [N, 1, ...spatial].
/// NaN when every element is ignored (as PyTorch).
Tensor cross_entropy_forward(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& options);
/// Gradient w.r.t. the logits: g·w[t]/Σw·(softmax(x) − onehot(t)); zero at ignored elements.
Tensor cross_entropy_backward(const Tensor& grad_output, const Tensor& logits, const Tensor& target,
                              const CrossEntropyOptions& options);

/// mean((1 − y)·x + lw·log(1 + exp(−x))) with lw = 1 + (pos_weight − 1)·y, in the stable form
/// max(x, 0) − x·y + log(1 + exp(−|x|)) when there is no pos_weight. logits and target: same shape.
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
/// Gradient w.r.t. a: 2g·(a − b)/numel (the gradient w.r.t. b is its negative).
Tensor mse_loss_backward(const Tensor& grad_output, const Tensor& a, const Tensor& b);

}  // namespace tlk::kernels::ref
