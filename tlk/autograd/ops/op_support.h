#pragma once
// What every differentiable op's .cpp uses: attach(), saved tensors and short names. Included only by
// the .cpp files in this folder (its using-declarations live in tlk::ops).
#include <vector>

#include "tlk/autograd/function.h"

namespace tlk::kernels::ref {}

namespace tlk::ops {

using autograd::attach;
using autograd::Node;
using autograd::SavedTensor;
namespace k = kernels::ref;
/// Gradients in and out of a backward closure.
using Grads = std::vector<Tensor>;

}  // namespace tlk::ops
