#pragma once
#include <memory>
#include <vector>

#include "tlk/kernels/conv_params.h"
#include "tlk/nn/classifier.h"
#include "tlk/nn/conv.h"
#include "tlk/nn/linear.h"
#include "tlk/nn/norm.h"
#include "tlk/nn/sequential.h"

namespace tlk::nn {

/// The shape of a small 3D ResNet: a 3x3x3 stem, then one stage per entry of `widths`, each of
/// `blocks[i]` basic blocks, the first of which downsamples by `strides[i]`.
struct ResNet3dOptions {
  std::int64_t in_channels = 1;
  std::int64_t num_classes = 2;
  std::vector<std::int64_t> widths{16, 32, 64, 128};
  std::vector<std::int64_t> blocks{1, 1, 1, 1};
  /// Per stage; anisotropic values such as {1, 2, 2} are allowed.
  std::vector<Int3> strides{{1, 1, 1}, {2, 2, 2}, {2, 2, 2}, {2, 2, 2}};

  ResNet3dOptions with_in_channels(std::int64_t c) const {
    auto o = *this;
    o.in_channels = c;
    return o;
  }
  ResNet3dOptions with_num_classes(std::int64_t n) const {
    auto o = *this;
    o.num_classes = n;
    return o;
  }
  ResNet3dOptions with_widths(std::vector<std::int64_t> w) const {
    auto o = *this;
    o.widths = std::move(w);
    return o;
  }
  ResNet3dOptions with_blocks(std::vector<std::int64_t> b) const {
    auto o = *this;
    o.blocks = std::move(b);
    return o;
  }
  ResNet3dOptions with_strides(std::vector<Int3> s) const {
    auto o = *this;
    o.strides = std::move(s);
    return o;
  }
  /// Throws tlk::Error naming the first inconsistent field.
  void validate() const;
};

/// ResNet's basic block in 3D: conv 3x3x3 (stride s) -> BN -> ReLU -> conv 3x3x3 -> BN, plus the
/// input (identity) or, when the stride or width changes, a projection `downsample` = 1x1x1 conv
/// with stride s -> BN (named downsample.0, downsample.1 as torchvision); then ReLU.
/// Convolutions have no bias (the BN follows) and are He-normal initialised.
/// Example: `nn::BasicBlock3d block(16, 32, {2, 2, 2}, gen); Tensor y = block(x);  // halves D, H, W`
class BasicBlock3d : public UnaryModule {
 public:
  BasicBlock3d(std::int64_t in_channels, std::int64_t out_channels, Int3 stride, Generator& gen);
  Tensor forward(const Tensor& input) override;
  std::shared_ptr<Conv3d> conv1, conv2;
  std::shared_ptr<BatchNorm3d> bn1, bn2;
  /// Null for the identity shortcut.
  std::shared_ptr<Sequential> downsample;
};

/// One stage of a ResNet: its blocks, chained (parameters "blocks.0.conv1.weight", ...).
class ResNetStage : public UnaryModule {
 public:
  ResNetStage(std::int64_t in_channels, std::int64_t out_channels, std::int64_t num_blocks, Int3 stride,
              Generator& gen);
  Tensor forward(const Tensor& input) override { return blocks->forward(input); }
  std::shared_ptr<Sequential> blocks;
};

/// A small 3D ResNet classifier for volumes [N, C, D, H, W]: stem conv1 (3x3x3) -> bn1 -> ReLU, the
/// stages (strides 1, 2, 2, 2 and widths 16, 32, 64, 128 by default), global average pooling and a
/// linear head `fc`. Parameter names: conv1.weight, bn1.*, stages.0.blocks.0.conv1.weight,
/// stages.1.blocks.0.downsample.0.weight, fc.weight, ...; BN buffers running_mean and running_var.
///
/// features(x) is the pooled representation [N, widths.back()]; classify is fc; stage_features() are
/// the stages' outputs [N, widths[i], ...].
///
/// Example:
/// ```
/// Generator gen(0);
/// nn::ResNet3d net(nn::ResNet3dOptions{}.with_num_classes(3), gen);
/// Tensor logits = net.forward(volumes);  // [N, 1, 32, 32, 32] -> [N, 3]
/// ```
class ResNet3d : public Classifier {
 public:
  ResNet3d(const ResNet3dOptions& options, Generator& gen);
  Tensor features(const Tensor& input) override;
  Tensor classify(const Tensor& features) override;
  std::int64_t feature_count() const override { return options_.widths.back(); }
  std::int64_t num_classes() const override { return options_.num_classes; }
  std::vector<std::int64_t> stage_channels() const override { return options_.widths; }
  const ResNet3dOptions& options() const { return options_; }

  std::shared_ptr<Conv3d> conv1;
  std::shared_ptr<BatchNorm3d> bn1;
  std::shared_ptr<Sequential> stages;
  std::shared_ptr<Linear> fc;

 private:
  ResNet3dOptions options_;
};

}  // namespace tlk::nn
