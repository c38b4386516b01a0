#pragma once
// Timing helpers shared by the bench/ binaries (header-only: every .cpp here is its own program).
#include <algorithm>
#include <chrono>
#include <vector>

namespace tlk::bench {

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

}  // namespace tlk::bench
