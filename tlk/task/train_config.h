#pragma once
#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tlk/task/distributed_options.h"
#include "tlk/io/config.h"
#include "tlk/tensor/device.h"
#include "tlk/tensor/dtype.h"

namespace tlk::task {

/// Everything `tlk train` reads from its YAML config, with nnUNet's 3d_fullres defaults.
/// docs/config.md lists every key; `tlk train --print-config` prints them with their values.
///
/// Example config:
/// ```yaml
/// data:  {train: prep/AMOS, patch: [64, 64, 64], batch: 2}
/// model: {name: unet3d, levels: 5, base_features: 32}
/// train: {epochs: 100, iterations_per_epoch: 250, lr: 0.01}
/// output: {dir: runs/amos}
/// ```
struct SegmentationTrainConfig {
  // data.*
  std::filesystem::path train_dir;      ///< data.train: a folder written by `tlk preprocess`
  std::filesystem::path val_dir;        ///< data.val: validation cases (default: split off train)
  double val_fraction = 0.2;            ///< data.val_fraction: cases held out when data.val is empty
  std::array<std::int64_t, 3> patch{64, 64, 64};  ///< data.patch (z, y, x)
  std::int64_t batch = 2;               ///< data.batch
  double oversample_foreground = 0.33;  ///< data.oversample_foreground
  int loader_threads = 2;               ///< data.loader_threads (0: on the training thread)
  bool augment = true;                  ///< data.augment: nnUNet's augmentation pipeline
  /// data.augment_on: loader (false: the loader threads augment) or device (true: they only draw, and
  /// the training GPU applies the draws; Note [Augmentation on the GPU])
  bool augment_on_device = false;
  std::filesystem::path target_dir;     ///< data.target: unlabelled target-domain cases (adapt strategies)
  // model.*
  std::string model = "unet3d";                     ///< model.name (a ModuleRegistry name)
  std::map<std::string, std::string> model_options;  ///< every other model.* key, e.g. model.levels
  // train.*
  std::int64_t epochs = 1000;                ///< train.epochs
  std::int64_t iterations_per_epoch = 250;   ///< train.iterations_per_epoch
  std::int64_t val_iterations = 50;          ///< train.val_iterations: validation batches per epoch
  double lr = 0.01;                          ///< train.lr
  double momentum = 0.99;                    ///< train.momentum (SGD, Nesterov)
  double weight_decay = 3e-5;                ///< train.weight_decay
  double poly_exponent = 0.9;                ///< train.poly_exponent: lr·(1 − epoch/epochs)^exp
  double grad_clip = 12.0;                   ///< train.grad_clip: max gradient norm (0: off)
  std::uint64_t seed = 1;                    ///< train.seed
  int threads = 0;                           ///< train.threads: OpenMP threads (0: all cores)
  std::string device = "cpu";                ///< train.device: cpu, cuda or cuda:N
  /// train.precision: f32, or bf16 / f16 mixed precision on a GPU (Note [Autocast]; f16 with dynamic
  /// loss scaling, Note [Loss scaling]); f32 master weights either way.
  DType precision = DType::f32;
  /// train.layout: auto (channels_last on a GPU, plain on the CPU), plain, or channels_last on a GPU
  /// (NDHWC activations end to end, Note [Channels-last on the GPU] in kernels/cuda/launch.h)
  Layout layout = Layout::plain;
  // transfer.*, adapt.*, distill.* (docs/config.md "Transfer")
  std::string strategy = "supervised";  ///< transfer.strategy: supervised, finetune, adapt, finetune+adapt, distill, distill+adapt
  std::filesystem::path pretrained;     ///< transfer.pretrained: checkpoint to start from (finetune strategies)
  double pretrained_lr_scale = 1.0;     ///< transfer.pretrained_lr_scale: lr multiplier of copied parameters (TLK: 0.2)
  std::string freeze = "none";          ///< transfer.freeze: none, copied, or comma-separated name prefixes
  std::string skip = "";                ///< transfer.skip: name prefixes never copied (e.g. the heads)
  double adapt_weight = 1.0;            ///< adapt.weight: weight of the adversarial loss
  double grl_alpha = 1.0, grl_lo = 0.0, grl_hi = 1.0;  ///< adapt.grl_alpha / grl_lo / grl_hi
  std::int64_t grl_max_iters = 1000;    ///< adapt.grl_max_iters: N of the warm-start schedule
  std::int64_t grl_delay = 0;           ///< adapt.grl_delay: steps with λ = 0 before the schedule starts
  std::vector<std::int64_t> discriminator_widths;    ///< adapt.widths: per-scale widths (default: the discriminator's)
  double discriminator_lr = 1e-3;       ///< adapt.lr: Adam learning rate of the discriminator
  std::filesystem::path teacher;        ///< distill.teacher: teacher checkpoint (distill strategies)
  double distill_weight = 1.0;          ///< distill.weight
  double distill_temperature = 1.0;     ///< distill.temperature (T² scaling applied)
  bool distill_foreground_only = false; ///< distill.foreground_only: KD only where teacher or label is foreground
  std::string distill_features = "none"; ///< distill.features: none, hint or attention, on every encoder skip
  double distill_feature_weight = 1.0;   ///< distill.feature_weight: weight of the feature term (added to KD)
  std::filesystem::path distill_cache;   ///< distill.cache: saved teacher outputs, replayed (Note [Replayed patches])
  std::int64_t distill_cache_batches = 0; ///< distill.cache_batches: batches before the stream repeats (0: one epoch)
  // output.*
  std::filesystem::path out_dir = "tlk_run";  ///< output.dir
  std::int64_t save_every = 50;               ///< output.save_every: also keep epoch_N.h5 every N epochs
  bool quiet = false;                         ///< output.quiet: no progress bar
  DistributedOptions distributed;   ///< distributed.*: `tlk train --distributed` (docs/distributed.md)

  /// Reads a config (after its --set overrides); an unknown key is a tlk::Error naming it.
  static SegmentationTrainConfig from(const io::Config& config);
  /// Every key with its current value, as YAML (what --print-config shows and checkpoints keep).
  std::string to_yaml() const;
  /// The keys from() knows, for "did you mean" suggestions and the docs test.
  static std::vector<std::string> known_keys();
};

}  // namespace tlk::task
