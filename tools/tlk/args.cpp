#include "args.h"

#include <cstdlib>

#include "tlk/tensor/error.h"

namespace tlk::cli {

namespace {

double to_number(const std::string& text, const std::string& what) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  check(!text.empty() && end == text.c_str() + text.size(), "{}: expected a number, got '{}'", what, text);
  return v;
}

}  // namespace

Args::Args(std::string command, const std::vector<std::string>& args, std::vector<OptionSpec> specs)
    : command_(std::move(command)) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      help_ = true;
      continue;
    }
    if (a.rfind("--", 0) != 0 || a.size() == 2) {
      positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const OptionSpec* spec = nullptr;
    for (const auto& s : specs)
      if (s.name == name) spec = &s;
    if (!spec) {
      std::string known;
      for (const auto& s : specs) known += (known.empty() ? "--" : ", --") + s.name;
      fail("{}: unknown option '--{}' (expected one of: {}; see tlk {} --help)", command_, name,
           known.empty() ? "none" : known, command_);
    }
    check(spec->repeatable || values_.count(name) == 0, "{}: --{} given twice", command_, name);
    if (!spec->takes_value) {
      check(!inline_value, "{}: --{} takes no value", command_, name);
      values_[name].push_back("");
      continue;
    }
    if (inline_value) {
      values_[name].push_back(*inline_value);
      continue;
    }
    check(i + 1 < args.size(), "{}: --{} needs a value", command_, name);
    values_[name].push_back(args[++i]);
  }
}

bool Args::flag(const std::string& name) const { return values_.count(name) > 0; }

std::optional<std::string> Args::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second.back();
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  return get(name).value_or(fallback);
}

std::string Args::required(const std::string& name) const {
  auto v = get(name);
  check(v.has_value(), "{}: --{} is required (see tlk {} --help)", command_, name, command_);
  return *v;
}

std::int64_t Args::get_int(const std::string& name, std::int64_t fallback) const {
  auto v = get(name);
  if (!v) return fallback;
  const double d = to_number(*v, command_ + ": --" + name);
  check(d == static_cast<double>(static_cast<std::int64_t>(d)), "{}: --{} expects an integer, got '{}'", command_,
        name, *v);
  return static_cast<std::int64_t>(d);
}

double Args::get_double(const std::string& name, double fallback) const {
  auto v = get(name);
  return v ? to_number(*v, command_ + ": --" + name) : fallback;
}

std::vector<std::string> Args::all(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::vector<double> parse_number_list(const std::string& text, const std::string& what, std::size_t n) {
  std::vector<double> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    out.push_back(to_number(item, what));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  check(n == 0 || out.size() == n, "{}: expected {} comma-separated numbers, got '{}'", what, n, text);
  return out;
}

}  // namespace tlk::cli
