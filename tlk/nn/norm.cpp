#include "tlk/nn/norm.h"

#include "tlk/autograd/ops/norm.h"
#include "tlk/tensor/error.h"

namespace tlk::nn {

InstanceNorm3d::InstanceNorm3d(std::int64_t channels, double eps) : eps(eps) {
  check(channels >= 1, "InstanceNorm3d: channels must be >= 1, got {}", channels);
  weight = register_parameter("weight", Tensor::ones({channels}));
  bias = register_parameter("bias", Tensor::zeros({channels}));
}

Tensor InstanceNorm3d::forward(const Tensor& input) { return ops::instance_norm(input, weight, bias, eps); }

BatchNorm3d::BatchNorm3d(std::int64_t channels, double eps, double momentum) : eps(eps), momentum(momentum) {
  check(channels >= 1, "BatchNorm3d: channels must be >= 1, got {}", channels);
  check(momentum >= 0.0 && momentum <= 1.0, "BatchNorm3d: momentum must be in [0, 1], got {}", momentum);
  check(eps >= 0.0, "BatchNorm3d: eps must be >= 0, got {}", eps);
  weight = register_parameter("weight", Tensor::ones({channels}));
  bias = register_parameter("bias", Tensor::zeros({channels}));
  running_mean = register_buffer("running_mean", Tensor::zeros({channels}));
  running_var = register_buffer("running_var", Tensor::ones({channels}));
}

Tensor BatchNorm3d::forward(const Tensor& input) {
  check(input.defined() && (input.dim() == 2 || input.dim() == 5) && input.size(1) == weight.size(0),
        "BatchNorm3d: expected an input [N, {0}] or [N, {0}, D, H, W], got {1}", weight.size(0),
        input.defined() ? input.shape().str() : std::string("an undefined tensor"));
  const BatchNormOptions options =
      BatchNormOptions{}.with_training(is_training()).with_momentum(momentum).with_eps(eps);
  if (cross_process_sum && is_training())
    return ops::sync_batch_norm(input, weight, bias, running_mean, running_var, options, cross_process_sum);
  return ops::batch_norm(input, weight, bias, running_mean, running_var, options);
}

}  // namespace tlk::nn
