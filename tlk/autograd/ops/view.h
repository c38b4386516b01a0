#pragma once
#include <vector>

#include "tlk/tensor/tensor.h"

/// Differentiable reshaping and joining. The Tensor members reshape(), flatten(), narrow() and
/// permute() call these.
namespace tlk::ops {

/// Same elements, new shape (one extent may be -1); a view when the strides allow, else a copy.
Tensor reshape(const Tensor& x, const Shape& shape);
/// Collapses dimensions start..end (inclusive; negative counts from the end) into one.
Tensor flatten(const Tensor& x, int start = 1, int end = -1);
/// The slice [start, start + length) along `dim`, as a view.
Tensor narrow(const Tensor& x, int dim, std::int64_t start, std::int64_t length);
/// Reorders dimensions, as a view.
Tensor permute(const Tensor& x, const std::vector<int>& order);
/// Splits `x` along `dim` into consecutive pieces of the given sizes (one graph node, several
/// outputs); the pieces are views. Example: `auto halves = ops::split(batch, {2, 2}, 0);` (source, target).
std::vector<Tensor> split(const Tensor& x, const std::vector<std::int64_t>& sizes, int dim = 1);
/// Joins tensors along `dim` (all other extents equal), e.g. the UNet's skip concat along channels.
Tensor cat(const std::vector<Tensor>& tensors, int dim = 1);

}  // namespace tlk::ops
