#include "tlk/task/evaluate.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"

using namespace tlk;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) { return tlk::testing::fresh_temp_dir("evaluate_" + name); }

// A label map [1, 2, 5] (10 voxels) with spacing 1 x 2 x 3 mm (6 mm³ = 0.006 ml per voxel).
void write_labels(const fs::path& path, const std::vector<double>& values, io::NiftiType type = io::NiftiType::u8,
                  Shape shape = {1, 2, 5}) {
  io::NiftiImage im;
  im.data = Tensor::from_doubles(values, shape, type == io::NiftiType::u8 ? DType::u8 : DType::i32);
  im.dims = {shape[2], shape[1], shape[0]};
  im.spacing = {1.0, 2.0, 3.0};
  im.stored_type = type;
  io::write_nifti(path, im);
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Three cases with hand-computed scores (see the checks below).
//   a: label 1: pred {1,2,6,7} ref {1,2,3,4}: TP 2 FP 2 FN 2 -> Dice 4/8 = 0.5, IoU 2/6
//      label 2: pred {5} ref {5,6}: TP 1 FN 1 -> Dice 2/3, IoU 1/2
//      1+2:     pred {1,2,5,6,7} ref {1..6}: TP 4 -> Dice 8/11, IoU 4/7
//   b: label 1 at voxel 0 in both -> Dice 1; label 2 in neither -> NaN; 1+2 -> 1
//   c: label 1 at voxels 0, 1 in the reference only -> Dice 0; label 2 NaN; 1+2 -> 0
struct Folders {
  fs::path pred, ref;
};

Folders make_cases(const std::string& name) {
  const fs::path root = fresh_dir(name);
  Folders f{root / "pred", root / "ref"};
  fs::create_directories(f.pred);
  fs::create_directories(f.ref);
  write_labels(f.pred / "a.nii.gz", {0, 1, 1, 0, 0, 2, 1, 1, 0, 0});
  write_labels(f.ref / "a.nii.gz", {0, 1, 1, 1, 1, 2, 2, 0, 0, 0}, io::NiftiType::i16);
  write_labels(f.pred / "b.nii", {1, 0, 0, 0, 0, 0, 0, 0, 0, 0});  // .nii pairs with the reference's .nii.gz
  write_labels(f.ref / "b.nii.gz", {1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, io::NiftiType::u16);
  write_labels(f.pred / "c.nii.gz", {0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  write_labels(f.ref / "c.nii.gz", {1, 1, 0, 0, 0, 0, 0, 0, 0, 0});
  std::ofstream(f.pred / "summary.json") << "{}";  // other files are ignored
  return f;
}

task::EvaluationOptions quiet_options(int threads = 2) {
  task::EvaluationOptions o;
  o.quiet = true;
  o.num_threads = threads;
  return o;
}

}  // namespace

TEST_CASE("evaluate: label lists with unions") {
  const auto labels = task::parse_evaluation_labels("1, 2,1+2");
  REQUIRE(labels.size() == 3);
  CHECK(labels[0].values == std::vector<int>{1});
  CHECK(labels[2].values == std::vector<int>{1, 2});
  CHECK(labels[2].name() == "1+2");
  CHECK(contains(error_of([] { task::parse_evaluation_labels("1,,2"); }), "'' is not a label"));
  CHECK(contains(error_of([] { task::parse_evaluation_labels("256"); }), "'256' is not a label 0..255"));
  CHECK(contains(error_of([] { task::parse_evaluation_labels("kidney"); }), "'kidney' is not a label"));
  CHECK(contains(error_of([] { task::parse_evaluation_labels("1+1"); }), "appears twice"));
  CHECK(contains(error_of([] { task::parse_evaluation_labels("1,2,1"); }), "'1' is given twice"));
}

TEST_CASE("evaluate: metrics of label maps in memory, unions and NaN for a label absent from both") {
  const Tensor pred = Tensor::from_doubles({0, 1, 1, 0, 0, 2, 1, 1, 0, 0}, {2, 5}, DType::u8);
  const Tensor ref = Tensor::from_doubles({0, 1, 1, 1, 1, 2, 2, 0, 0, 0}, {2, 5}, DType::i64);
  const auto m = task::evaluate_label_maps(pred, ref, task::parse_evaluation_labels("1,2,1+2,3,0"), 0.5);
  REQUIRE(m.size() == 5);
  CHECK(m[0].dice == doctest::Approx(0.5));
  CHECK(m[0].iou == doctest::Approx(1.0 / 3));
  CHECK(m[0].tp == 2);
  CHECK(m[0].fp == 2);
  CHECK(m[0].fn == 2);
  CHECK(m[0].tn == 4);
  CHECK(m[0].volume_pred_ml == doctest::Approx(2.0));
  CHECK(m[1].dice == doctest::Approx(2.0 / 3));
  CHECK(m[1].iou == doctest::Approx(0.5));
  CHECK(m[2].dice == doctest::Approx(8.0 / 11));
  CHECK(m[2].iou == doctest::Approx(4.0 / 7));
  CHECK(std::isnan(m[3].dice));
  CHECK(std::isnan(m[3].iou));
  CHECK(m[3].tn == 10);
  // Background: pred 0 at {0,3,4,8,9}, ref 0 at {0,7,8,9}: TP 3 -> 6/9.
  CHECK(m[4].dice == doctest::Approx(6.0 / 9));
  // Agrees with metrics.h's dice.
  CHECK(m[0].dice == doctest::Approx(task::dice(pred, ref, 1)));
  CHECK(contains(error_of([&] { task::evaluate_label_maps(pred, ref.reshape({10}), {{{1}}}); }), "shape"));
}

TEST_CASE("evaluate: a folder of cases gives hand-computed Dice, nanmean over cases and both summaries") {
  const Folders f = make_cases("folder");
  const auto r = task::evaluate_folder(f.pred, f.ref, task::parse_evaluation_labels("1,2,1+2"), quiet_options());
  REQUIRE(r.cases.size() == 3);
  CHECK(r.cases[0].id == "a");
  CHECK(r.cases[1].id == "b");
  CHECK(r.cases[1].prediction == f.pred / "b.nii");
  CHECK(r.cases[0].metrics[0].dice == doctest::Approx(0.5));
  CHECK(r.cases[0].metrics[1].dice == doctest::Approx(2.0 / 3));
  CHECK(r.cases[0].metrics[2].dice == doctest::Approx(8.0 / 11));
  CHECK(r.cases[1].metrics[0].dice == doctest::Approx(1.0));
  CHECK(std::isnan(r.cases[1].metrics[1].dice));
  CHECK(r.cases[2].metrics[0].dice == 0.0);
  CHECK(r.cases[0].metrics[0].volume_ref_ml == doctest::Approx(4 * 0.006));
  REQUIRE(r.mean.size() == 3);
  CHECK(r.mean[0].dice == doctest::Approx(0.5));
  CHECK(r.mean[1].dice == doctest::Approx(2.0 / 3));  // nanmean: cases b and c do not count
  CHECK(r.mean[2].dice == doctest::Approx((8.0 / 11 + 1.0) / 3));
  CHECK(r.mean[0].tp == doctest::Approx((2.0 + 1 + 0) / 3));
  CHECK(r.foreground_mean.dice == doctest::Approx((0.5 + 2.0 / 3 + (8.0 / 11 + 1.0) / 3) / 3));

  // One thread gives the same numbers.
  const auto serial = task::evaluate_folder(f.pred, f.ref, r.labels, quiet_options(1));
  CHECK(serial.mean[2].dice == r.mean[2].dice);

  // Labels found automatically: 1 and 2.
  const auto found = task::evaluate_folder(f.pred, f.ref, {}, quiet_options());
  REQUIRE(found.labels.size() == 2);
  CHECK(found.labels[0].name() == "1");
  CHECK(found.labels[1].name() == "2");

  const fs::path out = f.pred.parent_path() / "out" / "summary";
  task::write_evaluation_csv(out.string() + ".csv", r);
  task::write_evaluation_json(out.string() + ".json", r);
  const std::string csv = read_text(out.string() + ".csv");
  CHECK(csv.rfind("case,label,dice,iou,tp,fp,fn,tn,n_pred,n_ref,volume_pred_ml,volume_ref_ml\n", 0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 1 + 3 * 3);
  CHECK(contains(csv, "\na,1,0.500000,0.333333,2,2,2,4,4,4,0.0240,0.0240\n"));
  CHECK(contains(csv, "\na,1+2,0.727273,0.571429,4,1,2,3,5,6,"));
  CHECK(contains(csv, "\nb,2,nan,nan,0,0,0,10,0,0,"));

  const auto j = nlohmann::json::parse(read_text(out.string() + ".json"));
  CHECK(j["labels"] == nlohmann::json::array({"1", "2", "1+2"}));
  REQUIRE(j["metric_per_case"].size() == 3);
  const auto& a = j["metric_per_case"][0];
  CHECK(a["case"] == "a");
  CHECK(a["reference_file"] == (f.ref / "a.nii.gz").string());
  CHECK(a["metrics"]["1"]["Dice"].get<double>() == doctest::Approx(0.5));
  CHECK(a["metrics"]["1+2"]["TP"].is_number_integer());
  CHECK(a["metrics"]["1+2"]["TP"] == 4);
  CHECK(j["metric_per_case"][1]["metrics"]["2"]["Dice"].is_null());  // NaN
  CHECK(j["mean"]["2"]["Dice"].get<double>() == doctest::Approx(2.0 / 3));
  CHECK(j["foreground_mean"]["Dice"].get<double>() == doctest::Approx(r.foreground_mean.dice));
  CHECK_FALSE(fs::exists(out.string() + ".json.tmp"));
}

TEST_CASE("evaluate: missing predictions, orphans, shape mismatches and bad values are errors naming files") {
  const Folders f = make_cases("errors");
  const auto labels = task::parse_evaluation_labels("1");
  fs::remove(f.pred / "c.nii.gz");
  std::string e = error_of([&] { task::evaluate_folder(f.pred, f.ref, labels, quiet_options()); });
  CHECK(contains(e, "1 of 3 reference case(s) have no prediction"));
  CHECK(contains(e, "(c)"));
  auto chill = quiet_options();
  chill.allow_missing_predictions = true;
  CHECK(task::evaluate_folder(f.pred, f.ref, labels, chill).cases.size() == 2);

  write_labels(f.pred / "z.nii.gz", std::vector<double>(10, 0));
  e = error_of([&] { task::evaluate_folder(f.pred, f.ref, labels, chill); });
  CHECK(contains(e, (f.pred / "z.nii.gz").string()));
  CHECK(contains(e, "has no reference"));
  fs::remove(f.pred / "z.nii.gz");

  write_labels(f.pred / "c.nii.gz", std::vector<double>(10, 0), io::NiftiType::u8, {2, 5, 1});
  e = error_of([&] { task::evaluate_folder(f.pred, f.ref, labels, quiet_options()); });
  CHECK(contains(e, (f.pred / "c.nii.gz").string()));
  CHECK(contains(e, (f.ref / "c.nii.gz").string()));
  CHECK(contains(e, "shape"));

  write_labels(f.pred / "c.nii.gz", std::vector<double>(10, 0));
  write_labels(f.ref / "b.nii.gz", {300, 0, 0, 0, 0, 0, 0, 0, 0, 0}, io::NiftiType::i16);
  e = error_of([&] { task::evaluate_folder(f.pred, f.ref, labels, quiet_options()); });
  CHECK(contains(e, (f.ref / "b.nii.gz").string()));
  CHECK(contains(e, "300"));

  CHECK(contains(error_of([&] { task::evaluate_folder(f.pred / "nope", f.ref, labels, quiet_options()); }),
                 "prediction folder"));
  const fs::path empty = fresh_dir("empty");
  CHECK(
      contains(error_of([&] { task::evaluate_folder(empty, empty, labels, quiet_options()); }), "no case to evaluate"));
}

TEST_CASE("pseudo Dice: confusion counts summed over batches, flattened for processes, NaN for an absent class") {
  task::ConfusionCounts counts(4);
  // Batch 1: classes 0 1 1 2 predicted as 0 1 2 2; batch 2: 0 1 255 (ignored) predicted as 1 1 0.
  counts.add(Tensor::from_doubles({0, 1, 2, 2}, Shape{1, 4}, DType::i64),
             Tensor::from_doubles({0, 1, 1, 2}, Shape{1, 4}, DType::u8));
  counts.add(Tensor::from_doubles({1, 1, 0}, Shape{3}, DType::i64), Tensor::from_doubles({0, 1, 255}, Shape{3}, DType::u8));
  CHECK(counts.tp == std::vector<double>{1, 2, 1, 0});
  CHECK(counts.fp == std::vector<double>{1, 1, 1, 0});
  CHECK(counts.fn == std::vector<double>{1, 1, 0, 0});
  const std::vector<double> dice = counts.foreground_dice();
  REQUIRE(dice.size() == 3);
  CHECK(dice[0] == doctest::Approx(4.0 / 6.0));  // class 1: 2·2 / (4 + 1 + 1)
  CHECK(dice[1] == doctest::Approx(2.0 / 3.0));  // class 2: 2·1 / (2 + 1 + 0)
  CHECK(std::isnan(dice[2]));                    // class 3: absent from both
  task::ConfusionCounts copy(4);
  copy.set_flat(counts.flat());
  CHECK(copy.foreground_dice()[0] == dice[0]);
  CHECK_THROWS_WITH_AS(copy.set_flat({1, 2}), doctest::Contains("2 counts for 4 classes"), Error);
  CHECK_THROWS_WITH_AS(counts.add(Tensor::from_doubles({5}, Shape{1}, DType::i64), Tensor::from_doubles({0}, Shape{1}, DType::u8)),
                       doctest::Contains("predicted class 5 outside [0, 4)"), Error);
}
