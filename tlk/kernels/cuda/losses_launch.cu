// Cross entropy, BCE on logits, distillation KL and MSE kernels (launchers in losses_launch.h).
// The formulas, term by term, are the reference's (kernels/ref/losses.cpp), in double.
#include <cuda_runtime.h>

#include <cstdint>

#include "tlk/kernels/cuda/block_sum.cuh"
#include "tlk/kernels/cuda/loss_reduce.cuh"
#include "tlk/kernels/cuda/losses_launch.h"

namespace tlk::kernels::cuda::launch {

namespace {

using detail::each;
using detail::log_sum_exp;
using detail::position_base;
using detail::reduce;
using detail::ref_max;

// ---- cross entropy ------------------------------------------------------------------------------

// True when label `cls` is a class index (not the ignore index, not out of range); records a bad one.
__device__ inline bool class_or_record(std::int64_t cls, std::int64_t p, std::int64_t classes, std::int64_t ignore,
                                       unsigned long long* bad) {
  if (cls == ignore) return false;
  if (cls < 0 || cls >= classes) {
    atomicMin(bad, static_cast<unsigned long long>(p));
    return false;
  }
  return true;
}

template <class T, class L>
struct CeTerm {
  const T* x;
  const L* t;
  const T* w;
  LossLayout lay;
  std::int64_t ignore;
  unsigned long long* bad;
  bool with_loss;
  __device__ void operator()(std::int64_t p, double (&acc)[2]) const {
    const std::int64_t cls = static_cast<std::int64_t>(t[p]);
    if (!class_or_record(cls, p, lay.channels, ignore, bad)) return;
    const double wt = w ? static_cast<double>(w[cls]) : 1.0;
    if (with_loss) {
      const T* xp = x + position_base(lay, p);
      acc[0] += wt * (log_sum_exp(xp, lay.inner, lay.channels, 1.0) - static_cast<double>(xp[cls * lay.inner]));
    }
    acc[1] += wt;
  }
};

// Note [All targets ignored] (ref/losses.cpp): Σ w[t] = 0 makes the loss NaN, as in PyTorch.
template <class T>
struct CeLoss {
  T* loss;
  __device__ void operator()(const double (&s)[2]) const { loss[0] = static_cast<T>(s[1] == 0.0 ? NAN : s[0] / s[1]); }
};

struct CeTotal {
  double* total;
  __device__ void operator()(const double (&s)[2]) const { total[0] = s[1]; }
};

template <class T, class L>
struct CeGrad {
  const T *grad, *x;
  const L* t;
  const T* w;
  LossLayout lay;
  std::int64_t ignore;
  const double* total;
  T* dx;
  __device__ void operator()(std::int64_t p) const {
    const std::int64_t cls = static_cast<std::int64_t>(t[p]), base = position_base(lay, p);
    if (cls == ignore || cls < 0 || cls >= lay.channels) {
      for (std::int64_t c = 0; c < lay.channels; ++c) dx[base + c * lay.inner] = T(0);
      return;
    }
    const double f = static_cast<double>(grad[0]) / total[0] * (w ? static_cast<double>(w[cls]) : 1.0);
    const double lse = log_sum_exp(x + base, lay.inner, lay.channels, 1.0);
    for (std::int64_t c = 0; c < lay.channels; ++c) {
      const double sm = exp(static_cast<double>(x[base + c * lay.inner]) - lse);
      dx[base + c * lay.inner] = static_cast<T>(f * (sm - (c == cls ? 1.0 : 0.0)));
    }
  }
};

// ---- binary cross entropy on logits ---------------------------------------------------------------

// log(1 + exp(-x)), stable for any x.
__device__ inline double softplus_neg(double x) { return log1p(exp(-fabs(x))) + ref_max(-x, 0.0); }

template <class T>
struct BceTerm {
  const T *x, *y, *pw;
  std::int64_t channels, inner;
  __device__ void operator()(std::int64_t i, double (&acc)[1]) const {
    const double xi = static_cast<double>(x[i]), yi = static_cast<double>(y[i]);
    if (!pw) {
      acc[0] += ref_max(xi, 0.0) - xi * yi + log1p(exp(-fabs(xi)));
    } else {
      const double lw = 1.0 + (static_cast<double>(pw[(i / inner) % channels]) - 1.0) * yi;
      acc[0] += (1.0 - yi) * xi + lw * softplus_neg(xi);
    }
  }
};

// loss = sum / count (NaN for no elements), times `factor`.
template <class T>
struct MeanLoss {
  T* loss;
  std::int64_t count;
  double factor;
  __device__ void operator()(const double (&s)[1]) const {
    loss[0] = static_cast<T>(count == 0 ? NAN : factor * s[0] / static_cast<double>(count));
  }
};

template <class T>
struct BceGrad {
  const T *grad, *x, *y, *pw;
  std::int64_t n, channels, inner;
  T *gx, *gy;
  __device__ void operator()(std::int64_t i) const {
    const double scale = static_cast<double>(grad[0]) / static_cast<double>(n);
    const double xi = static_cast<double>(x[i]), yi = static_cast<double>(y[i]);
    const double p = pw ? static_cast<double>(pw[(i / inner) % channels]) : 1.0;
    // d/dx = (1 − y) − lw·σ(−x); d/dy = −x + (pos_weight − 1)·log(1 + exp(−x)).
    const double sig_neg = xi >= 0 ? exp(-xi) / (1.0 + exp(-xi)) : 1.0 / (1.0 + exp(xi));
    if (gx) gx[i] = static_cast<T>(scale * ((1.0 - yi) - (1.0 + (p - 1.0) * yi) * sig_neg));
    if (gy) gy[i] = static_cast<T>(scale * (-xi + (p - 1.0) * softplus_neg(xi)));
  }
};

// ---- distillation KL --------------------------------------------------------------------------------

template <class T>
struct KlTerm {
  const T *s, *t;
  LossLayout lay;
  double inv_t;
  const double* w;  ///< position weights, or null (all 1)
  __device__ void operator()(std::int64_t p, double (&acc)[2]) const {
    const double wp = w ? w[p] : 1.0;
    if (wp == 0.0) return;
    const std::int64_t base = position_base(lay, p);
    const double lse_s = log_sum_exp(s + base, lay.inner, lay.channels, inv_t);
    const double lse_t = log_sum_exp(t + base, lay.inner, lay.channels, inv_t);
    double kl = 0.0;
    for (std::int64_t c = 0; c < lay.channels; ++c) {
      const double log_q = inv_t * static_cast<double>(t[base + c * lay.inner]) - lse_t;
      const double log_p = inv_t * static_cast<double>(s[base + c * lay.inner]) - lse_s;
      const double q = exp(log_q);
      if (q > 0.0) kl += q * (log_q - log_p);  // 0·log 0 = 0
    }
    acc[0] += wp * kl;
    acc[1] += wp;
  }
};

/// T²·Σ w·KL / M with M the position count (unweighted) or Σ w (0 when it is 0), as the reference.
template <class T>
struct KlLoss {
  T* loss;
  std::int64_t positions;
  double factor;
  bool weighted;
  __device__ void operator()(const double (&s)[2]) const {
    double value;
    if (weighted)
      value = s[1] > 0.0 ? factor * s[0] / s[1] : 0.0;
    else
      value = positions == 0 ? NAN : factor * s[0] / static_cast<double>(positions);
    loss[0] = static_cast<T>(value);
  }
};

template <class T>
struct KlGrad {
  const T *grad, *s, *t;
  LossLayout lay;
  double temperature;
  const double* w;     ///< position weights, or null (all 1)
  double weight_total;  ///< the position count, or Σ w
  T* dx;
  __device__ void operator()(std::int64_t p) const {
    const double inv_t = 1.0 / temperature;
    const double wp = w ? w[p] : 1.0;
    const double scale = static_cast<double>(grad[0]) * temperature / weight_total;
    const std::int64_t base = position_base(lay, p);
    if (wp == 0.0) {
      for (std::int64_t c = 0; c < lay.channels; ++c) dx[base + c * lay.inner] = static_cast<T>(0);
      return;
    }
    const double lse_s = log_sum_exp(s + base, lay.inner, lay.channels, inv_t);
    const double lse_t = log_sum_exp(t + base, lay.inner, lay.channels, inv_t);
    for (std::int64_t c = 0; c < lay.channels; ++c) {
      const std::int64_t i = base + c * lay.inner;
      const double pc = exp(inv_t * static_cast<double>(s[i]) - lse_s);
      const double qc = exp(inv_t * static_cast<double>(t[i]) - lse_t);
      dx[i] = static_cast<T>(scale * wp * (pc - qc));
    }
  }
};

// ---- mean squared error -------------------------------------------------------------------------------

template <class T>
struct MseTerm {
  const T *a, *b;
  __device__ void operator()(std::int64_t i, double (&acc)[1]) const {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    acc[0] += d * d;
  }
};

template <class T>
struct MseGrad {
  const T *grad, *a, *b;
  std::int64_t n;
  T* dx;
  __device__ void operator()(std::int64_t i) const {
    const double scale = 2.0 * static_cast<double>(grad[0]) / static_cast<double>(n);
    dx[i] = static_cast<T>(scale * (static_cast<double>(a[i]) - static_cast<double>(b[i])));
  }
};

}  // namespace

template <class T, class L>
cudaError_t cross_entropy_forward(const T* x, const L* target, const T* weight, LossLayout layout,
                                  std::int64_t ignore_index, T* loss, unsigned long long* bad, double* partial,
                                  cudaStream_t stream) {
  return reduce<2>(layout.positions(), CeTerm<T, L>{x, target, weight, layout, ignore_index, bad, true},
                   CeLoss<T>{loss}, partial, stream);
}

template <class T, class L>
cudaError_t cross_entropy_weight_total(const L* target, const T* weight, LossLayout layout, std::int64_t ignore_index,
                                       double* total, unsigned long long* bad, double* partial, cudaStream_t stream) {
  return reduce<2>(layout.positions(), CeTerm<T, L>{nullptr, target, weight, layout, ignore_index, bad, false},
                   CeTotal{total}, partial, stream);
}

template <class T, class L>
cudaError_t cross_entropy_backward(const T* grad, const T* x, const L* target, const T* weight, LossLayout layout,
                                   std::int64_t ignore_index, const double* total, T* dx, cudaStream_t stream) {
  return each(layout.positions(), CeGrad<T, L>{grad, x, target, weight, layout, ignore_index, total, dx}, stream);
}

template <class T>
cudaError_t bce_with_logits_forward(const T* x, const T* y, const T* pos_weight, std::int64_t n,
                                    std::int64_t pw_channels, std::int64_t pw_inner, T* loss, double* partial,
                                    cudaStream_t stream) {
  return reduce<1>(n, BceTerm<T>{x, y, pos_weight, pw_channels, pw_inner}, MeanLoss<T>{loss, n, 1.0}, partial, stream);
}

template <class T>
cudaError_t bce_with_logits_backward(const T* grad, const T* x, const T* y, const T* pos_weight, std::int64_t n,
                                     std::int64_t pw_channels, std::int64_t pw_inner, T* grad_x, T* grad_y,
                                     cudaStream_t stream) {
  return each(n, BceGrad<T>{grad, x, y, pos_weight, n, pw_channels, pw_inner, grad_x, grad_y}, stream);
}

template <class T>
cudaError_t kl_div_forward(const T* student, const T* teacher, const double* weights, LossLayout layout,
                           double temperature, T* loss, double* partial, cudaStream_t stream) {
  return reduce<2>(layout.positions(), KlTerm<T>{student, teacher, layout, 1.0 / temperature, weights},
                   KlLoss<T>{loss, layout.positions(), temperature * temperature, weights != nullptr}, partial, stream);
}

template <class T>
cudaError_t kl_div_backward(const T* grad, const T* student, const T* teacher, const double* weights,
                            double weight_total, LossLayout layout, double temperature, T* dx, cudaStream_t stream) {
  return each(layout.positions(),
              KlGrad<T>{grad, student, teacher, layout, temperature, weights, weight_total, dx}, stream);
}

template <class T>
cudaError_t mse_forward(const T* a, const T* b, std::int64_t n, T* loss, double* partial, cudaStream_t stream) {
  return reduce<1>(n, MseTerm<T>{a, b}, MeanLoss<T>{loss, n, 1.0}, partial, stream);
}

template <class T>
cudaError_t mse_backward(const T* grad, const T* a, const T* b, std::int64_t n, T* dx, cudaStream_t stream) {
  return each(n, MseGrad<T>{grad, a, b, n, dx}, stream);
}

#define TLK_CE_INSTANTIATE(T, L)                                                                                      \
  template cudaError_t cross_entropy_forward<T, L>(const T*, const L*, const T*, LossLayout, std::int64_t, T*,        \
                                                   unsigned long long*, double*, cudaStream_t);                       \
  template cudaError_t cross_entropy_weight_total<T, L>(const L*, const T*, LossLayout, std::int64_t, double*,        \
                                                        unsigned long long*, double*, cudaStream_t);                  \
  template cudaError_t cross_entropy_backward<T, L>(const T*, const T*, const L*, const T*, LossLayout, std::int64_t, \
                                                    const double*, T*, cudaStream_t);
#define TLK_LOSSES_INSTANTIATE(T)                                                                                      \
  TLK_CE_INSTANTIATE(T, std::int64_t)                                                                                  \
  TLK_CE_INSTANTIATE(T, std::int32_t)                                                                                  \
  TLK_CE_INSTANTIATE(T, std::uint8_t)                                                                                  \
  template cudaError_t bce_with_logits_forward<T>(const T*, const T*, const T*, std::int64_t, std::int64_t,            \
                                                  std::int64_t, T*, double*, cudaStream_t);                            \
  template cudaError_t bce_with_logits_backward<T>(const T*, const T*, const T*, const T*, std::int64_t, std::int64_t, \
                                                   std::int64_t, T*, T*, cudaStream_t);                                \
  template cudaError_t kl_div_forward<T>(const T*, const T*, const double*, LossLayout, double, T*, double*,         \
                                         cudaStream_t);                                                               \
  template cudaError_t kl_div_backward<T>(const T*, const T*, const T*, const double*, double, LossLayout, double, T*, \
                                          cudaStream_t);                                                              \
  template cudaError_t mse_forward<T>(const T*, const T*, std::int64_t, T*, double*, cudaStream_t);                    \
  template cudaError_t mse_backward<T>(const T*, const T*, const T*, std::int64_t, T*, cudaStream_t);
TLK_LOSSES_INSTANTIATE(float)
TLK_LOSSES_INSTANTIATE(double)
#undef TLK_LOSSES_INSTANTIATE
#undef TLK_CE_INSTANTIATE

}  // namespace tlk::kernels::cuda::launch
