#include "tlk/task/classification_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "tlk/task/mixed_precision.h"
#include "tlk/tensor/device.h"
#include "tlk/tensor/error.h"
#include "tlk/transfer/stage_distillation.h"

namespace tlk::task {

namespace {

/// A YAML scalar that stays a string (empty or not).
std::string quoted(const std::string& s) { return "\"" + s + "\""; }

void check_one_of(const io::Config& c, const std::string& key, const std::string& value,
                  const std::vector<std::string>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return;
  fail("{}: {} '{}' is not one of {}", c.source(), key, value, fmt::join(allowed, ", "));
}

/// A list key; an empty value (`[]`, as to_yaml writes an empty list) is the empty list.
std::vector<double> doubles_or_empty(const io::Config& c, const std::string& key) {
  return c.get_string(key, "").empty() ? std::vector<double>{} : c.get_doubles(key, {});
}
std::vector<std::int64_t> ints_or_empty(const io::Config& c, const std::string& key) {
  return c.get_string(key, "").empty() ? std::vector<std::int64_t>{} : c.get_ints(key, {});
}

}  // namespace

std::string config_task(const io::Config& config) {
  const std::string task = config.get_string("task", "segmentation");
  check(task == "segmentation" || task == "classification",
        "{}: task '{}' is not one of segmentation, classification", config.source(), task);
  return task;
}

std::vector<std::string> ClassificationTrainConfig::known_keys() {
  std::vector<std::string> keys{"task", "data.train", "data.val", "data.val_fraction", "data.train_limit", "data.target", "data.test",
          "data.size", "data.fit", "data.grey_to_rgb", "data.mean", "data.std", "data.batch", "model.name",
          "train.epochs", "train.iterations_per_epoch", "train.optimizer", "train.lr", "train.momentum",
          "train.nesterov", "train.weight_decay", "train.schedule", "train.step_epochs", "train.gamma",
          "train.grad_clip", "train.seed", "train.threads", "train.device", "train.precision", "transfer.strategy", "transfer.pretrained",
          "transfer.pretrained_lr_scale", "transfer.freeze", "transfer.skip", "adapt.method", "adapt.hidden",
          "adapt.regularizer", "adapt.dropout", "adapt.weight", "adapt.grl_alpha", "adapt.grl_lo", "adapt.grl_hi",
          "adapt.grl_max_iters", "adapt.lr_scale", "adapt.conditioning", "adapt.randomized_dim", "adapt.entropy",
          "distill.teacher", "distill.loss", "distill.alpha", "distill.temperature", "distill.dkd_alpha",
          "distill.dkd_beta", "distill.dkd_warmup", "distill.cache", "distill.features", "distill.feature_weight", "output.dir", "output.save_every",
          "output.quiet"};
  for (const std::string& key : DistributedOptions::keys()) keys.push_back(key);
  return keys;
}

ClassificationTrainConfig ClassificationTrainConfig::from(const io::Config& c) {
  const std::string task = c.get_string("task", "classification");  // optional here; `tlk train` dispatches on it
  check(task == "classification", "{}: task is '{}', but this is the classification trainer's config (task: "
        "classification)", c.source(), task);
  ClassificationTrainConfig t;
  const std::string& src = c.source();
  t.train = c.get_string("data.train", "");
  check(!t.train.empty(), "{}: data.train is required (labelled images, file.h5 or file.h5:split)", src);
  t.val = c.get_string("data.val", "");
  t.val_fraction = c.get_double("data.val_fraction", t.val_fraction);
  check(t.val_fraction >= 0.0 && t.val_fraction < 1.0, "{}: data.val_fraction must be in [0, 1), got {}", src,
        t.val_fraction);
  check(t.val.empty() || t.val_fraction == 0.0, "{}: give data.val or data.val_fraction, not both", src);
  t.train_limit = c.get_int("data.train_limit", t.train_limit);
  check(t.train_limit >= 0, "{}: data.train_limit must be >= 0 (0: all images), got {}", src, t.train_limit);
  t.target = c.get_string("data.target", "");
  t.test = c.get_string("data.test", "");
  t.size = ints_or_empty(c, "data.size");
  check(t.size.empty() || t.size.size() == 2 || t.size.size() == 3,
        "{}: data.size expects [H, W] or [D, H, W], got {} values", src, t.size.size());
  for (std::int64_t s : t.size) check(s > 0, "{}: data.size must be positive, got {}", src, fmt::join(t.size, ","));
  t.fit = c.get_string("data.fit", t.fit);
  check_one_of(c, "data.fit", t.fit, {"resize", "pad"});
  t.grey_to_rgb = c.get_bool("data.grey_to_rgb", t.grey_to_rgb);
  t.mean = doubles_or_empty(c, "data.mean");
  t.stddev = doubles_or_empty(c, "data.std");
  for (double s : t.stddev) check(s > 0, "{}: data.std must be positive, got {}", src, s);
  t.batch = c.get_int("data.batch", t.batch);
  check(t.batch >= 1, "{}: data.batch must be at least 1, got {}", src, t.batch);

  t.model = c.get_string("model.name", t.model);
  for (const auto& [key, value] : c.take_subtree("model"))
    if (key != "name") t.model_options[key] = value;

  t.epochs = c.get_int("train.epochs", t.epochs);
  check(t.epochs >= 1, "{}: train.epochs must be at least 1, got {}", src, t.epochs);
  t.iterations_per_epoch = c.get_int("train.iterations_per_epoch", t.iterations_per_epoch);
  check(t.iterations_per_epoch >= 0, "{}: train.iterations_per_epoch must be >= 0 (0: one pass over the source)",
        src);
  t.optimizer = c.get_string("train.optimizer", t.optimizer);
  check_one_of(c, "train.optimizer", t.optimizer, {"sgd", "adam"});
  t.lr = c.get_double("train.lr", t.lr);
  check(t.lr > 0 && std::isfinite(t.lr), "{}: train.lr must be positive, got {}", src, t.lr);
  t.momentum = c.get_double("train.momentum", t.momentum);
  t.nesterov = c.get_bool("train.nesterov", t.nesterov);
  t.weight_decay = c.get_double("train.weight_decay", t.weight_decay);
  t.schedule = c.get_string("train.schedule", t.schedule);
  check_one_of(c, "train.schedule", t.schedule, {"constant", "dann", "cosine", "step"});
  t.step_epochs = c.get_int("train.step_epochs", t.step_epochs);
  t.gamma = c.get_double("train.gamma", t.gamma);
  t.grad_clip = c.get_double("train.grad_clip", t.grad_clip);
  t.seed = static_cast<std::uint64_t>(c.get_int("train.seed", static_cast<std::int64_t>(t.seed)));
  t.threads = static_cast<int>(c.get_int("train.threads", t.threads));
  t.device = c.get_string("train.device", t.device);
  parse_device(t.device, "train.device");
  t.precision = read_train_precision(c, t.device);

  t.strategy = c.get_string("transfer.strategy", t.strategy);
  check_one_of(c, "transfer.strategy", t.strategy,
               {"supervised", "finetune", "distill", "adapt", "finetune+adapt", "distill+adapt"});
  t.pretrained = c.get_string("transfer.pretrained", "");
  t.pretrained_lr_scale = c.get_double("transfer.pretrained_lr_scale", t.pretrained_lr_scale);
  t.freeze = c.get_string("transfer.freeze", t.freeze);
  t.skip = c.get_string("transfer.skip", t.skip);

  t.adapt_method = c.get_string("adapt.method", t.adapt_method);
  check_one_of(c, "adapt.method", t.adapt_method, {"dann", "cdan"});
  t.adapt_hidden = c.get_int("adapt.hidden", t.adapt_hidden);
  check(t.adapt_hidden >= 1, "{}: adapt.hidden must be at least 1, got {}", src, t.adapt_hidden);
  t.adapt_regularizer = c.get_string("adapt.regularizer", t.adapt_regularizer);
  check_one_of(c, "adapt.regularizer", t.adapt_regularizer, {"batch_norm", "dropout", "none"});
  t.adapt_dropout = c.get_double("adapt.dropout", t.adapt_dropout);
  t.adapt_weight = c.get_double("adapt.weight", t.adapt_weight);
  t.grl_alpha = c.get_double("adapt.grl_alpha", t.grl_alpha);
  t.grl_lo = c.get_double("adapt.grl_lo", t.grl_lo);
  t.grl_hi = c.get_double("adapt.grl_hi", t.grl_hi);
  t.grl_max_iters = c.get_int("adapt.grl_max_iters", t.grl_max_iters);
  check(t.grl_max_iters >= 0, "{}: adapt.grl_max_iters must be >= 0 (0: the whole run), got {}", src,
        t.grl_max_iters);
  t.adapt_lr_scale = c.get_double("adapt.lr_scale", t.adapt_lr_scale);
  t.cdan_conditioning = c.get_string("adapt.conditioning", t.cdan_conditioning);
  check_one_of(c, "adapt.conditioning", t.cdan_conditioning, {"automatic", "multilinear", "randomized"});
  t.cdan_randomized_dim = c.get_int("adapt.randomized_dim", t.cdan_randomized_dim);
  t.cdan_entropy = c.get_bool("adapt.entropy", t.cdan_entropy);

  t.teacher = c.get_string("distill.teacher", "");
  t.distill_loss = c.get_string("distill.loss", t.distill_loss);
  check_one_of(c, "distill.loss", t.distill_loss, {"kd", "dkd", "mse"});
  t.distill_alpha = c.get_double("distill.alpha", t.distill_alpha);
  check(t.distill_alpha >= 0.0 && t.distill_alpha <= 1.0, "{}: distill.alpha must be in [0, 1], got {}", src,
        t.distill_alpha);
  t.distill_temperature = c.get_double("distill.temperature", t.distill_temperature);
  check(t.distill_temperature > 0, "{}: distill.temperature must be positive, got {}", src, t.distill_temperature);
  t.dkd_alpha = c.get_double("distill.dkd_alpha", t.dkd_alpha);
  t.dkd_beta = c.get_double("distill.dkd_beta", t.dkd_beta);
  t.dkd_warmup = c.get_double("distill.dkd_warmup", t.dkd_warmup);
  t.distill_cache = c.get_string("distill.cache", "");
  t.distill_features = c.get_string("distill.features", t.distill_features);
  transfer::parse_feature_loss(t.distill_features, fmt::format("{}: distill.features", src));
  t.distill_feature_weight = c.get_double("distill.feature_weight", t.distill_feature_weight);
  check(t.distill_feature_weight >= 0, "{}: distill.feature_weight must be >= 0, got {}", src,
        t.distill_feature_weight);

  t.out_dir = c.get_string("output.dir", t.out_dir.string());
  t.save_every = c.get_int("output.save_every", t.save_every);
  t.quiet = c.get_bool("output.quiet", t.quiet);
  t.distributed = DistributedOptions::from(c);

  const bool adapts = t.strategy == "adapt" || t.strategy == "finetune+adapt" || t.strategy == "distill+adapt";
  const bool finetunes = t.strategy == "finetune" || t.strategy == "finetune+adapt";
  const bool distills = t.strategy == "distill" || t.strategy == "distill+adapt";
  check(!adapts || !t.target.empty(), "{}: transfer.strategy {} needs data.target (unlabelled target-domain images, "
        "file.h5[:split]; their labels are never read)", src, t.strategy);
  check(!finetunes || !t.pretrained.empty(), "{}: transfer.strategy {} needs transfer.pretrained (a checkpoint)", src,
        t.strategy);
  check(!distills || !t.teacher.empty(), "{}: transfer.strategy {} needs distill.teacher (a checkpoint)", src,
        t.strategy);
  check(distills || t.distill_features == "none", "{}: distill.features {} needs a distill strategy (distill or "
        "distill+adapt), got transfer.strategy {}", src, t.distill_features, t.strategy);
  check(t.distill_features == "none" || t.distill_cache.empty(), "{}: distill.features {} needs the teacher's "
        "stage maps of every batch, and distill.cache keeps only its outputs: leave one of them unset", src,
        t.distill_features);
  c.check_all_read(known_keys());
  return t;
}

std::string ClassificationTrainConfig::to_yaml() const {
  std::string model_lines;
  for (const auto& [key, value] : model_options) model_lines += fmt::format("  {}: {}\n", key, value);
  std::string out = "task: classification\n";
  out += fmt::format(
      "data:\n  train: {}\n  val: {}\n  val_fraction: {}\n  train_limit: {}\n  target: {}\n  test: {}\n"
      "  size: [{}]\n  fit: {}\n  grey_to_rgb: {}\n  mean: [{}]\n  std: [{}]\n  batch: {}\n",
      quoted(train), quoted(val), val_fraction, train_limit, quoted(target), quoted(test), fmt::join(size, ", "), fit,
      grey_to_rgb, fmt::join(mean, ", "), fmt::join(stddev, ", "), batch);
  out += fmt::format("model:\n  name: {}\n{}", model, model_lines);
  out += fmt::format(
      "train:\n  epochs: {}\n  iterations_per_epoch: {}\n  optimizer: {}\n  lr: {}\n  momentum: {}\n  nesterov: {}\n"
      "  weight_decay: {}\n  schedule: {}\n  step_epochs: {}\n  gamma: {}\n  grad_clip: {}\n  seed: {}\n"
      "  threads: {}\n  device: {}\n  precision: {}\n",
      epochs, iterations_per_epoch, optimizer, lr, momentum, nesterov, weight_decay, schedule, step_epochs, gamma,
      grad_clip, seed, threads, device, dtype_name(precision));
  out += fmt::format("transfer:\n  strategy: {}\n  pretrained: {}\n  pretrained_lr_scale: {}\n  freeze: {}\n  skip: {}\n",
                     strategy, quoted(pretrained.string()), pretrained_lr_scale, quoted(freeze), quoted(skip));
  out += fmt::format(
      "adapt:\n  method: {}\n  hidden: {}\n  regularizer: {}\n  dropout: {}\n  weight: {}\n  grl_alpha: {}\n"
      "  grl_lo: {}\n  grl_hi: {}\n  grl_max_iters: {}\n  lr_scale: {}\n  conditioning: {}\n  randomized_dim: {}\n"
      "  entropy: {}\n",
      adapt_method, adapt_hidden, adapt_regularizer, adapt_dropout, adapt_weight, grl_alpha, grl_lo, grl_hi,
      grl_max_iters, adapt_lr_scale, cdan_conditioning, cdan_randomized_dim, cdan_entropy);
  out += fmt::format(
      "distill:\n  teacher: {}\n  loss: {}\n  alpha: {}\n  temperature: {}\n  dkd_alpha: {}\n  dkd_beta: {}\n"
      "  dkd_warmup: {}\n  cache: {}\n  features: {}\n  feature_weight: {}\n",
      quoted(teacher.string()), distill_loss, distill_alpha, distill_temperature, dkd_alpha, dkd_beta, dkd_warmup,
      quoted(distill_cache.string()), distill_features, distill_feature_weight);
  out += fmt::format("output:\n  dir: {}\n  save_every: {}\n  quiet: {}\n", quoted(out_dir.string()), save_every, quiet);
  return out + distributed.to_yaml();
}

}  // namespace tlk::task
