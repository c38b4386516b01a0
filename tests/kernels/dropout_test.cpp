#include "tlk/kernels/ref/dropout.h"

#include <cmath>

#include "test_util.h"

using namespace tlk;
using testing::random_leaf;

TEST_CASE("dropout keeps about 1 - p of the elements, scaled by 1 / (1 - p)") {
  Generator gen(51);
  Tensor x = Tensor::ones({10, 10, 10, 10});
  Tensor y = ops::dropout(x, 0.3, gen, true);
  std::int64_t kept = 0;
  for (double v : y.to_doubles()) {
    if (v != 0.0) {
      ++kept;
      CHECK(v == doctest::Approx(1.0 / 0.7).epsilon(1e-6));
    }
  }
  // 10000 Bernoulli(0.7) draws: standard deviation 0.0046, so 0.02 is more than 4 sigma.
  CHECK(std::abs(static_cast<double>(kept) / 10000.0 - 0.7) < 0.02);
}

TEST_CASE("dropout: same seed gives the same mask, another seed another; eval, p == 0 and p == 1") {
  Generator gen(52);
  Tensor x = randn({3, 5, 4, 4}, gen, 0, 1, TensorOptions{DType::f64});
  Generator a(7), b(7), c(8);
  Tensor ya = ops::dropout(x, 0.5, a, true), yb = ops::dropout(x, 0.5, b, true), yc = ops::dropout(x, 0.5, c, true);
  CHECK(ya.to_doubles() == yb.to_doubles());
  CHECK(ya.to_doubles() != yc.to_doubles());
  // The same draws give the same mask in f32.
  Generator a32(7);
  CHECK(testing::max_abs_diff(ops::dropout(x.to(DType::f32), 0.5, a32, true), ya) < 1e-5 * 8);

  Generator d(9);
  const auto state = d.state();
  CHECK(ops::dropout(x, 0.5, d, false).is_same(x));
  CHECK(ops::dropout(x, 0.0, d, true).is_same(x));
  CHECK(d.state() == state);  // nothing drawn
  for (double v : ops::dropout(x, 1.0, d, true).to_doubles()) CHECK(v == 0.0);
}

TEST_CASE("dropout mask: one uniform draw per element in row-major order, in the input's dtype") {
  // Note [Dropout mask]: element i is kept (scaled by 1 / (1 - p)) when the i-th draw is >= p.
  const Shape shape{2, 3, 4, 5};
  const double p = 0.3;
  Generator ref(17);
  std::vector<double> expected(static_cast<std::size_t>(shape.numel()));
  for (double& m : expected) m = ref.uniform() >= p ? 1.0 / (1.0 - p) : 0.0;
  for (DType dtype : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dtype));
    Generator gen(17);
    Tensor x = Tensor::ones(shape, TensorOptions{dtype});
    kernels::ref::DropoutForward f = kernels::ref::dropout_forward(x, p, gen);
    CHECK(f.mask.dtype() == dtype);
    CHECK(f.mask.to_doubles() == Tensor::from_doubles(expected, shape, dtype).to_doubles());
    CHECK(f.output.to_doubles() == f.mask.to_doubles());
    CHECK(gen.state() == ref.state());
  }
}

TEST_CASE("dropout gradient uses the forward's mask") {
  Generator gen(53);
  {
    Tensor x = random_leaf({3, 5, 2, 3}, gen);
    CHECK_GRADCHECK(
        [](const auto& t) {
          Generator g(5);  // reseeded on every call, so every evaluation sees the same mask
          return std::vector<Tensor>{ops::dropout(t[0], 0.4, g, true)};
        },
        (std::vector<Tensor>{x}));
  }
  {
    // The gradient of sum(dropout(x)) is the mask: 0 where the output was zeroed, 1 / (1 - p) elsewhere.
    Tensor x = random_leaf({1, 3, 4, 5}, gen, 0.5, 1.5);
    Generator g(6);
    Tensor y = ops::dropout(x, 0.25, g, true);
    ops::sum(y).backward();
    const auto gv = x.grad().to_doubles(), yv = y.to_doubles();
    for (std::size_t i = 0; i < gv.size(); ++i) CHECK(gv[i] == (yv[i] == 0.0 ? 0.0 : 1.0 / 0.75));
  }
  {
    Tensor x = random_leaf({2, 3}, gen);
    Generator g(7);
    CHECK_GRADCHECK([&](const auto& t) { return std::vector<Tensor>{ops::dropout(t[0], 1.0, g, true)}; },
                    (std::vector<Tensor>{x}));
  }
}

TEST_CASE("dropout bad input gives a clear error") {
  Generator gen(54);
  Tensor x = Tensor::ones({2, 3});
  CHECK_THROWS_WITH_AS(ops::dropout(x, -0.1, gen, true),
                       doctest::Contains("dropout: probability p must be in [0, 1], got -0.1"), Error);
  CHECK_THROWS_WITH_AS(ops::dropout(x, 1.5, gen, false), doctest::Contains("probability p must be in [0, 1], got 1.5"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::dropout(x, std::nan(""), gen, true), doctest::Contains("probability p must be in [0, 1]"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::dropout(Tensor::ones({2, 3}, TensorOptions{DType::i64}), 0.5, gen, true),
                       doctest::Contains("dtype i64 is not supported"), Error);
  // The backward kernel checks what it is given.
  CHECK_THROWS_WITH_AS(kernels::ref::dropout_backward(x, Tensor::ones({2, 3}, TensorOptions{DType::f64})),
                       doctest::Contains("dropout backward: mixed dtypes f32 and f64"), Error);
  CHECK_THROWS_WITH_AS(kernels::ref::dropout_backward(x, Tensor::ones({3, 2})),
                       doctest::Contains("grad_output has shape [2, 3], expected the mask's shape [3, 2]"), Error);
}
