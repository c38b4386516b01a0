#include "tlk/kernels/cuda/optimizer_update.h"

#include <cmath>

#include "tlk/kernels/cuda/launch.h"
#include "tlk/kernels/cuda/optimizer_update_launch.h"

namespace tlk::kernels::cuda {

namespace {

// The in-place operands must be the caller's own contiguous buffers (a copy would drop the update).
void check_operand(const Tensor& t, const Tensor& param, const char* op, const char* what) {
  require_same(t, param, op, what);
  check(t.shape() == param.shape() && t.is_contiguous(), "{}: {} has shape {}{}, expected a contiguous {}", op, what,
        t.shape().str(), t.is_contiguous() ? "" : " (not contiguous)", param.shape().str());
}

template <class T>
T* ptr(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr;
}

}  // namespace

void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, const SgdStep& step) {
  const char* op = "Sgd (CUDA)";
  require_cuda_float(param, op, "parameter");
  check_operand(param, param, op, "parameter");
  check_operand(grad, param, op, "gradient");
  if (step.momentum > 0) check_operand(momentum_buffer, param, op, "momentum buffer");
  visit_floating(param.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    check_status(
        launch::sgd_update<T>(ptr<T>(param), ptr<const T>(grad), step.momentum > 0 ? ptr<T>(momentum_buffer) : nullptr,
                              param.numel(), static_cast<T>(step.lr), static_cast<T>(step.weight_decay),
                              static_cast<T>(step.momentum), step.nesterov, step.first, stream()),
        op, "kernel launch");
  });
  if (step.momentum > 0) momentum_buffer.impl().storage->bump_version();
}

void adam_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                 const AdamStep& step) {
  const char* op = "Adam (CUDA)";
  require_cuda_float(param, op, "parameter");
  check_operand(param, param, op, "parameter");
  check_operand(grad, param, op, "gradient");
  check_operand(exp_avg, param, op, "exp_avg");
  check_operand(exp_avg_sq, param, op, "exp_avg_sq");
  // The scalars as nn/adam.cpp computes them, so that the GPU sees the same T values.
  const double bias1 = 1.0 - std::pow(step.beta1, step.step), bias2 = 1.0 - std::pow(step.beta2, step.step);
  visit_floating(param.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    check_status(launch::adam_update<T>(ptr<T>(param), ptr<const T>(grad), ptr<T>(exp_avg), ptr<T>(exp_avg_sq),
                                        param.numel(), static_cast<T>(step.beta1), static_cast<T>(step.beta2),
                                        static_cast<T>(step.lr / bias1), static_cast<T>(std::sqrt(bias2)),
                                        static_cast<T>(step.eps), static_cast<T>(step.weight_decay),
                                        static_cast<T>(step.lr), step.decoupled_weight_decay, stream()),
                 op, "kernel launch");
  });
  exp_avg.impl().storage->bump_version();
  exp_avg_sq.impl().storage->bump_version();
}

}  // namespace tlk::kernels::cuda
