#pragma once
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "tlk/autograd/gradient_reversal.h"
#include "tlk/nn/module.h"
#include "tlk/transfer/domain_discriminator.h"
#include "tlk/transfer/grl_schedule.h"

namespace tlk::transfer {

/// Optional per-sample weights of the adversarial loss ([N_s] and [N_t]; undefined = 1), e.g. CDAN's
/// entropy weights (cdan.h). They are constants: no gradient flows into them.
struct DomainAdversarialOptions {
  Tensor source_weight, target_weight;
};

/// The adversarial loss and what the training log shows of it.
struct DomainAdversarialResult {
  Tensor loss;                      ///< 0-D, the logits' dtype
  double accuracy = 0.0;            ///< 0.5 · (source_accuracy + target_accuracy)
  double source_accuracy = 0.0;     ///< fraction of source logits >= 0 (σ >= 0.5: "source")
  double target_accuracy = 0.0;     ///< fraction of target logits < 0
  double source_probability = 0.0;  ///< mean σ(source logits): the discriminator's P(source) on source
  double target_probability = 0.0;  ///< mean σ(target logits)
};

/// The domain classifier's loss 0.5 · (BCE(source, 1) + BCE(target, 0)) on logits (each BCE the mean
/// over its elements, stable form), as TLK's medical setup and tllib; with weights, each element's
/// BCE is multiplied by its sample's weight before the mean (PyTorch's BCE `weight`).
/// Logits: [N, K] (K logits per sample, e.g. the multi-scale discriminator's pooled channels) or [N];
/// source and target may differ in N but not in K. Accuracy counts a source logit >= 0 and a target
/// logit < 0 as right (tllib's binary_accuracy, unweighted).
///
/// Example:
/// ```
/// auto r = transfer::domain_adversarial_loss(disc.forward({fs}), disc.forward({ft}));
/// r.loss.backward();  fmt::print("domain acc {:.2f}\n", r.accuracy);
/// ```
DomainAdversarialResult domain_adversarial_loss(const Tensor& source_logits, const Tensor& target_logits,
                                                const DomainAdversarialOptions& options = {});

/// One step's adversarial term, for the total loss and the log.
struct AdversarialTerm {
  Tensor loss;  ///< 0-D; add it (weighted) to the task loss and backward once
  std::int64_t step = 0;
  double lambda = 0.0;    ///< the gradient reversal coefficient used
  double accuracy = 0.0;  ///< the discriminator's balanced accuracy (DomainAdversarialResult)
  double source_probability = 0.0;
  double target_probability = 0.0;
};

/// Unsupervised domain adaptation by gradient reversal (DANN): features of a source batch and a
/// target batch pass through a GradientReversal layer whose λ follows a WarmStartSchedule, then
/// through a discriminator; the loss trains the discriminator to tell the domains apart, while the
/// backbone, reached through the reversal, receives −λ times that gradient and learns features the
/// discriminator cannot separate. A Module: the discriminator's parameters are
/// "discriminator.<name>" (put them in the optimizer; save them in checkpoints).
///
/// Example (TLK's medical setup: the UNet's encoder skips, multi-scale discriminator):
/// ```
/// transfer::DomainAdapter adapter(std::make_shared<transfer::MultiScaleDiscriminator>(net.config(),
///                                 transfer::MultiScaleDiscriminatorOptions{}, gen));
/// auto src_out = net.forward(source_x);  auto fs = net.encoder_features();
/// auto tgt_out = net.forward(target_x);  auto ft = net.encoder_features();
/// auto adv = adapter.adapt(fs, ft, step);
/// Tensor total = task_loss + adv.loss;  total.backward();  optimizer.step();
/// log("lambda {:.3f} domain acc {:.2f}", adv.lambda, adv.accuracy);
/// ```
class DomainAdapter : public nn::Module {
 public:
  explicit DomainAdapter(std::shared_ptr<Discriminator> discriminator,
                         const WarmStartSchedule& schedule = WarmStartSchedule::tlk_medical());

  /// The adversarial term at training step `step` (λ = schedule().lambda(step)). source_features and
  /// target_features: the same taps (one tensor per tapped layer, batch first) of a source and a
  /// target batch; entries the discriminator does not use (uses_feature) may be undefined. Gradients
  /// flow to the discriminator's parameters unchanged and to the features reversed and scaled by λ.
  /// Keep a copy of UNet::encoder_features() (`auto fs = net.encoder_features();`) before the next
  /// forward, which replaces them.
  AdversarialTerm adapt(const std::vector<Tensor>& source_features, const std::vector<Tensor>& target_features,
                        std::int64_t step);

  /// The same for one joint batch whose first `source_batch` samples are source and the rest target
  /// (a UNet run once on cat(source, target)): the discriminator runs once on the joint features.
  /// Example: `net.forward(ops::cat({xs, xt}, 0)); auto adv = adapter.adapt_joint(net.encoder_features(), 2, step);`
  AdversarialTerm adapt_joint(const std::vector<Tensor>& features, std::int64_t source_batch, std::int64_t step);

  const std::shared_ptr<Discriminator>& discriminator() const { return discriminator_; }
  const WarmStartSchedule& schedule() const { return schedule_; }
  void set_schedule(const WarmStartSchedule& schedule);
  /// The last adapt()'s term (loss, λ, accuracy), for logging; all zero before the first.
  const AdversarialTerm& last() const { return last_; }

 private:
  std::int64_t batch_size(const std::vector<Tensor>& features, const char* which) const;
  std::pair<Tensor, Tensor> joint_logits(const std::vector<Tensor>& joint, std::int64_t n_source);
  AdversarialTerm finish(const Tensor& source_logits, const Tensor& target_logits, const std::vector<Tensor>& joint,
                         std::int64_t n_source, std::int64_t step, double lambda);

  std::shared_ptr<Discriminator> discriminator_;
  WarmStartSchedule schedule_;
  autograd::GradientReversal grl_;
  AdversarialTerm last_;
};

}  // namespace tlk::transfer
