#pragma once
#include <array>
#include <cstdint>

#include "tlk/tensor/random.h"
#include "tlk/tensor/tensor.h"

/// The spatial half of nnUNet's training augmentation: rotation and isotropic scaling about the patch
/// centre (or a plain centre crop when neither is drawn), mirroring, and the enlarged patch size to
/// load so that the rotated/scaled sampling grid stays inside the loaded data.
///
/// Conventions: images are f32 [C, D, H, W], label maps u8 [D, H, W] (D = z, the slowest axis);
/// "axis 0/1/2" below are D/H/W. A label tensor may be undefined (unlabelled target-domain patches in
/// domain adaptation); the outputs then have undefined labels too.
namespace tlk::data {

/// A spatial extent (D, H, W).
using Extent3 = std::array<std::int64_t, 3>;
/// A 3x3 matrix, row-major: m[row][column].
using Matrix3 = std::array<std::array<double, 3>, 3>;

/// An augmented image patch and its label patch (labels undefined when the input had none).
struct AugmentedPatch {
  Tensor image;   ///< f32 [C, D, H, W]
  Tensor labels;  ///< u8 [D, H, W], or undefined
};

/// Random rotation as nnUNet draws it.
///
/// Note [Rotation probability semantics]: nnUNet (batchgenerators' augment_spatial, v1, and
/// batchgeneratorsv2's SpatialTransform, v2) first decides once per sample whether to rotate at all
/// (`probability`, 0.2). Given a rotation, each axis gets its own angle uniform in its range with
/// probability `probability_per_axis` (nnUNet's rotation_p_per_axis, 1 by default, so all three axes
/// rotate together), else 0 for that axis. Angles are in degrees; "about axis 0" turns the (H, W)
/// plane. Disable with probability = 0.
///
/// Example: `RotationOptions r; r.probability = 1; r.angle_range_deg = {{{90, 90}, {0, 0}, {0, 0}}};`
struct RotationOptions {
  double probability = 0.2;
  double probability_per_axis = 1.0;
  std::array<std::array<double, 2>, 3> angle_range_deg = {{{-30.0, 30.0}, {-30.0, 30.0}, {-30.0, 30.0}}};
};

/// Random isotropic scaling of the sampling grid (nnUNet: p 0.2, 0.7-1.4).
///
/// Note [Scale direction]: as in nnUNet, the factor multiplies the sampling coordinates: s > 1 samples
/// a larger region of the input, so structures look smaller; s < 1 zooms in. The factor is uniform in
/// `range` (nnUNet v2; v1 picked below/above 1 with probability 1/2 each). `scale_axis0 = false`
/// leaves axis 0 unscaled (the in-plane scaling of nnUNet's "dummy 2D" mode). Disable with
/// probability = 0.
///
/// Example: `ScalingOptions s; s.probability = 1; s.range = {1.3, 1.3};`
struct ScalingOptions {
  double probability = 0.2;
  std::array<double, 2> range = {0.7, 1.4};
  bool scale_axis0 = true;
};

/// Mirroring: each axis flips (image and labels together) with its own probability (nnUNet: 0.5).
/// Example: `MirrorOptions m; m.probability_per_axis = {0, 0, 1};  // always flip W, never D or H`
struct MirrorOptions {
  std::array<double, 3> probability_per_axis = {0.5, 0.5, 0.5};
};

/// What draw_spatial decided for one sample.
struct SpatialDraw {
  bool transformed = false;                           ///< false: plain centre crop, no interpolation
  std::array<double, 3> angles_rad{};                 ///< rotation about axes 0, 1, 2
  double scale = 1.0;                                 ///< isotropic factor (axis 0 stays 1 when !scale_axis0)
  Matrix3 matrix{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}};  ///< output offset -> input offset
};

/// The sampling matrix R0(a0) * R1(a1) * R2(a2) * diag(scales), where Ri rotates the plane of the
/// two other axes counter-clockwise (R0 = [[1,0,0],[0,c,-s],[0,s,c]], R1 = [[c,0,s],[0,1,0],[-s,0,c]],
/// R2 = [[c,-s,0],[s,c,0],[0,0,1]]).
/// Example: `Matrix3 m = rotation_scale_matrix({std::numbers::pi / 2, 0, 0}, {1, 1, 1});`
Matrix3 rotation_scale_matrix(std::array<double, 3> angles_rad, std::array<double, 3> scales);

/// Draws rotation and scaling for one sample (Note [Rotation probability semantics]). Draw order:
/// rotate?, scale?, then the angles (axis 0, 1, 2), then the factor.
/// Example: `SpatialDraw s = draw_spatial(RotationOptions{}, ScalingOptions{}, gen);`
SpatialDraw draw_spatial(const RotationOptions& rotation, const ScalingOptions& scaling, Generator& gen);

/// Where a centred crop of `out` voxels starts in an axis of `in` voxels: floor((in - out) / 2), also
/// for in < out (negative: the crop pads).
/// Example: `centre_crop_start(249, 128)  // 60`
std::int64_t centre_crop_start(std::int64_t in, std::int64_t out);

/// The crop of extent `out` centred in the input: it starts at floor((in - out) / 2) per axis and
/// pads with 0 (image) / 0 (labels) where the input is smaller.
/// Example: `AugmentedPatch p = centre_crop(image, labels, {128, 128, 128});`
AugmentedPatch centre_crop(const Tensor& image, const Tensor& labels, Extent3 out);

/// Resamples a patch of extent `out`: output voxel q reads the input at c_in + m * (q - c_out), with
/// c_out = (out - 1) / 2 and c_in = floor((in - out) / 2) + c_out (so the identity matrix gives
/// exactly centre_crop). Images are interpolated trilinearly, labels by nearest neighbour; points
/// outside the input read 0. `num_threads` <= 0 uses OpenMP's default.
///
/// Note [Linear image interpolation]: nnUNet v1 used cubic splines (order 3) for images; nnUNet v2
/// (batchgeneratorsv2) samples with grid_sample(mode='bilinear'), i.e. trilinear. TLK follows v2.
/// Labels use nearest neighbour (v2 interpolates one-hot masks linearly and thresholds at 0.5; nearest
/// is cheaper and never invents a label that is not in the input).
///
/// Example: `AugmentedPatch p = resample_patch(image, labels, {64, 64, 64}, draw.matrix);`
AugmentedPatch resample_patch(const Tensor& image, const Tensor& labels, Extent3 out, const Matrix3& m,
                              int num_threads = 0);

/// Draws which axes to flip (one uniform draw per axis, axis 0 first).
/// Example: `std::array<bool, 3> axes = draw_mirror(MirrorOptions{}, gen);`
std::array<bool, 3> draw_mirror(const MirrorOptions& options, Generator& gen);

/// Flips `patch` (image and labels) along the axes marked true.
/// Example: `mirror_(patch, {false, false, true});`
void mirror_(AugmentedPatch& patch, std::array<bool, 3> axes, int num_threads = 0);

/// nnUNet's get_patch_size: the extent to load so that rotated/scaled sampling stays inside it.
///
/// Note [Enlarged patch size]: reproduced as nnUNet computes it, for the same loading cost. Per axis
/// a in 0..2, the patch's corner vector is rotated about axis a alone by the largest |angle| of that
/// axis (clamped to 90 degrees), with batchgenerators' rotate_coords_3d convention; the result is the
/// elementwise max of |rotated corner| over the three rotations and the patch itself, divided by the
/// smallest scale factor (axis 0 excluded when !scale_axis0) and truncated. It is a heuristic, not a
/// bound: a rotation about axis 0 grows only H, not W ({24, 24, 24} -> {34, 46, 34} for +-30 degrees
/// about axis 0 alone), and the in-plane +-180 degrees of dummy 2D is clamped to 90. Sampling points
/// outside the loaded region read 0 (image) / 0 (labels), as in nnUNet. With the 3D defaults this is
/// rare: for a 128^3 patch loaded as 249^3, about 0.5% of samples (those drawing a large rotation and
/// a scale near 1.4) have any such voxel, at most about 1% of their voxels (a Monte-Carlo estimate).
/// A disabled rotation (probability or probability_per_axis 0) counts as 0 degrees and a disabled
/// scaling as factor 1; the result is never smaller than `patch`.
///
/// Example: `enlarged_patch_size({128, 128, 128}, RotationOptions{}, ScalingOptions{})  // {249, 249, 249}`
Extent3 enlarged_patch_size(Extent3 patch, const RotationOptions& rotation, const ScalingOptions& scaling);

}  // namespace tlk::data
