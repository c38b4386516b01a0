#include "tlk/io/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "tlk/tensor/error.h"

namespace tlk::io {

namespace {

void flatten(const YAML::Node& node, const std::string& prefix, std::map<std::string, std::string>& out,
             const std::string& source) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      for (const auto& item : node) {
        const std::string key = item.first.as<std::string>();
        flatten(item.second, prefix.empty() ? key : prefix + "." + key, out, source);
      }
      return;
    case YAML::NodeType::Sequence: {
      std::string joined;
      for (const auto& item : node) {
        check(item.IsScalar(), "{}: '{}' is a list of lists or mappings; expected a list of values", source, prefix);
        if (!joined.empty()) joined += ',';
        joined += item.as<std::string>();
      }
      out[prefix] = joined;
      return;
    }
    case YAML::NodeType::Scalar: out[prefix] = node.as<std::string>(); return;
    case YAML::NodeType::Null: out[prefix] = ""; return;
    default: return;
  }
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

double parse_number(const std::string& text, const std::string& source, const std::string& key) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  check(!text.empty() && end == text.c_str() + text.size(), "{}: '{}' expects a number, got '{}'", source, key, text);
  return v;
}

// The comma-separated parts of a flattened list ("1,2,3" or "[1, 2, 3]"); none for an empty list
// ("" or "[]", what to_yaml writes for an empty one).
std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  if (text.find_first_not_of(" []") == std::string::npos) return parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = text.find(',', start);
    std::string part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    part.erase(0, part.find_first_not_of(" []"));
    part.erase(part.find_last_not_of(" []") + 1);
    parts.push_back(part);
    if (comma == std::string::npos) return parts;
    start = comma + 1;
  }
}

}  // namespace

Config Config::from_yaml_text(const std::string& text, const std::string& source_name) {
  Config c;
  c.source_ = source_name;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    fail("{}: not valid YAML at line {}, column {}: {}", source_name, e.mark.line + 1, e.mark.column + 1, e.msg);
  }
  if (root.IsNull()) return c;
  check(root.IsMap(), "{}: expected a mapping of keys at the top level", source_name);
  flatten(root, "", c.values_, source_name);
  return c;
}

Config Config::from_yaml_file(const std::filesystem::path& path) {
  std::error_code ec;
  check(std::filesystem::is_regular_file(path, ec), "config {}: no such file", path.string());
  YAML::Node root;
  Config c;
  c.source_ = path.string();
  try {
    root = YAML::LoadFile(path.string());
  } catch (const YAML::Exception& e) {
    fail("config {}: not valid YAML at line {}, column {}: {}", path.string(), e.mark.line + 1, e.mark.column + 1,
         e.msg);
  }
  if (root.IsNull()) return c;
  check(root.IsMap(), "config {}: expected a mapping of keys at the top level", path.string());
  flatten(root, "", c.values_, path.string());
  return c;
}

void Config::set(const std::string& key, const std::string& value) {
  check(!key.empty(), "{}: empty key", source_);
  values_[key] = value;
}

void Config::set_override(const std::string& assignment) {
  const auto eq = assignment.find('=');
  check(eq != std::string::npos && eq > 0, "--set '{}': expected key=value (e.g. train.epochs=5)", assignment);
  set(assignment.substr(0, eq), assignment.substr(eq + 1));
}

const std::string* Config::find(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) return nullptr;
  read_.insert(key);
  return &it->second;
}

std::string Config::get_string(const std::string& key, const std::string& fallback) const {
  const std::string* v = find(key);
  return v ? *v : fallback;
}

std::int64_t Config::get_int(const std::string& key, std::int64_t fallback) const {
  const std::string* v = find(key);
  if (!v) return fallback;
  const double d = parse_number(*v, source_, key);
  check(d == static_cast<double>(static_cast<std::int64_t>(d)), "{}: '{}' expects an integer, got '{}'", source_, key,
        *v);
  return static_cast<std::int64_t>(d);
}

double Config::get_double(const std::string& key, double fallback) const {
  const std::string* v = find(key);
  return v ? parse_number(*v, source_, key) : fallback;
}

bool Config::get_bool(const std::string& key, bool fallback) const {
  const std::string* v = find(key);
  if (!v) return fallback;
  const std::string s = lower(*v);
  if (s == "true" || s == "yes" || s == "on" || s == "1") return true;
  if (s == "false" || s == "no" || s == "off" || s == "0") return false;
  fail("{}: '{}' expects true or false, got '{}'", source_, key, *v);
}

std::vector<double> Config::get_doubles(const std::string& key, const std::vector<double>& fallback) const {
  const std::string* v = find(key);
  if (!v) return fallback;
  std::vector<double> out;
  for (const std::string& part : split_commas(*v)) out.push_back(parse_number(part, source_, key));
  return out;
}

std::vector<std::int64_t> Config::get_ints(const std::string& key, const std::vector<std::int64_t>& fallback) const {
  if (!has(key)) return fallback;
  std::vector<std::int64_t> out;
  for (double d : get_doubles(key, {})) {
    check(d == static_cast<double>(static_cast<std::int64_t>(d)), "{}: '{}' expects integers, got {}", source_, key,
          d);
    out.push_back(static_cast<std::int64_t>(d));
  }
  return out;
}

std::map<std::string, std::string> Config::take_subtree(const std::string& prefix) const {
  std::map<std::string, std::string> out;
  const std::string p = prefix + ".";
  for (const auto& [key, value] : values_) {
    if (key.rfind(p, 0) != 0) continue;
    out[key.substr(p.size())] = value;
    read_.insert(key);
  }
  return out;
}

void Config::check_all_read(const std::vector<std::string>& known_keys) const {
  for (const auto& [key, value] : values_) {
    if (read_.count(key)) continue;
    std::string nearest;
    std::size_t best = 4;  // suggest only keys within a few edits
    for (const std::string& k : known_keys) {
      const std::size_t d = edit_distance(key, k);
      if (d < best) best = d, nearest = k;
    }
    if (!nearest.empty()) fail("{}: unknown key '{}' (did you mean '{}'?)", source_, key, nearest);
    fail("{}: unknown key '{}' (see docs/config.md for every key)", source_, key);
  }
}

}  // namespace tlk::io
