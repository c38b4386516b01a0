#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tlk/task/train_config.h"
#include "tlk/tensor/tensor.h"
#include "tlk/transfer/teacher_cache.h"

namespace tlk::task {

/// distill.cache for segmentation: the teacher's outputs on the training batches, saved to disk and
/// replayed in later epochs (and later runs) instead of running the teacher.
///
/// Note [Replayed patches]: nnUNet-style training never draws the same patch twice, so a teacher
/// output would never be read back. With distill.cache the batch stream repeats instead: step i draws
/// batch i mod distill.cache_batches (default train.iterations_per_epoch), the same cases, patches and
/// augmentations (Note [Batch slots] seeds them from the batch index alone). The first pass runs the
/// teacher and stores its output (softmax at the KD temperature, as u8, transfer::CacheFormat::
/// probabilities_u8); every later pass replays it. The price is fewer distinct patches per run: a
/// pass of 250 batches of 2 is 500 augmented patches, seen again every epoch. The key's seed is a
/// fingerprint of the teacher checkpoint's bytes and of everything that defines the batches (data
/// folders, case lists, patch, batch, ranks, oversampling, augmentation, seed, cycle, precision), so a run
/// with the same teacher and data but another student, learning rate or weight replays the cache
/// too, and a changed input never replays a stale output.
///
/// Example:
/// ```
/// SegmentationTeacherCache cache(config, num_classes, train_ids, target_ids);
/// const std::int64_t b = cache.batch_index(iteration);  // draw batch b
/// Tensor t = cache.teacher_logits(b, SegmentationTeacherCache::source, [&] { return teacher(images); });
/// ```
class SegmentationTeacherCache {
 public:
  enum Stream : int { source = 0, target = 1 };

  /// Opens (or creates) config.distill_cache; as rank `rank` of a data-parallel job of `ranks`
  /// processes, its subfolder "rank<r>_of_<ranks>", since each rank makes its own slots of every batch
  /// (Note [Batch slots]). A directory written with another temperature or class count is a
  /// tlk::Error naming the file.
  SegmentationTeacherCache(const SegmentationTrainConfig& config, std::int64_t num_classes,
                           const std::vector<std::string>& train_ids, const std::vector<std::string>& target_ids,
                           int rank = 0, int ranks = 1);
  /// The batch that step `iteration` draws: iteration mod the cycle.
  std::int64_t batch_index(std::int64_t iteration) const { return iteration % cycle_; }
  std::int64_t cycle() const { return cycle_; }
  /// Logits to distil from for batch `batch` of `stream`: replayed from the cache (T·log p, see
  /// transfer::TeacherCache::get_teacher_logits), or `run_teacher()`'s output, which is stored first.
  Tensor teacher_logits(std::int64_t batch, Stream stream, const std::function<Tensor()>& run_teacher);
  /// Writes the outputs stored since the last flush as a new shard.
  void flush() { cache_->flush(); }
  /// Batches replayed from disk and batches the teacher ran on, in this process.
  std::int64_t replayed() const { return replayed_; }
  std::int64_t computed() const { return computed_; }

 private:
  std::unique_ptr<transfer::TeacherCache> cache_;
  std::uint64_t fingerprint_ = 0;
  std::int64_t cycle_ = 1;
  std::int64_t replayed_ = 0, computed_ = 0;
};

}  // namespace tlk::task
