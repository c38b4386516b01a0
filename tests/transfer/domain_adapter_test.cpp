// Domain adapter building blocks: warm-start λ schedule, multi-scale discriminator, adversarial loss
// and the DomainAdapter (gradient reversal into the backbone).
#include <cmath>

#include "test_util.h"
#include "tlk/transfer/domain_adversarial_loss.h"
#include "tlk/transfer/grl_schedule.h"
#include "tlk/transfer/multiscale_discriminator.h"

using namespace tlk;
using namespace tlk::transfer;

namespace {

nn::UNetConfig small_unet(int levels) {
  nn::UNetConfig config = nn::UNetConfig::isotropic(levels, 1, 3);
  config.base_features = 4;
  config.max_features = 16;
  return config;
}

/// The gradients of `params` (copies; zeros where none).
std::vector<Tensor> grads_of(const std::vector<Tensor>& params) {
  std::vector<Tensor> out;
  for (const Tensor& p : params) out.push_back(p.grad().defined() ? p.grad().contiguous().clone() : zeros_like(p));
  return out;
}

}  // namespace

TEST_CASE("WarmStartSchedule: lo at step 0, the notes' values for TLK's medical setup, hi in the limit") {
  const auto s = WarmStartSchedule::tlk_medical();
  CHECK(s.lambda(0) == doctest::Approx(0.0).epsilon(1e-15));
  // λ = 2/(1+e^(−i/1000)) − 1 = tanh(i/2000).
  CHECK(s.lambda(250) == doctest::Approx(std::tanh(0.125)).epsilon(1e-12));
  CHECK(s.lambda(250) == doctest::Approx(0.124).epsilon(2e-3));
  CHECK(s.lambda(1000) == doctest::Approx(0.462).epsilon(1e-3));
  CHECK(s.lambda(2500) == doctest::Approx(0.848).epsilon(1e-3));
  CHECK(s.lambda(100000) == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(s.lambda(300) > s.lambda(250));

  // lo/hi shift and scale the curve: lo at 0, hi in the limit; MDD's hi = 0.1.
  WarmStartSchedule shifted{2.0, 0.25, 0.75, 500};
  CHECK(shifted.lambda(0) == doctest::Approx(0.25));
  CHECK(shifted.lambda(1000000) == doctest::Approx(0.75));
  CHECK(shifted.lambda(500) == doctest::Approx(0.25 + 0.5 * std::tanh(1.0)));

  // DANN: α = 10 over the progress p = i / total.
  const auto d = WarmStartSchedule::dann(2000);
  CHECK(d.alpha == 10.0);
  CHECK(d.lambda(200) == doctest::Approx(2.0 / (1.0 + std::exp(-1.0)) - 1.0));
  CHECK(d.lambda(2000) == doctest::Approx(std::tanh(5.0)));

  CHECK_THROWS_WITH_AS(s.lambda(-1), doctest::Contains("step must be >= 0"), Error);
  CHECK_THROWS_WITH_AS((WarmStartSchedule{1.0, 0.0, 1.0, 0}.lambda(1)), doctest::Contains("max_iters"), Error);
  CHECK_THROWS_WITH_AS(WarmStartSchedule::dann(0), doctest::Contains("total_steps"), Error);

  // A delay of D steps: λ = 0 before step D (even with lo > 0), then the curve on i − D.
  WarmStartSchedule delayed{10.0, 0.0, 1.0, 100, 30};
  CHECK(delayed.lambda(0) == 0.0);
  CHECK(delayed.lambda(29) == 0.0);
  CHECK(delayed.lambda(30) == doctest::Approx(0.0).epsilon(1e-15));
  CHECK(delayed.lambda(80) == doctest::Approx(std::tanh(2.5)));
  CHECK(delayed.lambda(80) == doctest::Approx(WarmStartSchedule{10.0, 0.0, 1.0, 100}.lambda(50)));
  CHECK_THROWS_WITH_AS((WarmStartSchedule{1.0, 0.0, 1.0, 10, -1}.lambda(0)), doctest::Contains("delay must be >= 0"),
                       Error);
}

TEST_CASE("MultiScaleDiscriminator: widths, strides and logits on a small UNet's real encoder skips") {
  Generator gen(3);
  for (int levels : {3, 4}) {
    CAPTURE(levels);
    const nn::UNetConfig config = small_unet(levels);
    nn::UNet net(config, gen);
    net.forward(randn({2, 1, 16, 16, 16}, gen));
    const auto& skips = net.encoder_features();
    REQUIRE(static_cast<int>(skips.size()) == levels);

    // Default: every skip but the bottleneck, the last block strided into the bottleneck's resolution.
    MultiScaleDiscriminator disc(config, {}, gen);
    CHECK(disc.first_stage() == 0);
    CHECK(disc.last_stage() == levels - 2);
    CHECK(disc.widths() == std::vector<std::int64_t>(levels == 3 ? std::vector<std::int64_t>{50, 100}
                                                                 : std::vector<std::int64_t>{50, 100, 150}));
    CHECK(disc.block_strides().back() == Int3{2, 2, 2});
    Tensor logits = disc.forward(skips);
    CHECK(logits.shape() == Shape{2, disc.out_channels()});
    // The voxel head: one logit per voxel of the last block (16^3 input, strided 2^(levels-1)).
    const std::int64_t side = 16 >> (levels - 1);
    MultiScaleDiscriminatorOptions voxel_options;
    voxel_options.head = MultiScaleDiscriminatorOptions::Head::voxel_logits;
    MultiScaleDiscriminator voxel(config, voxel_options, gen);
    CHECK(voxel.forward(skips).shape() == Shape{2, side * side * side});
    CHECK(disc.uses_feature(0));
    CHECK_FALSE(disc.uses_feature(static_cast<std::size_t>(levels - 1)));
    // Block input channels: skip 0 alone, then previous width + skip.
    for (auto& [name, p] : disc.named_parameters())
      if (name == "blocks.1.0.weight") CHECK(p.shape() == Shape{100, 50 + config.features(1), 3, 3, 3});

    // All stages, narrow widths, and a later first stage.
    MultiScaleDiscriminatorOptions o;
    o.first_stage = 1;
    o.last_stage = -1;
    o.base_width = 4;
    o.max_width = 8;
    o.head = MultiScaleDiscriminatorOptions::Head::pooled_channels;
    MultiScaleDiscriminator all(config, o, gen);
    CHECK(all.widths().back() == 8);
    CHECK(all.block_strides().back() == Int3{1, 1, 1});
    CHECK(all.forward(skips).shape() == Shape{2, 8});
  }
}

TEST_CASE("MultiScaleDiscriminator: anisotropic strides (1x2x2) and clear errors") {
  Generator gen(4);
  nn::UNetConfig config;
  config.base_features = 4;
  config.max_features = 16;
  config.kernel_sizes = {{1, 3, 3}, {3, 3, 3}, {3, 3, 3}, {3, 3, 3}};
  config.strides = {{1, 1, 1}, {1, 2, 2}, {2, 2, 2}, {1, 2, 2}};
  nn::UNet net(config, gen);
  net.forward(randn({1, 1, 4, 16, 16}, gen));
  const auto& skips = net.encoder_features();
  CHECK(skips[3].shape() == Shape{1, 16, 2, 2, 2});
  MultiScaleDiscriminatorOptions o;
  o.widths = {6, 7, 9};
  MultiScaleDiscriminator disc(config, o, gen);
  CHECK(disc.block_strides() == std::vector<Int3>{{1, 2, 2}, {2, 2, 2}, {1, 2, 2}});
  CHECK(disc.forward(skips).shape() == Shape{1, 9});
  // forward_macs: block 0: 27·(4·6 + 36)·(4·8·8), block 1: 27·(14·7 + 49)·(2·4·4),
  // block 2: 27·(23·9 + 81)·(2·2·2).
  CHECK(disc.forward_macs({4, 16, 16}) == doctest::Approx(27.0 * (60.0 * 256 + 147.0 * 32 + 288.0 * 8)));

  // Features at the wrong resolution or with the wrong channels say which stage.
  std::vector<Tensor> bad = skips;
  bad[1] = randn({1, 8, 4, 4, 4}, gen);
  CHECK_THROWS_WITH_AS(disc.forward(bad), doctest::Contains("does not match stage 1"), Error);
  bad = skips;
  bad[2] = randn({1, 5, 2, 4, 4}, gen);
  CHECK_THROWS_WITH_AS(disc.forward(bad), doctest::Contains("stage 2 features [N, 16"), Error);
  CHECK_THROWS_WITH_AS(disc.forward({skips[0]}), doctest::Contains("all 4 encoder stages"), Error);
  o.widths = {1, 2};
  CHECK_THROWS_WITH_AS(MultiScaleDiscriminator(config, o, gen), doctest::Contains("2 widths given for 3"), Error);
  MultiScaleDiscriminatorOptions range;
  range.first_stage = 3;
  range.last_stage = 1;
  CHECK_THROWS_WITH_AS(MultiScaleDiscriminator(config, range, gen), doctest::Contains("stage range"), Error);
}

TEST_CASE("domain_adversarial_loss: hand-computed BCE, accuracy and mean probabilities") {
  auto softplus = [](double x) { return std::log1p(std::exp(x)); };
  const std::vector<double> s = {2.0, -0.5, 0.0, 1.5};  // source: right when >= 0 -> 3 of 4
  const std::vector<double> t = {-1.0, 3.0};            // target: right when < 0 -> 1 of 2
  Tensor source = Tensor::from_doubles(s, {2, 2}, DType::f64);
  Tensor target = Tensor::from_doubles(t, {1, 2}, DType::f64);
  source.set_requires_grad();
  target.set_requires_grad();
  auto r = domain_adversarial_loss(source, target);
  double bce_s = 0, bce_t = 0, ps = 0, pt = 0;
  for (double x : s) bce_s += softplus(-x) / 4, ps += 1 / (1 + std::exp(-x)) / 4;
  for (double x : t) bce_t += softplus(x) / 2, pt += 1 / (1 + std::exp(-x)) / 2;
  CHECK(r.loss.item() == doctest::Approx(0.5 * (bce_s + bce_t)).epsilon(1e-12));
  CHECK(r.source_accuracy == 0.75);
  CHECK(r.target_accuracy == 0.5);
  CHECK(r.accuracy == 0.625);
  CHECK(r.source_probability == doctest::Approx(ps));
  CHECK(r.target_probability == doctest::Approx(pt));
  r.loss.backward();
  // d/dx of 0.5·mean softplus(−x) = −0.5·(1 − σ(x)) / 4.
  CHECK(source.grad().to_doubles()[1] == doctest::Approx(-0.5 * (1 - 1 / (1 + std::exp(0.5))) / 4));

  // Weights: all ones gives the unweighted loss; otherwise each sample's elements are scaled.
  Tensor ones_s = Tensor::ones({2}, TensorOptions{DType::f64}), ones_t = Tensor::ones({1}, TensorOptions{DType::f64});
  auto w1 = domain_adversarial_loss(source, target, {ones_s, ones_t});
  CHECK(w1.loss.item() == doctest::Approx(r.loss.item()).epsilon(1e-12));
  Tensor ws = Tensor::from_doubles({0.5, 1.5}, {2}, DType::f64);
  auto w2 = domain_adversarial_loss(source, target, {ws, {}});
  const double weighted_s = (0.5 * (softplus(-2.0) + softplus(0.5)) + 1.5 * (softplus(0.0) + softplus(-1.5))) / 4;
  CHECK(w2.loss.item() == doctest::Approx(0.5 * (weighted_s + bce_t)).epsilon(1e-12));
  // The weighted form is stable for huge logits and has the exact derivative at 0.
  Tensor extreme = Tensor::from_doubles({-800.0, 0.0}, {2}, DType::f64);
  extreme.set_requires_grad();
  auto w3 = domain_adversarial_loss(extreme, Tensor::from_doubles({800.0}, {1}, DType::f64),
                                    {Tensor::ones({2}, TensorOptions{DType::f64}), {}});
  CHECK(std::isfinite(w3.loss.item()));
  CHECK(w3.loss.item() == doctest::Approx(0.5 * ((800.0 + std::log(2.0)) / 2 + 800.0)));
  w3.loss.backward();
  CHECK(extreme.grad().to_doubles()[1] == doctest::Approx(-0.5 * 0.5 / 2));

  CHECK_THROWS_WITH_AS(domain_adversarial_loss(source, Tensor::from_doubles({1, 2, 3}, {1, 3}, DType::f64)),
                       doctest::Contains("must agree in K"), Error);
  CHECK_THROWS_WITH_AS(domain_adversarial_loss(source, target, {Tensor::ones({3}, TensorOptions{DType::f64}), {}}),
                       doctest::Contains("source weight [2]"), Error);
}

TEST_CASE("DomainAdapter: the backbone's gradient is exactly -lambda times the gradient without reversal") {
  Generator gen(5);
  const nn::UNetConfig config = small_unet(3);
  nn::UNet net(config, gen);
  MultiScaleDiscriminatorOptions o;
  o.base_width = 6;
  o.max_width = 12;
  auto disc = std::make_shared<MultiScaleDiscriminator>(config, o, gen);
  DomainAdapter adapter(disc, WarmStartSchedule::tlk_medical());
  CHECK(adapter.named_parameters().front().first.rfind("discriminator.blocks.0.", 0) == 0);
  const Tensor xs = randn({2, 1, 16, 16, 16}, gen);
  const Tensor xt = randn({2, 1, 16, 16, 16}, gen, 0.5, 2.0);
  const std::int64_t step = 1000;

  auto run = [&](bool reversed) {
    net.zero_grad();
    adapter.zero_grad();
    net.forward(xs);
    const auto fs = net.encoder_features();
    net.forward(xt);
    const auto ft = net.encoder_features();
    Tensor loss;
    if (reversed) {
      auto term = adapter.adapt(fs, ft, step);
      loss = term.loss;
    } else {
      loss = domain_adversarial_loss(disc->forward(fs), disc->forward(ft)).loss;
    }
    loss.backward();
    return std::make_pair(loss.item(), std::make_pair(grads_of(net.parameters()), grads_of(disc->parameters())));
  };
  const auto [loss_plain, grads_plain] = run(false);
  const auto [loss_rev, grads_rev] = run(true);
  const double lambda = WarmStartSchedule::tlk_medical().lambda(step);
  CHECK(adapter.last().lambda == doctest::Approx(lambda));
  CHECK(adapter.last().step == step);
  CHECK(loss_rev == doctest::Approx(loss_plain).epsilon(1e-6));  // forward: the reversal is the identity
  double backbone_norm = 0.0;
  for (std::size_t i = 0; i < grads_plain.first.size(); ++i) {
    const Tensor expected = grads_plain.first[i] * (-lambda);
    CHECK(testing::max_abs_diff(grads_rev.first[i], expected) <=
          1e-6 * (1.0 + testing::max_abs_diff(expected, zeros_like(expected))));
    backbone_norm += testing::max_abs_diff(grads_plain.first[i], zeros_like(grads_plain.first[i]));
  }
  CHECK(backbone_norm > 0.0);  // the adversarial loss reaches the backbone at all
  // The decoder gets nothing (only encoder features are tapped); the discriminator's gradient is unchanged.
  for (std::size_t i = 0; i < grads_plain.second.size(); ++i)
    CHECK(testing::max_abs_diff(grads_rev.second[i], grads_plain.second[i]) <= 1e-6);
}

TEST_CASE("DomainAdapter::adapt_joint on one joint UNet batch equals adapt on two; input errors") {
  Generator gen(6);
  const nn::UNetConfig config = small_unet(3);
  nn::UNet net(config, gen);
  MultiScaleDiscriminatorOptions o;
  o.base_width = 4;
  o.max_width = 8;
  DomainAdapter adapter(std::make_shared<MultiScaleDiscriminator>(config, o, gen));
  const Tensor xs = randn({2, 1, 16, 16, 16}, gen), xt = randn({1, 1, 16, 16, 16}, gen, 1.0, 0.5);
  net.forward(xs);
  const auto fs = net.encoder_features();
  net.forward(xt);
  const auto ft = net.encoder_features();
  const auto separate = adapter.adapt(fs, ft, 10);
  net.forward(ops::cat({xs, xt}, 0));
  const auto joint = adapter.adapt_joint(net.encoder_features(), 2, 10);
  CHECK(joint.loss.item() == doctest::Approx(separate.loss.item()).epsilon(1e-5));
  CHECK(joint.accuracy == separate.accuracy);
  CHECK(joint.lambda == separate.lambda);

  CHECK_THROWS_WITH_AS(adapter.adapt_joint(net.encoder_features(), 3, 10),
                       doctest::Contains("source_batch must be in [1, 3)"), Error);
  CHECK_THROWS_WITH_AS(adapter.adapt(fs, {ft[0]}, 10), doctest::Contains("same non-zero number"), Error);
  std::vector<Tensor> missing = ft;
  missing[1] = Tensor();
  CHECK_THROWS_WITH_AS(adapter.adapt(fs, missing, 10), doctest::Contains("target feature 1 must be a defined tensor"),
                       Error);
  missing[1] = ft[1];
  missing[2] = Tensor();  // the bottleneck: unused by the default stage range, so it may be left out
  CHECK(adapter.adapt(fs, missing, 11).step == 11);
  CHECK_THROWS_WITH_AS(adapter.adapt(fs, ft, -1), doctest::Contains("step must be >= 0"), Error);
}

TEST_CASE("MultiScaleDiscriminator: learns to tell two domains' UNet features apart") {
  // Two "scanners" whose difference survives InstanceNorm (a global gain and offset would not: the
  // UNet's first norm removes them): white noise against coarser, 2x2x2-blocky noise (another
  // resolution). A frozen random UNet's encoder skips feed the discriminator; only it trains.
  Generator gen(21);
  const nn::UNetConfig config = small_unet(3);
  nn::UNet net(config, gen);
  auto batch = [&](bool target) {
    Tensor x = randn({2, 1, 16, 16, 16}, gen);
    if (target) {
      float* v = x.data<float>();
      for (std::int64_t i = 0; i < x.numel(); ++i) {
        const std::int64_t n = i / 4096, z = (i / 256) % 16, y = (i / 16) % 16, w = i % 16;
        v[i] = v[n * 4096 + (z & ~1) * 256 + (y & ~1) * 16 + (w & ~1)];  // copy from the block's first voxel
      }
    }
    NoGradGuard no_grad;
    net.forward(x);
    return net.encoder_features();
  };
  auto accuracy_after_training = [&](MultiScaleDiscriminatorOptions::Head head) {
    MultiScaleDiscriminatorOptions o;
    o.widths = {8, 16};
    o.head = head;
    auto disc = std::make_shared<MultiScaleDiscriminator>(config, o, gen);
    nn::Adam adam(nn::single_group(*disc), nn::AdamOptions{1e-2});
    double accuracy = 0.0;
    for (int step = 0; step < 30; ++step) {
      const auto source = batch(false), target = batch(true);
      adam.zero_grad();
      DomainAdversarialResult r = domain_adversarial_loss(disc->forward(source), disc->forward(target));
      r.loss.backward();
      adam.step();
      accuracy = r.accuracy;
    }
    return accuracy;
  };
  const double voxel = accuracy_after_training(MultiScaleDiscriminatorOptions::Head::voxel_logits);
  const double pooled = accuracy_after_training(MultiScaleDiscriminatorOptions::Head::pooled_channels);
  MESSAGE("domain accuracy after 30 steps: voxel logits " << voxel << ", pooled channels " << pooled);
  CHECK(pooled > 0.9);  // the default head (Note [Discriminator head])
}
