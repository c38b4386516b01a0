#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "tlk/nn/module.h"
#include "tlk/nn/sequential.h"
#include "tlk/tensor/random.h"

namespace tlk::transfer {

/// What DomainAdapter (domain_adversarial_loss.h) needs of a domain discriminator: domain logits
/// from a list of feature tensors (one per tapped layer, batch axis first), [N, K] with K >= 1
/// independent logits per sample (K = 1 for DANN's MLP; one per pooled channel for the multi-scale
/// discriminator). A logit > 0 says "source".
///
/// Example: `Tensor logits = disc.forward({net.encoder_features()});  // [N, K]`
class Discriminator : public nn::Module {
 public:
  virtual Tensor forward(const std::vector<Tensor>& features) = 0;

  /// True when a sample's logits depend on that sample alone (instance norm, no batch norm), so the
  /// adapter may run source and target through the discriminator separately instead of joining them
  /// into one batch (see Note [Two discriminator passes] in domain_adversarial_loss.cpp).
  virtual bool samples_independent() const { return false; }
  /// Whether forward reads features[i]; the adapter passes an undefined tensor for unused ones.
  virtual bool uses_feature(std::size_t /*i*/) const { return true; }
  /// Whether sample_weights gives per-sample loss weights (CDAN's entropy conditioning).
  virtual bool has_sample_weights() const { return false; }
  /// Per-sample weights of the adversarial loss for a joint batch (source samples first), [N_s + N_t],
  /// or undefined (weight 1). Called only when has_sample_weights().
  virtual Tensor sample_weights(const std::vector<Tensor>& /*joint_features*/) { return {}; }
};

/// The regulariser between DomainDiscriminator's hidden layers.
enum class DiscriminatorRegularizer {
  batch_norm,  ///< Linear → BatchNorm1d → ReLU (tllib's default)
  dropout,     ///< Linear → ReLU → Dropout(p) (tllib's batch_norm = False; DANN's paper)
  none,        ///< Linear → ReLU
};

/// Options of DANN's domain classifier; defaults as tllib's examples.
struct DomainDiscriminatorOptions {
  std::int64_t hidden = 1024;
  DiscriminatorRegularizer regularizer = DiscriminatorRegularizer::batch_norm;
  double dropout = 0.5;  ///< DiscriminatorRegularizer::dropout only
};

/// DANN's domain classifier, an MLP on pooled features [N, F]:
/// Linear(F, h) → reg → ReLU → Linear(h, h) → reg → ReLU → Linear(h, 1), giving logits [N, 1]
/// (the loss applies the sigmoid). Parameters "layers.<i>.weight" in Sequential order.
///
/// Note [Batch norm on features]: nn::BatchNorm1d (= BatchNorm3d, which accepts [N, C]) normalises
/// each hidden unit over the batch, so with batch norm a sample's logit depends on the rest of the
/// batch; the adapter therefore joins source and target into one batch, as tllib does. With
/// dropout, ReLU → Dropout equals Dropout → ReLU (dropout scales by 0 or 1/(1 − p) > 0).
///
/// Example:
/// ```
/// Generator gen(0);
/// transfer::DomainDiscriminator disc(500, {.hidden = 1024}, gen);
/// Tensor logits = disc.forward(features);   // [N, 500] -> [N, 1]
/// ```
class DomainDiscriminator : public Discriminator {
 public:
  DomainDiscriminator(std::int64_t in_features, const DomainDiscriminatorOptions& options, Generator& gen);

  /// x: [N, F], or [N, ...] with F elements per sample (flattened, e.g. pooled [N, C, 1, 1, 1]).
  Tensor forward(const Tensor& x);
  /// Exactly one feature tensor.
  Tensor forward(const std::vector<Tensor>& features) override;
  bool samples_independent() const override { return options_.regularizer != DiscriminatorRegularizer::batch_norm; }
  std::int64_t in_features() const { return in_features_; }
  const DomainDiscriminatorOptions& options() const { return options_; }

 private:
  std::int64_t in_features_;
  DomainDiscriminatorOptions options_;
  std::shared_ptr<nn::Sequential> layers_;
};

}  // namespace tlk::transfer
