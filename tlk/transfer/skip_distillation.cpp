#include "tlk/transfer/skip_distillation.h"

#include <fmt/format.h>

#include "tlk/autograd/ops/arith.h"
#include "tlk/tensor/error.h"

namespace tlk::transfer {

SkipFeatureLoss parse_skip_feature_loss(const std::string& text, const std::string& what) {
  if (text == "none") return SkipFeatureLoss::none;
  if (text == "hint") return SkipFeatureLoss::hint;
  if (text == "attention") return SkipFeatureLoss::attention;
  fail("{}: '{}' is not one of none, hint, attention", what, text);
}

SkipDistillation::SkipDistillation(SkipFeatureLoss kind, const std::vector<std::int64_t>& student_channels,
                                   const std::vector<std::int64_t>& teacher_channels, Generator& gen)
    : kind_(kind) {
  check(student_channels.size() == teacher_channels.size(), "feature distillation: the student has {} encoder "
        "stages and the teacher {}; the skips are matched scale by scale", student_channels.size(),
        teacher_channels.size());
  if (kind_ != SkipFeatureLoss::hint) return;
  for (std::size_t s = 0; s < student_channels.size(); ++s)
    regressors_.push_back(register_module(fmt::format("hint_{}", s), std::make_shared<HintRegressor>(
                                                                         student_channels[s], teacher_channels[s], gen)));
}

Tensor SkipDistillation::loss(const std::vector<Tensor>& student_skips, const std::vector<Tensor>& teacher_skips) {
  check(kind_ != SkipFeatureLoss::none, "feature distillation: no feature loss was chosen");
  check(student_skips.size() == teacher_skips.size() && !student_skips.empty(), "feature distillation: {} student "
        "skips and {} teacher skips (run both networks' forward first)", student_skips.size(), teacher_skips.size());
  check(kind_ != SkipFeatureLoss::hint || student_skips.size() == regressors_.size(), "feature distillation: {} "
        "skips for {} hint regressors", student_skips.size(), regressors_.size());
  Tensor total;
  for (std::size_t s = 0; s < student_skips.size(); ++s) {
    const Tensor term = kind_ == SkipFeatureLoss::hint
                            ? hint_loss(student_skips[s], teacher_skips[s], *regressors_.at(s))
                            : attention_transfer_loss(student_skips[s], teacher_skips[s]);
    total = total.defined() ? ops::add(total, term) : term;
  }
  return ops::mul(total, 1.0 / static_cast<double>(student_skips.size()));
}

}  // namespace tlk::transfer
