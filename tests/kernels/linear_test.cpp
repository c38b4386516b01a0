#include "tlk/kernels/ref/linear.h"

#include <cmath>

#include "test_util.h"

using namespace tlk;
using testing::f64;
using testing::random_leaf;

TEST_CASE("linear forward matches a hand-computed 2x3 case") {
  Tensor x = Tensor::from_doubles({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f64);
  Tensor w = Tensor::from_doubles({1, 0, -1, 0.5, 1, 2}, {2, 3}, DType::f64);
  Tensor b = Tensor::from_doubles({0.5, -1}, {2}, DType::f64);
  Tensor y = ops::linear(x, w, b);
  CHECK(y.shape() == Shape{2, 2});
  CHECK(y.to_doubles() == std::vector<double>{-1.5, 7.5, -1.5, 18.0});
  CHECK(ops::linear(x, w).to_doubles() == std::vector<double>{-2.0, 8.5, -2.0, 19.0});

  // matmul: [2, 3] · [3, 2].
  Tensor m = kernels::ref::matmul(x, Tensor::from_doubles({1, 2, 0, 1, -1, 0}, {3, 2}, DType::f64));
  CHECK(m.to_doubles() == std::vector<double>{-2, 4, -2, 13});
}

TEST_CASE("linear flattens leading dimensions") {
  Generator gen(41);
  Tensor x = randn({2, 3, 4}, gen, 0, 1, f64()), w = randn({5, 4}, gen, 0, 1, f64()), b = randn({5}, gen, 0, 1, f64());
  Tensor y = ops::linear(x, w, b);
  CHECK(y.shape() == Shape{2, 3, 5});
  CHECK(testing::max_abs_diff(y.reshape({6, 5}), ops::linear(x.reshape({6, 4}), w, b)) == 0.0);
}

TEST_CASE("linear gradients") {
  Generator gen(42);
  struct Case {
    Shape x, w;
    bool bias;
  };
  for (const Case& c : {Case{{3, 5}, {4, 5}, true}, Case{{1, 7}, {3, 7}, false}, Case{{2, 3, 5}, {3, 5}, true}}) {
    CAPTURE(c.x.str());
    std::vector<Tensor> in{random_leaf(c.x, gen), random_leaf(c.w, gen)};
    if (c.bias) in.push_back(random_leaf({c.w[0]}, gen));
    CHECK_GRADCHECK(
        [](const auto& t) { return std::vector<Tensor>{ops::linear(t[0], t[1], t.size() > 2 ? t[2] : Tensor())}; }, in);
  }
}

TEST_CASE("linear f32 forward agrees with f64") {
  Generator gen(43);
  Tensor x = randn({6, 33}, gen, 0, 1, f64()), w = randn({10, 33}, gen, 0, 1, f64()), b = randn({10}, gen, 0, 1, f64());
  auto a = ops::linear(x.to(DType::f32), w.to(DType::f32), b.to(DType::f32)).to_doubles();
  auto r = ops::linear(x, w, b).to_doubles();
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(std::abs(a[i] - r[i]) <= 1e-5 * (1.0 + std::abs(r[i])));
}

TEST_CASE("linear bad input gives a clear error") {
  Tensor x = Tensor::zeros({2, 4}), w = Tensor::zeros({3, 5});
  CHECK_THROWS_WITH_AS(ops::linear(x, w), doctest::Contains("linear: input has 4 features but weight expects 5"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::linear(x, Tensor::zeros({4})),
                       doctest::Contains("expected a 2-D weight [out, in], got 1-D"), Error);
  CHECK_THROWS_WITH_AS(ops::linear(x, Tensor::zeros({3, 4}), Tensor::zeros({4})),
                       doctest::Contains("bias has shape [4], expected [3]"), Error);
  CHECK_THROWS_WITH_AS(ops::linear(x, Tensor::zeros({3, 4}, f64())), doctest::Contains("mixed dtypes"), Error);
  CHECK_THROWS_WITH_AS(ops::linear(Tensor::scalar(1.0), w),
                       doctest::Contains("expected an input [N, in] or [..., in], got a 0-D"), Error);
  CHECK_THROWS_WITH_AS(kernels::ref::matmul(x, w), doctest::Contains("matmul: inner extents differ ([2, 4] · [3, 5]"),
                       Error);
  // The backward kernels check what they are given.
  CHECK_THROWS_WITH_AS(kernels::ref::linear_backward_input(Tensor::zeros({2, 4}), w),
                       doctest::Contains("linear backward input: grad_output has shape [2, 4] and weight [3, 5]"),
                       Error);
  CHECK_THROWS_WITH_AS(kernels::ref::linear_backward_input(Tensor::zeros({2, 3}), Tensor::zeros({3, 5}, f64())),
                       doctest::Contains("linear backward input: mixed dtypes"), Error);
  CHECK_THROWS_WITH_AS(kernels::ref::linear_backward_weights(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})),
                       doctest::Contains("linear backward weights: grad_output has shape [2, 3] and input [4, 5]"),
                       Error);
  CHECK_THROWS_WITH_AS(kernels::ref::linear_backward_weights(Tensor::zeros({2, 3}), Tensor::zeros({2, 5}, f64())),
                       doctest::Contains("linear backward weights: mixed dtypes"), Error);
}
