#include "tlk/tensor/random.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>

#include "tlk/tensor/strided_copy.h"

namespace tlk {

namespace {
std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

template <class Draw>
Tensor fill_with(const Shape& shape, TensorOptions options, Draw draw) {
  Tensor cpu = Tensor::empty(shape, TensorOptions{DType::f64});
  double* p = cpu.data<double>();
  for (std::int64_t i = 0; i < cpu.numel(); ++i) p[i] = draw();
  return cpu.to(options.dtype).to(options.device);
}
}  // namespace

void Generator::reseed(std::uint64_t seed) {
  std::uint64_t x = seed;
  for (auto& v : s_) v = splitmix64(x);
  has_spare_ = false;
  spare_ = 0.0;
}

std::uint64_t Generator::next_u64() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Generator::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Generator::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1 = uniform();
  while (u1 <= 0.0) u1 = uniform();
  const double u2 = uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * std::numbers::pi * u2;
  spare_ = r * std::sin(theta);
  has_spare_ = true;
  return r * std::cos(theta);
}

std::uint64_t Generator::below(std::uint64_t n) {
  check(n > 0, "Generator::below: n must be positive");
  // Rejection sampling removes the modulo bias.
  const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() - std::numeric_limits<std::uint64_t>::max() % n;
  std::uint64_t v;
  do v = next_u64();
  while (v >= limit);
  return v % n;
}

std::array<std::uint64_t, 6> Generator::state() const {
  std::uint64_t spare_bits;
  std::memcpy(&spare_bits, &spare_, sizeof spare_bits);
  return {s_[0], s_[1], s_[2], s_[3], has_spare_ ? 1ull : 0ull, spare_bits};
}

void Generator::set_state(const std::array<std::uint64_t, 6>& state) {
  for (std::size_t i = 0; i < 4; ++i) s_[i] = state[i];
  has_spare_ = state[4] != 0;
  std::memcpy(&spare_, &state[5], sizeof spare_);
}

Tensor rand(const Shape& shape, Generator& gen, double low, double high, TensorOptions options) {
  return fill_with(shape, options, [&] { return gen.uniform(low, high); });
}

Tensor randn(const Shape& shape, Generator& gen, double mean, double stddev, TensorOptions options) {
  return fill_with(shape, options, [&] { return mean + stddev * gen.normal(); });
}

std::int64_t fan_in(const Tensor& weight) {
  check(weight.dim() >= 2, "fan_in: weight {} needs at least 2 dimensions", weight.shape().str());
  std::int64_t f = weight.size(1);
  for (int i = 2; i < weight.dim(); ++i) f *= weight.size(i);
  return f;
}

void kaiming_normal_(Tensor& weight, Generator& gen, double negative_slope) {
  const double gain = std::sqrt(2.0 / (1.0 + negative_slope * negative_slope));
  const double stddev = gain / std::sqrt(static_cast<double>(fan_in(weight)));
  // Initialisation is not part of any graph (as torch.nn.init runs under no_grad), so the values are
  // written directly rather than through copy_(), which refuses parameters while grad mode is on.
  check(weight.device().is_cpu() && weight.layout() != Layout::blocked,
        "kaiming_normal_: expected a strided CPU tensor, got one on {} in layout {}", weight.device().str(),
        layout_name(weight.layout()));
  detail::copy_strided(weight, randn(weight.shape(), gen, 0.0, stddev, TensorOptions{DType::f64}));
  weight.impl().storage->bump_version();
}

}  // namespace tlk
