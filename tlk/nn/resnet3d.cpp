#include "tlk/nn/resnet3d.h"

#include <fmt/ranges.h>

#include "tlk/autograd/ops/activation.h"
#include "tlk/autograd/ops/arith.h"
#include "tlk/autograd/ops/pool3d.h"
#include "tlk/autograd/ops/view.h"
#include "tlk/tensor/error.h"

namespace tlk::nn {

namespace {

// A bias-free convolution followed by ReLU (directly or after the residual sum): He-normal, slope 0.
ConvOptions conv_options(Int3 kernel, Int3 stride) {
  ConvOptions o = ConvOptions{}.with_kernel(kernel).with_stride(stride).with_bias(false);
  o.init_negative_slope = 0.0;
  return o;
}

}  // namespace

void ResNet3dOptions::validate() const {
  check(in_channels >= 1 && num_classes >= 1, "ResNet3d: in_channels and num_classes must be >= 1, got {} and {}",
        in_channels, num_classes);
  check(!widths.empty(), "ResNet3d: needs at least one stage (widths is empty)");
  check(blocks.size() == widths.size() && strides.size() == widths.size(),
        "ResNet3d: widths, blocks and strides need one entry per stage, got {}, {} and {}", widths.size(),
        blocks.size(), strides.size());
  for (std::size_t i = 0; i < widths.size(); ++i) {
    check(widths[i] >= 1 && blocks[i] >= 1, "ResNet3d: stage {} needs width >= 1 and blocks >= 1, got {} and {}", i,
          widths[i], blocks[i]);
    check(strides[i][0] >= 1 && strides[i][1] >= 1 && strides[i][2] >= 1,
          "ResNet3d: strides must be >= 1, stage {} has {}", i, strides[i]);
  }
}

BasicBlock3d::BasicBlock3d(std::int64_t in_channels, std::int64_t out_channels, Int3 stride, Generator& gen) {
  conv1 = register_module("conv1",
                          std::make_shared<Conv3d>(in_channels, out_channels, conv_options({3, 3, 3}, stride), gen));
  bn1 = register_module("bn1", std::make_shared<BatchNorm3d>(out_channels));
  conv2 = register_module(
      "conv2", std::make_shared<Conv3d>(out_channels, out_channels, conv_options({3, 3, 3}, {1, 1, 1}), gen));
  bn2 = register_module("bn2", std::make_shared<BatchNorm3d>(out_channels));
  if (in_channels != out_channels || stride != Int3{1, 1, 1}) {
    ConvOptions projection = conv_options({1, 1, 1}, stride).with_padding({0, 0, 0});
    downsample = register_module("downsample", std::make_shared<Sequential>());
    downsample->add(std::make_shared<Conv3d>(in_channels, out_channels, projection, gen));
    downsample->add(std::make_shared<BatchNorm3d>(out_channels));
  }
}

Tensor BasicBlock3d::forward(const Tensor& input) {
  Tensor h = ops::relu(bn1->forward(conv1->forward(input)));
  h = bn2->forward(conv2->forward(h));
  return ops::relu(h + (downsample ? downsample->forward(input) : input));
}

ResNetStage::ResNetStage(std::int64_t in_channels, std::int64_t out_channels, std::int64_t num_blocks, Int3 stride,
                         Generator& gen) {
  blocks = register_module("blocks", std::make_shared<Sequential>());
  for (std::int64_t b = 0; b < num_blocks; ++b)
    blocks->add(std::make_shared<BasicBlock3d>(b == 0 ? in_channels : out_channels, out_channels,
                                               b == 0 ? stride : Int3{1, 1, 1}, gen));
}

ResNet3d::ResNet3d(const ResNet3dOptions& options, Generator& gen) : options_(options) {
  options_.validate();
  const std::int64_t stem = options_.widths.front();
  conv1 = register_module(
      "conv1", std::make_shared<Conv3d>(options_.in_channels, stem, conv_options({3, 3, 3}, {1, 1, 1}), gen));
  bn1 = register_module("bn1", std::make_shared<BatchNorm3d>(stem));
  stages = register_module("stages", std::make_shared<Sequential>());
  std::int64_t channels = stem;
  for (std::size_t i = 0; i < options_.widths.size(); ++i) {
    stages->add(
        std::make_shared<ResNetStage>(channels, options_.widths[i], options_.blocks[i], options_.strides[i], gen));
    channels = options_.widths[i];
  }
  fc = register_module("fc", std::make_shared<Linear>(channels, options_.num_classes, gen));
}

Tensor ResNet3d::features(const Tensor& input) {
  check(input.defined() && input.dim() == 5 && input.size(1) == options_.in_channels,
        "ResNet3d: expected volumes [N, {}, D, H, W], got {}", options_.in_channels,
        input.defined() ? input.shape().str() : std::string("an undefined tensor"));
  Tensor h = ops::relu(bn1->forward(conv1->forward(input)));
  stage_features_.clear();
  for (std::size_t i = 0; i < stages->size(); ++i) {
    h = stages->at(i)->forward(h);
    stage_features_.push_back(h);
  }
  return ops::flatten(ops::global_avg_pool3d(h), 1);
}

Tensor ResNet3d::classify(const Tensor& features) { return fc->forward(features); }

}  // namespace tlk::nn
