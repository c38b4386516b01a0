#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tlk/tensor/dtype.h"
#include "tlk/task/distributed_options.h"
#include "tlk/io/config.h"

namespace tlk::task {

/// Everything `tlk train` reads from a YAML config with `task: classification`: labelled source
/// images, an optional unlabelled target domain and labelled evaluation sets (HDF5 files in the
/// layout of data::load_classification_dataset, `file.h5` or `file.h5:split`), a Classifier backbone
/// and TLK's transfer strategies. Defaults follow tllib's digit experiments (LeNet, SGD 0.01 with
/// momentum 0.9 and DANN's annealing, DANN's discriminator and λ schedule, KD at T = 4 with
/// 0.1·CE + 0.9·KD). docs/classification.md lists every key with its default.
///
/// Example config:
/// ```yaml
/// task: classification
/// data: {train: mnist.h5, target: usps.h5:train, test: usps.h5:test, size: [28, 28]}
/// model: {name: lenet}
/// train: {epochs: 10, lr: 0.01}
/// transfer: {strategy: adapt}
/// output: {dir: runs/mnist_usps_dann}
/// ```
struct ClassificationTrainConfig {
  // data.*
  std::string train;                 ///< data.train: labelled source images, file.h5[:split] (required)
  std::string val;                   ///< data.val: labelled validation images (optional)
  double val_fraction = 0.0;         ///< data.val_fraction: share of data.train held out as validation when data.val is empty
  std::int64_t train_limit = 0;      ///< data.train_limit: use only the first N training images (0: all)
  std::string target;                ///< data.target: unlabelled target-domain images (adapt strategies; labels never read)
  std::string test;                  ///< data.test: labelled evaluation images, e.g. the target's test split
  std::vector<std::int64_t> size;    ///< data.size: [H, W] (or [D, H, W]) every image is brought to; empty: as stored
  std::string fit = "resize";        ///< data.fit: resize | pad
  bool grey_to_rgb = false;          ///< data.grey_to_rgb: replicate one channel to three
  std::vector<double> mean, stddev;  ///< data.mean / data.std: per-channel normalisation after scaling to [0, 1]
  std::int64_t batch = 64;           ///< data.batch: source images per step (and target images, when adapting)
  // model.*
  std::string model = "lenet";                       ///< model.name (a ModuleRegistry name of an nn::Classifier)
  std::map<std::string, std::string> model_options;  ///< every other model.* key, e.g. model.hidden
  // train.*
  std::int64_t epochs = 10;                ///< train.epochs
  std::int64_t iterations_per_epoch = 0;   ///< train.iterations_per_epoch (0: one pass over the source)
  std::string optimizer = "sgd";           ///< train.optimizer: sgd | adam
  double lr = 0.01;                        ///< train.lr
  double momentum = 0.9;                   ///< train.momentum (sgd)
  bool nesterov = true;                    ///< train.nesterov (sgd)
  double weight_decay = 1e-3;              ///< train.weight_decay
  std::string schedule = "dann";           ///< train.schedule: constant | dann | cosine | step (per step)
  std::int64_t step_epochs = 0;            ///< train.step_epochs: epochs between decays of the step schedule (0: epochs/3)
  double gamma = 0.1;                      ///< train.gamma: the step schedule's decay factor
  double grad_clip = 0.0;                  ///< train.grad_clip: max global gradient norm (0: off)
  std::uint64_t seed = 1;                  ///< train.seed
  int threads = 0;                         ///< train.threads: OpenMP threads (0: all cores)
  std::string device = "cpu";              ///< train.device: cpu, cuda or cuda:N
  /// train.precision: f32, or bf16 / f16 mixed precision on a GPU (task::MixedPrecision).
  DType precision = DType::f32;
  // transfer.*
  std::string strategy = "supervised";  ///< transfer.strategy
  std::filesystem::path pretrained;     ///< transfer.pretrained (finetune strategies)
  double pretrained_lr_scale = 1.0;     ///< transfer.pretrained_lr_scale
  std::string freeze = "none";          ///< transfer.freeze: none, copied, or comma-separated prefixes
  std::string skip;                     ///< transfer.skip: name prefixes never copied
  // adapt.*
  std::string adapt_method = "dann";         ///< adapt.method: dann | cdan
  std::int64_t adapt_hidden = 1024;          ///< adapt.hidden: the discriminator's hidden units
  std::string adapt_regularizer = "batch_norm";  ///< adapt.regularizer: batch_norm | dropout | none
  double adapt_dropout = 0.5;                ///< adapt.dropout (regularizer dropout)
  double adapt_weight = 1.0;                 ///< adapt.weight: weight of the adversarial loss
  double grl_alpha = 10.0, grl_lo = 0.0, grl_hi = 1.0;  ///< adapt.grl_alpha / grl_lo / grl_hi
  std::int64_t grl_max_iters = 0;            ///< adapt.grl_max_iters: N of the warm-start schedule (0: the whole run)
  double adapt_lr_scale = 1.0;               ///< adapt.lr_scale: lr multiplier of the discriminator
  std::string cdan_conditioning = "automatic";  ///< adapt.conditioning: automatic | multilinear | randomized
  std::int64_t cdan_randomized_dim = 1024;   ///< adapt.randomized_dim
  bool cdan_entropy = false;                 ///< adapt.entropy: CDAN+E sample weights
  // distill.*
  std::filesystem::path teacher;      ///< distill.teacher: teacher checkpoint (distill strategies)
  std::string distill_loss = "kd";    ///< distill.loss: kd | dkd | mse
  double distill_alpha = 0.1;         ///< distill.alpha: weight of the CE on labels; the distill term gets 1 − alpha
  double distill_temperature = 4.0;   ///< distill.temperature
  double dkd_alpha = 1.0, dkd_beta = 8.0;  ///< distill.dkd_alpha / distill.dkd_beta
  double dkd_warmup = 20.0;           ///< distill.dkd_warmup: epochs of DKD's linear warm-up
  std::filesystem::path distill_cache;  ///< distill.cache: directory of saved teacher outputs (optional)
  std::string distill_features = "none";  ///< distill.features: none | hint | attention (on the stage maps)
  double distill_feature_weight = 1.0;    ///< distill.feature_weight: weight of the feature term in the distill term
  // output.*
  std::filesystem::path out_dir = "tlk_run";  ///< output.dir
  std::int64_t save_every = 0;                ///< output.save_every: also keep epoch_N.h5 every N epochs (0: never)
  bool quiet = false;                         ///< output.quiet
  DistributedOptions distributed;             ///< distributed.*: `tlk train --distributed`

  /// Reads a config (after its --set overrides); its `task` key, when present, must be
  /// `classification`. An unknown key is a tlk::Error naming it and the nearest known key, and so
  /// is an invalid value.
  static ClassificationTrainConfig from(const io::Config& config);
  /// Every key with its current value, as YAML (what --print-config shows and checkpoints keep).
  std::string to_yaml() const;
  /// The keys from() knows (for "did you mean" suggestions and the docs test).
  static std::vector<std::string> known_keys();
};

/// The `task` key of a config: "segmentation" (the default) or "classification"; anything else is a
/// tlk::Error naming the config. Marks the key read.
/// Example: `if (task::config_task(config) == "classification") ...`
std::string config_task(const io::Config& config);

}  // namespace tlk::task
