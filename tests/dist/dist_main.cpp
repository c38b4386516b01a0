// The data-parallel suite runs as one MPI job (ctest starts it with `mpirun -np 2`): every rank runs
// every test case, in the same order, and the job passes when every rank passed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "tlk/dist/process_group.h"

int main(int argc, char** argv) {
  auto& group = tlk::dist::ProcessGroup::init_world({.timeout_seconds = 120});
  doctest::Context context(argc, argv);
  const int status = context.run();
  const double failed_ranks = group.all_reduce_sum({status != 0 ? 1.0 : 0.0}, "test results")[0];
  const bool listing_only = context.shouldExit();
  tlk::dist::ProcessGroup::finalize_world();
  return listing_only ? status : (failed_ranks > 0 ? 1 : 0);
}
