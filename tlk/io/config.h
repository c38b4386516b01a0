#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace tlk::io {

/// A configuration as flat dotted keys ("train.lr", "data.patch") with text values, read from a
/// YAML file and overridden by `--set key=value`. Nested mappings become dotted keys; a sequence of
/// scalars becomes "a,b,c". The typed getters parse on read and remember which keys were read, so
/// that a misspelt key is reported instead of silently ignored (check_all_read).
///
/// Example:
/// ```
/// io::Config c = io::Config::from_yaml_file("train.yaml");
/// c.set_override("train.epochs=5");
/// double lr = c.get_double("train.lr", 0.01);
/// c.check_all_read();   // "train.yaml: unknown key 'train.lr_max' (did you mean 'train.lr'?)"
/// ```
class Config {
 public:
  Config() = default;
  /// Parses a YAML file; a syntax error is a tlk::Error naming the file, line and column.
  static Config from_yaml_file(const std::filesystem::path& path);
  static Config from_yaml_text(const std::string& text, const std::string& source_name = "config");

  /// Sets `key` to `value` (replacing an earlier value).
  void set(const std::string& key, const std::string& value);
  /// Applies one "key=value" from the command line.
  void set_override(const std::string& assignment);
  bool has(const std::string& key) const { return values_.count(key) != 0; }

  std::string get_string(const std::string& key, const std::string& fallback) const;
  std::int64_t get_int(const std::string& key, std::int64_t fallback) const;
  double get_double(const std::string& key, double fallback) const;
  /// true/false, yes/no, on/off, 1/0.
  bool get_bool(const std::string& key, bool fallback) const;
  std::vector<std::int64_t> get_ints(const std::string& key, const std::vector<std::int64_t>& fallback) const;
  std::vector<double> get_doubles(const std::string& key, const std::vector<double>& fallback) const;
  /// The keys below `prefix` + "." with the prefix removed (e.g. every "model.*" option); marks them read.
  std::map<std::string, std::string> take_subtree(const std::string& prefix) const;

  /// Every key that was set but never read is a tlk::Error naming the source, the key and the
  /// nearest known key in `known_keys` (when one is close).
  void check_all_read(const std::vector<std::string>& known_keys = {}) const;
  const std::map<std::string, std::string>& values() const { return values_; }
  const std::string& source() const { return source_; }

 private:
  const std::string* find(const std::string& key) const;
  std::string source_ = "config";
  std::map<std::string, std::string> values_;
  mutable std::set<std::string> read_;
};

}  // namespace tlk::io
