#include "tlk/nn/unet.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "tlk/autograd/ops/activation.h"
#include "tlk/autograd/ops/norm.h"
#include "tlk/autograd/ops/view.h"
#include "tlk/tensor/error.h"

namespace tlk::nn {

namespace {

// A module that only groups children under a name ("encoder", "stages", ...).
class Container : public Module {
 public:
  template <class M>
  std::shared_ptr<M> add(const std::string& name, std::shared_ptr<M> m) {
    return register_module(name, std::move(m));
  }
};

}  // namespace

UNetConfig UNetConfig::isotropic(int levels, std::int64_t in_channels, std::int64_t num_classes) {
  UNetConfig c;
  c.in_channels = in_channels;
  c.num_classes = num_classes;
  for (int i = 0; i < levels; ++i) {
    c.kernel_sizes.push_back({3, 3, 3});
    c.strides.push_back(i == 0 ? Int3{1, 1, 1} : Int3{2, 2, 2});
  }
  return c;
}

std::int64_t UNetConfig::features(int stage) const {
  std::int64_t f = base_features;
  for (int i = 0; i < stage && f < max_features; ++i) f *= 2;
  return std::min(f, max_features);
}

void UNetConfig::validate() const {
  check(levels() >= 2, "UNetConfig: needs at least 2 stages, got {}", levels());
  check(strides.size() == kernel_sizes.size(), "UNetConfig: {} kernel sizes but {} strides", kernel_sizes.size(),
        strides.size());
  check(in_channels >= 1 && num_classes >= 1 && base_features >= 1 && max_features >= base_features,
        "UNetConfig: invalid sizes (in_channels {}, num_classes {}, base_features {}, max_features {})", in_channels,
        num_classes, base_features, max_features);
  check(strides[0] == Int3{1, 1, 1}, "UNetConfig: stage 0 must have stride 1x1x1, got {}", strides[0]);
  for (int i = 0; i < levels(); ++i)
    for (int a = 0; a < 3; ++a) {
      check(kernel_sizes[i][a] >= 1 && kernel_sizes[i][a] % 2 == 1,
            "UNetConfig: kernel sizes must be odd and >= 1, stage {} has {}", i, kernel_sizes[i]);
      check(strides[i][a] >= 1, "UNetConfig: strides must be >= 1, stage {} has {}", i, strides[i]);
    }
}

UNetStage::UNetStage(std::int64_t in_channels, std::int64_t out_channels, Int3 kernel, Int3 first_stride,
                     const UNetConfig& config, Generator& gen)
    : negative_slope(config.negative_slope) {
  const ConvOptions conv =
      ConvOptions{}.with_kernel(kernel).with_bias(true);  // nnUNet: conv with bias, then InstanceNorm
  conv1 = register_module("conv1",
                          std::make_shared<Conv3d>(in_channels, out_channels, conv.with_stride(first_stride), gen));
  norm1 = register_module("norm1", std::make_shared<InstanceNorm3d>(out_channels, config.norm_eps));
  conv2 = register_module("conv2", std::make_shared<Conv3d>(out_channels, out_channels, conv, gen));
  norm2 = register_module("norm2", std::make_shared<InstanceNorm3d>(out_channels, config.norm_eps));
}

Tensor UNetStage::forward(const Tensor& input) {
  // On a GPU the norm and the activation run as one kernel each way (Note [GPU norm + leaky ReLU]);
  // the CPU keeps its own dispatch of the two ops.
  auto norm_act = [&](InstanceNorm3d& norm, const Tensor& x) {
    return x.device().is_cuda() ? ops::instance_norm_leaky_relu(x, norm.weight, norm.bias, negative_slope, norm.eps)
                                : ops::leaky_relu(norm.forward(x), negative_slope);
  };
  Tensor h = norm_act(*norm1, conv1->forward(input));
  return norm_act(*norm2, conv2->forward(h));
}

UNet::UNet(const UNetConfig& config, Generator& gen) : config_(config) {
  config_.validate();
  const int levels = config_.levels();
  auto encoder = register_module("encoder", std::make_shared<Container>());
  auto encoder_stages = encoder->add("stages", std::make_shared<Container>());
  std::int64_t channels = config_.in_channels;
  for (int i = 0; i < levels; ++i) {
    auto stage = std::make_shared<UNetStage>(channels, config_.features(i), config_.kernel_sizes[i], config_.strides[i],
                                             config_, gen);
    encoder_.push_back(encoder_stages->add(std::to_string(i), stage));
    channels = config_.features(i);
  }
  auto decoder = register_module("decoder", std::make_shared<Container>());
  auto upsample = decoder->add("upsample", std::make_shared<Container>());
  auto decoder_stages = decoder->add("stages", std::make_shared<Container>());
  auto heads = decoder->add("heads", std::make_shared<Container>());
  // Decoder index d works at the resolution of encoder stage d (0 = full resolution).
  for (int d = 0; d + 1 < levels; ++d) {
    const Int3 s = config_.strides[d + 1];
    const ConvOptions up =
        ConvOptions{}.with_kernel(s).with_stride(s).with_padding({0, 0, 0}).with_bias(config_.upsample_bias);
    upsample_.push_back(upsample->add(
        std::to_string(d), std::make_shared<ConvTranspose3d>(config_.features(d + 1), config_.features(d), up, gen)));
    decoder_.push_back(decoder_stages->add(
        std::to_string(d), std::make_shared<UNetStage>(2 * config_.features(d), config_.features(d),
                                                       config_.kernel_sizes[d], Int3{1, 1, 1}, config_, gen)));
    const ConvOptions head = ConvOptions{}.with_kernel({1, 1, 1}).with_padding({0, 0, 0}).with_bias(config_.head_bias);
    heads_.push_back(
        heads->add(std::to_string(d), std::make_shared<Conv3d>(config_.features(d), config_.num_classes, head, gen)));
  }
}

std::vector<Tensor> UNet::forward(const Tensor& input) {
  check(input.dim() == 5 && input.size(1) == config_.in_channels, "UNet: expected input [N, {}, D, H, W], got shape {}",
        config_.in_channels, input.shape().str());
  encoder_features_.clear();
  Tensor h = input;
  for (auto& stage : encoder_) {
    h = stage->forward(h);
    encoder_features_.push_back(h);
  }
  const int levels = config_.levels();
  decoder_features_.assign(static_cast<std::size_t>(levels - 1), Tensor());
  std::vector<Tensor> outputs(static_cast<std::size_t>(levels - 1));
  for (int d = levels - 2; d >= 0; --d) {
    Tensor up = upsample_[static_cast<std::size_t>(d)]->forward(h);
    const Tensor& skip = encoder_features_[static_cast<std::size_t>(d)];
    check(up.shape() == Shape({skip.size(0), up.size(1), skip.size(2), skip.size(3), skip.size(4)}),
          "UNet: upsampled features {} do not match the skip features {} at decoder stage {}; the input's spatial "
          "size must be divisible by the product of the strides",
          up.shape().str(), skip.shape().str(), d);
    h = decoder_[static_cast<std::size_t>(d)]->forward(ops::cat({up, skip}, 1));
    decoder_features_[static_cast<std::size_t>(d)] = h;
    if (config_.deep_supervision || d == 0)
      outputs[static_cast<std::size_t>(d)] = heads_[static_cast<std::size_t>(d)]->forward(h);
  }
  if (!config_.deep_supervision) outputs.resize(1);
  return outputs;
}

std::vector<std::string> UNet::feature_names() const {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < encoder_.size(); ++i) names.push_back(fmt::format("encoder.stages.{}", i));
  for (std::size_t d = 0; d < decoder_.size(); ++d) names.push_back(fmt::format("decoder.stages.{}", d));
  return names;
}

Tensor UNet::feature(const std::string& name) const {
  const auto names = feature_names();
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] != name) continue;
    const bool encoder = i < encoder_.size();
    const auto& features = encoder ? encoder_features_ : decoder_features_;
    const std::size_t index = encoder ? i : i - encoder_.size();
    check(index < features.size() && features[index].defined(), "UNet::feature: '{}' has no value; run forward first",
          name);
    return features[index];
  }
  fail("UNet::feature: no feature '{}' (this UNet has encoder.stages.0..{} and decoder.stages.0..{})", name,
       encoder_.size() - 1, decoder_.size() - 1);
}

std::vector<double> UNet::deep_supervision_weights() const {
  if (!config_.deep_supervision) return {1.0};
  const int outputs = config_.levels() - 1;
  std::vector<double> w(static_cast<std::size_t>(outputs));
  double total = 0;
  for (int i = 0; i < outputs; ++i) {
    w[static_cast<std::size_t>(i)] = (i == outputs - 1 && outputs > 1) ? 0.0 : 1.0 / static_cast<double>(1 << i);
    total += w[static_cast<std::size_t>(i)];
  }
  for (auto& v : w) v /= total;
  return w;
}

}  // namespace tlk::nn
