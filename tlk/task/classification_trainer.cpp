#include "tlk/task/classification_trainer.h"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <optional>

#include "tlk/autograd/autocast.h"
#include "tlk/autograd/grad_mode.h"
#include "tlk/autograd/ops/arith.h"
#include "tlk/autograd/ops/losses.h"
#include "tlk/io/file_bytes.h"
#include "tlk/io/hdf5_file.h"
#include "tlk/io/progress_bar.h"
#include "tlk/nn/adam.h"
#include "tlk/nn/lr_schedule.h"
#include "tlk/nn/sgd.h"
#include "tlk/task/checkpoint.h"
#include "tlk/task/metrics.h"
#include "tlk/task/mix_seed.h"
#include "tlk/task/mixed_precision.h"
#include "tlk/task/training_log.h"
#include "tlk/tensor/cuda_runtime.h"
#include "tlk/tensor/device.h"
#include "tlk/tensor/error.h"
#include "tlk/tensor/fnv1a.h"
#include "tlk/transfer/cdan.h"
#include "tlk/transfer/domain_discriminator.h"
#include "tlk/transfer/stage_distillation.h"
#include "tlk/transfer/teacher_cache.h"

namespace tlk::task {

namespace {

data::ClassificationDataset take(const data::ClassificationDataset& ds, const std::vector<std::int64_t>& indices) {
  data::ClassificationDataset out = data::subset(ds, indices);
  out.source = ds.source;
  return out;
}

std::unique_ptr<nn::LrSchedule> make_schedule(const ClassificationTrainConfig& c, std::int64_t steps_per_epoch) {
  const std::int64_t total = c.epochs * steps_per_epoch;
  if (c.schedule == "dann") return std::make_unique<nn::DannSchedule>(c.lr, total);
  if (c.schedule == "cosine") return std::make_unique<nn::CosineSchedule>(c.lr, total);
  if (c.schedule == "step") {
    const std::int64_t epochs = c.step_epochs > 0 ? c.step_epochs : std::max<std::int64_t>(1, c.epochs / 3);
    return std::make_unique<nn::StepSchedule>(c.lr, epochs * steps_per_epoch, c.gamma);
  }
  return std::make_unique<nn::StepSchedule>(c.lr, total + 1, 1.0);  // constant
}

}  // namespace

ClassificationTrainer::~ClassificationTrainer() = default;

ClassificationTrainer::ClassificationTrainer(ClassificationTrainConfig config, dist::ProcessGroup* group)
    : config_(std::move(config)), parallel_(group) {
  if (const int threads = parallel_.threads(config_.threads); threads > 0) omp_set_num_threads(threads);
  load_options_.spatial_size = config_.size;
  load_options_.fit = config_.fit == "pad" ? data::SpatialFit::pad : data::SpatialFit::resize;
  load_options_.grey_to_rgb = config_.grey_to_rgb;
  load_options_.mean = config_.mean;
  load_options_.stddev = config_.stddev;

  // Note [Fixed hold-out]: data.val_fraction holds out images chosen by a fixed generator, not by
  // train.seed, so that every run on one file (a teacher, its students, every seed) validates on the
  // same images and none of them trains on them.
  data::ClassificationDataset all = data::load_classification_dataset(config_.train, load_options_);
  std::vector<std::int64_t> train_idx, val_idx;
  if (config_.val_fraction > 0) {
    Generator gen(0x401d07);
    std::vector<std::int64_t> order = data::shuffled_indices(all.size(), gen);
    const auto n_val = std::clamp<std::int64_t>(
        std::llround(config_.val_fraction * static_cast<double>(all.size())), 1, all.size() - 1);
    val_idx.assign(order.begin(), order.begin() + n_val);
    train_idx.assign(order.begin() + n_val, order.end());
    std::sort(val_idx.begin(), val_idx.end());
    std::sort(train_idx.begin(), train_idx.end());
  } else {
    for (std::int64_t i = 0; i < all.size(); ++i) train_idx.push_back(i);
  }
  if (config_.train_limit > 0 && config_.train_limit < static_cast<std::int64_t>(train_idx.size()))
    train_idx.resize(static_cast<std::size_t>(config_.train_limit));
  train_ = val_idx.empty() && train_idx.size() == static_cast<std::size_t>(all.size()) ? all : take(all, train_idx);
  if (!val_idx.empty()) val_ = take(all, val_idx);
  if (!config_.val.empty()) val_ = data::load_classification_dataset(config_.val, load_options_);
  if (!config_.test.empty()) test_ = data::load_classification_dataset(config_.test, load_options_);
  const std::int64_t K = train_.num_classes;
  for (const data::ClassificationDataset* d : {&val_, &test_}) {
    if (!d->images.defined()) continue;
    check(d->images.shape().size() == train_.images.shape().size() && d->images.size(1) == train_.images.size(1),
          "train: {} has images {}, the training data {} has {} (set data.size / data.grey_to_rgb to match)", d->source,
          d->images.shape().str(), train_.source, train_.images.shape().str());
    check(d->num_classes <= K, "train: {} has {} classes, the training data {} has {}", d->source, d->num_classes,
          train_.source, K);
  }

  model_options_ = nn::ModuleOptions{}.with_in_channels(train_.images.size(1)).with_num_classes(K);
  for (const auto& [key, value] : config_.model_options) model_options_ = model_options_.with(key, value);
  if (config_.model == "lenet" && !model_options_.has("image_size")) {
    const std::int64_t h = train_.images.size(-2), w = train_.images.size(-1);
    check(h == w && train_.images.dim() == 4, "train: LeNet takes square 2-D images, the data has {} (set data.size)",
          train_.images.shape().str());
    model_options_ = model_options_.with("image_size", h);
  }
  Generator init(config_.seed);
  net_ = nn::ModuleRegistry::instance().create(config_.model, model_options_, init);
  classifier_ = dynamic_cast<nn::Classifier*>(net_.get());
  check(classifier_ != nullptr, "train: model '{}' is not a classifier (task: classification needs an nn::Classifier "
        "such as lenet or resnet3d-small)", config_.model);

  strategy_ = transfer::parse_strategy(config_.strategy);
  if (transfer::finetunes(strategy_)) {
    finetune_options_ =
        transfer::FinetuneOptions::from_config(config_.freeze, config_.skip, config_.pretrained_lr_scale);
    finetune_report_ = finetune_from_checkpoint(*net_, config_.pretrained, finetune_options_);
    if (!config_.quiet && parallel_.writes()) fmt::print(stderr, "{}\n", finetune_report_.str());
  }
  // One step takes a global batch of ranks x data.batch images (one process: data.batch).
  const std::int64_t global_batch = config_.batch * parallel_.ranks();
  check(!parallel_.distributed() || global_batch <= train_.size(), "train --distributed: {} ranks x data.batch {} "
        "exceed the {} training images", parallel_.ranks(), config_.batch, train_.size());
  const std::int64_t batches_per_pass = std::max<std::int64_t>(1, train_.size() / std::min(global_batch, train_.size()));
  steps_per_epoch_ = config_.iterations_per_epoch > 0 ? config_.iterations_per_epoch : batches_per_pass;

  if (transfer::adapts(strategy_)) {
    target_ = load_unlabelled_images(config_.target, load_options_);
    check(target_.dim() == train_.images.dim() && target_.size(1) == train_.images.size(1) &&
              target_.size(-1) == train_.images.size(-1) && target_.size(-2) == train_.images.size(-2),
          "train: the target images {} are {}, the source {} are {} (set data.size / data.grey_to_rgb to match)",
          config_.target, target_.shape().str(), train_.source, train_.images.shape().str());
    const transfer::DomainDiscriminatorOptions mlp{
        .hidden = config_.adapt_hidden,
        .regularizer = config_.adapt_regularizer == "batch_norm" ? transfer::DiscriminatorRegularizer::batch_norm
                       : config_.adapt_regularizer == "dropout"  ? transfer::DiscriminatorRegularizer::dropout
                                                                 : transfer::DiscriminatorRegularizer::none,
        .dropout = config_.adapt_dropout};
    Generator disc_init(mix_seed(config_.seed, 0xd15c));
    std::shared_ptr<transfer::Discriminator> disc;
    if (config_.adapt_method == "cdan") {
      transfer::CdanOptions o;
      o.conditioning = config_.cdan_conditioning == "multilinear" ? transfer::CdanConditioning::multilinear
                       : config_.cdan_conditioning == "randomized" ? transfer::CdanConditioning::randomized
                                                                   : transfer::CdanConditioning::automatic;
      o.randomized_dim = config_.cdan_randomized_dim;
      o.entropy_weighting = config_.cdan_entropy;
      o.discriminator = mlp;
      disc = std::make_shared<transfer::CdanDiscriminator>(classifier_->feature_count(), classifier_->num_classes(), o,
                                                           disc_init);
    } else {
      disc = std::make_shared<transfer::DomainDiscriminator>(classifier_->feature_count(), mlp, disc_init);
    }
    const std::int64_t n_iters = config_.grl_max_iters > 0 ? config_.grl_max_iters : config_.epochs * steps_per_epoch_;
    adapter_ = std::make_shared<transfer::DomainAdapter>(
        disc, transfer::WarmStartSchedule{config_.grl_alpha, config_.grl_lo, config_.grl_hi, n_iters});
  }
  if (transfer::distills(strategy_)) build_distiller(K);
  // train.device: the data stays on the CPU and each batch is copied over (as the segmentation
  // trainer does); the networks move once.
  device_ = parallel_.device(parse_device(config_.device, "train.device"), config_.device);  // one rank per GPU
  if (device_.is_cuda()) cuda::require_device(device_.index, "train.device");
  net_->to(device_);
  if (adapter_) adapter_->to(device_);
  if (stage_distillation_) stage_distillation_->to(device_);
  if (distiller_) {
    distiller_->teacher().to(device_);
    if (distiller_->cache()) {
      precompute_teacher_outputs();
      if (parallel_.writes()) parallel_.barrier("distill.cache (rank 0 saves the teacher's outputs)");
    }
  }
}

// The frozen teacher, its loss, the optional teacher cache and the optional stage-map distillation.
void ClassificationTrainer::build_distiller(std::int64_t K) {
  auto teacher = std::dynamic_pointer_cast<nn::UnaryModule>(rebuild_model(load_checkpoint(config_.teacher)));
  check(teacher != nullptr, "train: the teacher {} is not a single-input network", config_.teacher.string());
  if (auto* t = dynamic_cast<nn::Classifier*>(teacher.get()))
    check(t->num_classes() == K, "train: the teacher {} predicts {} classes, the data {} has {}",
          config_.teacher.string(), t->num_classes(), train_.source, K);
  transfer::DistillerOptions o;
  o.loss = config_.distill_loss == "dkd" ? transfer::DistillLoss::dkd
           : config_.distill_loss == "mse" ? transfer::DistillLoss::mse
                                           : transfer::DistillLoss::kd;
  o.temperature = config_.distill_temperature;
  o.dkd = {.alpha = config_.dkd_alpha, .beta = config_.dkd_beta, .temperature = config_.distill_temperature,
           .warmup_epochs = config_.dkd_warmup};
  std::shared_ptr<transfer::TeacherCache> cache;
  if (!config_.distill_cache.empty()) {
    // Data-parallel: rank 0 scores the images and writes the cache; the others wait for it, then
    // read (Note [Teacher outputs saved once]).
    if (!parallel_.writes()) parallel_.barrier("distill.cache (rank 0 saves the teacher's outputs)");
    cache = std::make_shared<transfer::TeacherCache>(
        config_.distill_cache,
        transfer::TeacherCacheOptions{.format = o.loss == transfer::DistillLoss::mse ? transfer::CacheFormat::logits
                                                                                     : transfer::CacheFormat::top_k,
                                      .top_k = K, .num_classes = K, .temperature = config_.distill_temperature,
                                      .read_only = !parallel_.writes()});
  }
  distiller_ = std::make_unique<transfer::Distiller>(teacher, o, cache);
  const auto features = transfer::parse_feature_loss(config_.distill_features, "distill.features");
  if (features != transfer::FeatureLoss::none) {
    teacher_classifier_ = dynamic_cast<nn::Classifier*>(teacher.get());
    check(teacher_classifier_ != nullptr && !teacher_classifier_->stage_channels().empty() &&
              !classifier_->stage_channels().empty(),
          "train: distill.features {} needs a student and a teacher that record stage maps (lenet, resnet3d-small); "
          "model '{}' records {} and the teacher {} records {}", config_.distill_features, config_.model,
          classifier_->stage_channels().size(), config_.teacher.string(),
          teacher_classifier_ ? teacher_classifier_->stage_channels().size() : 0);
    Generator regressor_init(mix_seed(config_.seed, 0xfea7));
    stage_distillation_ = std::make_shared<transfer::StageDistillation>(
        features, classifier_->stage_channels(), teacher_classifier_->stage_channels(), regressor_init);
  }
}

// Note [Teacher outputs saved once]: the classification data is not augmented, so a teacher's output
// for an image never changes. With distill.cache the teacher scores every training (and target)
// image once, in chunks saved to the cache (transfer::TeacherCache, all K probabilities at the KD
// temperature, or logits for mse) under a key whose seed is a fingerprint of the teacher checkpoint's
// bytes and the data settings; later epochs, and later runs with the same teacher and data (other
// seeds, other students), replay them without running the teacher at all. In a data-parallel job
// rank 0 scores and writes while the other ranks wait at a barrier; they then read the cache (any
// miss runs their teacher and stays in memory, read_only).
void ClassificationTrainer::precompute_teacher_outputs() {
  const std::vector<std::uint8_t> teacher_bytes = io::read_file_bytes(config_.teacher);
  std::uint64_t h = fnv1a(teacher_bytes.data(), teacher_bytes.size());
  h = fnv1a(fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}|{}", config_.train, config_.target, config_.val_fraction,
                        config_.train_limit, fmt::join(config_.size, ","), config_.fit, config_.grey_to_rgb,
                        fmt::join(config_.mean, ","), fmt::join(config_.stddev, ","), config_.distill_loss),
            h);
  const std::int64_t chunk = 500;
  auto score = [&](const Tensor& images, std::int64_t key_base) {
    const std::int64_t n = images.size(0);
    Tensor out;
    for (std::int64_t start = 0, c = 0; start < n; start += chunk, ++c) {
      std::vector<std::int64_t> idx;
      for (std::int64_t i = start; i < std::min(n, start + chunk); ++i) idx.push_back(i);
      const Tensor t = distiller_->teacher_outputs(as_volumes(gather_rows(images, idx)).to(device_),
                                                   transfer::TeacherCacheKey{.sample = key_base + c, .seed = h})
                           .to(DType::f32)
                           .to(Device::cpu())
                           .contiguous();
      if (!out.defined()) out = Tensor::empty({n, t.size(1)}, TensorOptions{DType::f32});
      std::memcpy(out.data<float>() + start * t.size(1), t.data<float>(), sizeof(float) * t.numel());
    }
    return out;
  };
  cached_teacher_source_ = score(train_.images, 0);
  if (target_.defined()) cached_teacher_target_ = score(target_, std::int64_t{1} << 40);
  distiller_->cache()->flush();
}

double ClassificationTrainer::accuracy(const Tensor& images, const Tensor& labels) {
  const std::int64_t n = images.size(0);
  if (!parallel_.distributed()) return classification_accuracy(*net_, images, labels);
  const std::int64_t first = n * parallel_.rank() / parallel_.ranks(), end = n * (parallel_.rank() + 1) / parallel_.ranks();
  const double right = end > first ? classification_accuracy(*net_, images.narrow(0, first, end - first),
                                                             labels.narrow(0, first, end - first)) *
                                         static_cast<double>(end - first)
                                   : 0.0;
  return parallel_.sum({right}, "evaluation counts")[0] / static_cast<double>(n);
}

std::vector<ClassificationEpoch> ClassificationTrainer::run(bool resume) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(config_.out_dir, ec);
  check(!ec, "train: cannot create {}: {}", config_.out_dir.string(), ec.message());
  const fs::path latest = config_.out_dir / "latest.h5";

  std::vector<nn::ParamGroup> groups =
      transfer::finetunes(strategy_)
          ? transfer::finetune_param_groups(*net_, finetune_report_, finetune_options_)
          : nn::single_group(*net_);
  if (adapter_) groups.push_back({adapter_->parameters(), config_.adapt_lr_scale, -1, "discriminator"});
  if (stage_distillation_ && !stage_distillation_->parameters().empty())  // the hint regressors train with the student
    groups.push_back({stage_distillation_->parameters(), 1.0, -1, "hint_regressors"});
  std::unique_ptr<nn::Optimizer> optimizer;
  if (config_.optimizer == "adam")
    optimizer = std::make_unique<nn::Adam>(groups, nn::AdamOptions{.lr = config_.lr, .weight_decay = config_.weight_decay});
  else
    optimizer = std::make_unique<nn::Sgd>(
        groups, nn::SgdOptions{config_.lr, config_.momentum, config_.nesterov && config_.momentum > 0,
                               config_.weight_decay});
  const std::unique_ptr<nn::LrSchedule> schedule = make_schedule(config_, steps_per_epoch_);

  std::int64_t start_epoch = 0, iteration = 0;
  double best = -1.0;
  MixedPrecision mixed(config_.precision);  // train.precision
  if (resume) {
    check(fs::exists(latest), "train --resume: no checkpoint {} to resume from", latest.string());
    const Checkpoint c = load_checkpoint(latest);
    net_->load_state_dict(c.model);
    optimizer->load_state(c.optimizer);
    mixed.load(c.metadata);
    // The discriminator's weights under their own names, the hint regressors' under "features.".
    std::vector<nn::NamedTensor> discriminator, regressors;
    for (const auto& [name, t] : c.auxiliary) {
      if (name.rfind("features.", 0) == 0)
        regressors.emplace_back(name.substr(9), t);
      else
        discriminator.emplace_back(name, t);
    }
    if (adapter_) adapter_->load_state_dict(discriminator);
    if (stage_distillation_) stage_distillation_->load_state_dict(regressors);
    start_epoch = c.epoch;
    iteration = c.iteration;
    best = std::stod(c.metadata.at("train.best_accuracy"));
  }
  const std::vector<const nn::Module*> trained_modules{net_.get(), adapter_.get(), stage_distillation_.get()};
  const std::vector<Tensor> trained = nn::parameters_of(trained_modules);
  parallel_.start(config_.to_yaml() + std::to_string(train_.size()), trained_modules, config_.distributed.bucket_mb);
  if (config_.distributed.sync_batch_norm) parallel_.synchronize_batch_norm({net_.get(), adapter_.get()});
  const bool writes = parallel_.writes();  // rank 0 alone writes checkpoints, logs and progress
  if (writes) std::ofstream(config_.out_dir / "config.yaml") << config_.to_yaml();
  std::optional<TrainingLog> log, step_log;
  if (writes) {
    log.emplace(config_.out_dir, resume);
    step_log.emplace(config_.out_dir, resume, "steps");
  }

  auto save = [&](const fs::path& path, std::int64_t epochs_done) {
    if (!writes) return;
    Checkpoint c;
    c.model = net_->state_dict();
    c.optimizer = optimizer->state();
    if (adapter_) c.auxiliary = adapter_->state_dict();
    if (stage_distillation_)
      for (const auto& [name, t] : stage_distillation_->state_dict()) c.auxiliary.emplace_back("features." + name, t);
    c.epoch = epochs_done;
    c.iteration = iteration;
    c.schedule_step = iteration;
    describe_model(c, config_.model, model_options_);
    c.metadata["task"] = "classification";
    c.metadata["train.config"] = config_.to_yaml();
    c.metadata["train.strategy"] = config_.strategy;
    c.metadata["train.best_accuracy"] = fmt::format("{}", best);
    c.metadata["data.size"] = fmt::format("{}", fmt::join(config_.size, ","));
    c.metadata["data.fit"] = config_.fit;
    c.metadata["data.grey_to_rgb"] = config_.grey_to_rgb ? "true" : "false";
    c.metadata["data.mean"] = fmt::format("{}", fmt::join(config_.mean, ","));
    c.metadata["data.std"] = fmt::format("{}", fmt::join(config_.stddev, ","));
    mixed.save(c.metadata);
    save_checkpoint(path, c);
  };

  // The current step's batches, which the backbone task's callbacks recognise by their storage.
  Tensor source_x, target_x, source_logits;
  std::vector<std::int64_t> source_idx, target_idx;
  std::int64_t epoch = start_epoch;
  transfer::BackboneTask task;
  const bool cdan = adapter_ && config_.adapt_method == "cdan";
  task.forward = [&](const Tensor& images) {
    transfer::BackboneOutput out;
    Tensor f = classifier_->features(images);
    Tensor logits = classifier_->classify(f);
    if (images.raw_data() == source_x.raw_data()) source_logits = logits.detach();
    out.features = cdan ? std::vector<Tensor>{f, logits} : std::vector<Tensor>{f};
    out.logits = {logits};
    out.stage_features = classifier_->stage_features();
    return out;
  };
  task.task_loss = [](const transfer::BackboneOutput& out, const Tensor& labels) {
    return ops::cross_entropy(out.logits[0], labels);
  };
  std::vector<Tensor> teacher_maps;  // the teacher's stage maps of the batch it saw last
  if (distiller_) {
    task.teacher = [&](const Tensor& images) {
      if (!cached_teacher_source_.defined()) {
        Tensor logits = distiller_->teacher_outputs(images);
        if (stage_distillation_) teacher_maps = teacher_classifier_->stage_features();
        return logits;
      }
      if (images.raw_data() == source_x.raw_data())
        return gather_rows(cached_teacher_source_, source_idx).to(device_);
      check(images.raw_data() == target_x.raw_data() && cached_teacher_target_.defined(),
            "train: no saved teacher outputs for this batch");
      return gather_rows(cached_teacher_target_, target_idx).to(device_);
    };
    task.distill_loss = [&](const transfer::BackboneOutput& student, const Tensor& teacher_logits,
                            const Tensor& labels) {
      // A target batch has no labels: DKD's target class is then the teacher's prediction.
      const Tensor y = labels.defined() ? labels : argmax_channels(teacher_logits).to(teacher_logits.device());
      Tensor loss = distiller_->loss(student.logits[0], teacher_logits, y, static_cast<double>(epoch + 1));
      if (stage_distillation_)  // TransferrableModel runs the teacher on the same batch just before
        loss = ops::add(loss, ops::mul(stage_distillation_->loss(student.stage_features, teacher_maps),
                                       config_.distill_feature_weight));
      return loss;
    };
  }
  const double alpha = distiller_ ? config_.distill_alpha : 1.0;
  transfer::TransferrableModel model(strategy_, task, adapter_,
                                     {.task = alpha, .distill = 1.0 - alpha, .adversarial = config_.adapt_weight});

  // Each step's global batch; this rank takes its share (the same images as one process with batch
  // ranks x data.batch).
  const std::int64_t global_batch = config_.batch * parallel_.ranks();
  BatchCycle source_cycle(train_.size(), global_batch, config_.seed, 1);
  std::unique_ptr<BatchCycle> target_cycle;
  if (adapter_) target_cycle = std::make_unique<BatchCycle>(target_.size(0), global_batch, config_.seed, 2);
  auto share = [&](const std::vector<std::int64_t>& indices) {
    if (!parallel_.distributed()) return indices;
    const std::size_t per_rank = indices.size() / static_cast<std::size_t>(parallel_.ranks());
    const auto first = indices.begin() + static_cast<std::ptrdiff_t>(per_rank * static_cast<std::size_t>(parallel_.rank()));
    return std::vector<std::int64_t>(first, first + static_cast<std::ptrdiff_t>(per_rank));
  };
  const bool has_val = val_.images.defined(), has_test = test_.images.defined();

  std::vector<ClassificationEpoch> results;
  for (; epoch < config_.epochs; ++epoch) {
    const auto epoch_start = std::chrono::steady_clock::now();
    ClassificationEpoch r;
    r.epoch = epoch;
    net_->train();
    if (adapter_) adapter_->train();
    double loss_sum = 0, task_sum = 0, distill_sum = 0, adversarial_sum = 0, domain_sum = 0, right_sum = 0;
    io::ProgressBar bar(fmt::format("epoch {}/{}", epoch + 1, config_.epochs), steps_per_epoch_,
                        config_.quiet || !writes);
    for (std::int64_t it = 0; it < steps_per_epoch_; ++it, ++iteration) {
      source_idx = share(source_cycle.indices(iteration));
      source_x = as_volumes(gather_rows(train_.images, source_idx)).to(device_);
      const Tensor source_y = gather_rows(train_.labels, source_idx).to(device_);
      if (target_cycle) {
        target_idx = share(target_cycle->indices(iteration));
        target_x = as_volumes(gather_rows(target_, target_idx)).to(device_);
      }
      r.lr = schedule->lr(iteration);
      optimizer->set_lr(r.lr);
      optimizer->zero_grad();
      const transfer::TransferLosses l = [&] {
        autograd::AutocastGuard amp(config_.precision);
        return model.losses(source_x, source_y, target_x, iteration);
      }();
      mixed.backward(l.total);
      parallel_.after_backward();
      // The step's terms as the mean over the ranks, so that every rank logs and checks the same values.
      const std::vector<double> terms = parallel_.mean(
          {l.total.item(), l.task, l.distill, l.adversarial, l.domain_accuracy, fraction_correct(source_logits, source_y)},
          "loss terms");
      const double value = terms[0];
      check(std::isfinite(value), "train: the loss is {} at epoch {}, iteration {} (lr {}); stopped. The last good "
            "checkpoint is {}; lower train.lr or check the data", value, epoch + 1, it + 1, r.lr, latest.string());
      if (mixed.gradients_finite(trained)) {  // a step with inf/NaN gradients is skipped (f16)
        if (config_.grad_clip > 0) nn::clip_grad_norm(trained, config_.grad_clip);
        optimizer->step();
      }
      const double batch_accuracy = terms[5];
      loss_sum += value;
      task_sum += terms[1];
      distill_sum += terms[2];
      adversarial_sum += terms[3];
      domain_sum += terms[4];
      right_sum += batch_accuracy;
      r.lambda = l.lambda;
      LogRow row{{"step", static_cast<double>(iteration + 1)}, {"epoch", static_cast<double>(epoch + 1)},
                 {"loss", value}, {"task_loss", terms[1]}, {"distill_loss", terms[2]},
                 {"adversarial_loss", terms[3]}, {"lambda", l.lambda}, {"domain_accuracy", terms[4]},
                 {"batch_accuracy", batch_accuracy}, {"lr", r.lr}};
      mixed.log(row);
      if (step_log) step_log->write(row);
      const double n = static_cast<double>(it + 1);
      bar.advance(1, adapter_ ? fmt::format("loss {:.4f}  acc {:.3f}  adv {:.3f}  λ {:.3f}  domain acc {:.2f}",
                                            loss_sum / n, right_sum / n, adversarial_sum / n, l.lambda, domain_sum / n)
                              : fmt::format("loss {:.4f}  acc {:.3f}", loss_sum / n, right_sum / n));
    }
    bar.finish();
    const double steps = static_cast<double>(steps_per_epoch_);
    r.iteration = iteration;
    r.train_loss = loss_sum / steps;
    r.task_loss = task_sum / steps;
    r.distill_loss = distill_sum / steps;
    r.adversarial_loss = adversarial_sum / steps;
    r.domain_accuracy = domain_sum / steps;
    r.train_accuracy = right_sum / steps;
    parallel_.average_buffers({net_.get(), adapter_.get()});  // batch-norm statistics: the ranks' mean
    r.val_accuracy = has_val ? accuracy(val_.images, val_.labels) : std::nan("");
    r.test_accuracy = has_test ? accuracy(test_.images, test_.labels) : std::nan("");
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    if (log)
      log->write({{"epoch", static_cast<double>(epoch + 1)}, {"iteration", static_cast<double>(iteration)},
                  {"train_loss", r.train_loss}, {"task_loss", r.task_loss}, {"distill_loss", r.distill_loss},
                  {"adversarial_loss", r.adversarial_loss}, {"lambda", r.lambda}, {"domain_accuracy", r.domain_accuracy},
                  {"train_accuracy", r.train_accuracy}, {"val_accuracy", r.val_accuracy},
                  {"test_accuracy", r.test_accuracy}, {"lr", r.lr}, {"seconds", r.seconds}});
    if (!config_.quiet && writes)
      fmt::print(stderr, "epoch {}/{}: loss {:.4f}  train acc {:.4f}  val acc {:.4f}  test acc {:.4f}  lr {:.5f}  {:.1f} s\n",
                 epoch + 1, config_.epochs, r.train_loss, r.train_accuracy, r.val_accuracy, r.test_accuracy, r.lr,
                 r.seconds);
    // best.h5 follows the validation accuracy, or the test accuracy when there is no validation set.
    const double score = has_val ? r.val_accuracy : r.test_accuracy;
    const bool improved = (has_val || has_test) && score > best;
    if (improved) best = score;
    save(latest, epoch + 1);
    if (improved) save(config_.out_dir / "best.h5", epoch + 1);
    if (config_.save_every > 0 && (epoch + 1) % config_.save_every == 0)
      save(config_.out_dir / fmt::format("epoch_{}.h5", epoch + 1), epoch + 1);
    results.push_back(r);
    if (on_epoch) on_epoch(r);
  }
  save(config_.out_dir / "final.h5", config_.epochs);
  return results;
}

}  // namespace tlk::task
