// `tlk info FILE`: what a NIfTI volume, a TLK checkpoint or another HDF5 file holds.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "args.h"
#include "cli.h"
#include "tlk/data/orientation.h"
#include "tlk/io/hdf5_file.h"
#include "tlk/io/nifti.h"
#include "tlk/task/checkpoint.h"
#include "tlk/tensor/error.h"

namespace tlk::cli {

namespace fs = std::filesystem;

namespace {

const char* kHelp = R"(tlk info - show what a NIfTI volume, a TLK checkpoint or an HDF5 file holds

Usage:
  tlk info FILE

For .nii / .nii.gz: the header (NIfTI version, dims, voxel type, spacing, scaling, qform/sform
codes, affine, orientation) and the values (range; voxel counts and volumes per label for
label maps). For a TLK checkpoint (.h5): the model and its options, epoch and iteration, and
every tensor with its shape, dtype and size. For another HDF5 file: its datasets and attributes.

Examples:
  tlk info case_00010/segmentation.nii.gz
  tlk info runs/kits/checkpoint_best.h5
)";

bool is_hdf5(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[8] = {};
  in.read(magic, 8);
  return in.gcount() == 8 && std::memcmp(magic, "\x89HDF\r\n\x1a\n", 8) == 0;
}

std::string type_name(io::NiftiType t) {
  switch (t) {
    case io::NiftiType::u8:
      return "uint8";
    case io::NiftiType::i16:
      return "int16";
    case io::NiftiType::i32:
      return "int32";
    case io::NiftiType::f32:
      return "float32";
    case io::NiftiType::f64:
      return "float64";
    case io::NiftiType::u16:
      return "uint16";
  }
  return "?";
}

std::string join(const std::vector<std::int64_t>& v, const char* sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + std::to_string(v[i]);
  return out;
}

// Value statistics of a volume: range and mean, and a count per value when the values are few
// whole numbers (a label map).
struct ValueStats {
  double min = 0, max = 0, mean = 0;
  bool whole = true;
  std::vector<std::pair<std::int64_t, std::int64_t>> counts;  // value, voxels (empty: too many values)
};

template <class T>
ValueStats stats_of(const T* p, std::int64_t n) {
  ValueStats s;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
  bool whole = true;
#pragma omp parallel for reduction(min : lo) reduction(max : hi) reduction(+ : sum) reduction(&& : whole)
  for (std::int64_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(p[i]);
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    sum += v;
    whole = whole && v == std::floor(v);
  }
  s.min = lo, s.max = hi, s.mean = n ? sum / static_cast<double>(n) : 0, s.whole = whole;
  if (!whole || n == 0 || hi - lo > 65535) return s;
  std::vector<std::int64_t> hist(static_cast<std::size_t>(hi - lo) + 1, 0);
  for (std::int64_t i = 0; i < n; ++i) ++hist[static_cast<std::size_t>(static_cast<double>(p[i]) - lo)];
  for (std::size_t k = 0; k < hist.size(); ++k)
    if (hist[k]) s.counts.emplace_back(static_cast<std::int64_t>(lo) + static_cast<std::int64_t>(k), hist[k]);
  if (s.counts.size() > 32) s.counts.clear();
  return s;
}

ValueStats stats_of(const Tensor& t) {
  const Tensor c = t.contiguous();
  switch (c.dtype()) {
    case DType::u8:
      return stats_of(c.data<std::uint8_t>(), c.numel());
    case DType::i32:
      return stats_of(c.data<std::int32_t>(), c.numel());
    case DType::f32:
      return stats_of(c.data<float>(), c.numel());
    default:
      return stats_of(c.to(DType::f64).data<double>(), c.numel());
  }
}

void print_nifti(const fs::path& path) {
  const io::NiftiImage im = io::read_nifti(path);
  const std::string name = path.filename().string();
  fmt::print("file:         {}\n", path.string());
  fmt::print("format:       NIfTI-{}{}\n", im.version, name.ends_with(".gz") ? ", gzip-compressed" : "");
  fmt::print("dims:         {} (NIfTI order i, j, k); tensor {}\n", join(im.dims, " x "), im.data.shape().str());
  fmt::print("voxel type:   {} (held as {})\n", type_name(im.stored_type), dtype_name(im.data.dtype()));
  const int unit = im.xyzt_units & 7;
  const char* unit_name = unit == 1 ? "m" : unit == 2 ? "mm" : unit == 3 ? "um" : "(unknown units)";
  fmt::print("spacing:      {:g} x {:g} x {:g} {}\n", im.spacing[0], im.spacing[1], im.spacing[2], unit_name);
  if (im.scl_slope == 0.0 || (im.scl_slope == 1.0 && im.scl_inter == 0.0))
    fmt::print("scaling:      none (scl_slope {:g}, scl_inter {:g})\n", im.scl_slope, im.scl_inter);
  else
    fmt::print("scaling:      value = {:g} * stored {} {:g}\n", im.scl_slope, im.scl_inter < 0 ? '-' : '+',
               std::abs(im.scl_inter));
  fmt::print("qform_code:   {}   sform_code: {}\n", im.qform_code, im.sform_code);
  const auto affine = im.affine();
  for (int r = 0; r < 3; ++r) {
    const auto& row = affine[static_cast<std::size_t>(r)];
    fmt::print("{:<14}[{:>10.4f} {:>10.4f} {:>10.4f} {:>10.4f}]\n", r == 0 ? "affine:" : "", row[0], row[1], row[2],
               row[3]);
  }
  try {
    fmt::print("orientation:  {}\n", data::describe(data::orientation_of(im)));
  } catch (const Error& e) {
    fmt::print("orientation:  unknown ({})\n", e.what());
  }
  if (!im.description.empty()) fmt::print("description:  {}\n", im.description);

  const ValueStats s = stats_of(im.data);
  const bool scaled = im.scl_slope != 0.0 && !(im.scl_slope == 1.0 && im.scl_inter == 0.0);
  const auto real = [&](double v) { return scaled ? im.scl_slope * v + im.scl_inter : v; };
  const double lo = std::min(real(s.min), real(s.max)), hi = std::max(real(s.min), real(s.max));
  fmt::print("values:       min {}, max {}, mean {:.4g}{}\n", lo, hi, real(s.mean), scaled ? " (scaled)" : "");
  if (!s.counts.empty() && !scaled) {
    const double to_mm = unit == 1 ? 1000.0 : unit == 3 ? 0.001 : 1.0;
    double ml_per_voxel = 1e-3;
    for (int i = 0; i < 3; ++i) ml_per_voxel *= std::abs(im.spacing[static_cast<std::size_t>(i)]) * to_mm;
    fmt::print("labels:       {} distinct values\n", s.counts.size());
    for (const auto& [value, count] : s.counts)
      fmt::print("  {:>6}: {:>12} voxels {:>12.1f} ml\n", value, count, static_cast<double>(count) * ml_per_voxel);
  }
}

void print_tensors(const char* group, const std::vector<nn::NamedTensor>& tensors) {
  std::int64_t total = 0;
  std::size_t width = 4;
  for (const auto& [name, t] : tensors) total += t.numel(), width = std::max(width, name.size());
  fmt::print("{} tensors: {}, {} values\n", group, tensors.size(), total);
  for (const auto& [name, t] : tensors)
    fmt::print("  {:<{}}  {:<20} {:<4} {:>10}\n", name, width, t.shape().str(), dtype_name(t.dtype()), t.numel());
}

void print_checkpoint(const fs::path& path) {
  const task::Checkpoint c = task::load_checkpoint(path);
  fmt::print("file:         {}\n", path.string());
  fmt::print("format:       TLK checkpoint (HDF5)\n");
  auto model = c.metadata.find("model");
  fmt::print("model:        {}\n", model == c.metadata.end() ? "(not recorded)" : model->second);
  fmt::print("epoch:        {}\n", c.epoch);
  fmt::print("iteration:    {}\n", c.iteration);
  fmt::print("schedule step: {}\n", c.schedule_step);
  if (!c.metadata.empty()) fmt::print("metadata:\n");
  for (const auto& [key, value] : c.metadata) fmt::print("  {} = {}\n", key, value);
  print_tensors("model", c.model);
  print_tensors("optimizer", c.optimizer);
}

void print_hdf5(const fs::path& path) {
  const io::Hdf5File f = io::Hdf5File::open(path);
  if (f.has_attribute("format") && f.attribute("format").rfind("tlk-checkpoint", 0) == 0) return print_checkpoint(path);
  fmt::print("file:         {}\n", path.string());
  fmt::print("format:       HDF5\n");
  const auto attributes = f.attributes_with_prefix("");
  if (!attributes.empty()) fmt::print("attributes:\n");
  for (const auto& [key, value] : attributes) fmt::print("  {} = {}\n", key, value);
  const auto names = f.datasets("/");
  std::size_t width = 4;
  for (const auto& name : names) width = std::max(width, name.size());
  fmt::print("datasets: {}\n", names.size());
  for (const auto& name : names) {
    try {
      const Tensor t = f.read(name);
      fmt::print("  {:<{}}  {:<20} {:<4} {:>10}\n", name, width, t.shape().str(), dtype_name(t.dtype()), t.numel());
    } catch (const Error& e) {
      fmt::print("  {:<{}}  (unreadable: {})\n", name, width, e.what());
    }
  }
}

}  // namespace

int info(const std::vector<std::string>& args) {
  Args a("info", args, {});
  if (a.help()) {
    fmt::print("{}", kHelp);
    return 0;
  }
  check(a.positional().size() == 1, "info: expected one FILE, got {} (see tlk info --help)", a.positional().size());
  const fs::path path = a.positional()[0];
  check(fs::exists(path), "{}: no such file", path.string());
  check(fs::is_regular_file(path), "{}: not a file", path.string());
  const std::string name = path.filename().string();
  if (name.ends_with(".nii") || name.ends_with(".nii.gz")) {
    print_nifti(path);
  } else if (is_hdf5(path) || name.ends_with(".h5") || name.ends_with(".hdf5")) {
    print_hdf5(path);
  } else {
    fail("{}: unknown file type (expected a NIfTI .nii / .nii.gz or an HDF5 file)", path.string());
  }
  return 0;
}

}  // namespace tlk::cli
