#include "tlk/nn/norm.h"

#include "tlk/autograd/ops/activation.h"
#include "tlk/autograd/ops/norm.h"
#include "tlk/tensor/error.h"

namespace tlk::nn {

InstanceNorm3d::InstanceNorm3d(std::int64_t channels, double eps) : eps(eps) {
  check(channels >= 1, "InstanceNorm3d: channels must be >= 1, got {}", channels);
  weight = register_parameter("weight", Tensor::ones({channels}));
  bias = register_parameter("bias", Tensor::zeros({channels}));
}

Tensor InstanceNorm3d::forward(const Tensor& input) { return ops::instance_norm(input, weight, bias, eps); }

Tensor LeakyReLU::forward(const Tensor& input) { return ops::leaky_relu(input, negative_slope); }

}  // namespace tlk::nn
