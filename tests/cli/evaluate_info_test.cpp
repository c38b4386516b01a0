// `tlk evaluate` and `tlk info`, run as a user runs them.
#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "run_tlk.h"

using namespace tlk;
namespace fs = std::filesystem;

namespace {

using Run = tlk::testing::TlkRun;
using tlk::testing::run_tlk;

fs::path scratch_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / "tlk-evaluate-info-cli-test" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

using tlk::testing::count_lines;
bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A label map [1, 2, 5] with spacing 1 x 2 x 3 mm.
void write_labels(const fs::path& path, const std::vector<double>& values) {
  io::NiftiImage im;
  im.data = Tensor::from_doubles(values, {1, 2, 5}, DType::u8);
  im.dims = {5, 2, 1};
  im.spacing = {1.0, 2.0, 3.0};
  im.stored_type = io::NiftiType::u8;
  im.qform_code = 1;
  io::write_nifti(path, im);
}

// Prediction and reference folders with two cases (Dice of label 1: 0.5 and 1; label 2: 2/3 and NaN).
fs::path make_folders(const std::string& name) {
  const fs::path root = scratch_dir(name);
  fs::create_directories(root / "pred");
  fs::create_directories(root / "ref");
  write_labels(root / "pred" / "case_a.nii.gz", {0, 1, 1, 0, 0, 2, 1, 1, 0, 0});
  write_labels(root / "ref" / "case_a.nii.gz", {0, 1, 1, 1, 1, 2, 2, 0, 0, 0});
  write_labels(root / "pred" / "case_b.nii.gz", {1, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  write_labels(root / "ref" / "case_b.nii.gz", {1, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  return root;
}

void check_one_error_line(const Run& r, const std::string& must_name) {
  CHECK(r.status == 1);
  CHECK(count_lines(r.err) == 1);
  CHECK(r.err.rfind("tlk: error: ", 0) == 0);
  CHECK_MESSAGE(contains(r.err, must_name), r.err);
}

}  // namespace

TEST_CASE("tlk evaluate: table, CSV and JSON for known Dice") {
  const fs::path root = make_folders("evaluate");
  const std::string dirs = "--pred " + (root / "pred").string() + " --ref " + (root / "ref").string();
  Run r = run_tlk("evaluate " + dirs + " --labels 1,2,1+2 --out " + (root / "results").string() + "/");
  CHECK(r.status == 0);
  CHECK(contains(r.out, "Dice 1+2"));
  CHECK(contains(r.out, "case_a"));
  CHECK(contains(r.out, "0.5000"));
  CHECK(contains(r.out, "0.6667"));
  CHECK(contains(r.out, "mean (2 cases)"));
  CHECK(contains(r.out, "0.7500"));  // label 1: (0.5 + 1) / 2
  CHECK(contains(r.out, "foreground mean Dice:"));
  CHECK(fs::exists(root / "results" / "summary.csv"));
  CHECK(fs::exists(root / "results" / "summary.json"));
  CHECK(contains(read_text(root / "results" / "summary.csv"), "case_b,2,nan,nan"));

  // Default output beside the predictions; --quiet drops per-case rows; labels found automatically.
  r = run_tlk("evaluate " + dirs + " --quiet");
  CHECK(r.status == 0);
  CHECK_FALSE(contains(r.out, "case_a"));
  CHECK(contains(r.out, "Dice 2"));
  CHECK(r.err.empty());
  CHECK(fs::exists(root / "pred" / "summary.json"));
  // A prefix with an extension writes PREFIX.csv and PREFIX.json.
  r = run_tlk("evaluate " + dirs + " --quiet --out " + (root / "scores.json").string());
  CHECK(r.status == 0);
  CHECK(fs::exists(root / "scores.csv"));
  CHECK(fs::exists(root / "scores.json"));

  r = run_tlk("evaluate --help");
  CHECK(r.status == 0);
  CHECK(contains(r.out, "Examples:"));
}

TEST_CASE("tlk evaluate: many cases are condensed in the table, not in the CSV") {
  const fs::path root = scratch_dir("evaluate-many");
  for (const char* sub : {"pred", "ref"}) fs::create_directories(root / sub);
  for (int i = 0; i < 22; ++i) {
    const std::string name = fmt::format("case_{:03d}.nii.gz", i);
    write_labels(root / "pred" / name, {1, 1, 0, 0, 0, 0, 0, 0, 0, 0});
    write_labels(root / "ref" / name, {1, 0, 0, 0, 0, 0, 0, 0, 0, 0});  // Dice 2/3
  }
  const Run r = run_tlk("evaluate --pred " + (root / "pred").string() + " --ref " + (root / "ref").string());
  CHECK(r.status == 0);
  CHECK(contains(r.out, "case_009"));
  CHECK_FALSE(contains(r.out, "case_010"));
  CHECK(contains(r.out, "(7 more cases in the CSV)"));
  CHECK(contains(r.out, "case_017"));
  CHECK(contains(r.out, "case_021"));
  CHECK(contains(r.out, "mean (22 cases)    0.6667"));
  CHECK(count_lines(read_text(root / "pred" / "summary.csv")) == 23);
}

TEST_CASE("tlk evaluate: bad input gives one error line") {
  const fs::path root = make_folders("evaluate-errors");
  const std::string pred = (root / "pred").string(), ref = (root / "ref").string();
  check_one_error_line(run_tlk("evaluate --pred " + pred), "--ref is required");
  check_one_error_line(run_tlk("evaluate --pred " + pred + " --ref " + ref + " --labels 1,x"), "'x' is not a label");
  check_one_error_line(run_tlk("evaluate --pred " + pred + "/nope --ref " + ref), pred + "/nope");
  check_one_error_line(run_tlk("evaluate --pred " + pred + " --ref " + ref + " --bogus"), "--bogus");
  write_labels(root / "ref" / "case_c.nii.gz", std::vector<double>(10, 0));
  check_one_error_line(run_tlk("evaluate --pred " + pred + " --ref " + ref), "have no prediction");
  std::ofstream(root / "pred" / "case_c.nii.gz") << "not a nifti file";
  check_one_error_line(run_tlk("evaluate --quiet --pred " + pred + " --ref " + ref), pred + "/case_c.nii.gz");
}

TEST_CASE("tlk info: NIfTI header and label counts") {
  const fs::path root = scratch_dir("info-nifti");
  write_labels(root / "seg.nii.gz", {0, 1, 1, 1, 1, 2, 2, 0, 0, 0});
  const Run r = run_tlk("info " + (root / "seg.nii.gz").string());
  CHECK(r.status == 0);
  CHECK(contains(r.out, "NIfTI-1, gzip-compressed"));
  CHECK(contains(r.out, "5 x 2 x 1"));
  CHECK(contains(r.out, "uint8"));
  CHECK(contains(r.out, "1 x 2 x 3 mm"));
  CHECK(contains(r.out, "qform_code:   1"));
  CHECK(contains(r.out, "affine:"));
  CHECK(contains(r.out, "orientation:"));
  CHECK(contains(r.out, "min 0, max 2"));
  CHECK(contains(r.out, "3 distinct values"));
  CHECK(contains(r.out, "1:            4 voxels"));  // 4 voxels of 6 mm³
  CHECK(contains(r.out, "0.0 ml"));

  // A scaled float volume with many values: range and mean, no label list.
  io::NiftiImage ct;
  std::vector<double> v(100);
  for (int i = 0; i < 100; ++i) v[static_cast<std::size_t>(i)] = i;
  ct.data = Tensor::from_doubles(v, {4, 5, 5}, DType::f32);
  ct.dims = {5, 5, 4};
  ct.spacing = {0.8, 0.8, 2.5};
  ct.scl_slope = 2;
  ct.scl_inter = -1024;
  io::write_nifti(root / "ct.nii", ct);
  const Run c = run_tlk("info " + (root / "ct.nii").string());
  CHECK(c.status == 0);
  CHECK(contains(c.out, "format:       NIfTI-1\n"));
  CHECK(contains(c.out, "float32"));
  CHECK(contains(c.out, "value = 2 * stored - 1024"));
  CHECK(contains(c.out, "min -1024, max -826, mean -925 (scaled)"));
  CHECK_FALSE(contains(c.out, "labels:"));

  const fs::path shared = testing::shared_dir();
  if (shared.empty()) {
    MESSAGE("../shared is absent: skipping tlk info on a KiTS19 mask");
    return;
  }
  const Run k = run_tlk("info " + (shared / "data/kits19-masks/case_00015/segmentation.nii.gz").string());
  CHECK(k.status == 0);
  CHECK(contains(k.out, "uint16"));
  CHECK(contains(k.out, "271289 voxels"));  // kidney voxels as in manifest.csv
  CHECK(contains(k.out, "404.6 ml"));
  CHECK(contains(k.out, "IPL"));
}

TEST_CASE("tlk info: checkpoints and other HDF5 files") {
  const fs::path root = scratch_dir("info-hdf5");
  task::Checkpoint c;
  c.model = {{"conv.weight", Tensor::zeros({2, 1, 3, 3, 3})}, {"conv.bias", Tensor::zeros({2})}};
  c.optimizer = {{"step", Tensor::zeros({1}, TensorOptions{DType::i64})}};
  c.epoch = 7;
  c.iteration = 1234;
  c.metadata["model"] = "unet";
  c.metadata["model.num_classes"] = "3";
  task::save_checkpoint(root / "ckpt.h5", c);
  Run r = run_tlk("info " + (root / "ckpt.h5").string());
  CHECK(r.status == 0);
  CHECK(contains(r.out, "TLK checkpoint"));
  CHECK(contains(r.out, "model:        unet"));
  CHECK(contains(r.out, "epoch:        7"));
  CHECK(contains(r.out, "iteration:    1234"));
  CHECK(contains(r.out, "model.num_classes = 3"));
  CHECK(contains(r.out, "model tensors: 2, 56 values"));
  CHECK(contains(r.out, "conv.weight"));
  CHECK(contains(r.out, "[2, 1, 3, 3, 3]"));
  CHECK(contains(r.out, "optimizer tensors: 1, 1 values"));

  {
    auto f = io::Hdf5File::create(root / "plain.h5");
    f.write("images/train", Tensor::zeros({4, 16, 16}));
    f.set_attribute("source", "usps");
  }
  r = run_tlk("info " + (root / "plain.h5").string());
  CHECK(r.status == 0);
  CHECK(contains(r.out, "datasets: 1"));
  CHECK(contains(r.out, "images/train"));
  CHECK(contains(r.out, "[4, 16, 16]"));
  CHECK(contains(r.out, "source = usps"));
}

TEST_CASE("tlk info: missing, unknown and corrupt files give one error line naming the file") {
  const fs::path root = scratch_dir("info-errors");
  check_one_error_line(run_tlk("info " + (root / "missing.nii.gz").string()), (root / "missing.nii.gz").string());
  std::ofstream(root / "notes.txt") << "hello";
  check_one_error_line(run_tlk("info " + (root / "notes.txt").string()), "notes.txt: unknown file type");
  std::ofstream(root / "broken.nii.gz") << "garbage that is not gzip or NIfTI";
  check_one_error_line(run_tlk("info " + (root / "broken.nii.gz").string()), (root / "broken.nii.gz").string());
  std::ofstream(root / "broken.h5") << "not HDF5 at all";
  check_one_error_line(run_tlk("info " + (root / "broken.h5").string()), (root / "broken.h5").string());
  check_one_error_line(run_tlk("info"), "expected one FILE");
}
