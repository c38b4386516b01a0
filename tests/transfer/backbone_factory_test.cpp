#include "tlk/transfer/backbone_factory.h"

#include "test_util.h"
#include "tlk/nn/lenet.h"
#include "tlk/nn/linear.h"
#include "tlk/nn/resnet3d.h"

using namespace tlk;

TEST_CASE("backbone factory: built-ins are listed with their options") {
  const auto list = transfer::list_backbones();
  auto find = [&](const std::string& name) -> std::string {
    for (const auto& b : list)
      if (b.name == name) return b.description;
    return "";
  };
  CHECK(find("unet3d").find("levels (5)") != std::string::npos);
  CHECK(find("unet3d").find("deep_supervision") != std::string::npos);
  CHECK(find("lenet").find("image_size (28)") != std::string::npos);
  CHECK(find("resnet3d-small").find("widths") != std::string::npos);
  for (std::size_t i = 1; i < list.size(); ++i) CHECK(list[i - 1].name < list[i].name);
  const std::string text = transfer::format_backbone_list();
  CHECK(text.find("  unet3d ") != std::string::npos);
  CHECK(text.find("  lenet ") != std::string::npos);
}

TEST_CASE("backbone factory: create built-ins, typed and untyped") {
  Generator gen(1);
  auto net = transfer::create_backbone("lenet", nn::ModuleOptions{}.with_num_classes(4).with("image_size", 32), gen);
  REQUIRE(net);
  CHECK(transfer::classifier_feature_count(*net) == 500);
  CHECK(transfer::as_classifier(*net, "test").num_classes() == 4);
  CHECK_THROWS_WITH_AS(transfer::as_unet(*net, "MultiScaleDiscriminator"),
                       doctest::Contains("MultiScaleDiscriminator: needs a UNet"), Error);

  auto unet = transfer::create_backbone_as<nn::UNet>(
      "unet3d", nn::ModuleOptions{}.with("levels", 3).with("base_features", 4).with("max_features", 8), gen);
  REQUIRE(unet);
  CHECK(unet->config().levels() == 3);
  CHECK_THROWS_WITH_AS(transfer::create_backbone_as<nn::Classifier>(
                           "unet3d", nn::ModuleOptions{}.with("levels", 2).with("base_features", 2), gen),
                       doctest::Contains("is not a tlk::nn::Classifier"), Error);
  CHECK_THROWS_WITH_AS(transfer::classifier_feature_count(*unet), doctest::Contains("not a classifier"), Error);
  CHECK_THROWS_WITH_AS(transfer::create_backbone("no-such-net", {}, gen), doctest::Contains("unknown module"), Error);
  CHECK_THROWS_WITH_AS(transfer::create_backbone("lenet", nn::ModuleOptions{}.with("levls", 3), gen),
                       doctest::Contains("levls"), Error);
}

TEST_CASE("backbone factory: a user backbone is registered, described and built") {
  const std::string name = "test-transfer-linear";
  transfer::register_backbone(
      name,
      [](const nn::ModuleOptions& o, Generator& gen) -> std::shared_ptr<nn::Module> {
        return std::make_shared<nn::Linear>(o.in_channels, o.num_classes, gen, o.get_bool("bias", true));
      },
      "one linear layer; options: bias (true)");
  bool listed = false;
  for (const auto& b : transfer::list_backbones())
    if (b.name == name) listed = b.description == "one linear layer; options: bias (true)";
  CHECK(listed);
  CHECK(nn::ModuleRegistry::instance().contains(name));  // configs and checkpoints find it too

  Generator gen(2);
  auto net = transfer::create_backbone(
      name, nn::ModuleOptions{}.with_in_channels(6).with_num_classes(3).with("bias", false), gen);
  const auto params = net->named_parameters();
  REQUIRE(params.size() == 1);
  CHECK(params[0].second.shape() == Shape{3, 6});
  CHECK(transfer::head_parameter_prefixes(*net).empty());

  CHECK_THROWS_WITH_AS(
      transfer::register_backbone(
          name, [](const nn::ModuleOptions&, Generator&) { return std::shared_ptr<nn::Module>(); }, "again"),
      doctest::Contains("already registered"), Error);
}

TEST_CASE("backbone factory: UNet encoder channels, strides and scales") {
  Generator gen(3);
  nn::UNetConfig c = nn::UNetConfig::isotropic(4, 1, 2);
  c.base_features = 4;
  c.max_features = 12;
  c.strides = {{1, 1, 1}, {1, 2, 2}, {2, 2, 2}, {2, 2, 2}};
  c.kernel_sizes = {{1, 3, 3}, {3, 3, 3}, {3, 3, 3}, {3, 3, 3}};
  nn::UNet unet(c, gen);
  CHECK(transfer::unet_encoder_channels(unet) == std::vector<std::int64_t>{4, 8, 12, 12});
  CHECK(transfer::unet_encoder_strides(unet) == std::vector<Int3>{{1, 1, 1}, {1, 2, 2}, {2, 2, 2}, {2, 2, 2}});
  CHECK(transfer::unet_encoder_scales(unet) == std::vector<Int3>{{1, 1, 1}, {1, 2, 2}, {2, 4, 4}, {4, 8, 8}});

  // The numbers agree with the skips a forward pass produces.
  nn::UNet small(nn::UNetConfig::isotropic(3, 1, 2), gen);
  Tensor x = randn({1, 1, 8, 8, 8}, gen);
  {
    NoGradGuard no_grad;
    small.forward(x);
  }
  const auto channels = transfer::unet_encoder_channels(small);
  const auto scales = transfer::unet_encoder_scales(small);
  REQUIRE(small.encoder_features().size() == channels.size());
  for (std::size_t i = 0; i < channels.size(); ++i) {
    const Tensor& f = small.encoder_features()[i];
    CHECK(f.size(1) == channels[i]);
    CHECK(f.size(2) == 8 / scales[i][0]);
    CHECK(f.size(4) == 8 / scales[i][2]);
  }
}

TEST_CASE("backbone factory: head prefixes and feature counts of the built-ins") {
  Generator gen(4);
  nn::UNetConfig c = nn::UNetConfig::isotropic(3, 1, 2);
  c.base_features = 2;
  nn::UNet unet(c, gen);
  nn::LeNet lenet(nn::LeNetOptions{}.with_widths(4, 6, 10), gen);
  nn::ResNet3d resnet(
      nn::ResNet3dOptions{}.with_widths({4, 8}).with_blocks({1, 1}).with_strides({{1, 1, 1}, {2, 2, 2}}), gen);
  CHECK(transfer::head_parameter_prefixes(unet) == std::vector<std::string>{"decoder.heads"});
  CHECK(transfer::head_parameter_prefixes(lenet) == std::vector<std::string>{"fc2"});
  CHECK(transfer::head_parameter_prefixes(resnet) == std::vector<std::string>{"fc"});
  CHECK(transfer::classifier_feature_count(lenet) == 10);
  CHECK(transfer::classifier_feature_count(resnet) == 8);
  // Every head prefix names real parameters whose first extent is the class count.
  for (const nn::Module* m : std::vector<const nn::Module*>{&unet, &lenet, &resnet}) {
    int heads = 0;
    for (const auto& [name, p] : m->named_parameters())
      if (name.rfind(transfer::head_parameter_prefixes(*m)[0] + ".", 0) == 0) {
        ++heads;
        CHECK(p.size(0) == (m == &lenet ? 10 : 2));
      }
    CHECK(heads > 0);
  }
}
