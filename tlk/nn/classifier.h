#pragma once
#include <cstdint>
#include <vector>

#include "tlk/nn/module.h"

namespace tlk::nn {

/// A classification network split at its last linear layer: features(x) gives the representation
/// [N, feature_count()] that the classifier reads (what domain adapters and feature distillers tap),
/// classify(f) turns it into logits [N, num_classes()], and forward(x) is classify(features(x)).
///
/// Example:
/// ```
/// Tensor f = net.features(x);
/// Tensor logits = net.classify(f);                             // the label loss
/// Tensor domain = discriminator(autograd::grad_reverse(f, 1.0));  // the adversarial loss, same forward
/// const std::vector<Tensor>& maps = net.stage_features();          // for FitNets hints, attention transfer
/// ```
class Classifier : public UnaryModule {
 public:
  virtual Tensor features(const Tensor& input) = 0;
  virtual Tensor classify(const Tensor& features) = 0;
  Tensor forward(const Tensor& input) override { return classify(features(input)); }
  virtual std::int64_t feature_count() const = 0;
  virtual std::int64_t num_classes() const = 0;
  /// Channels of each convolutional stage's output map, in network order (what feature distillation
  /// matches stage by stage); empty for a classifier that records no stage maps.
  virtual std::vector<std::int64_t> stage_channels() const { return {}; }
  /// The stage output maps [N, C_s, D_s, H_s, W_s] as the last features() call computed them, one
  /// per stage_channels() entry; they carry that call's graph, if it recorded one.
  const std::vector<Tensor>& stage_features() const { return stage_features_; }

 protected:
  std::vector<Tensor> stage_features_;  ///< set by features()
};

}  // namespace tlk::nn
