#pragma once
#include <array>
#include <cstdint>

#include "tlk/data/intensity_transforms.h"
#include "tlk/data/spatial_transform.h"
#include "tlk/tensor/random.h"
#include "tlk/tensor/tensor.h"

/// nnUNet's training-time data augmentation for 3D patches (nnUNet v1 data_augmentation_moreDA /
/// v2 get_training_transforms), with the same transforms, order, probabilities and ranges.
///
/// Note [Augmentation order]: spatial (rotation + scaling about the patch centre, or a centre crop
/// when neither is drawn), Gaussian noise, Gaussian blur, multiplicative brightness, contrast,
/// low-resolution simulation, inverted gamma, gamma, mirroring. Elastic deformation is off in nnUNet
/// and not implemented. Labels are touched only by the spatial transform and mirroring.
///
/// Note [Dummy 2D]: nnUNet switches to "dummy 2D" augmentation for strongly anisotropic patches
/// (max(patch) / patch[0] > 3): the spatial transform runs per axial slice with in-plane rotation of
/// +-180 degrees and in-plane scaling, and the low-resolution simulation keeps axis 0. A 3D rotation
/// about axis 0 with diag(1, s, s) scaling samples exactly that (every output voxel reads its own
/// slice), so dummy_2d_augment_options() expresses it with the ordinary options.
namespace tlk::data {

/// Every transform's options; the defaults are nnUNet's. Set a `probability` to 0 to disable one.
///
/// Example:
/// ```
/// AugmentOptions opt;             // nnUNet defaults
/// opt.gamma.probability = 0;      // no (non-inverted) gamma
/// opt.num_threads = 2;
/// ```
struct AugmentOptions {
  RotationOptions rotation;
  ScalingOptions scaling;
  GaussianNoiseOptions noise;
  GaussianBlurOptions blur;
  BrightnessOptions brightness;
  ContrastOptions contrast;
  LowResolutionOptions low_resolution;
  GammaOptions inverted_gamma{
      .probability = 0.1, .gamma_range = {0.7, 1.5}, .invert_image = true, .retain_stats = true};
  GammaOptions gamma{.probability = 0.3, .gamma_range = {0.7, 1.5}, .invert_image = false, .retain_stats = true};
  MirrorOptions mirror;
  /// OpenMP threads for the voxel loops (<= 0: OpenMP's default). Each call is independent and uses
  /// no global state, so background loader threads may call augment_patch concurrently.
  int num_threads = 0;

  /// All transforms disabled: augment_patch then returns the centre crop.
  /// Example: `AugmentedPatch p = augment_patch(img, lab, {64, 64, 64}, AugmentOptions::none(), gen);`
  static AugmentOptions none();
  /// Every transform with per-sample probability `probability` (and per channel, for blur and low
  /// resolution, 1), mirroring each axis with it too; nnUNet's ranges.
  /// Example: `AugmentOptions forced = AugmentOptions::all(1.0);  // every transform acts`
  static AugmentOptions all(double probability);
};

/// nnUNet's rule for "dummy 2D" augmentation: max(patch) / patch[0] > 3 (Note [Dummy 2D]).
/// Example: `bool d2 = uses_dummy_2d({20, 320, 256});  // true`
bool uses_dummy_2d(Extent3 patch);

/// nnUNet's defaults switched to "dummy 2D" (Note [Dummy 2D]): rotation about axis 0 only, +-180
/// degrees; scaling of axes 1 and 2 only; low-resolution simulation in-plane only.
/// Example: `AugmentOptions opt = uses_dummy_2d(patch) ? dummy_2d_augment_options() : AugmentOptions{};`
AugmentOptions dummy_2d_augment_options();

/// The extent to load before augmenting so that the final patch of extent `patch` needs no padding
/// (nnUNet's get_patch_size; Note [Enlarged patch size]). Equals `patch` when rotation and scaling are
/// disabled.
/// Example: `Extent3 load = enlarged_patch_size({128, 128, 128}, AugmentOptions{});  // {249, 249, 249}`
Extent3 enlarged_patch_size(Extent3 patch, const AugmentOptions& options);

/// Every random draw of one sample's augmentation (Note [Draw, then apply]).
struct AugmentDraws {
  SpatialDraw spatial;
  NoiseDraw noise;
  BlurDraw blur;
  ChannelFactorDraw brightness;
  ContrastDraw contrast;
  LowResolutionDraw low_resolution;
  GammaDraw inverted_gamma, gamma;
  std::array<bool, 3> mirror{};
};

/// Makes every draw augment_patch makes for an image of `channels` channels, in the same order, and
/// reads no voxel: a loader thread can draw and a GPU apply (data/device_augment.h).
/// Example: `AugmentDraws d = draw_augmentation(AugmentOptions{}, 1, gen);`
AugmentDraws draw_augmentation(const AugmentOptions& options, std::int64_t channels, Generator& gen);

/// Applies `draws` to `image` [C, D, H, W] and `labels` [D, H, W] (or undefined), giving a patch of
/// extent `out_patch` on the inputs' device. On the CPU, augment_patch(image, labels, out, options,
/// gen) equals apply_augmentation(image, labels, out, draw_augmentation(options, C, gen)) bit for bit;
/// CUDA tensors go to data::apply_augmentation_cuda (Note [Augmentation on the GPU]).
/// Example: `AugmentedPatch p = apply_augmentation(image, labels, {128, 128, 128}, draws);`
AugmentedPatch apply_augmentation(const Tensor& image, const Tensor& labels, Extent3 out_patch,
                                  const AugmentDraws& draws, int num_threads = 0);

/// Augments one patch (Note [Augmentation order]): `image` f32 [C, D, H, W] and `labels` u8 [D, H, W]
/// (or undefined), usually of the extent enlarged_patch_size gives, become a patch of extent
/// `out_patch`. Every random draw comes from `gen`, so a seed gives bit-identical output (whatever
/// `num_threads`). The inputs are not modified.
///
/// Example:
/// ```
/// Generator gen(42);
/// AugmentOptions opt;
/// Extent3 load = enlarged_patch_size({128, 128, 128}, opt);
/// // ... crop `load` around the chosen centre from the case into image / labels ...
/// AugmentedPatch p = augment_patch(image, labels, {128, 128, 128}, opt, gen);
/// ```
AugmentedPatch augment_patch(const Tensor& image, const Tensor& labels, Extent3 out_patch,
                             const AugmentOptions& options, Generator& gen);

}  // namespace tlk::data
