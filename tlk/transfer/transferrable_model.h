#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tlk/transfer/domain_adversarial_loss.h"
#include "tlk/tensor/tensor.h"

namespace tlk::transfer {

/// How a model is trained for a new task or domain (TLK's TransferStrategy).
enum class Strategy { supervised, finetune, distill, adapt, finetune_adapt, distill_adapt };

/// Parses "supervised", "finetune", "distill", "adapt", "finetune+adapt" or "distill+adapt".
Strategy parse_strategy(const std::string& text);
std::string to_string(Strategy strategy);
/// Whether the strategy starts from pretrained weights / has a teacher / adapts to a target domain.
bool finetunes(Strategy strategy);
bool distills(Strategy strategy);
bool adapts(Strategy strategy);

/// What the wrapped backbone computes for one batch.
struct BackboneOutput {
  std::vector<Tensor> logits;    ///< the task outputs; logits[0] the main one (full resolution)
  std::vector<Tensor> features;  ///< what the domain adapter sees (UNet encoder skips, pooled features)
  /// What feature distillation matches against the teacher's: the UNet's encoder skips, a classifier's
  /// stage maps (nn::Classifier::stage_features); empty when the task distils logits only.
  std::vector<Tensor> stage_features;
};

/// How a TransferrableModel runs and scores its backbone; segmentation and classification differ
/// only here (task/segmentation_trainer.cpp and task/classification_trainer.cpp build one).
struct BackboneTask {
  /// Runs the backbone on a batch (with autograd), returning logits and adapter features.
  std::function<BackboneOutput(const Tensor& images)> forward;
  /// The supervised loss on labelled (source) data: deep-supervision Dice + CE, or cross entropy.
  std::function<Tensor(const BackboneOutput& output, const Tensor& labels)> task_loss;
  /// The teacher's logits for a batch, without a graph (distill strategies).
  std::function<Tensor(const Tensor& images)> teacher;
  /// The distillation term from the student's output and the teacher's logits; `labels` may be
  /// undefined (a target batch).
  std::function<Tensor(const BackboneOutput& student, const Tensor& teacher_logits, const Tensor& labels)> distill_loss;
};

/// Weights of the terms of the total loss.
struct LossWeights {
  double task = 1.0;
  double distill = 1.0;
  double adversarial = 1.0;
};

/// One step's losses: the total to backpropagate and every term on its own for the log (NaN where
/// the strategy has no such term).
struct TransferLosses {
  Tensor total;
  double task = 0.0, distill = 0.0, adversarial = 0.0;
  double lambda = 0.0, domain_accuracy = 0.0;
};

/// A backbone with its transfer machinery (TLK's TransferrableModel): a domain adapter for the adapt
/// strategies, a teacher for the distill strategies, and the weighted sum of task, distillation and
/// adversarial losses. Each step takes a labelled source batch and, when adapting, an unlabelled
/// target batch (its labels are never passed in).
///
/// Note [Distillation on the target]: with distill+adapt the teacher also scores the target batch,
/// and the distillation term averages the source and target terms: the teacher's predictions are the
/// only supervision the target domain gets.
///
/// Example:
/// ```
/// transfer::TransferrableModel model(transfer::Strategy::finetune_adapt, task, adapter, {});
/// transfer::TransferLosses l = model.losses(source_x, source_y, target_x, step);
/// l.total.backward();
/// log(l.task, l.adversarial, l.lambda, l.domain_accuracy);
/// ```
class TransferrableModel {
 public:
  TransferrableModel(Strategy strategy, BackboneTask task, std::shared_ptr<DomainAdapter> adapter,
                     LossWeights weights);
  /// The losses of one training step (step counts from 0 over the whole run: it drives λ).
  TransferLosses losses(const Tensor& source_images, const Tensor& source_labels, const Tensor& target_images,
                        std::int64_t step);
  Strategy strategy() const { return strategy_; }
  const std::shared_ptr<DomainAdapter>& adapter() const { return adapter_; }

 private:
  Strategy strategy_;
  BackboneTask task_;
  std::shared_ptr<DomainAdapter> adapter_;
  LossWeights weights_;
};

}  // namespace tlk::transfer
