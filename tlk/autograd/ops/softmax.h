#pragma once
#include "tlk/tensor/tensor.h"

/// Differentiable softmax and log-softmax (numerically stable: Note [Stable softmax]).
namespace tlk::ops {

/// exp(x) / Σ exp(x) along `dim` of a tensor of rank >= 2; the default is the channel axis of
/// [N, C, ...], so per-voxel class probabilities of a segmentation's logits.
/// Example: `Tensor probs = ops::softmax(logits);  // [N, C, D, H, W], sums to 1 over C`
Tensor softmax(const Tensor& x, int dim = 1);

/// log(softmax(x)) along `dim`, computed without forming softmax (stays finite for large logits).
/// Example: `Tensor logp = ops::log_softmax(logits, -1);  // [N, classes]`
Tensor log_softmax(const Tensor& x, int dim = 1);

}  // namespace tlk::ops
