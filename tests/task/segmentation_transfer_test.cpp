// The transfer strategies through the segmentation trainer: adapt with an unlabelled target,
// finetune from a checkpoint with another class count, distill from a frozen teacher.
#include <fstream>
#include <sstream>

#include "test_util.h"
#include "tlk/data/preprocess.h"
#include "tlk/io/config.h"
#include "tlk/task/segmentation_trainer.h"

using namespace tlk;
using namespace tlk::testing;

namespace {

io::Config tiny_config(const std::filesystem::path& prep, const std::filesystem::path& out) {
  io::Config c = io::Config::from_yaml_text(
      "data: {patch: [8, 16, 16], batch: 2, loader_threads: 1}\n"
      "model: {levels: 3, base_features: 4, max_features: 16}\n"
      "train: {epochs: 1, iterations_per_epoch: 3, val_iterations: 1, seed: 2}\n"
      "output: {quiet: true}\n");
  c.set("data.train", prep.string());
  c.set("output.dir", out.string());
  return c;
}

std::string read_text(const std::filesystem::path& p) {
  std::stringstream s;
  s << std::ifstream(p).rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("transfer: adapt trains with a target that has no labels, logging λ and domain accuracy per step") {
  const auto dir = make_adaptation_domains("transfer_adapt");
  io::Config c = tiny_config(dir / "source", dir / "adapt");
  c.set("transfer.strategy", "adapt");
  c.set("data.target", (dir / "target").string());
  c.set("adapt.widths", "4,8");
  c.set("adapt.grl_alpha", "10");
  c.set("adapt.grl_max_iters", "3");
  const auto results = task::SegmentationTrainer(task::SegmentationTrainConfig::from(c)).run(false);
  REQUIRE(results.size() == 1);
  CHECK(std::isfinite(results[0].adversarial_loss));
  CHECK(results[0].domain_accuracy >= 0.0);
  CHECK(results[0].domain_accuracy <= 1.0);
  CHECK(results[0].lambda > 0.0);
  const std::string steps = read_text(dir / "adapt" / "steps.csv");
  CHECK(steps.rfind("step,epoch,loss,task_loss,distill_loss,adversarial_loss,lambda,domain_accuracy,", 0) == 0);
  std::istringstream lines(steps);
  std::string line;
  int rows = -1;
  while (std::getline(lines, line)) ++rows;
  CHECK(rows == 3);
  // The discriminator is saved beside the model, and resuming restores it.
  const task::Checkpoint ckpt = task::load_checkpoint(dir / "adapt" / "final.h5");
  CHECK_FALSE(ckpt.auxiliary.empty());
  c.set("train.epochs", "2");
  CHECK(task::SegmentationTrainer(task::SegmentationTrainConfig::from(c)).run(true).size() == 1);
  // Without data.target the strategy is refused up front.
  io::Config missing = tiny_config(dir / "source", dir / "x");
  missing.set("transfer.strategy", "finetune+adapt");
  missing.set("transfer.pretrained", (dir / "adapt" / "final.h5").string());
  CHECK_THROWS_WITH_AS(task::SegmentationTrainConfig::from(missing), doctest::Contains("needs data.target"), Error);
}

TEST_CASE("transfer: finetune copies a pretrained body into a model with another class count") {
  const auto dir = make_adaptation_domains("transfer_finetune");
  // Pretrain on the 3-class source; fine-tune a 2-class model on it (tumour merged into kidney).
  task::SegmentationTrainer(task::SegmentationTrainConfig::from(tiny_config(dir / "source", dir / "pre"))).run(false);
  write_synthetic_raw_dataset(dir / "raw_two", 2, {12, 20, 24}, 13);
  data::PreprocessOptions o;
  o.quiet = true;
  o.label_map = "2:1";
  data::preprocess_dataset(dir / "raw_two", dir / "two", o);
  io::Config c = tiny_config(dir / "two", dir / "finetuned");
  c.set("transfer.strategy", "finetune");
  c.set("transfer.pretrained", (dir / "pre" / "final.h5").string());
  c.set("transfer.pretrained_lr_scale", "0.2");
  task::SegmentationTrainer trainer(task::SegmentationTrainConfig::from(c));
  const transfer::FinetuneReport& report = trainer.finetune_report();
  CHECK(report.mismatched.size() >= 1);  // the heads: 3 classes vs 2
  for (const auto& m : report.mismatched) CHECK(m.name.find("heads") != std::string::npos);
  CHECK(report.copied.size() > 10);
  CHECK(trainer.run(false).size() == 1);
}

TEST_CASE("transfer: distill runs a frozen teacher and logs the distillation term") {
  const auto dir = make_adaptation_domains("transfer_distill");
  task::SegmentationTrainer(task::SegmentationTrainConfig::from(tiny_config(dir / "source", dir / "teacher"))).run(false);
  const task::Checkpoint before = task::load_checkpoint(dir / "teacher" / "final.h5");
  io::Config c = tiny_config(dir / "source", dir / "student");
  c.set("transfer.strategy", "distill+adapt");
  c.set("distill.teacher", (dir / "teacher" / "final.h5").string());
  c.set("distill.foreground_only", "true");
  c.set("data.target", (dir / "target").string());
  c.set("adapt.widths", "4,8");
  c.set("model.base_features", "2");  // a smaller student
  const auto results = task::SegmentationTrainer(task::SegmentationTrainConfig::from(c)).run(false);
  CHECK(std::isfinite(results[0].distill_loss));
  CHECK(results[0].distill_loss >= 0.0);
  CHECK(std::isfinite(results[0].adversarial_loss));
  const task::Checkpoint after = task::load_checkpoint(dir / "teacher" / "final.h5");
  REQUIRE(before.model.size() == after.model.size());
  for (std::size_t i = 0; i < before.model.size(); ++i)
    CHECK(max_abs_diff(before.model[i].second, after.model[i].second) == 0);
}

TEST_CASE("transfer: distill.features adds hints or attention transfer on the encoder skips") {
  const auto dir = make_adaptation_domains("transfer_distill_features");
  task::SegmentationTrainer(task::SegmentationTrainConfig::from(tiny_config(dir / "source", dir / "teacher"))).run(false);
  auto student_config = [&](const std::string& features, const std::string& out) {
    io::Config c = tiny_config(dir / "source", dir / out);
    c.set("transfer.strategy", "distill");
    c.set("distill.teacher", (dir / "teacher" / "final.h5").string());
    c.set("distill.features", features);
    c.set("model.base_features", "2");  // narrower skips than the teacher's: the hints need regressors
    return c;
  };
  const auto plain = task::SegmentationTrainer(task::SegmentationTrainConfig::from(student_config("none", "kd")))
                         .run(false);
  for (const std::string features : {"hint", "attention"}) {
    INFO("distill.features " << features);
    io::Config c = student_config(features, features);
    const auto results = task::SegmentationTrainer(task::SegmentationTrainConfig::from(c)).run(false);
    // Same seed, same batches, same first step: the feature term adds to the voxel KD term.
    CHECK(std::isfinite(results[0].distill_loss));
    CHECK(results[0].distill_loss > plain[0].distill_loss);
    const task::Checkpoint ckpt = task::load_checkpoint(dir / features / "final.h5");
    bool has_regressor = false;
    for (const auto& [name, t] : ckpt.auxiliary) has_regressor |= name == "features.hint_0.conv.weight";
    CHECK(has_regressor == (features == "hint"));
    c.set("train.epochs", "2");  // resuming restores the regressors
    CHECK(task::SegmentationTrainer(task::SegmentationTrainConfig::from(c)).run(true).size() == 1);
  }
  io::Config wrong = tiny_config(dir / "source", dir / "x");
  wrong.set("distill.features", "hint");
  CHECK_THROWS_WITH_AS(task::SegmentationTrainConfig::from(wrong), doctest::Contains("needs a distill strategy"), Error);
  wrong.set("transfer.strategy", "distill");
  wrong.set("distill.teacher", "t.h5");
  wrong.set("distill.features", "hints");
  CHECK_THROWS_WITH_AS(task::SegmentationTrainConfig::from(wrong), doctest::Contains("not one of none, hint, attention"),
                       Error);
}

TEST_CASE("transfer: distill.cache replays the teacher's outputs in later epochs and later runs") {
  const auto dir = make_adaptation_domains("transfer_distill_cache");
  task::SegmentationTrainer(task::SegmentationTrainConfig::from(tiny_config(dir / "source", dir / "teacher"))).run(false);
  auto student_config = [&](const std::string& out, const std::string& cache, int epochs) {
    io::Config c = tiny_config(dir / "source", dir / out);
    c.set("transfer.strategy", "distill+adapt");
    c.set("distill.teacher", (dir / "teacher" / "final.h5").string());
    c.set("distill.foreground_only", "true");
    c.set("distill.temperature", "2");
    c.set("distill.cache", (dir / cache).string());
    c.set("data.target", (dir / "target").string());
    c.set("adapt.widths", "4,8");
    c.set("model.base_features", "2");
    c.set("train.epochs", std::to_string(epochs));
    return c;
  };
  // Cold cache: the first epoch runs the teacher on 3 source and 3 target batches, the second replays them.
  task::SegmentationTrainer cold(task::SegmentationTrainConfig::from(student_config("cold", "cache", 2)));
  const auto cold_results = cold.run(false);
  REQUIRE(cold.teacher_cache() != nullptr);
  CHECK(cold.teacher_cache()->cycle() == 3);
  CHECK(cold.teacher_cache()->computed() == 6);
  CHECK(cold.teacher_cache()->replayed() == 6);
  CHECK(!std::filesystem::is_empty(dir / "cache"));
  // Epoch 2 sees epoch 1's patches again (Note [Replayed patches]).
  CHECK(cold_results[1].distill_loss != cold_results[0].distill_loss);  // the student moved on

  // Warm cache, another run with the same teacher and batches: the teacher never runs, and the run
  // is the cold run exactly (a cold run distils from the stored values too).
  task::SegmentationTrainer warm(task::SegmentationTrainConfig::from(student_config("warm", "cache", 2)));
  const auto warm_results = warm.run(false);
  CHECK(warm.teacher_cache()->computed() == 0);
  CHECK(warm.teacher_cache()->replayed() == 12);
  for (std::size_t e = 0; e < 2; ++e) {
    CHECK(warm_results[e].distill_loss == cold_results[e].distill_loss);
    CHECK(warm_results[e].train_loss == cold_results[e].train_loss);
  }
  // Another seed draws other batches: a new fingerprint, so nothing stale is replayed.
  io::Config other_seed = student_config("other_seed", "cache", 1);
  other_seed.set("train.seed", "5");
  task::SegmentationTrainer reseeded(task::SegmentationTrainConfig::from(other_seed));
  reseeded.run(false);
  CHECK(reseeded.teacher_cache()->computed() == 6);
  CHECK(reseeded.teacher_cache()->replayed() == 0);

  // The stored u8 probabilities stay close to the live teacher: epoch 1 draws the same batches
  // with or without the cache.
  io::Config live = student_config("live", "unused", 1);
  live.set("distill.cache", "");
  const auto live_results = task::SegmentationTrainer(task::SegmentationTrainConfig::from(live)).run(false);
  CHECK(cold_results[0].distill_loss == doctest::Approx(live_results[0].distill_loss).epsilon(0.02));

  // Resuming mid-run continues exactly.
  task::SegmentationTrainer(task::SegmentationTrainConfig::from(student_config("resumed", "cache_r", 1))).run(false);
  const auto resumed =
      task::SegmentationTrainer(task::SegmentationTrainConfig::from(student_config("resumed", "cache_r", 2))).run(true);
  REQUIRE(resumed.size() == 1);
  CHECK(resumed[0].train_loss == cold_results[1].train_loss);

  io::Config wrong = tiny_config(dir / "source", dir / "x");
  wrong.set("distill.cache", (dir / "c").string());
  CHECK_THROWS_WITH_AS(task::SegmentationTrainConfig::from(wrong), doctest::Contains("distill.cache needs a distill "
                       "strategy"), Error);
  wrong = student_config("x", "c", 1);
  wrong.set("distill.features", "attention");
  CHECK_THROWS_WITH_AS(task::SegmentationTrainConfig::from(wrong), doctest::Contains("distill.cache keeps only"), Error);
  wrong = student_config("x", "cache", 1);
  wrong.set("distill.temperature", "3");  // the directory holds probabilities at T = 2
  CHECK_THROWS_WITH_AS(task::SegmentationTrainer(task::SegmentationTrainConfig::from(wrong)),
                       doctest::Contains("stores probabilities at temperature 2"), Error);
}
