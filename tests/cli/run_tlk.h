#pragma once
// Runs the built tlk program for the CLI tests (tests/cli).
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <unistd.h>

#include "test_util.h"

namespace tlk::testing {

/// What one tlk run printed and returned.
struct TlkRun {
  int status;
  std::string out;  ///< stdout
  std::string err;  ///< stderr (errors, progress)
};

/// Runs `<prefix> tlk <args>` through the shell (the prefix: environment settings or a launcher
/// such as mpirun) and captures stdout and stderr apart; a crash (killed by a signal) fails the test
/// instead of reading as an exit status.
inline TlkRun run_tlk_with_prefix(const std::string& prefix, const std::string& args) {
  const std::filesystem::path err_file =
      std::filesystem::temp_directory_path() / ("tlk_test_stderr_" + std::to_string(getpid()) + ".txt");
  const std::string cmd = prefix + std::string(TLK_CLI_PATH) + " " + args + " 2>" + err_file.string();
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  REQUIRE(pipe);
  std::string out;
  std::array<char, 4096> buf{};
  while (fgets(buf.data(), buf.size(), pipe.get())) out += buf.data();
  const int status = pclose(pipe.release());
  REQUIRE_MESSAGE(WIFEXITED(status), "tlk " << args << " did not exit normally (status " << status << ")");
  std::stringstream err;
  err << std::ifstream(err_file).rdbuf();
  std::filesystem::remove(err_file);
  return {WEXITSTATUS(status), out, err.str()};
}

/// Runs `tlk <args>`; see run_tlk_with_prefix.
inline TlkRun run_tlk(const std::string& args) { return run_tlk_with_prefix("", args); }

/// Lines in `s` (newline characters).
inline int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace tlk::testing
