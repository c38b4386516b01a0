#pragma once
// Helpers shared by the reference kernels: argument checks and a broadcasting row iterator.
#include <array>
#include <cstdint>
#include <vector>

#include "tlk/tensor/error.h"
#include "tlk/tensor/tensor.h"

namespace tlk::kernels::ref {

/// Checks that `t` is a defined CPU tensor; returns it detached from any graph and converted from a
/// blocked layout to plain (strided views stay views).
/// Note [Kernels see no graph]: kernels compute on detached handles, so the conversions they make
/// (contiguous(), to(...)) never record autograd nodes; only the ops in autograd/ops do.
Tensor cpu_input(const Tensor& t, const char* op, const char* what);
/// cpu_input(...) made row-major contiguous: what a plain-loop kernel indexes directly.
Tensor cpu_contiguous(const Tensor& t, const char* op, const char* what);
/// Checks that every tensor has `first`'s dtype, naming the op and the mismatch.
void check_same_dtype(const char* op, const std::vector<const Tensor*>& tensors);
/// Checks t.dim() == ndim with a message naming the op and the argument.
void check_dim(const Tensor& t, int ndim, const char* op, const char* what);

/// A tensor [N, C, ...] seen as [outer, channels, inner]: `outer` = N (the product of the axes before
/// `axis`), `channels` = the extent of `axis`, `inner` = the product of the axes after it (the spatial
/// volume for axis 1). Element (o, c, i) is at (o * channels + c) * inner + i in a contiguous tensor.
struct ChannelView {
  std::int64_t outer = 1, channels = 1, inner = 1;
  static ChannelView of(const Shape& shape, int axis = 1);
  std::int64_t index(std::int64_t o, std::int64_t c, std::int64_t i) const { return (o * channels + c) * inner + i; }
};

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
