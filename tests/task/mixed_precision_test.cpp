// task::MixedPrecision, what both trainers do under train.precision, on CPU gradients (the GPU
// training tests run it end to end), and train.precision in classification configs.
#include "tlk/task/mixed_precision.h"

#include <doctest/doctest.h>

#include <limits>

#include "test_util.h"
#include "tlk/autograd/ops/arith.h"
#include "tlk/autograd/ops/reduce.h"
#include "tlk/io/config.h"
#include "tlk/task/classification_config.h"

using namespace tlk;

TEST_CASE("mixed precision: f32 and bf16 pass through, f16 scales, unscales, skips and keeps its scale") {
  for (const DType plain : {DType::f32, DType::bf16}) {
    task::MixedPrecision mp(plain);
    Tensor w = Tensor::from_vector(std::vector<double>{1.0, -2.0}, {2}).set_requires_grad();
    mp.backward(ops::sum(w * w));
    CHECK(w.grad().to_doubles() == std::vector<double>{2.0, -4.0});
    CHECK(mp.gradients_finite({w}));
    task::LogRow row;
    mp.log(row);
    CHECK(row.empty());
    std::map<std::string, std::string> metadata;
    mp.save(metadata);
    CHECK(metadata.empty());
  }
  task::MixedPrecision f16(DType::f16);
  Tensor w = Tensor::from_vector(std::vector<double>{1.0, -2.0}, {2}).set_requires_grad();
  f16.backward(ops::sum(w * w));
  CHECK(w.grad().to_doubles() == std::vector<double>{65536.0 * 2.0, 65536.0 * -4.0});  // scaled by 2^16
  CHECK(f16.gradients_finite({w}));
  CHECK(w.grad().to_doubles() == std::vector<double>{2.0, -4.0});
  task::LogRow row;
  f16.log(row);
  CHECK(row == task::LogRow{{"loss_scale", 65536.0}, {"step_skipped", 0.0}});
  // An inf gradient: the step is skipped and the scale halves.
  w.set_grad(Tensor::from_vector(std::vector<double>{std::numeric_limits<double>::infinity(), 0.0}, {2}));
  CHECK_FALSE(f16.gradients_finite({w}));
  row.clear();
  f16.log(row);
  CHECK(row == task::LogRow{{"loss_scale", 32768.0}, {"step_skipped", 1.0}});
  // The scale travels in checkpoint metadata.
  std::map<std::string, std::string> metadata;
  f16.save(metadata);
  CHECK(metadata.at("train.loss_scale") == "32768");
  task::MixedPrecision resumed(DType::f16);
  resumed.load(metadata);
  row.clear();
  resumed.log(row);
  CHECK(row.front().second == 32768.0);
  CHECK_THROWS_WITH_AS(task::MixedPrecision(DType::f64), doctest::Contains("must be f32, bf16 or f16"), Error);
}

TEST_CASE("mixed precision: train.precision in classification configs") {
  const auto config = [](const std::string& yaml) {
    return task::ClassificationTrainConfig::from(io::Config::from_yaml_text(yaml, "digits.yaml"));
  };
  CHECK(config("task: classification\ndata: {train: d.h5}").precision == DType::f32);
  CHECK_THROWS_WITH_AS(config("task: classification\ndata: {train: d.h5}\ntrain: {precision: bf16}"),
                       doctest::Contains("digits.yaml: train.precision bf16 needs train.device cuda"), Error);
  CHECK_THROWS_WITH_AS(config("task: classification\ndata: {train: d.h5}\ntrain: {precision: half}"),
                       doctest::Contains("train.precision must be f32, bf16 or f16, got 'half'"), Error);
  const auto on_gpu = config("task: classification\ndata: {train: d.h5}\ntrain: {device: cuda, precision: f16}");
  CHECK(on_gpu.precision == DType::f16);
  CHECK(task::ClassificationTrainConfig::from(io::Config::from_yaml_text(on_gpu.to_yaml())).precision == DType::f16);
}
