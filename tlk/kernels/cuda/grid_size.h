#pragma once
// Launch geometry shared by the .cu files of kernels/cuda: plain C++ with no TLK tensor headers
// (Note [CUDA kernel files] in launch.h).
#include <cstdint>

namespace tlk::kernels::cuda {

/// Threads per block of the grid-stride kernels.
inline constexpr unsigned kGridThreads = 256;

/// Blocks for a grid-stride loop over `n` items at `threads` per block: at least 1, at most
/// 65535 * 8 (the kernels loop over the rest).
inline unsigned blocks_for(std::int64_t n, unsigned threads = kGridThreads) {
  const std::int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 * 8 ? 65535 * 8 : blocks));
}

}  // namespace tlk::kernels::cuda
