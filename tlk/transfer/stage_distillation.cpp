#include "tlk/transfer/stage_distillation.h"

#include <fmt/format.h>

#include "tlk/autograd/ops/arith.h"
#include "tlk/tensor/error.h"

namespace tlk::transfer {

FeatureLoss parse_feature_loss(const std::string& text, const std::string& what) {
  if (text == "none") return FeatureLoss::none;
  if (text == "hint") return FeatureLoss::hint;
  if (text == "attention") return FeatureLoss::attention;
  fail("{}: '{}' is not one of none, hint, attention", what, text);
}

StageDistillation::StageDistillation(FeatureLoss kind, const std::vector<std::int64_t>& student_channels,
                                   const std::vector<std::int64_t>& teacher_channels, Generator& gen)
    : kind_(kind) {
  check(student_channels.size() == teacher_channels.size(), "feature distillation: the student has {} stages "
        "and the teacher {}; their feature maps are matched stage by stage", student_channels.size(),
        teacher_channels.size());
  if (kind_ != FeatureLoss::hint) return;
  for (std::size_t s = 0; s < student_channels.size(); ++s)
    regressors_.push_back(register_module(fmt::format("hint_{}", s), std::make_shared<HintRegressor>(
                                                                         student_channels[s], teacher_channels[s], gen)));
}

Tensor StageDistillation::loss(const std::vector<Tensor>& student_maps, const std::vector<Tensor>& teacher_maps) {
  check(kind_ != FeatureLoss::none, "feature distillation: no feature loss was chosen");
  check(student_maps.size() == teacher_maps.size() && !student_maps.empty(), "feature distillation: {} student "
        "feature maps and {} teacher maps (run both networks' forward first)", student_maps.size(), teacher_maps.size());
  check(kind_ != FeatureLoss::hint || student_maps.size() == regressors_.size(), "feature distillation: {} "
        "feature maps for {} hint regressors", student_maps.size(), regressors_.size());
  Tensor total;
  for (std::size_t s = 0; s < student_maps.size(); ++s) {
    const Tensor term = kind_ == FeatureLoss::hint
                            ? hint_loss(student_maps[s], teacher_maps[s], *regressors_.at(s))
                            : attention_transfer_loss(student_maps[s], teacher_maps[s]);
    total = total.defined() ? ops::add(total, term) : term;
  }
  return ops::mul(total, 1.0 / static_cast<double>(student_maps.size()));
}

}  // namespace tlk::transfer
