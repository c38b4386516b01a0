#include "tlk/nn/sgd.h"

#include "tlk/tensor/error.h"
#ifdef TLK_HAVE_CUDA
#include "tlk/kernels/cuda/optimizer_update.h"
#endif

namespace tlk::nn {

Sgd::Sgd(std::vector<ParamGroup> groups, const SgdOptions& options)
    : Optimizer(std::move(groups), options.lr, options.weight_decay, "Sgd"), options_(options) {
  check(options.momentum >= 0, "Sgd: momentum must be >= 0, got {}", options.momentum);
  check(!options.nesterov || options.momentum > 0, "Sgd: Nesterov momentum needs momentum > 0");
}

void Sgd::update(Tensor& p, const Tensor& g, std::vector<Tensor>& slots, double lr, double weight_decay) {
  if (slots.empty()) slots.resize(1);
  const bool first = !slots[0].defined();
  if (options_.momentum > 0 && first) slots[0] = Tensor::empty(p.shape(), TensorOptions{p.dtype(), p.device()});
  if (p.device().is_cuda()) {
#ifdef TLK_HAVE_CUDA
    kernels::cuda::sgd_update(p, g, slots[0],
                              {.lr = lr,
                               .weight_decay = weight_decay,
                               .momentum = options_.momentum,
                               .nesterov = options_.nesterov,
                               .first = first});
    return;
#else
    fail("Sgd: parameter on {}, but TLK was built without CUDA", p.device().str());
#endif
  }
  visit_floating(p.dtype(), "Sgd", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* w = p.data<T>();
    const T* grad = g.data<T>();
    T* buf = options_.momentum > 0 ? slots[0].data<T>() : nullptr;
    const T lr_t = static_cast<T>(lr), wd = static_cast<T>(weight_decay), mu = static_cast<T>(options_.momentum);
    const bool nesterov = options_.nesterov;
    const std::int64_t n = p.numel();
#pragma omp parallel for if (n > 65536)
    for (std::int64_t j = 0; j < n; ++j) {
      T d = grad[j] + wd * w[j];
      if (buf) {
        buf[j] = first ? d : mu * buf[j] + d;
        d = nesterov ? d + mu * buf[j] : buf[j];
      }
      w[j] -= lr_t * d;
    }
  });
}

}  // namespace tlk::nn
