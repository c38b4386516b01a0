#pragma once
// The per-position math of decoupled KD (transfer::dkd_terms, Note [DKD in one pass] in
// transfer/distillation_losses.cpp), shared by its CPU loops there and the CUDA kernels of
// kernels/cuda/dkd_launch.cu (Note [Kernel bodies on the host] in kernels/augment_voxel.h). One
// position's logits are `k` values lying `stride` apart; T is float or double.
#include <cmath>
#include <cstdint>

#include "tlk/kernels/host_device.h"

namespace tlk::kernels::dkd {

/// log Σ_{c != skip} exp(scale · x[c · stride]), stable (skip = -1 leaves nothing out): NaN when a
/// term is NaN, ±inf when the largest term is infinite.
template <class T>
TLK_HOST_DEVICE inline double log_sum_exp(const T* x, std::int64_t stride, std::int64_t k, double scale,
                                          std::int64_t skip) {
  double m = -INFINITY;
  for (std::int64_t c = 0; c < k; ++c) {
    if (c == skip) continue;
    const double v = scale * static_cast<double>(x[c * stride]);
    if (v != v) return v;
    if (v > m) m = v;
  }
  if (m == INFINITY || m == -INFINITY) return m;
  double s = 0.0;
  for (std::int64_t c = 0; c < k; ++c)
    if (c != skip) s += exp(scale * static_cast<double>(x[c * stride]) - m);
  return m + log(s);
}

/// One side's quantities: LSE over all classes and over the non-target ones, log b_t and log b_o.
struct Side {
  double lse, lse_nt, log_bt, log_bo;
};

template <class T>
TLK_HOST_DEVICE inline Side side(const T* x, std::int64_t stride, std::int64_t k, double inv_t, std::int64_t target) {
  Side d;
  d.lse = log_sum_exp(x, stride, k, inv_t, -1);
  d.lse_nt = log_sum_exp(x, stride, k, inv_t, target);
  d.log_bt = inv_t * static_cast<double>(x[target * stride]) - d.lse;
  d.log_bo = d.lse_nt - d.lse;
  return d;
}

/// a·(log a − log b), with 0·log 0 = 0.
TLK_HOST_DEVICE inline double kl_term(double log_a, double log_b) {
  const double a = exp(log_a);
  return a > 0.0 ? a * (log_a - log_b) : 0.0;
}

/// Adds one position's unscaled TCKD to acc[0] and NCKD to acc[1] (student s, teacher t).
template <class T>
TLK_HOST_DEVICE inline void add_terms(const T* s, const T* t, std::int64_t stride, std::int64_t k, double inv_t,
                                      std::int64_t target, double* acc) {
  const Side ds = side(s, stride, k, inv_t, target), dt = side(t, stride, k, inv_t, target);
  acc[0] += kl_term(dt.log_bt, ds.log_bt) + kl_term(dt.log_bo, ds.log_bo);
  for (std::int64_t c = 0; c < k; ++c) {
    if (c == target) continue;
    const double log_qh = inv_t * static_cast<double>(t[c * stride]) - dt.lse_nt;
    const double log_ph = inv_t * static_cast<double>(s[c * stride]) - ds.lse_nt;
    acc[1] += kl_term(log_qh, log_ph);
  }
}

/// Writes one position's gradient w.r.t. the student logits to `out` (same stride): `scale` times
/// g_tckd·dTCKD/dz + g_nckd·dNCKD/dz (scale = T/P folds in dz/ds = 1/T and the T²/P of the terms).
template <class T>
TLK_HOST_DEVICE inline void write_grad(const T* s, const T* t, std::int64_t stride, std::int64_t k, double inv_t,
                                       std::int64_t target, double g_tckd, double g_nckd, double scale, T* out) {
  const Side ds = side(s, stride, k, inv_t, target), dt = side(t, stride, k, inv_t, target);
  const double bo_minus_ao = exp(ds.log_bo) - exp(dt.log_bo);
  for (std::int64_t c = 0; c < k; ++c) {
    double grad;
    if (c == target) {
      grad = g_tckd * (exp(ds.log_bt) - exp(dt.log_bt));
    } else {
      const double ph = exp(inv_t * static_cast<double>(s[c * stride]) - ds.lse_nt);
      const double qh = exp(inv_t * static_cast<double>(t[c * stride]) - dt.lse_nt);
      grad = g_tckd * ph * bo_minus_ao + g_nckd * (ph - qh);
    }
    out[c * stride] = static_cast<T>(scale * grad);
  }
}

}  // namespace tlk::kernels::dkd
