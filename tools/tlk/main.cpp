// The tlk command-line program: parses arguments and calls the library (tools/tlk/*.cpp).
#include <fmt/format.h>

#include <cstdio>
#include <string>
#include <vector>

#include "cli.h"
#include "tlk/dist/process_group.h"
#include "tlk/tensor/error.h"

namespace {

/// Prints the one-line error. In a job of several ranks (tlk train --distributed) the line names the
/// rank, and the whole job ends at once: the other ranks would wait for this one in their next
/// collective.
int fail(int code, const char* kind, const char* what) {
  tlk::dist::ProcessGroup* world = tlk::dist::ProcessGroup::world();
  if (world && world->size() > 1) {
    std::fprintf(stderr, "tlk: %s (rank %d of %d): %s\n", kind, world->rank(), world->size(), what);
    tlk::dist::ProcessGroup::abort_job(code);
  }
  std::fprintf(stderr, "tlk: %s: %s\n", kind, what);
  tlk::dist::ProcessGroup::finalize_world();
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    return tlk::cli::run(args);
  } catch (const tlk::Error& e) {
    return fail(1, "error", e.what());
  } catch (const std::exception& e) {
    return fail(2, "internal error", e.what());
  }
}
