#pragma once
#include <cstdint>

#include "tlk/tensor/tensor.h"

namespace tlk {

/// Options of cross_entropy (PyTorch's `F.cross_entropy` with reduction "mean").
/// Example: `CrossEntropyOptions{}.with_weight(Tensor::from_doubles({0.2, 1, 3}, {3})).with_ignore_index(255)`.
struct CrossEntropyOptions {
  /// Per-class weight [C] of the logits' dtype, or undefined for none. A constant: it gets no gradient.
  Tensor weight;
  /// Target value whose elements count neither in the loss nor in the mean's denominator.
  std::int64_t ignore_index = -100;

  CrossEntropyOptions with_weight(const Tensor& w) const {
    auto o = *this;
    o.weight = w;
    return o;
  }
  CrossEntropyOptions with_ignore_index(std::int64_t i) const {
    auto o = *this;
    o.ignore_index = i;
    return o;
  }
};

/// Options of soft_dice_loss, with nnUNet's defaults (`SoftDiceLoss(batch_dice, do_bg=False, smooth=1e-5)`).
/// Example: `SoftDiceOptions{}.with_batch_dice(true)`.
struct SoftDiceOptions {
  /// One Dice per class over the whole batch (sums run over N too) instead of one per sample and class.
  bool batch_dice = false;
  /// Include channel 0 (the background) in the mean.
  bool do_background = false;
  /// Added to numerator and denominator of every Dice.
  double smooth = 1e-5;
  /// Softmax over the channel axis first; false takes the input as probabilities already.
  bool apply_softmax = true;

  SoftDiceOptions with_batch_dice(bool b) const {
    auto o = *this;
    o.batch_dice = b;
    return o;
  }
  SoftDiceOptions with_do_background(bool b) const {
    auto o = *this;
    o.do_background = b;
    return o;
  }
  SoftDiceOptions with_smooth(double s) const {
    auto o = *this;
    o.smooth = s;
    return o;
  }
  SoftDiceOptions with_apply_softmax(bool b) const {
    auto o = *this;
    o.apply_softmax = b;
    return o;
  }
};

/// Options of bce_with_logits.
/// Example: `BceOptions{}.with_pos_weight(Tensor::scalar(3.0))`.
struct BceOptions {
  /// Weight of the positive term, undefined for none: one element, or [C] applied along dimension 1
  /// of [N, C, ...] logits (see Note [pos_weight axis]). A constant: it gets no gradient.
  Tensor pos_weight;

  BceOptions with_pos_weight(const Tensor& w) const {
    auto o = *this;
    o.pos_weight = w;
    return o;
  }
};

}  // namespace tlk
