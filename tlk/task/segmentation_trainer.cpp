#include "tlk/task/segmentation_trainer.h"

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
#include "tlk/data/preprocessed_case.h"
#include "tlk/io/progress_bar.h"
#include "tlk/nn/adam.h"
#include "tlk/nn/deep_supervision_loss.h"
#include "tlk/nn/lr_schedule.h"
#include "tlk/nn/registry.h"
#include "tlk/nn/sgd.h"
#include "tlk/task/checkpoint.h"
#include "tlk/task/metrics.h"
#include "tlk/task/mix_seed.h"
#include "tlk/task/mixed_precision.h"
#include "tlk/task/training_log.h"
#include "tlk/tensor/error.h"
#include "tlk/transfer/distillation_losses.h"
#include "tlk/tensor/cuda_runtime.h"
#include "tlk/transfer/multiscale_discriminator.h"

namespace tlk::task {

namespace {

double nanmean(const std::vector<double>& v) {
  double sum = 0.0;
  int n = 0;
  for (double x : v)
    if (!std::isnan(x)) sum += x, ++n;
  return n ? sum / n : std::nan("");
}

/// Splits sorted case files into training and validation deterministically from the seed.
void split_cases(std::vector<std::filesystem::path> files, double val_fraction, std::uint64_t seed,
                 std::vector<std::filesystem::path>& train, std::vector<std::filesystem::path>& val) {
  Generator gen(mix_seed(seed, 0x5eed));
  for (std::size_t i = files.size(); i > 1; --i) std::swap(files[i - 1], files[gen.below(i)]);
  std::size_t n_val = static_cast<std::size_t>(std::llround(val_fraction * static_cast<double>(files.size())));
  if (val_fraction > 0 && n_val == 0) n_val = 1;
  if (files.size() == 1) {  // one case: validate on the training case itself (a smoke run)
    train = val = files;
    return;
  }
  n_val = std::min(n_val, files.size() - 1);
  val.assign(files.begin(), files.begin() + static_cast<std::ptrdiff_t>(n_val));
  train.assign(files.begin() + static_cast<std::ptrdiff_t>(n_val), files.end());
  std::sort(train.begin(), train.end());
  std::sort(val.begin(), val.end());
}

std::vector<std::string> ids_of(const std::vector<std::filesystem::path>& files) {
  std::vector<std::string> ids;
  for (const auto& f : files) ids.push_back(f.stem().string());
  return ids;
}

}  // namespace

std::vector<data::SampleSource> load_sample_sources(const std::vector<std::filesystem::path>& files, bool labelled) {
  std::vector<data::SampleSource> out;
  for (const auto& file : files) {
    data::PreprocessedCase c = data::load_preprocessed_case(file, labelled);
    check(!labelled || c.labels.defined(), "{}: the case has no labels; training needs labelled cases", file.string());
    out.push_back({std::move(c.image), std::move(c.labels), std::move(c.class_locations)});
  }
  return out;
}

SegmentationTrainer::SegmentationTrainer(SegmentationTrainConfig config, dist::ProcessGroup* group)
    : config_(std::move(config)), parallel_(group) {
  if (const int threads = parallel_.threads(config_.threads); threads > 0) omp_set_num_threads(threads);
  plan_ = data::PreprocessingPlan::load(config_.train_dir);
  std::vector<std::filesystem::path> train_files, val_files;
  const auto files = data::preprocessed_case_files(config_.train_dir);
  check(!files.empty(), "train: {} holds no preprocessed cases (*.h5)", config_.train_dir.string());
  if (!config_.val_dir.empty()) {
    const data::PreprocessingPlan val_plan = data::PreprocessingPlan::load(config_.val_dir);
    check(val_plan.channel_names.size() == plan_.channel_names.size() && val_plan.num_classes() == plan_.num_classes(),
          "train: validation data {} has {} channels and {} classes, training data {} has {} and {}",
          config_.val_dir.string(), val_plan.channel_names.size(), val_plan.num_classes(), config_.train_dir.string(),
          plan_.channel_names.size(), plan_.num_classes());
    train_files = files;
    val_files = data::preprocessed_case_files(config_.val_dir);
  } else {
    split_cases(files, config_.val_fraction, config_.seed, train_files, val_files);
  }
  train_ids_ = ids_of(train_files);
  val_ids_ = ids_of(val_files);
  train_cases_ = load_sample_sources(train_files);
  if (config_.val_iterations > 0 && !val_files.empty()) val_cases_ = load_sample_sources(val_files);

  model_options_ = nn::ModuleOptions{}
                       .with_in_channels(static_cast<std::int64_t>(plan_.channel_names.size()))
                       .with_num_classes(plan_.num_classes());
  for (const auto& [key, value] : config_.model_options) model_options_ = model_options_.with(key, value);
  Generator init(config_.seed);
  auto module = nn::ModuleRegistry::instance().create(config_.model, model_options_, init);
  net_ = std::dynamic_pointer_cast<nn::UNet>(module);
  check(net_ != nullptr, "train: model '{}' is not a segmentation UNet (segmentation training needs unet3d or a UNet "
        "registered under another name)", config_.model);
  strategy_ = transfer::parse_strategy(config_.strategy);
  if (transfer::finetunes(strategy_)) {
    finetune_options_ =
        transfer::FinetuneOptions::from_config(config_.freeze, config_.skip, config_.pretrained_lr_scale);
    finetune_report_ = finetune_from_checkpoint(*net_, config_.pretrained, finetune_options_);
  }
  if (transfer::adapts(strategy_)) {
    const data::PreprocessingPlan target_plan = data::PreprocessingPlan::load(config_.target_dir);
    check(target_plan.channel_names.size() == plan_.channel_names.size(), "train: target data {} has {} channels, "
          "the source {} has {}", config_.target_dir.string(), target_plan.channel_names.size(),
          config_.train_dir.string(), plan_.channel_names.size());
    const auto target_files = data::preprocessed_case_files(config_.target_dir);
    target_ids_ = ids_of(target_files);
    target_cases_ = load_sample_sources(target_files, /*labelled=*/false);
    check(!target_cases_.empty(), "train: {} holds no preprocessed target cases", config_.target_dir.string());
    transfer::MultiScaleDiscriminatorOptions disc;
    if (!config_.discriminator_widths.empty()) disc.widths = config_.discriminator_widths;
    Generator disc_init(mix_seed(config_.seed, 0xd15c));
    adapter_ = std::make_shared<transfer::DomainAdapter>(
        std::make_shared<transfer::MultiScaleDiscriminator>(net_->config(), disc, disc_init),
        transfer::WarmStartSchedule{config_.grl_alpha, config_.grl_lo, config_.grl_hi, config_.grl_max_iters,
                                    config_.grl_delay});
  }
  if (transfer::distills(strategy_)) {
    teacher_ = std::dynamic_pointer_cast<nn::UNet>(rebuild_model(load_checkpoint(config_.teacher)));
    check(teacher_ != nullptr, "train: the teacher {} is not a segmentation UNet", config_.teacher.string());
    check(teacher_->config().num_classes == plan_.num_classes(), "train: the teacher {} predicts {} classes, the "
          "data has {}", config_.teacher.string(), teacher_->config().num_classes, plan_.num_classes());
    teacher_->set_deep_supervision(false);
    teacher_->eval();
    for (auto& p : teacher_->parameters()) p.set_requires_grad(false);
    const auto features = transfer::parse_feature_loss(config_.distill_features, "distill.features");
    if (features != transfer::FeatureLoss::none) {
      std::vector<std::int64_t> student_channels, teacher_channels;
      for (int s = 0; s < net_->config().levels(); ++s) student_channels.push_back(net_->config().features(s));
      for (int s = 0; s < teacher_->config().levels(); ++s) teacher_channels.push_back(teacher_->config().features(s));
      Generator regressor_init(mix_seed(config_.seed, 0xfea7));
      stage_distillation_ = std::make_shared<transfer::StageDistillation>(features, student_channels, teacher_channels,
                                                                         regressor_init);
    }
    if (!config_.distill_cache.empty()) {
      teacher_cache_ = std::make_unique<SegmentationTeacherCache>(config_, plan_.num_classes(), train_ids_, target_ids_,
                                                                  parallel_.rank(), parallel_.ranks());
    }
  }
  device_ = parse_device(config_.device, "train.device");
  device_ = parallel_.device(device_, config_.device);  // one rank per GPU
  if (device_.is_cuda()) cuda::require_device(device_.index, "train.device");
  net_->to(device_);
  if (adapter_) adapter_->to(device_);
  if (stage_distillation_) stage_distillation_->to(device_);
  if (teacher_) teacher_->to(device_);
  std::array<std::int64_t, 3> total_stride{1, 1, 1};
  for (const auto& s : net_->config().strides)
    for (int a = 0; a < 3; ++a) total_stride[a] *= s[a];
  for (int a = 0; a < 3; ++a)
    check(config_.patch[a] % total_stride[a] == 0, "train: data.patch [{}, {}, {}] must be a multiple of the UNet's "
          "total stride [{}, {}, {}] on every axis", config_.patch[0], config_.patch[1], config_.patch[2],
          total_stride[0], total_stride[1], total_stride[2]);
}

// Validation: nnUNet's pseudo Dice, one global Dice per class over all validation patches (each rank
// scores its slots of every batch, Note [Batch slots], and the counts are summed).
void SegmentationTrainer::validate(const PatchBatches& val_batches, EpochResult& r) {
  NoGradGuard no_grad;
  AutocastGuard amp(config_.precision);
  net_->eval();
  const std::vector<double> ds_weights = net_->deep_supervision_weights();
  ConfusionCounts counts(plan_.num_classes());
  double val_sum = 0.0;
  for (std::int64_t v = 0; v < config_.val_iterations; ++v) {
    const data::Batch batch = val_batches.make(v);
    const std::vector<Tensor> outputs = net_->forward(batch.image.to(device_).to(config_.layout));
    val_sum += nn::deep_supervision_loss(outputs, batch.labels.to(device_), ds_weights).item();
    counts.add(argmax_channels(outputs[0].to(DType::f32).to(Layout::plain)), batch.labels);
  }
  if (parallel_.distributed()) {
    std::vector<double> sums = counts.flat();
    sums.push_back(val_sum);
    sums = parallel_.sum(sums, "validation counts");
    val_sum = sums.back() / parallel_.ranks();
    sums.pop_back();
    counts.set_flat(sums);
  }
  r.val_loss = val_sum / static_cast<double>(config_.val_iterations);
  r.dice = counts.foreground_dice();
}

std::vector<EpochResult> SegmentationTrainer::run(bool resume) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(config_.out_dir, ec);
  check(!ec, "train: cannot create {}: {}", config_.out_dir.string(), ec.message());
  const fs::path latest = config_.out_dir / "latest.h5";

  // Optimizer groups: the fine-tune's "pretrained" (at transfer.pretrained_lr_scale) and "new", or
  // one group. The discriminator has its own Adam (adapt.lr; docs/config.md says why).
  std::vector<nn::ParamGroup> groups = transfer::finetunes(strategy_)
                                           ? transfer::finetune_param_groups(*net_, finetune_report_, finetune_options_)
                                           : nn::single_group(*net_);
  if (stage_distillation_ && !stage_distillation_->parameters().empty())  // the hint regressors train with the student
    groups.push_back(nn::ParamGroup{stage_distillation_->parameters(), 1.0, -1, "hint_regressors"});
  nn::Sgd optimizer(groups, nn::SgdOptions{config_.lr, config_.momentum, true, config_.weight_decay});
  std::unique_ptr<nn::Adam> discriminator_optimizer;
  if (adapter_)
    discriminator_optimizer = std::make_unique<nn::Adam>(nn::single_group(*adapter_), nn::AdamOptions{config_.discriminator_lr});
  const nn::PolySchedule schedule(config_.lr, config_.epochs, config_.poly_exponent);
  // Mixed precision (train.precision): autocast around the forward and the losses, f32 master
  // weights; f16 adds dynamic loss scaling over every trained parameter (Note [Loss scaling]).
  const DType precision = config_.precision;
  MixedPrecision mixed(precision);
  const std::vector<const nn::Module*> trained_modules{net_.get(), adapter_.get(), stage_distillation_.get()};
  const std::vector<Tensor> trained = nn::parameters_of(trained_modules);
  const int rank = parallel_.rank(), ranks = parallel_.ranks();
  const bool writes = parallel_.writes();
  std::int64_t start_epoch = 0, iteration = 0;
  double ema = std::nan(""), best_ema = -1.0;
  if (resume) {
    check(fs::exists(latest), "train --resume: no checkpoint {} to resume from", latest.string());
    const Checkpoint c = load_checkpoint(latest);
    net_->load_state_dict(c.model);
    optimizer.load_state(c.optimizer);
    // Note [Auxiliary state]: the discriminator's weights under "adapter.", its optimizer's under
    // "adam.", the hint regressors under "features.".
    std::vector<nn::NamedTensor> weights, adam, features;
    for (const auto& [name, t] : c.auxiliary) {
      auto& into = name.rfind("adam.", 0) == 0 ? adam : name.rfind("features.", 0) == 0 ? features : weights;
      into.emplace_back(name.substr(name.find('.') + 1), t);
    }
    if (adapter_) {
      adapter_->load_state_dict(weights);
      discriminator_optimizer->load_state(adam);
    }
    if (stage_distillation_) stage_distillation_->load_state_dict(features);
    start_epoch = c.epoch;
    iteration = c.iteration;
    ema = std::stod(c.metadata.at("train.ema_dice"));
    best_ema = std::stod(c.metadata.at("train.best_ema_dice"));
    mixed.load(c.metadata);
  }
  // Data-parallel: the ranks agree on the inputs and start from rank 0's model, discriminator and
  // regressors, and every trained parameter's gradient is averaged, the discriminator's included.
  std::string inputs = config_.to_yaml() + std::to_string(target_cases_.size());
  for (const auto* ids : {&train_ids_, &val_ids_})
    for (const std::string& id : *ids) inputs += "\n" + id;
  parallel_.start(inputs, trained_modules, config_.distributed.bucket_mb);
  if (config_.distributed.sync_batch_norm) parallel_.synchronize_batch_norm({net_.get(), adapter_.get()});
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
    c.optimizer = optimizer.state();
    if (adapter_) {  // Note [Auxiliary state]
      for (const auto& [name, t] : adapter_->state_dict()) c.auxiliary.emplace_back("adapter." + name, t);
      for (const auto& [name, t] : discriminator_optimizer->state()) c.auxiliary.emplace_back("adam." + name, t);
    }
    if (stage_distillation_)
      for (const auto& [name, t] : stage_distillation_->state_dict()) c.auxiliary.emplace_back("features." + name, t);
    c.epoch = epochs_done;
    c.iteration = iteration;
    c.schedule_step = epochs_done;
    describe_model(c, config_.model, model_options_);
    c.metadata["preprocessing"] = plan_.to_json();
    c.metadata["train.config"] = config_.to_yaml();
    c.metadata["train.strategy"] = config_.strategy;
    c.metadata["train.patch"] = fmt::format("{},{},{}", config_.patch[0], config_.patch[1], config_.patch[2]);
    c.metadata["train.ema_dice"] = fmt::format("{}", ema);
    c.metadata["train.best_ema_dice"] = fmt::format("{}", best_ema);
    mixed.save(c.metadata);
    save_checkpoint(path, c);
  };

  const std::vector<double> ds_weights = net_->deep_supervision_weights();
  transfer::BackboneTask task;
  task.forward = [&](const Tensor& images) {
    transfer::BackboneOutput out;
    out.logits = net_->forward(images);
    out.features = net_->encoder_features();
    out.stage_features = out.features;
    return out;
  };
  task.task_loss = [&](const transfer::BackboneOutput& out, const Tensor& labels) {
    return nn::deep_supervision_loss(out.logits, labels, ds_weights);
  };
  std::vector<Tensor> teacher_skips;  // the teacher's encoder skips of the batch it saw last
  // The step's batch index (batches repeat with distill.cache, Note [Replayed patches]) and its source images.
  auto batch_index = [&](std::int64_t i) { return teacher_cache_ ? teacher_cache_->batch_index(i) : i; };
  Tensor source_images;
  if (teacher_) {
    task.teacher = [&](const Tensor& images) {
      auto run_teacher = [&] {
        NoGradGuard no_grad;
        Tensor logits = teacher_->forward(images)[0];
        if (stage_distillation_) teacher_skips = teacher_->encoder_features();
        return logits;
      };
      if (!teacher_cache_) return run_teacher();
      const auto stream = images.raw_data() == source_images.raw_data() ? SegmentationTeacherCache::source
                                                                        : SegmentationTeacherCache::target;
      return teacher_cache_->teacher_logits(batch_index(iteration), stream, run_teacher).to(images.device());
    };
    const transfer::VoxelKdOptions kd{.temperature = config_.distill_temperature,
                                      .region = config_.distill_foreground_only
                                                    ? transfer::KdRegion::teacher_or_label_foreground
                                                    : transfer::KdRegion::all};
    task.distill_loss = [kd, &teacher_skips, this](const transfer::BackboneOutput& student,
                                                   const Tensor& teacher_logits, const Tensor& labels) {
      transfer::VoxelKdOptions o = kd;
      if (!labels.defined() && o.region == transfer::KdRegion::teacher_or_label_foreground)
        o.region = transfer::KdRegion::teacher_foreground;  // a target batch has no labels
      Tensor loss = transfer::voxel_kd_loss(student.logits[0], teacher_logits, o, labels);
      if (stage_distillation_)  // TransferrableModel runs the teacher on the same batch just before
        loss = ops::add(loss, ops::mul(stage_distillation_->loss(student.stage_features, teacher_skips),
                                       config_.distill_feature_weight));
      return loss;
    };
  }
  transfer::TransferrableModel model(strategy_, task, adapter_,
                                     {.task = 1.0, .distill = config_.distill_weight, .adversarial = config_.adapt_weight});

  PatchBatches train_batches(train_cases_, config_, config_.augment, 1, rank, ranks);
  if (device_.is_cuda()) train_batches.pin_for(device_);  // Note [Pinned staging]
  data::BackgroundLoader loader([&](std::int64_t i) { return train_batches.make(batch_index(i)); },
                                {.threads = config_.loader_threads, .prefetch = 4, .first_index = iteration});
  std::unique_ptr<PatchBatches> target_batches;
  std::unique_ptr<data::BackgroundLoader> target_loader;
  if (adapter_) {
    SegmentationTrainConfig target_config = config_;
    target_config.oversample_foreground = 0.0;  // no labels: patches anywhere
    target_batches = std::make_unique<PatchBatches>(target_cases_, target_config, config_.augment, 3, rank, ranks);
    if (device_.is_cuda()) target_batches->pin_for(device_);
    target_loader = std::make_unique<data::BackgroundLoader>(
        [&](std::int64_t i) { return target_batches->make(batch_index(i)); },
        data::BackgroundLoader::Options{.threads = std::max(1, config_.loader_threads / 2), .prefetch = 4,
                                        .first_index = iteration});
  }
  std::unique_ptr<PatchBatches> val_batches;
  if (!val_cases_.empty()) val_batches = std::make_unique<PatchBatches>(val_cases_, config_, false, 2, rank, ranks);
  const std::int64_t K = plan_.num_classes();

  std::vector<EpochResult> results;
  for (std::int64_t epoch = start_epoch; epoch < config_.epochs; ++epoch) {
    const auto epoch_start = std::chrono::steady_clock::now();
    EpochResult r;
    r.epoch = epoch;
    r.lr = schedule.lr(epoch);
    optimizer.set_lr(r.lr);
    net_->train();
    double loss_sum = 0.0, task_sum = 0.0, distill_sum = 0.0, adversarial_sum = 0.0, accuracy_sum = 0.0, wait = 0.0;
    io::ProgressBar bar(fmt::format("epoch {}/{}", epoch + 1, config_.epochs), config_.iterations_per_epoch,
                        config_.quiet || !writes);
    for (std::int64_t it = 0; it < config_.iterations_per_epoch; ++it, ++iteration) {
      // On the training device; with data.augment_on device, augmented there (Note [Augmentation on the GPU]).
      data::Batch batch = train_batches.to_device(loader.next(), device_);
      batch.image = batch.image.to(config_.layout);  // train.layout (Note [Channels-last on the GPU])
      wait += loader.last_wait_seconds();
      Tensor target_images;
      if (target_loader) {
        data::Batch target = target_loader->next();
        target.labels = Tensor();  // never read (no target labels are used)
        target_images = target_batches->to_device(std::move(target), device_).image.to(config_.layout);
        wait += target_loader->last_wait_seconds();
      }
      optimizer.zero_grad();
      if (discriminator_optimizer) discriminator_optimizer->zero_grad();
      const transfer::TransferLosses l = [&] {
        AutocastGuard amp(precision);
        source_images = batch.image;
        return model.losses(source_images, batch.labels, target_images, iteration);
      }();
      mixed.backward(l.total);
      parallel_.after_backward();
      // The loss terms as the mean over the ranks, so that every rank logs and checks the same values.
      const std::vector<double> terms =
          parallel_.mean({l.total.item(), l.task, l.distill, l.adversarial, l.domain_accuracy}, "loss terms");
      const double value = terms[0];
      check(std::isfinite(value), "train: the loss is {} at epoch {}, iteration {} (lr {}); stopped. The last good "
            "checkpoint is {}; lower train.lr or check the data", value, epoch + 1, it + 1, r.lr, latest.string());
      if (mixed.gradients_finite(trained)) {  // a step with inf/NaN gradients is skipped (f16)
        if (config_.grad_clip > 0) nn::clip_grad_norm(net_->parameters(), config_.grad_clip);
        optimizer.step();
        if (discriminator_optimizer) discriminator_optimizer->step();
      }
      loss_sum += value;
      task_sum += terms[1];
      distill_sum += terms[2];
      adversarial_sum += terms[3];
      accuracy_sum += terms[4];
      r.lambda = l.lambda;
      LogRow row{
          {"step", static_cast<double>(iteration + 1)}, {"epoch", static_cast<double>(epoch + 1)},
          {"loss", value}, {"task_loss", terms[1]}, {"distill_loss", terms[2]},
          {"adversarial_loss", terms[3]}, {"lambda", l.lambda}, {"domain_accuracy", terms[4]},
          {"lr", r.lr}, {"data_wait_seconds", loader.last_wait_seconds()}};
      mixed.log(row);
      if (step_log) step_log->write(row);
      const double n = static_cast<double>(it + 1);
      bar.advance(1, adapter_ ? fmt::format("loss {:.4f}  adv {:.3f}  λ {:.3f}  domain acc {:.2f}", loss_sum / n,
                                            adversarial_sum / n, l.lambda, accuracy_sum / n)
                              : fmt::format("loss {:.4f}", loss_sum / n));
    }
    bar.finish();
    if (teacher_cache_) teacher_cache_->flush();  // a shard per epoch: a crash loses at most this epoch's outputs
    const double steps = static_cast<double>(config_.iterations_per_epoch);
    r.train_loss = loss_sum / steps;
    r.task_loss = task_sum / steps;
    r.distill_loss = distill_sum / steps;
    r.adversarial_loss = adversarial_sum / steps;
    r.domain_accuracy = accuracy_sum / steps;
    r.data_wait_seconds = wait;
    // Batch-norm running statistics differ per rank (each saw its own batches): validation and the
    // checkpoint use their mean. Instance norm, the UNet's default, keeps none.
    parallel_.average_buffers({net_.get()});
    r.val_loss = std::nan("");
    r.dice.assign(static_cast<std::size_t>(K - 1), std::nan(""));
    if (val_batches) validate(*val_batches, r);
    r.mean_dice = nanmean(r.dice);
    const double d = std::isnan(r.mean_dice) ? 0.0 : r.mean_dice;
    ema = std::isnan(ema) ? d : 0.9 * ema + 0.1 * d;
    r.ema_dice = ema;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();

    LogRow row{{"epoch", static_cast<double>(epoch + 1)}, {"iteration", static_cast<double>(iteration)},
               {"train_loss", r.train_loss}, {"task_loss", r.task_loss}, {"distill_loss", r.distill_loss},
               {"adversarial_loss", r.adversarial_loss}, {"lambda", r.lambda}, {"domain_accuracy", r.domain_accuracy},
               {"val_loss", r.val_loss}, {"mean_dice", r.mean_dice}, {"ema_dice", r.ema_dice}};
    for (std::int64_t k = 1; k < K; ++k) row.emplace_back(fmt::format("dice_{}", k), r.dice[k - 1]);
    row.insert(row.end(), {{"lr", r.lr}, {"seconds", r.seconds}, {"data_wait_seconds", r.data_wait_seconds}});
    if (log) log->write(row);
    if (!config_.quiet && writes)
      fmt::print(stderr, "epoch {}/{}: train_loss {:.4f}  val_loss {:.4f}  dice {:.4f} (ema {:.4f})  lr {:.5f}  {:.1f} s "
                 "(data wait {:.1f} s)\n", epoch + 1, config_.epochs, r.train_loss, r.val_loss, r.mean_dice, r.ema_dice,
                 r.lr, r.seconds, r.data_wait_seconds);

    const bool improved = ema > best_ema;
    if (improved) best_ema = ema;
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
