#include "tlk/data/phantom_dataset.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <exception>
#include <set>

#include "tlk/tensor/error.h"

namespace tlk::data {

namespace fs = std::filesystem;

DatasetJson phantom_dataset_json(const PhantomDomainOptions& options) {
  DatasetJson d;
  d.name = options.name;
  d.channel_names = {"CT"};
  d.num_training = options.cases;
  if (options.labels == PhantomLabelSet::amos) {
    // AMOS22's own label names and values.
    static const char* const kNames[] = {
        "spleen",   "right kidney", "left kidney",    "gallbladder", "esophagus",           "liver",
        "stomach",  "aorta",        "postcava",       "pancreas",    "right adrenal gland", "left adrenal gland",
        "duodenum", "bladder",      "prostate/uterus"};
    d.labels.push_back({"background", 0});
    for (int v = 1; v <= 15; ++v) d.labels.push_back({kNames[v - 1], v});
  } else {
    d.labels = {{"background", 0}, {"kidney", 1}, {"tumor", 2}};
  }
  return d;
}

namespace {

// NIfTI-1's quaternion (b, c, d) of a proper rotation matrix (nifti_mat44_to_quatern's branches).
std::array<double, 3> quaternion(const std::array<std::array<double, 3>, 3>& r) {
  double a = r[0][0] + r[1][1] + r[2][2] + 1, b = 0, c = 0, d = 0;
  if (a > 0.5) {
    a = 0.5 * std::sqrt(a);
    b = 0.25 * (r[2][1] - r[1][2]) / a;
    c = 0.25 * (r[0][2] - r[2][0]) / a;
    d = 0.25 * (r[1][0] - r[0][1]) / a;
  } else {
    const double xd = 1 + r[0][0] - (r[1][1] + r[2][2]), yd = 1 + r[1][1] - (r[0][0] + r[2][2]),
                 zd = 1 + r[2][2] - (r[0][0] + r[1][1]);
    if (xd > 1) {
      b = 0.5 * std::sqrt(xd);
      c = 0.25 * (r[0][1] + r[1][0]) / b;
      d = 0.25 * (r[0][2] + r[2][0]) / b;
      a = 0.25 * (r[2][1] - r[1][2]) / b;
    } else if (yd > 1) {
      c = 0.5 * std::sqrt(yd);
      b = 0.25 * (r[0][1] + r[1][0]) / c;
      d = 0.25 * (r[1][2] + r[2][1]) / c;
      a = 0.25 * (r[0][2] - r[2][0]) / c;
    } else {
      d = 0.5 * std::sqrt(zd);
      b = 0.25 * (r[0][2] + r[2][0]) / d;
      c = 0.25 * (r[1][2] + r[2][1]) / d;
      a = 0.25 * (r[1][0] - r[0][1]) / d;
    }
    if (a < 0) b = -b, c = -c, d = -d;
  }
  return {b, c, d};
}

// The .nii.gz files under `dir` that are not in `expected`.
std::vector<std::string> foreign_files(const fs::path& dir, const std::set<std::string>& expected) {
  std::vector<std::string> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 7 && name.ends_with(".nii.gz") && !expected.contains(name)) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

PhantomHeader phantom_nifti_header(const PhantomGrid& grid, const std::string& code) {
  check(code.size() == 3, "phantom_nifti_header: orientation '{}' must be three axis codes such as \"LPS\"", code);
  PhantomHeader h;
  Orientation& o = h.orientation;
  std::array<bool, 3> used{};
  for (std::size_t f = 0; f < 3; ++f) {
    static const std::string kPositive = "RAS", kNegative = "LPI";
    const char ch = static_cast<char>(std::toupper(static_cast<unsigned char>(code[f])));
    const auto pos = kPositive.find(ch), neg = kNegative.find(ch);
    check(pos != std::string::npos || neg != std::string::npos,
          "phantom_nifti_header: orientation '{}' has '{}', expected one of R L A P S I", code, code[f]);
    const int w = static_cast<int>(pos != std::string::npos ? pos : neg);
    check(!used[static_cast<std::size_t>(w)], "phantom_nifti_header: orientation '{}' names one world axis twice",
          code);
    used[static_cast<std::size_t>(w)] = true;
    o.world[f] = w;
    o.flipped[f] = neg != std::string::npos;
  }
  // Canonical count, spacing and voxel-0 position per world axis (x, y, z); the grid holds (z, y, x).
  const auto n = [&](int w) { return grid.shape[static_cast<std::size_t>(2 - w)]; };
  const auto s = [&](int w) { return grid.spacing[static_cast<std::size_t>(2 - w)]; };
  const auto origin = [&](int w) { return grid.origin[static_cast<std::size_t>(2 - w)]; };
  io::NiftiImage& im = h.header;
  im.dims.assign(3, 0);
  std::array<std::array<double, 3>, 3> rot{};
  for (int f = 0; f < 3; ++f) {
    const int w = o.world[static_cast<std::size_t>(f)];
    const bool flip = o.flipped[static_cast<std::size_t>(f)];
    im.dims[static_cast<std::size_t>(f)] = n(w);
    im.spacing[static_cast<std::size_t>(f)] = s(w);
    rot[static_cast<std::size_t>(w)][static_cast<std::size_t>(f)] = flip ? -1.0 : 1.0;
    // File index p along f is canonical index (n - 1 - p) when flipped: world = origin + (n - 1 - p) s.
    im.srow[static_cast<std::size_t>(w)][static_cast<std::size_t>(f)] = (flip ? -1.0 : 1.0) * s(w);
    im.srow[static_cast<std::size_t>(w)][3] = origin(w) + (flip ? static_cast<double>(n(w) - 1) * s(w) : 0.0);
  }
  o.file_shape = {im.dims[2], im.dims[1], im.dims[0]};
  // The qform: an improper permutation (det -1) is stored as qfac = -1 with the third column negated.
  const double det = rot[0][0] * (rot[1][1] * rot[2][2] - rot[1][2] * rot[2][1]) -
                     rot[0][1] * (rot[1][0] * rot[2][2] - rot[1][2] * rot[2][0]) +
                     rot[0][2] * (rot[1][0] * rot[2][1] - rot[1][1] * rot[2][0]);
  im.qfac = det < 0 ? -1.0 : 1.0;
  if (det < 0)
    for (auto& row : rot) row[2] = -row[2];
  const auto q = quaternion(rot);
  im.quatern = {q[0], q[1], q[2], im.srow[0][3], im.srow[1][3], im.srow[2][3]};
  im.qform_code = 1;
  im.sform_code = 1;
  im.xyzt_units = 2;
  im.description = "TLK phantom";
  return h;
}

void write_phantom_dataset(const fs::path& dir, const PhantomDomainOptions& options, std::uint64_t seed,
                           const PhantomWriteOptions& write) {
  check(options.cases >= 0 && options.test_cases >= 0 && options.cases + options.test_cases > 0,
        "write_phantom_dataset: '{}' asks for {} training and {} test cases; expected at least one", options.name,
        options.cases, options.test_cases);
  const PhantomHeader header = phantom_nifti_header(options.grid(), options.orientation);
  const int total = options.cases + options.test_cases;
  // Refuse to mix with other cases already there (they would join the dataset); rewriting is fine.
  std::set<std::string> images_tr, labels_tr, images_ts, labels_ts;
  for (int c = 0; c < total; ++c) {
    const std::string id = phantom_case_id(options, c);
    (c < options.cases ? images_tr : images_ts).insert(image_file_name(id, 0));
    if (c >= options.cases || write.write_labels) (c < options.cases ? labels_tr : labels_ts).insert(id + ".nii.gz");
  }
  for (const auto& [sub, expected] : {std::pair{"imagesTr", &images_tr}, std::pair{"labelsTr", &labels_tr},
                                      std::pair{"imagesTs", &images_ts}, std::pair{"labelsTs", &labels_ts}}) {
    const auto extra = foreign_files(dir / sub, *expected);
    if (!extra.empty())
      fail("write_phantom_dataset: {} already holds {} other file(s) ({}...); write into a new folder",
           (dir / sub).string(), extra.size(), extra.front());
  }
  fs::create_directories(dir / "imagesTr");
  if (write.write_labels) fs::create_directories(dir / "labelsTr");
  if (options.test_cases > 0) {
    fs::create_directories(dir / "imagesTs");
    fs::create_directories(dir / "labelsTs");
  }
  write_dataset_json(dir, phantom_dataset_json(options));

  // Note [Phantom parallelism]: cases run in parallel (an inner OpenMP loop then runs on its own thread);
  // every random draw depends only on (seed, index), so the files do not depend on the schedule.
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(total));
#pragma omp parallel for schedule(dynamic, 1) if (total > 1)
  for (int c = 0; c < total; ++c) {
    try {
      const PhantomCase pc = generate_phantom_case(options, seed, c);
      const bool train = c < options.cases;
      io::NiftiImage im = header.header;
      im.data = from_canonical(pc.image.to(DType::i32), header.orientation);
      im.stored_type = io::NiftiType::i16;
      io::write_nifti(dir / (train ? "imagesTr" : "imagesTs") / image_file_name(pc.id, 0), im);
      if (!train || write.write_labels) {
        im.data = from_canonical(pc.labels, header.orientation);
        im.stored_type = io::NiftiType::u8;
        io::write_nifti(dir / (train ? "labelsTr" : "labelsTs") / (pc.id + ".nii.gz"), im);
      }
    } catch (...) {
      errors[static_cast<std::size_t>(c)] = std::current_exception();
    }
  }
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace tlk::data
