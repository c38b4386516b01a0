#include "tlk/transfer/distillation_losses.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "tlk/autograd/autocast.h"
#include "tlk/autograd/function.h"
#include "tlk/autograd/ops/arith.h"
#include "tlk/autograd/ops/losses.h"
#include "tlk/autograd/saved_tensor.h"
#include "tlk/kernels/dkd_position.h"
#include "tlk/kernels/kd_region_voxel.h"
#include "tlk/kernels/routed.h"
#include "tlk/kernels/ref/loss_common.h"
#include "tlk/tensor/error.h"

#ifdef TLK_HAVE_CUDA
#include "tlk/kernels/cuda/dkd.h"
#include "tlk/kernels/cuda/kd_region.h"
#endif

namespace tlk::transfer {

// Note [Distillation kernels live here]: DKD has no other user, so its CPU forward and backward loops
// sit in this file (plain loops in double, OpenMP over positions, the deterministic block sums of
// kernels/ref/loss_common.h) instead of a kernels/ + autograd/ops/ pair; their per-position math is
// kernels/dkd_position.h, which the GPU kernels share.
// The teacher and the weights are left out of attach()'s inputs: no gradient is ever routed to them.
//
// Note [Distillation on the GPU]: every loss here runs where its logits live. DKD on a GPU runs
// kernels/cuda/dkd.h, whose kernels share the per-position math of the CPU loops below
// (kernels/dkd_position.h); 16-bit logits are widened to f32 first (recorded, so the gradient returns
// in their dtype), and the targets are range-checked on the CPU before they go to the GPU. The KD
// region mask of 3-D logits on a GPU is made there (kernels/cuda/kd_region.h: the teacher's argmax and
// the labels per voxel, through the same argmax_class as the CPU loop, then a max pooling for the
// dilation); other logits on a GPU take the CPU loop through recorded copies. The KL itself, weighted
// or not (voxel_kd_loss), and the feature losses (hint, attention transfer) are ops with CUDA kernels.

namespace {

using autograd::attach;
using autograd::Node;
using autograd::SavedTensor;
using kernels::ref::ChannelView;
using kernels::ref::cpu_contiguous;
using kernels::ref::loss_detail::blocked_sum;
using kernels::ref::loss_detail::position_base;
using kernels::ref::loss_detail::positions;
using Grads = std::vector<Tensor>;

// `t` as a CPU tensor of f32 or f64 (Note [Distillation on the GPU]); recorded when it is converted.
Tensor on_cpu(const Tensor& t) {
  if (!t.defined()) return t;
  const Tensor wide = autograd::widen_half(t);
  return wide.device().is_cpu() ? wide : wide.to(Device::cpu());
}

struct PairArgs {
  Tensor student, teacher;
  ChannelView layout;
};

PairArgs pair_args(const Tensor& student, const Tensor& teacher, double temperature, const char* op) {
  PairArgs a;
  a.student = cpu_contiguous(student, op, "student logits");
  a.teacher = cpu_contiguous(teacher, op, "teacher logits");
  kernels::ref::loss_detail::check_logits(a.student, op, "student logits");
  kernels::ref::check_same_dtype(op, {&a.student, &a.teacher});
  check(a.student.shape() == a.teacher.shape(), "{}: student logits {} and teacher logits {} differ in shape", op,
        a.student.shape().str(), a.teacher.shape().str());
  check(std::isfinite(temperature) && temperature > 0.0, "{}: temperature must be a finite value > 0, got {}", op,
        temperature);
  a.layout = ChannelView::of(a.student.shape());
  return a;
}

/// Labels [N, ...spatial] or [N, 1, ...spatial] as contiguous i64, range-checked.
Tensor target_labels(const Tensor& labels, const Shape& logits, const char* op) {
  check(labels.defined(), "{}: labels are required (class indices of shape {})", op,
        kernels::ref::loss_detail::label_shape(logits).str());
  check(kernels::ref::loss_detail::is_label_shape(labels.shape(), logits),
        "{}: labels of shape {} do not fit logits {} (expected {} or with a size-1 axis 1)", op, labels.shape().str(),
        logits.str(), kernels::ref::loss_detail::label_shape(logits).str());
  Tensor t = kernels::ref::loss_detail::labels_as_i64(cpu_contiguous(labels, op, "labels"), op, "labels");
  kernels::ref::loss_detail::check_label_range(t, logits[1], op, false, 0);
  return t;
}

// Note [DKD in one pass]: with z = s/T, p = softmax(z), target t, the binary distributions are
// b = (p_t, 1 − p_t) and the non-target one p̂_c = p_c / (1 − p_t) (c != t); likewise a and q̂ for the
// teacher. In logs, with L = LSE(z) and L' = LSE over c != t:
//   log b_t = z_t − L,  log b_o = L' − L,  log p̂_c = z_c − L'.
// mdistiller forms p̂ by subtracting 1000 from the target logit before a softmax (the masking trick);
// leaving the target out of L' is the exact limit of that trick and stays exact when logits are large.
// TCKD = Σ_{b} a log(a/b), NCKD = Σ_{c != t} q̂_c log(q̂_c / p̂_c); their gradients w.r.t. z are
//   TCKD: (b_t − a_t) at c = t,  p̂_c·(b_o − a_o) elsewhere;   NCKD: 0 at c = t,  p̂_c − q̂_c elsewhere.
// Both are scaled by T²/P (P positions), and dz/ds = 1/T.
struct DkdArgs {
  PairArgs pair;
  Tensor labels;
};

DkdArgs dkd_args(const Tensor& student, const Tensor& teacher, const Tensor& labels, double temperature) {
  const char* op = "dkd_terms";
  DkdArgs a{pair_args(student, teacher, temperature, op), {}};
  check(a.pair.layout.channels >= 2, "{}: DKD needs at least 2 classes, got logits of shape {}", op,
        a.pair.student.shape().str());
  a.labels = target_labels(labels, a.pair.student.shape(), op);
  return a;
}

std::vector<Tensor> dkd_forward(const DkdArgs& a, double temperature) {
  const ChannelView L = a.pair.layout;
  const double inv_t = 1.0 / temperature;
  const std::int64_t* y = a.labels.data<std::int64_t>();
  std::vector<double> sums;
  visit_floating(a.pair.student.dtype(), "dkd_terms", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *s = a.pair.student.data<T>(), *t = a.pair.teacher.data<T>();
    sums = blocked_sum(positions(L), 2, [&](std::int64_t begin, std::int64_t end, double* acc) {
      for (std::int64_t p = begin; p < end; ++p) {
        const std::int64_t base = position_base(L, p);
        kernels::dkd::add_terms(s + base, t + base, L.inner, L.channels, inv_t, y[p], acc);
      }
    });
  });
  const double scale = temperature * temperature / static_cast<double>(positions(L));
  const TensorOptions opt{a.pair.student.dtype()};
  const double nan = std::numeric_limits<double>::quiet_NaN();
  return {Tensor::scalar(positions(L) == 0 ? nan : scale * sums[0], opt),
          Tensor::scalar(positions(L) == 0 ? nan : scale * sums[1], opt)};
}

Tensor dkd_backward(double g_tckd, double g_nckd, const DkdArgs& a, double temperature) {
  const ChannelView L = a.pair.layout;
  const double inv_t = 1.0 / temperature, scale = temperature / static_cast<double>(positions(L));
  const std::int64_t* y = a.labels.data<std::int64_t>();
  Tensor out = empty_like(a.pair.student);
  visit_floating(a.pair.student.dtype(), "dkd_terms backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *s = a.pair.student.data<T>(), *t = a.pair.teacher.data<T>();
    T* o = out.data<T>();
#pragma omp parallel for if (positions(L) * L.channels > 32768)
    for (std::int64_t p = 0; p < positions(L); ++p) {
      const std::int64_t base = position_base(L, p);
      kernels::dkd::write_grad(s + base, t + base, L.inner, L.channels, inv_t, y[p], g_tckd, g_nckd, scale, o + base);
    }
  });
  return out;
}

// ---- region mask -----------------------------------------------------------------------------------

/// Grows the nonzero voxels of `mask` ([N, ...spatial] as `spatial` extents per sample) by `radius`
/// along every spatial axis: a separable running maximum, one axis after the other.
void dilate(std::vector<std::uint8_t>& mask, std::int64_t n, const std::vector<std::int64_t>& spatial, int radius) {
  if (radius <= 0 || mask.empty()) return;
  std::int64_t volume = 1;
  for (std::int64_t e : spatial) volume *= e;
  std::vector<std::uint8_t> tmp(mask.size());
  std::int64_t stride = volume;
  for (std::size_t axis = 0; axis < spatial.size(); ++axis) {
    const std::int64_t extent = spatial[axis];
    stride /= extent;  // elements between neighbours along this axis
    const std::int64_t lines = n * volume / extent;
#pragma omp parallel for if (lines > 64 && n * volume > 32768)
    for (std::int64_t line = 0; line < lines; ++line) {
      // line = (outer, inner) with inner < stride; outer indexes (sample, axes before this one).
      const std::int64_t outer = line / stride, inner = line % stride;
      const std::int64_t start = outer * extent * stride + inner;
      for (std::int64_t i = 0; i < extent; ++i) {
        std::uint8_t v = 0;
        const std::int64_t lo = std::max<std::int64_t>(0, i - radius),
                           hi = std::min<std::int64_t>(extent - 1, i + radius);
        for (std::int64_t j = lo; j <= hi && !v; ++j) v = mask[start + j * stride];
        tmp[start + i * stride] = v;
      }
    }
    mask.swap(tmp);
  }
}

}  // namespace

// ---- public API ------------------------------------------------------------------------------------

Tensor kd_loss(const Tensor& student_logits, const Tensor& teacher_logits, const Tensor& labels,
               const KdOptions& options) {
  check(std::isfinite(options.alpha) && options.alpha >= 0.0 && options.alpha <= 1.0,
        "kd_loss: alpha (the weight of the cross entropy) must be in [0, 1], got {}", options.alpha);
  Tensor total;
  if (options.alpha > 0.0) {
    check(labels.defined(), "kd_loss: labels are required when alpha (the cross entropy's weight) is {} > 0",
          options.alpha);
    total = ops::cross_entropy(student_logits, labels, options.cross_entropy) * options.alpha;
  }
  if (options.alpha < 1.0) {
    Tensor kd =
        ops::kl_div_with_temperature(student_logits, teacher_logits, options.temperature) * (1.0 - options.alpha);
    total = total.defined() ? total + kd : kd;
  }
  return total;
}

double dkd_warmup_factor(double epoch, double warmup_epochs) {
  if (!(warmup_epochs > 0.0)) return 1.0;
  return std::clamp(epoch / warmup_epochs, 0.0, 1.0);
}

DkdTerms dkd_terms(const Tensor& student_in, const Tensor& teacher_in, const Tensor& labels_in,
                   double temperature) {
#ifdef TLK_HAVE_CUDA
  if (student_in.device().is_cuda()) {  // Note [Distillation on the GPU]
    const char* name = "dkd_terms";
    const Tensor student = autograd::widen_half(student_in), teacher = autograd::widen_half(teacher_in.detach());
    // The targets are checked (shape, range) on the CPU, where they are few: one per position.
    const Tensor y = target_labels(labels_in.defined() ? labels_in.to(Device::cpu()) : labels_in, student.shape(),
                                   name)
                         .to(student.device());
    const std::array<Tensor, 2> out = kernels::cuda::dkd_forward(student, teacher, y, temperature);
    attach(name, {student}, {out[0], out[1]},
           [ss = SavedTensor(student, name), ts = SavedTensor(teacher, name), ys = SavedTensor(y, name),
            temperature](const Grads& g, const Node&) {
             const double g0 = kernels::ref::loss_detail::grad_scalar(g[0], "dkd_terms (tckd)");
             const double g1 = kernels::ref::loss_detail::grad_scalar(g[1], "dkd_terms (nckd)");
             return Grads{kernels::cuda::dkd_backward(g0, g1, ss.unpack(), ts.unpack(), ys.unpack(), temperature)};
           });
    return {out[0], out[1]};
  }
#endif
  const Tensor &student_logits = student_in, &teacher_logits = teacher_in, &labels = labels_in;
  const DkdArgs args = dkd_args(student_logits, teacher_logits, labels, temperature);
  std::vector<Tensor> out = dkd_forward(args, temperature);
  const char* name = "dkd_terms";
  attach(name, {student_logits}, out,
         [ss = SavedTensor(args.pair.student, name), ts = SavedTensor(args.pair.teacher, name),
          ys = SavedTensor(args.labels, name), temperature](const Grads& g, const Node&) {
           DkdArgs a{{ss.unpack(), ts.unpack(), ChannelView::of(ss.unpack().shape())}, ys.unpack()};
           const double g0 = kernels::ref::loss_detail::grad_scalar(g[0], "dkd_terms (tckd)");
           const double g1 = kernels::ref::loss_detail::grad_scalar(g[1], "dkd_terms (nckd)");
           return Grads{dkd_backward(g0, g1, a, temperature)};
         });
  return {out[0], out[1]};
}

Tensor dkd_loss(const Tensor& student_logits, const Tensor& teacher_logits, const Tensor& labels, double epoch,
                const DkdOptions& options) {
  check(std::isfinite(options.alpha) && std::isfinite(options.beta) && std::isfinite(epoch),
        "dkd_loss: alpha {}, beta {} and epoch {} must be finite", options.alpha, options.beta, epoch);
  const DkdTerms terms = dkd_terms(student_logits, teacher_logits, labels, options.temperature);
  const double factor = dkd_warmup_factor(epoch, options.warmup_epochs);
  return terms.tckd * (factor * options.alpha) + terms.nckd * (factor * options.beta);
}

Tensor logit_mse_loss(const Tensor& student_logits, const Tensor& teacher_logits) {
  return ops::mse_loss(student_logits, teacher_logits.detach());
}

Tensor kd_region_mask(const Tensor& teacher_logits, const Tensor& labels_in, const VoxelKdOptions& options) {
  const char* op = "kd_region_mask";
  const bool use_teacher =
      options.region == KdRegion::teacher_foreground || options.region == KdRegion::teacher_or_label_foreground;
  const bool use_labels =
      options.region == KdRegion::label_foreground || options.region == KdRegion::teacher_or_label_foreground;
#ifdef TLK_HAVE_CUDA
  // Note [Distillation on the GPU]: 3-D logits on a GPU keep the mask there.
  if (teacher_logits.defined() && teacher_logits.device().is_cuda() && teacher_logits.dim() == 5 &&
      options.region != KdRegion::all) {
    check(!use_labels || labels_in.defined(), "{}: labels are required for the region {}", op,
          use_teacher ? "teacher_or_label_foreground" : "label_foreground");
    return kernels::cuda::kd_region_mask(autograd::widen_half(teacher_logits.detach()),
                                         use_labels ? labels_in.to(teacher_logits.device()) : Tensor(), use_teacher,
                                         options.background_class, options.dilation);
  }
#endif
  const Tensor t = cpu_contiguous(on_cpu(teacher_logits.detach()), op, "teacher logits");
  const Tensor labels = on_cpu(labels_in);
  kernels::ref::loss_detail::check_logits(t, op, "teacher logits");
  check(options.dilation >= 0, "{}: dilation must be >= 0 voxels, got {}", op, options.dilation);
  const ChannelView L = ChannelView::of(t.shape());
  const Shape mask_shape = kernels::ref::loss_detail::label_shape(t.shape());
  std::vector<std::uint8_t> mask(static_cast<std::size_t>(positions(L)), options.region == KdRegion::all ? 1 : 0);
  if (use_labels) {
    const Tensor y = target_labels(labels, t.shape(), op);
    const std::int64_t* yp = y.data<std::int64_t>();
    for (std::int64_t p = 0; p < positions(L); ++p) mask[p] |= yp[p] != options.background_class ? 1 : 0;
  }
  if (use_teacher) {
    visit_floating(t.dtype(), op, [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* x = t.data<T>();
#pragma omp parallel for if (positions(L) * L.channels > 32768)
      for (std::int64_t p = 0; p < positions(L); ++p)
        if (kernels::kd_region::argmax_class(x + position_base(L, p), L.channels, L.inner) != options.background_class)
          mask[p] = 1;
    });
  }
  if (options.region != KdRegion::all) {
    std::vector<std::int64_t> spatial;
    for (int i = 2; i < t.dim(); ++i) spatial.push_back(t.size(i));
    dilate(mask, L.outer, spatial, options.dilation);
  }
  return Tensor::from_vector(mask, mask_shape);
}

Tensor weighted_kl_div_with_temperature(const Tensor& student_logits, const Tensor& teacher_logits,
                                        const Tensor& weights, double temperature) {
  return ops::kl_div_with_temperature(student_logits, teacher_logits, temperature, weights);
}

Tensor voxel_kd_loss(const Tensor& student_logits, const Tensor& teacher_logits, const VoxelKdOptions& options,
                     const Tensor& labels) {
  check(std::isfinite(options.background_weight) && options.background_weight >= 0.0,
        "voxel_kd_loss: background_weight must be finite and >= 0, got {}", options.background_weight);
  if (options.region == KdRegion::all || options.background_weight == 1.0)
    return ops::kl_div_with_temperature(student_logits, teacher_logits, options.temperature);
  const Tensor mask = kd_region_mask(teacher_logits, labels, options);
  Tensor weights = mask;
  if (options.background_weight > 0.0) {  // 1 inside, background_weight outside, where the mask lives
    const TensorOptions f64 = TensorOptions{DType::f64, mask.device()};
    weights = kernels::routed::where(mask, Tensor::ones(mask.shape(), f64),
                                     Tensor::full(mask.shape(), options.background_weight, f64));
  }
  return weighted_kl_div_with_temperature(student_logits, teacher_logits, weights, options.temperature);
}

}  // namespace tlk::transfer
