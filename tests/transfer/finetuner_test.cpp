#include "tlk/transfer/finetuner.h"

#include "test_util.h"
#include "tlk/autograd/ops/arith.h"
#include "tlk/autograd/ops/reduce.h"
#include "tlk/nn/conv.h"
#include "tlk/nn/lenet.h"
#include "tlk/nn/resnet3d.h"
#include "tlk/nn/sgd.h"
#include "tlk/nn/unet.h"
#include "tlk/task/checkpoint.h"
#include "tlk/transfer/backbone_factory.h"

using namespace tlk;
using testing::max_abs_diff;

namespace {

nn::UNetConfig tiny_unet(std::int64_t classes) {
  nn::UNetConfig c = nn::UNetConfig::isotropic(3, 1, classes);
  c.base_features = 4;
  c.max_features = 8;
  return c;
}

// name -> independent copy of the values.
std::map<std::string, Tensor> snapshot(const nn::Module& m) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : m.state_dict()) out[name] = t.contiguous().clone();
  return out;
}

std::map<std::string, Tensor> by_name(const nn::Module& m) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : m.state_dict()) out[name] = t;
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// A loss that reaches every parameter of a tiny UNet (all deep-supervision heads).
Tensor unet_loss(nn::UNet& net, const Tensor& x) {
  Tensor loss;
  for (const Tensor& y : net.forward(x)) {
    Tensor term = ops::mean(y * y);
    loss = loss.defined() ? loss + term : term;
  }
  return loss;
}

// Two layers, or three with `extra`, for the missing-tensor case.
class Stack : public nn::Module {
 public:
  Stack(bool extra, Generator& gen) {
    const auto o = nn::ConvOptions{}.with_kernel({1, 1, 1}).with_padding({0, 0, 0});
    register_module("conv1", std::make_shared<nn::Conv3d>(1, 3, o, gen));
    register_module("conv2", std::make_shared<nn::Conv3d>(3, 3, o, gen));
    if (extra) register_module("conv3", std::make_shared<nn::Conv3d>(3, 2, o, gen));
  }
};

}  // namespace

TEST_CASE("finetune: a 16-class UNet into a 2-class UNet copies all but the heads") {
  Generator gen(10);
  nn::UNet pretrained(tiny_unet(16), gen);
  nn::UNet model(tiny_unet(2), gen);
  const auto before = snapshot(model);
  const auto source = by_name(pretrained);

  const auto report = transfer::finetune_from(model, pretrained.state_dict());
  CHECK(report.missing.empty());
  CHECK(report.unexpected.empty());
  CHECK(report.frozen.empty());
  CHECK_FALSE(report.complete());
  REQUIRE(report.mismatched.size() == 2);  // decoder.heads.0.weight, decoder.heads.1.weight
  for (const auto& m : report.mismatched) {
    CHECK(m.name.rfind("decoder.heads.", 0) == 0);
    CHECK(m.pretrained[0] == 16);
    CHECK(m.model[0] == 2);
    CHECK(m.pretrained[1] == m.model[1]);
  }
  CHECK(report.copied.size() + report.mismatched.size() == model.state_dict().size());

  const auto after = by_name(model);
  for (const auto& name : report.copied) {
    CHECK_MESSAGE(max_abs_diff(after.at(name), source.at(name)) == 0, name);
    CHECK_FALSE(after.at(name).is_same(source.at(name)));
  }
  for (const auto& m : report.mismatched) CHECK(max_abs_diff(after.at(m.name), before.at(m.name)) == 0);

  // Values, not aliases: changing the pretrained net afterwards leaves the model alone.
  const Tensor w = after.at("encoder.stages.0.conv1.weight").contiguous().clone();
  {
    NoGradGuard no_grad;
    Tensor t = source.at("encoder.stages.0.conv1.weight");
    t.fill_(7.0);
  }
  CHECK(max_abs_diff(after.at("encoder.stages.0.conv1.weight"), w) == 0);

  const std::string text = report.str();
  CHECK(text.find(fmt::format("{} copied, 2 mismatched, 0 missing", report.copied.size())) != std::string::npos);
  CHECK(text.find("decoder.heads.0.weight: checkpoint [16, 4, 1, 1, 1] vs model [2, 4, 1, 1, 1]") != std::string::npos);
}

TEST_CASE("finetune: skip_prefixes keeps the head fresh even when shapes match") {
  Generator gen(11);
  nn::UNet pretrained(tiny_unet(2), gen);
  nn::UNet model(tiny_unet(2), gen);
  const auto before = snapshot(model);
  transfer::FinetuneOptions o;
  o.skip_prefixes = transfer::head_parameter_prefixes(model);
  const auto report = transfer::finetune_from(model, pretrained.state_dict(), o);
  CHECK(report.mismatched.empty());
  CHECK(report.skipped == std::vector<std::string>{"decoder.heads.0.weight", "decoder.heads.1.weight"});
  CHECK(max_abs_diff(by_name(model).at("decoder.heads.0.weight"), before.at("decoder.heads.0.weight")) == 0);
  CHECK(max_abs_diff(by_name(model).at("decoder.stages.0.conv1.weight"),
                     by_name(pretrained).at("decoder.stages.0.conv1.weight")) == 0);
  CHECK(report.str().find("skipped (skip_prefixes") != std::string::npos);

  o.skip_prefixes = {"decoder.head"};  // whole components only: matches nothing
  CHECK_THROWS_WITH_AS(transfer::finetune_from(model, pretrained.state_dict(), o),
                       doctest::Contains("prefix 'decoder.head' matches no"), Error);
}

TEST_CASE("finetune: missing and unexpected tensors") {
  Generator gen(12);
  Stack small(false, gen), large(true, gen);
  const auto before = snapshot(large);
  auto report = transfer::finetune_from(large, small.state_dict());
  CHECK(report.missing == std::vector<std::string>{"conv3.weight", "conv3.bias"});
  CHECK(report.copied.size() == 4);
  CHECK(report.unexpected.empty());
  CHECK(max_abs_diff(by_name(large).at("conv3.weight"), before.at("conv3.weight")) == 0);
  CHECK(max_abs_diff(by_name(large).at("conv2.weight"), by_name(small).at("conv2.weight")) == 0);
  CHECK(report.str().find("missing (kept the model's initialisation): conv3.weight, conv3.bias") != std::string::npos);

  auto state = small.state_dict();
  state.emplace_back("extra.running_mean", Tensor::zeros({3}));
  report = transfer::finetune_from(small, state);
  CHECK(report.unexpected == std::vector<std::string>{"extra.running_mean"});
  CHECK(report.missing.empty());
  CHECK(report.str().find("unexpected (in the checkpoint only; ignored): extra.running_mean") != std::string::npos);

  state.emplace_back("conv1.weight", Tensor::zeros({3, 1, 1, 1, 1}));
  CHECK_THROWS_WITH_AS(transfer::finetune_from(small, state), doctest::Contains("'conv1.weight' twice"), Error);
}

TEST_CASE("finetune: freezing the copied parameters stops their gradients and updates") {
  Generator gen(13);
  nn::UNet pretrained(tiny_unet(3), gen);
  nn::UNet model(tiny_unet(2), gen);
  transfer::FinetuneOptions o;
  o.freeze = transfer::Freeze::copied;
  const auto report = transfer::finetune_from(model, pretrained.state_dict(), o);
  CHECK(report.frozen.size() == model.named_parameters().size() - 2);  // all but the two heads
  CHECK(report.str().find("frozen: encoder.stages.0.conv1.weight") != std::string::npos);

  const auto before = snapshot(model);
  Tensor x = randn({1, 1, 8, 8, 8}, gen);
  unet_loss(model, x).backward();
  for (const auto& [name, p] : model.named_parameters()) {
    const bool frozen = contains(report.frozen, name);
    CHECK_MESSAGE(p.requires_grad() == !frozen, name);
    CHECK_MESSAGE(p.grad().defined() == !frozen, name);
  }
  // An optimizer over every parameter still leaves the frozen ones alone.
  nn::Sgd sgd(nn::single_group(model), nn::SgdOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01});
  sgd.step();
  const auto after = by_name(model);
  for (const auto& [name, p] : model.named_parameters()) {
    const double moved = max_abs_diff(after.at(name), before.at(name));
    if (contains(report.frozen, name))
      CHECK_MESSAGE(moved == 0, name);
    else
      CHECK_MESSAGE(moved > 0, name);
  }
  // And the fine-tune groups hold only the heads.
  const auto groups = transfer::finetune_param_groups(model, report, o, 0.0);
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].name == "pretrained");
  CHECK(groups[0].params.empty());
  CHECK(groups[1].params.size() == 2);
}

TEST_CASE("finetune: freezing by prefix, copied or not") {
  Generator gen(14);
  nn::UNet pretrained(tiny_unet(2), gen);
  nn::UNet model(tiny_unet(2), gen);
  transfer::FinetuneOptions o;
  o.freeze = transfer::Freeze::prefixes;
  o.freeze_prefixes = {"encoder.stages.0", "decoder.heads."};
  o.skip_prefixes = {"decoder.heads"};
  const auto report = transfer::finetune_from(model, pretrained.state_dict(), o);
  // Stage 0: conv1 and conv2 weight + bias, norm1 and norm2 weight + bias; plus the two (skipped) heads.
  CHECK(report.frozen.size() == 10);
  for (const auto& [name, p] : model.named_parameters()) {
    const bool expect = name.rfind("encoder.stages.0.", 0) == 0 || name.rfind("decoder.heads.", 0) == 0;
    CHECK_MESSAGE(contains(report.frozen, name) == expect, name);
    CHECK_MESSAGE(p.requires_grad() == !expect, name);
  }
  Tensor x = randn({1, 1, 8, 8, 8}, gen);
  unet_loss(model, x).backward();
  for (const auto& [name, p] : model.named_parameters())
    CHECK_MESSAGE(p.grad().defined() == !contains(report.frozen, name), name);

  const auto groups = transfer::finetune_param_groups(model, report, o, 1e-4);
  CHECK(groups[0].params.size() + groups[1].params.size() + report.frozen.size() == model.named_parameters().size());
  CHECK(groups[1].params.empty());  // the only fresh parameters (the heads) are frozen
  CHECK(groups[0].weight_decay == 1e-4);

  transfer::FinetuneOptions bad = o;
  bad.freeze_prefixes = {"encoder.stage"};
  CHECK_THROWS_WITH_AS(transfer::finetune_from(model, pretrained.state_dict(), bad),
                       doctest::Contains("freeze_prefixes prefix 'encoder.stage' matches no parameter"), Error);
  bad.freeze = transfer::Freeze::copied;
  CHECK_THROWS_WITH_AS(transfer::finetune_from(model, pretrained.state_dict(), bad),
                       doctest::Contains("only used with freeze = Freeze::prefixes"), Error);
}

TEST_CASE("finetune: prefixes match whole name components") {
  CHECK(transfer::matches_prefix("fc2.weight", {"fc2"}));
  CHECK(transfer::matches_prefix("fc2", {"fc2"}));
  CHECK(transfer::matches_prefix("fc2.weight", {"fc2."}));
  CHECK_FALSE(transfer::matches_prefix("fc21.weight", {"fc2"}));
  CHECK_FALSE(transfer::matches_prefix("fc1.weight", {"fc"}));
  CHECK(transfer::matches_prefix("decoder.heads.0.weight", {"encoder", "decoder.heads"}));
  CHECK_FALSE(transfer::matches_prefix("decoder.heads.0.weight", {""}));
}

TEST_CASE("finetune: the copied group steps at copied_lr_scale of the base rate") {
  // Two identical fine-tunes that differ only in the scale: same gradient, so the copied parameters
  // move by exactly 0.2x, and the new ones by the same amount.
  Generator gen(15);
  nn::UNet pretrained(tiny_unet(4), gen);
  const std::uint64_t seed = 99;
  Generator gen_a(seed), gen_b(seed);
  nn::UNet a(tiny_unet(2), gen_a), b(tiny_unet(2), gen_b);
  transfer::FinetuneOptions oa, ob;
  oa.copied_lr_scale = 0.2;
  const auto ra = transfer::finetune_from(a, pretrained.state_dict(), oa);
  const auto rb = transfer::finetune_from(b, pretrained.state_dict(), ob);
  const auto ga = transfer::finetune_param_groups(a, ra, oa, 0.0);
  const auto gb = transfer::finetune_param_groups(b, rb, ob, 0.0);
  REQUIRE(ga.size() == 2);
  CHECK(ga[0].name == "pretrained");
  CHECK(ga[0].lr_scale == 0.2);
  CHECK(ga[1].name == "new");
  CHECK(ga[1].lr_scale == 1.0);
  CHECK(ga[0].params.size() == ra.copied.size());  // a UNet has no buffers (InstanceNorm)
  CHECK(ga[1].params.size() == 2);

  const auto before = snapshot(a);
  CHECK(max_abs_diff(by_name(b).at("decoder.heads.0.weight"), before.at("decoder.heads.0.weight")) == 0);
  Tensor x = randn({1, 1, 8, 8, 8}, gen);
  nn::Sgd sa(ga, nn::SgdOptions{.lr = 0.1}), sb(gb, nn::SgdOptions{.lr = 0.1});
  unet_loss(a, x).backward();
  unet_loss(b, x).backward();
  sa.step();
  sb.step();
  const auto after_a = by_name(a), after_b = by_name(b);
  double moved_a = 0, moved_b = 0;  // summed over the copied parameters
  for (const auto& [name, p] : a.named_parameters()) {
    const std::vector<double> p0 = before.at(name).to_doubles(), pa = after_a.at(name).to_doubles(),
                              pb = after_b.at(name).to_doubles();
    const bool copied = contains(ra.copied, name);
    const double scale = copied ? 0.2 : 1.0;
    double worst = 0, largest = 0, magnitude = 0;
    for (std::size_t i = 0; i < p0.size(); ++i) {
      worst = std::max(worst, std::abs((pa[i] - p0[i]) - scale * (pb[i] - p0[i])));
      largest = std::max(largest, std::abs(pb[i] - p0[i]));
      magnitude = std::max(magnitude, std::abs(p0[i]));
      if (copied) {
        moved_a += std::abs(pa[i] - p0[i]);
        moved_b += std::abs(pb[i] - p0[i]);
      }
    }
    CHECK_MESSAGE(largest > 0, name);
    // f32 rounding of p - step: a few ulps of the parameter's magnitude.
    CHECK_MESSAGE(worst <= 1e-3 * largest + 1e-6 * (1 + magnitude), name);
  }
  CHECK(moved_a / moved_b == doctest::Approx(0.2).epsilon(1e-3));
}

TEST_CASE("finetune: round trip through a checkpoint file") {
  Generator gen(16);
  auto pretrained = transfer::create_backbone_as<nn::UNet>(
      "unet3d",
      nn::ModuleOptions{}.with_num_classes(5).with("levels", 3).with("base_features", 4).with("max_features", 8), gen);
  task::Checkpoint c;
  c.model = pretrained->state_dict();
  const auto path = testing::fresh_temp_dir("transfer_finetune") / "pretrained.h5";
  task::save_checkpoint(path, c);

  nn::UNet model(tiny_unet(2), gen);
  transfer::FinetuneOptions o;
  o.copied_lr_scale = 0.2;
  const auto report = task::finetune_from_checkpoint(model, path, o);
  CHECK(report.source == path.string());
  CHECK(report.mismatched.size() == 2);
  CHECK(report.copied.size() == model.state_dict().size() - 2);
  const auto src = by_name(*pretrained), dst = by_name(model);
  for (const auto& name : report.copied) CHECK_MESSAGE(max_abs_diff(dst.at(name), src.at(name)) == 0, name);
  CHECK(report.str().rfind("finetune from " + path.string(), 0) == 0);

  CHECK_THROWS_AS(task::finetune_from_checkpoint(model, path.parent_path() / "absent.h5", o), Error);
}

TEST_CASE("finetune: LeNet to another class count and image size") {
  Generator gen(17);
  const auto base = nn::LeNetOptions{}.with_widths(4, 6, 16);
  nn::LeNet pretrained(base.with_num_classes(10), gen);
  nn::LeNet model(base.with_num_classes(3), gen);
  const auto before = snapshot(model);
  auto report = transfer::finetune_from(model, pretrained.state_dict());
  CHECK(report.copied ==
        std::vector<std::string>{"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias"});
  REQUIRE(report.mismatched.size() == 2);
  CHECK(report.mismatched[0].name == "fc2.weight");
  CHECK(report.mismatched[0].pretrained == Shape{10, 16});
  CHECK(report.mismatched[0].model == Shape{3, 16});
  CHECK(report.mismatched[1].name == "fc2.bias");
  CHECK(max_abs_diff(by_name(model).at("fc2.bias"), before.at("fc2.bias")) == 0);

  // A larger image changes fc1's input size: fc1.weight mismatches too, fc1.bias still copies.
  nn::LeNet large(base.with_num_classes(10).with_image_size(32), gen);
  report = transfer::finetune_from(large, pretrained.state_dict());
  CHECK(report.mismatched.size() == 1);
  CHECK(report.mismatched[0].name == "fc1.weight");
  CHECK(contains(report.copied, "fc1.bias"));
}

TEST_CASE("finetune: ResNet3d copies batch-norm buffers and freezes by prefix") {
  Generator gen(18);
  const auto base = nn::ResNet3dOptions{}.with_widths({4, 8}).with_blocks({1, 1}).with_strides({{1, 1, 1}, {2, 2, 2}});
  nn::ResNet3d pretrained(base.with_num_classes(3), gen);
  {
    // Give the running statistics values that differ from a fresh model's.
    NoGradGuard no_grad;
    pretrained.train();
    pretrained.forward(randn({2, 1, 4, 4, 4}, gen, 1.0, 2.0));
  }
  nn::ResNet3d model(base.with_num_classes(2), gen);
  transfer::FinetuneOptions o;
  o.freeze = transfer::Freeze::prefixes;
  o.freeze_prefixes = {"conv1", "bn1", "stages.0"};
  const auto fresh = snapshot(model);
  const auto report = transfer::finetune_from(model, pretrained.state_dict(), o);
  REQUIRE(report.mismatched.size() == 2);
  CHECK(report.mismatched[0].name == "fc.weight");
  CHECK(report.mismatched[1].name == "fc.bias");
  CHECK(report.mismatched[1].pretrained == Shape{3});
  CHECK(report.missing.empty());
  CHECK(report.unexpected.empty());
  // Buffers are copied as well: the running statistics are the pretrained ones, not the fresh ones.
  const auto src = by_name(pretrained), dst = by_name(model);
  REQUIRE(dst.count("bn1.running_mean"));
  CHECK(contains(report.copied, "bn1.running_mean"));
  CHECK(max_abs_diff(dst.at("bn1.running_mean"), src.at("bn1.running_mean")) == 0);
  CHECK(max_abs_diff(dst.at("bn1.running_mean"), fresh.at("bn1.running_mean")) > 0);
  CHECK(max_abs_diff(dst.at("stages.1.blocks.0.downsample.1.running_var"),
                     src.at("stages.1.blocks.0.downsample.1.running_var")) == 0);
  // Frozen: the stem and stage 0 (parameters only; buffers never are).
  for (const auto& [name, p] : model.named_parameters()) {
    const bool expect = name.rfind("conv1.", 0) == 0 || name.rfind("bn1.", 0) == 0 || name.rfind("stages.0.", 0) == 0;
    CHECK_MESSAGE(contains(report.frozen, name) == expect, name);
  }
  for (const auto& [name, b] : model.named_buffers()) CHECK_FALSE(contains(report.frozen, name));
  model.train();
  Tensor logits = model.forward(randn({2, 1, 4, 4, 4}, gen));
  ops::mean(logits * logits).backward();
  for (const auto& [name, p] : model.named_parameters())
    CHECK_MESSAGE(p.grad().defined() == !contains(report.frozen, name), name);
  const auto groups = transfer::finetune_param_groups(model, report, o, -1);
  CHECK(groups[1].params.size() == 2);  // fc.weight, fc.bias
  CHECK(groups[0].params.size() + 2 + report.frozen.size() == model.named_parameters().size());
}
