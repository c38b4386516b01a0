#pragma once
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace tlk {

/// The one exception type TLK throws for bad input or an impossible request.
/// Its message names the op or file, what was seen and what was expected, e.g.
/// `conv3d: input has 4 channels but weight expects 3 (input [2, 4, 8, 8, 8], weight [16, 3, 3, 3, 3])`.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// Throws tlk::Error with an fmt-formatted message.
/// Example: `fail("conv3d: expected a 5-D input, got {}-D", x.dim());`
template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

/// Throws tlk::Error when `condition` is false.
/// Example: `check(x.dim() == 5, "conv3d: expected a 5-D input, got {}-D", x.dim());`
template <class... Args>
void check(bool condition, fmt::format_string<Args...> format, Args&&... args) {
  if (!condition) throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace tlk
