#include "tlk/data/preprocessed_case.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "tlk/io/hdf5_file.h"
#include "tlk/tensor/error.h"

namespace tlk::data {

using nlohmann::json;

std::string CaseGeometry::to_json() const {
  json j;
  j["orientation_world"] = orientation.world;
  j["orientation_flipped"] = orientation.flipped;
  j["file_shape"] = orientation.file_shape;
  j["orientation_code"] = orientation.code();
  j["canonical_shape"] = canonical_shape;
  j["crop_begin"] = crop.begin;
  j["crop_end"] = crop.end;
  j["original_spacing"] = original_spacing;
  j["spacing"] = spacing;
  return j.dump();
}

CaseGeometry CaseGeometry::from_json(const std::string& text, const std::string& source) {
  CaseGeometry g;
  try {
    const json j = json::parse(text);
    g.orientation.world = j.at("orientation_world").get<std::array<int, 3>>();
    g.orientation.flipped = j.at("orientation_flipped").get<std::array<bool, 3>>();
    g.orientation.file_shape = j.at("file_shape").get<std::array<std::int64_t, 3>>();
    g.canonical_shape = j.at("canonical_shape").get<std::array<std::int64_t, 3>>();
    g.crop.begin = j.at("crop_begin").get<std::array<std::int64_t, 3>>();
    g.crop.end = j.at("crop_end").get<std::array<std::int64_t, 3>>();
    g.original_spacing = j.at("original_spacing").get<std::array<double, 3>>();
    g.spacing = j.at("spacing").get<std::array<double, 3>>();
  } catch (const json::exception& e) {
    fail("{}: malformed case geometry: {}", source, e.what());
  }
  return g;
}

void save_preprocessed_case(const std::filesystem::path& dir, const PreprocessedCase& c) {
  io::write_atomically(dir / (c.id + ".h5"), [&](const std::filesystem::path& tmp) {
    io::Hdf5File f = io::Hdf5File::create(tmp);
    f.set_attribute("tlk.case_id", c.id);
    f.set_attribute("tlk.geometry", c.geometry.to_json());
    f.write("image", c.image);
    if (c.labels.defined()) f.write("labels", c.labels);
    for (const auto& [label, coords] : c.class_locations) f.write(fmt::format("class_locations/{}", label), coords);
    f.flush();
  });
}

PreprocessedCase load_preprocessed_case(const std::filesystem::path& file, bool read_labels) {
  io::Hdf5File f = io::Hdf5File::open(file);
  check(f.has_attribute("tlk.geometry") && f.has("image"), "{}: not a preprocessed TLK case (no image or geometry; "
        "write it with tlk preprocess)", file.string());
  PreprocessedCase c;
  c.id = f.has_attribute("tlk.case_id") ? f.attribute("tlk.case_id") : file.stem().string();
  c.geometry = CaseGeometry::from_json(f.attribute("tlk.geometry"), file.string());
  c.image = f.read("image");
  check(c.image.dtype() == DType::f32 && c.image.dim() == 4, "{}: image must be f32 [C, D, H, W], got {} {}",
        file.string(), dtype_name(c.image.dtype()), c.image.shape().str());
  if (!read_labels) return c;
  if (f.has("labels")) {
    c.labels = f.read("labels");
    check(c.labels.dtype() == DType::u8 && c.labels.dim() == 3 && c.labels.size(0) == c.image.size(1) &&
              c.labels.size(1) == c.image.size(2) && c.labels.size(2) == c.image.size(3),
          "{}: labels {} {} do not match the image {}", file.string(), dtype_name(c.labels.dtype()),
          c.labels.shape().str(), c.image.shape().str());
  }
  for (const std::string& name : f.datasets("class_locations")) {
    const std::string label = name.substr(name.find_last_of('/') + 1);
    c.class_locations[std::stoi(label)] = f.read("class_locations/" + label).to(DType::i32);
  }
  return c;
}

std::vector<std::filesystem::path> preprocessed_case_files(const std::filesystem::path& dir) {
  std::error_code ec;
  check(std::filesystem::is_directory(dir, ec), "{}: no such folder (expected the output of tlk preprocess)",
        dir.string());
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.is_regular_file() && entry.path().extension() == ".h5") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace tlk::data
