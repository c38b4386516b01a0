#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "tlk/tensor/tensor.h"

namespace tlk::data {

/// A box of voxels [begin, end) per spatial axis (z, y, x), as nnUNet's crop-to-nonzero bbox.
/// Example: `data::BoundingBox box{{0, 10, 12}, {50, 400, 500}};  // box.shape() == {50, 390, 488}`
struct BoundingBox {
  std::array<std::int64_t, 3> begin{0, 0, 0};
  std::array<std::int64_t, 3> end{0, 0, 0};

  /// end - begin per axis.
  std::array<std::int64_t, 3> shape() const { return {end[0] - begin[0], end[1] - begin[1], end[2] - begin[2]}; }
  /// "[0:50, 10:400, 12:500]".
  std::string str() const;
  friend bool operator==(const BoundingBox&, const BoundingBox&) = default;
};

/// The smallest box holding every voxel where any channel is not 0 (NaN counts as not 0), for a
/// volume [D, H, W] or [C, D, H, W] of any CPU dtype. nnUNet crops images to this box (of the image's
/// channels, before normalisation). A volume with no nonzero voxel gives the whole volume (nothing
/// to crop away, and the crop stays a valid, non-empty input).
/// Example: `data::BoundingBox box = data::nonzero_bounding_box(ct);`
BoundingBox nonzero_bounding_box(const Tensor& volume);

/// The voxels of `volume` ([D, H, W] or [C, D, H, W], any dtype) inside `box`, as a contiguous copy.
/// Example: `Tensor small = data::crop(ct, box);  // [C, box.shape()...]`
Tensor crop(const Tensor& volume, const BoundingBox& box);

/// Places `cropped` ([D, H, W] or [C, D, H, W], the box's shape) back into a new volume of spatial
/// shape `full_shape`, every voxel outside the box set to `fill`: uncrop(crop(v, box), box, shape, 0)
/// is v wherever v is inside the box.
/// Example: `Tensor full = data::uncrop(prediction, box, {50, 512, 512}, 0);`
Tensor uncrop(const Tensor& cropped, const BoundingBox& box, const std::array<std::int64_t, 3>& full_shape,
              double fill = 0.0);

}  // namespace tlk::data
