#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tlk/nn/module.h"
#include "tlk/tensor/random.h"
#include "tlk/transfer/feature_distillation.h"

namespace tlk::transfer {

/// Which feature distillation runs on the stage maps (distill.features).
enum class FeatureLoss { none, hint, attention };

/// "none", "hint" or "attention" (else tlk::Error naming `what`).
FeatureLoss parse_feature_loss(const std::string& text, const std::string& what);

/// Feature distillation between the stage maps of a student and a teacher, one term per stage,
/// averaged over the stages: a UNet's encoder skips, or a classifier's stage outputs
/// (nn::Classifier::stage_features). FitNets hints go through one 1x1x1 regressor per stage (student
/// channels -> teacher channels; the regressors are this module's parameters, "hint_<stage>.*", and
/// train with the student); attention transfer lets the channel counts differ. Stage by stage, the
/// maps must have the same spatial sizes (the same input and strides).
///
/// Example:
/// ```
/// transfer::StageDistillation stages(transfer::FeatureLoss::hint, {4, 8, 16}, {8, 16, 32}, gen);
/// Tensor term = stages.loss(student.encoder_features(), teacher.encoder_features());
/// ```
class StageDistillation : public nn::Module {
 public:
  StageDistillation(FeatureLoss kind, const std::vector<std::int64_t>& student_channels,
                   const std::vector<std::int64_t>& teacher_channels, Generator& gen);
  /// The mean over the scales of the hint or attention-transfer term.
  Tensor loss(const std::vector<Tensor>& student_maps, const std::vector<Tensor>& teacher_maps);
  FeatureLoss kind() const { return kind_; }

 private:
  FeatureLoss kind_;
  std::vector<std::shared_ptr<HintRegressor>> regressors_;
};

}  // namespace tlk::transfer
