#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <memory>
#include <string>

#include "test_util.h"

namespace {

struct Run {
  int status;
  std::string out;  // stdout and stderr together
};

Run run_tlk(const std::string& args) {
  const std::string cmd = std::string(TLK_CLI_PATH) + " " + args + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  REQUIRE(pipe);
  std::string out;
  std::array<char, 4096> buf{};
  while (fgets(buf.data(), buf.size(), pipe.get())) out += buf.data();
  const int status = pclose(pipe.release());
  // A crash (killed by a signal) must never read as success.
  REQUIRE_MESSAGE(WIFEXITED(status), "tlk " << args << " did not exit normally (status " << status << ")");
  return {WEXITSTATUS(status), out};
}

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace

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
    CHECK(count_lines(r.out) == 1);
    CHECK(r.out.rfind("tlk: error: ", 0) == 0);
  }
}
