#include "tlk/kernels/cuda/losses.h"

#include <cmath>

#include "tlk/kernels/cuda/launch.h"
#include "tlk/kernels/cuda/loss_args.h"
#include "tlk/kernels/cuda/losses_launch.h"
#include "tlk/kernels/ref/loss_common.h"

namespace tlk::kernels::cuda {

using loss_detail::ptr;
using loss_detail::scratch;

namespace {

Tensor scalar_like(const Tensor& t) { return empty_like_shape(t, Shape{}); }

// ---- cross entropy ------------------------------------------------------------------------------

struct CrossEntropyArgs {
  Tensor logits, target, weight;
  launch::LossLayout layout;
};

CrossEntropyArgs cross_entropy_args(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& opt) {
  const char* op = "cross_entropy";
  require_cuda_float(logits, op, "logits");
  CrossEntropyArgs a;
  a.logits = contiguous(logits);
  ref::loss_detail::check_logits(a.logits, op, "logits");
  a.target = loss_detail::labels(target, a.logits, op, "target");
  check(ref::loss_detail::is_label_shape(a.target.shape(), a.logits.shape()),
        "cross_entropy: target has shape {}, expected {} (one class index per element of logits {})",
        a.target.shape().str(), ref::loss_detail::label_shape(a.logits.shape()).str(), a.logits.shape().str());
  a.layout = loss_detail::layout_of(a.logits.shape());
  if (opt.weight.defined()) {
    require_same(opt.weight, a.logits, op, "weight");
    a.weight = contiguous(opt.weight);
    check(a.weight.dim() == 1 && a.weight.size(0) == a.layout.channels,
          "cross_entropy: weight has shape {}, expected [{}] (one per class of logits {})", a.weight.shape().str(),
          a.layout.channels, a.logits.shape().str());
  }
  return a;
}

// ---- binary cross entropy on logits ---------------------------------------------------------------

struct BceArgs {
  Tensor logits, target, pos_weight;
  std::int64_t channels = 1, inner = 1;  // pos_weight index of element i: (i / inner) % channels
};

// Note [pos_weight axis] (ref/losses.cpp): a [C] pos_weight applies along dimension 1.
BceArgs bce_args(const Tensor& logits, const Tensor& target, const BceOptions& opt) {
  const char* op = "bce_with_logits";
  require_cuda_float(logits, op, "logits");
  check(target.defined(), "{}: target is undefined", op);
  check(is_floating(target.dtype()), "{}: target must hold floating probabilities in [0, 1], got {} with shape {}", op,
        dtype_name(target.dtype()), target.shape().str());
  require_same(target, logits, op, "target");
  check(logits.shape() == target.shape(), "{}: target has shape {}, expected the logits' shape {}", op,
        target.shape().str(), logits.shape().str());
  BceArgs a;
  a.logits = contiguous(logits);
  a.target = contiguous(target);
  if (opt.pos_weight.defined()) {
    require_same(opt.pos_weight, logits, op, "pos_weight");
    a.pos_weight = contiguous(opt.pos_weight);
    if (a.pos_weight.numel() != 1) {
      check(a.pos_weight.dim() == 1 && a.logits.dim() >= 2 && a.pos_weight.size(0) == a.logits.size(1),
            "{}: pos_weight has shape {}, expected one element or [C] with C = dimension 1 of logits {}", op,
            a.pos_weight.shape().str(), a.logits.shape().str());
      const launch::LossLayout l = loss_detail::layout_of(a.logits.shape());
      a.channels = l.channels;
      a.inner = l.inner;
    }
  }
  return a;
}

// ---- distillation KL and MSE -----------------------------------------------------------------------

std::array<Tensor, 2> kl_args(const Tensor& student, const Tensor& teacher, double temperature) {
  const char* op = "kl_div_with_temperature";
  require_cuda_float(student, op, "student logits");
  ref::loss_detail::check_logits(student, op, "student logits");
  require_same(teacher, student, op, "teacher logits");
  check(student.shape() == teacher.shape(), "{}: student logits {} and teacher logits {} differ in shape", op,
        student.shape().str(), teacher.shape().str());
  check(std::isfinite(temperature) && temperature > 0.0, "{}: temperature must be a finite value > 0, got {}", op,
        temperature);
  return {contiguous(student), contiguous(teacher)};
}

std::array<Tensor, 2> mse_args(const Tensor& a, const Tensor& b) {
  const char* op = "mse_loss";
  require_cuda_float(a, op, "first input");
  require_same(b, a, op, "second input");
  check(a.shape() == b.shape(), "{}: inputs differ in shape ({} and {}); broadcasting is not supported", op,
        a.shape().str(), b.shape().str());
  return {contiguous(a), contiguous(b)};
}

}  // namespace

Tensor cross_entropy_forward(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& opt) {
  const char* op = "cross_entropy";
  const CrossEntropyArgs a = cross_entropy_args(logits, target, opt);
  Tensor loss = scalar_like(a.logits), partial = scratch(a.logits, launch::kLossScratch);
  const loss_detail::BadLabelFlag bad(a.logits);
  visit_floating(a.logits.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    loss_detail::visit_labels(a.target.dtype(), op, [&](auto label_tag) {
      using L = typename decltype(label_tag)::type;
      check_status(launch::cross_entropy_forward<T, L>(ptr<const T>(a.logits), ptr<const L>(a.target),
                                                       ptr<const T>(a.weight), a.layout, opt.ignore_index, ptr<T>(loss),
                                                       bad.get(), ptr<double>(partial), stream()),
                   op, "kernel launch");
    });
  });
  bad.check(a.target, a.layout.channels, op, true, opt.ignore_index);
  return loss;
}

Tensor cross_entropy_backward(const Tensor& grad_output, const Tensor& logits, const Tensor& target,
                              const CrossEntropyOptions& opt) {
  const char* op = "cross_entropy backward";
  require_cuda_float(logits, op, "logits");
  const Tensor g = loss_detail::grad_scalar(grad_output, logits, "cross_entropy");
  const CrossEntropyArgs a = cross_entropy_args(logits, target, opt);
  Tensor out = empty_like_shape(a.logits, a.logits.shape());
  Tensor total = scratch(a.logits, 1), partial = scratch(a.logits, launch::kLossScratch);
  const loss_detail::BadLabelFlag bad(a.logits);
  visit_floating(a.logits.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    loss_detail::visit_labels(a.target.dtype(), op, [&](auto label_tag) {
      using L = typename decltype(label_tag)::type;
      check_status(launch::cross_entropy_weight_total<T, L>(ptr<const L>(a.target), ptr<const T>(a.weight), a.layout,
                                                            opt.ignore_index, ptr<double>(total), bad.get(),
                                                            ptr<double>(partial), stream()),
                   op, "kernel launch");
      bad.check(a.target, a.layout.channels, "cross_entropy", true, opt.ignore_index);
      check_status(launch::cross_entropy_backward<T, L>(ptr<const T>(g), ptr<const T>(a.logits), ptr<const L>(a.target),
                                                        ptr<const T>(a.weight), a.layout, opt.ignore_index,
                                                        ptr<const double>(total), ptr<T>(out), stream()),
                   op, "kernel launch");
    });
  });
  return out;
}

Tensor bce_with_logits_forward(const Tensor& logits, const Tensor& target, const BceOptions& opt) {
  const char* op = "bce_with_logits";
  const BceArgs a = bce_args(logits, target, opt);
  Tensor loss = scalar_like(a.logits), partial = scratch(a.logits, launch::kLossScratch);
  visit_floating(a.logits.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    check_status(launch::bce_with_logits_forward<T>(ptr<const T>(a.logits), ptr<const T>(a.target),
                                                    ptr<const T>(a.pos_weight), a.logits.numel(), a.channels, a.inner,
                                                    ptr<T>(loss), ptr<double>(partial), stream()),
                 op, "kernel launch");
  });
  return loss;
}

std::array<Tensor, 2> bce_with_logits_backward(const Tensor& grad_output, const Tensor& logits, const Tensor& target,
                                               const BceOptions& opt, bool need_logits, bool need_target) {
  const char* op = "bce_with_logits backward";
  require_cuda_float(logits, op, "logits");
  const Tensor g = loss_detail::grad_scalar(grad_output, logits, "bce_with_logits");
  const BceArgs a = bce_args(logits, target, opt);
  std::array<Tensor, 2> out;
  if (need_logits) out[0] = empty_like_shape(a.logits, a.logits.shape());
  if (need_target) out[1] = empty_like_shape(a.target, a.target.shape());
  if (!need_logits && !need_target) return out;
  visit_floating(a.logits.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    check_status(launch::bce_with_logits_backward<T>(ptr<const T>(g), ptr<const T>(a.logits), ptr<const T>(a.target),
                                                     ptr<const T>(a.pos_weight), a.logits.numel(), a.channels, a.inner,
                                                     ptr<T>(out[0]), ptr<T>(out[1]), stream()),
                 op, "kernel launch");
  });
  return out;
}

namespace {

/// The position weights as f64 on the logits' GPU and their sum (the position count without them).
struct KlWeights {
  Tensor on_gpu;
  double total = 0.0;
  const double* data() const { return on_gpu.defined() ? static_cast<const double*>(on_gpu.raw_data()) : nullptr; }
};

KlWeights kl_weights(const Tensor& weights, const Tensor& student, const char* op) {
  KlWeights k;
  const Shape& shape = student.shape();
  if (!weights.defined()) {
    k.total = static_cast<double>(loss_detail::layout_of(shape).positions());
    return k;
  }
  const std::vector<double> w = ref::loss_detail::position_weights(weights, shape, op);
  for (double v : w) k.total += v;
  k.on_gpu = Tensor::from_vector(w, Shape{static_cast<std::int64_t>(w.size())}).to(student.device());
  return k;
}

}  // namespace

Tensor kl_div_with_temperature_forward(const Tensor& student, const Tensor& teacher, double temperature,
                                       const Tensor& weights) {
  const char* op = "kl_div_with_temperature";
  const std::array<Tensor, 2> st = kl_args(student, teacher, temperature);
  const KlWeights w = kl_weights(weights, st[0], op);
  Tensor loss = scalar_like(st[0]), partial = scratch(st[0], launch::kLossScratch);
  visit_floating(st[0].dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    check_status(launch::kl_div_forward<T>(ptr<const T>(st[0]), ptr<const T>(st[1]), w.data(),
                                           loss_detail::layout_of(st[0].shape()), temperature, ptr<T>(loss),
                                           ptr<double>(partial), stream()),
                 op, "kernel launch");
  });
  return loss;
}

Tensor kl_div_with_temperature_backward(const Tensor& grad_output, const Tensor& student, const Tensor& teacher,
                                        double temperature, const Tensor& weights) {
  const char* op = "kl_div_with_temperature backward";
  require_cuda_float(student, op, "student logits");
  const Tensor g = loss_detail::grad_scalar(grad_output, student, "kl_div_with_temperature");
  const std::array<Tensor, 2> st = kl_args(student, teacher, temperature);
  const KlWeights w = kl_weights(weights, st[0], op);
  if (w.total <= 0.0) return Tensor::zeros(st[0].shape(), TensorOptions{st[0].dtype(), st[0].device()});
  Tensor out = empty_like_shape(st[0], st[0].shape());
  visit_floating(st[0].dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    check_status(
        launch::kl_div_backward<T>(ptr<const T>(g), ptr<const T>(st[0]), ptr<const T>(st[1]), w.data(), w.total,
                                   loss_detail::layout_of(st[0].shape()), temperature, ptr<T>(out), stream()),
        op, "kernel launch");
  });
  return out;
}

Tensor mse_loss_forward(const Tensor& a_in, const Tensor& b_in) {
  const char* op = "mse_loss";
  const std::array<Tensor, 2> ab = mse_args(a_in, b_in);
  Tensor loss = scalar_like(ab[0]), partial = scratch(ab[0], launch::kLossScratch);
  visit_floating(ab[0].dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    check_status(launch::mse_forward<T>(ptr<const T>(ab[0]), ptr<const T>(ab[1]), ab[0].numel(), ptr<T>(loss),
                                        ptr<double>(partial), stream()),
                 op, "kernel launch");
  });
  return loss;
}

Tensor mse_loss_backward(const Tensor& grad_output, const Tensor& a_in, const Tensor& b_in) {
  const char* op = "mse_loss backward";
  require_cuda_float(a_in, op, "first input");
  const Tensor g = loss_detail::grad_scalar(grad_output, a_in, "mse_loss");
  const std::array<Tensor, 2> ab = mse_args(a_in, b_in);
  Tensor out = empty_like_shape(ab[0], ab[0].shape());
  visit_floating(ab[0].dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    check_status(launch::mse_backward<T>(ptr<const T>(g), ptr<const T>(ab[0]), ptr<const T>(ab[1]), ab[0].numel(),
                                         ptr<T>(out), stream()),
                 op, "kernel launch");
  });
  return out;
}

}  // namespace tlk::kernels::cuda
