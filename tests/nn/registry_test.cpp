// The module registry: built-in networks by name, options, errors, user registration.
#include "tlk/nn/registry.h"

#include "test_util.h"
#include "tlk/nn/activation.h"
#include "tlk/nn/lenet.h"
#include "tlk/nn/linear.h"
#include "tlk/nn/resnet3d.h"
#include "tlk/nn/sequential.h"

using namespace tlk;

TEST_CASE("ModuleRegistry: the built-in networks are registered and built from options") {
  auto& registry = nn::ModuleRegistry::instance();
  CHECK(&registry == &nn::ModuleRegistry::instance());
  for (const char* name : {"lenet", "resnet3d-small", "unet3d"}) {
    CAPTURE(name);
    CHECK(registry.contains(name));
  }
  const auto names = registry.names();
  CHECK(std::is_sorted(names.begin(), names.end()));
  Generator gen(1);

  auto unet = std::dynamic_pointer_cast<nn::UNet>(registry.create("unet3d",
                                                                  nn::ModuleOptions{}
                                                                      .with_in_channels(2)
                                                                      .with_num_classes(3)
                                                                      .with("levels", 3)
                                                                      .with("base_features", 4)
                                                                      .with("max_features", 6)
                                                                      .with("deep_supervision", false),
                                                                  gen));
  REQUIRE(unet != nullptr);
  CHECK(unet->config().levels() == 3);
  CHECK(unet->config().features(2) == 6);
  auto out = unet->forward(randn({1, 2, 8, 8, 8}, gen));
  REQUIRE(out.size() == 1);
  CHECK(out[0].shape() == Shape{1, 3, 8, 8, 8});

  auto lenet = std::dynamic_pointer_cast<nn::LeNet>(registry.create(
      "lenet", nn::ModuleOptions{}.with_num_classes(5).with("image_size", "32").with("hidden", 64), gen));
  REQUIRE(lenet != nullptr);
  CHECK(lenet->options().image_size == 32);
  CHECK(lenet->forward(randn({2, 1, 1, 32, 32}, gen)).shape() == Shape{2, 5});

  auto resnet = std::dynamic_pointer_cast<nn::ResNet3d>(
      registry.create("resnet3d-small", nn::ModuleOptions{}.with("widths", "4, 8,12"), gen));
  REQUIRE(resnet != nullptr);
  CHECK(resnet->options().widths == std::vector<std::int64_t>{4, 8, 12});
  CHECK(resnet->forward(randn({2, 1, 8, 8, 8}, gen)).shape() == Shape{2, 2});
  auto standard = std::dynamic_pointer_cast<nn::ResNet3d>(registry.create("resnet3d-small", {}, gen));
  CHECK(standard->options().widths == std::vector<std::int64_t>{16, 32, 64, 128});
}

TEST_CASE("ModuleRegistry: unknown names, unused options and bad values are errors that say so") {
  auto& registry = nn::ModuleRegistry::instance();
  Generator gen(2);
  std::string message;
  try {
    registry.create("resnet50", {}, gen);
  } catch (const Error& e) {
    message = e.what();
  }
  CHECK(message.find("unknown module 'resnet50' (known: ") != std::string::npos);
  for (const char* known : {"lenet", "resnet3d-small", "unet3d"}) CHECK(message.find(known) != std::string::npos);
  CHECK_THROWS_WITH_AS(registry.create("lenet", nn::ModuleOptions{}.with("image_sise", 32), gen),
                       doctest::Contains("module 'lenet' does not take the option(s) image_sise"), Error);
  CHECK_THROWS_WITH_AS(registry.create("unet3d", nn::ModuleOptions{}.with("levels", "four"), gen),
                       doctest::Contains("option 'levels' must be an integer, got 'four'"), Error);
  CHECK_THROWS_WITH_AS(registry.create("resnet3d-small", nn::ModuleOptions{}.with("widths", "8,,16"), gen),
                       doctest::Contains("comma-separated list of integers"), Error);
  CHECK_THROWS_WITH_AS(registry.create("unet3d", nn::ModuleOptions{}.with("deep_supervision", "maybe"), gen),
                       doctest::Contains("must be true or false"), Error);

  nn::ModuleOptions o = nn::ModuleOptions{}.with("ratio", 0.25).with("flag", "Off").with("name", "x");
  CHECK(o.get_double("ratio", 1.0) == 0.25);
  CHECK_FALSE(o.get_bool("flag", true));
  CHECK(o.get_int("absent", 7) == 7);
  CHECK(o.unread_keys() == std::vector<std::string>{"name"});
}

TEST_CASE("ModuleRegistry: users register their own modules by name") {
  auto& registry = nn::ModuleRegistry::instance();
  registry.add("test-mlp", [](const nn::ModuleOptions& o, Generator& gen) -> std::shared_ptr<nn::Module> {
    const std::int64_t hidden = o.get_int("hidden", 8);
    auto seq = std::make_shared<nn::Sequential>();
    seq->add(std::make_shared<nn::Linear>(o.in_channels, hidden, gen));
    seq->add(std::make_shared<nn::ReLU>());
    seq->add(std::make_shared<nn::Linear>(hidden, o.num_classes, gen));
    return seq;
  });
  CHECK(registry.contains("test-mlp"));
  Generator gen(3);
  auto module =
      registry.create("test-mlp", nn::ModuleOptions{}.with_in_channels(5).with_num_classes(3).with("hidden", 4), gen);
  auto mlp = std::dynamic_pointer_cast<nn::Sequential>(module);
  REQUIRE(mlp != nullptr);
  CHECK(mlp->named_parameters().front().second.shape() == Shape{4, 5});
  CHECK(mlp->forward(randn({2, 5}, gen)).shape() == Shape{2, 3});
  CHECK_THROWS_WITH_AS(registry.add("test-mlp", [](const nn::ModuleOptions&, Generator&) { return nullptr; }),
                       doctest::Contains("'test-mlp' is already registered"), Error);
  CHECK_THROWS_WITH_AS(registry.add("lenet", [](const nn::ModuleOptions&, Generator&) { return nullptr; }),
                       doctest::Contains("already registered"), Error);
  registry.add("test-null",
               [](const nn::ModuleOptions&, Generator&) -> std::shared_ptr<nn::Module> { return nullptr; });
  CHECK_THROWS_WITH_AS(registry.create("test-null", {}, gen), doctest::Contains("returned null"), Error);
}
