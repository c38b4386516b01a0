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
