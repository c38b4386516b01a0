#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tlk/data/classification_dataset.h"
#include "tlk/nn/classifier.h"
#include "tlk/nn/registry.h"
#include "tlk/task/classification_config.h"
#include "tlk/task/classification_data.h"
#include "tlk/task/data_parallel.h"
#include "tlk/transfer/distiller.h"
#include "tlk/transfer/domain_adversarial_loss.h"
#include "tlk/transfer/finetuner.h"
#include "tlk/transfer/stage_distillation.h"
#include "tlk/transfer/transferrable_model.h"

namespace tlk::task {

/// What one classification epoch produced (also a row of log.csv / log.jsonl).
struct ClassificationEpoch {
  std::int64_t epoch = 0;      ///< 0-based
  std::int64_t iteration = 0;  ///< steps done after this epoch
  /// Means over the epoch's steps; NaN where the strategy has no such term.
  double train_loss = 0.0, task_loss = 0.0, distill_loss = 0.0, adversarial_loss = 0.0;
  double lambda = 0.0;           ///< the GRL coefficient at the epoch's last step (NaN without adaptation)
  double domain_accuracy = 0.0;  ///< the discriminator's mean balanced accuracy over the epoch
  double train_accuracy = 0.0;   ///< accuracy on the source batches as they were trained on
  double val_accuracy = 0.0;     ///< on data.val (or the data.val_fraction hold-out); NaN without one
  double test_accuracy = 0.0;    ///< on data.test; NaN without one
  double lr = 0.0, seconds = 0.0;
};


/// Training of an nn::Classifier (lenet, resnet3d-small or a registered one) with TLK's transfer
/// strategies, through transfer::TransferrableModel: supervised; finetune (transfer.pretrained: name-
/// and shape-matched tensors copied, a head with another class count freshly initialised); adapt
/// (DANN or CDAN on the classifier's features: each step one labelled source batch and one
/// unlabelled target batch, the target cycled independently; target labels are never read);
/// distill (a frozen teacher checkpoint, KD / DKD / logit MSE, optionally with teacher outputs
/// saved to distill.cache and replayed); and their combinations.
///
/// Writes to output.dir: config.yaml; log.csv / log.jsonl (one row per epoch: loss terms, λ, domain
/// accuracy, train / val / test accuracy, lr, seconds); steps.csv / steps.jsonl (one row per step
/// with every loss term, λ and the domain accuracy); checkpoints latest.h5 (each epoch), best.h5
/// (best val accuracy, or test accuracy when there is no validation set), final.h5 and epoch_N.h5
/// (output.save_every), each rebuildable with task::rebuild_model. A run is deterministic given
/// train.seed (batch i of the run depends only on the seed and i), and `run(true)` continues from
/// latest.h5 as if never stopped.
///
/// Example:
/// ```
/// auto config = task::ClassificationTrainConfig::from(io::Config::from_yaml_file("mnist_usps_dann.yaml"));
/// task::ClassificationTrainer trainer(config);
/// auto epochs = trainer.run(/*resume=*/false);
/// fmt::print("USPS test accuracy {:.4f}\n", epochs.back().test_accuracy);
/// ```
class ClassificationTrainer {
 public:
  /// Loads the data and builds the network, adapter and teacher; errors name the key or file at fault.
  /// With `group` (`tlk train --distributed`): data-parallel training as the segmentation trainer
  /// does it (docs/distributed.md): each step's global batch of ranks x data.batch images is split
  /// over the ranks, gradients are averaged, evaluation is split and summed, rank 0 writes.
  explicit ClassificationTrainer(ClassificationTrainConfig config, dist::ProcessGroup* group = nullptr);
  ~ClassificationTrainer();
  /// Trains for the configured epochs (continuing from output.dir/latest.h5 when `resume`); returns
  /// every epoch run now.
  std::vector<ClassificationEpoch> run(bool resume);
  /// Called after each epoch.
  std::function<void(const ClassificationEpoch&)> on_epoch;

  nn::Classifier& network() { return *classifier_; }
  const std::shared_ptr<nn::Module>& module() const { return net_; }
  /// What loading transfer.pretrained copied (finetune strategies).
  const transfer::FinetuneReport& finetune_report() const { return finetune_report_; }
  const data::ClassificationDataset& train_data() const { return train_; }
  const data::ClassificationDataset& val_data() const { return val_; }
  const data::ClassificationDataset& test_data() const { return test_; }
  /// The unlabelled target images (adapt strategies; empty otherwise).
  const Tensor& target_images() const { return target_; }
  /// Steps per epoch (train.iterations_per_epoch, or one pass over the source).
  std::int64_t steps_per_epoch() const { return steps_per_epoch_; }
  const std::shared_ptr<transfer::DomainAdapter>& adapter() const { return adapter_; }
  const nn::ModuleOptions& model_options() const { return model_options_; }
  /// The frozen teacher and its loss (distill strategies; null otherwise).
  transfer::Distiller* distiller() { return distiller_.get(); }
  /// The feature distillation on the stage maps (distill.features; null when none).
  const std::shared_ptr<transfer::StageDistillation>& stage_distillation() const { return stage_distillation_; }

 private:
  Tensor teacher_logits_for(const Tensor& images);
  void build_distiller(std::int64_t num_classes);
  void precompute_teacher_outputs();

  /// The accuracy of the network on (images, labels), each rank scoring its share of the rows.
  double accuracy(const Tensor& images, const Tensor& labels);

  ClassificationTrainConfig config_;
  DataParallel parallel_;  ///< this process's part in a data-parallel job (a no-op alone)
  data::ClassificationLoadOptions load_options_;
  data::ClassificationDataset train_, val_, test_;
  Tensor target_;
  std::shared_ptr<nn::Module> net_;
  nn::Classifier* classifier_ = nullptr;
  nn::ModuleOptions model_options_;
  transfer::Strategy strategy_ = transfer::Strategy::supervised;
  transfer::FinetuneOptions finetune_options_;
  transfer::FinetuneReport finetune_report_;
  std::shared_ptr<transfer::DomainAdapter> adapter_;
  std::unique_ptr<transfer::Distiller> distiller_;
  nn::Classifier* teacher_classifier_ = nullptr;  ///< the distiller's teacher, for its stage maps
  std::shared_ptr<transfer::StageDistillation> stage_distillation_;  ///< distill.features (null: none)
  Tensor cached_teacher_source_, cached_teacher_target_;  ///< [N, K] with distill.cache
  Device device_;  ///< train.device
  std::int64_t steps_per_epoch_ = 0;
};

}  // namespace tlk::task
