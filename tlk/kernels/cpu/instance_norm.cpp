#include "tlk/kernels/cpu/instance_norm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "tlk/kernels/cpu/eltwise.h"
#include "tlk/kernels/cpu/instance_norm_lanes.h"
#include "tlk/kernels/cpu/same_layout.h"
#include "tlk/tensor/blocked_format.h"
#include "tlk/tensor/error.h"

namespace tlk::kernels::cpu {

// Note [Instance norm statistics]: one pass over memory, numerically safe in f32. The data of each
// (n, c) is cut into chunks of about 4096 floats (L1-sized). Within a chunk, per lane, a first loop
// sums the values in f32 to get a center c (the chunk's approximate mean); a second loop, over data
// still in cache, accumulates t = Σ(x - c) and q = Σ(x - c)² in f32. Those are sums of centered
// values, small and (for q) all positive, so f32 keeps them accurate whatever the data's offset; no
// E[x²] - E[x]² cancellation happens anywhere. The chunks then combine exactly, in double:
//   μ = Σ_k (n_k c_k + t_k) / S,   M2 = Σ_k [q_k + 2 (c_k - μ) t_k + n_k (c_k - μ)²],   var = M2 / S
// (the identity Σ(x - μ)² = Σ(x - c + c - μ)² per chunk). The normalisation then computes
// ((x - μ_hi) - μ_lo) * scale + shift, where μ_hi + μ_lo is the double mean split into two floats:
// x - μ_hi is exact when x is near μ (Sterbenz), so inputs with a large offset (|μ| >> σ) lose no
// more than f32 rounding of the result. Backward sums (Σ g, Σ g (x - μ)) use the same f32 chunk,
// double total scheme. Results agree with the f64 reference to ~1e-6 relative.
//
// Note [Instance norm + leaky ReLU fusion]: with InstanceNormOptions::negative_slope set, the forward
// applies y = z > 0 ? z : slope * z to the normalised z in the same pass (no second sweep over memory,
// no z tensor). The backward needs f'(z) = z > 0 ? 1 : slope, and reads it from the saved output y:
// for slope > 0, y and z have the same sign; for slope == 0 (ReLU), y > 0 exactly where z > 0 and
// y == 0 (possibly -0) where z <= 0, where f' = slope = 0 as in the reference's convention at 0. So
// `y > 0 ? g : slope * g` is the exact derivative for every slope >= 0 (a negative slope flips the
// sign and is refused). The normalisation's own backward needs x̂ = (x - μ) inv_std, which y cannot
// give (ReLU loses the negative half, and gamma may be 0), so the fused op keeps the input x, as the
// unfused instance norm does, and y, which the next convolution keeps anyway (the unfused leaky_relu
// keeps y too: Note [Rectifier backward from the output] in eltwise.cpp). What fusion saves is one
// read and one write sweep over memory in the forward, and the z tensor. The backward computes
// g' = f'(z) g on the fly in both of its passes (reading y twice costs what a separate activation
// backward would).

namespace {

using std::int64_t;

constexpr int64_t kChunkFloats = 4096;

template <int N>
using Lanes = std::integral_constant<int, N>;

// The channel block (8 or 16) of a blocked tensor in a format the loops read (oneDNN's dense nC..8c /
// nC..16c layout), else 0.
int64_t block_of(const Tensor& t) {
  using tag = dnnl::memory::format_tag;
  const dnnl::memory::dims dims(t.shape().begin(), t.shape().end());
  for (int64_t block : {8, 16}) {
    tag format;
    switch (t.dim()) {
      case 3:
        format = block == 8 ? tag::nCw8c : tag::nCw16c;
        break;
      case 4:
        format = block == 8 ? tag::nChw8c : tag::nChw16c;
        break;
      case 5:
        format = block == 8 ? tag::nCdhw8c : tag::nCdhw16c;
        break;
      default:
        return 0;
    }
    if (t.blocked_format().desc() == dnnl::memory::desc(dims, dnnl::memory::data_type::f32, format)) return block;
  }
  return 0;
}

// A tensor [N, C, S...] in a layout the loops read, seen as `units` runs of S positions times L lanes:
// element (unit u, position s, lane l) is at (u * S + s) * L + l. Plain: a unit per (n, c), one lane
// (Note [Plain chunks as lanes] below); channels-last: a unit per n, L = C lanes; blocked: a unit per
// (n, channel block), L = block lanes. Per-channel arrays are indexed n * Cp + c, Cp counting the
// padding lanes of a blocked layout.
struct Geometry {
  int64_t N = 0, C = 0, S = 0, L = 1, Cp = 0;
  bool plain = true;

  static Geometry of(const Tensor& x) {
    Geometry g;
    g.N = x.shape()[0];
    g.C = x.shape()[1];
    g.S = x.numel() / (g.N * g.C);
    g.Cp = g.C;
    switch (x.layout()) {
      case Layout::blocked:
        g.plain = false;
        g.L = block_of(x);
        g.Cp = (g.C + g.L - 1) / g.L * g.L;
        break;
      case Layout::channels_last:
        g.plain = false;
        g.L = g.C;
        break;
      case Layout::plain:
        break;
    }
    return g;
  }
  int64_t units() const { return plain ? N * C : N * (Cp / L); }
  int64_t n_of(int64_t u) const { return plain ? u / C : u / (Cp / L); }
  int64_t c0_of(int64_t u) const { return plain ? u % C : u % (Cp / L) * L; }
  int64_t rows_per_chunk() const { return std::max<int64_t>(1, kChunkFloats / L); }
  int64_t chunks() const { return (S + rows_per_chunk() - 1) / rows_per_chunk(); }
  int64_t rows_in(int64_t k) const { return std::min(rows_per_chunk(), S - k * rows_per_chunk()); }
  std::size_t chunk_index(int64_t n, int64_t c, int64_t k) const {
    return static_cast<std::size_t>((n * Cp + c) * chunks() + k);
  }
};

// Calls fn(unit, chunk, first position, positions) for every chunk of every unit, in parallel.
template <class Fn>
void for_each_chunk(const Geometry& g, Fn&& fn) {
  const int64_t K = g.chunks(), rows = g.rows_per_chunk(), tasks = g.units() * K;
#pragma omp parallel for schedule(static) if (tasks > 1 && g.N * g.Cp * g.S > 32768)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t u = task / K, k = task % K;
    fn(u, k, k * rows, g.rows_in(k));
  }
}

// Note [Plain chunks as lanes]: a plain chunk (contiguous values of one channel) is processed as rows of
// 16 "virtual lanes" that share one channel's coefficients, plus a tail of fewer than 16 values as one
// lane: the same lane kernels then serve all layouts and vectorise without reassociating float sums.
// Lane kernels below take kL lanes (kL == 0: `lanes` at run time, channels-last).
template <class Fn>
void with_lanes(int64_t lanes, Fn&& fn) {
  switch (lanes) {
    case 1:
      return fn(Lanes<1>{});
    case 8:
      return fn(Lanes<8>{});
    case 16:
      return fn(Lanes<16>{});
    default:
      return fn(Lanes<0>{});
  }
}

using namespace instance_norm_detail;  // the lane loops (instance_norm_lanes.h)

class Scratch {
 public:
  Scratch(int64_t lanes, int count) : lanes_(std::max<int64_t>(lanes, 16)) {
    if (lanes_ > 16 || count > kStackArrays) heap_.resize(static_cast<std::size_t>(lanes_ * count));
  }
  float* operator[](int i) { return (heap_.empty() ? stack_ : heap_.data()) + i * lanes_; }

 private:
  static constexpr int kStackArrays = 3;
  int64_t lanes_;
  float stack_[16 * kStackArrays];
  std::vector<float> heap_;
};

// Sixteen copies of a plain unit's coefficient (Note [Plain chunks as lanes]).
struct Broadcast {
  float v[16];
  explicit Broadcast(float value) { std::fill(v, v + 16, value); }
};

void check_per_channel(const char* op, const Tensor& t, const char* what, const Shape& x) {
  if (!t.defined()) return;
  f32_cpu(t, op, what);
  check(t.shape() == Shape{x[1]}, "{}: {} has shape {}, expected [{}] (one per channel of input {})", op, what,
        t.shape().str(), x[1], x.str());
}

void check_slope(const char* op, const InstanceNormOptions& opt) {
  if (!opt.negative_slope) return;
  const double s = *opt.negative_slope;
  check(std::isfinite(s) && s >= 0.0,
        "{}: the fused leaky ReLU needs a finite negative_slope >= 0 (its backward reads the output's sign), got {}",
        op, s);
}

// `input` in a layout the loops read: a dense layout, reordered to plain (counted) when it is a blocked
// format other than nC..8c / nC..16c.
Tensor readable(const Tensor& input) {
  Tensor x = dense(input.detach());
  if (x.layout() == Layout::blocked && block_of(x) == 0) x = x.to(Layout::plain);
  return x;
}

// A per-(n, c) vector read from a [N, C] statistics tensor.
std::vector<float> per_group(const Tensor& t, const char* op, const char* what, const Geometry& g) {
  Tensor c = f32_cpu(t, op, what).contiguous();
  check(c.numel() == g.N * g.C, "{}: expected {} saved statistics ([{}, {}]), got {} of shape {}", op, g.N * g.C, g.N,
        g.C, what, c.shape().str());
  return std::vector<float>(c.data<float>(), c.data<float>() + c.numel());
}

// Runs fn(lanes tag, offset of the first float, rows, lanes, part) over the chunk of `rows` positions from
// r0 of unit u: one part, or for a plain chunk its 16-lane rows (part 0) and its tail as one lane
// (part 1) (Note [Plain chunks as lanes]).
template <class Fn>
void run_chunk(const Geometry& g, int64_t u, int64_t r0, int64_t rows, Fn&& fn) {
  const int64_t base = (u * g.S + r0) * g.L;
  if (!g.plain) {
    with_lanes(g.L, [&](auto lanes) { fn(lanes, base, rows, g.L, /*part=*/0); });
    return;
  }
  const int64_t body = rows / 16;
  if (body > 0) fn(Lanes<16>{}, base, body, 16, 0);
  if (rows % 16) fn(Lanes<1>{}, base + body * 16, rows % 16, 1, 1);
}

}  // namespace

bool instance_norm_supported(const Tensor& input, const Tensor& weight, const Tensor& bias) {
  auto f32_cpu_ok = [](const Tensor& t) { return t.dtype() == DType::f32 && t.device().is_cpu(); };
  if (!input.defined() || !f32_cpu_ok(input) || input.dim() < 3 || input.numel() == 0) return false;
  for (const Tensor* t : {&weight, &bias})
    if (t->defined() && (!f32_cpu_ok(*t) || t->shape() != Shape{input.shape()[1]})) return false;
  return true;
}

ref::NormForward instance_norm_forward(const Tensor& input, const Tensor& weight_in, const Tensor& bias_in,
                                       const InstanceNormOptions& opt) {
  const char* op = "instance_norm";
  f32_cpu(input, op, "input");
  check(input.dim() >= 3, "{}: expected an input [N, C, D, H, W] (at least 3-D), got {}-D with shape {}", op,
        input.dim(), input.shape().str());
  check(input.numel() > 0, "{}: input of shape {} is empty", op, input.shape().str());
  check_per_channel(op, weight_in, "weight", input.shape());
  check_per_channel(op, bias_in, "bias", input.shape());
  check(std::isfinite(opt.eps) && opt.eps >= 0.0, "{}: eps must be a finite value >= 0, got {}", op, opt.eps);
  check_slope(op, opt);

  const Tensor x = readable(input);
  const Geometry g = Geometry::of(x);
  const float* px = raw_f32(x);
  const int64_t K = g.chunks();

  // Statistics: f32 moments per chunk, combined in double (Note [Instance norm statistics]).
  const std::size_t slots = static_cast<std::size_t>(g.N * g.Cp * K);
  std::vector<double> center(slots), tsum(slots), qsum(slots);
  for_each_chunk(g, [&](int64_t u, int64_t k, int64_t r0, int64_t rows) {
    const int64_t n = g.n_of(u), c0 = g.c0_of(u);
    Scratch s(g.L, 3);
    double pc = 0.0, pt = 0.0, pq = 0.0;  // a plain chunk's parts, folded around the first part's center
    bool first = true;
    run_chunk(g, u, r0, rows, [&](auto lanes, int64_t base, int64_t nrows, int64_t L, int) {
      lane_moments<decltype(lanes)::value>(px + base, nrows, L, s[0], s[1], s[2]);
      if (!g.plain) {
        for (int64_t l = 0; l < L; ++l) {
          const std::size_t i = g.chunk_index(n, c0 + l, k);
          center[i] = s[0][l];
          tsum[i] = s[1][l];
          qsum[i] = s[2][l];
        }
        return;
      }
      for (int64_t l = 0; l < L; ++l) {
        if (first) {
          pc = s[0][0];
          first = false;
        }
        const double dc = static_cast<double>(s[0][l]) - pc, m = static_cast<double>(nrows);
        pq += s[2][l] + 2.0 * dc * s[1][l] + m * dc * dc;
        pt += s[1][l] + m * dc;
      }
    });
    if (g.plain) {
      const std::size_t i = g.chunk_index(n, c0, k);
      center[i] = pc;
      tsum[i] = pt;
      qsum[i] = pq;
    }
  });

  const Shape stats_shape{g.N, g.C};
  ref::NormForward out{Tensor(), Tensor::empty(stats_shape), Tensor::empty(stats_shape)};
  float *pmean = out.mean.data<float>(), *pinv = out.inv_std.data<float>();
  Tensor w = weight_in.defined() ? weight_in.detach().contiguous() : Tensor();
  Tensor b = bias_in.defined() ? bias_in.detach().contiguous() : Tensor();
  const float* pw = w.defined() ? w.data<float>() : nullptr;
  const float* pb = b.defined() ? b.data<float>() : nullptr;
  Coefficients co(static_cast<std::size_t>(g.N * g.Cp));
  const double S = static_cast<double>(g.S);
#pragma omp parallel for if (g.N * g.C * K > 4096)
  for (int64_t nc = 0; nc < g.N * g.C; ++nc) {
    const int64_t n = nc / g.C, c = nc % g.C;
    double total = 0.0;
    for (int64_t k = 0; k < K; ++k) {
      const std::size_t i = g.chunk_index(n, c, k);
      total += static_cast<double>(g.rows_in(k)) * center[i] + tsum[i];
    }
    const double mu = total / S;
    double m2 = 0.0;
    for (int64_t k = 0; k < K; ++k) {
      const std::size_t i = g.chunk_index(n, c, k);
      const double dc = center[i] - mu;
      m2 += qsum[i] + 2.0 * dc * tsum[i] + static_cast<double>(g.rows_in(k)) * dc * dc;
    }
    const double inv_std = 1.0 / std::sqrt(std::max(m2 / S, 0.0) + opt.eps);
    pmean[nc] = static_cast<float>(mu);
    pinv[nc] = static_cast<float>(inv_std);
    const std::size_t j = static_cast<std::size_t>(n * g.Cp + c);
    co.mean_hi[j] = static_cast<float>(mu);
    co.mean_lo[j] = static_cast<float>(mu - static_cast<double>(co.mean_hi[j]));
    co.a[j] = static_cast<float>(inv_std * (pw ? pw[c] : 1.0));
    co.b[j] = pb ? pb[c] : 0.0f;
  }

  // Normalise (+ the fused activation) in the input's layout.
  Tensor y = empty_in_layout_of(x);
  float* py = raw_f32(y);
  const bool act = opt.negative_slope.has_value();
  const float slope = act ? static_cast<float>(*opt.negative_slope) : 0.0f;
  for_each_chunk(g, [&](int64_t u, int64_t, int64_t r0, int64_t rows) {
    const std::size_t j = static_cast<std::size_t>(g.n_of(u) * g.Cp + g.c0_of(u));
    const Broadcast hi(co.mean_hi[j]), lo(co.mean_lo[j]), a(co.a[j]), b(co.b[j]);
    run_chunk(g, u, r0, rows, [&](auto lanes, int64_t base, int64_t nrows, int64_t L, int) {
      constexpr int kL = decltype(lanes)::value;
      const float *h = g.plain ? hi.v : &co.mean_hi[j], *l = g.plain ? lo.v : &co.mean_lo[j];
      const float *pa = g.plain ? a.v : &co.a[j], *pbb = g.plain ? b.v : &co.b[j];
      if (act)
        lane_normalize<kL, true>(px + base, py + base, nrows, L, h, l, pa, pbb, slope);
      else
        lane_normalize<kL, false>(px + base, py + base, nrows, L, h, l, pa, pbb, slope);
    });
  });
  // A blocked format the loops do not read came in: the output goes back to it (counted reorder).
  out.output = input.layout() == Layout::blocked && x.layout() != Layout::blocked ? y.to(input.blocked_format()) : y;
  return out;
}

ref::NormGrads instance_norm_backward(const Tensor& grad_output, const Tensor& input, const Tensor& weight_in,
                                      const Tensor& mean_in, const Tensor& inv_std_in, const InstanceNormOptions& opt,
                                      const Tensor& output) {
  const char* op = "instance_norm backward";
  f32_cpu(input, op, "input");
  f32_cpu(grad_output, op, "grad_output");
  check(input.dim() >= 3 && input.numel() > 0,
        "{}: expected the saved input [N, C, D, H, W] (at least 3-D, not empty), got shape {}", op,
        input.shape().str());
  check(grad_output.shape() == input.shape(), "{}: grad_output has shape {}, expected the input's shape {}", op,
        grad_output.shape().str(), input.shape().str());
  check_per_channel(op, weight_in, "weight", input.shape());
  check_slope(op, opt);
  const bool act = opt.negative_slope.has_value();
  if (act) {
    f32_cpu(output, op, "output (the fused forward's, needed for the leaky ReLU's derivative)");
    check(output.shape() == input.shape(), "{}: output has shape {}, expected the input's shape {}", op,
          output.shape().str(), input.shape().str());
  }

  const Tensor x = readable(input);
  const Geometry g = Geometry::of(x);
  const std::vector<float> mean = per_group(mean_in, op, "mean", g), inv_std = per_group(inv_std_in, op, "inv_std", g);
  const Tensor gy = in_layout_of(grad_output.detach(), x);
  const Tensor y = act ? in_layout_of(output.detach(), x) : Tensor();
  const float *px = raw_f32(x), *pg = raw_f32(gy), *py = act ? raw_f32(y) : nullptr;
  const float slope = act ? static_cast<float>(*opt.negative_slope) : 0.0f;
  const int64_t K = g.chunks();

  // Per-(n, c) mean in the lanes' arrangement (zero on padding lanes).
  Coefficients co(static_cast<std::size_t>(g.N * g.Cp));
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t c = 0; c < g.C; ++c)
      co.mean_hi[static_cast<std::size_t>(n * g.Cp + c)] = mean[static_cast<std::size_t>(n * g.C + c)];

  // Pass 1: Σ g' and Σ g' (x - mean) per chunk, in f32 lanes, kept in double.
  const std::size_t slots = static_cast<std::size_t>(g.N * g.Cp * K);
  std::vector<double> sum_g(slots, 0.0), sum_gd(slots, 0.0);
  for_each_chunk(g, [&](int64_t u, int64_t k, int64_t r0, int64_t rows) {
    const int64_t n = g.n_of(u), c0 = g.c0_of(u);
    const std::size_t j = static_cast<std::size_t>(n * g.Cp + c0);
    const Broadcast m(co.mean_hi[j]);
    Scratch s(g.L, 2);
    run_chunk(g, u, r0, rows, [&](auto lanes, int64_t base, int64_t nrows, int64_t L, int) {
      constexpr int kL = decltype(lanes)::value;
      const float* pm = g.plain ? m.v : &co.mean_hi[j];
      const float* yb = py ? py + base : nullptr;
      if (act)
        lane_grad_sums<kL, true>(pg + base, yb, px + base, nrows, L, pm, slope, s[0], s[1]);
      else
        lane_grad_sums<kL, false>(pg + base, yb, px + base, nrows, L, pm, slope, s[0], s[1]);
      for (int64_t l = 0; l < L; ++l) {
        const std::size_t i = g.chunk_index(n, g.plain ? c0 : c0 + l, k);
        sum_g[i] += s[0][l];  // plain: its 16 lanes and tail add into the chunk's slot
        sum_gd[i] += s[1][l];
      }
    });
  });

  // Coefficients of dx = a g' + b (x - mean) + d (Note [Normalisation backward] in kernels/ref/norm.cpp),
  // and the weight and bias gradients.
  Tensor w = weight_in.defined() ? weight_in.detach().contiguous() : Tensor();
  const float* pw = w.defined() ? w.data<float>() : nullptr;
  const double S = static_cast<double>(g.S);
  std::vector<double> dgamma_parts(static_cast<std::size_t>(g.N * g.C)), dbeta_parts(dgamma_parts.size());
  for (int64_t nc = 0; nc < g.N * g.C; ++nc) {
    const int64_t n = nc / g.C, c = nc % g.C;
    double sg = 0.0, sgd = 0.0;
    for (int64_t k = 0; k < K; ++k) {
      sg += sum_g[g.chunk_index(n, c, k)];
      sgd += sum_gd[g.chunk_index(n, c, k)];
    }
    const double r = inv_std[static_cast<std::size_t>(nc)], gamma = pw ? pw[c] : 1.0;
    const std::size_t j = static_cast<std::size_t>(n * g.Cp + c);
    co.a[j] = static_cast<float>(gamma * r);
    co.b[j] = static_cast<float>(-gamma * r * r * r * sgd / S);
    co.d[j] = static_cast<float>(-gamma * r * sg / S);
    dgamma_parts[static_cast<std::size_t>(nc)] = r * sgd;
    dbeta_parts[static_cast<std::size_t>(nc)] = sg;
  }
  ref::NormGrads out{Tensor(), Tensor::empty({g.C}), Tensor::empty({g.C})};
  for (int64_t c = 0; c < g.C; ++c) {
    double dg = 0.0, db = 0.0;
    for (int64_t n = 0; n < g.N; ++n) {
      dg += dgamma_parts[static_cast<std::size_t>(n * g.C + c)];
      db += dbeta_parts[static_cast<std::size_t>(n * g.C + c)];
    }
    out.weight.data<float>()[c] = static_cast<float>(dg);
    out.bias.data<float>()[c] = static_cast<float>(db);
  }

  // Pass 2: the input gradient, in the input's layout (padding lanes: all coefficients zero).
  Tensor dx = empty_in_layout_of(x);
  float* pdx = raw_f32(dx);
  for_each_chunk(g, [&](int64_t u, int64_t, int64_t r0, int64_t rows) {
    const std::size_t j = static_cast<std::size_t>(g.n_of(u) * g.Cp + g.c0_of(u));
    const Broadcast m(co.mean_hi[j]), a(co.a[j]), b(co.b[j]), d(co.d[j]);
    run_chunk(g, u, r0, rows, [&](auto lanes, int64_t base, int64_t nrows, int64_t L, int) {
      constexpr int kL = decltype(lanes)::value;
      const float *pm = g.plain ? m.v : &co.mean_hi[j], *pa = g.plain ? a.v : &co.a[j];
      const float *pb = g.plain ? b.v : &co.b[j], *pd = g.plain ? d.v : &co.d[j];
      const float* yb = py ? py + base : nullptr;
      if (act)
        lane_grad_input<kL, true>(pg + base, yb, px + base, pdx + base, nrows, L, pm, pa, pb, pd, slope);
      else
        lane_grad_input<kL, false>(pg + base, yb, px + base, pdx + base, nrows, L, pm, pa, pb, pd, slope);
    });
  });
  out.input = input.layout() == Layout::blocked && x.layout() != Layout::blocked ? dx.to(input.blocked_format()) : dx;
  return out;
}

}  // namespace tlk::kernels::cpu
