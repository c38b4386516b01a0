#pragma once
#include <array>
#include <filesystem>
#include <optional>
#include <string>

#include "tlk/data/preprocessed_case.h"
#include "tlk/data/preprocessing_plan.h"
#include "tlk/data/raw_dataset.h"
#include "tlk/data/resample.h"

namespace tlk::data {

/// A raw case read, brought to canonical order and cropped to its nonzero box, not yet normalized
/// or resampled (the stage at which nnUNet collects intensity statistics).
struct LoadedCase {
  std::string id;
  Tensor image;   ///< f32 [C, D, H, W], canonical and cropped
  Tensor labels;  ///< u8 [D, H, W] after the label map (undefined without a label file)
  CaseGeometry geometry;  ///< spacing not yet set
  io::NiftiImage header;  ///< the first channel's header with its data dropped (for writing predictions)
};

/// Reads a case's channel files (and label file when `with_labels` and it has one), checks that
/// every file has the same shape and orientation, applies `label_map`, and brings it to canonical
/// order, cropped to nonzero. Errors name the file and the mismatch.
LoadedCase load_raw_case(const RawCase& raw, const std::string& label_map, bool with_labels = true);

/// Normalizes (per channel) and resamples a loaded case to the plan's spacing; labels are resampled
/// as nnUNet does (linear on one-hot, nearest along an anisotropic axis) and their class locations
/// sampled with `gen`.
PreprocessedCase finish_case(LoadedCase loaded, const PreprocessingPlan& plan, Generator& gen,
                             const ResampleOptions& resample = {});

/// Maps per-class probabilities of a preprocessed case (f32 [K, D, H, W] at the plan's spacing) back
/// to the source file's voxels: resampled (linear, as nnUNet) to the cropped shape, argmax, placed
/// into the uncropped volume (background outside the crop), and reordered from canonical to the
/// file's order. Returns u8 labels shaped like the file's data tensor.
Tensor labels_in_file_geometry(const Tensor& probabilities, const CaseGeometry& geometry);

/// What `tlk preprocess` does.
struct PreprocessOptions {
  std::optional<std::array<double, 3>> spacing;  ///< target (z, y, x) mm; default: nnUNet's from the dataset
  std::string label_map;                         ///< e.g. "2:1,3:1,*:0"
  std::filesystem::path norm_stats_from;         ///< a preprocessed folder whose CT statistics to reuse
  int threads = 0;                               ///< cases in parallel (0: the number of cores)
  std::uint64_t seed = 1;                        ///< class-location sampling
  bool quiet = false;                            ///< no progress bar
};

/// Preprocesses every training case of the raw dataset at `raw_dir` into `out_dir`: one `<id>.h5`
/// per case and `preprocessing.json`. Cases without a label file are kept without labels (an
/// unlabelled adaptation target) when the CT statistics come from `norm_stats_from`. Two passes when CT statistics are computed here (statistics,
/// then the cases), one pass with norm_stats_from. Each case is written atomically, so an
/// interrupted run leaves only whole cases. Returns the plan.
///
/// Example: `data::preprocess_dataset("raw/Dataset001_AMOS", "prep/AMOS", {.label_map = "2:1,3:1,*:0"});`
PreprocessingPlan preprocess_dataset(const std::filesystem::path& raw_dir, const std::filesystem::path& out_dir,
                                     const PreprocessOptions& options);

}  // namespace tlk::data
