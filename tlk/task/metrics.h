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

}  // namespace tlk::task
