// Feature distillation on every encoder skip (distill.features): the per-scale hint or attention
// terms averaged, regressors that train with the student, a teacher that gets no gradient.
#include <doctest/doctest.h>

#include "test_util.h"
#include "tlk/autograd/ops/arith.h"
#include "tlk/transfer/stage_distillation.h"

using namespace tlk;
using namespace tlk::testing;

namespace {

struct Skips {
  std::vector<Tensor> student, teacher;
};

/// Skips of a 3-stage UNet: student widths 2, 4, 8 and teacher widths 4, 8, 16 at 8³, 4³, 2³.
Skips make_skips(Generator& gen) {
  Skips s;
  const std::vector<std::int64_t> cs{2, 4, 8}, ct{4, 8, 16}, size{8, 4, 2};
  for (std::size_t i = 0; i < 3; ++i) {
    s.student.push_back(rand({2, cs[i], size[i], size[i], size[i]}, gen, -1.0, 1.0).set_requires_grad(true));
    s.teacher.push_back(randn({2, ct[i], size[i], size[i], size[i]}, gen));
  }
  return s;
}

}  // namespace

TEST_CASE("stage distillation: the hint is the mean over scales of each scale's regressed hint") {
  Generator gen(1), init(5), same_init(5);
  const Skips s = make_skips(gen);
  transfer::StageDistillation skips(transfer::FeatureLoss::hint, {2, 4, 8}, {4, 8, 16}, init);
  CHECK(skips.named_parameters().front().first == "hint_0.conv.weight");
  double expected = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    transfer::HintRegressor reg(s.student[i].size(1), s.teacher[i].size(1), same_init);  // same draws, same order
    expected += transfer::hint_loss(s.student[i], s.teacher[i], reg).item() / 3.0;
  }
  const Tensor loss = skips.loss(s.student, s.teacher);
  CHECK(loss.item() == doctest::Approx(expected).epsilon(1e-6));
  loss.backward();
  for (const Tensor& f : s.student) CHECK(f.grad().defined());
  for (const Tensor& p : skips.parameters()) CHECK(p.grad().defined());
  for (const Tensor& f : s.teacher) CHECK_FALSE(f.requires_grad());
}

TEST_CASE("stage distillation: attention transfer needs no regressor and averages the scales") {
  Generator gen(2), init(3);
  const Skips s = make_skips(gen);
  transfer::StageDistillation skips(transfer::FeatureLoss::attention, {2, 4, 8}, {4, 8, 16}, init);
  CHECK(skips.parameters().empty());
  double expected = 0;
  for (std::size_t i = 0; i < 3; ++i)
    expected += transfer::attention_transfer_loss(s.student[i], s.teacher[i]).item() / 3.0;
  CHECK(skips.loss(s.student, s.teacher).item() == doctest::Approx(expected).epsilon(1e-6));
}

TEST_CASE("stage distillation: bad input names what is wrong") {
  Generator gen(4), init(1);
  CHECK_THROWS_WITH_AS(transfer::StageDistillation(transfer::FeatureLoss::hint, {2, 4}, {4, 8, 16}, init),
                       doctest::Contains("the student has 2 stages and the teacher 3"), Error);
  CHECK_THROWS_WITH_AS(transfer::parse_feature_loss("fitnet", "distill.features"),
                       doctest::Contains("distill.features: 'fitnet' is not one of none, hint, attention"), Error);
  const Skips s = make_skips(gen);
  transfer::StageDistillation skips(transfer::FeatureLoss::attention, {2, 4, 8}, {4, 8, 16}, init);
  CHECK_THROWS_WITH_AS(skips.loss({s.student[0]}, s.teacher), doctest::Contains("1 student feature maps and 3 teacher maps"), Error);
}
