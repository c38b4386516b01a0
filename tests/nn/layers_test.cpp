// The nn layers: Linear, BatchNorm3d, activations, Dropout, Flatten, pooling, Upsample, Sequential.
#include <cmath>

#include "test_util.h"
#include "tlk/nn/activation.h"
#include "tlk/nn/linear.h"
#include "tlk/nn/norm.h"
#include "tlk/nn/pooling.h"
#include "tlk/nn/sequential.h"

using namespace tlk;

namespace {

Tensor find_tensor(const std::vector<nn::NamedTensor>& named, const std::string& name) {
  for (const auto& [n, t] : named)
    if (n == name) return t;
  return Tensor();
}

std::vector<std::string> names_of(const std::vector<nn::NamedTensor>& named) {
  std::vector<std::string> out;
  for (const auto& [n, t] : named) out.push_back(n);
  return out;
}

// Writes `values` into a parameter (as an optimizer does: in place, outside any graph).
void set_values(Tensor t, const std::vector<double>& values) {
  NoGradGuard guard;
  t.copy_(Tensor::from_doubles(values, t.shape(), t.dtype()));
}

}  // namespace

TEST_CASE("Linear: parameter shapes, PyTorch's default initialisation bounds, values and errors") {
  Generator gen(1);
  nn::Linear fc(300, 200, gen);
  CHECK(names_of(fc.named_parameters()) == std::vector<std::string>{"weight", "bias"});
  CHECK(fc.weight.shape() == Shape{200, 300});
  CHECK(fc.bias.shape() == Shape{200});
  CHECK(fc.weight.requires_grad());
  // Note [Linear initialisation]: uniform in ±1/sqrt(300); the extremes come close to the bound.
  const double bound = 1.0 / std::sqrt(300.0);
  double wmax = 0, bmax = 0, wmean = 0;
  for (double v : fc.weight.to_doubles()) wmax = std::max(wmax, std::abs(v)), wmean += v;
  for (double v : fc.bias.to_doubles()) bmax = std::max(bmax, std::abs(v));
  CHECK(wmax <= bound);
  CHECK(wmax > 0.99 * bound);
  CHECK(bmax <= bound);
  CHECK(bmax > 0.9 * bound);
  CHECK(std::abs(wmean / 60000.0) < 0.02 * bound);  // the standard error is 0.0024 bound
  Generator same(1);
  CHECK(testing::max_abs_diff(nn::Linear(300, 200, same).weight, fc.weight) == 0.0);

  nn::Linear small(3, 2, gen);
  set_values(small.weight, {1, 2, 3, -1, 0, 1});
  set_values(small.bias, {0.5, -0.5});
  Tensor x = Tensor::from_doubles({1, 1, 1, 2, 0, -1}, {2, 3});
  CHECK(small(x).to_doubles() == std::vector<double>{6.5, -0.5, -0.5, -3.5});
  CHECK(small(Tensor::zeros({4, 5, 3})).shape() == Shape{4, 5, 2});
  nn::Linear no_bias(3, 2, gen, false);
  CHECK(no_bias.named_parameters().size() == 1);
  CHECK_FALSE(no_bias.bias.defined());
  CHECK_THROWS_WITH_AS(small(Tensor::zeros({2, 4})), doctest::Contains("expected an input [..., 3], got [2, 4]"),
                       Error);
  CHECK_THROWS_WITH_AS(nn::Linear(0, 2, gen), doctest::Contains("feature counts must be >= 1"), Error);
}

TEST_CASE("ReLU, LeakyReLU and Flatten: values and shapes") {
  Tensor x = Tensor::from_doubles({-2, -0.5, 0, 3}, {1, 4});
  CHECK(nn::ReLU()(x).to_doubles() == std::vector<double>{0, 0, 0, 3});
  auto leaky = nn::LeakyReLU(0.1)(x).to_doubles();
  CHECK(leaky[0] == doctest::Approx(-0.2));
  CHECK(leaky[3] == 3.0);
  Generator gen(2);
  Tensor v = randn({2, 3, 4, 5, 6}, gen);
  CHECK(nn::Flatten()(v).shape() == Shape{2, 360});
  CHECK(nn::Flatten(2)(v).shape() == Shape{2, 3, 120});
  CHECK(nn::Flatten(1, 2)(v).shape() == Shape{2, 12, 5, 6});
  CHECK(nn::Flatten()(v).to_doubles() == v.to_doubles());
}

TEST_CASE("Dropout: identity in evaluation, the same masks for the same seed, scaled survivors") {
  Tensor x = Tensor::ones({4, 1000});
  nn::Dropout a(0.25, 7), b(0.25, 7), c(0.25, 8);
  Tensor ya = a(x), yb = b(x), yc = c(x);
  CHECK(ya.shape() == x.shape());
  CHECK(ya.to_doubles() == yb.to_doubles());  // same seed, same mask
  CHECK(ya.to_doubles() != yc.to_doubles());
  CHECK(a(x).to_doubles() != ya.to_doubles());  // the generator advances: a new mask per call
  std::int64_t zeros = 0;
  for (double v : ya.to_doubles()) {
    CHECK((v == 0.0 || v == doctest::Approx(1.0 / 0.75)));
    zeros += v == 0.0;
  }
  CHECK(zeros > 800);  // 1000 expected of 4000
  CHECK(zeros < 1200);
  a.eval();
  CHECK_FALSE(a.is_training());
  Tensor e = a(x);
  CHECK(e.to_doubles() == x.to_doubles());
  CHECK_THROWS_WITH_AS(nn::Dropout(1.5), doctest::Contains("p must be in [0, 1], got 1.5"), Error);
}

TEST_CASE("BatchNorm3d: buffers move in training, stay in evaluation, [N, C] input as BatchNorm1d") {
  nn::BatchNorm3d bn(3);
  CHECK(names_of(bn.named_parameters()) == std::vector<std::string>{"weight", "bias"});
  CHECK(names_of(bn.named_buffers()) == std::vector<std::string>{"running_mean", "running_var"});
  CHECK(names_of(bn.state_dict()) == std::vector<std::string>{"weight", "bias", "running_mean", "running_var"});
  CHECK_FALSE(bn.running_mean.requires_grad());

  // Channel c holds the values c + {0, 1, 2, 3} spread over N = 2 and D*H*W = 2: mean c + 1.5,
  // unbiased variance 5/3.
  std::vector<double> values(2 * 3 * 2);
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int s = 0; s < 2; ++s) values[(n * 3 + c) * 2 + s] = c + 2 * n + s;
  Tensor x = Tensor::from_doubles(values, {2, 3, 1, 1, 2});
  Tensor y = bn(x);
  CHECK(y.shape() == x.shape());
  auto mean = bn.running_mean.to_doubles(), var = bn.running_var.to_doubles();
  for (int c = 0; c < 3; ++c) {
    CHECK(mean[c] == doctest::Approx(0.1 * (c + 1.5)));
    CHECK(var[c] == doctest::Approx(0.9 + 0.1 * 5.0 / 3.0));
  }
  auto yv = y.to_doubles();  // normalised by the batch statistics (biased variance 1.25)
  CHECK(yv[0] == doctest::Approx(-1.5 / std::sqrt(1.25 + 1e-5)).epsilon(1e-5));

  bn.eval();
  const auto mean_before = bn.running_mean.to_doubles(), var_before = bn.running_var.to_doubles();
  Tensor z = bn(x);
  CHECK(bn.running_mean.to_doubles() == mean_before);
  CHECK(bn.running_var.to_doubles() == var_before);
  auto zv = z.to_doubles();  // normalised by the running statistics
  CHECK(zv[0] == doctest::Approx((0.0 - mean_before[0]) / std::sqrt(var_before[0] + 1e-5)).epsilon(1e-5));
  CHECK(zv[11] == doctest::Approx((5.0 - mean_before[2]) / std::sqrt(var_before[2] + 1e-5)).epsilon(1e-5));

  nn::BatchNorm1d bn1(4);
  Generator gen(3);
  Tensor f = randn({8, 4}, gen);
  CHECK(bn1(f).shape() == Shape{8, 4});
  for (double m : bn1.running_mean.to_doubles()) CHECK(m != 0.0);
  CHECK_THROWS_WITH_AS(bn(randn({2, 4, 1, 1, 2}, gen)),
                       doctest::Contains("expected an input [N, 3] or [N, 3, D, H, W]"), Error);
  CHECK_THROWS_WITH_AS(nn::BatchNorm3d(3, 1e-5, 1.5), doctest::Contains("momentum must be in [0, 1]"), Error);
}

TEST_CASE("Pooling and Upsample layers: output shapes and values") {
  Generator gen(4);
  Tensor x = randn({2, 3, 4, 6, 8}, gen);
  CHECK(nn::MaxPool3d(Pool3dOptions{{1, 2, 2}})(x).shape() == Shape{2, 3, 4, 3, 4});
  CHECK(nn::MaxPool3d()(x).shape() == Shape{2, 3, 2, 3, 4});
  CHECK(nn::AvgPool3d(Pool3dOptions{{3, 3, 3}, {1, 1, 1}, {1, 1, 1}})(x).shape() == x.shape());
  CHECK(nn::AdaptiveAvgPool3d({1, 1, 1})(x).shape() == Shape{2, 3, 1, 1, 1});
  CHECK(nn::AdaptiveAvgPool3d({2, 3, 5})(x).shape() == Shape{2, 3, 2, 3, 5});
  CHECK(nn::Upsample(Upsample3dOptions{}.with_scale_factor({1, 2, 2}))(x).shape() == Shape{2, 3, 4, 12, 16});
  CHECK(nn::Upsample(Upsample3dOptions{}.with_mode(UpsampleMode::trilinear).with_size({5, 7, 9}))(x).shape() ==
        Shape{2, 3, 5, 7, 9});

  Tensor v = Tensor::from_doubles({1, 5, 2, 0, 3, 4, 7, -1}, {1, 1, 1, 2, 4});
  CHECK(nn::MaxPool3d(Pool3dOptions{{1, 2, 2}})(v).to_doubles() == std::vector<double>{5, 7});
  CHECK(nn::AvgPool3d(Pool3dOptions{{1, 2, 2}})(v).to_doubles() == std::vector<double>{13.0 / 4, 8.0 / 4});
  CHECK(nn::AdaptiveAvgPool3d({1, 1, 1})(v).item() == doctest::Approx(21.0 / 8));
  CHECK(nn::Upsample(Upsample3dOptions{}.with_scale_factor({1, 1, 2}))(v).to_doubles() ==
        std::vector<double>{1, 1, 5, 5, 2, 2, 0, 0, 3, 3, 4, 4, 7, 7, -1, -1});
  CHECK_THROWS_AS(nn::MaxPool3d()(randn({2, 3, 8, 8}, gen)), Error);
  CHECK_THROWS_WITH_AS(nn::AdaptiveAvgPool3d({0, 1, 1}), doctest::Contains("output size must be >= 1"), Error);
}

TEST_CASE("Sequential: children named 0, 1, ...; forward chains them; modes propagate") {
  Generator gen(5);
  nn::Sequential seq;
  CHECK(seq.empty());
  Tensor x = randn({3, 4}, gen);
  CHECK(seq(x).to_doubles() == x.to_doubles());  // empty: the identity
  auto fc1 = seq.add(std::make_shared<nn::Linear>(4, 6, gen));
  seq.add(std::make_shared<nn::ReLU>());
  auto drop = seq.add(std::make_shared<nn::Dropout>(0.5, 1));
  auto fc2 = seq.add(std::make_shared<nn::Linear>(6, 2, gen));
  CHECK(seq.size() == 4);
  CHECK(names_of(seq.named_parameters()) == std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias"});
  CHECK(seq.at(3).get() == fc2.get());
  seq.eval();
  CHECK_FALSE(drop->is_training());
  Tensor y = seq(x);
  CHECK(y.shape() == Shape{3, 2});
  CHECK(testing::max_abs_diff(y, (*fc2)(ops::relu((*fc1)(x)))) == 0.0);
  seq.train();
  CHECK(drop->is_training());
  CHECK_THROWS_WITH_AS(seq.at(4), doctest::Contains("index 4 is out of range (the chain has 4 layers)"), Error);

  nn::Sequential built({std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(24, 3, gen)});
  CHECK(built(randn({2, 2, 3, 4}, gen)).shape() == Shape{2, 3});
  CHECK(find_tensor(built.named_parameters(), "1.weight").shape() == Shape{3, 24});
  CHECK_THROWS_WITH_AS(seq.add(std::shared_ptr<nn::ReLU>()), doctest::Contains("layer 4 is null"), Error);
}
