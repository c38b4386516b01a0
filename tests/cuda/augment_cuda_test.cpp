// The augmentation applied on the GPU (data/device_augment.h) against the CPU's application of the
// same draws. The kernels' bodies are checked bit for bit on the host (tests/data/augment_bodies_test.cpp);
// here the launches, buffers and reductions are, with a tolerance for fused multiply-adds and the
// device's powf.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cuda_test_util.h"
#include "tlk/data/device_augment.h"
#include "tlk/kernels/augment_voxel.h"
#include "tlk/task/patch_batches.h"

using namespace tlk;
using namespace tlk::data;
using testing::max_abs_diff;
using testing::to_cpu;
using testing::to_gpu;

namespace {

Tensor random_labels(Extent3 e, Generator& gen) {
  return testing::random_labels({e[0], e[1], e[2]}, gen, {0, 1, 2, 3});
}

/// Every transform likely, noise off (its GPU values differ by design, Note [GPU noise]).
AugmentOptions likely_without_noise() {
  AugmentOptions o = AugmentOptions::all(0.75);
  o.noise.probability = 0;
  return o;
}

std::int64_t label_mismatches(const Tensor& a, const Tensor& b) {
  std::int64_t n = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) n += a.data<std::uint8_t>()[i] != b.data<std::uint8_t>()[i];
  return n;
}

}  // namespace

TEST_CASE("cuda augment: the GPU applies the CPU's draws to the same patch") {
  TLK_REQUIRE_GPU();
  Generator g0(21);
  const Extent3 in{40, 37, 43}, out{24, 32, 20};
  const Tensor image = tlk::rand({2, in[0], in[1], in[2]}, g0, -1.0, 2.0);
  const Tensor labels = random_labels(in, g0);
  const Tensor gpu_image = to_gpu(image), gpu_labels = labels.to(Device::cuda());
  for (std::uint64_t seed = 0; seed < 16; ++seed) {
    CAPTURE(seed);
    Generator gen(seed);
    const AugmentDraws d = draw_augmentation(likely_without_noise(), 2, gen);
    const AugmentedPatch cpu = apply_augmentation(image, labels, out, d);
    const AugmentedPatch gpu = apply_augmentation(gpu_image, gpu_labels, out, d);
    REQUIRE(gpu.image.device().is_cuda());
    const Tensor got = to_cpu(gpu.image), got_labels = gpu.labels.to(Device::cpu());
    REQUIRE(got.shape() == cpu.image.shape());
    double scale = 1.0;
    for (double v : cpu.image.to_doubles()) scale = std::max(scale, std::abs(v));
    CHECK(max_abs_diff(got, cpu.image) <= 2e-4 * scale);
    CHECK(label_mismatches(got_labels, cpu.labels) == 0);
  }
  // Without labels, and with the plain centre crop of a smaller input (padding).
  Generator gen(3);
  const AugmentDraws crop = draw_augmentation(AugmentOptions::none(), 2, gen);
  const AugmentedPatch padded = apply_augmentation(gpu_image, Tensor(), {44, 30, 50}, crop);
  CHECK_FALSE(padded.labels.defined());
  CHECK(max_abs_diff(to_cpu(padded.image), apply_augmentation(image, Tensor(), {44, 30, 50}, crop).image) == 0.0);
}

TEST_CASE("cuda augment: GPU noise is the host's counter-based noise with the drawn sigma") {
  TLK_REQUIRE_GPU();
  Generator gen(5);
  AugmentOptions o = AugmentOptions::none();
  o.noise.probability = 1;
  const AugmentDraws d = draw_augmentation(o, 2, gen);
  const Extent3 e{16, 20, 24};
  const Tensor image = Tensor::zeros({2, e[0], e[1], e[2]});
  const Tensor got = to_cpu(apply_augmentation(to_gpu(image), Tensor(), e, d).image);
  const std::int64_t volume = e[0] * e[1] * e[2];
  double worst = 0.0;
  for (std::int64_t c = 0; c < 2; ++c)
    for (std::int64_t i = 0; i < volume; ++i)
      worst = std::max(worst, std::abs(static_cast<double>(got.data<float>()[c * volume + i]) -
                                       kernels::augment::noise_value(d.noise.channel_seeds[static_cast<std::size_t>(c)],
                                                                     i, d.noise.sigma)));
  CHECK(worst <= 1e-6 * std::max(1.0, d.noise.sigma));
}

TEST_CASE("cuda augment: batches augmented on the GPU match the loader's, and bad input is refused") {
  TLK_REQUIRE_GPU();
  Generator gen(8);
  std::vector<SampleSource> cases;
  for (int i = 0; i < 2; ++i) {
    SampleSource s;
    s.image = tlk::rand({1, 30, 28, 26}, gen, -1.0, 2.0);
    s.labels = random_labels({30, 28, 26}, gen);
    s.class_locations = sample_class_locations(s.labels, gen, 50);
    cases.push_back(s);
  }
  task::SegmentationTrainConfig config;
  config.patch = {16, 16, 16};
  config.batch = 2;
  const task::PatchBatches on_loader(cases, config, true, 1);
  config.augment_on_device = true;
  task::PatchBatches deferred(cases, config, true, 1);
  deferred.pin_for(Device::cuda());  // batches for a GPU are made in pinned memory (Note [Pinned staging])
  int compared = 0;
  for (std::int64_t index = 0; index < 12; ++index) {
    const Batch pending = deferred.make(index);
    REQUIRE(pending.image.is_pinned());
    const Batch finished = on_loader.make(index);
    const Batch gpu = deferred.to_device(pending, Device::cuda());
    REQUIRE(gpu.image.device().is_cuda());
    const Tensor got = to_cpu(gpu.image), got_labels = gpu.labels.to(Device::cpu());
    for (std::int64_t s = 0; s < 2; ++s) {
      if (pending.pending_augmentation[static_cast<std::size_t>(s)].noise.acted) continue;  // Note [GPU noise]
      ++compared;
      CHECK(max_abs_diff(got.narrow(0, s, 1), finished.image.narrow(0, s, 1)) <= 1e-3);
      CHECK(label_mismatches(got_labels.narrow(0, s, 1).contiguous(), finished.labels.narrow(0, s, 1).contiguous()) ==
            0);
    }
  }
  CHECK(compared >= 16);
  // A draw for another channel count, labels on the CPU: clear errors.
  Generator g2(1);
  AugmentOptions bright = AugmentOptions::none();
  bright.brightness.probability = 1;
  const AugmentDraws three = draw_augmentation(bright, 3, g2);
  const Tensor image = to_gpu(tlk::rand({1, 8, 8, 8}, g2));
  CHECK_THROWS_WITH_AS(apply_augmentation_cuda(image, Tensor(), {8, 8, 8}, three),
                       doctest::Contains("brightness draw was made for 3 channels"), Error);
  CHECK_THROWS_WITH_AS(apply_augmentation_cuda(image, random_labels({8, 8, 8}, g2), {8, 8, 8}, three),
                       doctest::Contains("the labels are on cpu"), Error);
}
