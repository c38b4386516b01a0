#include "tlk/kernels/ref/losses.h"

#include <cmath>
#include <limits>

#include "tlk/kernels/ref/common.h"
#include "tlk/kernels/ref/loss_common.h"

namespace tlk::kernels::ref {

using loss_detail::blocked_sum;
using loss_detail::grad_scalar;
using loss_detail::log_sum_exp;
using loss_detail::position_base;
using loss_detail::positions;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---- cross entropy ------------------------------------------------------------------------------

struct CrossEntropyArgs {
  Tensor logits, target, weight;
  ChannelView layout;
};

CrossEntropyArgs cross_entropy_args(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& opt) {
  const char* op = "cross_entropy";
  CrossEntropyArgs a;
  a.logits = cpu_contiguous(logits, op, "logits");
  loss_detail::check_logits(a.logits, op, "logits");
  Tensor t = cpu_input(target, op, "target");
  a.target = loss_detail::labels_as_i64(t, op, "target");
  check(loss_detail::is_label_shape(t.shape(), a.logits.shape()),
        "cross_entropy: target has shape {}, expected {} (one class index per element of logits {})", t.shape().str(),
        loss_detail::label_shape(a.logits.shape()).str(), a.logits.shape().str());
  a.layout = ChannelView::of(a.logits.shape());
  if (opt.weight.defined()) {
    a.weight = cpu_contiguous(opt.weight, op, "weight");
    check(a.weight.dim() == 1 && a.weight.size(0) == a.layout.channels,
          "cross_entropy: weight has shape {}, expected [{}] (one per class of logits {})", a.weight.shape().str(),
          a.layout.channels, a.logits.shape().str());
    check_same_dtype(op, {&a.logits, &a.weight});
  }
  loss_detail::check_label_range(a.target, a.layout.channels, op, true, opt.ignore_index);
  return a;
}

}  // namespace

Tensor cross_entropy_forward(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& opt) {
  const CrossEntropyArgs a = cross_entropy_args(logits, target, opt);
  const ChannelView L = a.layout;
  double loss = 0.0;
  visit_floating(a.logits.dtype(), "cross_entropy", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = a.logits.data<T>();
    const T* w = a.weight.defined() ? a.weight.data<T>() : nullptr;
    const std::int64_t* t = a.target.data<std::int64_t>();
    const auto sums = blocked_sum(positions(L), 2, [&](std::int64_t begin, std::int64_t end, double* acc) {
      for (std::int64_t p = begin; p < end; ++p) {
        const std::int64_t cls = t[p];
        if (cls == opt.ignore_index) continue;
        const T* xp = x + position_base(L, p);
        const double wt = w ? static_cast<double>(w[cls]) : 1.0;
        acc[0] += wt * (log_sum_exp(xp, L.inner, L.channels, 1.0) - static_cast<double>(xp[cls * L.inner]));
        acc[1] += wt;
      }
    });
    // Note [All targets ignored]: the mean's denominator Σ w[t] is then 0 and the loss is NaN, as in
    // PyTorch; the gradient is zero (every element is ignored), so one such batch does not poison the weights.
    loss = sums[1] == 0.0 ? kNaN : sums[0] / sums[1];
  });
  return Tensor::scalar(loss, TensorOptions{a.logits.dtype()});
}

Tensor cross_entropy_backward(const Tensor& grad_output, const Tensor& logits, const Tensor& target,
                              const CrossEntropyOptions& opt) {
  check_same_dtype("cross_entropy backward", {&logits, &grad_output});  // target and weight: cross_entropy_args
  const double g = grad_scalar(grad_output, "cross_entropy");
  const CrossEntropyArgs a = cross_entropy_args(logits, target, opt);
  const ChannelView L = a.layout;
  Tensor out = empty_like(a.logits);
  visit_floating(a.logits.dtype(), "cross_entropy backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = a.logits.data<T>();
    const T* w = a.weight.defined() ? a.weight.data<T>() : nullptr;
    const std::int64_t* t = a.target.data<std::int64_t>();
    T* o = out.data<T>();
    const double total = blocked_sum(positions(L), 1, [&](std::int64_t begin, std::int64_t end, double* acc) {
      for (std::int64_t p = begin; p < end; ++p)
        if (t[p] != opt.ignore_index) acc[0] += w ? static_cast<double>(w[t[p]]) : 1.0;
    })[0];
    const double scale = g / total;
#pragma omp parallel for if (positions(L) * L.channels > 32768)
    for (std::int64_t p = 0; p < positions(L); ++p) {
      const std::int64_t cls = t[p], base = position_base(L, p);
      if (cls == opt.ignore_index) {
        for (std::int64_t c = 0; c < L.channels; ++c) o[base + c * L.inner] = T(0);
        continue;
      }
      const double f = scale * (w ? static_cast<double>(w[cls]) : 1.0);
      const double lse = log_sum_exp(x + base, L.inner, L.channels, 1.0);
      for (std::int64_t c = 0; c < L.channels; ++c) {
        const double sm = std::exp(static_cast<double>(x[base + c * L.inner]) - lse);
        o[base + c * L.inner] = static_cast<T>(f * (sm - (c == cls ? 1.0 : 0.0)));
      }
    }
  });
  return out;
}

// ---- binary cross entropy on logits ---------------------------------------------------------------

namespace {

struct BceArgs {
  Tensor logits, target, pos_weight;
  std::int64_t channels = 1, inner = 1;  // pos_weight index of element i: (i / inner) % channels
};

// Note [pos_weight axis]: PyTorch broadcasts pos_weight against the *last* dimension, which suits
// [N, C] but not [N, C, D, H, W]. TLK applies a per-class pos_weight [C] along dimension 1 (the
// channel axis of every TLK layout), so both shapes mean "one weight per class"; a one-element
// pos_weight applies everywhere. For 2-D [N, C] input the two conventions coincide.
BceArgs bce_args(const Tensor& logits, const Tensor& target, const BceOptions& opt) {
  const char* op = "bce_with_logits";
  BceArgs a;
  a.logits = cpu_contiguous(logits, op, "logits");
  a.target = cpu_contiguous(target, op, "target");
  check(a.logits.dtype() == DType::f32 || a.logits.dtype() == DType::f64, "{}: logits must be f32 or f64, got {}", op,
        dtype_name(a.logits.dtype()));
  check(is_floating(a.target.dtype()), "{}: target must hold floating probabilities in [0, 1], got {} with shape {}",
        op, dtype_name(a.target.dtype()), a.target.shape().str());
  check_same_dtype(op, {&a.logits, &a.target});
  check(a.logits.shape() == a.target.shape(), "{}: target has shape {}, expected the logits' shape {}", op,
        a.target.shape().str(), a.logits.shape().str());
  if (opt.pos_weight.defined()) {
    a.pos_weight = cpu_contiguous(opt.pos_weight, op, "pos_weight");
    check_same_dtype(op, {&a.logits, &a.pos_weight});
    if (a.pos_weight.numel() != 1) {
      check(a.pos_weight.dim() == 1 && a.logits.dim() >= 2 && a.pos_weight.size(0) == a.logits.size(1),
            "{}: pos_weight has shape {}, expected one element or [C] with C = dimension 1 of logits {}", op,
            a.pos_weight.shape().str(), a.logits.shape().str());
      const ChannelView v = ChannelView::of(a.logits.shape());
      a.channels = v.channels;
      a.inner = v.inner;
    }
  }
  return a;
}

// log(1 + exp(-x)), stable for any x.
double softplus_neg(double x) { return std::log1p(std::exp(-std::abs(x))) + std::max(-x, 0.0); }

}  // namespace

Tensor bce_with_logits_forward(const Tensor& logits, const Tensor& target, const BceOptions& opt) {
  const BceArgs a = bce_args(logits, target, opt);
  double loss = 0.0;
  visit_floating(a.logits.dtype(), "bce_with_logits", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *x = a.logits.data<T>(), *y = a.target.data<T>();
    const T* pw = a.pos_weight.defined() ? a.pos_weight.data<T>() : nullptr;
    const std::int64_t n = a.logits.numel();
    const auto sum = blocked_sum(n, 1, [&](std::int64_t begin, std::int64_t end, double* acc) {
      for (std::int64_t i = begin; i < end; ++i) {
        const double xi = x[i], yi = y[i];
        if (!pw) {
          acc[0] += std::max(xi, 0.0) - xi * yi + std::log1p(std::exp(-std::abs(xi)));
        } else {
          const double lw = 1.0 + (static_cast<double>(pw[(i / a.inner) % a.channels]) - 1.0) * yi;
          acc[0] += (1.0 - yi) * xi + lw * softplus_neg(xi);
        }
      }
    });
    loss = n == 0 ? kNaN : sum[0] / static_cast<double>(n);
  });
  return Tensor::scalar(loss, TensorOptions{a.logits.dtype()});
}

std::array<Tensor, 2> bce_with_logits_backward(const Tensor& grad_output, const Tensor& logits, const Tensor& target,
                                               const BceOptions& opt, bool need_logits, bool need_target) {
  check_same_dtype("bce_with_logits backward", {&logits, &grad_output});  // target and pos_weight: bce_args
  const double g = grad_scalar(grad_output, "bce_with_logits");
  const BceArgs a = bce_args(logits, target, opt);
  std::array<Tensor, 2> out;
  if (need_logits) out[0] = empty_like(a.logits);
  if (need_target) out[1] = empty_like(a.target);
  visit_floating(a.logits.dtype(), "bce_with_logits backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *x = a.logits.data<T>(), *y = a.target.data<T>();
    const T* pw = a.pos_weight.defined() ? a.pos_weight.data<T>() : nullptr;
    T* gx = need_logits ? out[0].data<T>() : nullptr;
    T* gy = need_target ? out[1].data<T>() : nullptr;
    const std::int64_t n = a.logits.numel();
    const double scale = g / static_cast<double>(n);
#pragma omp parallel for if (n > 32768)
    for (std::int64_t i = 0; i < n; ++i) {
      const double xi = x[i], yi = y[i];
      const double p = pw ? static_cast<double>(pw[(i / a.inner) % a.channels]) : 1.0;
      // d/dx = (1 − y) − lw·σ(−x); d/dy = −x + (pos_weight − 1)·log(1 + exp(−x)).
      const double sig_neg = xi >= 0 ? std::exp(-xi) / (1.0 + std::exp(-xi)) : 1.0 / (1.0 + std::exp(xi));
      if (gx) gx[i] = static_cast<T>(scale * ((1.0 - yi) - (1.0 + (p - 1.0) * yi) * sig_neg));
      if (gy) gy[i] = static_cast<T>(scale * (-xi + (p - 1.0) * softplus_neg(xi)));
    }
  });
  return out;
}

// ---- distillation KL --------------------------------------------------------------------------------

namespace {

struct KlArgs {
  Tensor student, teacher;
  ChannelView layout;
};

KlArgs kl_args(const Tensor& student, const Tensor& teacher, double temperature) {
  const char* op = "kl_div_with_temperature";
  KlArgs a;
  a.student = cpu_contiguous(student, op, "student logits");
  a.teacher = cpu_contiguous(teacher, op, "teacher logits");
  loss_detail::check_logits(a.student, op, "student logits");
  check_same_dtype(op, {&a.student, &a.teacher});
  check(a.student.shape() == a.teacher.shape(), "{}: student logits {} and teacher logits {} differ in shape", op,
        a.student.shape().str(), a.teacher.shape().str());
  check(std::isfinite(temperature) && temperature > 0.0, "{}: temperature must be a finite value > 0, got {}", op,
        temperature);
  a.layout = ChannelView::of(a.student.shape());
  return a;
}

}  // namespace

Tensor kl_div_with_temperature_forward(const Tensor& student, const Tensor& teacher, double temperature,
                                       const Tensor& weights) {
  const char* op = "kl_div_with_temperature";
  const KlArgs a = kl_args(student, teacher, temperature);
  const ChannelView L = a.layout;
  const std::vector<double> w =
      weights.defined() ? loss_detail::position_weights(weights, a.student.shape(), op) : std::vector<double>{};
  const double inv_t = 1.0 / temperature;
  double loss = 0.0;
  visit_floating(a.student.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *s = a.student.data<T>(), *t = a.teacher.data<T>();
    const auto sum = blocked_sum(positions(L), 2, [&](std::int64_t begin, std::int64_t end, double* acc) {
      for (std::int64_t p = begin; p < end; ++p) {
        const double wp = w.empty() ? 1.0 : w[static_cast<std::size_t>(p)];
        if (wp == 0.0) continue;
        const std::int64_t base = position_base(L, p);
        const double lse_s = log_sum_exp(s + base, L.inner, L.channels, inv_t);
        const double lse_t = log_sum_exp(t + base, L.inner, L.channels, inv_t);
        double kl = 0.0;
        for (std::int64_t c = 0; c < L.channels; ++c) {
          const double log_q = inv_t * static_cast<double>(t[base + c * L.inner]) - lse_t;
          const double log_p = inv_t * static_cast<double>(s[base + c * L.inner]) - lse_s;
          const double q = std::exp(log_q);
          if (q > 0.0) kl += q * (log_q - log_p);  // 0·log 0 = 0
        }
        acc[0] += wp * kl;
        acc[1] += wp;
      }
    });
    const double t2 = temperature * temperature;
    if (w.empty())
      loss = positions(L) == 0 ? kNaN : t2 * sum[0] / static_cast<double>(positions(L));
    else
      loss = sum[1] > 0.0 ? t2 * sum[0] / sum[1] : 0.0;
  });
  return Tensor::scalar(loss, TensorOptions{a.student.dtype()});
}

Tensor kl_div_with_temperature_backward(const Tensor& grad_output, const Tensor& student, const Tensor& teacher,
                                        double temperature, const Tensor& weights) {
  const char* op = "kl_div_with_temperature backward";
  check_same_dtype(op, {&student, &teacher, &grad_output});
  const double g = grad_scalar(grad_output, "kl_div_with_temperature");
  const KlArgs a = kl_args(student, teacher, temperature);
  const ChannelView L = a.layout;
  const std::vector<double> w =
      weights.defined() ? loss_detail::position_weights(weights, a.student.shape(), op) : std::vector<double>{};
  double total = static_cast<double>(positions(L));
  if (!w.empty()) {
    total = 0.0;
    for (double v : w) total += v;
  }
  Tensor out = zeros_like(a.student);
  if (total <= 0.0) return out;
  const double inv_t = 1.0 / temperature, scale = g * temperature / total;
  visit_floating(a.student.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *s = a.student.data<T>(), *t = a.teacher.data<T>();
    T* o = out.data<T>();
#pragma omp parallel for if (positions(L) * L.channels > 32768)
    for (std::int64_t p = 0; p < positions(L); ++p) {
      const double wp = w.empty() ? 1.0 : w[static_cast<std::size_t>(p)];
      if (wp == 0.0) continue;
      const std::int64_t base = position_base(L, p);
      const double lse_s = log_sum_exp(s + base, L.inner, L.channels, inv_t);
      const double lse_t = log_sum_exp(t + base, L.inner, L.channels, inv_t);
      for (std::int64_t c = 0; c < L.channels; ++c) {
        const std::int64_t i = base + c * L.inner;
        const double pc = std::exp(inv_t * static_cast<double>(s[i]) - lse_s);
        const double qc = std::exp(inv_t * static_cast<double>(t[i]) - lse_t);
        o[i] = static_cast<T>(scale * wp * (pc - qc));
      }
    }
  });
  return out;
}

// ---- mean squared error -------------------------------------------------------------------------------

namespace {

std::array<Tensor, 2> mse_args(const Tensor& a_in, const Tensor& b_in) {
  const char* op = "mse_loss";
  Tensor a = cpu_contiguous(a_in, op, "first input"), b = cpu_contiguous(b_in, op, "second input");
  check(a.dtype() == DType::f32 || a.dtype() == DType::f64, "{}: inputs must be f32 or f64, got {}", op,
        dtype_name(a.dtype()));
  check_same_dtype(op, {&a, &b});
  check(a.shape() == b.shape(), "{}: inputs differ in shape ({} and {}); broadcasting is not supported", op,
        a.shape().str(), b.shape().str());
  return {a, b};
}

}  // namespace

Tensor mse_loss_forward(const Tensor& a_in, const Tensor& b_in) {
  const std::array<Tensor, 2> ab = mse_args(a_in, b_in);
  const Tensor &a = ab[0], &b = ab[1];
  double loss = 0.0;
  visit_floating(a.dtype(), "mse_loss", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *pa = a.data<T>(), *pb = b.data<T>();
    const auto sum = blocked_sum(a.numel(), 1, [&](std::int64_t begin, std::int64_t end, double* acc) {
      for (std::int64_t i = begin; i < end; ++i) {
        const double d = static_cast<double>(pa[i]) - static_cast<double>(pb[i]);
        acc[0] += d * d;
      }
    });
    loss = a.numel() == 0 ? kNaN : sum[0] / static_cast<double>(a.numel());
  });
  return Tensor::scalar(loss, TensorOptions{a.dtype()});
}

Tensor mse_loss_backward(const Tensor& grad_output, const Tensor& a_in, const Tensor& b_in) {
  check_same_dtype("mse_loss backward", {&a_in, &b_in, &grad_output});
  const double g = grad_scalar(grad_output, "mse_loss");
  const std::array<Tensor, 2> ab = mse_args(a_in, b_in);
  const Tensor &a = ab[0], &b = ab[1];
  Tensor out = empty_like(a);
  visit_floating(a.dtype(), "mse_loss backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *pa = a.data<T>(), *pb = b.data<T>();
    T* o = out.data<T>();
    const std::int64_t n = a.numel();
    const double scale = 2.0 * g / static_cast<double>(n);
#pragma omp parallel for if (n > 32768)
    for (std::int64_t i = 0; i < n; ++i)
      o[i] = static_cast<T>(scale * (static_cast<double>(pa[i]) - static_cast<double>(pb[i])));
  });
  return out;
}

}  // namespace tlk::kernels::ref
