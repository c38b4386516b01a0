#pragma once
#include "tlk/kernels/loss_params.h"
#include "tlk/tensor/tensor.h"

/// Reference soft Dice loss in nnUNet's form (see soft_dice.cpp, Note [nnUNet soft Dice]).
/// logits [N, C, ...spatial] f32/f64; target either integer labels (i64, i32, u8) of shape
/// [N, ...spatial] or [N, 1, ...spatial], one-hot encoded internally, or a floating one-hot (or soft)
/// target of the logits' shape and dtype. The result is a 0-D tensor: −mean(Dice).
namespace tlk::kernels::ref {

Tensor soft_dice_forward(const Tensor& logits, const Tensor& target, const SoftDiceOptions& options);
/// Gradient w.r.t. the logits (through the softmax when apply_softmax), given the 0-D gradient of the loss.
Tensor soft_dice_backward(const Tensor& grad_output, const Tensor& logits, const Tensor& target,
                          const SoftDiceOptions& options);

}  // namespace tlk::kernels::ref
