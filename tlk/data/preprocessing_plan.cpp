#include "tlk/data/preprocessing_plan.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tlk/data/label_map.h"
#include "tlk/io/hdf5_file.h"
#include "tlk/tensor/error.h"

namespace tlk::data {

using nlohmann::json;

std::int64_t PreprocessingPlan::num_classes() const {
  int largest = 0;
  for (const auto& l : labels) largest = std::max(largest, l.value);
  return largest + 1;
}

std::string PreprocessingPlan::to_json() const {
  json j;
  j["format"] = "tlk-preprocessing-1";
  j["dataset_name"] = dataset_name;
  j["target_spacing"] = target_spacing;
  j["channel_names"] = channel_names;
  json norms = json::array();
  for (const auto& n : normalization)
    norms.push_back({{"scheme", to_string(n.scheme)}, {"lower", n.lower}, {"upper", n.upper}, {"mean", n.mean},
                     {"std", n.std}});
  j["normalization"] = norms;
  j["normalization_source"] = normalization_source;
  json labs = json::object();
  for (const auto& l : labels) labs[l.name] = l.value;
  j["labels"] = labs;
  j["label_map"] = label_map;
  return j.dump(2);
}

PreprocessingPlan PreprocessingPlan::from_json(const std::string& text, const std::string& source) {
  PreprocessingPlan p;
  try {
    const json j = json::parse(text);
    check(j.value("format", "") == "tlk-preprocessing-1", "{}: not a TLK preprocessing plan (format '{}')", source,
          j.value("format", ""));
    p.dataset_name = j.value("dataset_name", "");
    p.target_spacing = j.at("target_spacing").get<std::array<double, 3>>();
    p.channel_names = j.at("channel_names").get<std::vector<std::string>>();
    for (const auto& n : j.at("normalization")) {
      ChannelNormalization c;
      c.scheme = parse_normalization_scheme(n.at("scheme").get<std::string>());
      c.lower = n.at("lower").get<double>();
      c.upper = n.at("upper").get<double>();
      c.mean = n.at("mean").get<double>();
      c.std = n.at("std").get<double>();
      p.normalization.push_back(c);
    }
    p.normalization_source = j.value("normalization_source", "");
    for (const auto& [name, value] : j.at("labels").items()) p.labels.push_back({name, value.get<int>()});
    std::sort(p.labels.begin(), p.labels.end(), [](const auto& a, const auto& b) { return a.value < b.value; });
    p.label_map = j.value("label_map", "");
  } catch (const json::exception& e) {
    fail("{}: malformed preprocessing plan: {}", source, e.what());
  }
  check(p.normalization.size() == p.channel_names.size(), "{}: {} normalization entries for {} channels", source,
        p.normalization.size(), p.channel_names.size());
  return p;
}

void PreprocessingPlan::save(const std::filesystem::path& dir) const {
  const std::string text = to_json();
  io::write_atomically(dir / "preprocessing.json", [&](const std::filesystem::path& tmp) {
    std::ofstream out(tmp);
    out << text << "\n";
    out.close();
    check(out.good(), "preprocess: cannot write {} (disk full?)", tmp.string());
  });
}

PreprocessingPlan PreprocessingPlan::load(const std::filesystem::path& dir) {
  const auto file = dir / "preprocessing.json";
  std::ifstream in(file);
  check(in.good(), "{}: no preprocessing.json (is {} a folder written by tlk preprocess?)", file.string(),
        dir.string());
  std::stringstream text;
  text << in.rdbuf();
  return from_json(text.str(), file.string());
}

std::vector<DatasetLabel> mapped_labels(const std::vector<DatasetLabel>& labels, const std::string& label_map) {
  const LabelMap map = parse_label_map(label_map);
  std::map<int, std::string> names;
  for (const auto& l : labels) {
    const int to = map.map(static_cast<std::uint8_t>(l.value));
    std::string& name = names[to];
    if (to == 0) {
      name = "background";
      continue;
    }
    if (!name.empty()) name += '+';
    name += l.name;
  }
  names.emplace(0, "background");
  std::vector<DatasetLabel> out;
  for (const auto& [value, name] : names) out.push_back({name, value});
  return out;
}

std::array<double, 3> default_target_spacing(const std::vector<std::array<double, 3>>& spacings) {
  check(!spacings.empty(), "preprocess: no cases to compute a target spacing from");
  auto percentile = [&](int axis, double q) {
    std::vector<double> v;
    for (const auto& s : spacings) v.push_back(s[axis]);
    std::sort(v.begin(), v.end());
    const double pos = q * static_cast<double>(v.size() - 1);
    const auto lo = static_cast<std::size_t>(pos);
    const std::size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
  };
  std::array<double, 3> target{percentile(0, 0.5), percentile(1, 0.5), percentile(2, 0.5)};
  const auto largest = std::max_element(target.begin(), target.end()) - target.begin();
  const double smallest = *std::min_element(target.begin(), target.end());
  if (target[largest] / smallest > 3.0) target[largest] = percentile(static_cast<int>(largest), 0.1);
  return target;
}

}  // namespace tlk::data
