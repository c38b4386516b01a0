#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tlk/data/background_loader.h"
#include "tlk/data/preprocessing_plan.h"
#include "tlk/dist/process_group.h"
#include "tlk/nn/registry.h"
#include "tlk/nn/unet.h"
#include "tlk/task/data_parallel.h"
#include "tlk/task/patch_batches.h"
#include "tlk/task/segmentation_teacher_cache.h"
#include "tlk/task/train_config.h"
#include "tlk/transfer/domain_adversarial_loss.h"
#include "tlk/transfer/finetuner.h"
#include "tlk/transfer/stage_distillation.h"
#include "tlk/transfer/transferrable_model.h"

namespace tlk::task {

/// What one epoch produced (also a row of the training log).
struct EpochResult {
  std::int64_t epoch = 0;
  double train_loss = 0.0, val_loss = 0.0;
  /// The terms of train_loss (means over the epoch; NaN when the strategy has none): the supervised
  /// task loss, the distillation and adversarial terms, and the adapter's λ and domain accuracy.
  double task_loss = 0.0, distill_loss = 0.0, adversarial_loss = 0.0, lambda = 0.0, domain_accuracy = 0.0;
  std::vector<double> dice;      ///< pseudo Dice per foreground class over the validation patches
  double mean_dice = 0.0;        ///< nanmean of `dice`
  double ema_dice = 0.0;         ///< nnUNet's 0.9/0.1 moving average, which picks best.h5
  double lr = 0.0, seconds = 0.0, data_wait_seconds = 0.0;
};

/// nnUNet-style training of a UNet on a folder written by `tlk preprocess`, with TLK's transfer
/// strategies (transfer.strategy): supervised, finetune (from transfer.pretrained), adapt (a
/// multi-scale domain discriminator on the encoder skips, fed by unlabelled data.target batches
/// whose labels are never read), distill (voxel-wise KD from distill.teacher) and their
/// combinations; distill.features adds FitNets hints or attention transfer on every encoder skip.
/// Deep supervision, Dice + CE, SGD-Nesterov with a per-epoch poly learning rate and gradient clipping,
/// batches from background threads, pseudo-Dice validation every epoch, checkpoints `latest.h5`
/// (every epoch), `best.h5` (best moving-average Dice), `epoch_N.h5` (every output.save_every epochs)
/// and `final.h5`, an epoch log (log.csv and log.jsonl), a step log with every loss term, λ and the
/// domain accuracy (steps.csv and steps.jsonl), and a progress bar. A NaN or infinite loss stops
/// the run with an error that names the epoch and iteration; the last good checkpoint stays.
///
/// Example:
/// ```
/// auto config = task::SegmentationTrainConfig::from(io::Config::from_yaml_file("train.yaml"));
/// task::SegmentationTrainer trainer(config);
/// trainer.run(/*resume=*/false);
/// ```
class SegmentationTrainer {
 public:
  /// With `group` (data-parallel training, one process per rank; docs/distributed.md): the ranks
  /// start from rank 0's model, each makes its slots of every batch (Note [Batch slots]),
  /// gradients are averaged in buckets during backward, validation is split and summed, and rank 0
  /// alone writes checkpoints, logs and progress output.
  explicit SegmentationTrainer(SegmentationTrainConfig config, dist::ProcessGroup* group = nullptr);
  /// Trains for the configured epochs (continuing from output.dir/latest.h5 when `resume`).
  /// Returns every epoch run now.
  std::vector<EpochResult> run(bool resume);
  /// Called after each epoch (e.g. by tests or the demo).
  std::function<void(const EpochResult&)> on_epoch;

  const data::PreprocessingPlan& plan() const { return plan_; }
  /// What loading transfer.pretrained copied (finetune strategies).
  const transfer::FinetuneReport& finetune_report() const { return finetune_report_; }
  nn::UNet& network() { return *net_; }
  /// distill.cache's saved teacher outputs (null without distill.cache).
  const SegmentationTeacherCache* teacher_cache() const { return teacher_cache_.get(); }

 private:
  /// Scores the validation batches into r.val_loss and r.dice (pseudo Dice per foreground class).
  void validate(const PatchBatches& val_batches, EpochResult& r);

  SegmentationTrainConfig config_;
  data::PreprocessingPlan plan_;
  std::vector<data::SampleSource> train_cases_, val_cases_;
  std::vector<std::string> train_ids_, val_ids_, target_ids_;
  std::shared_ptr<nn::UNet> net_;
  nn::ModuleOptions model_options_;
  transfer::Strategy strategy_ = transfer::Strategy::supervised;
  transfer::FinetuneOptions finetune_options_;
  transfer::FinetuneReport finetune_report_;
  std::vector<data::SampleSource> target_cases_;  ///< images only (adapt strategies)
  std::shared_ptr<transfer::DomainAdapter> adapter_;
  std::shared_ptr<nn::UNet> teacher_;
  std::shared_ptr<transfer::StageDistillation> stage_distillation_;  ///< distill.features (hint regressors)
  std::unique_ptr<SegmentationTeacherCache> teacher_cache_;          ///< distill.cache
  Device device_ = Device::cpu();  ///< train.device: the networks live there; batches are copied over
  DataParallel parallel_;  ///< this process's part in a data-parallel job (a no-op alone)
};

/// Loads the preprocessed cases `files` as sample sources: with labels (required), or with
/// `labelled` false as images only, their labels never read (a domain-adaptation target).
std::vector<data::SampleSource> load_sample_sources(const std::vector<std::filesystem::path>& files,
                                                    bool labelled = true);

}  // namespace tlk::task
