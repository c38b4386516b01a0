#pragma once
#include <map>
#include <string>
#include <vector>

#include "tlk/io/config.h"
#include "tlk/nn/grad_scaler.h"
#include "tlk/task/training_log.h"
#include "tlk/tensor/tensor.h"

namespace tlk::task {

/// train.precision of a training config: f32, bf16 or f16, and 16-bit only with `device` (the
/// config's train.device) on a GPU; a tlk::Error naming the config file otherwise.
/// Example: `DType p = read_train_precision(config, "cuda");`
DType read_train_precision(const io::Config& config, const std::string& device);

/// What a trainer does differently under train.precision: bf16 and f16 run the forward and the
/// losses under autocast (Note [Autocast]; the trainer holds the AutocastGuard), and f16 also scales
/// the loss (Note [Loss scaling]): the backward runs on the scaled loss, the gradients are unscaled
/// and checked before clipping and the step, a step with an inf or NaN gradient is skipped, and the
/// scale travels in checkpoints and in the step log. Under f32 and bf16 every call is a plain pass.
///
/// Example:
/// ```
/// MixedPrecision mp(config.precision);
/// { AutocastGuard amp(mp.dtype()); loss = model.loss(x, y); }
/// mp.backward(loss);
/// if (mp.gradients_finite(params)) optimizer.step();
/// ```
class MixedPrecision {
 public:
  /// `precision`: f32, bf16 or f16.
  explicit MixedPrecision(DType precision);
  DType dtype() const { return precision_; }
  /// Backward of `loss` (of loss × scale under f16).
  void backward(const Tensor& loss);
  /// After backward and any gradient all-reduce: under f16 divides the gradients of `trained` by the
  /// scale and adapts it; returns whether every gradient is finite (always true otherwise). Call it
  /// once per step.
  bool gradients_finite(const std::vector<Tensor>& trained);
  /// Under f16, "loss_scale" (after this step's update) and "step_skipped" columns for the step log.
  void log(LogRow& row) const;
  /// Under f16, the scale and its growth tracker as checkpoint metadata ("train.loss_scale",
  /// "train.loss_scale_growth"), and back.
  void save(std::map<std::string, std::string>& metadata) const;
  void load(const std::map<std::string, std::string>& metadata);

 private:
  DType precision_;
  nn::GradScaler scaler_;
  bool last_finite_ = true;
};

}  // namespace tlk::task
