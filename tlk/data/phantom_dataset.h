#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include "tlk/data/orientation.h"
#include "tlk/data/phantom.h"
#include "tlk/data/raw_dataset.h"
#include "tlk/io/nifti.h"

namespace tlk::data {

/// The dataset.json that write_phantom_dataset writes for `options` (channel "CT", the label set).
/// Example: `int kidney = data::phantom_dataset_json(data::kits_like_target(4)).label_value("kidney");  // 1`
DatasetJson phantom_dataset_json(const PhantomDomainOptions& options);

/// What write_phantom_dataset writes besides the images.
/// Example: `data::write_phantom_dataset(dir, target, 2, {.write_labels = false});  // a label-free target`
struct PhantomWriteOptions {
  /// false: an unlabeled training domain (no labelsTr), as domain adaptation sees its target; the test
  /// cases (imagesTs) keep their labelsTs for evaluation.
  bool write_labels = true;
};

/// Writes an nnUNet v2 raw dataset of the domain into `dir`: dataset.json, imagesTr/<id>_0000.nii.gz
/// (int16 HU) and labelsTr/<id>.nii.gz (u8) for cases 0 .. cases-1, and imagesTs / labelsTs for the
/// next test_cases. Files are stored in options.orientation with matching sform and qform
/// (codes 1, scanner) and the spacing as pixdim. Cases are generated in parallel (OpenMP); every file
/// is written atomically. The same seed gives identical files.
/// Example:
/// ```
/// data::write_phantom_dataset("raw/Dataset901_AmosPhantom", data::amos_like_source(8, 0.5), 1);
/// data::write_phantom_dataset("raw/Dataset902_KitsPhantom", data::kits_like_target(8, 0.5), 2);
/// ```
void write_phantom_dataset(const std::filesystem::path& dir, const PhantomDomainOptions& options, std::uint64_t seed,
                           const PhantomWriteOptions& write = {});

/// A NIfTI header for phantom volumes and the file orientation it encodes.
/// Example: `io::NiftiImage im = h.header; im.data = data::from_canonical(labels, h.orientation);`
struct PhantomHeader {
  io::NiftiImage header;    ///< dims, pixdim, sform and qform (codes 1); `data` left empty
  Orientation orientation;  ///< file_shape set: from_canonical(volume, orientation) gives the file's data
};

/// The header for a canonical volume on `grid` stored in the file orientation `code` ("LPS", "IPL",
/// ...: one of R/L, A/P, S/I per file axis i, j, k). A malformed code is a tlk::Error.
/// Example: `data::PhantomHeader h = data::phantom_nifti_header(options.grid(), "IPL");`
PhantomHeader phantom_nifti_header(const PhantomGrid& grid, const std::string& code);

}  // namespace tlk::data
