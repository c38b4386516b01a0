#pragma once
#include "tlk/kernels/conv_params.h"
#include "tlk/nn/module.h"
#include "tlk/tensor/random.h"

namespace tlk::nn {

/// Options of a convolution layer; per axis in D, H, W order.
struct ConvOptions {
  Int3 kernel{3, 3, 3};
  Int3 stride{1, 1, 1};
  /// Padding; unset (negative) means "same" for odd kernels: kernel / 2 per axis.
  Int3 padding{-1, -1, -1};
  Int3 dilation{1, 1, 1};
  bool bias = true;
  /// Negative slope of the activation that follows, for He initialisation (nnUNet: 0.01).
  double init_negative_slope = 0.01;

  ConvOptions with_kernel(Int3 k) const {
    auto o = *this;
    o.kernel = k;
    return o;
  }
  ConvOptions with_stride(Int3 s) const {
    auto o = *this;
    o.stride = s;
    return o;
  }
  ConvOptions with_padding(Int3 p) const {
    auto o = *this;
    o.padding = p;
    return o;
  }
  ConvOptions with_bias(bool b) const {
    auto o = *this;
    o.bias = b;
    return o;
  }
};

/// 3D convolution layer: weight [out, in, kD, kH, kW] (He-normal initialised), optional bias (zeros).
/// Example: `nn::Conv3d conv(1, 32, ConvOptions{}, gen); Tensor y = conv(x);`
class Conv3d : public UnaryModule {
 public:
  Conv3d(std::int64_t in_channels, std::int64_t out_channels, const ConvOptions& options, Generator& gen);
  Tensor forward(const Tensor& input) override;
  Tensor weight, bias;
  Conv3dOptions geometry;
};

/// Transposed 3D convolution layer (the UNet's upsampling with kernel == stride):
/// weight [in, out, kD, kH, kW] as PyTorch's ConvTranspose3d, optional bias.
class ConvTranspose3d : public UnaryModule {
 public:
  ConvTranspose3d(std::int64_t in_channels, std::int64_t out_channels, const ConvOptions& options, Generator& gen);
  Tensor forward(const Tensor& input) override;
  Tensor weight, bias;
  Conv3dOptions geometry;
};

}  // namespace tlk::nn
