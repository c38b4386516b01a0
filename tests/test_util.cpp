#include "test_util.h"

#include <cmath>

namespace tlk::testing {

Tensor random_leaf(const Shape& shape, Generator& gen, double low, double high) {
  Tensor t = rand(shape, gen, low, high, TensorOptions{DType::f64});
  t.set_requires_grad(true);
  return t;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  auto va = a.to_doubles(), vb = b.to_doubles();
  double m = 0.0;
  for (std::size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]));
  return m;
}

std::filesystem::path shared_dir() {
  std::filesystem::path p(TLK_SHARED_DIR);
  return std::filesystem::exists(p / "data") ? p : std::filesystem::path();
}

}  // namespace tlk::testing

namespace tlk::testing {

TensorOptions f64() { return TensorOptions{DType::f64}; }

Tensor values(const std::vector<double>& v, const Shape& shape, DType dtype) {
  return Tensor::from_doubles(v, shape, dtype);
}

double max_rel_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  auto va = a.to_doubles(), vb = b.to_doubles();
  double m = 0.0;
  for (std::size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]) / (1.0 + std::abs(vb[i])));
  return m;
}

void check_f32_matches_f64(const std::function<Tensor(const Tensor&)>& fn, const Shape& shape, Generator& gen,
                           double rel) {
  Tensor x64 = randn(shape, gen, 0, 1, f64());
  auto y64 = fn(x64).to_doubles(), y32 = fn(x64.to(DType::f32)).to_doubles();
  REQUIRE(y64.size() == y32.size());
  for (std::size_t i = 0; i < y64.size(); ++i) CHECK(y32[i] == doctest::Approx(y64[i]).epsilon(rel));
}

}  // namespace tlk::testing
