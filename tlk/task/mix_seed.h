#pragma once
#include <cstdint>

namespace tlk::task {

/// A well-mixed 64-bit seed from a run seed and a stream or batch number (splitmix64's finaliser),
/// so that neighbouring numbers get unrelated generators.
inline std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b) {
  std::uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace tlk::task
