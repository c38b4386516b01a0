#pragma once
#include <array>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tlk/data/crop.h"
#include "tlk/data/orientation.h"
#include "tlk/tensor/tensor.h"

namespace tlk::data {

/// Where a preprocessed volume came from, enough to map a prediction back onto the file's voxels:
/// file order -> canonical (orientation) -> crop (box) -> resampling (spacing).
struct CaseGeometry {
  Orientation orientation;                    ///< of the source file (includes its data shape)
  std::array<std::int64_t, 3> canonical_shape{};  ///< canonical (z, y, x) shape before the crop
  BoundingBox crop;                           ///< nonzero box in the canonical volume
  std::array<double, 3> original_spacing{};   ///< canonical (z, y, x) spacing of the file
  std::array<double, 3> spacing{};            ///< spacing after resampling (the plan's target)

  std::string to_json() const;
  static CaseGeometry from_json(const std::string& text, const std::string& source);
};

/// One case after preprocessing: canonical, cropped, normalized and resampled.
struct PreprocessedCase {
  std::string id;
  Tensor image;   ///< f32 [C, D, H, W]
  Tensor labels;  ///< u8 [D, H, W]; undefined for an unlabelled case
  std::map<int, Tensor> class_locations;  ///< see SampleSource::class_locations
  CaseGeometry geometry;
};

/// Writes a case as `<dir>/<id>.h5` (chunked, compressed datasets `image`, `labels`,
/// `class_locations/<label>`, and the geometry as a JSON attribute), atomically.
void save_preprocessed_case(const std::filesystem::path& dir, const PreprocessedCase& c);
/// Reads a case written by save_preprocessed_case; errors name the file. With `read_labels` false
/// the labels and class locations are never read (an adaptation target's labels stay unseen).
PreprocessedCase load_preprocessed_case(const std::filesystem::path& file, bool read_labels = true);
/// The case files (`*.h5`) of a preprocessed folder, sorted by id.
std::vector<std::filesystem::path> preprocessed_case_files(const std::filesystem::path& dir);

}  // namespace tlk::data
