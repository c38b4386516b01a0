#pragma once
#include "tlk/kernels/loss_params.h"
#include "tlk/tensor/tensor.h"

/// Differentiable losses. Each returns a 0-D tensor of the input's dtype (f32 or f64), reduced by
/// the mean unless stated. Logits are [N, C, ...spatial] with any number of spatial axes ([N, C] for
/// classification, [N, C, D, H, W] for 3D segmentation); the channel axis is dimension 1.
namespace tlk::ops {

/// Cross entropy of logits against integer class indices, exactly as PyTorch's F.cross_entropy with
/// reduction "mean": Σ w[t]·(−log softmax(x)[t]) / Σ w[t] over the elements whose target is not
/// ignore_index, through a stable log-softmax.
/// target: i64 (i32 and u8 are converted) of shape [N, ...spatial], or [N, 1, ...spatial] as nnUNet
/// stores segmentations. A target outside [0, C) that is not ignore_index is a tlk::Error.
/// When every element is ignored the loss is NaN (as PyTorch; 0/0) and the gradient is zero.
/// Gradient: to the logits only (the class weight is a constant).
/// Example: `Tensor loss = ops::cross_entropy(logits, labels, CrossEntropyOptions{}.with_ignore_index(255));`
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& options = {});

/// nnUNet's soft Dice loss (SoftDiceLoss with softmax): per class and sample (per class over the
/// whole batch when batch_dice) dc = (2tp + smooth) / max(2tp + fp + fn + smooth, 1e-8), with soft
/// tp = Σp·y, fp = Σp·(1−y), fn = Σ(1−p)·y, p = softmax(logits). Returns **−mean(dc)** (in [−1, 0];
/// nnUNet's sign convention, not 1 − Dice), over classes 1..C−1 unless do_background.
/// target: integer labels [N, ...spatial] or [N, 1, ...spatial] (one-hot encoded internally, each in
/// [0, C)), or a floating one-hot [N, C, ...spatial] of the logits' dtype.
/// Gradient: to the logits only, through the softmax (the target is a constant even if it requires grad).
/// Example: `Tensor loss = ops::cross_entropy(logits, labels) + ops::soft_dice_loss(logits, labels);`
Tensor soft_dice_loss(const Tensor& logits, const Tensor& target, const SoftDiceOptions& options = {});

/// Binary cross entropy on logits, mean over all elements, in the stable form
/// max(x, 0) − x·y + log(1 + exp(−|x|)); with pos_weight pw (one element, or [C] along dimension 1)
/// the positive term is weighted: (1 − y)·x + (1 + (pw − 1)·y)·log(1 + exp(−x)), as PyTorch.
/// target: same shape and dtype as the logits, probabilities in [0, 1].
/// Gradient: to the logits and to the target (as PyTorch); pos_weight is a constant.
/// Example: `Tensor d = ops::bce_with_logits(domain_logits, Tensor::ones(domain_logits.shape()));`
Tensor bce_with_logits(const Tensor& logits, const Tensor& target, const BceOptions& options = {});

/// Hinton's distillation loss T²·KL(softmax(teacher/T) ‖ softmax(student/T)): the KL is summed over
/// the channel axis and averaged over N and the spatial positions ("batchmean" for [N, C]).
/// Gradient: to the student only. The teacher is a constant: it gets no gradient even when it
/// requires grad (pass teacher outputs computed under NoGradGuard, or leave them; both are fine).
/// Example: `Tensor kd = ops::kl_div_with_temperature(student(x), teacher(x), 4.0);`
/// With `weights` (one finite weight >= 0 per position, [N, ...spatial] or [N, 1, ...spatial]; no
/// gradient) the weighted mean T²·Σ w·KL / Σ w, 0 when every weight is 0.
Tensor kl_div_with_temperature(const Tensor& student_logits, const Tensor& teacher_logits, double temperature,
                               const Tensor& weights = Tensor());

/// Mean squared error mean((a − b)²) over all elements; a and b of one shape and dtype (no broadcasting).
/// Gradient: to both inputs.
/// Example: `Tensor hint = ops::mse_loss(adapter(student_features), teacher_features);`
Tensor mse_loss(const Tensor& a, const Tensor& b);

}  // namespace tlk::ops
