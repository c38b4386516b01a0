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
      augment_on_device_(augment && config.augment_on_device),
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
  const std::array<std::int64_t, 3>& extent = augment_on_device_ ? load_extent_ : patch_;
  const std::int64_t voxels = extent[0] * extent[1] * extent[2];
  data::Batch batch;
  batch.index = index;
  const Shape image_shape{batch_, C, extent[0], extent[1], extent[2]},
      label_shape{batch_, extent[0], extent[1], extent[2]};
  batch.image = pinned_for_ ? Tensor::pinned_empty(image_shape, DType::f32, *pinned_for_) : Tensor::empty(image_shape);
  batch.labels = pinned_for_ ? Tensor::pinned_empty(label_shape, DType::u8, *pinned_for_)
                             : Tensor::empty(label_shape, TensorOptions{}.with(DType::u8));
  for (std::int64_t slot = 0; slot < batch_; ++slot) {
    const std::int64_t global_slot = first_slot_ + slot;  // Note [Batch slots]
    Generator gen(mix_seed(batch_seed, static_cast<std::uint64_t>(global_slot)));
    const data::SampleSource& source = cases_[gen.below(cases_.size())];
    const bool force = data::slot_forces_foreground(global_slot, global_batch_, oversample_, gen);
    const data::PatchChoice choice = data::choose_patch(source, load_extent_, force, gen);
    Tensor image, labels;
    data::extract_patch(source, choice, load_extent_, image, labels);
    if (augment_on_device_) {
      batch.pending_augmentation.push_back(data::draw_augmentation(augment_options_, C, gen));
      image = image.contiguous();
      labels = labels.contiguous();
    } else if (augment_) {
      data::AugmentedPatch p = data::augment_patch(image, labels, patch_, augment_options_, gen);
      image = p.image.contiguous();
      labels = p.labels.contiguous();
    }
    std::memcpy(batch.image.data<float>() + slot * C * voxels, image.data<float>(), sizeof(float) * C * voxels);
    std::memcpy(batch.labels.data<std::uint8_t>() + slot * voxels, labels.data<std::uint8_t>(), voxels);
  }
  return batch;
}

void PatchBatches::pin_for(Device device) {
  check(device.is_cuda(), "training: batches are pinned for a GPU, got {}", device.str());
  pinned_for_ = device;
}

data::Batch PatchBatches::to_device(data::Batch batch, Device device) const {
  data::Batch out;
  out.index = batch.index;
  out.image = batch.image.to(device);
  out.labels = batch.labels.defined() ? batch.labels.to(device) : Tensor();
  if (batch.pending_augmentation.empty()) return out;
  const std::int64_t B = out.image.size(0), C = out.image.size(1);
  check(static_cast<std::int64_t>(batch.pending_augmentation.size()) == B,
        "training: a batch of {} samples carries {} pending augmentations", B, batch.pending_augmentation.size());
  const Shape region{C, out.image.size(2), out.image.size(3), out.image.size(4)};
  const Shape label_region{out.image.size(2), out.image.size(3), out.image.size(4)};
  Tensor images = Tensor::empty({B, C, patch_[0], patch_[1], patch_[2]}, TensorOptions{}.with(device));
  Tensor labels = out.labels.defined() ? Tensor::empty({B, patch_[0], patch_[1], patch_[2]},
                                                       TensorOptions{}.with(DType::u8).with(device))
                                       : Tensor();
  for (std::int64_t s = 0; s < B; ++s) {
    const Tensor slot_labels = labels.defined() ? out.labels.narrow(0, s, 1).reshape(label_region) : Tensor();
    const data::AugmentedPatch p =
        data::apply_augmentation(out.image.narrow(0, s, 1).reshape(region), slot_labels, patch_,
                                 batch.pending_augmentation[static_cast<std::size_t>(s)]);
    images.narrow(0, s, 1).copy_(p.image.reshape({1, C, patch_[0], patch_[1], patch_[2]}));
    if (labels.defined()) labels.narrow(0, s, 1).copy_(p.labels.reshape({1, patch_[0], patch_[1], patch_[2]}));
  }
  out.image = images;
  out.labels = labels;
  return out;
}

}  // namespace tlk::task
