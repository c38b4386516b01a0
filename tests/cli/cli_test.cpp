#include "run_tlk.h"

using namespace tlk::testing;

TEST_CASE("tlk --version and --help") {
  auto v = run_tlk("--version");
  CHECK(v.status == 0);
  CHECK(v.out == std::string("tlk ") + TLK_VERSION_STRING + "\n");
  auto h = run_tlk("--help");
  CHECK(h.status == 0);
  CHECK(h.out.find("Examples:") != std::string::npos);
  auto sh = run_tlk("selfcheck --help");
  CHECK(sh.status == 0);
  CHECK(sh.out.find("Examples:") != std::string::npos);
}

TEST_CASE("tlk selfcheck passes") {
  auto r = run_tlk("selfcheck --seed 3");
  CHECK(r.status == 0);
  CHECK(r.out.find("gradients match finite differences") != std::string::npos);
}

TEST_CASE("bad arguments: non-zero exit and one readable line") {
  for (const char* args : {"frobnicate", "selfcheck --seed", "selfcheck --seed abc", "selfcheck --bogus"}) {
    CAPTURE(args);
    auto r = run_tlk(args);
    CHECK(r.status == 1);
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.rfind("tlk: error: ", 0) == 0);
  }
}
