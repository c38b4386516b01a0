// Domain adapter building blocks, part 2: DANN's MLP discriminator, CDAN's conditioning and entropy
// weights, f64 gradient checks of the discriminators, and a discriminator that learns to separate
// two Gaussian clouds.
#include <cmath>

#include "test_util.h"
#include "tlk/transfer/cdan.h"
#include "tlk/transfer/domain_adversarial_loss.h"
#include "tlk/transfer/domain_discriminator.h"
#include "tlk/transfer/multiscale_discriminator.h"

using namespace tlk;
using namespace tlk::transfer;

namespace {

/// Turns every parameter and buffer of `module` into f64 in place (the handles the layers hold see
/// the change), so that gradcheck can differentiate through it; returns the parameters.
std::vector<Tensor> to_f64(nn::Module& module) {
  auto convert = [](const Tensor& t) {
    Tensor d = t.detach().to(Layout::plain).to(DType::f64).contiguous();
    TensorImpl& impl = t.impl();
    impl.storage = d.impl().storage;
    impl.shape = d.impl().shape;
    impl.strides = d.impl().strides;
    impl.offset = d.impl().offset;
    impl.dtype = DType::f64;
    impl.blocked.reset();
  };
  std::vector<Tensor> params;
  for (auto& [name, p] : module.named_parameters()) {
    convert(p);
    params.push_back(p);
  }
  for (auto& [name, b] : module.named_buffers()) convert(b);
  return params;
}

Tensor f64_values(const std::vector<double>& v, const Shape& shape) {
  return Tensor::from_doubles(v, shape, DType::f64);
}

}  // namespace

TEST_CASE("DomainDiscriminator: DANN's MLP, its variants, shapes and errors") {
  Generator gen(11);
  DomainDiscriminator bn(6, {.hidden = 8}, gen);
  auto names = bn.named_parameters();
  REQUIRE(names.size() == 10);  // 3 linear (weight, bias) + 2 batch norm (weight, bias)
  CHECK(names[0].first == "layers.0.weight");
  CHECK(names[0].second.shape() == Shape{8, 6});
  CHECK(names[2].first == "layers.1.weight");  // the batch norm after the first linear
  CHECK(names.back().second.shape() == Shape{1});
  CHECK(bn.named_buffers().size() == 4);  // running mean and variance, twice
  CHECK_FALSE(bn.samples_independent());
  CHECK(bn.forward(randn({5, 6}, gen)).shape() == Shape{5, 1});
  CHECK(bn.forward(std::vector<Tensor>{randn({3, 6, 1, 1, 1}, gen)}).shape() == Shape{3, 1});  // pooled, flattened
  CHECK_THROWS_WITH_AS(bn.forward(randn({3, 7}, gen)), doctest::Contains("expected 6 features per sample"), Error);
  CHECK_THROWS_WITH_AS(bn.forward(std::vector<Tensor>{}), doctest::Contains("one feature tensor"), Error);

  DomainDiscriminator drop(6, {.hidden = 8, .regularizer = DiscriminatorRegularizer::dropout}, gen);
  CHECK(drop.samples_independent());
  CHECK(drop.named_parameters().size() == 6);
  // Dropout is active in training (the same input gives different logits) and off in evaluation.
  Tensor x = randn({4, 6}, gen);
  CHECK(testing::max_abs_diff(drop.forward(x), drop.forward(x)) > 0.0);
  drop.eval();
  CHECK(testing::max_abs_diff(drop.forward(x), drop.forward(x)) == 0.0);
  CHECK_THROWS_WITH_AS(DomainDiscriminator(6, {.hidden = 8, .dropout = 1.0}, gen), doctest::Contains("dropout"), Error);
}

TEST_CASE("DomainDiscriminator and MultiScaleDiscriminator: f64 gradient checks of inputs and parameters") {
  Generator gen(12);
  {
    DomainDiscriminator mlp(3, {.hidden = 4, .regularizer = DiscriminatorRegularizer::none}, gen);
    std::vector<Tensor> inputs = to_f64(mlp);
    inputs.insert(inputs.begin(), testing::random_leaf({5, 3}, gen));
    CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return std::vector<Tensor>{mlp.forward(in[0])}; }, inputs);
  }
  {
    DomainDiscriminator mlp(3, {.hidden = 4}, gen);  // batch norm: every sample's logit depends on the batch
    std::vector<Tensor> inputs = to_f64(mlp);
    inputs.insert(inputs.begin(), testing::random_leaf({6, 3}, gen));
    CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return std::vector<Tensor>{mlp.forward(in[0])}; }, inputs);
  }
  {
    // Two stages, anisotropic stride: block 0 (stride 1x2x2) meets stage 1's skip at 2x2x2.
    // Both block kinds (Note [Discriminator norm]) and both heads (Note [Discriminator head]).
    using Norm = MultiScaleDiscriminatorOptions::Norm;
    using Head = MultiScaleDiscriminatorOptions::Head;
    for (auto [norm, head] : {std::pair{Norm::none, Head::pooled_channels}, std::pair{Norm::instance, Head::voxel_logits}}) {
      MultiScaleDiscriminatorOptions o;
      o.last_stage = -1;
      o.widths = {3, 2};
      o.norm = norm;
      o.head = head;
      MultiScaleDiscriminator disc({2, 3}, {{1, 1, 1}, {1, 2, 2}}, o, gen);
      to_f64(disc);
      // The skips and a few parameters (every parameter would take seconds).
      std::vector<Tensor> inputs = {testing::random_leaf({2, 2, 2, 4, 4}, gen),
                                    testing::random_leaf({2, 3, 2, 2, 2}, gen)};
      for (auto& [name, p] : disc.named_parameters())
        if (name == "blocks.0.conv1.weight" || name == "blocks.1.conv1.weight" || name == "blocks.1.norm2.weight" ||
            name == "blocks.1.conv2.bias" || name == "blocks.0.0.weight" || name == "blocks.1.0.weight" ||
            name == "blocks.1.2.bias" || name == "head.weight")
          inputs.push_back(p);
      REQUIRE(inputs.size() == (norm == Norm::none ? 5 : 7));
      CHECK_GRADCHECK(
          [&](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{disc.forward({in[0], in[1]})};
          },
          inputs);
    }
  }
}

TEST_CASE("CDAN: multilinear map values, order and f64 gradients to both inputs") {
  Tensor f = f64_values({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor p = f64_values({0.25, 0.75, 0.5, 0.5}, {2, 2});
  Tensor h = multilinear_map(f, p);
  REQUIRE(h.shape() == Shape{2, 6});
  // Row i: p[i,0]·f[i,:], then p[i,1]·f[i,:] (tllib's order).
  CHECK(testing::max_abs_diff(h, f64_values({0.25, 0.5, 0.75, 0.75, 1.5, 2.25, 2, 2.5, 3, 2, 2.5, 3}, {2, 6})) < 1e-15);
  Generator gen(13);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return std::vector<Tensor>{multilinear_map(in[0], in[1])}; },
                  std::vector<Tensor>{testing::random_leaf({3, 4}, gen), testing::random_leaf({3, 2}, gen)});
  CHECK_THROWS_WITH_AS(multilinear_map(f, f64_values({1, 2, 3}, {3, 1})), doctest::Contains("of one batch"), Error);
}

TEST_CASE("CDAN: randomized multilinear map against its definition, f64 gradients, fixed by the seed") {
  Generator gen(14);
  RandomizedMultilinearMap map(4, 3, 5, gen);
  CHECK(map.output_dim() == 5);
  auto buffers = map.named_buffers();
  REQUIRE(buffers.size() == 2);
  CHECK(buffers[0].first == "rf");
  CHECK(buffers[0].second.shape() == Shape{5, 4});
  CHECK(map.named_parameters().empty());  // never trained
  Tensor f = testing::random_leaf({2, 4}, gen), p = testing::random_leaf({2, 3}, gen, 0, 1);
  Tensor h = map.forward(f, p);
  const auto rf = buffers[0].second.to_doubles(), rg = buffers[1].second.to_doubles();
  const auto fv = f.to_doubles(), pv = p.to_doubles(), hv = h.to_doubles();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 5; ++j) {
      double a = 0, b = 0;
      for (int c = 0; c < 4; ++c) a += fv[i * 4 + c] * rf[j * 4 + c];
      for (int c = 0; c < 3; ++c) b += pv[i * 3 + c] * rg[j * 3 + c];
      CHECK(hv[i * 5 + j] == doctest::Approx(a * b / std::sqrt(5.0)).epsilon(1e-12));
    }
  CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return std::vector<Tensor>{map.forward(in[0], in[1])}; },
                  std::vector<Tensor>{f, p});
  Generator again(14);
  RandomizedMultilinearMap same(4, 3, 5, again);
  CHECK(testing::max_abs_diff(same.named_buffers()[1].second, buffers[1].second) == 0.0);
}

TEST_CASE("CDAN: entropy weights 1 + exp(-H), normalised to the batch size") {
  // Uniform over 2 classes: H = log 2 (up to tllib's 1e-5 inside the log); one-hot: H ≈ 0.
  Tensor p = f64_values({0.5, 0.5, 1.0, 0.0, 0.9, 0.1}, {3, 2});
  auto entropy = [](double a, double b) { return -(a * std::log(a + 1e-5) + b * std::log(b + 1e-5)); };
  std::vector<double> raw = {1 + std::exp(-entropy(0.5, 0.5)), 1 + std::exp(-entropy(1, 0)),
                             1 + std::exp(-entropy(0.9, 0.1))};
  const double total = raw[0] + raw[1] + raw[2];
  auto w = entropy_weights(p).to_doubles();
  REQUIRE(w.size() == 3);
  for (int i = 0; i < 3; ++i) CHECK(w[i] == doctest::Approx(3 * raw[i] / total).epsilon(1e-12));
  CHECK(raw[0] == doctest::Approx(1.5).epsilon(1e-4));
  CHECK(raw[1] == doctest::Approx(2.0).epsilon(1e-4));
  CHECK(w[0] + w[1] + w[2] == doctest::Approx(3.0));
}

TEST_CASE("CdanDiscriminator: automatic conditioning, detached prediction, entropy-weighted loss") {
  Generator gen(15);
  CdanDiscriminator small(8, 4, {.discriminator = {.hidden = 16}}, gen);
  CHECK_FALSE(small.randomized());
  CHECK(small.conditioned_dim() == 32);
  CdanDiscriminator large(500, 10, {.discriminator = {.hidden = 16}}, gen);  // 5000 > 4096
  CHECK(large.randomized());
  CHECK(large.conditioned_dim() == 1024);
  CdanDiscriminator forced(
      8, 4, {.conditioning = CdanConditioning::randomized, .randomized_dim = 12, .discriminator = {.hidden = 16}}, gen);
  CHECK(forced.conditioned_dim() == 12);
  CHECK(forced.named_buffers().front().first == "map.rf");

  // Gradients reach f but not g (softmax(g) is detached, as tllib).
  Tensor f = randn({6, 8}, gen), g = randn({6, 4}, gen);
  f.set_requires_grad();
  g.set_requires_grad();
  Tensor logits = small.forward({f, g});
  CHECK(logits.shape() == Shape{6, 1});
  ops::sum(logits).backward();
  REQUIRE(f.grad().defined());
  CHECK(testing::max_abs_diff(f.grad(), zeros_like(f)) > 0.0);
  CHECK((!g.grad().defined() || testing::max_abs_diff(g.grad(), zeros_like(g)) == 0.0));
  CHECK_THROWS_WITH_AS(small.forward({f}), doctest::Contains("got 1 tensors"), Error);

  // CDAN+E through the adapter: weights from the joint batch's predictions, applied per sample.
  CdanDiscriminator weighted(8, 4, {.entropy_weighting = true, .discriminator = {.hidden = 16}}, gen);
  auto shared = std::shared_ptr<CdanDiscriminator>(&weighted, [](CdanDiscriminator*) {});
  DomainAdapter adapter(shared, WarmStartSchedule::dann(100));
  Tensor fs = randn({3, 8}, gen), gs = randn({3, 4}, gen, 0, 3), ft = randn({2, 8}, gen), gt = randn({2, 4}, gen);
  auto term = adapter.adapt({fs, gs}, {ft, gt}, 50);
  CHECK(term.lambda == doctest::Approx(std::tanh(2.5)));
  const Tensor w = entropy_weights(ops::softmax(ops::cat({gs, gt}, 0), 1));
  Tensor joint = weighted.forward({ops::cat({fs, ft}, 0), ops::cat({gs, gt}, 0)});
  auto expected = domain_adversarial_loss(ops::narrow(joint, 0, 0, 3), ops::narrow(joint, 0, 3, 2),
                                          {ops::narrow(w, 0, 0, 3).contiguous(), ops::narrow(w, 0, 3, 2).contiguous()});
  CHECK(term.loss.item() == doctest::Approx(expected.loss.item()).epsilon(1e-6));
  auto unweighted = domain_adversarial_loss(ops::narrow(joint, 0, 0, 3), ops::narrow(joint, 0, 3, 2));
  CHECK(std::abs(term.loss.item() - unweighted.loss.item()) > 1e-6);  // the weights matter
}

TEST_CASE("DomainAdapter: a discriminator learns to separate two Gaussian clouds") {
  Generator gen(16);
  auto disc = std::make_shared<DomainDiscriminator>(8, DomainDiscriminatorOptions{.hidden = 32}, gen);
  DomainAdapter adapter(disc);
  nn::Adam adam(adapter.parameters(), nn::AdamOptions{.lr = 1e-2});
  auto batch = [&](double mean) { return randn({32, 8}, gen, mean, 1.0); };
  double first_accuracy = -1.0;
  for (int step = 0; step < 40; ++step) {
    adam.zero_grad();
    // Features without a graph: the reversal has nothing to reverse, the discriminator trains as usual.
    auto term = adapter.adapt({batch(0.75)}, {batch(-0.75)}, step);
    if (step == 0) first_accuracy = term.accuracy;
    term.loss.backward();
    adam.step();
  }
  CHECK(adapter.last().step == 39);
  CHECK(adapter.last().accuracy > 0.9);
  CHECK(adapter.last().source_probability > 0.7);
  CHECK(adapter.last().target_probability < 0.3);
  // Held-out clouds, running statistics (evaluation mode).
  adapter.eval();
  NoGradGuard guard;
  auto r = domain_adversarial_loss(disc->forward(batch(0.75)), disc->forward(batch(-0.75)));
  CHECK(r.accuracy > 0.9);
  MESSAGE("domain accuracy: first step ", first_accuracy, ", last ", adapter.last().accuracy, ", held out ",
          r.accuracy);
}
