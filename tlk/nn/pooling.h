#pragma once
#include "tlk/kernels/pool_params.h"
#include "tlk/kernels/upsample_params.h"
#include "tlk/nn/module.h"

/// Layers that change the spatial size of [N, C, D, H, W] volumes: pooling and upsampling.
namespace tlk::nn {

/// Max pooling (ops::max_pool3d). Example: `nn::MaxPool3d pool(Pool3dOptions{{1, 2, 2}}); Tensor y = pool(x);`
class MaxPool3d : public UnaryModule {
 public:
  explicit MaxPool3d(const Pool3dOptions& options = {}) : options(options) {}
  Tensor forward(const Tensor& input) override;
  Pool3dOptions options;
};

/// Average pooling (ops::avg_pool3d). Example: `nn::AvgPool3d pool(Pool3dOptions{{2, 2, 2}}); Tensor y = pool(x);`
class AvgPool3d : public UnaryModule {
 public:
  explicit AvgPool3d(const Pool3dOptions& options = {}) : options(options) {}
  Tensor forward(const Tensor& input) override;
  Pool3dOptions options;
};

/// Average pooling to a fixed output size (ops::adaptive_avg_pool3d), as torch.nn.AdaptiveAvgPool3d.
/// Example: `nn::AdaptiveAvgPool3d pool({1, 1, 1}); Tensor y = pool(x);  // [N, C, 1, 1, 1]`
class AdaptiveAvgPool3d : public UnaryModule {
 public:
  explicit AdaptiveAvgPool3d(Int3 output_size);
  Tensor forward(const Tensor& input) override;
  Int3 output_size;
};

/// Nearest or trilinear resizing (ops::upsample3d), as torch.nn.Upsample.
/// Example: `nn::Upsample up(Upsample3dOptions{}.with_scale_factor({1, 2, 2})); Tensor y = up(x);`
class Upsample : public UnaryModule {
 public:
  explicit Upsample(const Upsample3dOptions& options) : options(options) {}
  Tensor forward(const Tensor& input) override;
  Upsample3dOptions options;
};

}  // namespace tlk::nn
