#pragma once
#include <map>
#include <string>

/// Where a training step's time goes, op by op (bench/unet_step --profile).
namespace tlk::autograd {

/// Wall time per op name, forward and backward, summed over calls.
///
/// Note [Op profiling]: when enabled, every op's attach() and every backward node waits for the GPU
/// (cuda::synchronize, a no-op on the CPU) and charges the time since the previous mark to that op:
/// the forward time of an op is the time from the previous op's attach to its own, and the backward
/// time of a node is its apply(). The waits serialize CPU and GPU work, so the total is larger than
/// an unprofiled step; use it to rank ops, not to time the step. Off by default; costs nothing then.
class OpProfiler {
 public:
  static OpProfiler& instance();
  void enable(bool on);
  bool enabled() const { return enabled_; }
  /// Charges the time since the last mark to `op`'s forward (called by attach()).
  void mark_forward(const char* op);
  /// Adds `ms` to `op`'s backward (called by the engine around Node::apply).
  void add_backward(const std::string& op, double ms);
  /// Restarts the clock for the next mark_forward (call before a forward pass).
  void restart_clock();
  void reset();
  /// A table of the `top` ops with the most total time: op, calls, forward ms, backward ms.
  std::string report(int top = 25) const;

 private:
  struct Entry {
    long calls = 0;
    double forward_ms = 0, backward_ms = 0;
  };
  bool enabled_ = false;
  double last_mark_ms_ = 0;
  std::map<std::string, Entry> entries_;
};

/// Milliseconds on a monotonic clock after waiting for the GPU (when one is in use).
double synchronized_now_ms();

/// Runs `fn` and, when profiling, charges its time to the backward of `part` ("conv3d/weights"): a
/// part of a node, listed on its own and left out of the totals (its node already counts it).
template <class Fn>
auto profiled_part(const char* part, Fn&& fn) {
  OpProfiler& profiler = OpProfiler::instance();
  if (!profiler.enabled()) return fn();
  const double start = synchronized_now_ms();
  auto result = fn();
  profiler.add_backward(part, synchronized_now_ms() - start);
  return result;
}

}  // namespace tlk::autograd
