#include "tlk/transfer/feature_distillation.h"

#include <algorithm>
#include <utility>

#include "tlk/autograd/grad_mode.h"
#include "tlk/autograd/ops/activation.h"
#include "tlk/autograd/ops/arith.h"
#include "tlk/autograd/ops/losses.h"
#include "tlk/autograd/ops/pool3d.h"
#include "tlk/autograd/ops/reduce.h"
#include "tlk/nn/norm.h"
#include "tlk/tensor/error.h"

namespace tlk::transfer {

namespace {

std::string spatial_str(const Tensor& t) {
  Shape s;
  for (int i = 2; i < t.dim(); ++i) s.push_back(t.size(i));
  return s.str();
}

bool same_spatial(const Tensor& a, const Tensor& b) {
  if (a.dim() != b.dim()) return false;
  for (int i = 2; i < a.dim(); ++i)
    if (a.size(i) != b.size(i)) return false;
  return true;
}

/// Checks the two features against each other (rank, batch, spatial size) and, for
/// SpatialMatch::pool_to_smaller, pools them to the per-axis smaller size. The teacher comes back detached.
std::pair<Tensor, Tensor> align(const Tensor& student, const Tensor& teacher, SpatialMatch match, int min_dim,
                                const char* op) {
  check(student.defined() && teacher.defined(), "{}: a feature is undefined", op);
  check(student.dim() >= min_dim && student.dim() <= 5 && teacher.dim() == student.dim(),
        "{}: expected student and teacher features of shape [N, C, ...spatial] with {} to 5 dimensions and the same "
        "rank, got student {} and teacher {}",
        op, min_dim, student.shape().str(), teacher.shape().str());
  check(student.size(0) == teacher.size(0), "{}: batch sizes differ: student {} vs teacher {}", op,
        student.shape().str(), teacher.shape().str());
  check(student.dtype() == teacher.dtype(), "{}: dtypes differ: student {} vs teacher {}", op,
        dtype_name(student.dtype()), dtype_name(teacher.dtype()));
  Tensor s = student, t = teacher.detach();
  if (same_spatial(s, t)) return {s, t};
  check(match == SpatialMatch::pool_to_smaller,
        "{}: spatial sizes differ: student {} vs teacher {} (pool one of them first, or pass "
        "SpatialMatch::pool_to_smaller)",
        op, spatial_str(s), spatial_str(t));
  check(s.dim() == 5, "{}: SpatialMatch::pool_to_smaller needs 5-D features [N, C, D, H, W], got {}", op,
        s.shape().str());
  Int3 target{};
  for (int i = 0; i < 3; ++i) target[i] = std::min(s.size(i + 2), t.size(i + 2));
  const auto pooled = [&](const Tensor& x) {
    const bool same = x.size(2) == target[0] && x.size(3) == target[1] && x.size(4) == target[2];
    return same ? x : ops::adaptive_avg_pool3d(x, target);
  };
  return {pooled(s), pooled(t)};
}

}  // namespace

HintRegressor::HintRegressor(std::int64_t student_channels, std::int64_t teacher_channels, Generator& gen,
                             const HintRegressorOptions& options)
    : relu(options.relu), student_channels(student_channels), teacher_channels(teacher_channels) {
  check(student_channels >= 1 && teacher_channels >= 1, "HintRegressor: channel counts must be >= 1, got {} -> {}",
        student_channels, teacher_channels);
  nn::ConvOptions conv_options =
      nn::ConvOptions{}.with_kernel({1, 1, 1}).with_padding({0, 0, 0}).with_bias(options.bias);
  // Note [Hint regressor initialisation].
  conv_options.init_negative_slope = options.relu ? 0.01 : 1.0;
  conv = register_module("conv", std::make_shared<nn::Conv3d>(student_channels, teacher_channels, conv_options, gen));
  switch (options.norm) {
    case HintNorm::none:
      break;
    case HintNorm::instance:
      norm = register_module("norm", std::make_shared<nn::InstanceNorm3d>(teacher_channels));
      break;
    case HintNorm::batch:
      norm = register_module("norm", std::make_shared<nn::BatchNorm3d>(teacher_channels));
      break;
  }
}

Tensor HintRegressor::forward(const Tensor& student_feature) {
  check(student_feature.dim() == 5 && student_feature.size(1) == student_channels,
        "HintRegressor: expected a student feature [N, {}, D, H, W], got {}", student_channels,
        student_feature.shape().str());
  Tensor y = (*conv)(student_feature);
  if (norm) y = (*norm)(y);
  if (relu) y = ops::relu(y);
  return y;
}

Tensor hint_loss(const Tensor& student_feature, const Tensor& teacher_feature, HintRegressor& regressor,
                 const HintOptions& options) {
  const char* op = "hint_loss";
  check(
      teacher_feature.defined() && teacher_feature.dim() == 5 && teacher_feature.size(1) == regressor.teacher_channels,
      "{}: expected a teacher feature [N, {}, D, H, W] (the regressor's output channels), got {}", op,
      regressor.teacher_channels, teacher_feature.defined() ? teacher_feature.shape().str() : "(undefined)");
  // Align before the regressor: a 1x1x1 convolution commutes with average pooling, and pooling first
  // is cheaper.
  auto [s, t] = align(student_feature, teacher_feature, options.spatial, 5, op);
  return ops::mse_loss(regressor(s), t);
}

Tensor hint_loss(const Tensor& student_feature, const Tensor& teacher_feature, const HintOptions& options) {
  const char* op = "hint_loss";
  auto [s, t] = align(student_feature, teacher_feature, options.spatial, 3, op);
  check(s.size(1) == t.size(1),
        "{}: student feature {} and teacher feature {} differ in channels; map the student through a "
        "HintRegressor",
        op, student_feature.shape().str(), teacher_feature.shape().str());
  return ops::mse_loss(s, t);
}

Tensor attention_map(const Tensor& feature, int p) {
  check(feature.defined() && feature.dim() >= 3,
        "attention_map: expected a feature of shape [N, C, ...spatial] (at least 3-D), got {}",
        feature.defined() ? feature.shape().str() : "(undefined)");
  check(p >= 1 && p <= 8, "attention_map: the exponent p must be an integer in [1, 8], got {}", p);
  // |A|^p: even powers need no abs (and stay smooth at 0).
  Tensor base = p % 2 == 0 ? feature : ops::abs(feature);
  Tensor powered = p % 2 == 0 ? ops::square(feature) : base;
  for (int k = p % 2 == 0 ? 2 : 1; k < p; k += p % 2 == 0 ? 2 : 1)
    powered = p % 2 == 0 ? powered * ops::square(feature) : powered * base;
  Tensor q = ops::mean(powered, {1}).reshape({feature.size(0), -1});
  Tensor norm = ops::sqrt(ops::sum(ops::square(q), {1}, true) + 1e-24);
  return q / norm;
}

Tensor attention_transfer_loss(const Tensor& student_feature, const Tensor& teacher_feature,
                               const AttentionOptions& options) {
  auto [s, t] = align(student_feature, teacher_feature, options.spatial, 3, "attention_transfer_loss");
  Tensor qt;
  {
    NoGradGuard guard;  // the teacher's map is a constant
    qt = attention_map(t, options.p);
  }
  return ops::mean(ops::square(attention_map(s, options.p) - qt));
}

}  // namespace tlk::transfer
