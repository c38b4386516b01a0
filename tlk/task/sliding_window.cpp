#include "tlk/task/sliding_window.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>

#include "tlk/autograd/grad_mode.h"
#include "tlk/io/progress_bar.h"
#include "tlk/nn/unet.h"
#include "tlk/tensor/error.h"

namespace tlk::task {

namespace {

using Int3 = std::array<std::int64_t, 3>;

std::string str3(const Int3& a) { return fmt::format("[{}, {}, {}]", a[0], a[1], a[2]); }

void check_patch(const Int3& patch, const char* op) {
  for (std::int64_t p : patch) check(p > 0, "{}: patch sizes must be positive, got {}", op, str3(patch));
}

// A plain contiguous f32 CPU copy of `t` (or `t` itself when it is one already). The dtype changes
// first: a GPU's 16-bit logits (prediction under autocast) have no CPU kernels.
Tensor plain_cpu_f32(const Tensor& t) {
  Tensor x = t;
  if (x.layout() == Layout::blocked) x = x.to(Layout::plain);
  x = x.to(DType::f32);
  if (!x.device().is_cpu()) x = x.contiguous().to(Device::cpu());
  return x.contiguous();
}

}  // namespace

std::vector<std::vector<std::int64_t>> sliding_window_starts(const Int3& volume_shape, const Int3& patch,
                                                             double step_fraction) {
  check_patch(patch, "sliding_window_starts");
  check(step_fraction > 0.0 && step_fraction <= 1.0, "sliding_window_starts: step must lie in (0, 1], got {}",
        step_fraction);
  std::vector<std::vector<std::int64_t>> starts(3);
  for (int a = 0; a < 3; ++a) {
    check(volume_shape[a] > 0, "sliding_window_starts: volume sizes must be positive, got {}", str3(volume_shape));
    const std::int64_t span = volume_shape[a] - patch[a];  // the last start; <= 0: padded to the patch
    if (span <= 0) {
      starts[a] = {0};
      continue;
    }
    const double target_step = static_cast<double>(patch[a]) * step_fraction;
    const auto n = static_cast<std::int64_t>(std::ceil(static_cast<double>(span) / target_step)) + 1;
    const double actual_step = static_cast<double>(span) / static_cast<double>(n - 1);
    // Note [Window rounding]: numpy's round (half to even), which std::nearbyint does in the default
    // rounding mode, so the starts are nnUNet's to the voxel (img 129, patch 64, step 1 -> 0, 32, 65).
    for (std::int64_t i = 0; i < n; ++i)
      starts[a].push_back(static_cast<std::int64_t>(std::nearbyint(actual_step * static_cast<double>(i))));
  }
  return starts;
}

// Note [Centred Gaussian]: nnUNet puts the peak on voxel patch // 2, half a voxel off centre for even
// patches, so its map is not mirror-symmetric. We centre it at (patch − 1) / 2: the map is then
// symmetric, a mirrored window gets exactly the weights of the unmirrored one, and the peak value
// is rescaled to 1 as in nnUNet. The 4σ cut-off (radius floor(4σ + 0.5), scipy's `truncate=4`) and
// the replacement of zeros by the smallest nonzero value follow nnUNet; the per-axis factors are
// computed in double so only the final product is rounded to f32.
Tensor gaussian_importance_map(const Int3& patch, double sigma_scale) {
  check_patch(patch, "gaussian_importance_map");
  check(sigma_scale > 0.0 && std::isfinite(sigma_scale),
        "gaussian_importance_map: sigma_scale must be positive, got {}", sigma_scale);
  std::array<std::vector<double>, 3> axis;
  for (int a = 0; a < 3; ++a) {
    const double sigma = static_cast<double>(patch[a]) * sigma_scale;
    const double radius = std::floor(4.0 * sigma + 0.5);
    const double centre = static_cast<double>(patch[a] - 1) / 2.0;
    double peak = 0.0;
    for (std::int64_t i = 0; i < patch[a]; ++i) {
      const double d = static_cast<double>(i) - centre;
      const double v = std::abs(d) <= radius ? std::exp(-d * d / (2.0 * sigma * sigma)) : 0.0;
      axis[a].push_back(v);
      peak = std::max(peak, v);
    }
    if (peak > 0.0)
      for (double& v : axis[a]) v /= peak;
    else  // σ so small that the cut-off drops every voxel (an even patch, σ < 1/8): uniform weights
      std::fill(axis[a].begin(), axis[a].end(), 1.0);
  }
  Tensor map = Tensor::empty({patch[0], patch[1], patch[2]});
  float* g = map.data<float>();
  float smallest = std::numeric_limits<float>::infinity();
  std::int64_t i = 0;
  for (std::int64_t z = 0; z < patch[0]; ++z)
    for (std::int64_t y = 0; y < patch[1]; ++y)
      for (std::int64_t x = 0; x < patch[2]; ++x, ++i) {
        g[i] = static_cast<float>(axis[0][z] * axis[1][y] * axis[2][x]);
        if (g[i] > 0.0f) smallest = std::min(smallest, g[i]);
      }
  for (std::int64_t j = 0; j < map.numel(); ++j)
    if (g[j] == 0.0f) g[j] = smallest;
  return map;
}

// Note [Streamed stitching]: nothing per window outlives its batch. The softmax of each (mirrored)
// window is flipped back, weighted by importance / number of mirrorings and added straight into the
// [K, D, H, W] result, and the importance itself into a [D, H, W] weight sum, once per window; the
// result is divided by the weight sum at the end. Averaging the mirrored softmaxes inside the
// weighted sum is the same as nnUNet's average-then-weight, since both are linear. Padding is
// virtual: windows read zeros outside the image and voxels outside it are never accumulated, which
// equals padding the image, predicting and cropping back (nnUNet's pad_nd_image, below = diff / 2).
Tensor predict_sliding_window(const SegmentationNetwork& network, const Tensor& input, std::int64_t num_classes,
                              const SlidingWindowOptions& options) {
  const char* op = "predict_sliding_window";
  check(static_cast<bool>(network), "{}: no network given", op);
  check(input.defined() && input.dim() == 4, "{}: expected an image [C, D, H, W], got {}", op,
        input.defined() ? input.shape().str() : std::string("an undefined tensor"));
  check(num_classes >= 1, "{}: num_classes must be at least 1, got {}", op, num_classes);
  check(options.batch >= 1, "{}: batch must be at least 1, got {}", op, options.batch);
  const Int3& patch = options.patch;
  check_patch(patch, op);
  std::vector<int> axes;
  if (options.mirror) {
    for (int a : options.mirror_axes) {
      check(a >= 0 && a < 3, "{}: mirror axes are spatial axes 0 (D), 1 (H), 2 (W), got {}", op, a);
      check(std::find(axes.begin(), axes.end(), a) == axes.end(), "{}: mirror axis {} is listed twice", op, a);
      axes.push_back(a);
    }
  }

  NoGradGuard no_grad;
  const Tensor image = plain_cpu_f32(input);
  const std::int64_t C = image.size(0), K = num_classes;
  const Int3 vol{image.size(1), image.size(2), image.size(3)};
  check(C >= 1 && vol[0] >= 1 && vol[1] >= 1 && vol[2] >= 1, "{}: empty image {}", op, image.shape().str());
  Int3 lo{};  // padding before the image per axis
  Int3 padded{};
  for (int a = 0; a < 3; ++a) {
    padded[a] = std::max(vol[a], patch[a]);
    lo[a] = (padded[a] - vol[a]) / 2;
  }

  const auto starts = sliding_window_starts(padded, patch, options.step);
  std::vector<Int3> windows;  // window starts in padded coordinates
  for (std::int64_t z : starts[0])
    for (std::int64_t y : starts[1])
      for (std::int64_t x : starts[2]) windows.push_back({z, y, x});

  const Tensor importance = options.gaussian ? gaussian_importance_map(patch, options.sigma_scale)
                                             : Tensor::ones({patch[0], patch[1], patch[2]});
  const float* g = importance.data<float>();
  Tensor result = Tensor::zeros({K, vol[0], vol[1], vol[2]});
  Tensor weight_sum = Tensor::zeros({vol[0], vol[1], vol[2]});
  float* acc = result.data<float>();
  float* wsum = weight_sum.data<float>();
  const float* img = image.data<float>();

  const int mirrorings = 1 << axes.size();
  const float mirror_scale = 1.0f / static_cast<float>(mirrorings);
  const std::int64_t pd = patch[0], ph = patch[1], pw = patch[2], pvox = pd * ph * pw;
  const std::int64_t plane = vol[1] * vol[2], voxels = vol[0] * plane;

  std::optional<io::ProgressBar> bar;
  if (options.progress) bar.emplace(options.progress_label, static_cast<std::int64_t>(windows.size()));

  for (std::size_t first = 0; first < windows.size(); first += static_cast<std::size_t>(options.batch)) {
    const auto B = static_cast<std::int64_t>(std::min<std::size_t>(options.batch, windows.size() - first));
    Tensor batch = Tensor::empty({B, C, pd, ph, pw});
    float* in = batch.data<float>();
    for (int m = 0; m < mirrorings; ++m) {
      std::array<bool, 3> flip{false, false, false};
      for (std::size_t j = 0; j < axes.size(); ++j)
        if (m & (1 << j)) flip[axes[j]] = true;
      // Window voxel v of the (flipped) batch shows padded position start + (flip ? p-1-v : v).
      auto source = [&](int a, std::int64_t start, std::int64_t v) {
        return start + (flip[a] ? patch[a] - 1 - v : v) - lo[a];  // image coordinate, may be outside
      };

#pragma omp parallel for collapse(3) schedule(static)
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t c = 0; c < C; ++c)
          for (std::int64_t z = 0; z < pd; ++z) {
            const Int3& s = windows[first + b];
            const std::int64_t iz = source(0, s[0], z);
            for (std::int64_t y = 0; y < ph; ++y) {
              float* row = in + (((b * C + c) * pd + z) * ph + y) * pw;
              const std::int64_t iy = source(1, s[1], y);
              if (iz < 0 || iz >= vol[0] || iy < 0 || iy >= vol[1]) {
                std::fill(row, row + pw, 0.0f);
                continue;
              }
              const float* src = img + c * voxels + iz * plane + iy * vol[2];
              for (std::int64_t x = 0; x < pw; ++x) {
                const std::int64_t ix = source(2, s[2], x);
                row[x] = ix >= 0 && ix < vol[2] ? src[ix] : 0.0f;
              }
            }
          }

      const Tensor logits_any = network(batch);
      check(logits_any.defined() && logits_any.dim() == 5 && logits_any.size(0) == B && logits_any.size(1) == K &&
                logits_any.size(2) == pd && logits_any.size(3) == ph && logits_any.size(4) == pw,
            "{}: the network's output for an input batch {} is {}, expected logits [{}, {}, {}, {}, {}] "
            "(batch, num_classes, patch); is the patch a multiple of the network's total stride?",
            op, batch.shape().str(), logits_any.defined() ? logits_any.shape().str() : std::string("undefined"), B, K,
            pd, ph, pw);
      const Tensor logits = plain_cpu_f32(logits_any);
      const float* out = logits.data<float>();

      // Windows of one batch may overlap, so they are added one after another; within a window each
      // (z, y) row lands on its own image row.
      for (std::int64_t b = 0; b < B; ++b) {
        const Int3& s = windows[first + b];
#pragma omp parallel for collapse(2) schedule(static)
        for (std::int64_t z = 0; z < pd; ++z)
          for (std::int64_t y = 0; y < ph; ++y) {
            const std::int64_t iz = source(0, s[0], z), iy = source(1, s[1], y);
            if (iz < 0 || iz >= vol[0] || iy < 0 || iy >= vol[1]) continue;
            const std::int64_t gz = iz + lo[0] - s[0], gy = iy + lo[1] - s[1];  // unflipped window position
            const float* lrow = out + b * K * pvox + z * ph * pw + y * pw;
            float* arow = acc + iz * plane + iy * vol[2];
            std::vector<float> e(static_cast<std::size_t>(K));
            for (std::int64_t x = 0; x < pw; ++x) {
              const std::int64_t ix = source(2, s[2], x);
              if (ix < 0 || ix >= vol[2]) continue;
              const std::int64_t gx = ix + lo[2] - s[2];
              // Note [Stable softmax]: subtract the largest logit before exp.
              float top = lrow[x];
              for (std::int64_t k = 1; k < K; ++k) top = std::max(top, lrow[k * pvox + x]);
              float total = 0.0f;
              for (std::int64_t k = 0; k < K; ++k) total += e[k] = std::exp(lrow[k * pvox + x] - top);
              const float w = mirror_scale * g[(gz * ph + gy) * pw + gx] / total;
              for (std::int64_t k = 0; k < K; ++k) arow[k * voxels + ix] += w * e[k];
            }
          }
      }
    }
    // The importance of each window, once (not per mirroring).
    for (std::int64_t b = 0; b < B; ++b) {
      const Int3& s = windows[first + b];
#pragma omp parallel for collapse(2) schedule(static)
      for (std::int64_t z = 0; z < pd; ++z)
        for (std::int64_t y = 0; y < ph; ++y) {
          const std::int64_t iz = s[0] + z - lo[0], iy = s[1] + y - lo[1];
          if (iz < 0 || iz >= vol[0] || iy < 0 || iy >= vol[1]) continue;
          for (std::int64_t x = 0; x < pw; ++x) {
            const std::int64_t ix = s[2] + x - lo[2];
            if (ix >= 0 && ix < vol[2]) wsum[iz * plane + iy * vol[2] + ix] += g[(z * ph + y) * pw + x];
          }
        }
    }
    if (bar) bar->advance(B);
  }
  if (bar) bar->finish();

#pragma omp parallel for schedule(static)
  for (std::int64_t v = 0; v < voxels; ++v) {
    const float inv = 1.0f / wsum[v];  // every voxel lies in some window, whose weights are all > 0
    for (std::int64_t k = 0; k < K; ++k) acc[k * voxels + v] *= inv;
  }
  return result;
}

SegmentationNetwork unet_logits(nn::UNet& net, Layout layout) {
  return [&net, layout](const Tensor& batch) {
    struct Restore {
      nn::UNet& net;
      bool was_on;
      ~Restore() { net.set_deep_supervision(was_on); }
    } restore{net, net.config().deep_supervision};
    net.set_deep_supervision(false);
    std::vector<Tensor> outputs = net.forward(batch.to(net.device()).to(layout));  // windows are cut on the CPU
    check(!outputs.empty(), "unet_logits: the UNet returned no output for input {}", batch.shape().str());
    return outputs.front();
  };
}

Tensor predict_sliding_window(nn::UNet& net, const Tensor& image, const SlidingWindowOptions& options) {
  const nn::UNetConfig& config = net.config();
  check(image.defined() && image.dim() == 4 && image.size(0) == config.in_channels,
        "predict_sliding_window: the UNet takes images [{}, D, H, W], got {}", config.in_channels,
        image.defined() ? image.shape().str() : std::string("an undefined tensor"));
  Int3 total{1, 1, 1};
  for (const Int3& s : config.strides)
    for (int a = 0; a < 3; ++a) total[a] *= s[a];
  for (int a = 0; a < 3; ++a)
    check(options.patch[a] > 0 && options.patch[a] % total[a] == 0,
          "predict_sliding_window: patch {} is not a multiple of the UNet's total stride {} along axis {}",
          str3(options.patch), str3(total), a);
  return predict_sliding_window(unet_logits(net, options.layout), image, config.num_classes, options);
}

}  // namespace tlk::task
