#include "tlk/data/raw_dataset.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "tlk/io/hdf5_file.h"
#include "tlk/tensor/error.h"

namespace tlk::data {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A whole number 0..max written as text ("0", "12"), or -1.
int parse_index(const std::string& text, int max) {
  if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string::npos) return -1;
  const int v = std::stoi(text);
  return v <= max ? v : -1;
}

std::string type_name(const json& j) { return j.type_name(); }

// channel_names / modality: {"0": "CT", "1": "T2"} -> {"CT", "T2"}.
std::vector<std::string> read_channels(const json& j, const std::string& key, const std::string& file) {
  check(j.is_object() && !j.empty(), "{}: '{}' must be a non-empty object like {{\"0\": \"CT\"}}, got {}", file, key,
        j.dump());
  std::vector<std::string> names(j.size());
  std::vector<bool> seen(j.size(), false);
  for (const auto& [k, v] : j.items()) {
    const int index = parse_index(k, static_cast<int>(j.size()) - 1);
    check(index >= 0, "{}: '{}' has the key '{}', expected channel numbers 0..{}", file, key, k, j.size() - 1);
    check(v.is_string(), "{}: '{}' channel {} is a {}, expected a name like \"CT\"", file, key, k, type_name(v));
    check(!seen[static_cast<std::size_t>(index)], "{}: '{}' names channel {} twice", file, key, index);
    names[static_cast<std::size_t>(index)] = v.get<std::string>();
    seen[static_cast<std::size_t>(index)] = true;
  }
  return names;
}

std::vector<DatasetLabel> read_labels(const json& j, const std::string& file) {
  check(j.is_object() && !j.empty(), "{}: 'labels' must be a non-empty object like {{\"background\": 0, ...}}, got {}",
        file, j.dump());
  std::vector<DatasetLabel> labels;
  for (const auto& [k, v] : j.items()) {
    DatasetLabel label;
    if (v.is_number_integer()) {  // v2: name -> value
      label.name = k;
      const auto value = v.get<std::int64_t>();
      check(value >= 0 && value <= 255, "{}: label '{}' has the value {}, expected 0..255", file, k, value);
      label.value = static_cast<int>(value);
    } else if (v.is_string()) {  // v1: "value" -> name
      label.value = parse_index(k, 255);
      check(label.value >= 0, "{}: label key '{}' (v1 form \"value\": \"name\") is not a number 0..255", file, k);
      label.name = v.get<std::string>();
    } else if (v.is_array()) {
      fail("{}: label '{}' is the region {}; region labels are not supported (give each label one value)", file, k,
           v.dump());
    } else {
      fail("{}: label '{}' is a {}, expected a value 0..255 (v2) or a name (v1)", file, k, type_name(v));
    }
    labels.push_back(label);
  }
  std::sort(labels.begin(), labels.end(), [](const auto& a, const auto& b) { return a.value < b.value; });
  for (std::size_t i = 1; i < labels.size(); ++i)
    check(labels[i].value != labels[i - 1].value, "{}: labels '{}' and '{}' share the value {}", file,
          labels[i - 1].name, labels[i].name, labels[i].value);
  check(labels.front().value == 0, "{}: no background label with value 0 (labels start at {} '{}')", file,
        labels.front().value, labels.front().name);
  return labels;
}

json parse_json_file(const fs::path& file) {
  check(fs::exists(file), "{}: no such file (an nnUNet raw dataset needs a dataset.json)", file.string());
  std::ifstream in(file);
  check(in.good(), "{}: cannot open for reading", file.string());
  try {
    return json::parse(in);
  } catch (const json::parse_error& e) {
    fail("{}: malformed JSON: {}", file.string(), e.what());
  }
}

DatasetJson parse_dataset_json(const json& root, const std::string& file) {
  check(root.is_object(), "{}: expected a JSON object at the top, got a {}", file, type_name(root));
  DatasetJson d;
  if (root.contains("channel_names")) {
    d.format_version = 2;
    d.channel_names = read_channels(root["channel_names"], "channel_names", file);
  } else {
    check(root.contains("modality"), "{}: has neither 'channel_names' (nnUNet v2) nor 'modality' (v1)", file);
    d.format_version = 1;
    d.channel_names = read_channels(root["modality"], "modality", file);
  }
  check(root.contains("labels"), "{}: has no 'labels'", file);
  d.labels = read_labels(root["labels"], file);
  if (root.contains("name")) {
    check(root["name"].is_string(), "{}: 'name' is a {}, expected text", file, type_name(root["name"]));
    d.name = root["name"].get<std::string>();
  }
  if (root.contains("numTraining")) {
    const json& n = root["numTraining"];
    check(n.is_number_integer() && n.get<std::int64_t>() >= 0, "{}: 'numTraining' is {}, expected a whole number", file,
          n.dump());
    d.num_training = n.get<std::int64_t>();
  }
  if (root.contains("file_ending")) {
    const json& e = root["file_ending"];
    check(e.is_string() && e.get<std::string>().size() > 1 && e.get<std::string>()[0] == '.',
          "{}: 'file_ending' is {}, expected text like \".nii.gz\"", file, e.dump());
    d.file_ending = e.get<std::string>();
  }
  return d;
}

// The cases of one images/labels folder pair (imagesTr + labelsTr, imagesTs + labelsTs).
std::vector<RawCase> list_cases(const fs::path& images_dir, const fs::path& labels_dir, const DatasetJson& info) {
  const std::string& ending = info.file_ending;
  const int channels = static_cast<int>(info.channel_names.size());
  std::map<std::string, std::vector<fs::path>> found;
  for (const auto& entry : fs::directory_iterator(images_dir)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.' || !ends_with(name, ending) || !entry.is_regular_file()) continue;
    const std::string stem = name.substr(0, name.size() - ending.size());
    const int channel =
        stem.size() > 5 && stem[stem.size() - 5] == '_' ? parse_index(stem.substr(stem.size() - 4), 9999) : -1;
    check(channel >= 0, "{}: image file name is not <case>_<XXXX>{} (e.g. case_00010_0000{})", entry.path().string(),
          ending, ending);
    check(channel < channels, "{}: channel {} but dataset.json names {} channel(s)", entry.path().string(), channel,
          channels);
    auto& files = found[stem.substr(0, stem.size() - 5)];
    files.resize(static_cast<std::size_t>(channels));
    files[static_cast<std::size_t>(channel)] = entry.path();
  }
  std::vector<RawCase> cases;
  for (auto& [id, files] : found) {
    for (int c = 0; c < channels; ++c)
      check(!files[static_cast<std::size_t>(c)].empty(), "{}: case '{}' has no file for channel {} ('{}'): expected {}",
            images_dir.string(), id, c, info.channel_names[static_cast<std::size_t>(c)],
            (images_dir / image_file_name(id, c, ending)).string());
    cases.push_back(RawCase{id, files, std::nullopt});
  }
  if (!fs::is_directory(labels_dir)) return cases;
  for (const auto& entry : fs::directory_iterator(labels_dir)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.' || !ends_with(name, ending) || !entry.is_regular_file()) continue;
    const std::string id = name.substr(0, name.size() - ending.size());
    auto it = std::lower_bound(cases.begin(), cases.end(), id,
                               [](const RawCase& c, const std::string& v) { return c.id < v; });
    check(it != cases.end() && it->id == id, "{}: label file without images (no {} in {})", entry.path().string(),
          image_file_name(id, 0, ending), images_dir.string());
    it->label = entry.path();
  }
  return cases;
}

// nnUNet v2's explicit list: "dataset": {"case": {"images": ["imagesTr/case_0000.nii.gz"], "label": "..."}}.
std::vector<RawCase> explicit_cases(const json& list, const fs::path& dir, const DatasetJson& info,
                                    const std::string& file) {
  check(list.is_object(), "{}: 'dataset' must be an object of cases, got a {}", file, type_name(list));
  const auto resolve = [&](const json& p, const std::string& id) {
    check(p.is_string(), "{}: case '{}' lists a {}, expected a file name", file, id, type_name(p));
    fs::path path = p.get<std::string>();
    if (path.is_relative()) path = dir / path;
    check(fs::exists(path), "{}: case '{}' lists {}, which does not exist", file, id, path.string());
    return path;
  };
  std::vector<RawCase> cases;
  for (const auto& [id, entry] : list.items()) {
    check(entry.is_object() && entry.contains("images") && entry["images"].is_array(),
          "{}: case '{}' needs \"images\": [one file per channel]", file, id);
    RawCase c{id, {}, std::nullopt};
    for (const json& p : entry["images"]) c.images.push_back(resolve(p, id));
    check(c.images.size() == info.channel_names.size(),
          "{}: case '{}' lists {} image(s), expected {} (one per channel)", file, id, c.images.size(),
          info.channel_names.size());
    if (entry.contains("label")) c.label = resolve(entry["label"], id);
    cases.push_back(std::move(c));
  }
  std::sort(cases.begin(), cases.end(), [](const RawCase& a, const RawCase& b) { return a.id < b.id; });
  return cases;
}

}  // namespace

int DatasetJson::label_value(const std::string& name) const {
  std::string known;
  for (const auto& l : labels) {
    if (l.name == name) return l.value;
    known += fmt::format("{}{} ({})", known.empty() ? "" : ", ", l.name, l.value);
  }
  fail("dataset '{}': no label called '{}' (labels: {})", this->name, name, known);
}

std::string DatasetJson::label_name(int value) const {
  for (const auto& l : labels)
    if (l.value == value) return l.name;
  return std::to_string(value);
}

const RawCase& RawDataset::training_case(const std::string& id) const {
  for (const auto& c : training)
    if (c.id == id) return c;
  fail("{}: no training case '{}' ({} cases)", dir.string(), id, training.size());
}

DatasetJson read_dataset_json(const fs::path& file) { return parse_dataset_json(parse_json_file(file), file.string()); }

RawDataset open_raw_dataset(const fs::path& dir) {
  check(fs::is_directory(dir), "{}: no such dataset folder", dir.string());
  const fs::path file = dir / "dataset.json";
  const json root = parse_json_file(file);
  RawDataset ds;
  ds.dir = dir;
  ds.info = parse_dataset_json(root, file.string());
  if (root.contains("dataset")) {
    ds.training = explicit_cases(root["dataset"], dir, ds.info, file.string());
  } else {
    check(fs::is_directory(dir / "imagesTr"), "{}: no imagesTr folder (nnUNet raw layout: imagesTr/<case>_0000{})",
          dir.string(), ds.info.file_ending);
    ds.training = list_cases(dir / "imagesTr", dir / "labelsTr", ds.info);
  }
  check(ds.info.num_training < 0 || ds.info.num_training == static_cast<std::int64_t>(ds.training.size()),
        "{}: numTraining is {} but {} holds {} case(s) with file ending '{}'", file.string(), ds.info.num_training,
        root.contains("dataset") ? "the 'dataset' list" : (dir / "imagesTr").string(), ds.training.size(),
        ds.info.file_ending);
  if (fs::is_directory(dir / "imagesTs")) ds.test = list_cases(dir / "imagesTs", dir / "labelsTs", ds.info);
  return ds;
}

void write_dataset_json(const fs::path& dir, const DatasetJson& info) {
  const fs::path file = dir / "dataset.json";
  check(!info.channel_names.empty(), "write_dataset_json {}: no channel names", file.string());
  check(!info.labels.empty(), "write_dataset_json {}: no labels", file.string());
  check(!info.file_ending.empty() && info.file_ending[0] == '.',
        "write_dataset_json {}: file ending '{}' must start with '.'", file.string(), info.file_ending);
  nlohmann::ordered_json root;
  if (!info.name.empty()) root["name"] = info.name;
  for (std::size_t c = 0; c < info.channel_names.size(); ++c)
    root["channel_names"][std::to_string(c)] = info.channel_names[c];
  std::vector<DatasetLabel> labels = info.labels;
  std::sort(labels.begin(), labels.end(), [](const auto& a, const auto& b) { return a.value < b.value; });
  std::set<std::string> names;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    check(labels[i].value >= 0 && labels[i].value <= 255,
          "write_dataset_json {}: label '{}' has the value {}, expected 0..255", file.string(), labels[i].name,
          labels[i].value);
    check(i == 0 || labels[i].value != labels[i - 1].value, "write_dataset_json {}: two labels have the value {}",
          file.string(), labels[i].value);
    check(names.insert(labels[i].name).second, "write_dataset_json {}: two labels are called '{}'", file.string(),
          labels[i].name);
    root["labels"][labels[i].name] = labels[i].value;
  }
  check(labels.front().value == 0, "write_dataset_json {}: no background label with value 0", file.string());
  if (info.num_training >= 0) root["numTraining"] = info.num_training;
  root["file_ending"] = info.file_ending;
  const std::string text = root.dump(4) + "\n";
  fs::create_directories(dir);
  io::write_atomically(file, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    out.close();
    check(out.good(), "{}: could not write", tmp.string());
  });
}

std::string image_file_name(const std::string& id, int channel, const std::string& file_ending) {
  return fmt::format("{}_{:04d}{}", id, channel, file_ending);
}

}  // namespace tlk::data
