// The segmentation pipeline through the library: preprocess a raw dataset, map labels back to the
// file's geometry, train with resume, predict a raw case.
#include <fstream>
#include <sstream>

#include "test_util.h"
#include "tlk/data/preprocess.h"
#include "tlk/io/config.h"
#include "tlk/task/predictor.h"
#include "tlk/task/segmentation_trainer.h"

using namespace tlk;
using namespace tlk::testing;

namespace {

/// One-hot "probabilities" [K, D, H, W] of a u8 label map.
Tensor one_hot(const Tensor& labels, std::int64_t K) {
  const Tensor l = labels.contiguous();
  const std::int64_t n = l.numel();
  Tensor p = Tensor::zeros({K, l.size(0), l.size(1), l.size(2)});
  for (std::int64_t v = 0; v < n; ++v) p.data<float>()[l.data<std::uint8_t>()[v] * n + v] = 1.0f;
  return p;
}

io::Config small_training_config(const std::filesystem::path& prep, const std::filesystem::path& out, int epochs) {
  io::Config c = io::Config::from_yaml_text(
      "data: {patch: [8, 16, 16], batch: 2, loader_threads: 1}\n"
      "model: {levels: 3, base_features: 4, max_features: 16}\n"
      "train: {iterations_per_epoch: 3, val_iterations: 2, seed: 5}\n"
      "output: {quiet: true}\n");
  c.set("data.train", prep.string());
  c.set("output.dir", out.string());
  c.set("train.epochs", std::to_string(epochs));
  return c;
}

}  // namespace

TEST_CASE("preprocess: canonical, cropped, normalized, resampled cases and a plan") {
  const auto dir = fresh_temp_dir("preprocess");
  write_synthetic_raw_dataset(dir / "raw", 3, {12, 20, 24}, 1);
  data::PreprocessOptions options;
  options.quiet = true;
  options.threads = 2;
  const data::PreprocessingPlan plan = data::preprocess_dataset(dir / "raw", dir / "prep", options);
  CHECK(plan.num_classes() == 3);
  CHECK(plan.target_spacing == std::array<double, 3>{2.5, 1.5, 1.5});  // the median of identical spacings
  REQUIRE(plan.normalization.size() == 1);
  CHECK(plan.normalization[0].scheme == data::NormalizationScheme::ct);
  // Foreground is kidney (~160 HU) and tumor (~60 HU): the foreground mean lies between them.
  CHECK(plan.normalization[0].mean > 60.0);
  CHECK(plan.normalization[0].mean < 160.0);
  const auto files = data::preprocessed_case_files(dir / "prep");
  REQUIRE(files.size() == 3);
  const data::PreprocessedCase c = data::load_preprocessed_case(files[0]);
  CHECK(c.geometry.orientation.code() == "LPS");
  CHECK(c.image.shape() == Shape{1, 12, 20, 24});  // nothing to crop (CT has no zeros), same spacing
  CHECK(c.labels.shape() == Shape{12, 20, 24});
  REQUIRE(c.class_locations.count(1) == 1);
  // The loaded plan is the one returned, and a second dataset reuses its statistics.
  const data::PreprocessingPlan loaded = data::PreprocessingPlan::load(dir / "prep");
  CHECK(loaded.to_json() == plan.to_json());
  write_synthetic_raw_dataset(dir / "raw2", 2, {10, 16, 16}, 2);
  data::PreprocessOptions target = options;
  target.norm_stats_from = dir / "prep";
  target.spacing = std::array<double, 3>{3.0, 2.0, 2.0};
  const data::PreprocessingPlan second = data::preprocess_dataset(dir / "raw2", dir / "prep2", target);
  CHECK(second.normalization[0].mean == plan.normalization[0].mean);
  CHECK(second.normalization[0].std == plan.normalization[0].std);
  const data::PreprocessedCase c2 = data::load_preprocessed_case(data::preprocessed_case_files(dir / "prep2")[0]);
  CHECK(c2.image.shape() == Shape{1, 8, 12, 12});  // round(10·2.5/3), round(16·1.5/2)
}

TEST_CASE("preprocess: a prediction maps back onto the file's voxels") {
  const auto dir = fresh_temp_dir("map_back");
  write_synthetic_raw_dataset(dir / "raw", 1, {12, 20, 24}, 3);
  const data::RawDataset raw = data::open_raw_dataset(dir / "raw");
  data::PreprocessingPlan plan;
  plan.channel_names = {"CT"};
  plan.normalization = {data::ChannelNormalization{data::NormalizationScheme::zscore}};
  plan.labels = {{"background", 0}, {"kidney", 1}, {"tumor", 2}};
  plan.target_spacing = {2.0, 2.0, 2.0};  // a real resampling in every axis
  Generator gen(1);
  const data::PreprocessedCase c = data::finish_case(data::load_raw_case(raw.training[0], ""), plan, gen);
  CHECK(c.image.size(1) == 15);  // round(12·2.5/2)
  const Tensor back = data::labels_in_file_geometry(one_hot(c.labels, 3), c.geometry);
  const Tensor truth = io::read_nifti(raw.training[0].label.value()).data;
  REQUIRE(back.shape() == truth.shape());
  const double kidney = task::dice(back, truth, 1), tumor = task::dice(back, truth, 2);
  MESSAGE("resampling round trip Dice: kidney " << kidney << ", tumor " << tumor);
  CHECK(kidney > 0.85);
  CHECK(tumor > 0.7);
}

TEST_CASE("train: logs, checkpoints, and a resumed run continues exactly") {
  const auto dir = fresh_temp_dir("train_resume");
  write_synthetic_raw_dataset(dir / "raw", 3, {12, 20, 24}, 4);
  data::PreprocessOptions options;
  options.quiet = true;
  data::preprocess_dataset(dir / "raw", dir / "prep", options);

  auto straight_config = task::SegmentationTrainConfig::from(small_training_config(dir / "prep", dir / "straight", 2));
  const auto straight = task::SegmentationTrainer(straight_config).run(false);
  REQUIRE(straight.size() == 2);
  for (const char* f : {"latest.h5", "best.h5", "final.h5", "log.csv", "log.jsonl", "config.yaml"})
    CHECK_MESSAGE(std::filesystem::exists(dir / "straight" / f), f);
  std::ifstream csv(dir / "straight" / "log.csv");
  std::string header, line;
  std::getline(csv, header);
  CHECK(header == "epoch,iteration,train_loss,task_loss,distill_loss,adversarial_loss,lambda,domain_accuracy,val_loss,"
                  "mean_dice,ema_dice,dice_1,dice_2,lr,seconds,data_wait_seconds");
  int rows = 0;
  while (std::getline(csv, line)) ++rows;
  CHECK(rows == 2);
  CHECK(straight[1].lr < straight[0].lr);  // poly schedule

  auto first = task::SegmentationTrainConfig::from(small_training_config(dir / "prep", dir / "resumed", 1));
  const auto part1 = task::SegmentationTrainer(first).run(false);
  auto second = task::SegmentationTrainConfig::from(small_training_config(dir / "prep", dir / "resumed", 2));
  const auto part2 = task::SegmentationTrainer(second).run(true);
  REQUIRE(part1.size() == 1);
  REQUIRE(part2.size() == 1);
  CHECK(part1[0].train_loss == straight[0].train_loss);
  CHECK(part2[0].train_loss == straight[1].train_loss);  // bit-identical: same batches, same state
  CHECK(part2[0].val_loss == straight[1].val_loss);

  // The checkpoint predicts a raw case straight away, in the file's geometry.
  task::PredictOptions predict_options;
  predict_options.mirror = false;
  predict_options.quiet = true;
  const task::Predictor predictor(task::load_checkpoint(dir / "straight" / "final.h5"), predict_options);
  const data::RawDataset raw = data::open_raw_dataset(dir / "raw");
  const io::NiftiImage prediction = predictor.predict(raw.training[0]);
  const io::NiftiImage input = io::read_nifti(raw.training[0].images[0]);
  CHECK(prediction.data.shape() == input.data.shape());
  CHECK(prediction.affine() == input.affine());
  CHECK(prediction.stored_type == io::NiftiType::u8);
}

TEST_CASE("train: bad configs are refused with the key named") {
  const auto dir = fresh_temp_dir("train_config");
  io::Config c = io::Config::from_yaml_text("data: {train: x}\ntrain: {lr_max: 0.1}\n", "bad.yaml");
  CHECK_THROWS_WITH_AS(task::SegmentationTrainConfig::from(c), doctest::Contains("unknown key 'train.lr_max'"), Error);
  io::Config typo = io::Config::from_yaml_text("data: {train: x, bach: 2}\n", "typo.yaml");
  CHECK_THROWS_WITH_AS(task::SegmentationTrainConfig::from(typo), doctest::Contains("did you mean 'data.batch'"), Error);
  io::Config no_data = io::Config::from_yaml_text("train: {lr: 0.1}\n", "empty.yaml");
  CHECK_THROWS_WITH_AS(task::SegmentationTrainConfig::from(no_data), doctest::Contains("data.train is required"), Error);
  CHECK_THROWS_WITH_AS(io::Config::from_yaml_text("a: [1, 2\n", "broken.yaml"), doctest::Contains("broken.yaml: not valid YAML"),
                       Error);
  io::Config patch = io::Config::from_yaml_text("data: {train: x, patch: [8, 16]}\n", "p.yaml");
  CHECK_THROWS_WITH_AS(task::SegmentationTrainConfig::from(patch), doctest::Contains("three positive sizes"), Error);
  io::Config half_on_cpu = io::Config::from_yaml_text("data: {train: x}\ntrain: {precision: bf16}\n", "h.yaml");
  CHECK_THROWS_WITH_AS(task::SegmentationTrainConfig::from(half_on_cpu),
                       doctest::Contains("h.yaml: train.precision bf16 needs train.device cuda"), Error);
  io::Config fp8 = io::Config::from_yaml_text("data: {train: x}\ntrain: {precision: fp8, device: cuda}\n", "f.yaml");
  CHECK_THROWS_WITH_AS(task::SegmentationTrainConfig::from(fp8),
                       doctest::Contains("train.precision must be f32, bf16 or f16, got 'fp8'"), Error);
}

TEST_CASE("train: the config.yaml a run writes reads back to the same config (empty lists included)") {
  io::Config c = io::Config::from_yaml_text("data: {train: x}\ntrain: {lr: 0.02}\n", "c.yaml");
  const task::SegmentationTrainConfig first = task::SegmentationTrainConfig::from(c);
  CHECK(first.discriminator_widths.empty());  // written as "widths: []"
  const std::string yaml = first.to_yaml();
  const task::SegmentationTrainConfig again =
      task::SegmentationTrainConfig::from(io::Config::from_yaml_text(yaml, "config.yaml"));
  CHECK(again.to_yaml() == yaml);
  const io::Config lists = io::Config::from_yaml_text("a: []\nb: [1, 2]\n", "lists.yaml");
  CHECK(lists.get_ints("a", {7}).empty());
  CHECK(lists.get_ints("b", {}) == std::vector<std::int64_t>{1, 2});
}

TEST_CASE("docs/config.md documents every key tlk train reads") {
  std::ifstream in(std::filesystem::path(TLK_GOLDEN_DIR) / ".." / ".." / "docs" / "config.md");
  REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  for (const std::string& key : task::SegmentationTrainConfig::known_keys()) {
    CAPTURE(key);
    CHECK(text.str().find("`" + key + "`") != std::string::npos);
  }
}
