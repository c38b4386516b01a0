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
/// Joins tensors along `dim` (all other extents equal), e.g. the UNet's skip concat along channels.
Tensor cat(const std::vector<Tensor>& tensors, int dim = 1);

}  // namespace tlk::ops
