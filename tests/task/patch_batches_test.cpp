// Training batches with the augmentation applied on the loader threads or deferred to the training
// device (data.augment_on, Note [Augmentation on the GPU]); the GPU half is tests/cuda/augment_cuda_test.cpp.
#include "tlk/task/patch_batches.h"

#include <doctest/doctest.h>

#include <cstring>

#include "test_util.h"
#include "tlk/io/config.h"

using namespace tlk;
using testing::bit_identical;

namespace {

std::vector<data::SampleSource> random_cases(Generator& gen) {
  std::vector<data::SampleSource> cases;
  for (int i = 0; i < 3; ++i) {
    data::SampleSource s;
    s.image = tlk::rand({2, 20, 22, 24}, gen, -1.0, 2.0);
    s.labels = Tensor::zeros({20, 22, 24}, TensorOptions{}.with(DType::u8));
    for (std::int64_t v = 0; v < s.labels.numel(); ++v)
      s.labels.data<std::uint8_t>()[v] = static_cast<std::uint8_t>(gen.uniform() < 0.2 ? 1 + gen.below(2) : 0);
    s.class_locations = data::sample_class_locations(s.labels, gen, 50);
    cases.push_back(s);
  }
  return cases;
}

task::SegmentationTrainConfig batch_config(bool augment_on_device) {
  task::SegmentationTrainConfig c;
  c.patch = {12, 10, 14};
  c.batch = 3;
  c.seed = 9;
  c.augment_on_device = augment_on_device;
  return c;
}

}  // namespace

TEST_CASE("patch batches: augmentation deferred to the device gives the loader's batches bit for bit on the CPU") {
  Generator gen(3);
  const std::vector<data::SampleSource> cases = random_cases(gen);
  const task::PatchBatches on_loader(cases, batch_config(false), true, 1);
  const task::PatchBatches deferred(cases, batch_config(true), true, 1);
  for (std::int64_t index = 0; index < 6; ++index) {
    CAPTURE(index);
    const data::Batch finished = on_loader.make(index);
    const data::Batch pending = deferred.make(index);
    CHECK(finished.pending_augmentation.empty());
    REQUIRE(pending.pending_augmentation.size() == 3);
    // The enlarged regions travel, not the patches.
    CHECK(pending.image.size(2) > 12);
    CHECK(pending.image.shape() == Shape({3, 2, pending.image.size(2), pending.image.size(3), pending.image.size(4)}));
    const data::Batch applied = deferred.to_device(pending, Device::cpu());
    CHECK(applied.pending_augmentation.empty());
    CHECK(applied.index == finished.index);
    CHECK(bit_identical(applied.image, finished.image));
    CHECK(bit_identical(applied.labels, finished.labels));
    // A finished batch passes through unchanged.
    CHECK(bit_identical(on_loader.to_device(finished, Device::cpu()).image, finished.image));
  }
  // Unlabelled (target) batches: the labels may be dropped before the draws are applied.
  data::Batch unlabelled = deferred.make(7);
  unlabelled.labels = Tensor();
  const data::Batch applied = deferred.to_device(unlabelled, Device::cpu());
  CHECK_FALSE(applied.labels.defined());
  CHECK(bit_identical(applied.image, on_loader.make(7).image));
}

TEST_CASE("patch batches: without augmentation nothing is deferred") {
  Generator gen(4);
  task::PatchBatches plain(random_cases(gen), batch_config(true), false, 2);
  CHECK_THROWS_WITH_AS(plain.pin_for(Device::cpu()), doctest::Contains("batches are pinned for a GPU, got cpu"), Error);
  const data::Batch b = plain.make(0);
  CHECK(b.pending_augmentation.empty());
  CHECK(b.image.shape() == Shape({3, 2, 12, 10, 14}));
}

TEST_CASE("patch batches: data.augment_on is checked and written back") {
  const auto config = [](const std::string& yaml) {
    return task::SegmentationTrainConfig::from(io::Config::from_yaml_text(yaml, "run.yaml"));
  };
  CHECK_FALSE(config("data: {train: p}").augment_on_device);
  CHECK_FALSE(config("data: {train: p, augment_on: loader}").augment_on_device);
  CHECK_THROWS_WITH_AS(config("data: {train: p, augment_on: gpu}"),
                       doctest::Contains("run.yaml: data.augment_on must be loader"), Error);
  CHECK_THROWS_WITH_AS(config("data: {train: p, augment_on: device}"),
                       doctest::Contains("data.augment_on device needs train.device cuda"), Error);
  // --print-config writes the key, and what it writes reads back.
  task::SegmentationTrainConfig on_gpu;
  on_gpu.train_dir = "prep";
  on_gpu.device = "cuda";
  on_gpu.augment_on_device = true;
  const std::string yaml = on_gpu.to_yaml();
  CHECK(yaml.find("augment_on: device") != std::string::npos);
  CHECK(task::SegmentationTrainConfig::from(io::Config::from_yaml_text(yaml)).augment_on_device);
}

TEST_CASE("train.layout: auto is channels-last on a GPU and plain on the CPU; channels_last needs a GPU") {
  const auto config = [](const std::string& yaml) {
    return task::SegmentationTrainConfig::from(io::Config::from_yaml_text(yaml, "run.yaml"));
  };
  CHECK(config("data: {train: p}").layout == Layout::plain);
  CHECK(config("data: {train: p}\ntrain: {layout: plain}").layout == Layout::plain);
  CHECK(config("data: {train: p}\ntrain: {device: cuda}").layout == Layout::channels_last);
  CHECK(config("data: {train: p}\ntrain: {device: cuda, layout: plain}").layout == Layout::plain);
  CHECK_THROWS_WITH_AS(config("data: {train: p}\ntrain: {layout: channels_last}"),
                       doctest::Contains("run.yaml: train.layout: channels_last needs a CUDA device"), Error);
  CHECK_THROWS_WITH_AS(config("data: {train: p}\ntrain: {layout: NDHWC}"),
                       doctest::Contains("unknown layout 'NDHWC' (expected auto, plain or channels_last)"), Error);
  // --print-config writes the layout it resolved, and that reads back.
  task::SegmentationTrainConfig on_gpu = config("data: {train: prep}\ntrain: {device: cuda}");
  const std::string yaml = on_gpu.to_yaml();
  CHECK(yaml.find("layout: channels_last") != std::string::npos);
  CHECK(task::SegmentationTrainConfig::from(io::Config::from_yaml_text(yaml)).layout == Layout::channels_last);
}
