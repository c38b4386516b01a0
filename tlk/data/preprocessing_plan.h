#pragma once
#include <array>
#include <filesystem>
#include <string>
#include <vector>

#include "tlk/data/normalization.h"
#include "tlk/data/raw_dataset.h"

namespace tlk::data {

/// How a dataset was preprocessed, so that training, prediction and another dataset (the target of a
/// domain adaptation) apply exactly the same steps. `tlk preprocess` writes it as
/// `<out>/preprocessing.json`; checkpoints carry a copy, so `tlk predict` needs only the checkpoint.
///
/// Example:
/// ```
/// data::PreprocessingPlan plan = data::PreprocessingPlan::load("prep/AMOS");
/// fmt::print("spacing {} mm, {} classes\n", plan.target_spacing[0], plan.num_classes());
/// ```
struct PreprocessingPlan {
  std::array<double, 3> target_spacing{1.0, 1.0, 1.0};  ///< (z, y, x) mm
  std::vector<std::string> channel_names;               ///< dataset.json's, one per input channel
  std::vector<ChannelNormalization> normalization;      ///< one per channel
  std::vector<DatasetLabel> labels;                     ///< after the label map; background first
  std::string label_map;                                ///< applied to labels on load ("2:1,3:1,*:0")
  std::string dataset_name;
  std::string normalization_source;  ///< the folder whose statistics were used ("" = this dataset)

  /// Classes the network predicts: the largest label value + 1.
  std::int64_t num_classes() const;
  std::string to_json() const;
  /// Parses to_json()'s text; `source` names it in errors.
  static PreprocessingPlan from_json(const std::string& text, const std::string& source);
  /// Writes `dir`/preprocessing.json (atomically) / reads it back.
  void save(const std::filesystem::path& dir) const;
  static PreprocessingPlan load(const std::filesystem::path& dir);
};

/// The labels after a label map: each value that any dataset label maps to, named after the labels
/// that map to it ("kidney_right+kidney_left"), 0 always "background".
std::vector<DatasetLabel> mapped_labels(const std::vector<DatasetLabel>& labels, const std::string& label_map);

/// nnUNet's default target spacing from the cases' spacings ((z, y, x) each): the median per axis,
/// except that when the median spacing is anisotropic (max/min > 3) the low-resolution axis takes
/// the 10th percentile instead, so thin structures keep some slices.
std::array<double, 3> default_target_spacing(const std::vector<std::array<double, 3>>& spacings);

}  // namespace tlk::data
