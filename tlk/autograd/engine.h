#pragma once
#include <vector>

#include "tlk/tensor/tensor.h"

namespace tlk::autograd {

/// Runs reverse-mode differentiation from `roots` with the given output gradients (an undefined
/// gradient means 1 for a one-element root) and accumulates into the leaves' grad().
///
/// Note [Backward order]: the engine counts, for every node reachable from the roots, how many
/// edges lead into it, and runs a node once all of them have delivered; among ready nodes the one
/// created last runs first (reverse creation order), which frees big activations' gradients early.
/// Without `retain_graph`, every node releases its saved tensors right after it ran, so the graph's
/// memory returns as backward proceeds.
/// `accumulated + grad`, or a copy of `grad` when nothing was accumulated yet (Note [Gradient ownership]
/// in accumulate_grad.cpp): f32 CPU gradients are summed in the layout they arrive in (kernels/cpu),
/// others by the reference kernel.
Tensor accumulate_gradient(const Tensor& accumulated, const Tensor& grad, bool copy_first);

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots = {}, bool retain_graph = false);

}  // namespace tlk::autograd
