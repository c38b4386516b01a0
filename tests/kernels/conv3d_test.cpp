#include "test_util.h"

using namespace tlk;
using testing::random_leaf;

namespace {
std::vector<Tensor> conv_fn(const std::vector<Tensor>& in, const Conv3dOptions& opt) {
  return {ops::conv3d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), opt)};
}
}  // namespace

TEST_CASE("conv3d forward matches a hand-computed value") {
  // 1x1x3x3x3 input of ones, 1x1x3x3x3 kernel of ones, padding 1: the centre sees all 27 taps,
  // a corner 8, an edge centre 12, a face centre 18.
  Tensor x = Tensor::ones({1, 1, 3, 3, 3}), w = Tensor::ones({1, 1, 3, 3, 3});
  Tensor y = ops::conv3d(x, w, Tensor::full({1}, 0.5), Conv3dOptions{}.with_padding({1, 1, 1}));
  auto v = y.to_doubles();
  CHECK(v[13] == 27.5);
  CHECK(v[0] == 8.5);
  CHECK(v[1] == 12.5);
  CHECK(v[4] == 18.5);
}

TEST_CASE("conv3d gradients: odd shapes, anisotropic kernels, strides, padding, dilation") {
  Generator gen(11);
  struct Case {
    Shape x, w;
    Conv3dOptions opt;
    bool bias;
  };
  const std::vector<Case> cases = {
      {{1, 3, 5, 6, 4}, {5, 3, 3, 3, 3}, Conv3dOptions{}.with_padding({1, 1, 1}), true},
      {{3, 2, 3, 7, 6}, {3, 2, 1, 3, 3}, Conv3dOptions{}.with_stride({1, 2, 2}).with_padding({0, 1, 1}), true},
      {{2, 5, 6, 5, 5}, {2, 5, 2, 2, 3}, Conv3dOptions{}.with_stride({2, 1, 2}), false},
      {{1, 2, 7, 7, 7}, {3, 2, 3, 3, 3}, Conv3dOptions{}.with_dilation({2, 1, 2}).with_padding({2, 0, 1}), true},
  };
  for (const auto& c : cases) {
    CAPTURE(c.x.str());
    CAPTURE(c.w.str());
    std::vector<Tensor> in{random_leaf(c.x, gen), random_leaf(c.w, gen)};
    if (c.bias) in.push_back(random_leaf({c.w[0]}, gen));
    CHECK_GRADCHECK([&](const auto& t) { return conv_fn(t, c.opt); }, in);
  }
}

TEST_CASE("conv_transpose3d gradients: kernel == stride upsampling and the general case") {
  Generator gen(12);
  {
    Tensor x = random_leaf({2, 3, 2, 3, 2}, gen), w = random_leaf({3, 5, 1, 2, 2}, gen), b = random_leaf({5}, gen);
    const auto opt = Conv3dOptions{}.with_stride({1, 2, 2});
    CHECK(ops::conv_transpose3d(x, w, b, opt).shape() == Shape{2, 5, 2, 6, 4});
    CHECK_GRADCHECK([&](const auto& t) { return std::vector<Tensor>{ops::conv_transpose3d(t[0], t[1], t[2], opt)}; },
                    (std::vector<Tensor>{x, w, b}));
  }
  {
    Tensor x = random_leaf({1, 2, 3, 4, 3}, gen), w = random_leaf({2, 3, 3, 3, 2}, gen);
    const auto opt = Conv3dOptions{}.with_stride({2, 2, 1}).with_padding({1, 1, 0}).with_output_padding({1, 0, 0});
    CHECK_GRADCHECK([&](const auto& t) { return std::vector<Tensor>{ops::conv_transpose3d(t[0], t[1], {}, opt)}; },
                    (std::vector<Tensor>{x, w}));
  }
}

TEST_CASE("conv_transpose3d is the adjoint of conv3d") {
  // <conv(x), y> == <x, conv_transpose(y)> for the same weight and geometry.
  Generator gen(13);
  const auto opt = Conv3dOptions{}.with_stride({2, 1, 2}).with_padding({1, 1, 0});
  Tensor x = randn({2, 3, 6, 5, 6}, gen, 0, 1, TensorOptions{DType::f64});
  Tensor w = randn({4, 3, 3, 3, 2}, gen, 0, 1, TensorOptions{DType::f64});
  Tensor cx = ops::conv3d(x, w, {}, opt);
  Tensor y = randn(cx.shape(), gen, 0, 1, TensorOptions{DType::f64});
  Tensor ty = ops::conv_transpose3d(y, w, {}, opt.with_output_padding({1, 0, 0}));
  REQUIRE(ty.shape() == x.shape());
  const double lhs = ops::sum(cx * y).item(), rhs = ops::sum(x * ty).item();
  CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));
}

TEST_CASE("conv3d bad input gives a clear error") {
  Tensor x = Tensor::zeros({1, 4, 8, 8, 8}), w = Tensor::zeros({16, 3, 3, 3, 3});
  CHECK_THROWS_WITH_AS(ops::conv3d(x, w), doctest::Contains("input has 4 channels but weight expects 3"), Error);
  CHECK_THROWS_WITH_AS(ops::conv3d(Tensor::zeros({4, 8, 8, 8}), w), doctest::Contains("expected a 5-D input"), Error);
  CHECK_THROWS_WITH_AS(ops::conv3d(Tensor::zeros({1, 3, 2, 8, 8}), w),
                       doctest::Contains("larger than the padded input"), Error);
  CHECK_THROWS_WITH_AS(ops::conv3d(Tensor::zeros({1, 3, 8, 8, 8}, TensorOptions{DType::f64}), w),
                       doctest::Contains("mixed dtypes"), Error);
  CHECK_THROWS_WITH_AS(ops::conv3d(Tensor::zeros({1, 3, 8, 8, 8}), w, Tensor::zeros({3})),
                       doctest::Contains("bias has shape [3], expected [16]"), Error);
  CHECK_THROWS_WITH_AS(ops::conv3d(Tensor::zeros({1, 3, 8, 8, 8}), w, {}, Conv3dOptions{}.with_stride({0, 1, 1})),
                       doctest::Contains("strides and dilations must be >= 1"), Error);
}

TEST_CASE("conv3d reads channels-last and blocked inputs like plain ones") {
  Generator gen(14);
  Tensor x = randn({2, 5, 4, 5, 3}, gen), w = randn({3, 5, 3, 3, 3}, gen);
  const auto opt = Conv3dOptions{}.with_padding({1, 1, 1});
  Tensor expected = ops::conv3d(x, w, {}, opt);
  CHECK(testing::max_abs_diff(ops::conv3d(x.to(Layout::channels_last), w, {}, opt), expected) == 0.0);
  CHECK(testing::max_abs_diff(ops::conv3d(x.to(Layout::blocked), w, {}, opt), expected) == 0.0);
  CHECK(testing::max_abs_diff(ops::relu(x.to(Layout::blocked)), ops::relu(x)) == 0.0);
}

TEST_CASE("conv3d backward kernels reject gradients that do not fit") {
  Tensor g = Tensor::zeros({2, 4, 3, 3, 3}), w = Tensor::zeros({4, 3, 3, 3, 3});
  CHECK_THROWS_WITH_AS(kernels::ref::conv3d_backward_data(g, w, {1, 3, 5, 5, 5}, {}),
                       doctest::Contains("do not fit input shape"), Error);
  CHECK_THROWS_WITH_AS(kernels::ref::conv3d_backward_data(g, w.to(DType::f64), {2, 3, 5, 5, 5}, {}),
                       doctest::Contains("mixed dtypes"), Error);
  CHECK_THROWS_WITH_AS(kernels::ref::conv3d_backward_weights(g, Tensor::zeros({1, 3, 5, 5, 5}), w.shape(), {}),
                       doctest::Contains("do not fit weight"), Error);
  CHECK_THROWS_WITH_AS(
      ops::conv3d(Tensor::zeros({1, 3, 5, 5, 5}), w, {}, Conv3dOptions{}.with_output_padding({1, 0, 0})),
      doctest::Contains("only meaningful for a transposed convolution"), Error);
}
