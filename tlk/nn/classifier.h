#pragma once
#include <cstdint>

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
/// ```
class Classifier : public UnaryModule {
 public:
  virtual Tensor features(const Tensor& input) = 0;
  virtual Tensor classify(const Tensor& features) = 0;
  Tensor forward(const Tensor& input) override { return classify(features(input)); }
  virtual std::int64_t feature_count() const = 0;
  virtual std::int64_t num_classes() const = 0;
};

}  // namespace tlk::nn
