#pragma once
// Helpers shared by the reference kernels: argument checks and a broadcasting row iterator.
#include <array>
#include <cstdint>
#include <vector>

#include "tlk/tensor/error.h"
#include "tlk/tensor/tensor.h"

namespace tlk::kernels::ref {

/// Checks that `t` is a defined CPU tensor with a strided layout; returns it converted to plain.
Tensor cpu_input(const Tensor& t, const char* op, const char* what);
/// Checks that every tensor has `first`'s dtype, naming the op and the mismatch.
void check_same_dtype(const char* op, const std::vector<const Tensor*>& tensors);
/// Checks t.dim() == ndim with a message naming the op and the argument.
void check_dim(const Tensor& t, int ndim, const char* op, const char* what);

/// Strides with which `t` is read as if broadcast to `shape` (0 where it is broadcast).
Dims broadcast_strides(const Tensor& t, const Shape& shape);

/// Calls `row(out_offset, offsets..., length)` for every innermost row of `shape`, where each
/// operand offset is computed from that operand's strides. Rows run in parallel when large.
template <std::size_t N, class Fn>
void for_each_row(const Shape& shape, const std::array<Dims, N>& strides, Fn&& row) {
  const int nd = shape.size();
  if (nd == 0) {
    std::array<std::int64_t, N> offsets{};
    row(std::int64_t{0}, offsets, std::int64_t{1});
    return;
  }
  const std::int64_t inner = shape[nd - 1];
  const std::int64_t outer = inner == 0 ? 0 : shape.numel() / inner;
#pragma omp parallel for if (outer > 16 && shape.numel() > 32768)
  for (std::int64_t r = 0; r < outer; ++r) {
    std::array<std::int64_t, N> offsets{};
    std::int64_t rem = r;
    for (int i = nd - 2; i >= 0; --i) {
      const std::int64_t idx = rem % shape[i];
      rem /= shape[i];
      for (std::size_t k = 0; k < N; ++k) offsets[k] += idx * strides[k][i];
    }
    row(r * inner, offsets, inner);
  }
}

}  // namespace tlk::kernels::ref
