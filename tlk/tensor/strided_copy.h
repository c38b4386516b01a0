#pragma once
#include "tlk/tensor/tensor.h"

namespace tlk::detail {

/// Copies the elements of strided `src` into strided `dst` of the same shape, converting the dtype
/// when they differ. Both on the CPU, neither blocked.
void copy_strided(const Tensor& dst, const Tensor& src);

}  // namespace tlk::detail
