#pragma once
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "tlk/nn/module.h"
#include "tlk/tensor/random.h"
#include "tlk/transfer/domain_discriminator.h"

/// CDAN (Long et al., NeurIPS 2018): a domain discriminator conditioned on the task head's prediction.
namespace tlk::transfer {

/// The multilinear map T(f, p) = p ⊗ f, flattened: features [N, F] and probabilities [N, K] give
/// [N, K·F] with element (i, b·F + a) = p[i, b] · f[i, a] (tllib's MultiLinearMap order). Gradients
/// flow to both inputs (CdanDiscriminator detaches p before calling it, as tllib).
/// Example: `Tensor h = transfer::multilinear_map(features, ops::softmax(logits, 1).detach());`
Tensor multilinear_map(const Tensor& features, const Tensor& probabilities);

/// The randomized multilinear map T(f, p) = (f·R_f) ⊙ (p·R_g) / sqrt(d), with fixed standard normal
/// R_f [F, d] and R_g [K, d] drawn once from the caller's generator: an unbiased estimate of the
/// multilinear map's inner products in d dimensions, for F·K too large to form. R_f and R_g are
/// buffers ("rf", "rg", stored transposed as [d, F] and [d, K]), saved in checkpoints, never trained.
/// Example: `transfer::RandomizedMultilinearMap map(2048, 31, 1024, gen); Tensor h = map.forward(f, p);`
class RandomizedMultilinearMap : public nn::Module {
 public:
  RandomizedMultilinearMap(std::int64_t features, std::int64_t classes, std::int64_t output_dim, Generator& gen);
  /// f [N, F], p [N, K] -> [N, d]; gradients flow to f and p.
  Tensor forward(const Tensor& features, const Tensor& probabilities) const;
  std::int64_t output_dim() const { return rf_.size(0); }

 private:
  Tensor rf_, rg_;
};

/// CDAN+E's entropy weights: w_i = 1 + exp(−H(p_i)) with H(p) = −Σ_k p_k log(p_k + 1e-5) (tllib's
/// entropy), normalised so that Σ w = N. Confident predictions weigh up to 2x uniform ones. A constant
/// ([N], the probabilities' dtype; no gradient).
/// Example: `Tensor w = transfer::entropy_weights(ops::softmax(logits, 1));`
Tensor entropy_weights(const Tensor& probabilities);

/// How CdanDiscriminator conditions the features.
enum class CdanConditioning {
  automatic,    ///< multilinear when F·K <= max_multilinear_dim, else randomized (the CDAN paper's rule)
  multilinear,  ///< p ⊗ f, F·K inputs
  randomized,   ///< RandomizedMultilinearMap to randomized_dim inputs
};

/// Options of CDAN; defaults as the paper and tllib.
struct CdanOptions {
  CdanConditioning conditioning = CdanConditioning::automatic;
  std::int64_t randomized_dim = 1024;
  std::int64_t max_multilinear_dim = 4096;
  /// CDAN+E: weight each sample's loss by entropy_weights (normalised over source and target together).
  bool entropy_weighting = false;
  /// The MLP on the conditioned features.
  DomainDiscriminatorOptions discriminator{};
};

/// CDAN's discriminator for DomainAdapter: features {f [N, F], g [N, K] task logits} →
/// DomainDiscriminator(T(f, softmax(g).detach())) → [N, 1].
///
/// Note [CDAN detaches the prediction]: as tllib, softmax(g) is detached, so the adversarial gradient
/// reaches the backbone only through f (reversed by the adapter's GRL) and never pushes the task head's
/// predictions; the entropy weights are constants too.
///
/// Example:
/// ```
/// auto cdan = std::make_shared<transfer::CdanDiscriminator>(500, 10, transfer::CdanOptions{}, gen);
/// transfer::DomainAdapter adapter(cdan, transfer::WarmStartSchedule::dann(total_steps));
/// auto adv = adapter.adapt({fs, logits_s}, {ft, logits_t}, step);
/// ```
class CdanDiscriminator : public Discriminator {
 public:
  CdanDiscriminator(std::int64_t features, std::int64_t classes, const CdanOptions& options, Generator& gen);

  /// features = {f [N, F], g [N, K]}; returns [N, 1] logits.
  Tensor forward(const std::vector<Tensor>& features) override;
  /// T(f, p) for probabilities p (no detaching here): what the MLP sees.
  Tensor condition(const Tensor& f, const Tensor& probabilities) const;
  bool samples_independent() const override { return discriminator_->samples_independent(); }
  bool has_sample_weights() const override { return options_.entropy_weighting; }
  /// entropy_weights(softmax(g)) over the joint batch (source and target together, as tllib), or
  /// undefined without entropy_weighting.
  Tensor sample_weights(const std::vector<Tensor>& joint_features) override;

  bool randomized() const { return map_ != nullptr; }
  /// Inputs of the MLP: K·F, or randomized_dim.
  std::int64_t conditioned_dim() const { return discriminator_->in_features(); }
  const std::shared_ptr<DomainDiscriminator>& mlp() const { return discriminator_; }

 private:
  void check_inputs(const std::vector<Tensor>& features) const;
  std::int64_t features_, classes_;
  CdanOptions options_;
  std::shared_ptr<RandomizedMultilinearMap> map_;
  std::shared_ptr<DomainDiscriminator> discriminator_;
};

}  // namespace tlk::transfer
