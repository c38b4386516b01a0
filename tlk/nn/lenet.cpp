#include "tlk/nn/lenet.h"

#include "tlk/autograd/ops/activation.h"
#include "tlk/autograd/ops/pool3d.h"
#include "tlk/autograd/ops/view.h"
#include "tlk/tensor/error.h"

namespace tlk::nn {

namespace {

constexpr std::int64_t kKernel = 5;

// Size after one 5x5 convolution with `padding` and one 2x2 pooling (floor, as PyTorch).
std::int64_t after_block(std::int64_t size, std::int64_t padding) { return (size + 2 * padding - kKernel + 1) / 2; }

}  // namespace

std::int64_t LeNetOptions::final_map_size() const {
  const std::int64_t first = after_block(image_size, padding);
  return first >= 1 ? after_block(first, padding) : 0;
}

void LeNetOptions::validate() const {
  check(in_channels >= 1 && num_classes >= 1 && conv1_channels >= 1 && conv2_channels >= 1 && hidden >= 1,
        "LeNet: sizes must be >= 1 (in_channels {}, num_classes {}, conv1_channels {}, conv2_channels {}, hidden {})",
        in_channels, num_classes, conv1_channels, conv2_channels, hidden);
  check(padding >= 0 && padding <= 2, "LeNet: padding must be in [0, 2] (half the 5x5 kernel at most), got {}",
        padding);
  check(image_size >= 1 && final_map_size() >= 1,
        "LeNet: image size {} is too small for two 5x5 convolutions and 2x2 poolings with padding {} (needs at "
        "least {})",
        image_size, padding, 16 - 6 * padding);
}

LeNet::LeNet(const LeNetOptions& options, Generator& gen) : options_(options) {
  options_.validate();
  const std::int64_t p = options_.padding;
  const ConvOptions conv = ConvOptions{}.with_kernel({1, kKernel, kKernel}).with_padding({0, p, p}).with_bias(true);
  ConvOptions relu_conv = conv;
  relu_conv.init_negative_slope = 0.0;  // He initialisation for the ReLU that follows
  conv1 =
      register_module("conv1", std::make_shared<Conv3d>(options_.in_channels, options_.conv1_channels, relu_conv, gen));
  conv2 = register_module("conv2",
                          std::make_shared<Conv3d>(options_.conv1_channels, options_.conv2_channels, relu_conv, gen));
  const std::int64_t s = options_.final_map_size();
  fc1 = register_module("fc1", std::make_shared<Linear>(options_.conv2_channels * s * s, options_.hidden, gen));
  fc2 = register_module("fc2", std::make_shared<Linear>(options_.hidden, options_.num_classes, gen));
}

Tensor LeNet::features(const Tensor& input) {
  const std::int64_t c = options_.in_channels, s = options_.image_size;
  check(input.defined() && (input.dim() == 4 || input.dim() == 5),
        "LeNet: expected images [N, {0}, 1, {1}, {1}] (or [N, {0}, {1}, {1}]), got {2}", c, s,
        input.defined() ? input.shape().str() : std::string("an undefined tensor"));
  const Tensor x =
      input.dim() == 4 ? input.reshape({input.size(0), input.size(1), 1, input.size(2), input.size(3)}) : input;
  check(x.size(1) == c && x.size(2) == 1 && x.size(3) == s && x.size(4) == s,
        "LeNet: expected images [N, {0}, 1, {1}, {1}] (a 2-D image is a one-slice volume), got {2}", c, s,
        input.shape().str());
  const Pool3dOptions pool{{1, 2, 2}};
  const Tensor h1 = ops::max_pool3d(ops::relu(conv1->forward(x)), pool);
  const Tensor h = ops::max_pool3d(ops::relu(conv2->forward(h1)), pool);
  stage_features_ = {h1, h};
  return ops::relu(fc1->forward(ops::flatten(h, 1)));
}

Tensor LeNet::classify(const Tensor& features) { return fc2->forward(features); }

}  // namespace tlk::nn
