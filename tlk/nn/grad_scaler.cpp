#include "tlk/nn/grad_scaler.h"

#include <cmath>

#include "tlk/autograd/grad_mode.h"
#include "tlk/autograd/ops/arith.h"
#include "tlk/autograd/ops/reduce.h"
#include "tlk/tensor/error.h"

namespace tlk::nn {

GradScaler::GradScaler(GradScalerOptions options) : options_(options), scale_(options.init_scale) {
  check(std::isfinite(options.init_scale) && options.init_scale > 0, "GradScaler: init_scale must be > 0, got {}",
        options.init_scale);
  check(options.growth_factor > 1.0, "GradScaler: growth_factor must be > 1, got {}", options.growth_factor);
  check(options.backoff_factor > 0.0 && options.backoff_factor < 1.0,
        "GradScaler: backoff_factor must be in (0, 1), got {}", options.backoff_factor);
  check(options.growth_interval >= 1, "GradScaler: growth_interval must be >= 1, got {}", options.growth_interval);
}

Tensor GradScaler::scale(const Tensor& loss) const { return loss * scale_; }

bool GradScaler::unscale(const std::vector<Tensor>& params) const {
  NoGradGuard no_grad;
  const double inverse = 1.0 / scale_;
  // A sum is finite exactly when every element is (inf − inf is NaN); one sum per device is read.
  Tensor cpu_total, gpu_total;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    const Tensor unscaled = g.to(Layout::plain) * inverse;
    p.set_grad(unscaled);
    Tensor& total = unscaled.device().is_cuda() ? gpu_total : cpu_total;
    const Tensor s = ops::sum(unscaled.to(DType::f64));
    total = total.defined() ? total + s : s;
  }
  for (const Tensor* total : {&cpu_total, &gpu_total})
    if (total->defined() && !std::isfinite(total->item())) return false;
  return true;
}

void GradScaler::update(bool found_inf) {
  if (found_inf) {
    scale_ *= options_.backoff_factor;
    growth_tracker_ = 0;
    return;
  }
  if (++growth_tracker_ >= options_.growth_interval) {
    const double grown = scale_ * options_.growth_factor;
    if (std::isfinite(grown)) scale_ = grown;
    growth_tracker_ = 0;
  }
}

void GradScaler::load(double scale, std::int64_t growth_tracker) {
  check(std::isfinite(scale) && scale > 0, "GradScaler: a loaded scale must be finite and > 0, got {}", scale);
  check(growth_tracker >= 0, "GradScaler: a loaded growth tracker must be >= 0, got {}", growth_tracker);
  scale_ = scale;
  growth_tracker_ = growth_tracker;
}

}  // namespace tlk::nn
