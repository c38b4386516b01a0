#include "tlk/task/patch_batches.h"

#include <cstring>

#include "tlk/task/mix_seed.h"
#include "tlk/tensor/error.h"

namespace tlk::task {

PatchBatches::PatchBatches(std::vector<data::SampleSource> cases, const SegmentationTrainConfig& config, bool augment,
                           std::uint64_t stream, int rank, int ranks)
    : cases_(std::move(cases)),
      patch_(config.patch),
      load_extent_(config.patch),
      batch_(config.batch),
      first_slot_(rank * config.batch),
      global_batch_(ranks * config.batch),
      oversample_(config.oversample_foreground),
      augment_(augment),
      seed_(mix_seed(config.seed, stream)) {
  check(!cases_.empty(), "training: no cases to draw batches from");
  if (augment_) {
    augment_options_ = data::uses_dummy_2d(patch_) ? data::dummy_2d_augment_options() : data::AugmentOptions{};
    augment_options_.num_threads = 1;
    load_extent_ = data::enlarged_patch_size(patch_, augment_options_);
  }
}

data::Batch PatchBatches::make(std::int64_t index) const {
  const std::uint64_t batch_seed = mix_seed(seed_, static_cast<std::uint64_t>(index));
  const std::int64_t C = cases_[0].image.size(0);
  const std::int64_t voxels = patch_[0] * patch_[1] * patch_[2];
  data::Batch batch;
  batch.image = Tensor::empty({batch_, C, patch_[0], patch_[1], patch_[2]});
  batch.labels = Tensor::empty({batch_, patch_[0], patch_[1], patch_[2]}, TensorOptions{}.with(DType::u8));
  for (std::int64_t slot = 0; slot < batch_; ++slot) {
    const std::int64_t global_slot = first_slot_ + slot;  // Note [Batch slots]
    Generator gen(mix_seed(batch_seed, static_cast<std::uint64_t>(global_slot)));
    const data::SampleSource& source = cases_[gen.below(cases_.size())];
    const bool force = data::slot_forces_foreground(global_slot, global_batch_, oversample_, gen);
    const data::PatchChoice choice = data::choose_patch(source, load_extent_, force, gen);
    Tensor image, labels;
    data::extract_patch(source, choice, load_extent_, image, labels);
    if (augment_) {
      data::AugmentedPatch p = data::augment_patch(image, labels, patch_, augment_options_, gen);
      image = p.image.contiguous();
      labels = p.labels.contiguous();
    }
    std::memcpy(batch.image.data<float>() + slot * C * voxels, image.data<float>(), sizeof(float) * C * voxels);
    std::memcpy(batch.labels.data<std::uint8_t>() + slot * voxels, labels.data<std::uint8_t>(), voxels);
  }
  return batch;
}

}  // namespace tlk::task
