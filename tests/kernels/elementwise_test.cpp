#include "test_util.h"

using namespace tlk;
using testing::random_leaf;
using Inputs = std::vector<Tensor>;

TEST_CASE("binary ops broadcast as NumPy does") {
  Tensor a = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector(std::vector<double>{10, 20, 30}, {3});
  Tensor c = Tensor::from_vector(std::vector<double>{100, 200}, {2, 1});
  CHECK((a + b).to_doubles() == std::vector<double>{11, 22, 33, 14, 25, 36});
  CHECK((a * c).to_doubles() == std::vector<double>{100, 200, 300, 800, 1000, 1200});
  CHECK((b - c).shape() == Shape{2, 3});
  CHECK((a / 2.0).to_doubles() == std::vector<double>{0.5, 1, 1.5, 2, 2.5, 3});
  CHECK((6.0 / a).to_doubles()[2] == 2.0);
  CHECK((1.0 - a).to_doubles()[0] == 0.0);
  CHECK_THROWS_WITH_AS(a + Tensor::zeros({2}, TensorOptions{DType::f64}), doctest::Contains("do not broadcast"), Error);
  CHECK_THROWS_WITH_AS(a + Tensor::zeros({3}), doctest::Contains("mixed dtypes f64 and f32"), Error);
  // Strided views are read correctly.
  Tensor p = a.permute({1, 0});
  CHECK((p + 0.0).to_doubles() == std::vector<double>{1, 4, 2, 5, 3, 6});
}

TEST_CASE("binary op gradients, with broadcasting on either side") {
  Generator gen(21);
  Tensor a = random_leaf({3, 5, 2, 1, 4}, gen), b = random_leaf({5, 1, 3, 1}, gen, 0.5, 1.5);
  CHECK_GRADCHECK([](const Inputs& t) { return Inputs{ops::add(t[0], t[1])}; }, (Inputs{a, b}));
  CHECK_GRADCHECK([](const Inputs& t) { return Inputs{ops::sub(t[0], t[1])}; }, (Inputs{a, b}));
  CHECK_GRADCHECK([](const Inputs& t) { return Inputs{ops::mul(t[0], t[1])}; }, (Inputs{a, b}));
  CHECK_GRADCHECK([](const Inputs& t) { return Inputs{ops::div(t[0], t[1])}; }, (Inputs{a, b}));
  CHECK_GRADCHECK([](const Inputs& t) { return Inputs{t[0] * 3.0 + 2.0, 1.5 - t[0], 2.0 / t[1]}; }, (Inputs{a, b}));
}

TEST_CASE("unary ops and activations: values and gradients") {
  Tensor x = Tensor::from_vector(std::vector<double>{-2, -0.5, 0.5, 2}, {4});
  CHECK(ops::relu(x).to_doubles() == std::vector<double>{0, 0, 0.5, 2});
  CHECK(ops::leaky_relu(x, 0.01).to_doubles() == std::vector<double>{-0.02, -0.005, 0.5, 2});
  CHECK(ops::sigmoid(x).to_doubles()[3] == doctest::Approx(1.0 / (1.0 + std::exp(-2.0))));
  CHECK(ops::tanh(x).to_doubles()[0] == doctest::Approx(std::tanh(-2.0)));
  // Large magnitudes stay finite (the sigmoid is evaluated in its stable form).
  Tensor big = Tensor::from_vector(std::vector<double>{-800, 800}, {2});
  CHECK(ops::sigmoid(big).to_doubles() == std::vector<double>{0, 1});

  Generator gen(22);
  // Keep values away from 0, where relu-type derivatives jump.
  Tensor v = random_leaf({3, 5, 2, 3, 2}, gen, 0.1, 1.0);
  Tensor sign = Tensor::from_doubles(
      [&] {
        std::vector<double> s(static_cast<std::size_t>(v.numel()));
        for (std::size_t i = 0; i < s.size(); ++i) s[i] = i % 3 == 0 ? -1.0 : 1.0;
        return s;
      }(),
      v.shape(), DType::f64);
  auto signed_input = [sign](const Tensor& t) { return t * sign; };
  CHECK_GRADCHECK([&](const Inputs& t) { return Inputs{ops::relu(signed_input(t[0]))}; }, Inputs{v});
  CHECK_GRADCHECK([&](const Inputs& t) { return Inputs{ops::leaky_relu(signed_input(t[0]), 0.01)}; }, Inputs{v});
  CHECK_GRADCHECK([&](const Inputs& t) { return Inputs{ops::sigmoid(signed_input(t[0]))}; }, Inputs{v});
  CHECK_GRADCHECK([&](const Inputs& t) { return Inputs{ops::tanh(signed_input(t[0]))}; }, Inputs{v});
  CHECK_GRADCHECK(
      [](const Inputs& t) {
        return Inputs{ops::exp(t[0]), ops::log(t[0]), ops::sqrt(t[0]), ops::square(t[0]), ops::neg(t[0])};
      },
      Inputs{v});
  CHECK_GRADCHECK([&](const Inputs& t) { return Inputs{ops::abs(signed_input(t[0]))}; }, Inputs{v});
}

TEST_CASE("f32 and f64 elementwise results agree") {
  Generator gen(23);
  Tensor x = randn({3, 5, 4, 3, 2}, gen, 0, 1, TensorOptions{DType::f64});
  for (auto fn :
       {+[](const Tensor& t) { return ops::sigmoid(t); }, +[](const Tensor& t) { return ops::tanh(t); },
        +[](const Tensor& t) { return ops::leaky_relu(t, 0.01); }, +[](const Tensor& t) { return t * t + 1.0; }}) {
    CHECK(testing::max_abs_diff(fn(x.to(DType::f32)), fn(x)) < 1e-6);
  }
}

TEST_CASE("sum and mean over axes: values and gradients") {
  Tensor a = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(ops::sum(a).item() == 21);
  CHECK(ops::sum(a, {0}).to_doubles() == std::vector<double>{5, 7, 9});
  CHECK(ops::sum(a, {1}, true).shape() == Shape{2, 1});
  CHECK(ops::mean(a, {-1}).to_doubles() == std::vector<double>{2, 5});
  CHECK(ops::mean(a).item() == 3.5);
  CHECK_THROWS_WITH_AS(ops::sum(a, {2}), doctest::Contains("axis 2 is out of range"), Error);
  Generator gen(24);
  Tensor x = random_leaf({3, 5, 2, 3, 2}, gen);
  CHECK_GRADCHECK([](const Inputs& t) { return Inputs{ops::sum(t[0], {0, 2, 3, 4})}; }, Inputs{x});
  CHECK_GRADCHECK([](const Inputs& t) { return Inputs{ops::mean(t[0], {1}, true), ops::mean(t[0])}; }, Inputs{x});
}

TEST_CASE("views and concat: values and gradients") {
  Generator gen(25);
  Tensor x = random_leaf({3, 5, 2, 3, 2}, gen);
  CHECK_GRADCHECK([](const Inputs& t) { return Inputs{t[0].reshape({15, -1})}; }, Inputs{x});
  CHECK_GRADCHECK([](const Inputs& t) { return Inputs{t[0].flatten(1)}; }, Inputs{x});
  CHECK_GRADCHECK([](const Inputs& t) { return Inputs{t[0].narrow(1, 1, 3)}; }, Inputs{x});
  CHECK_GRADCHECK([](const Inputs& t) { return Inputs{t[0].permute({0, 2, 3, 4, 1})}; }, Inputs{x});
  // reshape of a non-contiguous view copies and still differentiates
  CHECK_GRADCHECK([](const Inputs& t) { return Inputs{t[0].permute({1, 0, 2, 3, 4}).reshape({5, -1})}; }, Inputs{x});
  Tensor y = random_leaf({3, 2, 2, 3, 2}, gen);
  CHECK_GRADCHECK([](const Inputs& t) { return Inputs{ops::cat({t[0], t[1]}, 1)}; }, (Inputs{x, y}));
  Tensor c = ops::cat({x, y}, 1);
  CHECK(c.shape() == Shape{3, 7, 2, 3, 2});
  CHECK(testing::max_abs_diff(c.narrow(1, 5, 2), y) == 0.0);
  CHECK_THROWS_WITH_AS(ops::cat({x, random_leaf({3, 2, 2, 3, 3}, gen)}, 1), doctest::Contains("differs from tensor 0"),
                       Error);
  CHECK_THROWS_WITH_AS(x.narrow(1, 4, 2), doctest::Contains("outside dimension 1 of extent 5"), Error);
  CHECK_THROWS_WITH_AS(x.permute({0, 1, 1, 3, 4}), doctest::Contains("appears twice"), Error);
}
