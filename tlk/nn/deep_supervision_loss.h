#pragma once
#include <vector>

#include "tlk/tensor/tensor.h"

namespace tlk::nn {

/// nnUNet's training loss: Σ_i w_i · (CE(logits_i, y_i) + SoftDice(logits_i, y_i)), where y_i is the
/// label map downsampled (nearest) to output i's resolution and w_i the deep-supervision weights.
/// SoftDice is nnUNet's −Dice (background excluded, smooth 1e-5, per sample unless batch_dice).
///
/// labels: integer [N, D, H, W] (or [N, 1, D, H, W]) at the resolution of outputs[0].
/// Example: `Tensor loss = deep_supervision_loss(net.forward(x), labels, net.deep_supervision_weights());`
Tensor deep_supervision_loss(const std::vector<Tensor>& outputs, const Tensor& labels,
                             const std::vector<double>& weights, bool batch_dice = false);

/// `labels` [N, D, H, W] taken at every stride-th voxel per axis until it has the spatial `size`
/// (nnUNet's nearest downsampling of segmentation targets); a copy.
Tensor downsample_labels(const Tensor& labels, const Shape& size);

}  // namespace tlk::nn
