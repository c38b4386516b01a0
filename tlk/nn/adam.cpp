#include "tlk/nn/adam.h"

#include <cmath>

#include "tlk/tensor/error.h"
#ifdef TLK_HAVE_CUDA
#include "tlk/kernels/cuda/optimizer_update.h"
#endif

namespace tlk::nn {

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& options)
    : Optimizer(std::move(groups), options.lr, options.weight_decay, options.decoupled_weight_decay ? "AdamW" : "Adam"),
      options_(options) {
  check(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1 && options.eps > 0,
        "Adam: betas must be in [0, 1) and eps > 0, got ({}, {}) and {}", options.beta1, options.beta2, options.eps);
}

void Adam::update(Tensor& p, const Tensor& g, std::vector<Tensor>& slots, double lr, double weight_decay) {
  if (slots.empty()) slots.resize(3);
  if (!slots[0].defined()) {
    // The moments live on the parameter's device; the step counter stays a CPU scalar.
    slots[0] = Tensor::zeros(p.shape(), TensorOptions{p.dtype(), p.device()});
    slots[1] = Tensor::zeros(p.shape(), TensorOptions{p.dtype(), p.device()});
    slots[2] = Tensor::scalar(0.0, TensorOptions{DType::f64});
  }
  // The step count is per parameter (as PyTorch keeps it), so a parameter that joins late starts fresh.
  double* step = slots[2].data<double>();
  *step += 1;
  if (p.device().is_cuda()) {
#ifdef TLK_HAVE_CUDA
    kernels::cuda::adam_update(p, g, slots[0], slots[1],
                               {.lr = lr,
                                .beta1 = options_.beta1,
                                .beta2 = options_.beta2,
                                .eps = options_.eps,
                                .weight_decay = weight_decay,
                                .decoupled_weight_decay = options_.decoupled_weight_decay,
                                .step = *step});
    return;
#else
    fail("Adam: parameter on {}, but TLK was built without CUDA", p.device().str());
#endif
  }
  const double bias1 = 1.0 - std::pow(options_.beta1, *step), bias2 = 1.0 - std::pow(options_.beta2, *step);
  visit_floating(p.dtype(), "Adam", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* w = p.data<T>();
    const T* grad = g.data<T>();
    T* m = slots[0].data<T>();
    T* v = slots[1].data<T>();
    const T b1 = static_cast<T>(options_.beta1), b2 = static_cast<T>(options_.beta2);
    const T step_size = static_cast<T>(lr / bias1), bias2_sqrt = static_cast<T>(std::sqrt(bias2));
    const T eps = static_cast<T>(options_.eps), wd = static_cast<T>(weight_decay), lr_t = static_cast<T>(lr);
    const bool decoupled = options_.decoupled_weight_decay;
    const std::int64_t n = p.numel();
#pragma omp parallel for if (n > 65536)
    for (std::int64_t j = 0; j < n; ++j) {
      T d = grad[j];
      if (decoupled)
        w[j] -= lr_t * wd * w[j];
      else
        d += wd * w[j];
      m[j] = b1 * m[j] + (T(1) - b1) * d;
      v[j] = b2 * v[j] + (T(1) - b2) * d * d;
      w[j] -= step_size * m[j] / (std::sqrt(v[j]) / bias2_sqrt + eps);
    }
  });
}

}  // namespace tlk::nn
