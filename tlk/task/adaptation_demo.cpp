#include "tlk/task/adaptation_demo.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tlk/data/orientation.h"
#include "tlk/data/phantom_dataset.h"
#include "tlk/data/preprocess.h"
#include "tlk/io/config.h"
#include "tlk/io/hdf5_file.h"
#include "tlk/io/nifti.h"
#include "tlk/io/png.h"
#include "tlk/task/evaluate.h"
#include "tlk/task/predictor.h"
#include "tlk/task/segmentation_trainer.h"
#include "tlk/task/slice_figure.h"
#include "tlk/tensor/error.h"

namespace tlk::task {

namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Predicts every target test case with `checkpoint` into `pred_dir` and returns the mean kidney
/// (label 1 ∪ 2 of KiTS) Dice.
double target_kidney_dice(const fs::path& checkpoint, const std::string& class_map, const data::RawDataset& target,
                          const fs::path& pred_dir) {
  PredictOptions options;
  options.mirror = false;
  options.quiet = true;
  options.class_map = parse_class_map(class_map);
  const Predictor predictor(load_checkpoint(checkpoint), options);
  fs::create_directories(pred_dir);
  for (const auto& c : target.test) io::write_nifti(pred_dir / (c.id + ".nii.gz"), predictor.predict(c));
  const EvaluationResult r =
      evaluate_folder(pred_dir, target.dir / "labelsTs", parse_evaluation_labels("1+2"), {.quiet = true});
  return r.mean.at(0).dice;
}

/// The training config every stage shares; each stage sets its own data, strategy and output.
io::Config stage_config(const AdaptationDemoOptions& o, const std::array<std::int64_t, 3>& patch) {
  io::Config c;
  c.set("data.patch", fmt::format("{},{},{}", patch[0], patch[1], patch[2]));
  c.set("data.batch", "2");
  c.set("model.levels", std::to_string(o.levels));
  c.set("model.base_features", std::to_string(o.base_features));
  c.set("train.iterations_per_epoch", std::to_string(o.iterations_per_epoch));
  c.set("train.val_iterations", "2");
  c.set("train.seed", std::to_string(o.seed));
  c.set("output.save_every", "0");
  c.set("output.quiet", o.quiet ? "true" : "false");
  return c;
}

void stage(const AdaptationDemoOptions& o, int number, const std::string& what) {
  if (!o.quiet) fmt::print(stderr, "\n[{}/7] {}\n", number, what);
}

}  // namespace

AdaptationDemoResult run_adaptation_demo(const AdaptationDemoOptions& o) {
  const auto demo_start = std::chrono::steady_clock::now();
  AdaptationDemoResult result;
  const fs::path out = o.out_dir;
  // The demo owns these folders: a rerun starts them afresh.
  for (const char* sub : {"raw", "prep", "runs", "pred", "png"}) fs::remove_all(out / sub);
  fs::create_directories(out);
  const fs::path raw_source = out / "raw" / "Dataset901_AmosPhantom", raw_target = out / "raw" / "Dataset902_KitsPhantom";

  stage(o, 1, "generating an AMOS-like source and a KiTS-like target domain");
  data::write_phantom_dataset(raw_source, data::amos_like_source(o.source_cases, o.scale), o.seed);
  data::PhantomDomainOptions target_options = data::kits_like_target(o.target_cases, o.scale);
  target_options.test_cases = o.target_test_cases;
  data::write_phantom_dataset(raw_target, target_options, o.seed + 1000);
  const data::RawDataset target = data::open_raw_dataset(raw_target);

  stage(o, 2, "preprocessing (the target at the source's spacing, with the source's CT statistics)");
  data::PreprocessOptions source_preprocess;
  source_preprocess.label_map = "2:1,3:2,*:0";  // the two kidneys as classes 1 and 2, every other organ background
  source_preprocess.quiet = o.quiet;
  const data::PreprocessingPlan source_plan =
      data::preprocess_dataset(raw_source, out / "prep" / "source", source_preprocess);
  data::PreprocessOptions target_preprocess;
  target_preprocess.spacing = source_plan.target_spacing;
  target_preprocess.label_map = "1:1,2:1";  // tumour into kidney (KiTS's kidney score is on kidney ∪ tumour)
  target_preprocess.norm_stats_from = out / "prep" / "source";
  target_preprocess.quiet = o.quiet;
  data::preprocess_dataset(raw_target, out / "prep" / "target", target_preprocess);
  // The patch: the largest multiple of the UNet's stride inside the smallest preprocessed volume.
  std::array<std::int64_t, 3> patch{1 << 30, 1 << 30, 1 << 30};
  const std::int64_t stride = std::int64_t{1} << (o.levels - 1);
  for (const fs::path& dir : {out / "prep" / "source", out / "prep" / "target"})
    for (const auto& file : data::preprocessed_case_files(dir)) {
      const Tensor image = io::Hdf5File::open(file).read("image");
      for (int a = 0; a < 3; ++a) patch[a] = std::min(patch[a], std::max(stride, image.size(a + 1) / stride * stride));
    }

  stage(o, 3, "training on the source (supervised), then scoring it on the target");
  io::Config pretrain = stage_config(o, patch);
  pretrain.set("data.train", (out / "prep" / "source").string());
  pretrain.set("train.epochs", std::to_string(o.pretrain_epochs));
  pretrain.set("output.dir", (out / "runs" / "source").string());
  auto start = std::chrono::steady_clock::now();
  SegmentationTrainer(SegmentationTrainConfig::from(pretrain)).run(false);
  const double pretrain_seconds = seconds_since(start);
  const fs::path source_model = out / "runs" / "source" / "final.h5";
  result.rows.push_back({"source only", target_kidney_dice(source_model, "1=1+2", target, out / "pred" / "source_only"),
                         pretrain_seconds, source_model.string()});

  stage(o, 4, "adapting to the target without its labels (finetune+adapt, multi-scale discriminator)");
  io::Config adapt = stage_config(o, patch);
  adapt.set("data.train", (out / "prep" / "source").string());
  adapt.set("data.target", (out / "prep" / "target").string());
  adapt.set("transfer.strategy", "finetune+adapt");
  adapt.set("transfer.pretrained", source_model.string());
  adapt.set("train.epochs", std::to_string(o.adapt_epochs));
  // Note [Demo λ schedule]: TLK's medical schedule (α 1, N 1000) keeps λ below 0.05 over a demo's
  // few dozen steps; the demo uses DANN's schedule over its own length (α 10, N = its steps).
  adapt.set("adapt.grl_alpha", fmt::format("{}", o.grl_alpha));
  adapt.set("adapt.grl_max_iters", std::to_string(std::max<std::int64_t>(
                                       1, o.adapt_epochs * o.iterations_per_epoch - o.grl_delay)));
  adapt.set("adapt.grl_delay", std::to_string(o.grl_delay));
  adapt.set("adapt.weight", fmt::format("{}", o.adapt_weight));
  adapt.set("adapt.lr", fmt::format("{}", o.adapt_lr));
  adapt.set("transfer.pretrained_lr_scale", fmt::format("{}", o.pretrained_lr_scale));
  adapt.set("adapt.widths", "16,32,48");
  adapt.set("output.dir", (out / "runs" / "adapted").string());
  start = std::chrono::steady_clock::now();
  SegmentationTrainer(SegmentationTrainConfig::from(adapt)).run(false);
  const double adapt_seconds = seconds_since(start);
  const fs::path adapted_model = out / "runs" / "adapted" / "final.h5";
  result.rows.push_back({"adapted (no target labels)",
                         target_kidney_dice(adapted_model, "1=1+2", target, out / "pred" / "adapted"), adapt_seconds,
                         adapted_model.string()});

  stage(o, 5, "control: the same extra epochs on the source without the adversarial term");
  // Note [Demo control]: adaptation continues training on the source too. This control runs the
  // same epochs from the same checkpoint without the target, so the table separates what the
  // adversarial term adds from what more source training adds.
  io::Config control = stage_config(o, patch);
  control.set("data.train", (out / "prep" / "source").string());
  control.set("transfer.strategy", "finetune");
  control.set("transfer.pretrained", source_model.string());
  control.set("train.epochs", std::to_string(o.adapt_epochs));
  control.set("transfer.pretrained_lr_scale", fmt::format("{}", o.pretrained_lr_scale));
  control.set("output.dir", (out / "runs" / "control").string());
  start = std::chrono::steady_clock::now();
  SegmentationTrainer(SegmentationTrainConfig::from(control)).run(false);
  const double control_seconds = seconds_since(start);
  const fs::path control_model = out / "runs" / "control" / "final.h5";
  result.rows.push_back({"source, trained as long (control)",
                         target_kidney_dice(control_model, "1=1+2", target, out / "pred" / "control"),
                         control_seconds, control_model.string()});

  stage(o, 6, "training the oracle on the labelled target from scratch");
  io::Config oracle = stage_config(o, patch);
  oracle.set("data.train", (out / "prep" / "target").string());
  oracle.set("train.epochs", std::to_string(o.oracle_epochs));
  oracle.set("output.dir", (out / "runs" / "oracle").string());
  SegmentationTrainer oracle_trainer(SegmentationTrainConfig::from(oracle));
  double oracle_seconds = 0.0;
  oracle_trainer.on_epoch = [&](const EpochResult& r) {
    oracle_seconds += r.seconds;
    const double dice = target_kidney_dice(out / "runs" / "oracle" / "latest.h5", "", target, out / "pred" / "oracle");
    result.oracle_curve.emplace_back(oracle_seconds, dice);
    if (!o.quiet) fmt::print(stderr, "  oracle after epoch {}: target kidney Dice {:.3f}\n", r.epoch + 1, dice);
  };
  oracle_trainer.run(false);
  const fs::path oracle_model = out / "runs" / "oracle" / "final.h5";
  result.rows.push_back({"oracle (target labels)", result.oracle_curve.back().second, oracle_seconds,
                         oracle_model.string()});
  const AdaptationDemoRow& oracle_row = result.rows.back();

  stage(o, 7, "writing results and pictures");
  const double adapted = result.rows[1].kidney_dice;
  result.speedup = std::nan("");
  for (const auto& [t, dice] : result.oracle_curve)
    if (dice >= adapted) {
      result.speedup = t / adapt_seconds;
      break;
    }
  result.speedup_lower_bound = oracle_seconds / adapt_seconds;
  result.performance_ratio = adapted / oracle_row.kidney_dice;

  fs::create_directories(out / "png");
  for (const auto& c : target.test) {
    const io::NiftiImage image = io::read_nifti(c.images[0]), truth = io::read_nifti(*c.label);
    const data::Orientation orientation = data::orientation_of(image);
    const Tensor truth_c = data::to_canonical(truth.data, orientation);
    const std::int64_t z = busiest_slice(truth_c);
    std::vector<SlicePanel> panels{{"image", Tensor()}, {"truth", axial_slice(truth_c, z)}};
    for (const char* method : {"source_only", "control", "adapted", "oracle"}) {
      const io::NiftiImage p = io::read_nifti(out / "pred" / method / (c.id + ".nii.gz"));
      panels.push_back({method, axial_slice(data::to_canonical(p.data, orientation), z)});
    }
    io::write_png(out / "png" / (c.id + ".png"),
                  render_slices(axial_slice(data::to_canonical(image.scaled_f32(), orientation), z), panels, 3));
  }
  result.total_seconds = seconds_since(demo_start);

  nlohmann::json j;
  for (const auto& r : result.rows)
    j["methods"].push_back({{"method", r.method}, {"kidney_dice", r.kidney_dice}, {"train_seconds", r.train_seconds},
                            {"checkpoint", r.checkpoint}});
  for (const auto& [t, d] : result.oracle_curve) j["oracle_curve"].push_back({{"seconds", t}, {"dice", d}});
  j["speedup"] = std::isnan(result.speedup) ? nlohmann::json(nullptr) : nlohmann::json(result.speedup);
  j["speedup_lower_bound"] = result.speedup_lower_bound;
  j["performance_ratio"] = result.performance_ratio;
  j["pretrain_seconds"] = pretrain_seconds;
  j["total_seconds"] = result.total_seconds;
  io::write_atomically(out / "results.json", [&](const fs::path& tmp) { std::ofstream(tmp) << j.dump(2) << "\n"; });
  io::write_atomically(out / "results.csv", [&](const fs::path& tmp) {
    std::ofstream csv(tmp);
    csv << "method,kidney_dice,train_seconds\n";
    for (const auto& r : result.rows) csv << fmt::format("{},{},{}\n", r.method, r.kidney_dice, r.train_seconds);
  });
  return result;
}

std::string format_adaptation_demo(const AdaptationDemoResult& r) {
  std::string s = fmt::format("{:<34} {:>12} {:>12}\n", "method", "kidney Dice", "train time");
  for (const auto& row : r.rows)
    s += fmt::format("{:<34} {:>12.3f} {:>11.1f}s\n", row.method, row.kidney_dice, row.train_seconds);
  s += std::isnan(r.speedup)
           ? fmt::format("speedup of adaptation over the oracle reaching the same Dice: > {:.2f}x (the oracle never "
                         "reached it)\n", r.speedup_lower_bound)
           : fmt::format("speedup of adaptation over the oracle reaching the same Dice: {:.2f}x\n", r.speedup);
  s += fmt::format("performance ratio (adapted / oracle Dice): {:.1f}%\n", 100.0 * r.performance_ratio);
  s += fmt::format("(TLK's figure for the real AMOS -> KiTS experiment: 10.67x at 93%)\ntotal time {:.0f} s\n",
                   r.total_seconds);
  return s;
}

}  // namespace tlk::task
