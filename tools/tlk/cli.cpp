#include "cli.h"

#include <fmt/format.h>

#include "tlk/tensor/error.h"
#include "tlk/version.h"

namespace tlk::cli {

namespace {

const char* kUsage = R"(tlk - transfer learning kit for 3D convolutional networks

Usage:
  tlk <command> [options]
  tlk --version
  tlk --help

Commands:
  selfcheck    run a small 3D conv net forward and backward and check its gradients

Examples:
  tlk --version
  tlk selfcheck
  tlk selfcheck --seed 7

Run `tlk <command> --help` for a command's options.
)";

}  // namespace

int run(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    fmt::print("{}", kUsage);
    return args.empty() ? 1 : 0;
  }
  const std::string& command = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (command == "--version" || command == "version") {
    fmt::print("tlk {}\n", TLK_VERSION_STRING);
    return 0;
  }
  if (command == "selfcheck") return selfcheck(rest);
  fail("unknown command '{}' (expected one of: selfcheck; see tlk --help)", command);
}

}  // namespace tlk::cli
