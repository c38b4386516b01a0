// The geometry pipeline on the real KiTS19 masks (../shared/data/kits19-masks). The manifest's
// shape, spacing, dtype and label counts are checked against the files in tests/io/nifti_test.cpp;
// here: orientation, the canonical round trip, writing a prediction back, and resampling.
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "test_util.h"
#include "tlk/data/orientation.h"
#include "tlk/data/resample.h"
#include "tlk/task/metrics.h"

using namespace tlk;
namespace fs = std::filesystem;

namespace {

struct Case {
  std::string name, axcodes;
  std::array<std::int64_t, 3> dims{};  // NIfTI order (i, j, k)
  std::array<double, 3> spacing{};     // NIfTI order
  std::array<std::int64_t, 3> counts{};
};

fs::path kits_root() {
  const fs::path shared = testing::shared_dir();
  return shared.empty() ? fs::path() : shared / "data" / "kits19-masks";
}

std::vector<Case> read_manifest(const fs::path& root) {
  std::ifstream in(root / "manifest.csv");
  std::string line;
  std::getline(in, line);
  std::vector<std::string> header;
  {
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) header.push_back(cell);
  }
  auto column = [&](const std::string& name) {
    const auto it = std::find(header.begin(), header.end(), name);
    REQUIRE_MESSAGE(it != header.end(), "manifest.csv has no column " << name);
    return static_cast<std::size_t>(it - header.begin());
  };
  const std::size_t c_case = column("case"), c_shape = column("shape"), c_spacing = column("spacing_mm"),
                    c_codes = column("axcodes"), c_bg = column("n_bg"), c_kidney = column("n_kidney"),
                    c_tumor = column("n_tumor");
  std::vector<Case> cases;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
    REQUIRE(f.size() == header.size());
    Case c;
    c.name = f[c_case];
    c.axcodes = f[c_codes];
    REQUIRE(std::sscanf(f[c_shape].c_str(), "%ldx%ldx%ld", &c.dims[0], &c.dims[1], &c.dims[2]) == 3);
    REQUIRE(std::sscanf(f[c_spacing].c_str(), "%lfx%lfx%lf", &c.spacing[0], &c.spacing[1], &c.spacing[2]) == 3);
    c.counts = {std::stoll(f[c_bg]), std::stoll(f[c_kidney]), std::stoll(f[c_tumor])};
    cases.push_back(c);
  }
  return cases;
}

bool identical(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.raw_data(), cb.raw_data(), static_cast<std::size_t>(ca.numel()) * element_size(ca.dtype())) ==
         0;
}

// Kidney Dice as KiTS19 scores it (label > 0: kidney and tumour), counted directly on u8 labels
// (task::dice converts whole volumes to double; this is its fast equivalent for these tests).
double kidney_dice(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const Tensor ua = a.to(DType::u8), ub = b.to(DType::u8);
  const std::uint8_t* p = ua.data<std::uint8_t>();
  const std::uint8_t* q = ub.data<std::uint8_t>();
  std::int64_t both = 0, in_a = 0, in_b = 0;
  for (std::int64_t i = 0; i < ua.numel(); ++i) {
    in_a += p[i] > 0;
    in_b += q[i] > 0;
    both += p[i] > 0 && q[i] > 0;
  }
  return 2.0 * static_cast<double>(both) / static_cast<double>(in_a + in_b);
}

// Kidney as KiTS19 scores it: label > 0 (kidney and tumour), as u8 0/1.
Tensor kidney(const Tensor& labels) {
  const Tensor l = labels.to(DType::u8);
  Tensor out = Tensor::empty(l.shape(), TensorOptions{DType::u8});
  const std::uint8_t* s = l.data<std::uint8_t>();
  std::uint8_t* d = out.data<std::uint8_t>();
  for (std::int64_t i = 0; i < l.numel(); ++i) d[i] = s[i] > 0;
  return out;
}

std::array<std::int64_t, 3> label_counts(const Tensor& labels) {
  const Tensor l = labels.to(DType::u8);
  const std::uint8_t* p = l.data<std::uint8_t>();
  std::array<std::int64_t, 3> n{};
  for (std::int64_t i = 0; i < l.numel(); ++i)
    if (p[i] < 3) ++n[p[i]];
  return n;
}

// Canonical labels -> `target` spacing (linear on one-hot, nearest along an anisotropic axis) -> back
// to the canonical shape the same way: what preprocessing and exporting a prediction do to a mask.
Tensor resampling_round_trip(const Tensor& labels, const std::array<double, 3>& spacing,
                             const std::array<double, 3>& target) {
  const std::array<std::int64_t, 3> shape{labels.shape()[0], labels.shape()[1], labels.shape()[2]};
  const Tensor coarse = data::resample_labels(labels, data::shape_for_spacing(shape, spacing, target), spacing, target);
  return data::resample_labels(coarse, shape, target, spacing);
}

}  // namespace

TEST_CASE("KiTS masks: every case is IPL, reaches canonical RAS+ and comes back bit for bit") {
  const fs::path root = kits_root();
  if (root.empty()) {
    MESSAGE("skipped: ../shared is absent");
    return;
  }
  const auto cases = read_manifest(root);
  CHECK(cases.size() == 10);
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const io::NiftiImage mask = io::read_nifti(root / c.name / "segmentation.nii.gz");
    const data::Orientation o = data::orientation_of(mask);
    CHECK(o.code() == c.axcodes);
    CHECK(o.file_shape == std::array<std::int64_t, 3>{c.dims[2], c.dims[1], c.dims[0]});
    const Tensor canonical = data::to_canonical(mask.data, o);
    // IPL: z <- i (slices), y <- j, x <- k.
    CHECK(canonical.shape() == Shape{c.dims[0], c.dims[1], c.dims[2]});
    const auto s = data::canonical_spacing(mask, o);
    for (std::size_t a = 0; a < 3; ++a) CHECK(s[a] == doctest::Approx(c.spacing[a]).epsilon(1e-3));
    const auto affine = data::canonical_affine(mask.affine(), o);
    for (std::size_t a = 0; a < 3; ++a) CHECK(affine[a][a] == doctest::Approx(s[2 - a]).epsilon(1e-3));
    CHECK(identical(data::from_canonical(canonical, o), mask.data));
    // Nothing lost (the exact round trip shows it for every case; counted once against the manifest).
    if (&c == &cases.front()) CHECK(label_counts(canonical) == c.counts);
  }
}

TEST_CASE("KiTS masks: a canonical prediction written with the file's header reads back identical") {
  const fs::path root = kits_root();
  if (root.empty()) {
    MESSAGE("skipped: ../shared is absent");
    return;
  }
  for (const char* name : {"case_00015", "case_00110"}) {  // uint16 and uint8
    CAPTURE(name);
    const io::NiftiImage mask = io::read_nifti(root / name / "segmentation.nii.gz");
    const data::Orientation o = data::orientation_of(mask);
    const Tensor canonical = data::to_canonical(mask.data, o).to(DType::u8);  // what a network predicts
    io::NiftiImage prediction = mask;
    prediction.data = data::from_canonical(canonical, o);
    prediction.stored_type = io::NiftiType::u8;
    const fs::path dir = fs::temp_directory_path() / "tlk-data-test";
    fs::create_directories(dir);
    const fs::path path = dir / (std::string(name) + "_prediction.nii.gz");
    io::write_nifti(path, prediction);
    const io::NiftiImage back = io::read_nifti(path);
    CHECK(back.affine() == mask.affine());
    CHECK(back.dims == mask.dims);
    CHECK(identical(back.data.to(DType::i32), mask.data.to(DType::i32)));
    if (std::string(name) == "case_00110") CHECK(task::dice(kidney(back.data), kidney(mask.data), 1) == 1.0);
    CHECK(identical(data::to_canonical(back.data, data::orientation_of(back)), canonical));
  }
}

TEST_CASE("KiTS masks: resampling to 1.5 mm and back keeps the kidney (one case)") {
  const fs::path root = kits_root();
  if (root.empty()) {
    MESSAGE("skipped: ../shared is absent");
    return;
  }
  const io::NiftiImage mask = io::read_nifti(root / "case_00110" / "segmentation.nii.gz");  // 5 mm slices
  const data::Orientation o = data::orientation_of(mask);
  const Tensor canonical = data::to_canonical(mask.data, o).to(DType::u8);
  const auto t0 = std::chrono::steady_clock::now();
  const Tensor back = resampling_round_trip(canonical, data::canonical_spacing(mask, o), {1.5, 1.5, 1.5});
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(back.shape() == canonical.shape());
  const double d = kidney_dice(back, canonical);
  MESSAGE("case_00110: kidney Dice after 1.5 mm and back " << d << " (" << ms << " ms)");
  CHECK(d == doctest::Approx(task::dice(kidney(back), kidney(canonical), 1)));  // the fast Dice is Dice
  CHECK(d > 0.975);                                                             // measured 0.983
}

TEST_SUITE("slow") {
  TEST_CASE("KiTS masks: resampling round trips to 1.5 mm and 3 mm keep the kidney (three cases)") {
    const fs::path root = kits_root();
    if (root.empty()) {
      MESSAGE("skipped: ../shared is absent");
      return;
    }
    // 5 mm slices with the largest tumour, the most slices, the finest in-plane spacing. All ten
    // measured once: Dice via 1.5 mm 0.981 to 0.993, via 3 mm 0.960 to 0.987.
    for (const Case& c : read_manifest(root)) {
      if (c.name != "case_00030" && c.name != "case_00060" && c.name != "case_00130") continue;
      CAPTURE(c.name);
      const io::NiftiImage mask = io::read_nifti(root / c.name / "segmentation.nii.gz");
      const data::Orientation o = data::orientation_of(mask);
      const Tensor canonical = data::to_canonical(mask.data, o).to(DType::u8);
      const auto spacing = data::canonical_spacing(mask, o);
      const double fine = kidney_dice(resampling_round_trip(canonical, spacing, {1.5, 1.5, 1.5}), canonical);
      const double coarse = kidney_dice(resampling_round_trip(canonical, spacing, {3.0, 3.0, 3.0}), canonical);
      MESSAGE(c.name << " (" << spacing[0] << " mm slices): kidney Dice via 1.5 mm " << fine << ", via 3 mm "
                     << coarse);
      CHECK(fine > 0.975);
      CHECK(coarse > 0.95);
    }
  }
}
