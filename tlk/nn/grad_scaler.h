#pragma once
// Dynamic loss scaling for f16 training, as PyTorch's torch.cuda.amp.GradScaler.
//
// Note [Loss scaling]: f16 has 5 exponent bits, so gradients below about 6e-8 flush to zero and
// above 65504 overflow. The loss is multiplied by a large scale S before backward, which moves the
// 16-bit gradients of the activations into range; the f32 parameter gradients are divided by S before
// the optimizer sees them. A step whose gradients hold an inf or NaN (S was too large) is skipped
// and S halves; after `growth_interval` finite steps in a row S doubles. bf16 has f32's exponent range
// and needs none of this.
#include <cstdint>
#include <vector>

#include "tlk/tensor/tensor.h"

namespace tlk::nn {

struct GradScalerOptions {
  double init_scale = 65536.0;          ///< S at the start (2^16, as PyTorch)
  double growth_factor = 2.0;           ///< S × this after growth_interval finite steps
  double backoff_factor = 0.5;          ///< S × this after a step with an inf or NaN gradient
  std::int64_t growth_interval = 2000;  ///< finite steps in a row before S grows
};

/// Scales the loss, unscales and checks the gradients, and adapts the scale (Note [Loss scaling]).
/// Example:
///   nn::GradScaler scaler;
///   scaler.scale(loss).backward();
///   const bool finite = scaler.unscale(net.parameters());
///   if (finite) optimizer.step();  // else the step is skipped
///   scaler.update(!finite);
class GradScaler {
 public:
  explicit GradScaler(GradScalerOptions options = {});

  /// loss × S (recorded, so backward sees the scaled loss).
  Tensor scale(const Tensor& loss) const;
  /// Divides the gradient of every parameter in `params` that has one by S; returns whether all of
  /// them are finite (checked after unscaling, summed on the gradients' device, one read per device).
  bool unscale(const std::vector<Tensor>& params) const;
  /// Adapts S after a step: backoff when `found_inf`, growth after growth_interval finite steps.
  void update(bool found_inf);

  /// The current scale S.
  double current_scale() const { return scale_; }
  /// Finite steps since S last changed.
  std::int64_t growth_tracker() const { return growth_tracker_; }
  /// Restores S and the growth tracker (from a checkpoint); S must be finite and > 0.
  void load(double scale, std::int64_t growth_tracker);

 private:
  GradScalerOptions options_;
  double scale_;
  std::int64_t growth_tracker_ = 0;
};

}  // namespace tlk::nn
