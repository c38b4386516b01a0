#pragma once
#include <array>
#include <cstdint>

#include "tlk/tensor/tensor.h"

namespace tlk {

/// A seeded random generator owned by the caller (xoshiro256** seeded through splitmix64).
///
/// Note [Reproducible randomness]: every draw is computed by TLK's own integer arithmetic and
/// IEEE-754 double operations (no std::*_distribution, whose output differs between standard
/// libraries), so the same seed gives the same numbers on any machine and compiler.
///
/// Example: `Generator gen(7); Tensor w = Tensor::randn({16, 3, 3, 3, 3}, gen);`
class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) { reseed(seed); }
  void reseed(std::uint64_t seed);

  /// Next 64 random bits.
  std::uint64_t next_u64();
  /// Uniform in [0, 1) with 53 random bits.
  double uniform();
  /// Uniform in [low, high).
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  /// Standard normal (Box-Muller; the second value of each pair is kept for the next call).
  double normal();
  /// Uniform integer in [0, n).
  std::uint64_t below(std::uint64_t n);

  /// The full state, to be saved in a checkpoint and restored with set_state.
  std::array<std::uint64_t, 6> state() const;
  void set_state(const std::array<std::uint64_t, 6>& state);

 private:
  std::array<std::uint64_t, 4> s_{};
  bool has_spare_ = false;
  double spare_ = 0.0;
};

/// Uniform values in [low, high).
Tensor rand(const Shape& shape, Generator& gen, double low = 0.0, double high = 1.0, TensorOptions options = {});
/// Normal values with mean and standard deviation.
Tensor randn(const Shape& shape, Generator& gen, double mean = 0.0, double stddev = 1.0, TensorOptions options = {});

/// He/Kaiming normal initialisation in place, as torch.nn.init.kaiming_normal_(w, a, mode="fan_in"):
/// std = sqrt(2 / (1 + a^2)) / sqrt(fan_in), fan_in = size(1) * kernel volume. nnUNet uses a = 0.01.
void kaiming_normal_(Tensor& weight, Generator& gen, double negative_slope = 0.0);
/// Fan-in of a weight tensor: size(1) times the product of the extents after dimension 1.
std::int64_t fan_in(const Tensor& weight);

}  // namespace tlk
