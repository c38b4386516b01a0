#include "tlk/nn/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "tlk/tensor/error.h"

namespace tlk::nn {

namespace {
void check_common(const char* name, double lr0, std::int64_t total) {
  check(lr0 >= 0 && std::isfinite(lr0), "{}: initial learning rate must be finite and >= 0, got {}", name, lr0);
  check(total >= 1, "{}: total steps must be >= 1, got {}", name, total);
}
double progress(std::int64_t step, std::int64_t total) {
  return std::clamp(static_cast<double>(step) / static_cast<double>(total), 0.0, 1.0);
}
}  // namespace

PolySchedule::PolySchedule(double lr0, std::int64_t total, double exponent)
    : lr0_(lr0), total_(total), exponent_(exponent) {
  check_common("PolySchedule", lr0, total);
  check(exponent > 0, "PolySchedule: exponent must be > 0, got {}", exponent);
}
double PolySchedule::lr(std::int64_t step) const { return lr0_ * std::pow(1.0 - progress(step, total_), exponent_); }

CosineSchedule::CosineSchedule(double lr0, std::int64_t total, double lr_min)
    : lr0_(lr0), total_(total), lr_min_(lr_min) {
  check_common("CosineSchedule", lr0, total);
  check(lr_min >= 0 && lr_min <= lr0, "CosineSchedule: lr_min must be in [0, lr0], got {}", lr_min);
}
double CosineSchedule::lr(std::int64_t step) const {
  return lr_min_ + 0.5 * (lr0_ - lr_min_) * (1.0 + std::cos(std::numbers::pi * progress(step, total_)));
}

StepSchedule::StepSchedule(double lr0, std::int64_t step_size, double gamma)
    : lr0_(lr0), step_size_(step_size), gamma_(gamma) {
  check_common("StepSchedule", lr0, step_size);
  check(gamma > 0, "StepSchedule: gamma must be > 0, got {}", gamma);
}
double StepSchedule::lr(std::int64_t step) const {
  return lr0_ * std::pow(gamma_, static_cast<double>(std::max<std::int64_t>(step, 0) / step_size_));
}

DannSchedule::DannSchedule(double mu0, std::int64_t total, double alpha, double beta)
    : mu0_(mu0), total_(total), alpha_(alpha), beta_(beta) {
  check_common("DannSchedule", mu0, total);
  check(alpha >= 0 && beta >= 0, "DannSchedule: alpha and beta must be >= 0, got {} and {}", alpha, beta);
}
double DannSchedule::lr(std::int64_t step) const {
  return mu0_ / std::pow(1.0 + alpha_ * progress(step, total_), beta_);
}

WarmupSchedule::WarmupSchedule(std::int64_t warmup, std::shared_ptr<const LrSchedule> inner)
    : warmup_(warmup), inner_(std::move(inner)) {
  check(warmup >= 0 && inner_ != nullptr, "WarmupSchedule: needs warmup >= 0 and an inner schedule");
}
double WarmupSchedule::lr(std::int64_t step) const {
  const double base = inner_->lr(step);
  if (step >= warmup_) return base;
  return base * static_cast<double>(step + 1) / static_cast<double>(warmup_ + 1);
}

}  // namespace tlk::nn
