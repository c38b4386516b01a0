#include "tlk/nn/registry.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>

#include "tlk/nn/lenet.h"
#include "tlk/nn/resnet3d.h"
#include "tlk/nn/unet.h"
#include "tlk/tensor/error.h"

namespace tlk::nn {

// ---- ModuleOptions ----------------------------------------------------------------------------------

namespace {

std::string trim(const std::string& s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

bool parse_int(const std::string& text, std::int64_t& out) {
  const std::string t = trim(text);
  const char* end = t.data() + t.size();
  auto [ptr, ec] = std::from_chars(t.data(), end, out);
  return !t.empty() && ec == std::errc() && ptr == end;
}

}  // namespace

ModuleOptions ModuleOptions::with(const std::string& key, const std::string& value) const {
  check(!key.empty(), "ModuleOptions: option keys must be non-empty (value '{}')", value);
  auto o = *this;
  o.values_[key] = value;
  return o;
}

const std::string* ModuleOptions::find(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) return nullptr;
  read_.insert(key);
  return &it->second;
}

std::string ModuleOptions::get_string(const std::string& key, const std::string& fallback) const {
  const std::string* v = find(key);
  return v ? *v : fallback;
}

std::int64_t ModuleOptions::get_int(const std::string& key, std::int64_t fallback) const {
  const std::string* v = find(key);
  if (!v) return fallback;
  std::int64_t out = 0;
  check(parse_int(*v, out), "ModuleOptions: option '{}' must be an integer, got '{}'", key, *v);
  return out;
}

double ModuleOptions::get_double(const std::string& key, double fallback) const {
  const std::string* v = find(key);
  if (!v) return fallback;
  const std::string t = trim(*v);
  char* end = nullptr;
  const double out = t.empty() ? 0.0 : std::strtod(t.c_str(), &end);
  check(!t.empty() && end == t.c_str() + t.size(), "ModuleOptions: option '{}' must be a number, got '{}'", key, *v);
  return out;
}

bool ModuleOptions::get_bool(const std::string& key, bool fallback) const {
  const std::string* v = find(key);
  if (!v) return fallback;
  std::string t = trim(*v);
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (t == "true" || t == "1" || t == "yes" || t == "on") return true;
  if (t == "false" || t == "0" || t == "no" || t == "off") return false;
  fail("ModuleOptions: option '{}' must be true or false, got '{}'", key, *v);
}

std::vector<std::int64_t> ModuleOptions::get_ints(const std::string& key,
                                                  const std::vector<std::int64_t>& fallback) const {
  const std::string* v = find(key);
  if (!v) return fallback;
  std::vector<std::int64_t> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = v->find(',', start);
    const std::string item = v->substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    std::int64_t value = 0;
    check(parse_int(item, value), "ModuleOptions: option '{}' must be a comma-separated list of integers, got '{}'",
          key, *v);
    out.push_back(value);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::vector<std::string> ModuleOptions::unread_keys() const {
  std::vector<std::string> out;
  for (const auto& [key, value] : values_)
    if (!read_.count(key)) out.push_back(key);
  return out;
}

// ---- ModuleRegistry ---------------------------------------------------------------------------------

ModuleRegistry& ModuleRegistry::instance() {
  // See Note [Built-ins registered explicitly]. The lambda runs once, thread-safely, with the registry.
  static ModuleRegistry* registry = [] {
    auto* r = new ModuleRegistry();  // never destroyed: factories may be used during static destruction
    register_builtin_modules(*r);
    return r;
  }();
  return *registry;
}

void ModuleRegistry::add(const std::string& name, ModuleFactory factory) {
  check(!name.empty(), "ModuleRegistry: a module name must be non-empty");
  check(static_cast<bool>(factory), "ModuleRegistry: the factory for '{}' is empty", name);
  std::lock_guard<std::mutex> lock(mutex_);
  check(!factories_.count(name), "ModuleRegistry: a module named '{}' is already registered", name);
  factories_.emplace(name, std::move(factory));
}

bool ModuleRegistry::contains(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return factories_.count(name) != 0;
}

std::vector<std::string> ModuleRegistry::names() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [name, factory] : factories_) out.push_back(name);
  return out;
}

std::shared_ptr<Module> ModuleRegistry::create(const std::string& name, const ModuleOptions& options,
                                               Generator& gen) const {
  ModuleFactory factory;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = factories_.find(name);
    if (it != factories_.end()) factory = it->second;
  }
  // The factory runs outside the lock: it may itself create registered modules.
  check(static_cast<bool>(factory), "ModuleRegistry: unknown module '{}' (known: {})", name, fmt::join(names(), ", "));
  // A copy with its own, empty record of which keys were read.
  ModuleOptions own = ModuleOptions{}.with_in_channels(options.in_channels).with_num_classes(options.num_classes);
  for (const auto& [key, value] : options.values()) own = own.with(key, value);
  std::shared_ptr<Module> module = factory(own, gen);
  check(module != nullptr, "ModuleRegistry: the factory of '{}' returned null", name);
  const auto unread = own.unread_keys();
  if (!unread.empty()) {
    std::vector<std::string> given;
    for (const auto& [key, value] : own.values()) given.push_back(key + "=" + value);
    fail("ModuleRegistry: module '{}' does not take the option(s) {} (given: {})", name, fmt::join(unread, ", "),
         fmt::join(given, ", "));
  }
  return module;
}

// ---- Built-in networks ------------------------------------------------------------------------------

namespace {
// "1x3x3,3x3x3,3x3x3": one DxHxW triple per stage, as the unet3d options give kernel sizes and strides.
std::vector<Int3> parse_int3_list(const std::string& text, const char* key) {
  std::vector<Int3> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    Int3 v{};
    char x1 = 0, x2 = 0;
    long long a = 0, b = 0, c = 0;
    int used = 0;
    check(std::sscanf(item.c_str(), "%lld%c%lld%c%lld%n", &a, &x1, &b, &x2, &c, &used) == 5 && x1 == 'x' && x2 == 'x' &&
              static_cast<std::size_t>(used) == item.size(),
          "unet3d: option '{}' expects DxHxW triples separated by commas (e.g. 1x3x3,3x3x3), got '{}'", key, text);
    v = {a, b, c};
    out.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}
}  // namespace

void register_builtin_modules(ModuleRegistry& registry) {
  registry.add("unet3d", [](const ModuleOptions& o, Generator& gen) -> std::shared_ptr<Module> {
    UNetConfig config = UNetConfig::isotropic(static_cast<int>(o.get_int("levels", 5)), o.in_channels, o.num_classes);
    config.base_features = o.get_int("base_features", config.base_features);
    config.max_features = o.get_int("max_features", config.max_features);
    config.deep_supervision = o.get_bool("deep_supervision", config.deep_supervision);
    config.upsample_bias = o.get_bool("upsample_bias", config.upsample_bias);
    config.head_bias = o.get_bool("head_bias", config.head_bias);
    const std::string kernels = o.get_string("kernel_sizes", ""), strides = o.get_string("strides", "");
    if (!kernels.empty()) config.kernel_sizes = parse_int3_list(kernels, "kernel_sizes");
    if (!strides.empty()) config.strides = parse_int3_list(strides, "strides");
    return std::make_shared<UNet>(config, gen);
  });
  registry.add("lenet", [](const ModuleOptions& o, Generator& gen) -> std::shared_ptr<Module> {
    LeNetOptions d;
    LeNetOptions lenet = d.with_in_channels(o.in_channels)
                             .with_num_classes(o.num_classes)
                             .with_image_size(o.get_int("image_size", d.image_size))
                             .with_widths(o.get_int("conv1_channels", d.conv1_channels),
                                          o.get_int("conv2_channels", d.conv2_channels), o.get_int("hidden", d.hidden))
                             .with_padding(o.get_int("padding", d.padding));
    return std::make_shared<LeNet>(lenet, gen);
  });
  registry.add("resnet3d-small", [](const ModuleOptions& o, Generator& gen) -> std::shared_ptr<Module> {
    ResNet3dOptions d;
    const auto widths = o.get_ints("widths", d.widths);
    std::vector<std::int64_t> blocks = o.get_ints("blocks", std::vector<std::int64_t>(widths.size(), 1));
    std::vector<Int3> strides;
    for (std::size_t i = 0; i < widths.size(); ++i) strides.push_back(i == 0 ? Int3{1, 1, 1} : Int3{2, 2, 2});
    return std::make_shared<ResNet3d>(d.with_in_channels(o.in_channels)
                                          .with_num_classes(o.num_classes)
                                          .with_widths(widths)
                                          .with_blocks(blocks)
                                          .with_strides(strides),
                                      gen);
  });
}

}  // namespace tlk::nn
