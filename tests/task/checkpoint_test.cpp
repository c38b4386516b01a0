#include "tlk/task/checkpoint.h"

#include "test_util.h"
#include "tlk/io/hdf5_file.h"
#include "tlk/nn/deep_supervision_loss.h"
#include "tlk/nn/sgd.h"
#include "tlk/nn/unet.h"

using namespace tlk;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / "tlk-task-test";
  fs::create_directories(dir);
  return dir / name;
}

nn::UNetConfig tiny_config() {
  nn::UNetConfig c = nn::UNetConfig::isotropic(3, 1, 2);
  c.base_features = 4;
  c.max_features = 8;
  return c;
}

// A training run whose every random draw (weights, batches) comes from `gen`.
struct Run {
  Generator gen;
  std::shared_ptr<nn::UNet> net;
  std::shared_ptr<nn::Sgd> sgd;
  std::int64_t iteration = 0;

  explicit Run(std::uint64_t seed) : gen(seed) {
    net = std::make_shared<nn::UNet>(tiny_config(), gen);
    sgd = std::make_shared<nn::Sgd>(nn::single_group(*net), nn::SgdOptions{0.01, 0.99, true, 3e-5});
  }
  double step() {
    Tensor x = randn({2, 1, 8, 8, 8}, gen);
    Tensor labels = rand({2, 8, 8, 8}, gen, 0, 2).to(DType::i64);
    sgd->zero_grad();
    Tensor loss = nn::deep_supervision_loss(net->forward(x), labels, net->deep_supervision_weights());
    loss.backward();
    sgd->step();
    ++iteration;
    return loss.item();
  }
  task::Checkpoint checkpoint() const {
    task::Checkpoint c;
    c.model = net->state_dict();
    c.optimizer = sgd->state();
    c.rng_state = gen.state();
    c.iteration = iteration;
    c.epoch = 1;
    c.metadata["config"] = "levels=3 base=4";
    return c;
  }
  void restore(const task::Checkpoint& c) {
    net->load_state_dict(c.model);
    sgd->load_state(c.optimizer);
    gen.set_state(c.rng_state);
    iteration = c.iteration;
  }
};

}  // namespace

TEST_CASE("a resumed run continues exactly where it stopped") {
  Run uninterrupted(7);
  std::vector<double> expected;
  for (int i = 0; i < 5; ++i) expected.push_back(uninterrupted.step());

  Run first(7);
  for (int i = 0; i < 2; ++i) CHECK(first.step() == expected[static_cast<std::size_t>(i)]);
  const fs::path path = scratch("resume.h5");
  task::save_checkpoint(path, first.checkpoint());

  Run resumed(99);  // another seed: everything must come from the checkpoint
  const task::Checkpoint loaded = task::load_checkpoint(path);
  CHECK(loaded.iteration == 2);
  CHECK(loaded.epoch == 1);
  CHECK(loaded.metadata.at("config") == "levels=3 base=4");
  resumed.restore(loaded);
  for (int i = 2; i < 5; ++i) CHECK(resumed.step() == expected[static_cast<std::size_t>(i)]);
}

TEST_CASE("checkpoints: not-a-checkpoint and missing files are clear errors; a failed save keeps the old file") {
  const fs::path path = scratch("plain.h5");
  io::Hdf5File::create(path).write("x", Tensor::zeros({1}));
  CHECK_THROWS_WITH_AS(task::load_checkpoint(path), doctest::Contains("not a TLK checkpoint"), Error);
  CHECK_THROWS_WITH_AS(task::load_checkpoint(scratch("absent.h5")), doctest::Contains("no such file"), Error);

  Run run(3);
  run.step();
  const fs::path good = scratch("good.h5");
  task::save_checkpoint(good, run.checkpoint());
  task::Checkpoint bad = run.checkpoint();
  bad.model.push_back({"half", Tensor::empty({2}, TensorOptions{DType::bf16})});  // cannot be stored
  CHECK_THROWS_AS(task::save_checkpoint(good, bad), Error);
  CHECK(task::load_checkpoint(good).model.size() == run.net->state_dict().size());
  CHECK_FALSE(fs::exists(good.string() + ".tmp"));
}

TEST_CASE("a checkpoint alone rebuilds its model") {
  Generator gen(5);
  const auto options =
      nn::ModuleOptions{}.with_in_channels(1).with_num_classes(3).with("levels", 3).with("base_features", 4);
  auto net = std::dynamic_pointer_cast<nn::UNet>(nn::ModuleRegistry::instance().create("unet3d", options, gen));
  REQUIRE(net);
  task::Checkpoint c;
  c.model = net->state_dict();
  task::describe_model(c, "unet3d", options);
  const fs::path path = scratch("model.h5");
  task::save_checkpoint(path, c);
  auto rebuilt = std::dynamic_pointer_cast<nn::UNet>(task::rebuild_model(task::load_checkpoint(path)));
  REQUIRE(rebuilt);
  Tensor x = randn({1, 1, 8, 8, 8}, gen);
  CHECK(testing::max_abs_diff(rebuilt->forward(x)[0], net->forward(x)[0]) == 0.0);
  task::Checkpoint anonymous;
  CHECK_THROWS_WITH_AS(task::rebuild_model(anonymous), doctest::Contains("does not say which model"), Error);
}
