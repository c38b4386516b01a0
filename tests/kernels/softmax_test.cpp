#include "tlk/kernels/ref/softmax.h"

#include <cmath>

#include "test_util.h"

using namespace tlk;
using testing::f64;
using testing::random_leaf;

TEST_CASE("softmax forward: hand-computed values, rows sum to 1, equals exp(log_softmax)") {
  // softmax([1, 2, 3]) = e^k / (e + e^2 + e^3); shifting by 1000 must not change it (stability).
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  for (double shift : {0.0, 1000.0, -1000.0}) {
    CAPTURE(shift);
    Tensor x = Tensor::from_doubles({1 + shift, 2 + shift, 3 + shift}, {1, 3}, DType::f64);
    const auto p = ops::softmax(x).to_doubles(), lp = ops::log_softmax(x, -1).to_doubles();
    for (int k = 0; k < 3; ++k) {
      CHECK(p[static_cast<std::size_t>(k)] == doctest::Approx(std::exp(k + 1.0) / z).epsilon(1e-12));
      CHECK(lp[static_cast<std::size_t>(k)] == doctest::Approx(k + 1.0 - std::log(z)).epsilon(1e-12));
    }
  }

  Generator gen(31);
  Tensor x = randn({2, 5, 3, 4}, gen, 0, 3, f64());
  for (int dim : {1, -1}) {
    CAPTURE(dim);
    Tensor p = ops::softmax(x, dim);
    Tensor sums = ops::sum(p, {dim});
    for (double s : sums.to_doubles()) CHECK(s == doctest::Approx(1.0).epsilon(1e-12));
    CHECK(testing::max_abs_diff(p, ops::exp(ops::log_softmax(x, dim))) < 1e-14);
  }
  // The default axis is the channel axis: softmax over C for every voxel.
  CHECK(testing::max_abs_diff(ops::softmax(x), ops::softmax(x, 1)) == 0.0);
}

TEST_CASE("softmax and log_softmax gradients on dims 1 and -1") {
  Generator gen(32);
  for (const Shape& shape : {Shape{3, 5, 2, 3}, Shape{1, 3, 2, 3, 2}, Shape{4, 7}}) {
    for (int dim : {1, -1}) {
      CAPTURE(shape.str());
      CAPTURE(dim);
      Tensor x = random_leaf(shape, gen, -2, 2);
      CHECK_GRADCHECK([dim](const auto& t) { return std::vector<Tensor>{ops::softmax(t[0], dim)}; },
                      (std::vector<Tensor>{x}));
      CHECK_GRADCHECK([dim](const auto& t) { return std::vector<Tensor>{ops::log_softmax(t[0], dim)}; },
                      (std::vector<Tensor>{x}));
    }
  }
}

TEST_CASE("softmax f32 forward agrees with f64") {
  Generator gen(33);
  Tensor x = randn({2, 3, 4, 5, 3}, gen, 0, 4, f64());
  for (int dim : {1, -1}) {
    auto a = ops::softmax(x.to(DType::f32), dim).to_doubles(), b = ops::softmax(x, dim).to_doubles();
    auto la = ops::log_softmax(x.to(DType::f32), dim).to_doubles(), lb = ops::log_softmax(x, dim).to_doubles();
    for (std::size_t i = 0; i < a.size(); ++i) {
      CHECK(std::abs(a[i] - b[i]) <= 1e-5 * std::abs(b[i]) + 1e-7);
      CHECK(std::abs(la[i] - lb[i]) <= 1e-5 * std::abs(lb[i]) + 1e-6);
    }
  }
}

TEST_CASE("softmax bad input gives a clear error") {
  CHECK_THROWS_WITH_AS(ops::softmax(Tensor::zeros({5})),
                       doctest::Contains("softmax: expected an input of at least 2 dimensions"), Error);
  CHECK_THROWS_WITH_AS(ops::log_softmax(Tensor::zeros({2, 3}), 2),
                       doctest::Contains("log_softmax: axis 2 is out of range for a 2-D tensor"), Error);
  CHECK_THROWS_WITH_AS(ops::softmax(Tensor::zeros({2, 3}, TensorOptions{DType::i64})),
                       doctest::Contains("dtype i64 is not supported"), Error);
  // The backward kernels check what they are given.
  Tensor y = Tensor::zeros({2, 3});
  CHECK_THROWS_WITH_AS(kernels::ref::softmax_backward(y, y.to(DType::f64), 1),
                       doctest::Contains("softmax backward: mixed dtypes f32 and f64"), Error);
  CHECK_THROWS_WITH_AS(kernels::ref::log_softmax_backward(Tensor::zeros({2, 4}), y, 1),
                       doctest::Contains("log_softmax backward: grad_output has shape [2, 4], expected the output's "
                                         "shape [2, 3]"),
                       Error);
}
