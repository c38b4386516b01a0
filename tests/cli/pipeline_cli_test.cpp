// End to end through the tlk program: preprocess -> train (a few iterations) -> predict -> evaluate
// on small synthetic volumes, plus the commands' help and error behaviour.
#include <fstream>

#include "run_tlk.h"
#include "tlk/io/nifti.h"

using namespace tlk;
using namespace tlk::testing;

TEST_CASE("tlk preprocess, train, predict, evaluate end to end") {
  const auto dir = fresh_temp_dir("cli_pipeline");
  write_synthetic_raw_dataset(dir / "raw", 3, {12, 20, 24}, 9);
  const std::string d = dir.string();

  auto pre = run_tlk("preprocess --data " + d + "/raw --out " + d + "/prep --quiet");
  REQUIRE_MESSAGE(pre.status == 0, pre.err);
  CHECK(pre.out.find("3 classes") != std::string::npos);
  CHECK(std::filesystem::exists(dir / "prep" / "preprocessing.json"));

  std::ofstream(dir / "train.yaml") << "data:\n  train: " << d << "/prep\n  patch: [8, 16, 16]\n  batch: 2\n"
                                    << "model:\n  levels: 3\n  base_features: 4\n  max_features: 16\n"
                                    << "train:\n  epochs: 2\n  iterations_per_epoch: 2\n  val_iterations: 1\n"
                                    << "output:\n  dir: " << d << "/run\n";
  auto train = run_tlk("train --config " + d + "/train.yaml --set output.quiet=true");
  REQUIRE_MESSAGE(train.status == 0, train.err);
  CHECK(train.out.find("trained 2 epoch(s)") != std::string::npos);
  auto resumed = run_tlk("train --config " + d + "/train.yaml --set output.quiet=true --set train.epochs=3 --resume");
  REQUIRE_MESSAGE(resumed.status == 0, resumed.err);
  CHECK(resumed.out.find("trained 1 epoch(s)") != std::string::npos);
  std::ifstream jsonl(dir / "run" / "log.jsonl");
  std::string line;
  int rows = 0;
  while (std::getline(jsonl, line)) {
    ++rows;
    CHECK(line.find("\"epoch\": " + std::to_string(rows)) != std::string::npos);
  }
  CHECK(rows == 3);

  auto predict = run_tlk("predict --model " + d + "/run/final.h5 --in " + d + "/raw/imagesTr --out " + d +
                         "/pred --no-mirror --quiet");
  REQUIRE_MESSAGE(predict.status == 0, predict.err);
  CHECK(predict.out.find("case_000: ") != std::string::npos);
  const io::NiftiImage image = io::read_nifti(dir / "raw" / "imagesTr" / "case_001_0000.nii.gz");
  const io::NiftiImage prediction = io::read_nifti(dir / "pred" / "case_001.nii.gz");
  CHECK(prediction.data.shape() == image.data.shape());
  CHECK(prediction.affine() == image.affine());
  // Mixed-precision prediction is a GPU feature; bad names are refused (one line each).
  const std::string predict_again = "predict --model " + d + "/run/final.h5 --in " + d + "/raw/imagesTr --out " + d +
                                    "/pred16 --quiet --precision ";
  for (const auto& [precision, message] : {std::pair{"bf16", "precision bf16 needs a CUDA device"},
                                           std::pair{"f8", "--precision must be f32, bf16 or f16, got 'f8'"}}) {
    auto r = run_tlk(predict_again + precision);
    CHECK(r.status == 1);
    CHECK(count_lines(r.err) == 1);
    CHECK_MESSAGE(r.err.find(message) != std::string::npos, r.err);
  }
  CHECK_FALSE(std::filesystem::exists(dir / "pred16"));
  // Channels-last activations are a GPU feature too (auto, the default, is plain on the CPU).
  const std::string predict_layout = "predict --model " + d + "/run/final.h5 --in " + d + "/raw/imagesTr --out " + d +
                                     "/pred_cl --quiet --layout ";
  for (const auto& [layout, message] : {std::pair{"channels_last", "--layout: channels_last needs a CUDA device"},
                                        std::pair{"nhwc", "unknown layout 'nhwc' (expected auto, plain or channels_last)"}}) {
    auto r = run_tlk(predict_layout + layout);
    CHECK(r.status == 1);
    CHECK(count_lines(r.err) == 1);
    CHECK_MESSAGE(r.err.find(message) != std::string::npos, r.err);
  }
  CHECK_FALSE(std::filesystem::exists(dir / "pred_cl"));

  auto evaluate = run_tlk("evaluate --pred " + d + "/pred --ref " + d + "/raw/labelsTr --labels 1,2 --out " +
                          d + "/scores/");
  REQUIRE_MESSAGE(evaluate.status == 0, evaluate.err);
  CHECK_MESSAGE(evaluate.out.find("case_002") != std::string::npos, evaluate.out);

  auto info = run_tlk("info " + d + "/run/final.h5");
  REQUIRE_MESSAGE(info.status == 0, info.err);
  CHECK(info.out.find("unet3d") != std::string::npos);
}

TEST_CASE("pipeline commands: --help with examples, one-line errors") {
  for (const char* command : {"preprocess", "train", "predict"}) {
    CAPTURE(command);
    auto h = run_tlk(std::string(command) + " --help");
    CHECK(h.status == 0);
    CHECK(h.out.find("Examples:") != std::string::npos);
  }
  const auto dir = fresh_temp_dir("cli_pipeline_errors");
  std::ofstream(dir / "typo.yaml") << "data:\n  train: somewhere\n  bach: 2\n";
  std::ofstream(dir / "ok.yaml") << "data:\n  train: somewhere\n";
  const std::string d = dir.string();
  for (const std::string& args : std::vector<std::string>{
           "preprocess --out x", "preprocess --data " + d + "/missing --out " + d + "/out",
        "train --config " + d + "/typo.yaml", "train --config " + d + "/nope.yaml",
        "predict --model " + d + "/nope.h5 --in x --out y", "predict --model m --in x --out y --step 2",
        "train --config " + d + "/typo.yaml --set oops", "train --config " + d + "/ok.yaml --device gpu",
        "predict --model m --in x --out y --device tpu"}) {
    CAPTURE(args);
    auto r = run_tlk(args);
    CHECK(r.status == 1);
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.rfind("tlk: error: ", 0) == 0);
  }
  CHECK(run_tlk("train --config " + d + "/typo.yaml").err.find("did you mean 'data.batch'") != std::string::npos);
  CHECK(run_tlk("train --config " + d + "/ok.yaml --device gpu").err.find("unknown device 'gpu'") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "out"));  // a failed preprocess leaves nothing behind
}

TEST_SUITE("slow") {
  TEST_CASE("tlk demo runs end to end at a tiny size and writes its results") {
    const auto dir = fresh_temp_dir("cli_demo");
    auto r = run_tlk("demo --out " + dir.string() + " --scale 0.25 --source-cases 2 --target-cases 2 --test-cases 1 "
                     "--pretrain-epochs 1 --adapt-epochs 1 --oracle-epochs 1 --iterations 2 --base-features 4 --quiet");
    REQUIRE_MESSAGE(r.status == 0, r.err);
    for (const char* method : {"source only", "adapted (no target labels)", "control", "oracle (target labels)",
                               "speedup", "performance ratio"})
      CHECK_MESSAGE(r.out.find(method) != std::string::npos, method);
    for (const char* f : {"results.csv", "results.json", "raw/Dataset901_AmosPhantom/dataset.json",
                          "raw/Dataset902_KitsPhantom/imagesTs", "runs/adapted/steps.csv", "png"})
      CHECK_MESSAGE(std::filesystem::exists(dir / f), f);
    CHECK_FALSE(std::filesystem::is_empty(dir / "png"));
  }
}
