#pragma once
// Command-line option parsing shared by the tlk commands (tools/tlk/*.cpp).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tlk::cli {

/// One option a command accepts: `--name VALUE` (takes_value) or a `--name` flag; `repeatable`
/// options (e.g. `--set k=v`) may be given several times.
struct OptionSpec {
  std::string name;  ///< without the leading dashes
  bool takes_value = true;
  bool repeatable = false;
};

/// The parsed options of one command. Unknown options, a missing value or a repeated
/// non-repeatable option are tlk::Errors that name the command and the option.
///
/// Example:
/// ```
/// Args a("predict", args, {{"model"}, {"in"}, {"out"}, {"step"}, {"no-mirror", false}});
/// if (a.help()) { fmt::print("{}", kHelp); return 0; }
/// double step = a.get_double("step", 0.5);
/// ```
class Args {
 public:
  Args(std::string command, const std::vector<std::string>& args, std::vector<OptionSpec> specs);

  /// True when --help or -h was given (check it before anything else).
  bool help() const { return help_; }
  /// True when the flag was given.
  bool flag(const std::string& name) const;
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  /// The value of an option, or nullopt.
  std::optional<std::string> get(const std::string& name) const;
  std::string get(const std::string& name, const std::string& fallback) const;
  /// The value of an option that must be given ("<command>: --<name> is required").
  std::string required(const std::string& name) const;
  std::int64_t get_int(const std::string& name, std::int64_t fallback) const;
  double get_double(const std::string& name, double fallback) const;
  /// Every value of a repeatable option, in order.
  std::vector<std::string> all(const std::string& name) const;
  /// Arguments that are not options (e.g. `tlk info FILE`).
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::string command_;
  bool help_ = false;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
};

/// Parses "a,b,c" as numbers ("<what>: expected N comma-separated numbers, got '...'"); n = 0 takes any count.
std::vector<double> parse_number_list(const std::string& text, const std::string& what, std::size_t n = 0);

}  // namespace tlk::cli
