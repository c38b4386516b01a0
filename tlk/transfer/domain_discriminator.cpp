#include "tlk/transfer/domain_discriminator.h"

#include "tlk/autograd/ops/view.h"
#include "tlk/nn/activation.h"
#include "tlk/nn/linear.h"
#include "tlk/nn/norm.h"
#include "tlk/tensor/error.h"

namespace tlk::transfer {

DomainDiscriminator::DomainDiscriminator(std::int64_t in_features, const DomainDiscriminatorOptions& options,
                                         Generator& gen)
    : in_features_(in_features), options_(options) {
  check(in_features > 0, "DomainDiscriminator: in_features must be > 0, got {}", in_features);
  check(options.hidden > 0, "DomainDiscriminator: hidden must be > 0, got {}", options.hidden);
  check(options.dropout >= 0.0 && options.dropout < 1.0, "DomainDiscriminator: dropout must be in [0, 1), got {}",
        options.dropout);
  layers_ = register_module("layers", std::make_shared<nn::Sequential>());
  std::int64_t width = in_features;
  for (int i = 0; i < 2; ++i) {
    layers_->add(std::make_shared<nn::Linear>(width, options.hidden, gen));
    width = options.hidden;
    switch (options.regularizer) {
      case DiscriminatorRegularizer::batch_norm:
        layers_->add(std::make_shared<nn::BatchNorm1d>(width));
        layers_->add(std::make_shared<nn::ReLU>());
        break;
      case DiscriminatorRegularizer::dropout:
        layers_->add(std::make_shared<nn::ReLU>());
        layers_->add(std::make_shared<nn::Dropout>(options.dropout, gen.next_u64()));
        break;
      case DiscriminatorRegularizer::none:
        layers_->add(std::make_shared<nn::ReLU>());
        break;
    }
  }
  layers_->add(std::make_shared<nn::Linear>(width, 1, gen));
}

Tensor DomainDiscriminator::forward(const Tensor& x) {
  check(x.defined() && x.dim() >= 2, "DomainDiscriminator: expected features [N, {}], got {}", in_features_,
        x.defined() ? x.shape().str() : std::string("an undefined tensor"));
  Tensor flat = x.dim() == 2 ? x : ops::flatten(x, 1, -1);
  check(flat.size(1) == in_features_, "DomainDiscriminator: expected {} features per sample, got shape {}",
        in_features_, x.shape().str());
  return layers_->forward(flat);
}

Tensor DomainDiscriminator::forward(const std::vector<Tensor>& features) {
  check(features.size() == 1, "DomainDiscriminator: expected one feature tensor, got {}", features.size());
  return forward(features.front());
}

}  // namespace tlk::transfer
