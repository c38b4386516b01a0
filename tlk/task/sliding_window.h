#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tlk/tensor/tensor.h"

namespace tlk::nn {
class UNet;
}

namespace tlk::task {

/// A segmentation network as the sliding window sees it: an input batch [B, C, pd, ph, pw] to logits
/// [B, K, pd, ph, pw] (any device or layout; the predictor converts the logits to plain f32 on the CPU).
using SegmentationNetwork = std::function<Tensor(const Tensor&)>;

/// nnUNet's window positions along each axis (D, H, W): n = ceil((img − patch) / (step · patch)) + 1
/// starts spread evenly from 0 to img − patch and rounded half to even (numpy's round), so
/// neighbouring windows overlap by at least (1 − step) · patch. An axis where the volume is not
/// larger than the patch gets the single start 0: smaller volumes are padded up to the patch first.
/// `step_fraction` must lie in (0, 1].
///
/// Example: `sliding_window_starts({100, 64, 40}, {64, 64, 64}, 0.5)` -> {{0, 18, 36}, {0}, {0}}.
std::vector<std::vector<std::int64_t>> sliding_window_starts(const std::array<std::int64_t, 3>& volume_shape,
                                                             const std::array<std::int64_t, 3>& patch,
                                                             double step_fraction);

/// nnUNet's Gaussian importance map f32 [pd, ph, pw]: σ = patch · sigma_scale per axis, centred
/// (Note [Centred Gaussian]), scaled to a maximum of 1, cut off past 4σ like scipy's gaussian_filter,
/// and every zero replaced by the smallest nonzero value so that each voxel keeps a positive weight.
///
/// Example: `Tensor g = gaussian_importance_map({64, 64, 64});  // 1 in the middle, ≈4e-4 mid-face`
Tensor gaussian_importance_map(const std::array<std::int64_t, 3>& patch, double sigma_scale = 1.0 / 8.0);

/// How predict_sliding_window tiles and averages; the defaults are nnUNet's.
struct SlidingWindowOptions {
  /// Window size (D, H, W); must suit the network (a UNet needs multiples of its total stride).
  std::array<std::int64_t, 3> patch{128, 128, 128};
  /// Target distance between window starts as a fraction of the patch, in (0, 1]
  /// (nnUNet 0.5; 0.75 or 1 trade accuracy for speed).
  double step = 0.5;
  /// Test-time augmentation: every combination of flips along `mirror_axes` (2^n network runs per
  /// window), softmax outputs flipped back and averaged.
  bool mirror = true;
  /// Spatial axes to flip: 0 = D (z), 1 = H (y), 2 = W (x).
  std::vector<int> mirror_axes{0, 1, 2};
  /// Windows per network call (the last call may get fewer).
  int batch = 1;
  /// Weight each window's prediction by gaussian_importance_map (true) or uniformly (false).
  bool gaussian = true;
  double sigma_scale = 1.0 / 8.0;
  /// The layout the windows reach a UNet in: plain, or channels_last on a GPU (NDHWC activations,
  /// Note [Channels-last on the GPU] in kernels/cuda/launch.h).
  Layout layout = Layout::plain;
  /// Show an io::ProgressBar over the windows on stderr.
  bool progress = false;
  std::string progress_label = "sliding window";
};

/// Class probabilities f32 [K, D, H, W] for an image f32 [C, D, H, W] (other dtypes are converted), by
/// nnUNet's sliding-window inference: the image is zero-padded symmetrically where it is smaller than
/// the patch, tiled with windows at sliding_window_starts, each window (and its mirrored copies) run
/// through `network` `options.batch` at a time without autograd (NoGradGuard), the softmax of its
/// logits accumulated with the importance weights, and the sum divided by the summed weights.
/// Memory: the [K, D, H, W] result, a [D, H, W] weight sum and one batch of windows (Note [Streamed
/// stitching]). Throws tlk::Error naming the shapes when the network's output is not [B, K, pd, ph, pw].
///
/// Example:
/// ```
/// net.eval();
/// SlidingWindowOptions opt;
/// opt.patch = {64, 64, 64};
/// Tensor probs = predict_sliding_window(unet_logits(net), image, 3, opt);   // [3, D, H, W]
/// Tensor labels = argmax_channels(probs.reshape({1, 3, D, H, W}));           // [1, D, H, W]
/// ```
Tensor predict_sliding_window(const SegmentationNetwork& network, const Tensor& image, std::int64_t num_classes,
                              const SlidingWindowOptions& options);

/// predict_sliding_window with a UNet: its full-resolution logits (deep supervision off for the call)
/// and its configured number of classes; checks first that the image has the UNet's input channels
/// and that the patch is a multiple of the UNet's total stride on every axis. Put the net in eval
/// mode first if it has modes.
///
/// Example: `Tensor probs = predict_sliding_window(net, image, opt);`
Tensor predict_sliding_window(nn::UNet& net, const Tensor& image, const SlidingWindowOptions& options);

/// A SegmentationNetwork running `net` with deep supervision switched off for each call (restored
/// afterwards, also on error), returning only the full-resolution logits. `net` must outlive it.
///
/// Example: `SegmentationNetwork f = unet_logits(net); Tensor logits = f(batch);`
SegmentationNetwork unet_logits(nn::UNet& net, Layout layout = Layout::plain);

}  // namespace tlk::task
