// Data-parallel gradients: N ranks with batch 1 each against one process with batch N, on every rank.
#include <doctest/doctest.h>

#include "test_util.h"
#include "tlk/autograd/ops/arith.h"
#include "tlk/autograd/ops/reduce.h"
#include "tlk/dist/gradient_reducer.h"
#include "tlk/nn/deep_supervision_loss.h"
#include "tlk/nn/sgd.h"
#include "tlk/nn/unet.h"
#include "tlk/transfer/multiscale_discriminator.h"
#include "tlk/transfer/transferrable_model.h"

using namespace tlk;
using namespace tlk::ops;
using namespace tlk::testing;

namespace {

dist::ProcessGroup& group() { return *dist::ProcessGroup::world(); }

nn::UNet tiny_unet() {
  nn::UNetConfig config = nn::UNetConfig::isotropic(3, 1, 3);
  config.base_features = 4;
  config.max_features = 8;
  Generator init(7);
  return nn::UNet(config, init);
}

/// The global batch of `step`: N = ranks images [N, 1, 8, 8, 8] and labels in {0, 1, 2}.
void global_batch(std::int64_t step, std::int64_t n, Tensor& images, Tensor& labels) {
  Generator gen(100 + static_cast<std::uint64_t>(step));
  images = rand({n, 1, 8, 8, 8}, gen, -1.0, 1.0);
  labels = Tensor::empty({n, 8, 8, 8}, TensorOptions{}.with(DType::u8));
  for (std::int64_t i = 0; i < labels.numel(); ++i) labels.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(gen.below(3));
}

/// The gradients of one process with the global batch (`a`) against the reduced ones (`b`).
void check_same_gradients(const std::vector<nn::NamedTensor>& a, const std::vector<nn::NamedTensor>& b,
                          std::int64_t step) {
  REQUIRE(a.size() == b.size());
  for (std::size_t k = 0; k < a.size(); ++k) {
    INFO("step " << step << ", gradient of " << a[k].first);
    REQUIRE(a[k].second.grad().defined() == b[k].second.grad().defined());
    if (!a[k].second.grad().defined()) continue;
    // Relative to the gradient's size, with a floor for the biases before a norm, whose exact
    // gradient is 0 and whose computed one is float noise.
    const double size = max_abs_diff(a[k].second.grad(), Tensor::zeros(a[k].second.shape()));
    CHECK(max_abs_diff(a[k].second.grad(), b[k].second.grad()) <= 2e-5 * size + 1e-6);
  }
}

Tensor training_loss(nn::UNet& net, const Tensor& images, const Tensor& labels) {
  return nn::deep_supervision_loss(net.forward(images), labels, net.deep_supervision_weights());
}

}  // namespace

TEST_CASE("dist: collectives sum, broadcast and keep their order on every rank") {
  const int ranks = group().size(), rank = group().rank();
  Tensor f = Tensor::full({5}, rank + 1.0);
  group().all_reduce_sum(f, "a test tensor");
  for (std::int64_t i = 0; i < 5; ++i) CHECK(f.data<float>()[i] == doctest::Approx(ranks * (ranks + 1) / 2.0));
  // Several in flight at once complete in submission order, each with its own values.
  std::vector<Tensor> many;
  std::vector<std::shared_ptr<dist::Work>> works;
  for (int k = 0; k < 6; ++k) {
    many.push_back(Tensor::full({1000}, k * 10.0 + rank, TensorOptions{}.with(DType::f64)));
    works.push_back(group().all_reduce_sum_async(many.back(), "tensor " + std::to_string(k)));
  }
  for (int k = 0; k < 6; ++k) {
    works[k]->wait();
    CHECK(many[k].data<double>()[999] == doctest::Approx(ranks * k * 10.0 + ranks * (ranks - 1) / 2.0));
  }
  Tensor b = Tensor::full({3}, rank == 0 ? 42.0 : -1.0);
  group().broadcast(b, 0, "a test tensor");
  CHECK(b.data<float>()[2] == 42.0f);
  CHECK(group().all_reduce_sum({1.0, double(rank)}, "counts") == std::vector<double>{double(ranks), ranks * (ranks - 1) / 2.0});
  group().barrier("the collective test");
  group().check_same("the same text", "a test text");
  if (ranks > 1)
    CHECK_THROWS_WITH_AS(group().check_same(rank == 0 ? "a config" : "another config", "the config"),
                         doctest::Contains("the config differs between the ranks (1 of 2 differ from rank 0's"), Error);
  // Bad input is refused before anything is sent.
  Tensor ints = Tensor::zeros({2}, TensorOptions{}.with(DType::i64));
  CHECK_THROWS_WITH_AS(group().all_reduce_sum(ints, "an integer tensor"), doctest::Contains("expected f32 or f64"), Error);
}

TEST_CASE("dist: N ranks with batch 1 give the gradients and SGD trajectory of one process with batch N") {
  const int ranks = group().size(), rank = group().rank();
  nn::UNet single = tiny_unet(), replica = tiny_unet();
  nn::Sgd single_sgd(single.parameters(), nn::SgdOptions{0.05, 0.9, true, 3e-5});
  nn::Sgd replica_sgd(replica.parameters(), nn::SgdOptions{0.05, 0.9, true, 3e-5});
  // Small buckets, so that the UNet's gradients travel in many pieces, most while backward runs.
  dist::GradientReducer reducer(group(), replica.parameters(), {.bucket_bytes = 4096});
  CHECK(reducer.num_buckets() > 3);
  for (std::int64_t step = 0; step < 4; ++step) {
    Tensor images, labels;
    global_batch(step, ranks, images, labels);
    single_sgd.zero_grad();
    training_loss(single, images, labels).backward();
    replica_sgd.zero_grad();
    training_loss(replica, images.narrow(0, rank, 1).contiguous(), labels.narrow(0, rank, 1).contiguous()).backward();
    reducer.finish_backward();
    // From the second pass on, most buckets leave while backward runs (Note [Unused parameters]:
    // the lowest deep-supervision head never gets a gradient and no longer holds its bucket).
    if (step > 0) CHECK(reducer.buckets_started_during_backward() > reducer.num_buckets() / 2);
    check_same_gradients(single.named_parameters(), replica.named_parameters(), step);
    single_sgd.step();
    replica_sgd.step();
  }
  const auto a = single.named_parameters(), b = replica.named_parameters();
  for (std::size_t k = 0; k < a.size(); ++k) {
    INFO("parameter " << a[k].first << " after 4 SGD steps");
    CHECK(max_abs_diff(a[k].second, b[k].second) <= 1e-5);
  }
}

namespace {

/// A UNet with TLK's multi-scale domain discriminator (DANN through gradient reversal), as the
/// segmentation trainer's adapt strategy builds it.
struct Dann {
  nn::UNet net = tiny_unet();
  std::shared_ptr<transfer::DomainAdapter> adapter;
  std::unique_ptr<transfer::TransferrableModel> model;

  Dann() {
    transfer::MultiScaleDiscriminatorOptions options;
    options.widths = {4, 8};
    Generator init(9);
    adapter = std::make_shared<transfer::DomainAdapter>(
        std::make_shared<transfer::MultiScaleDiscriminator>(net.config(), options, init),
        transfer::WarmStartSchedule{.alpha = 10, .max_iters = 4});
    transfer::BackboneTask task;
    task.forward = [this](const Tensor& images) {
      transfer::BackboneOutput out;
      out.logits = net.forward(images);
      out.features = net.encoder_features();
      return out;
    };
    task.task_loss = [this](const transfer::BackboneOutput& out, const Tensor& labels) {
      return nn::deep_supervision_loss(out.logits, labels, net.deep_supervision_weights());
    };
    model = std::make_unique<transfer::TransferrableModel>(transfer::Strategy::adapt, task, adapter,
                                                           transfer::LossWeights{.task = 1.0, .adversarial = 1.0});
  }

  std::vector<nn::NamedTensor> parameters() const {
    auto out = net.named_parameters();
    for (auto& named : adapter->named_parameters("adapter.")) out.push_back(named);
    return out;
  }
};

}  // namespace

TEST_CASE("dist: DANN on N ranks with batch 1 gives the UNet's and the discriminator's gradients of batch N") {
  const int ranks = group().size(), rank = group().rank();
  Dann single, replica;
  std::vector<Tensor> trained;
  for (const auto& [name, t] : replica.parameters()) trained.push_back(t);
  dist::GradientReducer reducer(group(), trained, {.bucket_bytes = 8192});
  for (std::int64_t step = 0; step < 3; ++step) {
    Tensor images, labels, target, unused;
    global_batch(step, ranks, images, labels);
    global_batch(50 + step, ranks, target, unused);
    for (const auto& [name, t] : single.parameters()) t.set_grad(Tensor());
    for (const auto& [name, t] : replica.parameters()) t.set_grad(Tensor());
    single.model->losses(images, labels, target, step).total.backward();
    replica.model
        ->losses(images.narrow(0, rank, 1).contiguous(), labels.narrow(0, rank, 1).contiguous(),
                 target.narrow(0, rank, 1).contiguous(), step)
        .total.backward();
    reducer.finish_backward();
    check_same_gradients(single.parameters(), replica.parameters(), step);
  }
}

TEST_CASE("dist: a parameter no rank reached keeps no gradient; one some ranks reached is averaged with zeros") {
  const int ranks = group().size(), rank = group().rank();
  Tensor used = Tensor::full({3}, 1.0).set_requires_grad(true);
  Tensor sometimes = Tensor::full({2}, 1.0).set_requires_grad(true);
  Tensor unused = Tensor::full({4}, 1.0).set_requires_grad(true);
  dist::GradientReducer reducer(group(), {used, sometimes, unused});
  Tensor loss = ops::sum(used * (rank + 1.0));
  if (rank == 0) loss = loss + ops::sum(sometimes);
  loss.backward();
  reducer.finish_backward();
  CHECK(used.grad().data<float>()[0] == doctest::Approx((ranks + 1) / 2.0));
  CHECK(sometimes.grad().data<float>()[1] == doctest::Approx(1.0 / ranks));
  CHECK_FALSE(unused.grad().defined());
}

TEST_CASE("dist: a gradient that arrives after its bucket left is still averaged") {
  const int ranks = group().size(), rank = group().rank();
  Tensor a = Tensor::full({3}, 1.0).set_requires_grad(true);
  Tensor b = Tensor::full({2}, 1.0).set_requires_grad(true);
  // One bucket per parameter; b's bucket goes first. Pass 1 uses only a, so pass 2 expects only a
  // and sends b's bucket (zeros) at once: b's gradient in pass 2 comes late, on rank 0 only.
  dist::GradientReducer reducer(group(), {a, b}, {.bucket_bytes = 12});
  REQUIRE(reducer.num_buckets() == 2);
  ops::sum(a).backward();
  reducer.finish_backward();
  CHECK_FALSE(b.grad().defined());
  a.set_grad(Tensor());
  Tensor loss = ops::sum(a * 2.0);
  if (rank == 0) loss = loss + ops::sum(b * 3.0);
  loss.backward();
  reducer.finish_backward();
  CHECK(a.grad().data<float>()[0] == doctest::Approx(2.0));
  CHECK(b.grad().data<float>()[1] == doctest::Approx(3.0 / ranks));
}

TEST_CASE("dist: broadcast_tensors copies rank 0's model; average_tensors takes the mean") {
  const int ranks = group().size(), rank = group().rank();
  Generator gen(static_cast<std::uint64_t>(rank) + 1);  // a different model per rank
  nn::UNetConfig config = nn::UNetConfig::isotropic(3, 1, 2);
  config.base_features = 4;
  nn::UNet net(config, gen);
  std::vector<Tensor> tensors;
  for (const auto& [name, t] : net.state_dict()) tensors.push_back(t);
  Generator gen0(1);
  nn::UNet rank0(config, gen0);
  dist::broadcast_tensors(group(), tensors, 0, "model");
  const auto expected = rank0.state_dict();
  for (std::size_t k = 0; k < tensors.size(); ++k) CHECK(max_abs_diff(tensors[k], expected[k].second) == 0.0);
  Tensor stats = Tensor::full({4}, 2.0 * rank);
  dist::average_tensors(group(), {stats}, "statistics");
  CHECK(stats.data<float>()[3] == doctest::Approx(ranks - 1.0));
}
