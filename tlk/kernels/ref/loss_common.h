#pragma once
// Helpers shared by the reference loss kernels (losses.cpp, soft_dice.cpp); not public API.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "tlk/kernels/ref/common.h"

namespace tlk::kernels::ref::loss_detail {

/// A contiguous [N, C, ...spatial] tensor is read through a ChannelView [N, C, S]. A "position" p in
/// [0, N*S) is one (sample, voxel) pair; its channel c lies at position_base(v, p) + c * v.inner.
inline std::int64_t positions(const ChannelView& v) { return v.outer * v.inner; }
inline std::int64_t position_base(const ChannelView& v, std::int64_t p) { return v.index(p / v.inner, 0, p % v.inner); }

/// The value of the 0-D (or one-element) gradient of a scalar loss, checked.
inline double grad_scalar(const Tensor& grad_output, const char* op) {
  check(grad_output.defined() && grad_output.numel() == 1,
        "{} backward: expected a one-element gradient of the scalar loss (shape [] or [1]), got {}", op,
        grad_output.defined() ? "shape " + grad_output.shape().str() : std::string("an undefined tensor"));
  return grad_output.item();
}

/// Checks that `logits` is f32/f64 and at least 2-D ([N, C, ...spatial]).
inline void check_logits(const Tensor& logits, const char* op, const char* what) {
  check(logits.dtype() == DType::f32 || logits.dtype() == DType::f64, "{}: {} must be f32 or f64, got {} with shape {}",
        op, what, dtype_name(logits.dtype()), logits.shape().str());
  check(logits.dim() >= 2, "{}: expected {} of shape [N, C, ...spatial] (at least 2-D), got {}-D with shape {}", op,
        what, logits.dim(), logits.shape().str());
}

/// The label shape [N, ...spatial] that goes with logits [N, C, ...spatial].
inline Shape label_shape(const Shape& logits) {
  Shape out{logits[0]};
  for (int i = 2; i < logits.size(); ++i) out.push_back(logits[i]);
  return out;
}

/// True when `labels` is [N, ...spatial] or [N, 1, ...spatial] for logits [N, C, ...spatial].
inline bool is_label_shape(const Shape& labels, const Shape& logits) {
  if (labels == label_shape(logits)) return true;
  if (labels.size() != logits.size() || labels[1] != 1) return false;
  for (int i = 0; i < labels.size(); ++i)
    if (i != 1 && labels[i] != logits[i]) return false;
  return true;
}

/// One weight per position of logits [N, C, ...spatial], read from `weights` [N, ...spatial] or
/// [N, 1, ...spatial] (any dtype, any device) in position order; each must be finite and >= 0.
inline std::vector<double> position_weights(const Tensor& weights, const Shape& logits, const char* op) {
  check(weights.defined(), "{}: the position weights are undefined", op);
  check(is_label_shape(weights.shape(), logits), "{}: position weights of shape {} do not fit logits {} (expected {} "
        "or with a size-1 axis 1)", op, weights.shape().str(), logits.str(), label_shape(logits).str());
  const std::vector<double> w = weights.to_doubles();
  for (std::size_t i = 0; i < w.size(); ++i)
    check(std::isfinite(w[i]) && w[i] >= 0.0, "{}: position weight {} (element {}) must be finite and >= 0", op, w[i],
          i);
  return w;
}

/// An integer label tensor as contiguous i64; floating labels are an error naming `op`.
inline Tensor labels_as_i64(const Tensor& labels, const char* op, const char* what) {
  const DType t = labels.dtype();
  check(t == DType::i64 || t == DType::i32 || t == DType::u8,
        "{}: {} must hold integer class indices (i64, i32 or u8), got {} with shape {}", op, what, dtype_name(t),
        labels.shape().str());
  return labels.to(DType::i64).contiguous();
}

/// Checks every label is in [0, classes) or equals `ignore` (when `has_ignore`).
inline void check_label_range(const Tensor& labels, std::int64_t classes, const char* op, bool has_ignore,
                              std::int64_t ignore) {
  const std::int64_t* t = labels.data<std::int64_t>();
  for (std::int64_t i = 0; i < labels.numel(); ++i) {
    if ((t[i] >= 0 && t[i] < classes) || (has_ignore && t[i] == ignore)) continue;
    if (has_ignore)
      fail("{}: target value {} (element {}) is out of range for {} classes (expected 0 <= t < {}, or ignore_index {})",
           op, t[i], i, classes, classes, ignore);
    fail("{}: target label {} (element {}) is out of range for {} classes (expected 0 <= label < {})", op, t[i], i,
         classes, classes);
  }
}

/// log Σ_c exp(scale * x[c * stride]) for c < count, stable (shifted by the maximum); NaN propagates.
template <class T>
double log_sum_exp(const T* x, std::int64_t stride, std::int64_t count, double scale) {
  double m = -std::numeric_limits<double>::infinity();
  for (std::int64_t c = 0; c < count; ++c) {
    const double v = scale * static_cast<double>(x[c * stride]);
    if (v > m || std::isnan(v)) m = v;
    if (std::isnan(m)) return m;
  }
  if (std::isinf(m)) return m;
  double s = 0.0;
  for (std::int64_t c = 0; c < count; ++c) s += std::exp(scale * static_cast<double>(x[c * stride]) - m);
  return m + std::log(s);
}

/// Σ over i in [0, count) of `width` accumulators: fn(begin, end, acc) adds the terms of one block
/// into acc[0..width).
///
/// Note [Deterministic loss sums]: the blocks are fixed (not one per thread) and their partial sums
/// are added in order afterwards, so a loss has the same bits whatever the OpenMP thread count.
template <class Fn>
std::vector<double> blocked_sum(std::int64_t count, std::size_t width, Fn&& fn) {
  constexpr std::int64_t kBlock = 4096;
  const std::int64_t blocks = (count + kBlock - 1) / kBlock;
  std::vector<double> partial(static_cast<std::size_t>(blocks) * width, 0.0);
#pragma omp parallel for if (blocks > 1)
  for (std::int64_t b = 0; b < blocks; ++b)
    fn(b * kBlock, std::min(count, (b + 1) * kBlock), partial.data() + static_cast<std::size_t>(b) * width);
  std::vector<double> total(width, 0.0);
  for (std::int64_t b = 0; b < blocks; ++b)
    for (std::size_t k = 0; k < width; ++k) total[k] += partial[static_cast<std::size_t>(b) * width + k];
  return total;
}

}  // namespace tlk::kernels::ref::loss_detail
