#include "tlk/task/segmentation_teacher_cache.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tlk/io/file_bytes.h"
#include "tlk/tensor/error.h"
#include "tlk/tensor/fnv1a.h"

namespace tlk::task {

SegmentationTeacherCache::SegmentationTeacherCache(const SegmentationTrainConfig& config, std::int64_t num_classes,
                                                   const std::vector<std::string>& train_ids,
                                                   const std::vector<std::string>& target_ids, int rank, int ranks)
    : cycle_(config.distill_cache_batches > 0 ? config.distill_cache_batches : config.iterations_per_epoch) {
  check(cycle_ >= 1, "distill.cache: the replay cycle must be at least one batch, got {}", cycle_);
  const std::filesystem::path dir =
      ranks > 1 ? config.distill_cache / fmt::format("rank{}_of_{}", rank, ranks) : config.distill_cache;
  cache_ = std::make_unique<transfer::TeacherCache>(
      dir, transfer::TeacherCacheOptions{.format = transfer::CacheFormat::probabilities_u8,
                                         .num_classes = num_classes,
                                         .temperature = config.distill_temperature});
  const std::vector<std::uint8_t> teacher_bytes = io::read_file_bytes(config.teacher);
  std::uint64_t h = fnv1a(teacher_bytes.data(), teacher_bytes.size());
  h = fnv1a(fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}", config.train_dir.string(), config.target_dir.string(),
                        fmt::join(config.patch, ","), config.batch, ranks, config.oversample_foreground,
                        config.augment, config.seed, cycle_, dtype_name(config.precision), fmt::join(train_ids, ","),
                        fmt::join(target_ids, ",")),
            h);
  fingerprint_ = h;
}

Tensor SegmentationTeacherCache::teacher_logits(std::int64_t batch, Stream stream,
                                                const std::function<Tensor()>& run_teacher) {
  // The target stream's keys sit far above any source batch index.
  const transfer::TeacherCacheKey key{.sample = batch + (stream == target ? std::int64_t{1} << 40 : 0),
                                      .seed = fingerprint_};
  if (cache_->has(key)) {
    ++replayed_;
    return cache_->get_teacher_logits(key);  // on the CPU: the caller moves it
  }
  ++computed_;
  const Tensor logits = run_teacher();
  cache_->put(key, logits.to(DType::f32).to(Layout::plain).to(Device::cpu()).contiguous());
  // What the cache holds, not the exact logits: a run then distils from the same values whether the
  // cache was cold or warm, and resuming mid-run repeats an uninterrupted run exactly.
  return cache_->get_teacher_logits(key).to(logits.device());
}

}  // namespace tlk::task
