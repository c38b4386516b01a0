#include "tlk/transfer/grl_schedule.h"

#include <cmath>

#include "tlk/tensor/error.h"

namespace tlk::transfer {

void WarmStartSchedule::validate() const {
  check(std::isfinite(alpha) && alpha >= 0.0, "WarmStartSchedule: alpha must be finite and >= 0, got {}", alpha);
  check(std::isfinite(lo) && std::isfinite(hi), "WarmStartSchedule: lo and hi must be finite, got lo {} hi {}", lo, hi);
  check(max_iters > 0, "WarmStartSchedule: max_iters must be > 0, got {}", max_iters);
  check(delay >= 0, "WarmStartSchedule: delay must be >= 0, got {}", delay);
}

double WarmStartSchedule::lambda(std::int64_t i) const {
  validate();
  check(i >= 0, "WarmStartSchedule::lambda: the step must be >= 0, got {}", i);
  if (i < delay) return 0.0;
  const double span = hi - lo;
  const double progress = static_cast<double>(i - delay) / static_cast<double>(max_iters);
  return 2.0 * span / (1.0 + std::exp(-alpha * progress)) - span + lo;
}

WarmStartSchedule WarmStartSchedule::dann(std::int64_t total_steps) {
  check(total_steps > 0, "WarmStartSchedule::dann: total_steps must be > 0, got {}", total_steps);
  return WarmStartSchedule{10.0, 0.0, 1.0, total_steps};
}

WarmStartSchedule WarmStartSchedule::tlk_medical() { return WarmStartSchedule{1.0, 0.0, 1.0, 1000}; }

}  // namespace tlk::transfer
