#pragma once
// What every differentiable op's .cpp uses: attach(), saved tensors and short names. Included only by
// the .cpp files in this folder (its using-declarations live in tlk::ops).
#include <vector>

#include "tlk/autograd/function.h"
#include "tlk/kernels/routed.h"

namespace tlk::ops {

using autograd::attach;
using autograd::Node;
using autograd::SavedTensor;
/// The kernels by device: CUDA for GPU tensors, the reference kernels otherwise (kernels/routed.h).
namespace k = kernels::routed;
/// Gradients in and out of a backward closure.
using Grads = std::vector<Tensor>;

}  // namespace tlk::ops
