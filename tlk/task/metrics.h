#pragma once
#include <cstdint>
#include <vector>

#include "tlk/tensor/tensor.h"

namespace tlk::task {

/// The class with the largest logit per voxel: logits [N, C, ...] on any device -> i64 CPU labels
/// [N, ...].
Tensor argmax_channels(const Tensor& logits);

/// Dice of one label between two label maps of one shape (any integer or float dtype):
/// 2|P ∩ R| / (|P| + |R|), NaN when the label is absent from both (as nnUNet reports it).
double dice(const Tensor& prediction, const Tensor& reference, std::int64_t label);

/// dice() for each of `labels`.
std::vector<double> dice_per_label(const Tensor& prediction, const Tensor& reference,
                                   const std::vector<std::int64_t>& labels);

/// Per-class true positives, false positives and false negatives summed over many label maps, for
/// nnUNet's pseudo Dice: one global Dice per class over every validation patch of an epoch.
/// Example:
/// ```
/// ConfusionCounts counts(num_classes);
/// counts.add(argmax_channels(logits), labels);   // every validation batch
/// std::vector<double> dice = counts.foreground_dice();
/// ```
struct ConfusionCounts {
  explicit ConfusionCounts(std::int64_t classes);
  /// Adds an i64 prediction and a u8 reference of one shape; reference labels >= classes (an
  /// ignore label) count as nothing but the prediction's false positive.
  void add(const Tensor& predicted, const Tensor& reference);
  /// tp, fp and fn, one after the other (to sum over processes), and back.
  std::vector<double> flat() const;
  void set_flat(const std::vector<double>& values);
  /// 2·tp / (2·tp + fp + fn) of classes 1 ... classes − 1; NaN for a class absent from both.
  std::vector<double> foreground_dice() const;

  std::int64_t classes;
  std::vector<double> tp, fp, fn;
};

}  // namespace tlk::task
