#include "tlk/nn/sgd.h"

#include "tlk/autograd/grad_mode.h"
#include "tlk/tensor/error.h"

namespace tlk::nn {

Sgd::Sgd(std::vector<Tensor> parameters, const SgdOptions& options)
    : parameters_(std::move(parameters)), momentum_buffers_(parameters_.size()), options_(options) {
  check(options.lr >= 0 && options.momentum >= 0 && options.weight_decay >= 0,
        "Sgd: lr, momentum and weight_decay must be >= 0 (got {}, {}, {})", options.lr, options.momentum,
        options.weight_decay);
  check(!options.nesterov || options.momentum > 0, "Sgd: Nesterov momentum needs momentum > 0");
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    const Tensor& p = parameters_[i];
    check(p.defined() && p.device().is_cpu() && p.is_contiguous() && is_floating(p.dtype()),
          "Sgd: parameter {} must be a contiguous floating-point CPU tensor", i);
  }
}

void Sgd::step() {
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    Tensor& p = parameters_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    g = g.to(Layout::plain).to(p.dtype());
    check(g.shape() == p.shape(), "Sgd: gradient of parameter {} has shape {}, expected {}", i, g.shape().str(),
          p.shape().str());
    visit_floating(p.dtype(), "Sgd", [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* w = p.data<T>();
      const T* grad = g.data<T>();
      const std::int64_t n = p.numel();
      const T lr = static_cast<T>(options_.lr), wd = static_cast<T>(options_.weight_decay),
              mu = static_cast<T>(options_.momentum);
      Tensor& buf_t = momentum_buffers_[i];
      const bool first = !buf_t.defined();
      if (options_.momentum > 0 && first) buf_t = Tensor::empty(p.shape(), TensorOptions{p.dtype()});
      T* buf = options_.momentum > 0 ? buf_t.data<T>() : nullptr;
#pragma omp parallel for if (n > 65536)
      for (std::int64_t j = 0; j < n; ++j) {
        T d = grad[j] + wd * w[j];
        if (buf) {
          buf[j] = first ? d : mu * buf[j] + d;
          d = options_.nesterov ? d + mu * buf[j] : buf[j];
        }
        w[j] -= lr * d;
      }
    });
    p.impl().storage->bump_version();
  }
}

void Sgd::zero_grad() {
  for (auto& p : parameters_) p.set_grad(Tensor());
}

}  // namespace tlk::nn
