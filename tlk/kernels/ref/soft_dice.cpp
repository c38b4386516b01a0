#include "tlk/kernels/ref/soft_dice.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tlk/kernels/ref/common.h"
#include "tlk/kernels/ref/loss_common.h"

namespace tlk::kernels::ref {

using loss_detail::blocked_sum;
using loss_detail::grad_scalar;
using loss_detail::position_base;
using loss_detail::positions;

// Note [nnUNet soft Dice]: as nnUNet's SoftDiceLoss (v1 dice_loss.py, v2 loss/dice.py), with
// p = softmax(logits) over channels and y the one-hot target, per class c and per sample (or per
// batch when batch_dice: the sums then run over N as well):
//   tp = Σ p·y,  fp = Σ p·(1 − y),  fn = Σ (1 − p)·y,
//   dc = (2tp + smooth) / max(2tp + fp + fn + smooth, 1e-8),
// channel 0 is dropped unless do_background, and the loss is −mean(dc): nnUNet returns the
// *negative* Dice (in [−1, 0]), not 1 − Dice, so "CE + Dice" adds a term that falls to −1 at best.
// Since d(2tp + fp + fn)/dp = 1, the Dice gradient w.r.t. p is 2y/D − A/D² (A, D the numerator and
// denominator; the second term vanishes where the 1e-8 clamp is active), then the softmax backward.

namespace {

constexpr double kMinDenominator = 1e-8;

struct DiceArgs {
  Tensor logits, labels, onehot;  // exactly one of labels (i64) and onehot (logits' dtype) is defined
  ChannelView layout;
};

DiceArgs dice_args(const Tensor& logits, const Tensor& target, const SoftDiceOptions& opt) {
  const char* op = "soft_dice_loss";
  DiceArgs a;
  a.logits = cpu_contiguous(logits, op, "logits");
  loss_detail::check_logits(a.logits, op, "logits");
  a.layout = ChannelView::of(a.logits.shape());
  check(opt.do_background || a.layout.channels >= 2,
        "{}: logits {} have {} channel; with do_background=false at least 2 are needed (channel 0 is the background)",
        op, a.logits.shape().str(), a.layout.channels);
  check(std::isfinite(opt.smooth) && opt.smooth >= 0.0, "{}: smooth must be a finite value >= 0, got {}", op,
        opt.smooth);
  Tensor t = cpu_input(target, op, "target");
  if (is_floating(t.dtype())) {
    check(t.shape() == a.logits.shape(),
          "{}: floating target has shape {}, expected a one-hot target of the logits' shape {} (or pass integer "
          "labels of shape {})",
          op, t.shape().str(), a.logits.shape().str(), loss_detail::label_shape(a.logits.shape()).str());
    check_same_dtype(op, {&a.logits, &t});
    a.onehot = t.contiguous();
  } else {
    a.labels = loss_detail::labels_as_i64(t, op, "target labels");
    check(loss_detail::is_label_shape(t.shape(), a.logits.shape()),
          "{}: target labels have shape {}, expected {} (or a one-hot target {}) for logits {}", op, t.shape().str(),
          loss_detail::label_shape(a.logits.shape()).str(), a.logits.shape().str(), a.logits.shape().str());
    loss_detail::check_label_range(a.labels, a.layout.channels, op, false, 0);
  }
  return a;
}

// Softmax (or identity) of the C channels at `base` into p[0..C).
template <class T>
void probabilities(const T* x, std::int64_t base, const ChannelView& L, bool apply_softmax, double* p) {
  if (!apply_softmax) {
    for (std::int64_t c = 0; c < L.channels; ++c) p[c] = static_cast<double>(x[base + c * L.inner]);
    return;
  }
  const double lse = loss_detail::log_sum_exp(x + base, L.inner, L.channels, 1.0);
  for (std::int64_t c = 0; c < L.channels; ++c) p[c] = std::exp(static_cast<double>(x[base + c * L.inner]) - lse);
}

// The target's pointers: one-hot values or labels (the other is null).
template <class T>
struct TargetView {
  const T* onehot = nullptr;
  const std::int64_t* labels = nullptr;
  std::int64_t s = 1;
  explicit TargetView(const DiceArgs& a) : s(a.layout.inner) {
    if (a.onehot.defined())
      onehot = a.onehot.data<T>();
    else
      labels = a.labels.data<std::int64_t>();
  }
  /// y at channel c of position pos (whose channel 0 lies at base).
  double at(std::int64_t pos, std::int64_t base, std::int64_t c) const {
    return onehot ? static_cast<double>(onehot[base + c * s]) : (labels[pos] == c ? 1.0 : 0.0);
  }
};

// Per group (sample, or the whole batch) and class: {numerator A, denominator D, D clamped?}.
struct DiceTerms {
  std::int64_t groups = 0;
  std::vector<double> num, den;
  std::vector<bool> clamped;
};

template <class T>
DiceTerms dice_terms(const DiceArgs& a, const SoftDiceOptions& opt) {
  const ChannelView& L = a.layout;
  const T* x = a.logits.data<T>();
  const TargetView<T> y_at(a);
  const std::size_t C = static_cast<std::size_t>(L.channels);
  DiceTerms d;
  d.groups = opt.batch_dice ? 1 : L.outer;
  std::vector<double> stats(static_cast<std::size_t>(d.groups) * C * 3, 0.0);  // tp, fp, fn per group and class
  for (std::int64_t n = 0; n < L.outer; ++n) {
    const auto sums = blocked_sum(L.inner, 3 * C, [&](std::int64_t begin, std::int64_t end, double* acc) {
      std::vector<double> p(C);
      for (std::int64_t s = begin; s < end; ++s) {
        const std::int64_t pos = n * L.inner + s, base = L.index(n, 0, s);
        probabilities(x, base, L, opt.apply_softmax, p.data());
        for (std::size_t c = 0; c < C; ++c) {
          const double y = y_at.at(pos, base, static_cast<std::int64_t>(c));
          acc[3 * c] += p[c] * y;
          acc[3 * c + 1] += p[c] * (1.0 - y);
          acc[3 * c + 2] += (1.0 - p[c]) * y;
        }
      }
    });
    double* group = stats.data() + static_cast<std::size_t>(opt.batch_dice ? 0 : n) * C * 3;
    for (std::size_t k = 0; k < 3 * C; ++k) group[k] += sums[k];
  }
  d.num.resize(stats.size() / 3);
  d.den.resize(stats.size() / 3);
  d.clamped.resize(stats.size() / 3);
  for (std::size_t i = 0; i < d.num.size(); ++i) {
    const double tp = stats[3 * i], fp = stats[3 * i + 1], fn = stats[3 * i + 2];
    const double den = 2.0 * tp + fp + fn + opt.smooth;
    d.num[i] = 2.0 * tp + opt.smooth;
    d.clamped[i] = !(den >= kMinDenominator);
    d.den[i] = std::max(den, kMinDenominator);
  }
  return d;
}

}  // namespace

Tensor soft_dice_forward(const Tensor& logits, const Tensor& target, const SoftDiceOptions& opt) {
  const DiceArgs a = dice_args(logits, target, opt);
  double loss = 0.0;
  visit_floating(a.logits.dtype(), "soft_dice_loss", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const DiceTerms d = dice_terms<T>(a, opt);
    const std::int64_t C = a.layout.channels, first = opt.do_background ? 0 : 1;
    double sum = 0.0;
    for (std::int64_t g = 0; g < d.groups; ++g)
      for (std::int64_t c = first; c < C; ++c) {
        const std::size_t i = static_cast<std::size_t>(g * C + c);
        sum += d.num[i] / d.den[i];
      }
    loss = -sum / static_cast<double>(d.groups * (C - first));
  });
  return Tensor::scalar(loss, TensorOptions{a.logits.dtype()});
}

Tensor soft_dice_backward(const Tensor& grad_output, const Tensor& logits, const Tensor& target,
                          const SoftDiceOptions& opt) {
  check_same_dtype("soft_dice_loss backward", {&logits, &grad_output});  // the target: dice_args
  const double g = grad_scalar(grad_output, "soft_dice_loss");
  const DiceArgs a = dice_args(logits, target, opt);
  const ChannelView& L = a.layout;
  Tensor out = empty_like(a.logits);
  visit_floating(a.logits.dtype(), "soft_dice_loss backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const DiceTerms d = dice_terms<T>(a, opt);
    const std::int64_t C = L.channels, first = opt.do_background ? 0 : 1;
    // dL/dp = coef_y·y + coef_1 per group and class (zero for an excluded background).
    const double scale = -g / static_cast<double>(d.groups * (C - first));
    std::vector<double> coef_y(d.num.size(), 0.0), coef_1(d.num.size(), 0.0);
    for (std::int64_t gr = 0; gr < d.groups; ++gr)
      for (std::int64_t c = first; c < C; ++c) {
        const std::size_t i = static_cast<std::size_t>(gr * C + c);
        coef_y[i] = scale * 2.0 / d.den[i];
        coef_1[i] = d.clamped[i] ? 0.0 : -scale * d.num[i] / (d.den[i] * d.den[i]);
      }
    const T* x = a.logits.data<T>();
    const TargetView<T> y_at(a);
    T* o = out.data<T>();
#pragma omp parallel if (positions(L) * C > 32768)
    {
      std::vector<double> p(static_cast<std::size_t>(C)), gp(static_cast<std::size_t>(C));
#pragma omp for
      for (std::int64_t pos = 0; pos < positions(L); ++pos) {
        const std::int64_t base = position_base(L, pos);
        const std::size_t group = static_cast<std::size_t>((opt.batch_dice ? 0 : pos / L.inner) * C);
        probabilities(x, base, L, opt.apply_softmax, p.data());
        double dot = 0.0;
        for (std::int64_t c = 0; c < C; ++c) {
          const std::size_t k = static_cast<std::size_t>(c);
          gp[k] = coef_y[group + k] * y_at.at(pos, base, c) + coef_1[group + k];
          dot += p[k] * gp[k];
        }
        // Softmax backward: dx_c = p_c·(dL/dp_c − Σ_k p_k·dL/dp_k).
        for (std::int64_t c = 0; c < C; ++c) {
          const std::size_t k = static_cast<std::size_t>(c);
          o[base + c * L.inner] = static_cast<T>(opt.apply_softmax ? p[k] * (gp[k] - dot) : gp[k]);
        }
      }
    }
  });
  return out;
}

}  // namespace tlk::kernels::ref
