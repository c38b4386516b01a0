#include "tlk/task/train_config.h"

#include "tlk/task/mixed_precision.h"
#include "tlk/tensor/device.h"
#include "tlk/transfer/stage_distillation.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tlk/tensor/error.h"

namespace tlk::task {

std::vector<std::string> SegmentationTrainConfig::known_keys() {
  std::vector<std::string> keys{"data.train", "data.val", "data.val_fraction", "data.patch", "data.batch", "data.oversample_foreground",
          "data.loader_threads", "data.augment", "data.augment_on", "data.target", "model.name", "train.epochs", "train.iterations_per_epoch",
          "train.val_iterations", "train.lr", "train.momentum", "train.weight_decay", "train.poly_exponent",
          "train.grad_clip", "train.seed", "train.threads", "train.device", "train.precision", "train.layout", "transfer.strategy", "transfer.pretrained",
          "transfer.pretrained_lr_scale", "transfer.freeze", "transfer.skip", "adapt.weight", "adapt.grl_alpha",
          "adapt.grl_lo", "adapt.grl_hi", "adapt.grl_max_iters", "adapt.grl_delay", "adapt.widths", "adapt.lr", "distill.teacher",
          "distill.weight", "distill.temperature", "distill.foreground_only", "distill.features", "distill.feature_weight",
          "distill.cache", "distill.cache_batches",
          "output.dir", "output.save_every", "output.quiet"};
  for (const std::string& key : DistributedOptions::keys()) keys.push_back(key);
  return keys;
}

SegmentationTrainConfig SegmentationTrainConfig::from(const io::Config& c) {
  SegmentationTrainConfig t;
  t.train_dir = c.get_string("data.train", "");
  check(!t.train_dir.empty(), "{}: data.train is required (a folder written by tlk preprocess)", c.source());
  t.val_dir = c.get_string("data.val", "");
  t.val_fraction = c.get_double("data.val_fraction", t.val_fraction);
  check(t.val_fraction >= 0.0 && t.val_fraction < 1.0, "{}: data.val_fraction must be in [0, 1), got {}", c.source(),
        t.val_fraction);
  const auto patch = c.get_ints("data.patch", {t.patch[0], t.patch[1], t.patch[2]});
  check(patch.size() == 3 && patch[0] > 0 && patch[1] > 0 && patch[2] > 0,
        "{}: data.patch expects three positive sizes (z, y, x), got {}", c.source(), fmt::join(patch, ","));
  t.patch = {patch[0], patch[1], patch[2]};
  t.batch = c.get_int("data.batch", t.batch);
  check(t.batch >= 1, "{}: data.batch must be at least 1, got {}", c.source(), t.batch);
  t.oversample_foreground = c.get_double("data.oversample_foreground", t.oversample_foreground);
  t.loader_threads = static_cast<int>(c.get_int("data.loader_threads", t.loader_threads));
  t.augment = c.get_bool("data.augment", t.augment);
  const std::string augment_on = c.get_string("data.augment_on", "loader");
  check(augment_on == "loader" || augment_on == "device",
        "{}: data.augment_on must be loader (augment on the loader threads) or device (on the GPU), got '{}'",
        c.source(), augment_on);
  t.augment_on_device = augment_on == "device";
  t.target_dir = c.get_string("data.target", "");
  t.model = c.get_string("model.name", t.model);
  for (const auto& [key, value] : c.take_subtree("model"))
    if (key != "name") t.model_options[key] = value;
  t.epochs = c.get_int("train.epochs", t.epochs);
  check(t.epochs >= 1, "{}: train.epochs must be at least 1, got {}", c.source(), t.epochs);
  t.iterations_per_epoch = c.get_int("train.iterations_per_epoch", t.iterations_per_epoch);
  check(t.iterations_per_epoch >= 1, "{}: train.iterations_per_epoch must be at least 1", c.source());
  t.val_iterations = c.get_int("train.val_iterations", t.val_iterations);
  t.lr = c.get_double("train.lr", t.lr);
  t.momentum = c.get_double("train.momentum", t.momentum);
  t.weight_decay = c.get_double("train.weight_decay", t.weight_decay);
  t.poly_exponent = c.get_double("train.poly_exponent", t.poly_exponent);
  t.grad_clip = c.get_double("train.grad_clip", t.grad_clip);
  t.seed = static_cast<std::uint64_t>(c.get_int("train.seed", static_cast<std::int64_t>(t.seed)));
  t.threads = static_cast<int>(c.get_int("train.threads", t.threads));
  t.device = c.get_string("train.device", t.device);
  const Device device = parse_device(t.device, "train.device");
  t.precision = read_train_precision(c, t.device);
  t.layout = parse_activation_layout(c.get_string("train.layout", "auto"), device,
                                     (c.source() + ": train.layout").c_str());
  check(!t.augment_on_device || device.is_cuda(),
        "{}: data.augment_on device needs train.device cuda (the augmentation runs on the training GPU); got "
        "train.device {}", c.source(), t.device);
  t.strategy = c.get_string("transfer.strategy", t.strategy);
  t.pretrained = c.get_string("transfer.pretrained", "");
  t.pretrained_lr_scale = c.get_double("transfer.pretrained_lr_scale", t.pretrained_lr_scale);
  t.freeze = c.get_string("transfer.freeze", t.freeze);
  t.skip = c.get_string("transfer.skip", t.skip);
  t.adapt_weight = c.get_double("adapt.weight", t.adapt_weight);
  t.grl_alpha = c.get_double("adapt.grl_alpha", t.grl_alpha);
  t.grl_lo = c.get_double("adapt.grl_lo", t.grl_lo);
  t.grl_hi = c.get_double("adapt.grl_hi", t.grl_hi);
  t.grl_max_iters = c.get_int("adapt.grl_max_iters", t.grl_max_iters);
  t.grl_delay = c.get_int("adapt.grl_delay", t.grl_delay);
  check(t.grl_delay >= 0, "{}: adapt.grl_delay must be >= 0 steps, got {}", c.source(), t.grl_delay);
  t.discriminator_widths = c.get_ints("adapt.widths", {});
  t.discriminator_lr = c.get_double("adapt.lr", t.discriminator_lr);
  check(t.discriminator_lr > 0, "{}: adapt.lr must be positive, got {}", c.source(), t.discriminator_lr);
  t.teacher = c.get_string("distill.teacher", "");
  t.distill_weight = c.get_double("distill.weight", t.distill_weight);
  t.distill_temperature = c.get_double("distill.temperature", t.distill_temperature);
  t.distill_foreground_only = c.get_bool("distill.foreground_only", t.distill_foreground_only);
  t.distill_features = c.get_string("distill.features", t.distill_features);
  transfer::parse_feature_loss(t.distill_features, fmt::format("{}: distill.features", c.source()));
  t.distill_feature_weight = c.get_double("distill.feature_weight", t.distill_feature_weight);
  check(t.distill_feature_weight >= 0, "{}: distill.feature_weight must be >= 0, got {}", c.source(),
        t.distill_feature_weight);
  t.distill_cache = c.get_string("distill.cache", "");
  t.distill_cache_batches = c.get_int("distill.cache_batches", t.distill_cache_batches);
  check(t.distill_cache_batches >= 0, "{}: distill.cache_batches must be >= 0 (0: train.iterations_per_epoch), "
        "got {}", c.source(), t.distill_cache_batches);
  const bool adapts = t.strategy == "adapt" || t.strategy == "finetune+adapt" || t.strategy == "distill+adapt";
  const bool finetunes = t.strategy == "finetune" || t.strategy == "finetune+adapt";
  const bool distills = t.strategy == "distill" || t.strategy == "distill+adapt";
  check(adapts || finetunes || distills || t.strategy == "supervised", "{}: transfer.strategy '{}' is not one of "
        "supervised, finetune, adapt, finetune+adapt, distill, distill+adapt", c.source(), t.strategy);
  check(!adapts || !t.target_dir.empty(), "{}: transfer.strategy {} needs data.target (preprocessed target-domain "
        "cases; their labels are never read)", c.source(), t.strategy);
  check(!finetunes || !t.pretrained.empty(), "{}: transfer.strategy {} needs transfer.pretrained (a checkpoint)",
        c.source(), t.strategy);
  check(distills || t.distill_features == "none", "{}: distill.features {} needs a distill strategy (distill or "
        "distill+adapt), got transfer.strategy {}", c.source(), t.distill_features, t.strategy);
  check(!distills || !t.teacher.empty(), "{}: transfer.strategy {} needs distill.teacher (a checkpoint)", c.source(),
        t.strategy);
  check(distills || t.distill_cache.empty(), "{}: distill.cache needs a distill strategy (distill or distill+adapt), "
        "got transfer.strategy {}", c.source(), t.strategy);
  check(t.distill_features == "none" || t.distill_cache.empty(), "{}: distill.features {} needs the teacher's "
        "encoder skips of every batch, and distill.cache keeps only its outputs: leave one of them unset", c.source(),
        t.distill_features);
  t.out_dir = c.get_string("output.dir", t.out_dir.string());
  t.save_every = c.get_int("output.save_every", t.save_every);
  t.quiet = c.get_bool("output.quiet", t.quiet);
  t.distributed = DistributedOptions::from(c);
  c.check_all_read(known_keys());
  return t;
}

namespace {
/// A YAML scalar that stays a string (empty or not).
std::string quoted(const std::string& s) { return "\"" + s + "\""; }
}  // namespace

std::string SegmentationTrainConfig::to_yaml() const {
  std::string model_lines;
  for (const auto& [key, value] : model_options) model_lines += fmt::format("  {}: {}\n", key, value);
  return fmt::format(
      "data:\n  train: {}\n  val: {}\n  val_fraction: {}\n  patch: [{}]\n  batch: {}\n  oversample_foreground: {}\n"
      "  loader_threads: {}\n  augment: {}\n  augment_on: {}\n  target: {}\nmodel:\n  name: {}\n{}train:\n  epochs: {}\n  iterations_per_epoch: {}\n"
      "  val_iterations: {}\n  lr: {}\n  momentum: {}\n  weight_decay: {}\n  poly_exponent: {}\n  grad_clip: {}\n"
      "  seed: {}\n  threads: {}\n  device: {}\n  precision: {}\n  layout: {}\ntransfer:\n  strategy: {}\n  pretrained: {}\n  pretrained_lr_scale: {}\n"
      "  freeze: {}\n  skip: {}\nadapt:\n  weight: {}\n  grl_alpha: {}\n  grl_lo: {}\n  grl_hi: {}\n"
      "  grl_max_iters: {}\n  grl_delay: {}\n  widths: [{}]\n  lr: {}\ndistill:\n  teacher: {}\n  weight: {}\n"
      "  temperature: {}\n  foreground_only: {}\n  features: {}\n  feature_weight: {}\n  cache: {}\n  cache_batches: {}\noutput:\n  dir: {}\n  save_every: {}\n  quiet: {}\n{}",
      train_dir.string(), quoted(val_dir.string()), val_fraction, fmt::join(patch, ", "), batch,
      oversample_foreground, loader_threads, augment, augment_on_device ? "device" : "loader", quoted(target_dir.string()), model, model_lines, epochs, iterations_per_epoch, val_iterations,
      lr, momentum, weight_decay, poly_exponent, grad_clip, seed, threads, device, dtype_name(precision), layout_name(layout), strategy, quoted(pretrained.string()),
      pretrained_lr_scale, quoted(freeze), quoted(skip), adapt_weight, grl_alpha, grl_lo, grl_hi, grl_max_iters, grl_delay,
      fmt::join(discriminator_widths, ", "), discriminator_lr, quoted(teacher.string()), distill_weight,
      distill_temperature, distill_foreground_only, distill_features, distill_feature_weight,
      quoted(distill_cache.string()), distill_cache_batches, out_dir.string(), save_every, quiet,
      distributed.to_yaml());
}

}  // namespace tlk::task
