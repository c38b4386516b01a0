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
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots = {}, bool retain_graph = false);

}  // namespace tlk::autograd
