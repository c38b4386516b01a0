#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tlk/nn/module.h"
#include "tlk/tensor/random.h"
#include "tlk/transfer/feature_distillation.h"

namespace tlk::transfer {

/// Which feature distillation runs on the encoder skips (distill.features).
enum class SkipFeatureLoss { none, hint, attention };

/// "none", "hint" or "attention" (else tlk::Error naming `what`).
SkipFeatureLoss parse_skip_feature_loss(const std::string& text, const std::string& what);

/// Feature distillation between the encoder skips of a student and a teacher UNet, one term per
/// scale, averaged over the scales: FitNets hints through one 1x1x1 regressor per scale (student
/// channels -> teacher channels; the regressors are this module's parameters and train with the
/// student), or attention transfer (channel counts may differ). The scales must have the same spatial
/// sizes (the same patch and strides).
///
/// Example:
/// ```
/// transfer::SkipDistillation skips(transfer::SkipFeatureLoss::hint, {4, 8, 16}, {8, 16, 32}, gen);
/// Tensor term = skips.loss(student.encoder_features(), teacher.encoder_features());
/// ```
class SkipDistillation : public nn::Module {
 public:
  SkipDistillation(SkipFeatureLoss kind, const std::vector<std::int64_t>& student_channels,
                   const std::vector<std::int64_t>& teacher_channels, Generator& gen);
  /// The mean over the scales of the hint or attention-transfer term.
  Tensor loss(const std::vector<Tensor>& student_skips, const std::vector<Tensor>& teacher_skips);
  SkipFeatureLoss kind() const { return kind_; }

 private:
  SkipFeatureLoss kind_;
  std::vector<std::shared_ptr<HintRegressor>> regressors_;
};

}  // namespace tlk::transfer
