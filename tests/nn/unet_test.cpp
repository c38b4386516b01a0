#include "tlk/nn/unet.h"

#include "test_util.h"
#include "tlk/nn/deep_supervision_loss.h"
#include "tlk/nn/registry.h"
#include "tlk/nn/sgd.h"

using namespace tlk;

TEST_CASE("UNet: structure, parameter names and output shapes follow nnUNet's generic UNet") {
  Generator gen(1);
  nn::UNetConfig config = nn::UNetConfig::isotropic(4, 1, 3);
  config.base_features = 4;
  config.max_features = 12;
  nn::UNet net(config, gen);
  CHECK(config.features(0) == 4);
  CHECK(config.features(2) == 12);  // 16 capped at 12
  auto names = net.named_parameters();
  CHECK(names.front().first == "encoder.stages.0.conv1.weight");
  auto find = [&](const std::string& n) {
    for (auto& [name, t] : names)
      if (name == n) return t;
    return Tensor();
  };
  CHECK(find("encoder.stages.1.conv1.weight").shape() == Shape{8, 4, 3, 3, 3});
  CHECK(find("encoder.stages.3.norm2.bias").shape() == Shape{12});
  CHECK(find("decoder.upsample.2.weight").shape() == Shape{12, 12, 2, 2, 2});    // [in, out, k]
  CHECK(find("decoder.stages.0.conv1.weight").shape() == Shape{4, 8, 3, 3, 3});  // after the skip concat
  CHECK(find("decoder.heads.0.weight").shape() == Shape{3, 4, 1, 1, 1});
  CHECK_FALSE(find("decoder.heads.0.bias").defined());
  CHECK(net.named_parameters("decoder.heads.").size() == 3);

  Tensor x = randn({2, 1, 16, 16, 16}, gen);
  auto outputs = net.forward(x);
  REQUIRE(outputs.size() == 3);
  CHECK(outputs[0].shape() == Shape{2, 3, 16, 16, 16});
  CHECK(outputs[1].shape() == Shape{2, 3, 8, 8, 8});
  CHECK(outputs[2].shape() == Shape{2, 3, 4, 4, 4});
  CHECK(net.encoder_features().size() == 4);
  CHECK(net.feature("encoder.stages.3").is_same(net.encoder_features()[3]));
  CHECK(net.feature("decoder.stages.0").shape() == Shape{2, 4, 16, 16, 16});
  CHECK(net.feature_names().size() == 7);
  CHECK_THROWS_WITH_AS(net.feature("encoder.stages.9"), doctest::Contains("no feature 'encoder.stages.9'"), Error);
  CHECK(net.encoder_features()[3].shape() == Shape{2, 12, 2, 2, 2});
  auto w = net.deep_supervision_weights();
  CHECK(w[0] == doctest::Approx(4.0 / 6.0));
  CHECK(w[1] == doctest::Approx(2.0 / 6.0));
  CHECK(w[2] == 0.0);
  CHECK_THROWS_WITH_AS(net.forward(randn({1, 1, 12, 16, 16}, gen)), doctest::Contains("divisible"), Error);
  CHECK_THROWS_WITH_AS(net.forward(randn({1, 2, 16, 16, 16}, gen)), doctest::Contains("expected input [N, 1"), Error);
}

TEST_CASE("UNet with anisotropic kernels and strides (1x3x3, 1x2x2)") {
  Generator gen(2);
  nn::UNetConfig config;
  config.base_features = 4;
  config.max_features = 16;
  config.kernel_sizes = {{1, 3, 3}, {3, 3, 3}, {3, 3, 3}};
  config.strides = {{1, 1, 1}, {1, 2, 2}, {2, 2, 2}};
  nn::UNet net(config, gen);
  auto outputs = net.forward(randn({1, 1, 4, 16, 16}, gen));
  CHECK(outputs[0].shape() == Shape{1, 2, 4, 16, 16});
  CHECK(outputs[1].shape() == Shape{1, 2, 4, 8, 8});
  config.strides[0] = {1, 2, 2};
  CHECK_THROWS_WITH_AS(nn::UNet(config, gen), doctest::Contains("stage 0 must have stride"), Error);
}

TEST_CASE("SGD with Nesterov momentum follows torch.optim.SGD's update") {
  Tensor p = Tensor::from_vector(std::vector<float>{1.0f, -2.0f}, {2}).set_requires_grad();
  nn::Sgd opt({p}, nn::SgdOptions{0.1, 0.9, true, 0.01});
  std::vector<double> w{1.0, -2.0}, buf{0, 0};
  for (int step = 0; step < 3; ++step) {
    p.set_grad(Tensor::from_vector(std::vector<float>{0.5f, 0.25f * static_cast<float>(step + 1)}, {2}));
    opt.step();
    const double g[2] = {0.5, 0.25 * (step + 1)};
    for (int j = 0; j < 2; ++j) {  // the formula, written out independently
      const double d = g[j] + 0.01 * w[j];
      buf[j] = step == 0 ? d : 0.9 * buf[j] + d;
      w[j] -= 0.1 * (d + 0.9 * buf[j]);
    }
  }
  auto v = p.to_doubles();
  CHECK(v[0] == doctest::Approx(w[0]).epsilon(1e-6));
  CHECK(v[1] == doctest::Approx(w[1]).epsilon(1e-6));
}

TEST_CASE("deep supervision loss: nearest-downsampled targets, weighted sum, gradients flow to the network") {
  Tensor labels = Tensor::from_vector(std::vector<std::int64_t>(2 * 4 * 4 * 4, 0), {2, 4, 4, 4});
  {
    std::int64_t* l = labels.data<std::int64_t>();
    for (std::int64_t i = 0; i < labels.numel(); ++i) l[i] = (i % 2 == 0) ? 1 : 0;  // even W positions are 1
  }
  Tensor small = nn::downsample_labels(labels, {2, 2, 2});
  CHECK(small.shape() == Shape{2, 2, 2, 2});
  for (double v : small.to_doubles()) CHECK(v == 1.0);  // nearest picks W = 0 and 2: both ones
  Generator gen(3);
  nn::UNetConfig config = nn::UNetConfig::isotropic(3, 1, 2);
  config.base_features = 4;
  nn::UNet net(config, gen);
  Tensor x = randn({2, 1, 4, 4, 4}, gen);
  Tensor loss = nn::deep_supervision_loss(net.forward(x), labels, net.deep_supervision_weights());
  CHECK(std::isfinite(loss.item()));
  loss.backward();
  for (auto& [name, p] : net.named_parameters("encoder.")) {
    CAPTURE(name);
    CHECK(p.grad().defined());
  }
  CHECK_THROWS_WITH_AS(nn::downsample_labels(labels, {3, 2, 2}), doctest::Contains("not a multiple"), Error);
}

TEST_CASE("state_dict and load_state_dict: strict and non-strict, with a report of what did not match") {
  Generator gen(4);
  nn::UNetConfig config = nn::UNetConfig::isotropic(3, 1, 2);
  config.base_features = 4;
  nn::UNet a(config, gen), b(config, gen);
  auto state = a.state_dict();
  CHECK(state.size() == a.named_parameters().size());  // the UNet has no buffers
  auto report = b.load_state_dict(state);
  CHECK(report.complete());
  for (std::size_t i = 0; i < state.size(); ++i)
    CHECK(testing::max_abs_diff(b.state_dict()[i].second, state[i].second) == 0.0);

  // Another class count: the heads mismatch; strict refuses and copies nothing, non-strict copies the rest.
  nn::UNetConfig three = config;
  three.num_classes = 3;
  nn::UNet c(three, gen);
  const auto before = c.state_dict().front().second.to_doubles();
  CHECK_THROWS_WITH_AS(c.load_state_dict(state),
                       doctest::Contains("shape mismatch: decoder.heads.0.weight: [2, 4, 1, 1, 1] vs [3, 4, 1, 1, 1]"),
                       Error);
  CHECK(c.state_dict().front().second.to_doubles() == before);
  auto partial = c.load_state_dict(state, false);
  CHECK(partial.mismatched.size() == 2);
  CHECK(partial.missing.empty());
  CHECK(testing::max_abs_diff(c.state_dict().front().second, state.front().second) == 0.0);
  state.push_back({"extra.weight", Tensor::zeros({1})});
  state.erase(state.begin());
  auto r = b.load_state_dict(state, false);
  CHECK(r.missing == std::vector<std::string>{"encoder.stages.0.conv1.weight"});
  CHECK(r.unexpected == std::vector<std::string>{"extra.weight"});
}

TEST_CASE("unet3d from the registry: anisotropic plans and nnUNet v2's biases as options") {
  Generator gen(6);
  auto options = nn::ModuleOptions{}
                     .with_num_classes(3)
                     .with("levels", 3)
                     .with("base_features", 4)
                     .with("kernel_sizes", "1x3x3,3x3x3,3x3x3")
                     .with("strides", "1x1x1,1x2x2,2x2x2")
                     .with("upsample_bias", true)
                     .with("head_bias", true);
  auto net = std::dynamic_pointer_cast<nn::UNet>(nn::ModuleRegistry::instance().create("unet3d", options, gen));
  REQUIRE(net);
  CHECK(net->config().kernel_sizes[0] == Int3{1, 3, 3});
  CHECK(net->forward(randn({1, 1, 4, 8, 8}, gen))[0].shape() == Shape{1, 3, 4, 8, 8});
  bool head_bias = false, upsample_bias = false;
  for (auto& [name, p] : net->named_parameters()) {
    head_bias = head_bias || name == "decoder.heads.0.bias";
    upsample_bias = upsample_bias || name == "decoder.upsample.1.bias";
  }
  CHECK(head_bias);
  CHECK(upsample_bias);
  CHECK_THROWS_WITH_AS(nn::ModuleRegistry::instance().create("unet3d", options.with("strides", "1x1,2x2"), gen),
                       doctest::Contains("expects DxHxW triples"), Error);
}
