#pragma once
#include <string>
#include <vector>

namespace tlk::cli {

/// Runs the tlk command line (arguments without the program name); returns the exit status.
/// Errors in the user's input are thrown as tlk::Error and printed by main() as one line.
int run(const std::vector<std::string>& args);

/// `tlk selfcheck`: a small forward/backward through the engine, checked against finite differences.
int selfcheck(const std::vector<std::string>& args);

}  // namespace tlk::cli
