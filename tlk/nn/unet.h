#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tlk/kernels/conv_params.h"
#include "tlk/nn/conv.h"
#include "tlk/nn/module.h"
#include "tlk/nn/norm.h"

namespace tlk::nn {

/// The shape of an nnUNet-style "generic UNet".
struct UNetConfig {
  std::int64_t in_channels = 1;
  std::int64_t num_classes = 2;
  std::int64_t base_features = 32;  ///< features of stage 0, doubled per stage
  std::int64_t max_features = 320;  ///< cap on the features of any stage
  /// Per stage (encoder order) kernel sizes and strides; stage 0's stride is 1, stage i > 0 starts
  /// with a strided convolution that downsamples by strides[i]. Anisotropic values are allowed,
  /// e.g. kernel 1x3x3 with stride 1x2x2 in the first stages of thick-slice CT.
  std::vector<Int3> kernel_sizes;
  std::vector<Int3> strides;
  bool deep_supervision = true;
  /// Biases on the transposed convolutions and on the 1x1x1 heads: nnUNet v1 has none, nnUNet v2's
  /// PlainConvUNet has both (conv_bias), so a converted v2 model needs them on.
  bool upsample_bias = false;
  bool head_bias = false;
  double negative_slope = 0.01;
  double norm_eps = 1e-5;

  /// `levels` stages of 3x3x3 kernels, stride 2 between stages.
  static UNetConfig isotropic(int levels, std::int64_t in_channels = 1, std::int64_t num_classes = 2);
  int levels() const { return static_cast<int>(kernel_sizes.size()); }
  /// Features of stage i: min(base * 2^i, max).
  std::int64_t features(int stage) const;
  /// Throws tlk::Error naming the first inconsistent field.
  void validate() const;
};

/// conv -> InstanceNorm -> LeakyReLU, twice; the first conv may be strided (downsampling).
class UNetStage : public UnaryModule {
 public:
  UNetStage(std::int64_t in_channels, std::int64_t out_channels, Int3 kernel, Int3 first_stride,
            const UNetConfig& config, Generator& gen);
  Tensor forward(const Tensor& input) override;
  std::shared_ptr<Conv3d> conv1, conv2;
  std::shared_ptr<InstanceNorm3d> norm1, norm2;
  double negative_slope;
};

/// nnUNet's generic UNet: encoder stages, transposed-convolution upsampling with skip concat,
/// decoder stages and 1x1x1 heads (no bias) for deep supervision.
///
/// Parameter names follow the structure: `encoder.stages.0.conv1.weight`,
/// `decoder.upsample.0.weight`, `decoder.stages.0.norm2.bias`, `decoder.heads.0.weight`, where decoder
/// index 0 is the full-resolution stage. He initialisation (slope 0.01) as nnUNet.
///
/// Example:
/// ```
/// Generator gen(0);
/// nn::UNet net(nn::UNetConfig::isotropic(5, 1, 3), gen);
/// std::vector<Tensor> outputs = net.forward(x);  // outputs[0]: full resolution logits
/// ```
class UNet : public Module {
 public:
  UNet(const UNetConfig& config, Generator& gen);

  /// Logits at every decoder level, full resolution first; with deep supervision off, only the first.
  std::vector<Tensor> forward(const Tensor& input);
  /// The encoder's skip features of the last forward pass, stage 0 (full resolution) first, for the
  /// domain adapters and feature distillers.
  const std::vector<Tensor>& encoder_features() const { return encoder_features_; }
  /// The decoder's features of the last forward pass, full resolution first.
  const std::vector<Tensor>& decoder_features() const { return decoder_features_; }
  /// A feature map of the last forward pass by the name of the stage that made it:
  /// "encoder.stages.<i>" or "decoder.stages.<d>" (what adapters and distillers tap).
  Tensor feature(const std::string& name) const;
  /// The names feature() accepts, encoder first.
  std::vector<std::string> feature_names() const;
  /// nnUNet's deep-supervision weights for the outputs: 1/2^i, the lowest resolution 0, normalised.
  std::vector<double> deep_supervision_weights() const;
  const UNetConfig& config() const { return config_; }
  /// Switches the deep-supervision outputs on or off (inference needs only the full resolution).
  void set_deep_supervision(bool on) { config_.deep_supervision = on; }

 private:
  UNetConfig config_;
  std::vector<std::shared_ptr<UNetStage>> encoder_, decoder_;
  std::vector<std::shared_ptr<ConvTranspose3d>> upsample_;
  std::vector<std::shared_ptr<Conv3d>> heads_;
  std::vector<Tensor> encoder_features_, decoder_features_;
};

}  // namespace tlk::nn
