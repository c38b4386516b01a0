#pragma once
// Timing helpers shared by the bench/ binaries (header-only: every .cpp here is its own program).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <vector>

namespace tlk::bench {

/// A benchmark's main: `run(argc, argv)`, with any exception printed as one line "<name>: error:
/// <message>" on stderr and exit status 1.
/// Example: `int main(int argc, char** argv) { return tlk::bench::guarded_main("augment", run, argc, argv); }`
inline int guarded_main(const char* name, int (*run)(int, char**), int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}: error: {}\n", name, e.what());
    return 1;
  }
}

/// Wall-clock milliseconds of one call of `fn`.
template <class Fn>
double time_ms(Fn&& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

/// The median of `iters` timed calls, after `warmup` untimed ones (primitive creation, first touch).
template <class Fn>
double median_ms(int iters, Fn&& fn, int warmup = 0) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> times;
  for (int i = 0; i < iters; ++i) times.push_back(time_ms(fn));
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

/// Medians of `iters` timed calls of each of `fns`, called round-robin (one call of each per round, after
/// one untimed round), so that a shared machine's slow spells fall on all of them alike.
template <class... Fns>
std::vector<double> interleaved_medians_ms(int iters, Fns&&... fns) {
  (fns(), ...);
  std::vector<std::vector<double>> times(sizeof...(Fns));
  for (int i = 0; i < iters; ++i) {
    std::size_t k = 0;
    ((times[k++].push_back(time_ms(fns))), ...);
  }
  std::vector<double> medians;
  for (auto& t : times) {
    std::sort(t.begin(), t.end());
    medians.push_back(t[t.size() / 2]);
  }
  return medians;
}

}  // namespace tlk::bench
