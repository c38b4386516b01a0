#include "tlk/autograd/profiler.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "tlk/tensor/cuda_runtime.h"

namespace tlk::autograd {

double synchronized_now_ms() {
  cuda::synchronize();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

OpProfiler& OpProfiler::instance() {
  static OpProfiler profiler;
  return profiler;
}

void OpProfiler::enable(bool on) {
  enabled_ = on;
  restart_clock();
}

void OpProfiler::restart_clock() { last_mark_ms_ = synchronized_now_ms(); }

void OpProfiler::mark_forward(const char* op) {
  const double now = synchronized_now_ms();
  Entry& e = entries_[op];
  e.calls += 1;
  e.forward_ms += now - last_mark_ms_;
  last_mark_ms_ = now;
}

void OpProfiler::add_backward(const std::string& op, double ms) { entries_[op].backward_ms += ms; }

void OpProfiler::reset() { entries_.clear(); }

std::string OpProfiler::report(int top) const {
  std::vector<std::pair<std::string, Entry>> rows(entries_.begin(), entries_.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.second.forward_ms + a.second.backward_ms > b.second.forward_ms + b.second.backward_ms;
  });
  double forward = 0, backward = 0;
  for (const auto& [name, e] : rows) {
    if (name.find('/') != std::string::npos) continue;  // parts of a node (profiled_part)
    forward += e.forward_ms;
    backward += e.backward_ms;
  }
  std::string out = fmt::format("# {:<28} {:>7} {:>12} {:>12}\n", "op", "calls", "forward ms", "backward ms");
  for (int i = 0; i < top && i < static_cast<int>(rows.size()); ++i)
    out += fmt::format("# {:<28} {:>7} {:>12.2f} {:>12.2f}\n", rows[i].first, rows[i].second.calls,
                       rows[i].second.forward_ms, rows[i].second.backward_ms);
  out += fmt::format("# {:<28} {:>7} {:>12.2f} {:>12.2f}\n", "total", "", forward, backward);
  return out;
}

}  // namespace tlk::autograd
