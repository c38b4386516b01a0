// Soft Dice on CUDA tensors (declared in losses.h; kernels in soft_dice_launch.cu).
#include <cmath>

#include "tlk/kernels/cuda/launch.h"
#include "tlk/kernels/cuda/loss_args.h"
#include "tlk/kernels/cuda/losses.h"
#include "tlk/kernels/cuda/losses_launch.h"
#include "tlk/kernels/cuda/softmax_launch.h"
#include "tlk/kernels/ref/loss_common.h"

namespace tlk::kernels::cuda {

using loss_detail::ptr;
using loss_detail::scratch;

namespace {

struct DiceArgs {
  Tensor logits, labels, onehot;  // exactly one of labels (integer) and onehot (logits' dtype) is defined
  launch::DiceSpec spec;
};

DiceArgs dice_args(const Tensor& logits, const Tensor& target, const SoftDiceOptions& opt) {
  const char* op = "soft_dice_loss";
  require_cuda_float(logits, op, "logits");
  DiceArgs a;
  a.logits = contiguous(logits);
  ref::loss_detail::check_logits(a.logits, op, "logits");
  a.spec.layout = loss_detail::layout_of(a.logits.shape());
  a.spec.batch_dice = opt.batch_dice;
  a.spec.do_background = opt.do_background;
  a.spec.apply_softmax = opt.apply_softmax;
  a.spec.smooth = opt.smooth;
  check(opt.do_background || a.spec.layout.channels >= 2,
        "{}: logits {} have {} channel; with do_background=false at least 2 are needed (channel 0 is the background)",
        op, a.logits.shape().str(), a.spec.layout.channels);
  check(std::isfinite(opt.smooth) && opt.smooth >= 0.0, "{}: smooth must be a finite value >= 0, got {}", op,
        opt.smooth);
  check(target.defined(), "{}: target is undefined", op);
  if (is_floating(target.dtype())) {
    check(target.shape() == a.logits.shape(),
          "{}: floating target has shape {}, expected a one-hot target of the logits' shape {} (or pass integer "
          "labels of shape {})",
          op, target.shape().str(), a.logits.shape().str(), ref::loss_detail::label_shape(a.logits.shape()).str());
    require_same(target, a.logits, op, "target");
    a.onehot = contiguous(target);
  } else {
    a.labels = loss_detail::labels(target, a.logits, op, "target labels");
    check(ref::loss_detail::is_label_shape(target.shape(), a.logits.shape()),
          "{}: target labels have shape {}, expected {} (or a one-hot target {}) for logits {}", op,
          target.shape().str(), ref::loss_detail::label_shape(a.logits.shape()).str(), a.logits.shape().str(),
          a.logits.shape().str());
  }
  return a;
}

// Calls fn(TypeTag<T>, TypeTag<L>) for the logits' dtype and the labels' (std::int64_t with a one-hot
// target, whose label pointer is null).
template <class Fn>
void visit_dice(const DiceArgs& a, const char* op, Fn&& fn) {
  visit_floating(a.logits.dtype(), op, [&](auto tag) {
    if (a.labels.defined())
      loss_detail::visit_labels(a.labels.dtype(), op, [&](auto label_tag) { fn(tag, label_tag); });
    else
      fn(tag, TypeTag<std::int64_t>{});
  });
}

// The per-(n, c) sums {Σ p·y, Σ p, Σ y} (3 * N * C doubles; Note [GPU soft Dice]); checks the labels.
Tensor dice_row_sums(const DiceArgs& a, const char* op) {
  const launch::LossLayout& l = a.spec.layout;
  Tensor row_sums = scratch(a.logits, 3 * l.outer * l.channels);
  Tensor partial = scratch(a.logits, launch::soft_dice_scratch(l));
  Tensor probs = a.spec.apply_softmax ? empty_like_shape(a.logits, a.logits.shape()) : a.logits;
  const loss_detail::BadLabelFlag bad(a.logits);
  visit_dice(a, op, [&](auto tag, auto label_tag) {
    using T = typename decltype(tag)::type;
    using L = typename decltype(label_tag)::type;
    if (a.spec.apply_softmax)
      check_status(launch::softmax_forward<T>(ptr<const T>(a.logits), ptr<T>(probs), l.outer, l.channels, l.inner,
                                              false, stream()),
                   op, "softmax kernel launch");
    check_status(launch::soft_dice_sums<T, L>(ptr<const T>(probs), ptr<const L>(a.labels), ptr<const T>(a.onehot), l,
                                              ptr<double>(row_sums), bad.get(), ptr<double>(partial), stream()),
                 op, "kernel launch");
  });
  if (a.labels.defined()) bad.check(a.labels, l.channels, "soft_dice_loss", false, 0);
  return row_sums;
}

}  // namespace

Tensor soft_dice_forward(const Tensor& logits, const Tensor& target, const SoftDiceOptions& opt) {
  const char* op = "soft_dice_loss";
  const DiceArgs a = dice_args(logits, target, opt);
  const Tensor row_sums = dice_row_sums(a, op);
  Tensor loss = empty_like_shape(a.logits, Shape{});
  visit_floating(a.logits.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    check_status(
        launch::soft_dice_finish<T>(ptr<const double>(row_sums), a.spec, nullptr, ptr<T>(loss), nullptr, stream()), op,
        "kernel launch");
  });
  return loss;
}

Tensor soft_dice_backward(const Tensor& grad_output, const Tensor& logits, const Tensor& target,
                          const SoftDiceOptions& opt) {
  const char* op = "soft_dice_loss backward";
  require_cuda_float(logits, op, "logits");
  const Tensor g = loss_detail::grad_scalar(grad_output, logits, "soft_dice_loss");
  const DiceArgs a = dice_args(logits, target, opt);
  const Tensor row_sums = dice_row_sums(a, op);
  Tensor coef = scratch(a.logits, 2 * a.spec.groups() * a.spec.layout.channels);
  Tensor out = empty_like_shape(a.logits, a.logits.shape());
  visit_dice(a, op, [&](auto tag, auto label_tag) {
    using T = typename decltype(tag)::type;
    using L = typename decltype(label_tag)::type;
    check_status(launch::soft_dice_finish<T>(ptr<const double>(row_sums), a.spec, ptr<const T>(g), nullptr,
                                             ptr<double>(coef), stream()),
                 op, "kernel launch");
    check_status(
        launch::soft_dice_backward<T, L>(ptr<const T>(a.logits), ptr<const L>(a.labels), ptr<const T>(a.onehot), a.spec,
                                         ptr<const double>(coef), ptr<T>(out), stream()),
        op, "kernel launch");
  });
  return out;
}

}  // namespace tlk::kernels::cuda
