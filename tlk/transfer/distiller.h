#pragma once
#include <memory>
#include <optional>

#include "tlk/nn/module.h"
#include "tlk/transfer/distillation_losses.h"
#include "tlk/transfer/teacher_cache.h"

namespace tlk::transfer {

/// The logit distillation term a Distiller computes.
enum class DistillLoss {
  kd,        ///< T²·KL at `temperature` (Hinton); the CE on labels is the caller's task loss
  dkd,       ///< decoupled KD (DkdOptions), with its warm-up
  mse,       ///< mean squared error between logits (TLK's BasicDistiller)
  voxel_kd,  ///< voxel-wise KD for segmentation (VoxelKdOptions, optionally foreground only)
};

/// Options of a Distiller.
/// Example: `transfer::DistillerOptions{.loss = transfer::DistillLoss::dkd}`
struct DistillerOptions {
  DistillLoss loss = DistillLoss::kd;
  double temperature = 4.0;  ///< of DistillLoss::kd
  DkdOptions dkd{};
  VoxelKdOptions voxel{};
};

/// A frozen teacher, a logit distillation loss and an optional TeacherCache in one object.
///
/// The constructor freezes the teacher: every parameter gets requires_grad false and the module is put
/// in evaluation mode; teacher_outputs() runs it under NoGradGuard (no graph, no saved activations).
/// loss() returns the distillation term only; TLK weighs it against the task loss outside
/// (0.1·CE + 0.9·KD in its configs). Feature terms (hint_loss, attention_transfer_loss) need the
/// networks' intermediate features and are added by the caller.
///
/// With a cache, the teacher's output for a (sample, seed) key is computed once and replayed after.
/// A cache that stores probabilities must be at the loss's temperature (checked), and DistillLoss::mse
/// needs CacheFormat::logits (probabilities have no logits to compare).
///
/// Example:
/// ```
/// transfer::Distiller distiller(teacher_net, {.loss = DistillLoss::kd, .temperature = 4.0});
/// Tensor t = distiller.teacher_outputs(x);
/// Tensor loss = 0.1 * ops::cross_entropy(s, y) + 0.9 * distiller.loss(s, t, y, epoch + 1);
/// ```
class Distiller {
 public:
  Distiller(std::shared_ptr<nn::UnaryModule> teacher, const DistillerOptions& options = {},
            std::shared_ptr<TeacherCache> cache = nullptr);

  /// The teacher's logits for `batch`: read from the cache when `key` is given and cached; else the
  /// teacher runs (eval mode, no graph) and, when `key` and a cache are given, its output is stored.
  /// The result never requires grad.
  Tensor teacher_outputs(const Tensor& batch, const std::optional<TeacherCacheKey>& key = std::nullopt);

  /// The distillation term of options().loss; `labels` are needed by dkd and by voxel_kd's label
  /// regions, `epoch` (1-based) by dkd's warm-up.
  Tensor loss(const Tensor& student_logits, const Tensor& teacher_logits, const Tensor& labels = {},
              double epoch = 1) const;

  nn::UnaryModule& teacher() { return *teacher_; }
  const DistillerOptions& options() const { return options_; }
  TeacherCache* cache() { return cache_.get(); }

 private:
  std::shared_ptr<nn::UnaryModule> teacher_;
  DistillerOptions options_;
  std::shared_ptr<TeacherCache> cache_;
};

}  // namespace tlk::transfer
