#pragma once
#include "tlk/nn/module.h"

namespace tlk::nn {

/// Instance normalisation over D, H, W per sample and channel, with affine weight (ones) and bias
/// (zeros), as torch.nn.InstanceNorm3d(affine=True) and nnUNet's blocks.
class InstanceNorm3d : public UnaryModule {
 public:
  explicit InstanceNorm3d(std::int64_t channels, double eps = 1e-5);
  Tensor forward(const Tensor& input) override;
  Tensor weight, bias;
  double eps;
};

/// max(x, 0) + negative_slope * min(x, 0).
class LeakyReLU : public UnaryModule {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : negative_slope(negative_slope) {}
  Tensor forward(const Tensor& input) override;
  double negative_slope;
};

}  // namespace tlk::nn
