#include "tlk/kernels/ref/pool3d.h"

#include <cmath>
#include <limits>

#include "test_util.h"

using namespace tlk;
using testing::check_f32_matches_f64;
using testing::random_leaf;
using testing::values;
using Inputs = std::vector<Tensor>;

namespace {

std::vector<double> arange(std::int64_t n, double scale = 1.0) {
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = scale * static_cast<double>(i);
  return v;
}

// Note [Max pooling gradcheck inputs]: finite differences of a max are only valid away from ties, so
// the inputs are a random permutation of a grid 0.01 apart (>> the step 1e-6), shifted to [-1, 1).
Tensor distinct_leaf(const Shape& shape, Generator& gen) {
  std::vector<double> v = arange(shape.numel(), 2.0 / static_cast<double>(shape.numel()));
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[gen.below(i)]);
  for (double& x : v) x -= 1.0;
  Tensor t = values(v, shape);
  t.set_requires_grad(true);
  return t;
}

}  // namespace

TEST_CASE("max_pool3d forward matches hand-computed values and indices") {
  // 4x4 plane holding -0, -1, ..., -15: with a 3x3 window, stride 2 and padding 1, each window's
  // maximum is its top-left input, never a padded position (which would give 0 = -0 only at (0, 0)
  // and wrongly elsewhere).
  Tensor x = values(arange(16, -1.0), {1, 1, 1, 4, 4});
  const auto opt = Pool3dOptions{}.with_kernel({1, 3, 3}).with_stride({1, 2, 2}).with_padding({0, 1, 1});
  auto [y, idx] = kernels::ref::max_pool3d_forward(x, opt);
  CHECK(y.shape() == Shape{1, 1, 1, 2, 2});
  CHECK(y.to_doubles() == std::vector<double>{0, -1, -4, -5});
  CHECK(idx.dtype() == DType::i64);
  CHECK(idx.to_doubles() == std::vector<double>{0, 1, 4, 5});
  // Default stride = kernel.
  Tensor z = ops::max_pool3d(values(arange(16), {1, 1, 1, 4, 4}), Pool3dOptions{{1, 2, 2}});
  CHECK(z.to_doubles() == std::vector<double>{5, 7, 13, 15});
}

TEST_CASE("max_pool3d ties go to the first maximum, in forward and backward") {
  // All ones, 3x3 window, stride 1, padding 1: output (i, j) picks input (max(i-1, 0), max(j-1, 0)),
  // so the gradient of sum(y) counts 2, 1, 0 along each axis: outer([2, 1, 0], [2, 1, 0]).
  Tensor x = Tensor::ones({1, 1, 1, 3, 3}, TensorOptions{DType::f64});
  x.set_requires_grad(true);
  const auto opt = Pool3dOptions{{1, 3, 3}, {1, 1, 1}, {0, 1, 1}};
  auto [y, idx] = kernels::ref::max_pool3d_forward(x, opt);
  CHECK(idx.to_doubles() == std::vector<double>{0, 0, 1, 0, 0, 1, 3, 3, 4});
  ops::sum(ops::max_pool3d(x, opt)).backward();
  CHECK(x.grad().to_doubles() == std::vector<double>{4, 2, 0, 2, 1, 0, 0, 0, 0});
}

TEST_CASE("max_pool3d propagates NaN and keeps -inf inputs") {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  Tensor y = ops::max_pool3d(values({1, nan, 3, 2, -inf, -inf, -inf, -inf}, {1, 1, 1, 2, 4}), Pool3dOptions{{1, 2, 2}});
  auto v = y.to_doubles();
  CHECK(std::isnan(v[0]));
  CHECK(v[1] == 3);
  Tensor z = ops::max_pool3d(values({-inf, -inf}, {1, 1, 1, 1, 2}), Pool3dOptions{{1, 1, 2}});
  CHECK(z.to_doubles()[0] == -inf);
}

TEST_CASE("avg_pool3d forward matches hand-computed values, with and without count_include_pad") {
  Tensor x = values(arange(16), {1, 1, 1, 4, 4});
  CHECK(ops::avg_pool3d(x, Pool3dOptions{{1, 2, 2}}).to_doubles() == std::vector<double>{2.5, 4.5, 10.5, 12.5});
  // 3x3 window, stride 2, padding 1: window (0, 0) reads {0, 1, 4, 5}, (0, 1) reads {1, 2, 3, 5, 6, 7},
  // (1, 0) reads {4, 5, 8, 9, 12, 13}, (1, 1) reads nine values summing to 90.
  const auto opt = Pool3dOptions{}.with_kernel({1, 3, 3}).with_stride({1, 2, 2}).with_padding({0, 1, 1});
  auto with_pad = ops::avg_pool3d(x, opt).to_doubles();
  CHECK(with_pad[0] == doctest::Approx(10.0 / 9));
  CHECK(with_pad[1] == doctest::Approx(24.0 / 9));
  CHECK(with_pad[2] == doctest::Approx(51.0 / 9));
  CHECK(with_pad[3] == doctest::Approx(10.0));
  auto without = ops::avg_pool3d(x, opt.with_count_include_pad(false)).to_doubles();
  CHECK(without == std::vector<double>{2.5, 4.0, 8.5, 10.0});
}

TEST_CASE("adaptive_avg_pool3d uses PyTorch's bins; global_avg_pool3d is the spatial mean") {
  // in 5 -> out 3: bins [0, 2), [1, 4), [3, 5); in 2 -> out 3: bins [0, 1), [0, 2), [1, 2).
  Tensor x = values(arange(5), {1, 1, 1, 1, 5});
  CHECK(ops::adaptive_avg_pool3d(x, {1, 1, 3}).to_doubles() == std::vector<double>{0.5, 2.0, 3.5});
  Tensor u = values({1, 3}, {1, 1, 2, 1, 1});
  CHECK(ops::adaptive_avg_pool3d(u, {3, 1, 1}).to_doubles() == std::vector<double>{1, 2, 3});
  Generator gen(31);
  Tensor r = randn({3, 5, 3, 4, 5}, gen, 0, 1, TensorOptions{DType::f64});
  Tensor g = ops::global_avg_pool3d(r);
  CHECK(g.shape() == Shape{3, 5, 1, 1, 1});
  CHECK(testing::max_abs_diff(g, ops::mean(r, {2, 3, 4}, true)) < 1e-14);
  // Output size equal to the input is the identity.
  CHECK(testing::max_abs_diff(ops::adaptive_avg_pool3d(r, {3, 4, 5}), r) == 0.0);
}

TEST_CASE("pool3d f32 forward agrees with f64") {
  Generator gen(32);
  const auto opt = Pool3dOptions{}.with_kernel({2, 3, 3}).with_stride({1, 2, 2}).with_padding({1, 1, 1});
  check_f32_matches_f64([&](const Tensor& x) { return ops::max_pool3d(x, opt); }, {2, 3, 5, 7, 6}, gen);
  check_f32_matches_f64([&](const Tensor& x) { return ops::avg_pool3d(x, opt); }, {2, 3, 5, 7, 6}, gen);
  check_f32_matches_f64([&](const Tensor& x) { return ops::adaptive_avg_pool3d(x, {2, 3, 4}); }, {2, 3, 5, 7, 6}, gen);
}

TEST_CASE("max_pool3d gradients: odd shapes, anisotropic kernels, strides, padding") {
  Generator gen(33);
  struct Case {
    Shape x;
    Pool3dOptions opt;
  };
  const std::vector<Case> cases = {
      {{1, 3, 5, 6, 4}, Pool3dOptions{{2, 2, 2}}},
      {{3, 2, 2, 5, 4}, Pool3dOptions{}.with_kernel({1, 3, 3}).with_stride({1, 2, 2}).with_padding({0, 1, 1})},
      {{1, 5, 3, 4, 5}, Pool3dOptions{}.with_kernel({2, 3, 2}).with_stride({1, 1, 2}).with_padding({1, 1, 0})},
  };
  for (const auto& c : cases) {
    CAPTURE(c.x.str());
    CAPTURE(c.opt.str());
    CHECK_GRADCHECK([&](const Inputs& t) { return Inputs{ops::max_pool3d(t[0], c.opt)}; },
                    (Inputs{distinct_leaf(c.x, gen)}));
  }
}

TEST_CASE("avg_pool3d gradients: odd shapes, padding counted or not") {
  Generator gen(34);
  struct Case {
    Shape x;
    Pool3dOptions opt;
  };
  const std::vector<Case> cases = {
      {{1, 3, 5, 6, 4}, Pool3dOptions{{2, 2, 2}}},
      {{3, 2, 2, 5, 4}, Pool3dOptions{}.with_kernel({1, 3, 3}).with_stride({1, 2, 2}).with_padding({0, 1, 1})},
      {{1, 5, 3, 4, 5},
       Pool3dOptions{}.with_kernel({2, 3, 2}).with_stride({1, 2, 2}).with_padding({1, 1, 1}).with_count_include_pad(
           false)},
  };
  for (const auto& c : cases) {
    CAPTURE(c.x.str());
    CAPTURE(c.opt.str());
    CHECK_GRADCHECK([&](const Inputs& t) { return Inputs{ops::avg_pool3d(t[0], c.opt)}; },
                    (Inputs{random_leaf(c.x, gen)}));
  }
}

TEST_CASE("adaptive_avg_pool3d gradients: dividing, overlapping, enlarging and global bins") {
  Generator gen(35);
  Tensor a = random_leaf({1, 3, 4, 5, 6}, gen), b = random_leaf({3, 5, 2, 3, 2}, gen);
  CHECK_GRADCHECK([](const Inputs& t) { return Inputs{ops::adaptive_avg_pool3d(t[0], {2, 3, 4})}; }, (Inputs{a}));
  CHECK_GRADCHECK([](const Inputs& t) { return Inputs{ops::adaptive_avg_pool3d(t[0], {3, 2, 3})}; }, (Inputs{b}));
  CHECK_GRADCHECK([](const Inputs& t) { return Inputs{ops::global_avg_pool3d(t[0])}; }, (Inputs{b}));
}

TEST_CASE("pool3d bad input gives a clear error") {
  Tensor x = Tensor::zeros({1, 3, 4, 4, 4});
  CHECK_THROWS_WITH_AS(ops::max_pool3d(Tensor::zeros({3, 4, 4, 4}), Pool3dOptions{}),
                       doctest::Contains("max_pool3d: expected a 5-D input [N, C, D, H, W], got 4-D"), Error);
  CHECK_THROWS_WITH_AS(ops::avg_pool3d(Tensor::zeros({3, 4, 4, 4}), Pool3dOptions{}),
                       doctest::Contains("avg_pool3d: expected a 5-D input"), Error);
  CHECK_THROWS_WITH_AS(ops::adaptive_avg_pool3d(Tensor::zeros({3, 4, 4, 4}), {1, 1, 1}),
                       doctest::Contains("adaptive_avg_pool3d: expected a 5-D input"), Error);
  CHECK_THROWS_WITH_AS(ops::max_pool3d(x, Pool3dOptions{{0, 2, 2}}),
                       doctest::Contains("kernel and stride must be >= 1"), Error);
  CHECK_THROWS_WITH_AS(ops::avg_pool3d(x, Pool3dOptions{}.with_stride({1, 0, 1})),
                       doctest::Contains("kernel and stride must be >= 1"), Error);
  CHECK_THROWS_WITH_AS(ops::max_pool3d(x, Pool3dOptions{}.with_kernel({3, 3, 3}).with_padding({2, 1, 1})),
                       doctest::Contains("more than half the kernel"), Error);
  CHECK_THROWS_WITH_AS(ops::avg_pool3d(x, Pool3dOptions{}.with_padding({0, -1, 0})), doctest::Contains("padding >= 0"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::max_pool3d(x, Pool3dOptions{{5, 2, 2}}), doctest::Contains("output would be empty"), Error);
  CHECK_THROWS_WITH_AS(ops::max_pool3d(Tensor::zeros({1, 0, 4, 4, 4}), Pool3dOptions{}), doctest::Contains("is empty"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::max_pool3d(Tensor::zeros({1, 3, 4, 4, 4}, TensorOptions{DType::i64}), Pool3dOptions{}),
                       doctest::Contains("max_pool3d: dtype i64 is not supported"), Error);
  CHECK_THROWS_WITH_AS(ops::adaptive_avg_pool3d(x, {1, 0, 1}), doctest::Contains("must be at least 1"), Error);
  // Backward kernels check what they are given.
  auto [y, idx] = kernels::ref::max_pool3d_forward(x, Pool3dOptions{});
  CHECK_THROWS_WITH_AS(kernels::ref::max_pool3d_backward(y, idx.to(DType::f32), x.shape()),
                       doctest::Contains("indices have dtype f32, expected i64"), Error);
  CHECK_THROWS_WITH_AS(kernels::ref::max_pool3d_backward(y, idx, Shape{1, 4, 4, 4, 4}),
                       doctest::Contains("do not fit input"), Error);
  CHECK_THROWS_WITH_AS(kernels::ref::avg_pool3d_backward(x, x.shape(), Pool3dOptions{}),
                       doctest::Contains("grad_output has shape [1, 3, 4, 4, 4], expected [1, 3, 2, 2, 2]"), Error);
}
