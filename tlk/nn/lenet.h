#pragma once
#include <memory>

#include "tlk/nn/classifier.h"
#include "tlk/nn/conv.h"
#include "tlk/nn/linear.h"

namespace tlk::nn {

/// The shape of a LeNet: two 5x5 convolutions with 2x2 max pooling, then two linear layers. The
/// defaults are Caffe's LeNet for 28x28 digits (20 and 50 channels, 500 hidden units), the network
/// of the original kit's USPS/MNIST domain adaptation.
struct LeNetOptions {
  std::int64_t in_channels = 1;
  std::int64_t num_classes = 10;
  /// Height and width of the (square) input images, e.g. 28 (MNIST) or 32 (CIFAR, SVHN).
  std::int64_t image_size = 28;
  std::int64_t conv1_channels = 20;
  std::int64_t conv2_channels = 50;
  std::int64_t hidden = 500;
  /// H and W padding of both convolutions: 0 as LeNet, 2 keeps the size through each convolution.
  std::int64_t padding = 0;

  LeNetOptions with_in_channels(std::int64_t c) const {
    auto o = *this;
    o.in_channels = c;
    return o;
  }
  LeNetOptions with_num_classes(std::int64_t n) const {
    auto o = *this;
    o.num_classes = n;
    return o;
  }
  LeNetOptions with_image_size(std::int64_t s) const {
    auto o = *this;
    o.image_size = s;
    return o;
  }
  /// Channels of the two convolutions and units of the hidden linear layer.
  LeNetOptions with_widths(std::int64_t conv1, std::int64_t conv2, std::int64_t hidden_units) const {
    auto o = *this;
    o.conv1_channels = conv1;
    o.conv2_channels = conv2;
    o.hidden = hidden_units;
    return o;
  }
  LeNetOptions with_padding(std::int64_t p) const {
    auto o = *this;
    o.padding = p;
    return o;
  }
  /// Height (= width) of the feature maps after the second pooling.
  std::int64_t final_map_size() const;
  /// Throws tlk::Error naming the first invalid field, or the image size when it is too small.
  void validate() const;
};

/// A LeNet-style CNN for small 2-D images, which TLK holds as one-slice volumes [N, C, 1, H, W]:
/// conv 1x5x5 -> ReLU -> max pool 1x2x2 -> conv 1x5x5 -> ReLU -> max pool -> flatten -> fc1 -> ReLU
/// -> fc2. Parameters: conv1.weight, conv1.bias, conv2.*, fc1.*, fc2.*. Convolutions are He-normal
/// initialised, linear layers as PyTorch (Note [Linear initialisation]).
///
/// features(x) is fc1's ReLU output [N, hidden] (the representation the classifier reads and domain
/// adapters tap, the original kit's `fc_layers_2`); classify is fc2. stage_features() are the two
/// pooled convolution maps [N, conv1_channels, 1, H/2, W/2] and [N, conv2_channels, 1, H/4, W/4]
/// (sizes as after_block rounds them). 4-D input [N, C, H, W] is
/// accepted as well and read as one slice.
///
/// Example:
/// ```
/// Generator gen(0);
/// nn::LeNet net(nn::LeNetOptions{}.with_image_size(32).with_in_channels(3), gen);
/// Tensor logits = net.forward(images);  // images [N, 3, 1, 32, 32] -> [N, 10]
/// ```
class LeNet : public Classifier {
 public:
  LeNet(const LeNetOptions& options, Generator& gen);
  Tensor features(const Tensor& input) override;
  Tensor classify(const Tensor& features) override;
  std::int64_t feature_count() const override { return options_.hidden; }
  std::int64_t num_classes() const override { return options_.num_classes; }
  std::vector<std::int64_t> stage_channels() const override {
    return {options_.conv1_channels, options_.conv2_channels};
  }
  const LeNetOptions& options() const { return options_; }

  std::shared_ptr<Conv3d> conv1, conv2;
  std::shared_ptr<Linear> fc1, fc2;

 private:
  LeNetOptions options_;
};

}  // namespace tlk::nn
