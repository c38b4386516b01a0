// The tlk command-line program: parses arguments and calls the library (tools/tlk/*.cpp).
#include <fmt/format.h>

#include <cstdio>
#include <string>
#include <vector>

#include "cli.h"
#include "tlk/tensor/error.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    return tlk::cli::run(args);
  } catch (const tlk::Error& e) {
    std::fprintf(stderr, "tlk: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tlk: internal error: %s\n", e.what());
    return 2;
  }
}
