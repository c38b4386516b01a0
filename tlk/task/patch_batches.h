#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "tlk/data/augment.h"
#include "tlk/data/background_loader.h"
#include "tlk/data/patch_sampler.h"
#include "tlk/task/train_config.h"

namespace tlk::task {

/// Labelled cases in memory and batches drawn from them the nnUNet way: a random case per slot,
/// foreground oversampling, an enlarged patch augmented down to the patch size.
///
/// Note [Batch slots]: batch i of a run on R ranks is one global batch of R·data.batch slots; rank r
/// makes slots [r·B, (r+1)·B). Slot s of batch i draws from its own generator, seeded from the run
/// seed, the stream, i and s, and foreground oversampling looks at the global slot. So the patches
/// depend only on the seed, i and the global batch size: a resumed run sees the same batches as an
/// uninterrupted one, and 2 ranks with batch 1 see exactly the patches of 1 rank with batch 2.
class PatchBatches {
 public:
  /// `rank` of `ranks`: which slots of each global batch this process makes (Note [Batch slots]).
  PatchBatches(std::vector<data::SampleSource> cases, const SegmentationTrainConfig& config, bool augment,
               std::uint64_t stream, int rank = 0, int ranks = 1);
  /// Batch `index` (a loader thread may call it). With data.augment_on device its images and labels
  /// are the enlarged regions and it carries their draws (Note [Augmentation on the GPU]).
  data::Batch make(std::int64_t index) const;
  /// Makes batches in pinned memory for GPU `device` from now on (Note [Pinned staging]); call it
  /// before a loader thread calls make().
  void pin_for(Device device);
  /// `batch` on `device` with its pending augmentation applied there: the finished batch make() gives
  /// with data.augment_on loader, bit for bit on the CPU and up to float rounding and the noise's values
  /// (Note [GPU noise]) on a GPU.
  data::Batch to_device(data::Batch batch, Device device) const;
  std::size_t size() const { return cases_.size(); }

 private:
  std::vector<data::SampleSource> cases_;
  std::array<std::int64_t, 3> patch_, load_extent_;
  std::int64_t batch_, first_slot_, global_batch_;
  double oversample_;
  bool augment_;
  bool augment_on_device_;  ///< make() leaves the draws to to_device
  std::optional<Device> pinned_for_;  ///< batches for this GPU are made in pinned memory
  data::AugmentOptions augment_options_;
  std::uint64_t seed_;
};

}  // namespace tlk::task
