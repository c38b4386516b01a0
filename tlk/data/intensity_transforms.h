#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "tlk/data/channel_statistics.h"
#include "tlk/tensor/random.h"
#include "tlk/tensor/tensor.h"

/// The intensity half of nnUNet's training augmentation. Each transform works in place on a
/// contiguous CPU f32 image [C, D, H, W], decides with its per-sample `probability` whether to act
/// (one uniform draw, always made), draws its parameters from the caller's Generator in a fixed order,
/// and returns whether it acted. A probability of 0 disables a transform. Labels are never touched.
///
/// Channel statistics follow Note [Deterministic reductions] (data/channel_statistics.h). Noise is
/// drawn per z-slice from a Generator seeded by one 64-bit draw from the caller's generator and the
/// slice index, so it too is bit-identical for a seed whatever the thread count.
///
/// Note [Split-range factors]: brightness, contrast and gamma factors are drawn as nnUNet's BGContrast
/// (batchgeneratorsv2; batchgenerators for contrast and gamma): when the range straddles 1, with
/// probability 1/2 uniform in [low, 1), else uniform in [1, high) - so for 0.7-1.5 half the draws
/// darken/flatten, not 3/8. A range entirely on one side of 1 (e.g. [0.8, 0.8]) is drawn uniformly.
namespace tlk::data {

/// Additive Gaussian noise, one sigma per sample for all channels, independent noise per voxel.
///
/// Note [Noise sigma]: nnUNet calls the range `noise_variance = (0, 0.1)` but passes the drawn value to
/// np.random.normal as its scale, i.e. as the standard deviation (batchgenerators and
/// batchgeneratorsv2 alike). TLK names it for what it is: the added variance is sigma^2 <= 0.01.
/// Example: `GaussianNoiseOptions o; o.probability = 1; gaussian_noise_(image, o, gen);`
struct GaussianNoiseOptions {
  double probability = 0.1;
  std::array<double, 2> sigma_range = {0.0, 0.1};
};

/// Separable Gaussian smoothing (kernel radius ceil(3 sigma), mirror padding without repeating the
/// edge voxel, as torch's 'reflect'). Each channel is blurred with probability `probability_per_channel`;
/// with `sigma_per_axis` each axis draws its own sigma (nnUNet v2), else one sigma per channel (v1).
/// Example: `GaussianBlurOptions o; o.probability = 1; o.probability_per_channel = 1; gaussian_blur_(image, o, gen);`
struct GaussianBlurOptions {
  double probability = 0.2;
  double probability_per_channel = 0.5;
  std::array<double, 2> sigma_range = {0.5, 1.0};
  bool sigma_per_axis = true;
};

/// Multiplies each channel by its own factor (Note [Split-range factors]).
/// Example: `BrightnessOptions o; o.probability = 1; o.multiplier_range = {1.2, 1.2};`
struct BrightnessOptions {
  double probability = 0.15;
  std::array<double, 2> multiplier_range = {0.75, 1.25};
};

/// Per channel: x = (x - mean) * f + mean; with `preserve_range`, then clipped to the channel's
/// original [min, max] (nnUNet's preserve_range = True; the mean is then exact only for f <= 1).
/// Example: `ContrastOptions o; o.probability = 1; o.factor_range = {0.8, 0.8};`
struct ContrastOptions {
  double probability = 0.15;
  std::array<double, 2> factor_range = {0.75, 1.25};
  bool preserve_range = true;
};

/// Low-resolution simulation: each channel (probability `probability_per_channel`) is resampled to
/// round(extent * zoom) per axis (one zoom for all axes, uniform in `zoom_range`; axis 0 kept with
/// `ignore_axis0`, for "dummy 2D") by nearest neighbour, then back to its extent by trilinear
/// interpolation.
///
/// Note [Low-resolution interpolation]: nnUNet v1 upsampled with cubic splines (order 3); nnUNet v2
/// uses interpolate(mode='nearest-exact') down and mode='trilinear' up, with half-pixel centres
/// (align_corners=False). TLK follows v2: src = (dst + 0.5) * in / out - 0.5, clamped to the volume.
/// Example: `LowResolutionOptions o; o.probability = 1; o.probability_per_channel = 1;`
struct LowResolutionOptions {
  double probability = 0.25;
  double probability_per_channel = 0.5;
  std::array<double, 2> zoom_range = {0.5, 1.0};
  bool ignore_axis0 = false;
};

/// Gamma: per channel, x -> ((x - min) / (max - min + 1e-7))^gamma * (max - min) + min; with
/// `invert_image` on -x (and negated back); with `retain_stats` the channel's mean and standard
/// deviation are restored afterwards. nnUNet applies an inverted one (p 0.1) then a plain one (p 0.3).
/// Example: `GammaOptions o; o.probability = 1; o.gamma_range = {1.5, 1.5}; gamma_(image, o, gen);`
struct GammaOptions {
  double probability = 0.3;
  std::array<double, 2> gamma_range = {0.7, 1.5};
  bool invert_image = false;
  bool retain_stats = true;
};

/// What one transform drew for one sample (Note [Draw, then apply]): `acted` is the per-sample
/// decision; the per-channel values follow, one per channel.
///
/// Note [Draw, then apply]: every transform makes all its random draws before it reads a voxel, and
/// no draw depends on the image. So a sample's draws can be made on a loader thread and applied later
/// anywhere - on the CPU, or on a GPU (data/device_augment.h) - and a seed gives the same draws.
struct NoiseDraw {
  bool acted = false;
  double sigma = 0.0;
  std::vector<std::uint64_t> channel_seeds;  ///< seeds of each channel's voxel noise
};
struct BlurDraw {
  bool acted = false;
  /// Per channel: the sigma of each axis (D, H, W), or none when the channel is not blurred.
  std::vector<std::optional<std::array<double, 3>>> channel_sigmas;
};
/// Brightness multipliers, contrast factors or gamma exponents, one per channel.
struct ChannelFactorDraw {
  bool acted = false;
  std::vector<double> factors;
};
struct ContrastDraw {
  ChannelFactorDraw factor;
  bool preserve_range = true;
};
struct LowResolutionDraw {
  bool acted = false;
  std::vector<std::optional<double>> channel_zoom;  ///< none: the channel is kept
  bool ignore_axis0 = false;
};
struct GammaDraw {
  ChannelFactorDraw gamma;
  bool invert_image = false;
  bool retain_stats = true;
};

/// The draws of each transform, in the order gaussian_noise_ etc. make them.
/// Example: `NoiseDraw d = draw_gaussian_noise(GaussianNoiseOptions{}, 1, gen);`
NoiseDraw draw_gaussian_noise(const GaussianNoiseOptions& options, std::int64_t channels, Generator& gen);
BlurDraw draw_gaussian_blur(const GaussianBlurOptions& options, std::int64_t channels, Generator& gen);
ChannelFactorDraw draw_brightness(const BrightnessOptions& options, std::int64_t channels, Generator& gen);
ContrastDraw draw_contrast(const ContrastOptions& options, std::int64_t channels, Generator& gen);
LowResolutionDraw draw_low_resolution(const LowResolutionOptions& options, std::int64_t channels, Generator& gen);
GammaDraw draw_gamma(const GammaOptions& options, std::int64_t channels, Generator& gen);

/// Applies drawn transforms to a CPU image [C, D, H, W] in place (a draw that did not act is a no-op).
/// Example: `apply_gaussian_noise_(image, draw_gaussian_noise(opt, image.size(0), gen));`
void apply_gaussian_noise_(Tensor& image, const NoiseDraw& draw, int num_threads = 0);
void apply_gaussian_blur_(Tensor& image, const BlurDraw& draw, int num_threads = 0);
void apply_brightness_(Tensor& image, const ChannelFactorDraw& draw, int num_threads = 0);
void apply_contrast_(Tensor& image, const ContrastDraw& draw, int num_threads = 0);
void apply_low_resolution_(Tensor& image, const LowResolutionDraw& draw, int num_threads = 0);
void apply_gamma_(Tensor& image, const GammaDraw& draw, int num_threads = 0);

/// What gamma_voxel (kernels/augment_voxel.h) takes for one channel with statistics `before`.
struct GammaConstants {
  float lo, inv_range, gamma, range;
};
GammaConstants gamma_constants(const ChannelStats& before, double gamma);
/// x -> scale * x + shift.
struct AffineConstants {
  float scale, shift;
};
/// The affine map that gives back the mean and standard deviation `before` to a channel now at `after`.
AffineConstants retained_stats_affine(const ChannelStats& before, const ChannelStats& after);

/// The normalised Gaussian kernel of the blur: 2 * max(1, ceil(3 sigma)) + 1 taps.
/// Example: `std::vector<float> k = gaussian_kernel(1.0);  // 7 taps`
std::vector<float> gaussian_kernel(double sigma);
/// The low-resolution extent of one axis: max(1, round(extent * zoom)).
/// Example: `low_resolution_extent(128, 0.5)  // 64`
std::int64_t low_resolution_extent(std::int64_t extent, double zoom);

/// Adds N(0, sigma^2) noise (Note [Noise sigma]). Returns whether it acted.
/// Example: `bool acted = gaussian_noise_(patch.image, GaussianNoiseOptions{}, gen);`
bool gaussian_noise_(Tensor& image, const GaussianNoiseOptions& options, Generator& gen, int num_threads = 0);
/// Gaussian blur. Returns whether the per-sample draw fired (channels may still all be skipped).
/// Example: `gaussian_blur_(patch.image, GaussianBlurOptions{}, gen);`
bool gaussian_blur_(Tensor& image, const GaussianBlurOptions& options, Generator& gen, int num_threads = 0);
/// Multiplicative brightness. Example: `brightness_(patch.image, BrightnessOptions{}, gen);`
bool brightness_(Tensor& image, const BrightnessOptions& options, Generator& gen, int num_threads = 0);
/// Contrast about the channel mean. Example: `contrast_(patch.image, ContrastOptions{}, gen);`
bool contrast_(Tensor& image, const ContrastOptions& options, Generator& gen, int num_threads = 0);
/// Low-resolution simulation. Example: `low_resolution_(patch.image, LowResolutionOptions{}, gen);`
bool low_resolution_(Tensor& image, const LowResolutionOptions& options, Generator& gen, int num_threads = 0);
/// Gamma (optionally inverted). Example: `gamma_(patch.image, GammaOptions{}, gen);`
bool gamma_(Tensor& image, const GammaOptions& options, Generator& gen, int num_threads = 0);

}  // namespace tlk::data
