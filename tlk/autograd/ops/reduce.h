#pragma once
#include <vector>

#include "tlk/tensor/tensor.h"

/// Differentiable reductions.
namespace tlk::ops {

/// Sum over `axes` (all when empty); reduced axes kept as size 1 when `keepdim`.
Tensor sum(const Tensor& x, const std::vector<int>& axes = {}, bool keepdim = false);
/// Mean over `axes` (all when empty).
Tensor mean(const Tensor& x, const std::vector<int>& axes = {}, bool keepdim = false);

}  // namespace tlk::ops
