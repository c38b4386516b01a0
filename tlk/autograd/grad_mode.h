#pragma once

namespace tlk::autograd {

/// Whether ops record a graph on this thread (on by default).
struct GradMode {
  static bool is_enabled();
  static void set_enabled(bool enabled);
};

/// Turns graph recording off for its scope: no nodes, no saved tensors (inference, the distillation
/// teacher, optimizer updates). Example: `{ NoGradGuard guard; Tensor y = model.forward(x); }`
class NoGradGuard {
 public:
  NoGradGuard() : previous_(GradMode::is_enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace tlk::autograd

namespace tlk {
using autograd::NoGradGuard;
}
