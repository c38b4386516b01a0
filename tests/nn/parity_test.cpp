// Composite results against PyTorch goldens written by tools/torch_bridge.py (Debian's torch 1.13).
#include "test_util.h"
#include "tlk/io/hdf5_file.h"
#include "tlk/nn/adam.h"
#include "tlk/nn/deep_supervision_loss.h"
#include "tlk/nn/sgd.h"
#include "tlk/nn/unet.h"
#include "tlk/task/checkpoint.h"

using namespace tlk;

namespace {

io::Hdf5File golden(const char* name) { return io::Hdf5File::open(std::filesystem::path(TLK_GOLDEN_DIR) / name); }

// Largest difference relative to the largest expected magnitude, with an absolute floor: the biases
// of convolutions that feed an instance norm have a gradient that is zero in exact arithmetic (the
// norm removes any per-channel constant), so both sides hold only rounding noise of about 1e-9.
double rel_error(const Tensor& got, const Tensor& expected) {
  double scale = 0;
  for (double v : expected.to_doubles()) scale = std::max(scale, std::abs(v));
  return testing::max_abs_diff(got, expected) / std::max(scale, 1e-3);
}

std::shared_ptr<nn::UNet> small_unet(const io::Hdf5File& file) {
  Generator gen(0);
  nn::UNetConfig config = nn::UNetConfig::isotropic(3, 1, 2);
  config.base_features = 4;
  config.max_features = 16;
  auto net = std::make_shared<nn::UNet>(config, gen);
  std::vector<nn::NamedTensor> state;
  for (const auto& name : file.datasets("/params")) state.emplace_back(name, file.read("params/" + name));
  net->load_state_dict(state);  // strict: every name and shape matches PyTorch's
  return net;
}

}  // namespace

TEST_CASE("UNet parity with PyTorch: outputs, deep-supervision loss, every gradient, 3 SGD-Nesterov steps") {
  auto file = golden("unet_small.h5");
  auto net_ptr = small_unet(file);
  nn::UNet& net = *net_ptr;
  const Tensor x = file.read("input"), labels = file.read("labels");
  auto outputs = net.forward(x);
  REQUIRE(outputs.size() == 2);
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    CAPTURE(i);
    CHECK(rel_error(outputs[i], file.read("outputs/" + std::to_string(i))) < 1e-4);
  }
  Tensor loss = nn::deep_supervision_loss(outputs, labels, net.deep_supervision_weights());
  CHECK(loss.item() == doctest::Approx(file.read("loss").item()).epsilon(1e-5));
  loss.backward();
  for (auto& [name, p] : net.named_parameters()) {
    CAPTURE(name);
    if (!file.has("grads/" + name)) {
      CHECK_FALSE(p.grad().defined());  // the weight-0 head, as in PyTorch
      continue;
    }
    CHECK(rel_error(p.grad(), file.read("grads/" + name)) < 2e-4);
  }
  nn::Sgd sgd(nn::single_group(net), nn::SgdOptions{0.01, 0.99, true, 3e-5});
  sgd.step();
  for (int step = 1; step < 3; ++step) {
    sgd.zero_grad();
    nn::deep_supervision_loss(net.forward(x), labels, net.deep_supervision_weights()).backward();
    sgd.step();
  }
  for (auto& [name, p] : net.named_parameters()) {
    CAPTURE(name);
    CHECK(rel_error(p, file.read("params_after_3/" + name)) < 1e-4);
  }
}

TEST_CASE("optimizer trajectories match torch.optim: SGD-Nesterov, Adam, AdamW") {
  auto file = golden("optimizers.h5");
  const Tensor start = file.read("start"), grads = file.read("grads");
  const std::int64_t steps = grads.size(0);
  auto run = [&](nn::Optimizer& opt, Tensor& p, const std::string& name) {
    const Tensor expected = file.read(name);
    for (std::int64_t t = 0; t < steps; ++t) {
      p.set_grad(grads.narrow(0, t, 1).reshape({3}).contiguous());
      opt.step();
      CAPTURE(name);
      CAPTURE(t);
      CHECK(testing::max_abs_diff(p, expected.narrow(0, t, 1).reshape({3})) < 1e-12);
    }
  };
  {
    Tensor p = start.clone().set_requires_grad();
    nn::Sgd opt({p}, nn::SgdOptions{0.1, 0.9, true, 0.01});
    run(opt, p, "sgd_nesterov");
  }
  for (bool decoupled : {false, true}) {
    Tensor p = start.clone().set_requires_grad();
    nn::Adam opt({p}, nn::AdamOptions{0.1, 0.9, 0.999, 1e-8, 0.01, decoupled});
    run(opt, p, decoupled ? "adamw" : "adam");
  }
}

TEST_CASE("a checkpoint converted from nnUNet v2 names by tools/torch_bridge.py rebuilds the golden UNet") {
  // tests/goldens/unet_small_from_nnunet_v2.h5: unet_small's weights, renamed as nnUNet v2's
  // PlainConvUNet names them and converted back with `torch_bridge.py convert`.
  const task::Checkpoint converted =
      task::load_checkpoint(std::filesystem::path(TLK_GOLDEN_DIR) / "unet_small_from_nnunet_v2.h5");
  CHECK(converted.metadata.at("model") == "unet3d");
  auto net = std::dynamic_pointer_cast<nn::UNet>(task::rebuild_model(converted));
  REQUIRE(net);
  auto file = golden("unet_small.h5");
  auto outputs = net->forward(file.read("input"));
  CHECK(rel_error(outputs[0], file.read("outputs/0")) < 1e-4);
}
