#pragma once
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "tlk/tensor/tensor.h"

namespace tlk::task {

/// One class to score: a label value, or a union of label values. KiTS19 scores "kidney" as
/// kidney ∪ tumor, the label set {1, 2}, written "1+2".
///
/// Example: `task::EvaluationLabel kidney{{1, 2}};  // kidney.name() == "1+2"`
struct EvaluationLabel {
  std::vector<int> values;  ///< label values 0..255 whose union is the class
  /// "1", or "1+2" for a union.
  std::string name() const;
  friend bool operator==(const EvaluationLabel&, const EvaluationLabel&) = default;
};

/// Parses "1,2,1+2" (labels 0..255; '+' joins a union). Bad text is a tlk::Error quoting it.
/// Example: `auto labels = task::parse_evaluation_labels("1,2,1+2");`
std::vector<EvaluationLabel> parse_evaluation_labels(const std::string& text);

/// The overlap of one class in one case, or (in EvaluationResult::mean) its mean over cases.
///
/// Note [Dice of an empty class]: as nnUNet's evaluate_predictions, Dice = 2TP / (2TP + FP + FN)
/// and IoU = TP / (TP + FP + FN) are NaN when the class is absent from both prediction and
/// reference; means over cases skip NaNs (nanmean), so such a case neither helps nor hurts.
struct LabelMetrics {
  double dice = std::numeric_limits<double>::quiet_NaN();
  double iou = std::numeric_limits<double>::quiet_NaN();
  double tp = 0, fp = 0, fn = 0, tn = 0;         ///< voxel counts (means over cases in a mean)
  double n_pred = 0, n_ref = 0;                  ///< voxels of the class in prediction and reference
  double volume_pred_ml = 0, volume_ref_ml = 0;  ///< n_pred, n_ref times the reference's voxel volume
};

/// The scores of one case, one LabelMetrics per evaluated label.
struct CaseEvaluation {
  std::string id;  ///< the file name without .nii.gz / .nii
  std::filesystem::path prediction, reference;
  std::vector<LabelMetrics> metrics;
};

/// The result of evaluate_folder.
struct EvaluationResult {
  std::vector<EvaluationLabel> labels;
  std::vector<CaseEvaluation> cases;  ///< sorted by id
  std::vector<LabelMetrics> mean;     ///< per label over cases: Dice and IoU nanmean, the rest mean
  /// The mean of `mean` over the foreground labels (all but label 0 alone); labels whose mean is NaN
  /// are skipped.
  LabelMetrics foreground_mean;
};

/// How evaluate_folder runs.
struct EvaluationOptions {
  /// Evaluate only the cases that have a prediction (nnUNet's --chill); by default a reference
  /// without a prediction is an error.
  bool allow_missing_predictions = false;
  int num_threads = 0;  ///< cases evaluated at once; 0: OpenMP's default
  bool quiet = false;   ///< no progress bar
};

/// The metrics of `labels` for one prediction against its reference (label maps of one shape: u8,
/// i32, i64, or whole-number f32/f64 with values 0..255). `voxel_volume_ml` scales the volumes.
/// Example: `auto m = task::evaluate_label_maps(pred, ref, {{{1, 2}}})[0]; fmt::print("{}", m.dice);`
std::vector<LabelMetrics> evaluate_label_maps(const Tensor& prediction, const Tensor& reference,
                                              const std::vector<EvaluationLabel>& labels, double voxel_volume_ml = 0);

/// Scores every NIfTI label map (.nii.gz or .nii) of `reference_dir` against the file of the same case
/// id in `prediction_dir` (nnUNet's evaluate_folder). `labels` empty: every nonzero value that occurs
/// in any reference or prediction. A reference without a prediction (see
/// EvaluationOptions::allow_missing_predictions), a prediction without a reference, no cases at all,
/// and shapes that differ (naming both files) are tlk::Errors. Cases run in parallel.
/// Example:
/// ```
/// auto r = task::evaluate_folder("predictions", "nnUNet_raw/Dataset064_KiTS19/labelsTr",
///                                task::parse_evaluation_labels("1+2,2"));
/// fmt::print("kidney Dice {:.4f}\n", r.mean[0].dice);
/// ```
EvaluationResult evaluate_folder(const std::filesystem::path& prediction_dir,
                                 const std::filesystem::path& reference_dir,
                                 const std::vector<EvaluationLabel>& labels = {},
                                 const EvaluationOptions& options = {});

/// Writes one CSV row per case and label (case,label,dice,iou,tp,fp,fn,tn,n_pred,n_ref,volume_pred_ml,
/// volume_ref_ml; NaN as "nan"), atomically.
void write_evaluation_csv(const std::filesystem::path& path, const EvaluationResult& result);

/// Writes the result as JSON in the shape of nnUNet's summary.json ("metric_per_case" with "metrics"
/// per label, "mean" per label, "foreground_mean"; metric names Dice, IoU, TP, FP, FN, TN, n_pred,
/// n_ref, volume_pred_ml, volume_ref_ml), atomically. NaN is written as null (JSON has no NaN).
void write_evaluation_json(const std::filesystem::path& path, const EvaluationResult& result);

}  // namespace tlk::task
