#pragma once
#include "tlk/tensor/tensor.h"

/// The optimizer updates of nn::Sgd and nn::Adam on CUDA parameters, in place on the GPU. The
/// tensors are contiguous f32 or f64 CUDA tensors of one shape, dtype and device; the arithmetic per
/// element is the CPU loop's, in the parameter's dtype (optimizer_update_launch.h).
/// Example: `kernels::cuda::sgd_update(p, g, buf, {.lr = 1e-2, .momentum = 0.99, .nesterov = true});`
namespace tlk::kernels::cuda {

/// One SGD step's settings (nn/sgd.h); `first` marks the step that initialises the momentum buffer.
struct SgdStep {
  double lr = 0.0;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool nesterov = false;
  bool first = false;
};

/// p -= lr·d with d = grad + wd·p through the momentum buffer (undefined when momentum is 0), as
/// torch.optim.SGD; writes `param` and `momentum_buffer` in place.
void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, const SgdStep& step);

/// One Adam / AdamW step's settings (nn/adam.h); `step` is the parameter's step count after this
/// step (1 on the first), which sets the bias corrections 1 − β^step.
struct AdamStep {
  double lr = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool decoupled_weight_decay = false;
  double step = 1.0;
};

/// Adam's update of `param`, `exp_avg` and `exp_avg_sq` in place, as torch.optim.Adam / AdamW.
void adam_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                 const AdamStep& step);

}  // namespace tlk::kernels::cuda
