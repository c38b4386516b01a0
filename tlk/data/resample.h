#pragma once
#include <array>
#include <cstdint>
#include <optional>

#include "tlk/tensor/tensor.h"

namespace tlk::data {

/// Interpolation along one axis. nnUNet's spline orders: nearest = 0, linear = 1, cubic = 3.
enum class Interpolation { nearest, linear, cubic };

/// How volumes are resampled to a target spacing; the defaults are nnUNet's (v1 resample_patient,
/// v2 default_resampling.py).
/// Example: `data::ResampleOptions opt; opt.image_order = data::Interpolation::linear;`
struct ResampleOptions {
  Interpolation image_order = Interpolation::cubic;          ///< images: order 3
  Interpolation label_order = Interpolation::linear;         ///< labels: order 1 on one-hot
  Interpolation lowres_axis_order = Interpolation::nearest;  ///< along the low-resolution axis (order_z)
  /// An axis is resampled on its own (with lowres_axis_order) when max/min spacing exceeds this.
  double anisotropy_threshold = 3.0;
  /// Clip images to each channel's input range (skimage resize's clip=True; only cubic overshoots).
  bool clip_to_input_range = true;
};

/// nnUNet's target shape: round(old_spacing / new_spacing * shape) per axis (numpy's round: half to
/// even), at least 1.
/// Example: `data::shape_for_spacing({50, 512, 512}, {3, 0.76, 0.76}, {3, 1.5, 1.5})  // {50, 259, 259}`
std::array<std::int64_t, 3> shape_for_spacing(const std::array<std::int64_t, 3>& shape,
                                              const std::array<double, 3>& old_spacing,
                                              const std::array<double, 3>& new_spacing);

/// The axis nnUNet resamples separately (its "separate z"), or nullopt: when max/min of the old
/// spacing exceeds `threshold`, the axis with the largest old spacing; else the same test on the new
/// spacing. When two or three axes share the largest spacing there is no separate axis.
/// Example: `data::anisotropic_axis({5, 0.8, 0.8}, {1, 1, 1})  // 0`
std::optional<int> anisotropic_axis(const std::array<double, 3>& old_spacing, const std::array<double, 3>& new_spacing,
                                    double threshold = 3.0);

/// The interpolation per axis (z, y, x) that resample_image / resample_labels use: `order` on every
/// axis, except lowres_axis_order on the anisotropic_axis when there is one.
/// Example: `data::axis_orders({5, 0.8, 0.8}, {3, 1, 1}, Interpolation::cubic, {})  // {nearest, cubic, cubic}`
std::array<Interpolation, 3> axis_orders(const std::array<double, 3>& old_spacing,
                                         const std::array<double, 3>& new_spacing, Interpolation order,
                                         const ResampleOptions& options);

/// Resizes an f32 image [C, D, H, W] or [D, H, W] to the spatial shape `new_shape`, with one
/// interpolation per axis (separable passes, OpenMP-parallel); see Note [Resampling convention].
/// `clip` clips each channel to its input range.
/// Example: `Tensor y = data::resize_image(x, {40, 80, 80}, {Interpolation::cubic, Interpolation::cubic,
/// Interpolation::cubic});`
Tensor resize_image(const Tensor& image, const std::array<std::int64_t, 3>& new_shape,
                    const std::array<Interpolation, 3>& orders, bool clip = false);

/// Resizes a u8 label map [D, H, W]. Every axis nearest: a plain nearest-neighbour lookup. Otherwise
/// (linear on some axes, nearest on the others) the labels are resampled as one-hot indicators and
/// each voxel takes the label of largest interpolated indicator (ties: the larger label), see
/// Note [Labels on one-hot]. Cubic is refused.
/// Example: `Tensor small = data::resize_labels(mask, {50, 256, 256}, {Interpolation::nearest, Interpolation::linear,
/// Interpolation::linear});`
Tensor resize_labels(const Tensor& labels, const std::array<std::int64_t, 3>& new_shape,
                     const std::array<Interpolation, 3>& orders);

/// nnUNet's image resampling from `old_spacing` to `new_spacing` ((z, y, x) mm) at `new_shape`
/// (usually shape_for_spacing; give the original shape to map a prediction back).
/// Example:
/// ```
/// auto shape = data::shape_for_spacing(spatial, spacing, target);
/// Tensor x = data::resample_image(ct, shape, spacing, target);   // cubic, z nearest if anisotropic
/// ```
Tensor resample_image(const Tensor& image, const std::array<std::int64_t, 3>& new_shape,
                      const std::array<double, 3>& old_spacing, const std::array<double, 3>& new_spacing,
                      const ResampleOptions& options = {});

/// nnUNet's label resampling (linear on one-hot by default, nearest along an anisotropic axis).
/// Example: `Tensor y = data::resample_labels(mask, shape, spacing, target);`
Tensor resample_labels(const Tensor& labels, const std::array<std::int64_t, 3>& new_shape,
                       const std::array<double, 3>& old_spacing, const std::array<double, 3>& new_spacing,
                       const ResampleOptions& options = {});

}  // namespace tlk::data
