#include "tlk/data/resample.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "tlk/tensor/error.h"

namespace tlk::data {

// Note [Resampling convention]: as skimage.transform.resize (which nnUNet calls with mode="edge",
// anti_aliasing=False) and scipy.ndimage.zoom(grid_mode=True), voxels are cells and their centres
// are aligned: output index o samples input coordinate x = (o + 0.5) * in / out - 0.5 (no "align
// corners"). Coordinates outside [0, in - 1] take the edge ("nearest" extension). Downsampling
// samples the interpolant at those points, without an anti-aliasing filter (as nnUNet).
// nearest: index floor(x + 0.5) (scipy's order 0); linear: the two neighbours; cubic: see
// Note [Cubic B-spline]. An axis whose size does not change is copied (every interpolant here
// passes through the samples).

// Note [Cubic B-spline]: `cubic` is the interpolating cubic B-spline, scipy's order 3 (which skimage's
// resize and so nnUNet use): each line is first prefiltered (a causal and an anticausal recursive
// filter with pole sqrt(3) - 2, Unser 1999) into B-spline coefficients, which are then weighed with
// the 4-tap B-spline kernel. We chose it over Catmull-Rom so that preprocessed intensities match
// nnUNet's; it is also smoother (C2) and reproduces cubic polynomials (Catmull-Rom: quadratics).
// As scipy >= 1.6 for mode "nearest", each line is first padded with 12 copies of its edge value,
// then filtered with symmetric boundaries (the padding is constant there, so the mirror and reflect
// variants agree); the boundary's influence decays as 0.268^distance. Coordinates up to half a
// voxel outside the line (upsampling) are evaluated on the padded spline, as scipy does.
// Like skimage (clip=True), images may be clipped to their input range afterwards (the spline
// overshoots at edges).

namespace {

using Shape3 = std::array<std::int64_t, 3>;

constexpr std::int64_t kSplinePad = 12;
constexpr std::int64_t kParallelMin = 1 << 17;  // multiply-adds below which threads are not worth waking
const double kPole = std::sqrt(3.0) - 2.0;

// Per output index, `count` taps into the source line (indices into the padded coefficient line for
// cubic).
struct Taps {
  int count = 1;
  std::vector<std::int64_t> index;  // [out * count]
  std::vector<float> weight;        // [out * count]
};

Taps make_taps(std::int64_t in, std::int64_t out, Interpolation order) {
  Taps t;
  t.count = order == Interpolation::nearest ? 1 : order == Interpolation::linear ? 2 : 4;
  t.index.resize(static_cast<std::size_t>(out * t.count));
  t.weight.resize(static_cast<std::size_t>(out * t.count));
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  for (std::int64_t o = 0; o < out; ++o) {
    const double x = (static_cast<double>(o) + 0.5) * scale - 0.5;
    std::int64_t* idx = t.index.data() + o * t.count;
    float* w = t.weight.data() + o * t.count;
    if (order == Interpolation::nearest) {
      idx[0] = std::clamp<std::int64_t>(static_cast<std::int64_t>(std::floor(x + 0.5)), 0, in - 1);
      w[0] = 1.0f;
    } else if (order == Interpolation::linear) {
      const double xc = std::clamp(x, 0.0, static_cast<double>(in - 1));
      const std::int64_t i0 = static_cast<std::int64_t>(std::floor(xc));
      const double f = xc - static_cast<double>(i0);
      idx[0] = i0;
      idx[1] = std::min(i0 + 1, in - 1);
      w[0] = static_cast<float>(1.0 - f);
      w[1] = static_cast<float>(f);
    } else {
      const double xp = x + static_cast<double>(kSplinePad);
      const std::int64_t i = static_cast<std::int64_t>(std::floor(xp));
      const double f = xp - static_cast<double>(i), g = 1.0 - f;
      const double weights[4] = {g * g * g / 6.0, (4.0 - 6.0 * f * f + 3.0 * f * f * f) / 6.0,
                                 (1.0 + 3.0 * f + 3.0 * f * f - 3.0 * f * f * f) / 6.0, f * f * f / 6.0};
      const std::int64_t last = in + 2 * kSplinePad - 1;
      for (int k = 0; k < 4; ++k) {
        idx[k] = std::clamp<std::int64_t>(i - 1 + k, 0, last);
        w[k] = static_cast<float>(weights[k]);
      }
    }
  }
  return t;
}

// B-spline coefficients of `src` viewed as [outer, n, inner] along its middle axis: a new
// [outer, n + 2 * kSplinePad, inner] array (Note [Cubic B-spline]).
std::vector<float> spline_coefficients(const float* src, std::int64_t outer, std::int64_t n, std::int64_t inner) {
  const std::int64_t np = n + 2 * kSplinePad;
  std::vector<float> coef(static_cast<std::size_t>(outer * np * inner));
  const double z = kPole, gain = (1.0 - z) * (1.0 - 1.0 / z);
  // The causal filter's initial value (mirror boundary) summed over a horizon where z^k < 1e-10.
  const int horizon = static_cast<int>(std::min<std::int64_t>(np, 18));
  constexpr std::int64_t kBlock = 256;
  const std::int64_t blocks = (inner + kBlock - 1) / kBlock;
#pragma omp parallel for collapse(2) schedule(static) if (outer * np * inner > kParallelMin)
  for (std::int64_t ou = 0; ou < outer; ++ou)
    for (std::int64_t b = 0; b < blocks; ++b) {
      const std::int64_t j0 = b * kBlock, j1 = std::min(inner, j0 + kBlock), len = j1 - j0;
      const float* s = src + ou * n * inner + j0;
      float* c = coef.data() + ou * np * inner + j0;
      // Edge padding and gain.
      for (std::int64_t p = 0; p < np; ++p) {
        const std::int64_t q = std::clamp<std::int64_t>(p - kSplinePad, 0, n - 1);
        const float* sp = s + q * inner;
        float* cp = c + p * inner;
        for (std::int64_t j = 0; j < len; ++j) cp[j] = static_cast<float>(gain * sp[j]);
      }
      // Causal initial value c+[0] = sum_k z^k c[k].
      std::vector<double> acc(static_cast<std::size_t>(len), 0.0);
      double zk = 1.0;
      for (int k = 0; k < horizon; ++k, zk *= z) {
        const float* ck = c + k * inner;
        for (std::int64_t j = 0; j < len; ++j) acc[static_cast<std::size_t>(j)] += zk * ck[j];
      }
      for (std::int64_t j = 0; j < len; ++j) c[j] = static_cast<float>(acc[static_cast<std::size_t>(j)]);
      const float zf = static_cast<float>(z);
      for (std::int64_t p = 1; p < np; ++p) {
        float* cp = c + p * inner;
        const float* prev = cp - inner;
        for (std::int64_t j = 0; j < len; ++j) cp[j] += zf * prev[j];
      }
      // Anticausal: c-[N-1] = z / (z^2 - 1) (c+[N-1] + z c+[N-2]); c-[p] = z (c-[p+1] - c+[p]).
      float* cl = c + (np - 1) * inner;
      const float* cl2 = cl - inner;
      const double end_gain = z / (z * z - 1.0);
      for (std::int64_t j = 0; j < len; ++j) cl[j] = static_cast<float>(end_gain * (cl[j] + z * cl2[j]));
      for (std::int64_t p = np - 2; p >= 0; --p) {
        float* cp = c + p * inner;
        const float* next = cp + inner;
        for (std::int64_t j = 0; j < len; ++j) cp[j] = zf * (next[j] - cp[j]);
      }
    }
  return coef;
}

// One separable pass: `src` as [outer, n, inner] -> `dst` as [outer, m, inner].
void resize_axis(const float* src, float* dst, std::int64_t outer, std::int64_t n, std::int64_t m, std::int64_t inner,
                 Interpolation order) {
  const Taps taps = make_taps(n, m, order);
  std::vector<float> coef;
  std::int64_t line = n;
  if (order == Interpolation::cubic) {
    coef = spline_coefficients(src, outer, n, inner);
    src = coef.data();
    line = n + 2 * kSplinePad;
  }
  const int count = taps.count;
#pragma omp parallel for collapse(2) schedule(static) if (outer * m * inner * count > kParallelMin)
  for (std::int64_t ou = 0; ou < outer; ++ou)
    for (std::int64_t o = 0; o < m; ++o) {
      const std::int64_t* idx = taps.index.data() + o * count;
      const float* w = taps.weight.data() + o * count;
      const float* base = src + ou * line * inner;
      float* d = dst + (ou * m + o) * inner;
      if (inner == 1) {
        float sum = 0;
        for (int k = 0; k < count; ++k) sum += w[k] * base[idx[k]];
        *d = sum;
        continue;
      }
      const float* s0 = base + idx[0] * inner;
      for (std::int64_t j = 0; j < inner; ++j) d[j] = w[0] * s0[j];
      for (int k = 1; k < count; ++k) {
        const float* sk = base + idx[k] * inner;
        const float wk = w[k];
        for (std::int64_t j = 0; j < inner; ++j) d[j] += wk * sk[j];
      }
    }
}

const char* order_name(Interpolation o) {
  return o == Interpolation::nearest ? "nearest" : o == Interpolation::linear ? "linear" : "cubic";
}

void check_new_shape(const Shape3& s, const char* op) {
  for (std::int64_t v : s)
    check(v >= 1, "{}: target shape [{}, {}, {}] must be at least 1 per axis", op, s[0], s[1], s[2]);
}

}  // namespace

Shape3 shape_for_spacing(const Shape3& shape, const std::array<double, 3>& old_spacing,
                         const std::array<double, 3>& new_spacing) {
  Shape3 out{};
  for (std::size_t a = 0; a < 3; ++a) {
    check(old_spacing[a] > 0 && new_spacing[a] > 0 && std::isfinite(old_spacing[a]) && std::isfinite(new_spacing[a]),
          "shape_for_spacing: spacings must be positive (old [{}, {}, {}], new [{}, {}, {}])", old_spacing[0],
          old_spacing[1], old_spacing[2], new_spacing[0], new_spacing[1], new_spacing[2]);
    // numpy's round (half to even, the default floating-point rounding mode) of (old / new) * shape,
    // computed in nnUNet's order so that ties round alike.
    const double v = std::nearbyint(old_spacing[a] / new_spacing[a] * static_cast<double>(shape[a]));
    out[a] = std::max<std::int64_t>(1, static_cast<std::int64_t>(v));
  }
  return out;
}

std::optional<int> anisotropic_axis(const std::array<double, 3>& old_spacing, const std::array<double, 3>& new_spacing,
                                    double threshold) {
  auto lowres = [&](const std::array<double, 3>& s) -> std::optional<std::optional<int>> {
    const double hi = std::max({s[0], s[1], s[2]}), lo = std::min({s[0], s[1], s[2]});
    if (!(lo > 0) || !(hi / lo > threshold)) return std::nullopt;  // not anisotropic
    int count = 0, axis = -1;
    for (int a = 0; a < 3; ++a)
      if (s[static_cast<std::size_t>(a)] == hi) {
        ++count;
        axis = a;
      }
    // nnUNet: two (or three) axes at the largest spacing -> no separate axis.
    return count == 1 ? std::optional<int>(axis) : std::optional<int>();
  };
  if (auto r = lowres(old_spacing)) return *r;
  if (auto r = lowres(new_spacing)) return *r;
  return std::nullopt;
}

std::array<Interpolation, 3> axis_orders(const std::array<double, 3>& old_spacing,
                                         const std::array<double, 3>& new_spacing, Interpolation order,
                                         const ResampleOptions& options) {
  std::array<Interpolation, 3> orders{order, order, order};
  if (auto axis = anisotropic_axis(old_spacing, new_spacing, options.anisotropy_threshold))
    orders[static_cast<std::size_t>(*axis)] = options.lowres_axis_order;
  return orders;
}

Tensor resize_image(const Tensor& image, const Shape3& new_shape, const std::array<Interpolation, 3>& orders,
                    bool clip) {
  check(image.dim() == 3 || image.dim() == 4,
        "resize_image: expected an f32 [C, D, H, W] or [D, H, W] image, got shape {}", image.shape().str());
  check(image.dtype() == DType::f32, "resize_image: expected an f32 image, got {} (shape {})",
        dtype_name(image.dtype()), image.shape().str());
  check_new_shape(new_shape, "resize_image");
  const int lead = image.dim() - 3;
  const std::int64_t channels = lead ? image.shape()[0] : 1;
  Shape3 cur{image.shape()[lead], image.shape()[lead + 1], image.shape()[lead + 2]};
  for (std::int64_t v : cur) check(v >= 1, "resize_image: image of shape {} is empty", image.shape().str());
  Tensor x = image.to(Layout::plain).contiguous();
  Shape out_shape = image.shape();
  for (int a = 0; a < 3; ++a) out_shape[lead + a] = new_shape[static_cast<std::size_t>(a)];

  std::vector<float> lo(static_cast<std::size_t>(channels), 0.f), hi(static_cast<std::size_t>(channels), 0.f);
  const bool any_cubic = std::find(orders.begin(), orders.end(), Interpolation::cubic) != orders.end();
  if (clip && any_cubic) {
    const std::int64_t per = cur[0] * cur[1] * cur[2];
    const float* p = x.data<float>();
    for (std::int64_t c = 0; c < channels; ++c) {
      float mn = std::numeric_limits<float>::infinity(), mx = -mn;
#pragma omp parallel for reduction(min : mn) reduction(max : mx) if (per > kParallelMin)
      for (std::int64_t i = 0; i < per; ++i) {
        mn = std::min(mn, p[c * per + i]);
        mx = std::max(mx, p[c * per + i]);
      }
      lo[static_cast<std::size_t>(c)] = mn;
      hi[static_cast<std::size_t>(c)] = mx;
    }
  }

  // Axes that shrink most go first (less work for the later passes); the result is the same tensor
  // product whatever the order.
  std::array<int, 3> axes{0, 1, 2};
  std::stable_sort(axes.begin(), axes.end(), [&](int a, int b) {
    return static_cast<double>(new_shape[static_cast<std::size_t>(a)]) /
               static_cast<double>(cur[static_cast<std::size_t>(a)]) <
           static_cast<double>(new_shape[static_cast<std::size_t>(b)]) /
               static_cast<double>(cur[static_cast<std::size_t>(b)]);
  });
  for (int a : axes) {
    const std::int64_t n = cur[static_cast<std::size_t>(a)], m = new_shape[static_cast<std::size_t>(a)];
    if (n == m) continue;
    std::int64_t outer = channels, inner = 1;
    for (int b = 0; b < a; ++b) outer *= cur[static_cast<std::size_t>(b)];
    for (int b = a + 1; b < 3; ++b) inner *= cur[static_cast<std::size_t>(b)];
    Shape next = x.shape();
    next[lead + a] = m;
    Tensor y = Tensor::empty(next);
    resize_axis(x.data<float>(), y.data<float>(), outer, n, m, inner, orders[static_cast<std::size_t>(a)]);
    x = y;
    cur[static_cast<std::size_t>(a)] = m;
  }
  if (x.is_same(image) || x.impl().storage == image.impl().storage) x = x.clone();
  if (clip && any_cubic) {
    const std::int64_t per = new_shape[0] * new_shape[1] * new_shape[2];
    float* p = x.data<float>();
#pragma omp parallel for collapse(2) if (channels * per > kParallelMin)
    for (std::int64_t c = 0; c < channels; ++c)
      for (std::int64_t i = 0; i < per; ++i)
        p[c * per + i] = std::clamp(p[c * per + i], lo[static_cast<std::size_t>(c)], hi[static_cast<std::size_t>(c)]);
  }
  check(x.shape() == out_shape, "resize_image: internal shape mismatch");
  return x;
}

// Note [Labels on one-hot]: nnUNet resamples labels with order 1 on their one-hot encoding. Linear
// interpolation of the indicator of label L at a voxel is the sum of the trilinear weights of the
// neighbours that hold L, so we accumulate those weights per label over the (at most 8) neighbours
// and keep the label with the largest total: the same as interpolating every indicator volume and
// taking the argmax, without C full-size volumes. nnUNet instead thresholds each indicator at 0.5,
// later labels overwriting earlier ones; ties here go to the larger label, matching that order.
// With two labels both rules agree; with more, argmax never leaves a voxel unlabelled.
Tensor resize_labels(const Tensor& labels, const Shape3& new_shape, const std::array<Interpolation, 3>& orders) {
  check(labels.dim() == 3, "resize_labels: expected a u8 label map [D, H, W], got shape {}", labels.shape().str());
  check(labels.dtype() == DType::u8, "resize_labels: expected u8 labels, got {} (shape {})", dtype_name(labels.dtype()),
        labels.shape().str());
  check_new_shape(new_shape, "resize_labels");
  for (Interpolation o : orders)
    check(o != Interpolation::cubic, "resize_labels: labels take nearest or linear (on one-hot), not {}",
          order_name(o));
  const Shape3 in{labels.shape()[0], labels.shape()[1], labels.shape()[2]};
  for (std::int64_t v : in) check(v >= 1, "resize_labels: label map of shape {} is empty", labels.shape().str());
  const Tensor src = labels.to(Layout::plain).contiguous();
  const std::uint8_t* s = src.data<std::uint8_t>();
  Tensor out = Tensor::empty({new_shape[0], new_shape[1], new_shape[2]}, TensorOptions{DType::u8});
  std::uint8_t* d = out.data<std::uint8_t>();
  // Two taps per axis; nearest uses one with weight 1 and repeats it with weight 0.
  std::array<Taps, 3> taps;
  for (std::size_t a = 0; a < 3; ++a) {
    const Taps t = make_taps(in[a], new_shape[a], orders[a]);
    if (t.count == 2) {
      taps[a] = t;
      continue;
    }
    taps[a].count = 2;
    for (std::int64_t o = 0; o < new_shape[a]; ++o) {
      taps[a].index.insert(taps[a].index.end(),
                           {t.index[static_cast<std::size_t>(o)], t.index[static_cast<std::size_t>(o)]});
      taps[a].weight.insert(taps[a].weight.end(), {1.0f, 0.0f});
    }
  }
  const std::int64_t H = in[1], W = in[2], OH = new_shape[1], OW = new_shape[2];
#pragma omp parallel for collapse(2) schedule(static) if (new_shape[0] * OH * OW > kParallelMin / 8)
  for (std::int64_t z = 0; z < new_shape[0]; ++z)
    for (std::int64_t y = 0; y < OH; ++y) {
      const std::int64_t* iz = taps[0].index.data() + 2 * z;
      const float* wz = taps[0].weight.data() + 2 * z;
      const std::int64_t* iy = taps[1].index.data() + 2 * y;
      const float* wy = taps[1].weight.data() + 2 * y;
      for (std::int64_t x = 0; x < OW; ++x) {
        const std::int64_t* ix = taps[2].index.data() + 2 * x;
        const float* wx = taps[2].weight.data() + 2 * x;
        std::uint8_t nb[8];
        float nw[8];
        int k8 = 0;
        for (int a = 0; a < 2; ++a)
          for (int b = 0; b < 2; ++b) {
            const std::uint8_t* row = s + (iz[a] * H + iy[b]) * W;
            const float wzy = wz[a] * wy[b];
            nb[k8] = row[ix[0]];
            nw[k8++] = wzy * wx[0];
            nb[k8] = row[ix[1]];
            nw[k8++] = wzy * wx[1];
          }
        // Most voxels lie inside one label: nothing to weigh.
        if (nb[0] == nb[1] && nb[0] == nb[2] && nb[0] == nb[3] && nb[0] == nb[4] && nb[0] == nb[5] && nb[0] == nb[6] &&
            nb[0] == nb[7]) {
          d[(z * OH + y) * OW + x] = nb[0];
          continue;
        }
        std::uint8_t lab[8];
        float wt[8];
        int n = 0;
        for (int e = 0; e < 8; ++e) {
          if (nw[e] <= 0.0f) continue;
          int k = 0;
          while (k < n && lab[k] != nb[e]) ++k;
          if (k == n) {
            lab[n] = nb[e];
            wt[n++] = 0.0f;
          }
          wt[k] += nw[e];
        }
        std::uint8_t best = lab[0];
        float best_w = wt[0];
        for (int k = 1; k < n; ++k)
          if (wt[k] > best_w || (wt[k] == best_w && lab[k] > best)) {
            best = lab[k];
            best_w = wt[k];
          }
        d[(z * OH + y) * OW + x] = best;
      }
    }
  return out;
}

Tensor resample_image(const Tensor& image, const Shape3& new_shape, const std::array<double, 3>& old_spacing,
                      const std::array<double, 3>& new_spacing, const ResampleOptions& options) {
  return resize_image(image, new_shape, axis_orders(old_spacing, new_spacing, options.image_order, options),
                      options.clip_to_input_range);
}

Tensor resample_labels(const Tensor& labels, const Shape3& new_shape, const std::array<double, 3>& old_spacing,
                       const std::array<double, 3>& new_spacing, const ResampleOptions& options) {
  return resize_labels(labels, new_shape, axis_orders(old_spacing, new_spacing, options.label_order, options));
}

}  // namespace tlk::data
