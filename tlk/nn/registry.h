#pragma once
#include <fmt/format.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "tlk/nn/module.h"
#include "tlk/tensor/random.h"

namespace tlk::nn {

/// What a registered network is built from: the channel and class counts every network has, plus
/// named string values for the rest ("levels" = "4", "widths" = "16,32,64,128"), as a config file or
/// command line gives them. The typed getters parse on read and remember which keys were read, so
/// that ModuleRegistry::create can reject a key the network does not take (a misspelt option).
///
/// Example: `auto o = nn::ModuleOptions{}.with_in_channels(1).with_num_classes(3).with("levels", 4);`
class ModuleOptions {
 public:
  std::int64_t in_channels = 1;
  std::int64_t num_classes = 2;

  ModuleOptions with_in_channels(std::int64_t c) const {
    auto o = *this;
    o.in_channels = c;
    return o;
  }
  ModuleOptions with_num_classes(std::int64_t n) const {
    auto o = *this;
    o.num_classes = n;
    return o;
  }
  /// Sets `key` to `value` (replacing an earlier value).
  ModuleOptions with(const std::string& key, const std::string& value) const;
  ModuleOptions with(const std::string& key, const char* value) const { return with(key, std::string(value)); }
  /// Numbers and booleans are stored as text: with("levels", 4), with("deep_supervision", false).
  template <class T>
  requires std::is_arithmetic_v<T> ModuleOptions with(const std::string& key, T value)
  const {
    if constexpr (std::is_same_v<T, bool>)
      return with(key, std::string(value ? "true" : "false"));
    else
      return with(key, fmt::format("{}", value));
  }

  bool has(const std::string& key) const { return values_.count(key) != 0; }
  /// The value of `key`, or `fallback` when it is absent; a value that does not parse as the type
  /// asked for is a tlk::Error naming the key.
  std::string get_string(const std::string& key, const std::string& fallback) const;
  std::int64_t get_int(const std::string& key, std::int64_t fallback) const;
  double get_double(const std::string& key, double fallback) const;
  /// true/false, 1/0, yes/no, on/off.
  bool get_bool(const std::string& key, bool fallback) const;
  /// A comma-separated list of integers: "16,32,64,128".
  std::vector<std::int64_t> get_ints(const std::string& key, const std::vector<std::int64_t>& fallback) const;

  const std::map<std::string, std::string>& values() const { return values_; }
  /// The keys set but never read through a getter, sorted.
  std::vector<std::string> unread_keys() const;

 private:
  const std::string* find(const std::string& key) const;
  std::map<std::string, std::string> values_;
  mutable std::set<std::string> read_;
};

/// Builds a module from options, drawing its initial weights from `gen`.
using ModuleFactory = std::function<std::shared_ptr<Module>(const ModuleOptions& options, Generator& gen)>;

/// Networks by name, for configs and the CLI: "unet3d", "lenet", "resnet3d-small" are built in
/// (register_builtin_modules runs on the first use of instance()), and users add their own.
///
/// Options of the built-ins (besides in_channels and num_classes):
/// - unet3d: levels (5), base_features (32), max_features (320), deep_supervision (true),
///   upsample_bias and head_bias (false; true for nnUNet v2 models), kernel_sizes and strides per
///   stage as "1x3x3,3x3x3,..." (default 3x3x3 kernels, stride 1 then 2 between stages).
/// - lenet: image_size (28), conv1_channels (20), conv2_channels (50), hidden (500), padding (0).
/// - resnet3d-small: widths ("16,32,64,128"), blocks (1 per stage).
///
/// Example:
/// ```
/// nn::ModuleRegistry::instance().add("tiny", [](const nn::ModuleOptions& o, Generator& gen) {
///   return std::make_shared<nn::Linear>(o.in_channels, o.num_classes, gen);
/// });
/// Generator gen(0);
/// auto net = nn::ModuleRegistry::instance().create("lenet", nn::ModuleOptions{}.with("image_size", 32), gen);
/// ```
class ModuleRegistry {
 public:
  /// The process-wide registry, with the built-in networks registered.
  static ModuleRegistry& instance();

  /// Registers `factory` under `name` (non-empty); a name already taken is a tlk::Error.
  void add(const std::string& name, ModuleFactory factory);
  bool contains(const std::string& name) const;
  /// Builds the module registered as `name`. An unknown name is a tlk::Error listing the known
  /// names; so is an option key the factory never read (listing the unused keys).
  std::shared_ptr<Module> create(const std::string& name, const ModuleOptions& options, Generator& gen) const;
  /// Registered names, sorted.
  std::vector<std::string> names() const;

 private:
  ModuleRegistry() = default;
  mutable std::mutex mutex_;
  std::map<std::string, ModuleFactory> factories_;
};

/// Registers "unet3d", "lenet" and "resnet3d-small" in `registry`; instance() calls it once.
///
/// Note [Built-ins registered explicitly]: the built-ins are added by this function, called from
/// instance(), not by static initialisers in their own files: a linker drops the object files of a
/// static library that nothing references, and their initialisers with them.
void register_builtin_modules(ModuleRegistry& registry);

}  // namespace tlk::nn
