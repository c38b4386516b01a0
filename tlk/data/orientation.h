#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "tlk/io/nifti.h"
#include "tlk/tensor/tensor.h"

namespace tlk::data {

/// How a NIfTI file's voxel axes map onto TLK's canonical axes.
///
/// Note [Canonical orientation]: the canonical volume is the file's voxels reordered (a permutation
/// and flips only, never interpolation) so that they are closest to RAS+, as nibabel's
/// as_closest_canonical: tensor [D, H, W] = [z, y, x] with x increasing towards Right, y towards
/// Anterior and z towards Superior. Each file voxel axis i, j, k (NIfTI order; the file tensor holds
/// them reversed, [dim3, dim2, dim1]) is assigned to the world axis its direction is most aligned
/// with, see orientation_of. Because only axes are permuted and reversed, from_canonical(to_canonical(v))
/// is v bit for bit, and a prediction brought back with from_canonical overlays the file in a viewer
/// when written with the file's header.
///
/// Example:
/// ```
/// io::NiftiImage ct = io::read_nifti("case_00010/imaging.nii.gz");
/// data::Orientation o = data::orientation_of(ct);        // o.code() == "IPL" for KiTS19
/// Tensor v = data::to_canonical(ct.scaled_f32(), o);     // [z, y, x], RAS+
/// io::NiftiImage pred = ct;
/// pred.data = data::from_canonical(labels, o);           // back in the file's voxel order
/// ```
struct Orientation {
  /// world[f]: the world axis (0 = x/R, 1 = y/A, 2 = z/S) that file voxel axis f (0 = i, 1 = j, 2 = k)
  /// runs along. A permutation of {0, 1, 2}.
  std::array<int, 3> world{0, 1, 2};
  /// flipped[f]: true when the index along file axis f increases towards L, P or I.
  std::array<bool, 3> flipped{false, false, false};
  /// The spatial shape of the file's data tensor, [dim3, dim2, dim1] (0: not known yet; filled in by
  /// orientation_of and checked by to_canonical / from_canonical).
  std::array<std::int64_t, 3> file_shape{0, 0, 0};

  /// The axis codes in the file's i, j, k order, as nibabel's aff2axcodes: "RAS", "IPL", ...
  std::string code() const;
  /// True when to_canonical is the identity (the file is already stored as RAS+).
  bool is_canonical() const;
  /// The canonical spatial shape [D, H, W] = [z, y, x].
  std::array<std::int64_t, 3> canonical_shape() const;
};

/// The orientation of `image` from its affine (sform, else qform, else scaling; see
/// io::NiftiImage::affine). Greedy and deterministic: the (file axis, world axis) pair with the
/// largest |direction cosine| is assigned first, then the largest among the rest, and so on; ties go
/// to the lower file axis, then the lower world axis. A zero direction (a degenerate affine) takes the
/// remaining world axes in order, unflipped.
/// Example: `data::orientation_of(io::read_nifti(path)).code()  // "IPL"`
Orientation orientation_of(const io::NiftiImage& image);

/// The orientation of a data tensor of spatial shape `file_shape` ([dim3, dim2, dim1]) whose
/// voxel-to-world matrix is `affine` (rows of a 4x4 in NIfTI's i, j, k column order).
/// Example: `data::orientation_of(image.affine(), {512, 512, 50})`
Orientation orientation_of(const std::array<std::array<double, 4>, 4>& affine,
                           const std::array<std::int64_t, 3>& file_shape);

/// Reorders a file volume [D, H, W] or [C, D, H, W] (the file tensor's axes, a leading channel axis
/// left as it is) into canonical order [.., z, y, x]. Any CPU dtype; the result is a contiguous copy.
/// Example: `Tensor canon = data::to_canonical(mask.data, data::orientation_of(mask));`
Tensor to_canonical(const Tensor& file_volume, const Orientation& orientation);

/// The inverse of to_canonical: a canonical volume [.., z, y, x] back in the file's voxel order.
/// Example: `pred.data = data::from_canonical(labels, o);`
Tensor from_canonical(const Tensor& canonical_volume, const Orientation& orientation);

/// The voxel spacing of the canonical volume in (z, y, x) order, from the file's pixdim.
/// Example: `auto s = data::canonical_spacing(ct, o);  // {3.0, 0.76, 0.76} for case_00010`
std::array<double, 3> canonical_spacing(const io::NiftiImage& image, const Orientation& orientation);

/// The voxel-to-world matrix of the canonical volume, in NIfTI's index order (column 0 multiplies
/// the x index, column 2 the z index): world = A * (x, y, z, 1). Its 3x3 part has a positive
/// diagonal that dominates its column (up to obliquity).
/// Example: `auto a = data::canonical_affine(ct.affine(), o);`
std::array<std::array<double, 4>, 4> canonical_affine(const std::array<std::array<double, 4>, 4>& file_affine,
                                                      const Orientation& orientation);

/// "IPL, file [512, 512, 50] -> canonical [50, 512, 512] (z, y, x)": one line for `tlk info`.
std::string describe(const Orientation& orientation);

}  // namespace tlk::data
