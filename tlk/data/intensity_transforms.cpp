#include "tlk/data/intensity_transforms.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

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

int thread_count(int requested) { return requested > 0 ? requested : omp_get_max_threads(); }

/// Note [Split-range factors].
double split_range_draw(const std::array<double, 2>& range, Generator& gen) {
  if (range[0] < 1.0 && range[1] > 1.0)
    return gen.uniform() < 0.5 ? gen.uniform(range[0], 1.0) : gen.uniform(1.0, range[1]);
  return gen.uniform(range[0], range[1]);
}

struct ChannelStats {
  double mean = 0.0;
  double stddev = 0.0;  ///< population (ddof 0), as numpy's std
  float min = 0.0f;
  float max = 0.0f;
};

/// Mean, extrema and (with `with_stddev`) standard deviation of one channel, Note [Deterministic reductions].
ChannelStats channel_stats(const Volume& v, const float* x, bool with_stddev, int nt) {
  const std::int64_t slices = v.depth, plane = v.plane();
  std::vector<double> sums(static_cast<std::size_t>(slices));
  std::vector<float> mins(static_cast<std::size_t>(slices)), maxs(static_cast<std::size_t>(slices));
#pragma omp parallel for schedule(static) num_threads(nt)
  for (std::int64_t z = 0; z < slices; ++z) {
    const float* s = x + z * plane;
    double sum = 0.0;
    float lo = s[0], hi = s[0];
    for (std::int64_t i = 0; i < plane; ++i) {
      sum += s[i];
      lo = std::min(lo, s[i]);
      hi = std::max(hi, s[i]);
    }
    sums[static_cast<std::size_t>(z)] = sum;
    mins[static_cast<std::size_t>(z)] = lo;
    maxs[static_cast<std::size_t>(z)] = hi;
  }
  ChannelStats st;
  double total = 0.0;
  st.min = mins[0];
  st.max = maxs[0];
  for (std::size_t z = 0; z < sums.size(); ++z) {
    total += sums[z];
    st.min = std::min(st.min, mins[z]);
    st.max = std::max(st.max, maxs[z]);
  }
  const double n = static_cast<double>(slices * plane);
  st.mean = total / n;
  if (with_stddev) {
    const double mean = st.mean;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (std::int64_t z = 0; z < slices; ++z) {
      const float* s = x + z * plane;
      double ss = 0.0;
      for (std::int64_t i = 0; i < plane; ++i) {
        const double dlt = static_cast<double>(s[i]) - mean;
        ss += dlt * dlt;
      }
      sums[static_cast<std::size_t>(z)] = ss;
    }
    double ss = 0.0;
    for (double s : sums) ss += s;
    st.stddev = std::sqrt(ss / n);
  }
  return st;
}

/// x[i] = a * x[i] + b over one channel.
void affine_(float* x, std::int64_t n, float a, float b, int nt) {
#pragma omp parallel for simd schedule(static) num_threads(nt)
  for (std::int64_t i = 0; i < n; ++i) x[i] = a * x[i] + b;
}

/// torch's 'reflect' index (mirror without repeating the edge), for any offset.
std::int64_t reflect(std::int64_t i, std::int64_t n) {
  if (n == 1) return 0;
  const std::int64_t period = 2 * (n - 1);
  i = std::abs(i) % period;
  return i < n ? i : period - i;
}

std::vector<float> gaussian_kernel(double sigma) {
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
          row[static_cast<std::size_t>(i)] = s[reflect(i - radius, w)];
          row[static_cast<std::size_t>(w + radius + i)] = s[reflect(w + i, w)];
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
        const float* s = axis == 0 ? tmp.data() + reflect(z + k - radius, d) * plane + y * w
                                   : tmp.data() + z * plane + reflect(y + k - radius, h) * w;
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

bool gaussian_noise_(Tensor& image, const GaussianNoiseOptions& options, Generator& gen, int num_threads) {
  const Volume v = prepare("data::gaussian_noise_", image);
  if (!(gen.uniform() < options.probability)) return false;
  const int nt = thread_count(num_threads);
  const double sigma = gen.uniform(options.sigma_range[0], options.sigma_range[1]);
  for (std::int64_t c = 0; c < v.channels; ++c) {
    const std::uint64_t seed = gen.next_u64();
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
  return true;
}

bool gaussian_blur_(Tensor& image, const GaussianBlurOptions& options, Generator& gen, int num_threads) {
  const Volume v = prepare("data::gaussian_blur_", image);
  if (!(gen.uniform() < options.probability)) return false;
  const int nt = thread_count(num_threads);
  std::vector<float> tmp;
  for (std::int64_t c = 0; c < v.channels; ++c) {
    if (!(gen.uniform() < options.probability_per_channel)) continue;
    std::array<double, 3> sigma{};
    sigma[0] = gen.uniform(options.sigma_range[0], options.sigma_range[1]);
    for (std::size_t a = 1; a < 3; ++a)
      sigma[a] = options.sigma_per_axis ? gen.uniform(options.sigma_range[0], options.sigma_range[1]) : sigma[0];
    if (tmp.empty()) tmp.resize(static_cast<std::size_t>(v.voxels()));
    for (int a = 0; a < 3; ++a) {
      if (!(sigma[static_cast<std::size_t>(a)] > 0.0)) continue;
      blur_axis(v, v.channel(c), a, gaussian_kernel(sigma[static_cast<std::size_t>(a)]), tmp, nt);
    }
  }
  return true;
}

bool brightness_(Tensor& image, const BrightnessOptions& options, Generator& gen, int num_threads) {
  const Volume v = prepare("data::brightness_", image);
  if (!(gen.uniform() < options.probability)) return false;
  const int nt = thread_count(num_threads);
  for (std::int64_t c = 0; c < v.channels; ++c) {
    const double factor = split_range_draw(options.multiplier_range, gen);
    affine_(v.channel(c), v.voxels(), static_cast<float>(factor), 0.0f, nt);
  }
  return true;
}

bool contrast_(Tensor& image, const ContrastOptions& options, Generator& gen, int num_threads) {
  const Volume v = prepare("data::contrast_", image);
  if (!(gen.uniform() < options.probability)) return false;
  const int nt = thread_count(num_threads);
  for (std::int64_t c = 0; c < v.channels; ++c) {
    const double factor = split_range_draw(options.factor_range, gen);
    float* x = v.channel(c);
    const ChannelStats st = channel_stats(v, x, false, nt);
    const float f = static_cast<float>(factor), mean = static_cast<float>(st.mean);
    const float lo = st.min, hi = st.max;
    const bool clip = options.preserve_range;
    const std::int64_t n = v.voxels();
#pragma omp parallel for simd schedule(static) num_threads(nt)
    for (std::int64_t i = 0; i < n; ++i) {
      const float y = (x[i] - mean) * f + mean;
      x[i] = clip ? std::min(hi, std::max(lo, y)) : y;
    }
  }
  return true;
}

bool low_resolution_(Tensor& image, const LowResolutionOptions& options, Generator& gen, int num_threads) {
  const Volume v = prepare("data::low_resolution_", image);
  if (!(gen.uniform() < options.probability)) return false;
  const int nt = thread_count(num_threads);
  const std::array<std::int64_t, 3> extent{v.depth, v.height, v.width};
  for (std::int64_t c = 0; c < v.channels; ++c) {
    if (!(gen.uniform() < options.probability_per_channel)) continue;
    const double zoom = gen.uniform(options.zoom_range[0], options.zoom_range[1]);
    std::array<std::int64_t, 3> small{};
    for (std::size_t a = 0; a < 3; ++a)
      small[a] =
          std::max<std::int64_t>(1, static_cast<std::int64_t>(std::nearbyint(static_cast<double>(extent[a]) * zoom)));
    if (options.ignore_axis0) small[0] = extent[0];
    if (small == extent) continue;
    // Note [Low-resolution interpolation]: nearest-exact down, then trilinear (half-pixel centres) up.
    std::array<std::vector<std::int64_t>, 3> pick, lo_idx, hi_idx;
    std::array<std::vector<float>, 3> frac;
    for (std::size_t a = 0; a < 3; ++a) {
      const double down = static_cast<double>(extent[a]) / static_cast<double>(small[a]);
      for (std::int64_t t = 0; t < small[a]; ++t)
        pick[a].push_back(
            std::min<std::int64_t>(extent[a] - 1, static_cast<std::int64_t>(std::floor((t + 0.5) * down))));
      const double up = static_cast<double>(small[a]) / static_cast<double>(extent[a]);
      for (std::int64_t t = 0; t < extent[a]; ++t) {
        const double src = std::max(0.0, (t + 0.5) * up - 0.5);
        const std::int64_t i0 = std::min<std::int64_t>(small[a] - 1, static_cast<std::int64_t>(std::floor(src)));
        lo_idx[a].push_back(i0);
        hi_idx[a].push_back(std::min<std::int64_t>(small[a] - 1, i0 + 1));
        frac[a].push_back(static_cast<float>(src - static_cast<double>(i0)));
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
  return true;
}

bool gamma_(Tensor& image, const GammaOptions& options, Generator& gen, int num_threads) {
  const Volume v = prepare("data::gamma_", image);
  if (!(gen.uniform() < options.probability)) return false;
  const int nt = thread_count(num_threads);
  const std::int64_t n = v.voxels();
  for (std::int64_t c = 0; c < v.channels; ++c) {
    const double gamma = split_range_draw(options.gamma_range, gen);
    float* x = v.channel(c);
    if (options.invert_image) affine_(x, n, -1.0f, 0.0f, nt);
    const ChannelStats before = channel_stats(v, x, options.retain_stats, nt);
    const float lo = before.min;
    const double range = static_cast<double>(before.max) - static_cast<double>(before.min);
    const float inv = static_cast<float>(1.0 / (range + 1e-7)), rng = static_cast<float>(range),
                g = static_cast<float>(gamma);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (std::int64_t i = 0; i < n; ++i) x[i] = std::pow(std::max(0.0f, (x[i] - lo) * inv), g) * rng + lo;
    if (options.retain_stats) {
      const ChannelStats after = channel_stats(v, x, true, nt);
      const double a = before.stddev / (after.stddev + 1e-8);
      affine_(x, n, static_cast<float>(a), static_cast<float>(before.mean - a * after.mean), nt);
    }
    if (options.invert_image) affine_(x, n, -1.0f, 0.0f, nt);
  }
  return true;
}

}  // namespace tlk::data
