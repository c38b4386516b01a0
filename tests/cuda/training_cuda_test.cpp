// The training and prediction pipeline on a GPU (train.device: cuda): the adapt strategy with an
// unlabelled target trains, checkpoints and resumes there, its first step matches the same step on
// the CPU, and a GPU prediction of the checkpoint matches the CPU prediction.
#include <cmath>

#include "compare_to_ref.h"
#include "cuda_test_util.h"
#include "tlk/data/preprocess.h"
#include "tlk/data/raw_dataset.h"
#include "tlk/io/config.h"
#include "tlk/kernels/cuda/cudnn_context.h"
#include "tlk/task/predictor.h"
#include "tlk/task/segmentation_trainer.h"

using namespace tlk;
using namespace tlk::testing;

namespace {

io::Config adapt_config(const std::filesystem::path& dir, const std::string& out, const std::string& device) {
  io::Config c = io::Config::from_yaml_text(
      "data: {patch: [8, 16, 16], batch: 2, loader_threads: 1}\n"
      "model: {levels: 3, base_features: 4, max_features: 16}\n"
      "train: {epochs: 1, iterations_per_epoch: 3, val_iterations: 1, seed: 2}\n"
      "transfer: {strategy: adapt}\n"
      "adapt: {widths: [4, 8], grl_alpha: 10, grl_max_iters: 3}\n"
      "output: {quiet: true}\n");
  c.set("data.train", (dir / "source").string());
  c.set("data.target", (dir / "target").string());
  c.set("output.dir", (dir / out).string());
  c.set("train.device", device);
  return c;
}

}  // namespace

TEST_CASE("GPU training: adapt trains, checkpoints and resumes on cuda; its first step matches the CPU's") {
  TLK_REQUIRE_GPU();
  Tf32Scope fp32(false);  // compare fp32 with fp32
  const auto dir = make_adaptation_domains("gpu_training");
  task::SegmentationTrainer gpu(task::SegmentationTrainConfig::from(adapt_config(dir, "gpu", "cuda")));
  CHECK(gpu.network().device().is_cuda());
  const auto results = gpu.run(false);
  REQUIRE(results.size() == 1);
  CHECK(std::isfinite(results[0].train_loss));
  CHECK(std::isfinite(results[0].adversarial_loss));
  CHECK(results[0].domain_accuracy >= 0.0);
  CHECK(results[0].domain_accuracy <= 1.0);
  task::SegmentationTrainer(task::SegmentationTrainConfig::from(adapt_config(dir, "cpu", "cpu"))).run(false);
  // Same seed, same batches: the first step's losses agree within fp32 rounding of two back ends.
  const std::vector<double> g = first_step(dir / "gpu" / "steps.csv"), c = first_step(dir / "cpu" / "steps.csv");
  REQUIRE(g.size() == c.size());
  REQUIRE(g.size() >= 6);
  for (std::size_t i = 2; i < 6; ++i) {  // loss, task, distill (NaN: none here) and adversarial terms
    CAPTURE(i);
    CHECK(std::isnan(g[i]) == std::isnan(c[i]));
    if (!std::isnan(c[i])) CHECK(g[i] == doctest::Approx(c[i]).epsilon(1e-4).scale(1.0));
  }
  CHECK(std::isfinite(c[2]));
  // The checkpoint holds CPU tensors and resumes on the GPU.
  const task::Checkpoint saved = task::load_checkpoint(dir / "gpu" / "final.h5");
  for (const auto& [name, t] : saved.model) CHECK(t.device().is_cpu());
  io::Config more = adapt_config(dir, "gpu", "cuda");
  more.set("train.epochs", "2");
  CHECK(task::SegmentationTrainer(task::SegmentationTrainConfig::from(more)).run(true).size() == 1);
}

TEST_CASE("GPU training with data.augment_on device: adapt trains on GPU-augmented batches like loader-augmented ones") {
  TLK_REQUIRE_GPU();
  Tf32Scope fp32(false);
  const auto dir = make_adaptation_domains("gpu_augment_on_device");
  io::Config on_device = adapt_config(dir, "augment_device", "cuda");
  on_device.set("data.augment_on", "device");
  const auto results = task::SegmentationTrainer(task::SegmentationTrainConfig::from(on_device)).run(false);
  REQUIRE(results.size() == 1);
  CHECK(std::isfinite(results[0].train_loss));
  CHECK(std::isfinite(results[0].val_loss));
  task::SegmentationTrainer(task::SegmentationTrainConfig::from(adapt_config(dir, "augment_loader", "cuda"))).run(false);
  // The same draws applied on the GPU: the first step's loss agrees up to rounding and the noise's
  // voxel values (Note [GPU noise]: same sigma, other values).
  const std::vector<double> d = first_step(dir / "augment_device" / "steps.csv");
  const std::vector<double> l = first_step(dir / "augment_loader" / "steps.csv");
  REQUIRE(d.size() == l.size());
  REQUIRE(d.size() >= 3);
  CHECK(d[2] == doctest::Approx(l[2]).epsilon(0.05));
}

TEST_CASE("GPU training with train.layout channels_last: adapt trains in NDHWC with the plain run's first step") {
  TLK_REQUIRE_GPU();
  Tf32Scope fp32(false);
  const auto dir = make_adaptation_domains("gpu_channels_last");
  io::Config channels_last = adapt_config(dir, "channels_last", "cuda");
  channels_last.set("train.layout", "channels_last");
  const auto results = task::SegmentationTrainer(task::SegmentationTrainConfig::from(channels_last)).run(false);
  REQUIRE(results.size() == 1);
  CHECK(std::isfinite(results[0].val_loss));
  task::SegmentationTrainer(task::SegmentationTrainConfig::from(adapt_config(dir, "plain", "cuda"))).run(false);
  const std::vector<double> a = first_step(dir / "channels_last" / "steps.csv");
  const std::vector<double> b = first_step(dir / "plain" / "steps.csv");
  REQUIRE(a.size() == b.size());
  REQUIRE(a.size() >= 6);
  for (std::size_t i = 2; i < 6; ++i) {  // loss, task, distill (NaN here) and adversarial terms
    CAPTURE(i);
    CHECK(std::isnan(a[i]) == std::isnan(b[i]));
    if (!std::isnan(b[i])) CHECK(a[i] == doctest::Approx(b[i]).epsilon(1e-4).scale(1.0));
  }
}

TEST_CASE("GPU training in bf16 and f16 (train.precision): the adapt strategy trains, f16 scales its loss and resumes") {
  TLK_REQUIRE_GPU();
  const auto dir = make_adaptation_domains("gpu_mixed_precision");
  for (const char* precision : {"bf16", "f16"}) {
    CAPTURE(precision);
    const std::string out = std::string("mixed_") + precision;
    io::Config c = adapt_config(dir, out, "cuda");
    c.set("train.precision", precision);
    c.set("train.iterations_per_epoch", "4");
    const auto results = task::SegmentationTrainer(task::SegmentationTrainConfig::from(c)).run(false);
    REQUIRE(results.size() == 1);
    CHECK(std::isfinite(results[0].train_loss));
    CHECK(std::isfinite(results[0].val_loss));
    // The master weights stay f32 on the GPU and the checkpoint holds them as f32 CPU tensors.
    const task::Checkpoint saved = task::load_checkpoint(dir / out / "final.h5");
    for (const auto& [name, t] : saved.model) {
      CHECK(t.device().is_cpu());
      if (is_floating(t.dtype())) CHECK(t.dtype() == DType::f32);
    }
    if (std::string(precision) == "f16") {
      REQUIRE(saved.metadata.count("train.loss_scale") == 1);
      const double scale = std::stod(saved.metadata.at("train.loss_scale"));
      CHECK(scale > 0.0);
      CHECK(scale <= 65536.0);
      io::Config more = c;
      more.set("train.epochs", "2");
      CHECK(task::SegmentationTrainer(task::SegmentationTrainConfig::from(more)).run(true).size() == 1);
    } else {
      CHECK(saved.metadata.count("train.loss_scale") == 0);
    }
  }
}

TEST_CASE("GPU training: distill+adapt with a foreground KD region runs on cuda and its first step matches the CPU's") {
  TLK_REQUIRE_GPU();
  Tf32Scope fp32(false);
  const auto dir = make_adaptation_domains("gpu_distill");
  io::Config teacher = adapt_config(dir, "teacher", "cpu");
  teacher.set("transfer.strategy", "supervised");
  task::SegmentationTrainer(task::SegmentationTrainConfig::from(teacher)).run(false);
  // Note [Distillation on the GPU]: the foreground region takes the weighted-KL path.
  auto student = [&](const std::string& out, const std::string& device, const std::string& precision) {
    io::Config c = adapt_config(dir, out, device);
    c.set("transfer.strategy", "distill+adapt");
    c.set("distill.teacher", (dir / "teacher" / "final.h5").string());
    c.set("distill.foreground_only", "true");
    c.set("train.precision", precision);
    return task::SegmentationTrainer(task::SegmentationTrainConfig::from(c)).run(false);
  };
  const auto gpu = student("student_gpu", "cuda", "f32");
  student("student_cpu", "cpu", "f32");
  REQUIRE(gpu.size() == 1);
  CHECK(std::isfinite(gpu[0].distill_loss));
  const std::vector<double> g = first_step(dir / "student_gpu" / "steps.csv"),
                            c = first_step(dir / "student_cpu" / "steps.csv");
  REQUIRE(g.size() == c.size());
  for (std::size_t i = 2; i < 6; ++i) {  // loss, task, distill and adversarial terms
    CAPTURE(i);
    REQUIRE(std::isfinite(c[i]));
    CHECK(g[i] == doctest::Approx(c[i]).epsilon(1e-4).scale(1.0));
  }
  const auto bf16 = student("student_bf16", "cuda", "bf16");
  CHECK(std::isfinite(bf16[0].distill_loss));
  CHECK(std::isfinite(bf16[0].train_loss));
}

TEST_CASE("GPU prediction equals the CPU prediction of the same checkpoint") {
  TLK_REQUIRE_GPU();
  const auto dir = make_adaptation_domains("gpu_predict");
  io::Config c = adapt_config(dir, "supervised", "cpu");
  c.set("transfer.strategy", "supervised");
  task::SegmentationTrainer(task::SegmentationTrainConfig::from(c)).run(false);
  const task::Checkpoint checkpoint = task::load_checkpoint(dir / "supervised" / "final.h5");
  task::PredictOptions options;
  options.quiet = true;
  options.mirror = true;
  const data::RawDataset raw = data::open_raw_dataset(dir / "raw_source");
  const io::NiftiImage on_cpu = task::Predictor(checkpoint, options).predict(raw.training[0]);
  options.device = Device::cuda();
  const io::NiftiImage on_gpu = task::Predictor(checkpoint, options).predict(raw.training[0]);
  REQUIRE(on_gpu.data.shape() == on_cpu.data.shape());
  CHECK(on_gpu.affine() == on_cpu.affine());
  // Labels are argmaxes of probabilities that differ by rounding: allow a handful of tied voxels.
  const std::vector<double> a = on_gpu.data.to_doubles(), b = on_cpu.data.to_doubles();
  std::size_t differ = 0;
  for (std::size_t i = 0; i < a.size(); ++i) differ += a[i] != b[i];
  CHECK(differ <= a.size() / 1000);
  // Channels-last activations (--layout channels_last): the same labels up to rounding ties.
  options.layout = Layout::channels_last;
  const std::vector<double> cl = task::Predictor(checkpoint, options).predict(raw.training[0]).data.to_doubles();
  std::size_t cl_differ = 0;
  for (std::size_t i = 0; i < cl.size(); ++i) cl_differ += cl[i] != b[i];
  CHECK(cl_differ <= cl.size() / 1000);
  options.layout = Layout::plain;
  // Mixed precision (--precision bf16 / f16): 16-bit logits move a few more boundary voxels.
  for (const DType precision : {DType::bf16, DType::f16}) {
    CAPTURE(dtype_name(precision));
    options.precision = precision;
    const std::vector<double> p = task::Predictor(checkpoint, options).predict(raw.training[0]).data.to_doubles();
    std::size_t moved = 0;
    for (std::size_t i = 0; i < p.size(); ++i) moved += p[i] != b[i];
    CHECK(moved <= p.size() / 100);
  }
}
