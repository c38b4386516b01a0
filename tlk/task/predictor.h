#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tlk/data/preprocessing_plan.h"
#include "tlk/data/raw_dataset.h"
#include "tlk/io/nifti.h"
#include "tlk/nn/unet.h"
#include "tlk/task/checkpoint.h"
#include "tlk/task/sliding_window.h"

namespace tlk::task {

/// How `tlk predict` runs; the defaults are nnUNet's.
struct PredictOptions {
  double step = 0.5;    ///< window step as a fraction of the patch
  bool mirror = true;   ///< 8-way mirroring test-time augmentation
  int batch = 1;        ///< windows per network call
  bool quiet = false;   ///< no progress bar
  Device device = Device::cpu();  ///< where the network runs (windows are cut and stitched on the CPU)
  /// f32, or bf16 / f16: the network runs under autocast (Note [Autocast]) on a GPU; the
  /// probabilities are stitched in f32 either way. 16-bit needs a CUDA device.
  DType precision = DType::f32;
  /// plain, or channels_last on a GPU: the network's activations in NDHWC (Note [Channels-last on the
  /// GPU] in kernels/cuda/launch.h).
  Layout layout = Layout::plain;
  /// Maps the model's classes onto the classes to write (a source model evaluated on a target task):
  /// output class k (k >= 1) takes the largest probability among its model classes, background the
  /// largest among the model classes no group lists (TLK's source_pred_to_target_pred). Empty: the
  /// model's own classes. Parsed from "1=2+3" by parse_class_map.
  std::vector<std::vector<int>> class_map;
};

/// Parses "k=a+b,..." (output class k from model classes a, b; k >= 1 and listed once each) into
/// PredictOptions::class_map. Example: `parse_class_map("1=2+3")` (AMOS's two kidneys -> kidney).
std::vector<std::vector<int>> parse_class_map(const std::string& text);

/// Applies a class map (PredictOptions::class_map) to probabilities [K, D, H, W]: [K', D, H, W].
Tensor map_classes(const Tensor& probabilities, const std::vector<std::vector<int>>& class_map);

/// A trained segmentation checkpoint ready to predict raw NIfTI volumes: it preprocesses each
/// volume exactly as training data was (the plan stored in the checkpoint), runs nnUNet's sliding
/// window with Gaussian weighting and optional mirroring, and maps the result back to the input's
/// voxels, so the prediction overlays the image in a viewer.
///
/// Example:
/// ```
/// task::Predictor predictor(task::load_checkpoint("runs/amos/best.h5"));
/// io::NiftiImage labels = predictor.predict({"case_00010", {"imagesTs/case_00010_0000.nii.gz"}, {}});
/// io::write_nifti("pred/case_00010.nii.gz", labels);
/// ```
class Predictor {
 public:
  explicit Predictor(const Checkpoint& checkpoint, PredictOptions options = {});
  /// Predicts one case (its channel files in order); returns u8 labels with the first channel's
  /// header (shape, affine, spacing).
  io::NiftiImage predict(const data::RawCase& input) const;
  const data::PreprocessingPlan& plan() const { return plan_; }
  const std::array<std::int64_t, 3>& patch() const { return window_.patch; }

 private:
  data::PreprocessingPlan plan_;
  std::shared_ptr<nn::UNet> net_;
  SlidingWindowOptions window_;
  std::vector<std::vector<int>> class_map_;
  DType precision_ = DType::f32;
};

/// The cases in `input`: one NIfTI file (a one-case, one-channel input, or `<case>_0000.nii.gz` of a
/// multi-channel case whose other channel files lie beside it), or a folder of them (nnUNet's
/// `<case>_XXXX.nii.gz` names group channels into cases; other names are one-channel cases).
/// `channels` is the number of channels the model takes; a case without all of them is an error.
std::vector<data::RawCase> list_prediction_inputs(const std::filesystem::path& input, std::size_t channels);

}  // namespace tlk::task
