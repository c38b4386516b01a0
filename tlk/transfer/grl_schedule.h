#pragma once
#include <cstdint>

namespace tlk::transfer {

/// The warm-start schedule of the gradient reversal coefficient λ (DANN; tllib's
/// WarmStartGradientReverseLayer): λ(i) = 2(hi − lo) / (1 + exp(−α·i/N)) − (hi − lo) + lo,
/// which starts at lo for i = 0 and rises smoothly towards hi. With a `delay` of D steps, λ is 0 for
/// i < D and the curve runs on i − D: the discriminator learns to tell the domains apart before any
/// gradient is reversed (Note [Discriminator warm-up]).
///
/// Note [Warm-start curve]: with lo = 0, hi = 1 the curve is tanh(α·i / 2N). It reaches hi only
/// asymptotically and is not clamped at i = N: TLK's medical setup (α = 1, N = 1000) gives
/// λ ≈ 0.12 after 250 steps, 0.46 at 1000, 0.85 at 2500 and 0.96 at 4000; DANN's (α = 10, N = total
/// steps, so i/N is the training progress p) gives 0.46 at 10% of training, 0.987 halfway and 0.9999
/// at the end. Early steps keep the adversarial gradient small while the discriminator is still random.
///
/// Example:
/// ```
/// auto schedule = transfer::WarmStartSchedule::tlk_medical();
/// grl.set_lambda(schedule.lambda(step));   // 0 at step 0, ~0.46 at step 1000
/// ```
struct WarmStartSchedule {
  double alpha = 1.0;
  double lo = 0.0;
  double hi = 1.0;
  std::int64_t max_iters = 1000;
  /// Note [Discriminator warm-up]: a discriminator that starts untrained reverses noise, and on the
  /// demo's phantoms (2026-11-26) λ was 0.82 after 12 steps of α = 10 while its accuracy was still
  /// 0.50–0.52. Steps with λ = 0 first let it lead. 0 (the default) is DANN's schedule.
  std::int64_t delay = 0;

  /// λ at step i (i >= 0). A negative step, max_iters <= 0, a negative delay, a negative or
  /// non-finite α or a non-finite lo/hi is a tlk::Error.
  double lambda(std::int64_t i) const;
  /// Throws tlk::Error naming the first invalid field.
  void validate() const;

  /// DANN (Ganin et al. 2016): α = 10 over the training progress p = i / total_steps, lo = 0, hi = 1.
  /// Example: `auto s = WarmStartSchedule::dann(epochs * steps_per_epoch);`
  static WarmStartSchedule dann(std::int64_t total_steps);
  /// TLK's medical setup (tllib's defaults): α = 1, lo = 0, hi = 1, N = 1000 steps.
  /// Example: `auto s = WarmStartSchedule::tlk_medical();  // s.lambda(250) ≈ 0.124`
  static WarmStartSchedule tlk_medical();
};

}  // namespace tlk::transfer
