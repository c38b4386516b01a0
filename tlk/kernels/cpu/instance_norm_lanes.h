#pragma once
// The vectorised inner loops of the instance-norm kernel (instance_norm.cpp): statistics, normalise
// (+ leaky ReLU), and the two backward passes over rows of 4, 8 or 16 lanes. Internal to that file.
#include <cstdint>
#include <cstring>

#include "tlk/kernels/cpu/eltwise.h"

namespace tlk::kernels::cpu::instance_norm_detail {

using std::int64_t;

// Note [Lane vectors]: for 8 and 16 lanes (blocked layouts, plain rows) the kernels hold a row of lanes
// in kL / 4 GCC vectors of 4 floats, which every x86-64 target has natively. Written as plain loops,
// GCC 12 fully unrolled the 16-lane loop and vectorised across rows with shuffles (twice as slow); with
// 8- or 16-float vector types it lowered compares and selects to scalar code. Other lane counts
// (channels-last) use plain loops.
template <int kL>
constexpr bool kVectorLanes = kL == 8 || kL == 16;
typedef float Vec4 __attribute__((vector_size(4 * sizeof(float))));

inline Vec4 load4(const float* p) {
  Vec4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store4(float* p, Vec4 v) { std::memcpy(p, &v, sizeof v); }
// leaky_relu_value / leaky_relu_grad (Note [Branch-free rectifier] in eltwise.h) on four lanes.
inline Vec4 leaky_relu_value4(Vec4 v, float slope) {
  const Vec4 zero = {};
  const auto positive = v > zero;
  return (positive ? v : zero) + slope * (positive ? zero : v);
}
inline Vec4 leaky_relu_grad4(Vec4 g, Vec4 saved, float slope) {
  const Vec4 zero = {};
  const auto positive = saved > zero;
  return (positive ? g : zero) + slope * (positive ? zero : g);
}

// Per lane: center c = the f32 mean of the rows, t = Σ(x - c), q = Σ(x - c)² (Note [Instance norm statistics]).
template <int kL>
void lane_moments(const float* __restrict x, int64_t rows, int64_t lanes, float* __restrict c, float* __restrict t,
                  float* __restrict q) {
  const float inv_rows = 1.0f / static_cast<float>(rows);
  if constexpr (kVectorLanes<kL>) {
    constexpr int J = kL / 4;
    Vec4 vc[J] = {}, vt[J] = {}, vq[J] = {};
    for (int64_t r = 0; r < rows; ++r)
      for (int j = 0; j < J; ++j) vc[j] += load4(x + r * kL + 4 * j);
    for (int j = 0; j < J; ++j) vc[j] *= inv_rows;
    for (int64_t r = 0; r < rows; ++r)
      for (int j = 0; j < J; ++j) {
        const Vec4 d = load4(x + r * kL + 4 * j) - vc[j];
        vt[j] += d;
        vq[j] += d * d;
      }
    for (int j = 0; j < J; ++j) {
      store4(c + 4 * j, vc[j]);
      store4(t + 4 * j, vt[j]);
      store4(q + 4 * j, vq[j]);
    }
  } else {
    const int64_t L = kL > 0 ? kL : lanes;
    for (int64_t l = 0; l < L; ++l) c[l] = t[l] = q[l] = 0.0f;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t l = 0; l < L; ++l) c[l] += x[r * L + l];
    for (int64_t l = 0; l < L; ++l) c[l] *= inv_rows;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t l = 0; l < L; ++l) {
        const float d = x[r * L + l] - c[l];
        t[l] += d;
        q[l] += d * d;
      }
  }
}

// Per-lane coefficients of the normalisation (forward) or of the input gradient (backward), indexed
// n * Cp + c; zero on padding lanes, so padded outputs come out exactly zero.
struct Coefficients {
  std::vector<float> mean_hi, mean_lo, a, b, d;
  explicit Coefficients(std::size_t n) : mean_hi(n, 0.0f), mean_lo(n, 0.0f), a(n, 0.0f), b(n, 0.0f), d(n, 0.0f) {}
};

// y = ((x - mean_hi) - mean_lo) * a + b, then the fused leaky ReLU when kAct.
template <int kL, bool kAct>
void lane_normalize(const float* __restrict x, float* __restrict y, int64_t rows, int64_t lanes,
                    const float* __restrict hi, const float* __restrict lo, const float* __restrict a,
                    const float* __restrict b, float slope) {
  if constexpr (kVectorLanes<kL>) {
    constexpr int J = kL / 4;
    Vec4 vh[J], vl[J], va[J], vb[J];
    for (int j = 0; j < J; ++j) {
      vh[j] = load4(hi + 4 * j);
      vl[j] = load4(lo + 4 * j);
      va[j] = load4(a + 4 * j);
      vb[j] = load4(b + 4 * j);
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int j = 0; j < J; ++j) {
        const Vec4 v = ((load4(x + r * kL + 4 * j) - vh[j]) - vl[j]) * va[j] + vb[j];
        store4(y + r * kL + 4 * j, kAct ? leaky_relu_value4(v, slope) : v);
      }
  } else {
    const int64_t L = kL > 0 ? kL : lanes;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t l = 0; l < L; ++l) {
        const float v = ((x[r * L + l] - hi[l]) - lo[l]) * a[l] + b[l];
        if constexpr (kAct)
          y[r * L + l] = leaky_relu_value(v, slope);  // Note [Branch-free rectifier] in eltwise.h
        else
          y[r * L + l] = v;
      }
  }
}

// g' = f'(z) g, read from the fused forward's output y (Note [Instance norm + leaky ReLU fusion]).
template <bool kAct>
inline float active_grad(float g, [[maybe_unused]] const float* __restrict y, [[maybe_unused]] int64_t i,
                         [[maybe_unused]] float slope) {
  if constexpr (kAct) return leaky_relu_grad(g, y[i], slope);  // Note [Branch-free rectifier] in eltwise.h
  return g;
}
template <bool kAct>
inline Vec4 active_grad4(const float* __restrict g, [[maybe_unused]] const float* __restrict y, int64_t i,
                         [[maybe_unused]] float slope) {
  if constexpr (kAct) return leaky_relu_grad4(load4(g + i), load4(y + i), slope);
  return load4(g + i);
}

// Per lane: sg = Σ g', sd = Σ g' (x - mean).
template <int kL, bool kAct>
void lane_grad_sums(const float* __restrict g, const float* __restrict y, const float* __restrict x, int64_t rows,
                    int64_t lanes, const float* __restrict mean, float slope, float* __restrict sg,
                    float* __restrict sd) {
  if constexpr (kVectorLanes<kL>) {
    constexpr int J = kL / 4;
    Vec4 vm[J], vg[J] = {}, vd[J] = {};
    for (int j = 0; j < J; ++j) vm[j] = load4(mean + 4 * j);
    for (int64_t r = 0; r < rows; ++r)
      for (int j = 0; j < J; ++j) {
        const int64_t i = r * kL + 4 * j;
        const Vec4 gi = active_grad4<kAct>(g, y, i, slope);
        vg[j] += gi;
        vd[j] += gi * (load4(x + i) - vm[j]);
      }
    for (int j = 0; j < J; ++j) {
      store4(sg + 4 * j, vg[j]);
      store4(sd + 4 * j, vd[j]);
    }
  } else {
    const int64_t L = kL > 0 ? kL : lanes;
    for (int64_t l = 0; l < L; ++l) sg[l] = sd[l] = 0.0f;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t l = 0; l < L; ++l) {
        const int64_t i = r * L + l;
        const float gi = active_grad<kAct>(g[i], y, i, slope);
        sg[l] += gi;
        sd[l] += gi * (x[i] - mean[l]);
      }
  }
}

// dx = a g' + b (x - mean) + d.
template <int kL, bool kAct>
void lane_grad_input(const float* __restrict g, const float* __restrict y, const float* __restrict x,
                     float* __restrict dx, int64_t rows, int64_t lanes, const float* __restrict mean,
                     const float* __restrict a, const float* __restrict b, const float* __restrict d, float slope) {
  if constexpr (kVectorLanes<kL>) {
    constexpr int J = kL / 4;
    Vec4 vm[J], va[J], vb[J], vd[J];
    for (int j = 0; j < J; ++j) {
      vm[j] = load4(mean + 4 * j);
      va[j] = load4(a + 4 * j);
      vb[j] = load4(b + 4 * j);
      vd[j] = load4(d + 4 * j);
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int j = 0; j < J; ++j) {
        const int64_t i = r * kL + 4 * j;
        store4(dx + i, va[j] * active_grad4<kAct>(g, y, i, slope) + vb[j] * (load4(x + i) - vm[j]) + vd[j]);
      }
  } else {
    const int64_t L = kL > 0 ? kL : lanes;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t l = 0; l < L; ++l) {
        const int64_t i = r * L + l;
        dx[i] = a[l] * active_grad<kAct>(g[i], y, i, slope) + b[l] * (x[i] - mean[l]) + d[l];
      }
  }
}

// Scratch for one chunk task: `count` arrays of `lanes` floats (on the stack up to 16 lanes).

}  // namespace tlk::kernels::cpu::instance_norm_detail
