// Classifier backbones: LeNet (2-D images as one-slice volumes) and the small 3D ResNet.
#include <cmath>

#include "test_util.h"
#include "tlk/nn/lenet.h"
#include "tlk/nn/resnet3d.h"
#include "tlk/nn/sgd.h"

using namespace tlk;

namespace {

Tensor find_tensor(const std::vector<nn::NamedTensor>& named, const std::string& name) {
  for (const auto& [n, t] : named)
    if (n == name) return t;
  return Tensor();
}

}  // namespace

TEST_CASE("LeNet: parameter names and shapes, features and logits, 4-D input, errors") {
  Generator gen(1);
  nn::LeNet net(nn::LeNetOptions{}, gen);  // 28x28 digits: 28 -> 24 -> 12 -> 8 -> 4
  std::vector<std::string> names;
  for (auto& [n, t] : net.named_parameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight",
                                          "fc1.bias", "fc2.weight", "fc2.bias"});
  auto params = net.named_parameters();
  CHECK(find_tensor(params, "conv1.weight").shape() == Shape{20, 1, 1, 5, 5});
  CHECK(find_tensor(params, "conv2.weight").shape() == Shape{50, 20, 1, 5, 5});
  CHECK(find_tensor(params, "fc1.weight").shape() == Shape{500, 800});
  CHECK(find_tensor(params, "fc2.weight").shape() == Shape{10, 500});
  CHECK(net.feature_count() == 500);
  CHECK(net.num_classes() == 10);

  // CIFAR-sized colour images with smaller widths: 32 -> 28 -> 14 -> 10 -> 5.
  nn::LeNet colour(
      nn::LeNetOptions{}.with_in_channels(3).with_num_classes(4).with_image_size(32).with_widths(6, 16, 40), gen);
  CHECK(colour.fc1->in_features() == 16 * 5 * 5);
  Tensor x = randn({3, 3, 1, 32, 32}, gen);
  Tensor f = colour.features(x);
  CHECK(f.shape() == Shape{3, 40});
  for (double v : f.to_doubles()) CHECK(v >= 0.0);  // after the ReLU
  Tensor logits = colour.forward(x);
  CHECK(logits.shape() == Shape{3, 4});
  CHECK(testing::max_abs_diff(colour.classify(f), logits) == 0.0);
  CHECK(testing::max_abs_diff(colour.forward(x.reshape({3, 3, 32, 32})), logits) == 0.0);
  // The stage maps feature distillation taps: the two pooled convolution outputs, on the graph.
  CHECK(colour.stage_channels() == std::vector<std::int64_t>{6, 16});
  REQUIRE(colour.stage_features().size() == 2);
  CHECK(colour.stage_features()[0].shape() == Shape{3, 6, 1, 14, 14});
  CHECK(colour.stage_features()[1].shape() == Shape{3, 16, 1, 5, 5});
  CHECK(colour.stage_features()[1].requires_grad());

  // "Same" padding keeps 12x12 images usable: 12 -> 12 -> 6 -> 6 -> 3.
  CHECK(nn::LeNetOptions{}.with_image_size(12).with_padding(2).final_map_size() == 3);
  CHECK_THROWS_WITH_AS(nn::LeNet(nn::LeNetOptions{}.with_image_size(12), gen),
                       doctest::Contains("image size 12 is too small"), Error);
  CHECK_THROWS_WITH_AS(colour.forward(randn({2, 3, 1, 28, 28}, gen)),
                       doctest::Contains("expected images [N, 3, 1, 32, 32]"), Error);
  CHECK_THROWS_WITH_AS(colour.forward(randn({2, 3, 2, 32, 32}, gen)), doctest::Contains("one-slice volume"), Error);
}

TEST_CASE("LeNet learns a tiny two-class problem with SGD (a bright square or not)") {
  Generator gen(7);
  const std::int64_t n = 64, s = 12;
  std::vector<double> pixels(static_cast<std::size_t>(n * s * s));
  std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    labels[i] = i % 2;
    double* img = pixels.data() + i * s * s;
    for (std::int64_t p = 0; p < s * s; ++p) img[p] = 0.3 * gen.normal();
    if (labels[i] == 1) {  // a bright 4x4 square somewhere
      const auto r = static_cast<std::int64_t>(gen.below(s - 3)), c = static_cast<std::int64_t>(gen.below(s - 3));
      for (std::int64_t y = r; y < r + 4; ++y)
        for (std::int64_t x = c; x < c + 4; ++x) img[y * s + x] += 1.0;
    }
  }
  Tensor images = Tensor::from_doubles(pixels, {n, 1, 1, s, s});
  Tensor targets = Tensor::from_vector(labels, {n});
  nn::LeNet net(nn::LeNetOptions{}.with_num_classes(2).with_image_size(s).with_padding(2).with_widths(6, 12, 32), gen);
  nn::Sgd opt(net.parameters(), nn::SgdOptions{0.05, 0.9, false, 0.0});
  auto accuracy = [&] {
    NoGradGuard guard;
    auto logits = net.forward(images).to_doubles();
    int correct = 0;
    for (std::int64_t i = 0; i < n; ++i) correct += ((logits[2 * i + 1] > logits[2 * i]) ? 1 : 0) == labels[i];
    return static_cast<double>(correct) / static_cast<double>(n);
  };
  double first_loss = 0, last_loss = 0;
  for (int step = 0; step < 30; ++step) {
    opt.zero_grad();
    Tensor loss = ops::cross_entropy(net.forward(images), targets);
    (step == 0 ? first_loss : last_loss) = loss.item();
    loss.backward();
    opt.step();
  }
  CAPTURE(first_loss);
  CAPTURE(last_loss);
  CHECK(last_loss < first_loss);
  CHECK(accuracy() > 0.9);
}

TEST_CASE("ResNet3d: names follow stages.i.blocks.j, projections where the shape changes, output shapes") {
  Generator gen(2);
  nn::ResNet3d net(nn::ResNet3dOptions{}.with_num_classes(3), gen);
  auto params = net.named_parameters();
  CHECK(params.front().first == "conv1.weight");
  CHECK(params.back().first == "fc.bias");
  CHECK(find_tensor(params, "conv1.weight").shape() == Shape{16, 1, 3, 3, 3});
  CHECK(find_tensor(params, "stages.0.blocks.0.conv1.weight").shape() == Shape{16, 16, 3, 3, 3});
  CHECK_FALSE(find_tensor(params, "stages.0.blocks.0.conv1.bias").defined());           // BN follows
  CHECK_FALSE(find_tensor(params, "stages.0.blocks.0.downsample.0.weight").defined());  // identity shortcut
  CHECK(find_tensor(params, "stages.1.blocks.0.conv1.weight").shape() == Shape{32, 16, 3, 3, 3});
  CHECK(find_tensor(params, "stages.1.blocks.0.downsample.0.weight").shape() == Shape{32, 16, 1, 1, 1});
  CHECK(find_tensor(params, "stages.3.blocks.0.downsample.1.weight").shape() == Shape{128});
  CHECK(find_tensor(params, "fc.weight").shape() == Shape{3, 128});
  CHECK(find_tensor(net.named_buffers(), "stages.2.blocks.0.bn2.running_var").shape() == Shape{64});
  CHECK(net.stages->at(1)->is_training());

  Tensor x = randn({2, 1, 8, 12, 10}, gen);  // non-cubic
  CHECK(net.features(x).shape() == Shape{2, 128});
  CHECK(net.forward(x).shape() == Shape{2, 3});
  CHECK(net.stage_channels() == std::vector<std::int64_t>{16, 32, 64, 128});
  REQUIRE(net.stage_features().size() == 4);
  CHECK(net.stage_features()[0].shape() == Shape{2, 16, 8, 12, 10});
  CHECK(net.stage_features()[3].shape() == Shape{2, 128, 1, 2, 2});

  // Two blocks per stage, anisotropic strides, three stages.
  nn::ResNet3d aniso(nn::ResNet3dOptions{}
                         .with_in_channels(2)
                         .with_widths({4, 8, 12})
                         .with_blocks({2, 2, 1})
                         .with_strides({{1, 1, 1}, {1, 2, 2}, {2, 2, 2}}),
                     gen);
  CHECK(find_tensor(aniso.named_parameters(), "stages.0.blocks.1.conv2.weight").shape() == Shape{4, 4, 3, 3, 3});
  CHECK(find_tensor(aniso.named_parameters(), "stages.1.blocks.1.conv1.weight").shape() == Shape{8, 8, 3, 3, 3});
  CHECK(aniso.forward(randn({1, 2, 4, 8, 8}, gen)).shape() == Shape{1, 2});
  CHECK_THROWS_WITH_AS(aniso.forward(randn({1, 1, 4, 8, 8}, gen)),
                       doctest::Contains("expected volumes [N, 2, D, H, W]"), Error);
  CHECK_THROWS_WITH_AS(nn::ResNet3d(nn::ResNet3dOptions{}.with_widths({8, 16}), gen),
                       doctest::Contains("one entry per stage"), Error);
}

TEST_CASE("ResNet3d: every parameter gets a finite, non-zero gradient; eval uses the running statistics") {
  Generator gen(3);
  nn::ResNet3d net(nn::ResNet3dOptions{}.with_widths({4, 6, 8, 10}), gen);
  Tensor x = randn({3, 1, 8, 8, 8}, gen);
  Tensor targets = Tensor::from_vector(std::vector<std::int64_t>{0, 1, 1}, {3});
  Tensor loss = ops::cross_entropy(net.forward(x), targets);
  CHECK(std::isfinite(loss.item()));
  loss.backward();
  for (auto& [name, p] : net.named_parameters()) {
    CAPTURE(name);
    REQUIRE(p.grad().defined());
    double norm = 0;
    for (double g : p.grad().to_doubles()) {
      REQUIRE(std::isfinite(g));
      norm += g * g;
    }
    CHECK(norm > 0.0);
  }
  const auto before = find_tensor(net.named_buffers(), "bn1.running_mean").to_doubles();
  net.eval();
  Tensor a = net.forward(x.narrow(0, 0, 1)), b = net.forward(x);
  CHECK(find_tensor(net.named_buffers(), "bn1.running_mean").to_doubles() == before);
  CHECK(testing::max_abs_diff(a, b.narrow(0, 0, 1)) < 1e-5);  // per-sample in evaluation
}
