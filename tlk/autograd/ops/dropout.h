#pragma once
#include "tlk/tensor/random.h"
#include "tlk/tensor/tensor.h"

namespace tlk::ops {

/// Differentiable dropout, as PyTorch's functional dropout: in training each element is zeroed with
/// probability p and the rest are scaled by 1 / (1 - p), the mask drawn from `gen` (same seed, same
/// mask); p == 1 gives zeros. In evaluation, or with p == 0, it returns x itself and draws nothing.
/// p outside [0, 1] is an error. The backward multiplies by the same mask.
/// Example: `Tensor h = ops::dropout(features, 0.5, gen, /*training=*/true);`
Tensor dropout(const Tensor& x, double p, Generator& gen, bool training);

}  // namespace tlk::ops
