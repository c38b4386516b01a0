#pragma once
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "tlk/tensor/tensor.h"

namespace tlk::io {

/// NIfTI voxel types TLK reads and writes (the NIfTI datatype codes).
enum class NiftiType : std::int16_t { u8 = 2, i16 = 4, i32 = 8, f32 = 16, f64 = 64, u16 = 512 };

/// A NIfTI-1 or NIfTI-2 image as stored in its file.
///
/// Note [NIfTI axes]: NIfTI stores x fastest. `data` holds the voxels row-major with the axes
/// reversed, shape [dim3, dim2, dim1] (or [dim4, dim3, dim2, dim1] for 4-D files), so its memory is
/// the file's order without any copy; `dims` and `spacing` keep NIfTI's own order (dim1 first).
/// i16 and u16 voxels are held as i32 (lossless) and written back in their stored type.
///
/// Example:
/// ```
/// io::NiftiImage mask = io::read_nifti("case_00010/segmentation.nii.gz");
/// fmt::print("{} voxels, spacing {} mm\n", mask.data.numel(), mask.spacing[0]);
/// io::write_nifti("copy.nii.gz", mask);
/// ```
struct NiftiImage {
  Tensor data;                      ///< voxels, see Note [NIfTI axes]
  std::vector<std::int64_t> dims;   ///< dim[1..dim[0]]
  std::array<double, 3> spacing{};  ///< pixdim[1..3] in the file's units (mm for medical images)
  NiftiType stored_type = NiftiType::f32;
  int version = 1;                          ///< 1 or 2
  double scl_slope = 0.0, scl_inter = 0.0;  ///< value = slope * stored + inter when slope != 0
  int qform_code = 0, sform_code = 0;
  std::array<double, 6> quatern{};              ///< quatern_b, c, d, qoffset_x, y, z
  double qfac = 1.0;                            ///< pixdim[0]: -1 flips the third axis of the qform
  std::array<std::array<double, 4>, 3> srow{};  ///< sform rows
  int xyzt_units = 2;                           ///< mm, as most medical images
  std::string description;

  /// The voxel-to-world matrix (rows of a 4x4): the sform when sform_code > 0, else the qform when
  /// qform_code > 0, else a scaling by the spacing (NIfTI's "method 1").
  std::array<std::array<double, 4>, 4> affine() const;
  /// The voxels as f32 with scl_slope/scl_inter applied (when slope is not 0).
  Tensor scaled_f32() const;
};

/// Reads a .nii or .nii.gz file (NIfTI-1 or NIfTI-2, either byte order). A corrupt or truncated file
/// (wrong header size or magic, dims that do not match the data, a wrong vox_offset, an unsupported
/// voxel type, a gzip stream cut short) is a tlk::Error naming the file and the problem.
NiftiImage read_nifti(const std::filesystem::path& path);

/// Writes `image` as NIfTI-`image.version` in the file's native (little-endian) order, gzip-compressed
/// when the name ends in .gz; written to a temporary name and renamed (nothing half-written is left).
void write_nifti(const std::filesystem::path& path, const NiftiImage& image);

}  // namespace tlk::io
