#include "tlk/data/intensity_transforms.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tlk/data/channel_statistics.h"
#include "tlk/kernels/augment_voxel.h"
#include "tlk/tensor/error.h"

namespace tlk::data {
namespace {

/// A contiguous f32 CPU image [C, D, H, W] viewed as channels of slices of planes.
struct Volume {
  float* data = nullptr;
  std::int64_t channels = 0, depth = 0, height = 0, width = 0;
  std::int64_t plane() const { return height * width; }
  std::int64_t voxels() const { return depth * height * width; }
  float* channel(std::int64_t c) const { return data + c * voxels(); }
};

/// Checks the image; converts it (replacing the handle) when it is not a contiguous f32 CPU tensor.
Volume prepare(const char* op, Tensor& image) {
  check(image.defined(), "{}: the image is undefined", op);
  check(image.dim() == 4, "{}: expected an image [C, D, H, W], got shape {}", op, image.shape().str());
  check(image.device().is_cpu(), "{}: expected a CPU image, got one on {}", op, image.device().str());
  if (image.dtype() != DType::f32 || image.layout() != Layout::plain || !image.is_contiguous())
    image = image.to(Layout::plain).to(DType::f32).contiguous();
  Volume v;
  v.data = image.data<float>();
  v.channels = image.size(0);
  v.depth = image.size(1);
  v.height = image.size(2);
  v.width = image.size(3);
  return v;
}

/// Checks that a draw made for `drawn` channels is applied to an image with that many.
void check_channels(const char* op, const Volume& v, std::size_t drawn) {
  check(static_cast<std::size_t>(v.channels) == drawn, "{}: the draw was made for {} channels, the image has {}", op,
        drawn, v.channels);
}

int thread_count(int requested) { return requested > 0 ? requested : omp_get_max_threads(); }

/// Note [Split-range factors].
double split_range_draw(const std::array<double, 2>& range, Generator& gen) {
  if (range[0] < 1.0 && range[1] > 1.0)
    return gen.uniform() < 0.5 ? gen.uniform(range[0], 1.0) : gen.uniform(1.0, range[1]);
  return gen.uniform(range[0], range[1]);
}

ChannelStats channel_stats(const Volume& v, const float* x, bool with_stddev, int nt) {
  return channel_statistics(x, v.depth, v.plane(), with_stddev, nt);
}

/// x[i] = a * x[i] + b over one channel.
void affine_(float* x, std::int64_t n, float a, float b, int nt) {
#pragma omp parallel for simd schedule(static) num_threads(nt)
  for (std::int64_t i = 0; i < n; ++i) x[i] = a * x[i] + b;
}

std::vector<float> blur_kernel(double sigma) {
  const std::int64_t radius = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(3.0 * sigma)));
  std::vector<double> w(static_cast<std::size_t>(2 * radius + 1));
  double total = 0.0;
  for (std::int64_t k = -radius; k <= radius; ++k) {
    const double t = static_cast<double>(k) / sigma;
    w[static_cast<std::size_t>(k + radius)] = std::exp(-0.5 * t * t);
    total += w[static_cast<std::size_t>(k + radius)];
  }
  std::vector<float> kernel(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) kernel[i] = static_cast<float>(w[i] / total);
  return kernel;
}

/// Convolves one channel with `kernel` along `axis` (0 = D, 1 = H, 2 = W); `tmp` holds a copy.
void blur_axis(const Volume& v, float* x, int axis, const std::vector<float>& kernel, std::vector<float>& tmp, int nt) {
  const std::int64_t d = v.depth, h = v.height, w = v.width, plane = v.plane();
  const std::int64_t radius = static_cast<std::int64_t>(kernel.size() / 2);
  const std::int64_t taps = static_cast<std::int64_t>(kernel.size());
  std::memcpy(tmp.data(), x, static_cast<std::size_t>(v.voxels()) * sizeof(float));
  if (axis == 2) {
#pragma omp parallel num_threads(nt)
    {
      std::vector<float> row(static_cast<std::size_t>(w + 2 * radius));
#pragma omp for schedule(static)
      for (std::int64_t r = 0; r < d * h; ++r) {
        const float* s = tmp.data() + r * w;
        for (std::int64_t i = 0; i < radius; ++i) {
          row[static_cast<std::size_t>(i)] = s[kernels::augment::reflect_index(i - radius, w)];
          row[static_cast<std::size_t>(w + radius + i)] = s[kernels::augment::reflect_index(w + i, w)];
        }
        std::memcpy(row.data() + radius, s, static_cast<std::size_t>(w) * sizeof(float));
        float* o = x + r * w;
        std::fill(o, o + w, 0.0f);
        for (std::int64_t k = 0; k < taps; ++k) {
          const float wk = kernel[static_cast<std::size_t>(k)];
          const float* rk = row.data() + k;
#pragma omp simd
          for (std::int64_t i = 0; i < w; ++i) o[i] += wk * rk[i];
        }
      }
    }
    return;
  }
#pragma omp parallel for collapse(2) schedule(static) num_threads(nt)
  for (std::int64_t z = 0; z < d; ++z) {
    for (std::int64_t y = 0; y < h; ++y) {
      float* o = x + z * plane + y * w;
      std::fill(o, o + w, 0.0f);
      for (std::int64_t k = 0; k < taps; ++k) {
        const float wk = kernel[static_cast<std::size_t>(k)];
        const float* s = axis == 0 ? tmp.data() + kernels::augment::reflect_index(z + k - radius, d) * plane + y * w
                                   : tmp.data() + z * plane + kernels::augment::reflect_index(y + k - radius, h) * w;
#pragma omp simd
        for (std::int64_t i = 0; i < w; ++i) o[i] += wk * s[i];
      }
    }
  }
}

/// Two independent standard normal values by Marsaglia's polar method (no trigonometry; about twice
/// as fast as Generator::normal's Box-Muller, which matters for millions of noise voxels).
inline void normal_pair(Generator& gen, double& a, double& b) {
  double u, v, s;
  do {
    u = 2.0 * gen.uniform() - 1.0;
    v = 2.0 * gen.uniform() - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  const double f = std::sqrt(-2.0 * std::log(s) / s);
  a = u * f;
  b = v * f;
}

/// Seeds the noise generator of one z-slice (Note [Deterministic reductions]).
std::uint64_t slice_seed(std::uint64_t seed, std::int64_t z) {
  return seed ^ (0xD1B54A32D192ED03ULL * static_cast<std::uint64_t>(z + 1));
}

}  // namespace

GammaConstants gamma_constants(const ChannelStats& before, double gamma) {
  const double range = static_cast<double>(before.max) - static_cast<double>(before.min);
  return {before.min, static_cast<float>(1.0 / (range + 1e-7)), static_cast<float>(gamma), static_cast<float>(range)};
}

AffineConstants retained_stats_affine(const ChannelStats& before, const ChannelStats& after) {
  const double a = before.stddev / (after.stddev + 1e-8);
  return {static_cast<float>(a), static_cast<float>(before.mean - a * after.mean)};
}

std::vector<float> gaussian_kernel(double sigma) { return blur_kernel(sigma); }

std::int64_t low_resolution_extent(std::int64_t extent, double zoom) {
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::nearbyint(static_cast<double>(extent) * zoom)));
}

NoiseDraw draw_gaussian_noise(const GaussianNoiseOptions& options, std::int64_t channels, Generator& gen) {
  NoiseDraw d;
  if (!(gen.uniform() < options.probability)) return d;
  d.acted = true;
  d.sigma = gen.uniform(options.sigma_range[0], options.sigma_range[1]);
  for (std::int64_t c = 0; c < channels; ++c) d.channel_seeds.push_back(gen.next_u64());
  return d;
}

BlurDraw draw_gaussian_blur(const GaussianBlurOptions& options, std::int64_t channels, Generator& gen) {
  BlurDraw d;
  if (!(gen.uniform() < options.probability)) return d;
  d.acted = true;
  d.channel_sigmas.resize(static_cast<std::size_t>(channels));
  for (auto& channel : d.channel_sigmas) {
    if (!(gen.uniform() < options.probability_per_channel)) continue;
    std::array<double, 3> sigma{};
    sigma[0] = gen.uniform(options.sigma_range[0], options.sigma_range[1]);
    for (std::size_t a = 1; a < 3; ++a)
      sigma[a] = options.sigma_per_axis ? gen.uniform(options.sigma_range[0], options.sigma_range[1]) : sigma[0];
    channel = sigma;
  }
  return d;
}

namespace {

ChannelFactorDraw draw_factors(double probability, const std::array<double, 2>& range, std::int64_t channels,
                               Generator& gen) {
  ChannelFactorDraw d;
  if (!(gen.uniform() < probability)) return d;
  d.acted = true;
  for (std::int64_t c = 0; c < channels; ++c) d.factors.push_back(split_range_draw(range, gen));
  return d;
}

}  // namespace

ChannelFactorDraw draw_brightness(const BrightnessOptions& options, std::int64_t channels, Generator& gen) {
  return draw_factors(options.probability, options.multiplier_range, channels, gen);
}

ContrastDraw draw_contrast(const ContrastOptions& options, std::int64_t channels, Generator& gen) {
  return {draw_factors(options.probability, options.factor_range, channels, gen), options.preserve_range};
}

LowResolutionDraw draw_low_resolution(const LowResolutionOptions& options, std::int64_t channels, Generator& gen) {
  LowResolutionDraw d;
  d.ignore_axis0 = options.ignore_axis0;
  if (!(gen.uniform() < options.probability)) return d;
  d.acted = true;
  d.channel_zoom.resize(static_cast<std::size_t>(channels));
  for (auto& zoom : d.channel_zoom)
    if (gen.uniform() < options.probability_per_channel)
      zoom = gen.uniform(options.zoom_range[0], options.zoom_range[1]);
  return d;
}

GammaDraw draw_gamma(const GammaOptions& options, std::int64_t channels, Generator& gen) {
  return {draw_factors(options.probability, options.gamma_range, channels, gen), options.invert_image,
          options.retain_stats};
}

void apply_gaussian_noise_(Tensor& image, const NoiseDraw& draw, int num_threads) {
  const Volume v = prepare("data::gaussian_noise_", image);
  if (!draw.acted) return;
  check_channels("data::gaussian_noise_", v, draw.channel_seeds.size());
  const int nt = thread_count(num_threads);
  const double sigma = draw.sigma;
  for (std::int64_t c = 0; c < v.channels; ++c) {
    const std::uint64_t seed = draw.channel_seeds[static_cast<std::size_t>(c)];
    float* x = v.channel(c);
    const std::int64_t plane = v.plane();
#pragma omp parallel for schedule(static) num_threads(nt)
    for (std::int64_t z = 0; z < v.depth; ++z) {
      Generator slice_gen(slice_seed(seed, z));
      float* s = x + z * plane;
      double a = 0.0, b = 0.0;
      for (std::int64_t i = 0; i < plane; ++i) {
        if (i % 2 == 0) {
          normal_pair(slice_gen, a, b);
          s[i] += static_cast<float>(sigma * a);
        } else {
          s[i] += static_cast<float>(sigma * b);
        }
      }
    }
  }
}

void apply_gaussian_blur_(Tensor& image, const BlurDraw& draw, int num_threads) {
  const Volume v = prepare("data::gaussian_blur_", image);
  if (!draw.acted) return;
  check_channels("data::gaussian_blur_", v, draw.channel_sigmas.size());
  const int nt = thread_count(num_threads);
  std::vector<float> tmp;
  for (std::int64_t c = 0; c < v.channels; ++c) {
    const auto& sigma = draw.channel_sigmas[static_cast<std::size_t>(c)];
    if (!sigma) continue;
    if (tmp.empty()) tmp.resize(static_cast<std::size_t>(v.voxels()));
    for (int a = 0; a < 3; ++a) {
      const double s = (*sigma)[static_cast<std::size_t>(a)];
      if (!(s > 0.0)) continue;
      blur_axis(v, v.channel(c), a, blur_kernel(s), tmp, nt);
    }
  }
}

void apply_brightness_(Tensor& image, const ChannelFactorDraw& draw, int num_threads) {
  const Volume v = prepare("data::brightness_", image);
  if (!draw.acted) return;
  check_channels("data::brightness_", v, draw.factors.size());
  const int nt = thread_count(num_threads);
  for (std::int64_t c = 0; c < v.channels; ++c)
    affine_(v.channel(c), v.voxels(), static_cast<float>(draw.factors[static_cast<std::size_t>(c)]), 0.0f, nt);
}

void apply_contrast_(Tensor& image, const ContrastDraw& draw, int num_threads) {
  const Volume v = prepare("data::contrast_", image);
  if (!draw.factor.acted) return;
  check_channels("data::contrast_", v, draw.factor.factors.size());
  const int nt = thread_count(num_threads);
  for (std::int64_t c = 0; c < v.channels; ++c) {
    float* x = v.channel(c);
    const ChannelStats st = channel_stats(v, x, false, nt);
    const float f = static_cast<float>(draw.factor.factors[static_cast<std::size_t>(c)]);
    const float mean = static_cast<float>(st.mean);
    const float lo = st.min, hi = st.max;
    const bool clip = draw.preserve_range;
    const std::int64_t n = v.voxels();
#pragma omp parallel for simd schedule(static) num_threads(nt)
    for (std::int64_t i = 0; i < n; ++i) {
      x[i] = kernels::augment::contrast_voxel(x[i], mean, f, lo, hi, clip);
    }
  }
}

void apply_low_resolution_(Tensor& image, const LowResolutionDraw& draw, int num_threads) {
  const Volume v = prepare("data::low_resolution_", image);
  if (!draw.acted) return;
  check_channels("data::low_resolution_", v, draw.channel_zoom.size());
  const int nt = thread_count(num_threads);
  const std::array<std::int64_t, 3> extent{v.depth, v.height, v.width};
  for (std::int64_t c = 0; c < v.channels; ++c) {
    const auto& zoom = draw.channel_zoom[static_cast<std::size_t>(c)];
    if (!zoom) continue;
    std::array<std::int64_t, 3> small{};
    for (std::size_t a = 0; a < 3; ++a) small[a] = low_resolution_extent(extent[a], *zoom);
    if (draw.ignore_axis0) small[0] = extent[0];
    if (small == extent) continue;
    // Note [Low-resolution interpolation]: nearest-exact down, then trilinear (half-pixel centres) up.
    std::array<std::vector<std::int64_t>, 3> pick, lo_idx, hi_idx;
    std::array<std::vector<float>, 3> frac;
    for (std::size_t a = 0; a < 3; ++a) {
      for (std::int64_t t = 0; t < small[a]; ++t)
        pick[a].push_back(kernels::augment::low_resolution_pick(t, extent[a], small[a]));
      for (std::int64_t t = 0; t < extent[a]; ++t) {
        const kernels::augment::LinearTap tap = kernels::augment::low_resolution_tap(t, extent[a], small[a]);
        lo_idx[a].push_back(tap.lo);
        hi_idx[a].push_back(tap.hi);
        frac[a].push_back(tap.frac);
      }
    }
    float* x = v.channel(c);
    std::vector<float> low(static_cast<std::size_t>(small[0] * small[1] * small[2]));
#pragma omp parallel for collapse(2) schedule(static) num_threads(nt)
    for (std::int64_t z = 0; z < small[0]; ++z)
      for (std::int64_t y = 0; y < small[1]; ++y) {
        const float* s =
            x + pick[0][static_cast<std::size_t>(z)] * v.plane() + pick[1][static_cast<std::size_t>(y)] * v.width;
        float* o = low.data() + (z * small[1] + y) * small[2];
        for (std::int64_t i = 0; i < small[2]; ++i) o[i] = s[pick[2][static_cast<std::size_t>(i)]];
      }
    const std::int64_t sp = small[1] * small[2];
#pragma omp parallel for collapse(2) schedule(static) num_threads(nt)
    for (std::int64_t z = 0; z < v.depth; ++z)
      for (std::int64_t y = 0; y < v.height; ++y) {
        const auto zs = static_cast<std::size_t>(z), ys = static_cast<std::size_t>(y);
        const float tz = frac[0][zs], ty = frac[1][ys];
        const float* r00 = low.data() + lo_idx[0][zs] * sp + lo_idx[1][ys] * small[2];
        const float* r01 = low.data() + lo_idx[0][zs] * sp + hi_idx[1][ys] * small[2];
        const float* r10 = low.data() + hi_idx[0][zs] * sp + lo_idx[1][ys] * small[2];
        const float* r11 = low.data() + hi_idx[0][zs] * sp + hi_idx[1][ys] * small[2];
        float* o = x + z * v.plane() + y * v.width;
        for (std::int64_t i = 0; i < v.width; ++i) {
          const auto is = static_cast<std::size_t>(i);
          const std::int64_t x0 = lo_idx[2][is], x1 = hi_idx[2][is];
          const float tx = frac[2][is];
          const float a00 = r00[x0] + tx * (r00[x1] - r00[x0]), a01 = r01[x0] + tx * (r01[x1] - r01[x0]);
          const float a10 = r10[x0] + tx * (r10[x1] - r10[x0]), a11 = r11[x0] + tx * (r11[x1] - r11[x0]);
          const float b0 = a00 + ty * (a01 - a00), b1 = a10 + ty * (a11 - a10);
          o[i] = b0 + tz * (b1 - b0);
        }
      }
  }
}

void apply_gamma_(Tensor& image, const GammaDraw& draw, int num_threads) {
  const Volume v = prepare("data::gamma_", image);
  if (!draw.gamma.acted) return;
  check_channels("data::gamma_", v, draw.gamma.factors.size());
  const int nt = thread_count(num_threads);
  const std::int64_t n = v.voxels();
  for (std::int64_t c = 0; c < v.channels; ++c) {
    const double gamma = draw.gamma.factors[static_cast<std::size_t>(c)];
    float* x = v.channel(c);
    if (draw.invert_image) affine_(x, n, -1.0f, 0.0f, nt);
    const ChannelStats before = channel_stats(v, x, draw.retain_stats, nt);
    const GammaConstants k = gamma_constants(before, gamma);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (std::int64_t i = 0; i < n; ++i)
      x[i] = kernels::augment::gamma_voxel(x[i], k.lo, k.inv_range, k.gamma, k.range);
    if (draw.retain_stats) {
      const AffineConstants r = retained_stats_affine(before, channel_stats(v, x, true, nt));
      affine_(x, n, r.scale, r.shift, nt);
    }
    if (draw.invert_image) affine_(x, n, -1.0f, 0.0f, nt);
  }
}

namespace {

/// The transforms' one-call form: checks the image, draws for its channels, applies, and returns
/// the draw (whose `acted` says whether the transform fired).
template <class DrawFn, class Draw>
Draw draw_then_apply(const char* op, Tensor& image, int num_threads, DrawFn draw,
                     void (*apply)(Tensor&, const Draw&, int)) {
  const Draw d = draw(prepare(op, image).channels);
  apply(image, d, num_threads);
  return d;
}

}  // namespace

bool gaussian_noise_(Tensor& image, const GaussianNoiseOptions& options, Generator& gen, int num_threads) {
  const auto draw = [&](std::int64_t c) { return draw_gaussian_noise(options, c, gen); };
  return draw_then_apply("data::gaussian_noise_", image, num_threads, draw, apply_gaussian_noise_).acted;
}

bool gaussian_blur_(Tensor& image, const GaussianBlurOptions& options, Generator& gen, int num_threads) {
  const auto draw = [&](std::int64_t c) { return draw_gaussian_blur(options, c, gen); };
  return draw_then_apply("data::gaussian_blur_", image, num_threads, draw, apply_gaussian_blur_).acted;
}

bool brightness_(Tensor& image, const BrightnessOptions& options, Generator& gen, int num_threads) {
  const auto draw = [&](std::int64_t c) { return draw_brightness(options, c, gen); };
  return draw_then_apply("data::brightness_", image, num_threads, draw, apply_brightness_).acted;
}

bool contrast_(Tensor& image, const ContrastOptions& options, Generator& gen, int num_threads) {
  const auto draw = [&](std::int64_t c) { return draw_contrast(options, c, gen); };
  return draw_then_apply("data::contrast_", image, num_threads, draw, apply_contrast_).factor.acted;
}

bool low_resolution_(Tensor& image, const LowResolutionOptions& options, Generator& gen, int num_threads) {
  const auto draw = [&](std::int64_t c) { return draw_low_resolution(options, c, gen); };
  return draw_then_apply("data::low_resolution_", image, num_threads, draw, apply_low_resolution_).acted;
}

bool gamma_(Tensor& image, const GammaOptions& options, Generator& gen, int num_threads) {
  const auto draw = [&](std::int64_t c) { return draw_gamma(options, c, gen); };
  return draw_then_apply("data::gamma_", image, num_threads, draw, apply_gamma_).gamma.acted;
}

}  // namespace tlk::data
