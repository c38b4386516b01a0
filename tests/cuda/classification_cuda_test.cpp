// Classification training on a GPU (train.device: cuda): LeNet with DANN on the bars data trains
// there, its first step matches the same step on the CPU, and distillation with DKD (whose loss runs
// on the CPU, Note [Distillation on the GPU]) from a GPU teacher trains too.
#include <cmath>

#include "compare_to_ref.h"
#include "cuda_test_util.h"
#include "tlk/io/config.h"
#include "tlk/task/checkpoint.h"
#include "tlk/task/classification_trainer.h"

using namespace tlk;
using namespace tlk::testing;
namespace fs = std::filesystem;

namespace {

// DANN on the bars with an unlabelled target, or (adapt false) plain supervised training.
io::Config bars_config(const fs::path& dir, const std::string& out, const std::string& device, bool adapt = true) {
  io::Config c = io::Config::from_yaml_text(
      "task: classification\n"
      "data: {batch: 16}\n"
      "model: {name: lenet, conv1_channels: 4, conv2_channels: 8, hidden: 16}\n"
      "train: {epochs: 1, iterations_per_epoch: 6, lr: 0.05, schedule: constant, seed: 3}\n"
      "output: {quiet: true}\n",
      "bars.yaml");
  c.set("data.train", (dir / "bars.h5").string());
  if (adapt) {
    c.set("transfer.strategy", "adapt");
    c.set("adapt.method", "dann");
    c.set("adapt.hidden", "16");
    c.set("data.target", (dir / "target_images_only.h5").string());
  }
  c.set("output.dir", (dir / out).string());
  c.set("train.device", device);
  return c;
}

}  // namespace

TEST_CASE("GPU classification: DANN on LeNet trains on cuda and its first step matches the CPU's; DKD distills") {
  TLK_REQUIRE_GPU();
  Tf32Scope fp32(false);
  const fs::path dir = fresh_temp_dir("gpu_classification");
  write_bars(dir, "bars", 96, 2, 5);
  write_unlabelled(dir, 48, 6);
  task::ClassificationTrainer gpu(task::ClassificationTrainConfig::from(bars_config(dir, "gpu", "cuda")));
  CHECK(gpu.module()->device().is_cuda());
  const auto results = gpu.run(false);
  REQUIRE(results.size() == 1);
  CHECK(std::isfinite(results[0].train_loss));
  task::ClassificationTrainer(task::ClassificationTrainConfig::from(bars_config(dir, "cpu", "cpu"))).run(false);
  const std::vector<double> g = first_step(dir / "gpu" / "steps.csv"), c = first_step(dir / "cpu" / "steps.csv");
  REQUIRE(g.size() == c.size());
  for (std::size_t i = 2; i < 6; ++i) {  // loss, task, distill (NaN: none here) and adversarial terms
    CAPTURE(i);
    CHECK(std::isnan(g[i]) == std::isnan(c[i]));
    if (!std::isnan(c[i])) CHECK(g[i] == doctest::Approx(c[i]).epsilon(1e-4).scale(1.0));
  }
  // DKD from the GPU-trained model as the teacher, with saved teacher outputs.
  io::Config d = bars_config(dir, "student", "cuda", false);
  d.set("transfer.strategy", "distill");
  d.set("distill.teacher", (dir / "gpu" / "final.h5").string());
  d.set("distill.loss", "dkd");
  d.set("distill.cache", (dir / "teacher_cache").string());
  const auto distilled = task::ClassificationTrainer(task::ClassificationTrainConfig::from(d)).run(false);
  REQUIRE(distilled.size() == 1);
  CHECK(std::isfinite(distilled[0].distill_loss));
}

TEST_CASE("GPU classification in bf16 and f16 (train.precision): DANN on LeNet trains, f16 logs its loss scale") {
  TLK_REQUIRE_GPU();
  const fs::path dir = fresh_temp_dir("gpu_classification_precision");
  write_bars(dir, "bars", 96, 2, 5);
  write_unlabelled(dir, 48, 6);
  for (const char* precision : {"bf16", "f16"}) {
    CAPTURE(precision);
    io::Config c = bars_config(dir, std::string("mixed_") + precision, "cuda");
    c.set("train.precision", precision);
    const auto results = task::ClassificationTrainer(task::ClassificationTrainConfig::from(c)).run(false);
    REQUIRE(results.size() == 1);
    CHECK(std::isfinite(results[0].train_loss));
    const task::Checkpoint saved = task::load_checkpoint(dir / (std::string("mixed_") + precision) / "final.h5");
    for (const auto& [name, t] : saved.model)
      if (is_floating(t.dtype())) CHECK(t.dtype() == DType::f32);  // f32 master weights
    CHECK(saved.metadata.count("train.loss_scale") == (std::string(precision) == "f16" ? 1u : 0u));
  }
}
