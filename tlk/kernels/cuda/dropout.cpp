#include "tlk/kernels/cuda/dropout.h"

#include "tlk/kernels/cuda/elementwise.h"
#include "tlk/kernels/cuda/launch.h"

namespace tlk::kernels::cuda {

DropoutForward dropout_forward(const Tensor& input, double p, Generator& gen) {
  require_cuda_float(input, "dropout", "input");
  check_dropout_probability(p);
  // Note [Dropout mask on the GPU]: the mask is drawn on the host as in Note [Dropout mask]
  // (kernels/ref/dropout.cpp): straight into x's dtype, one uniform draw per element in row-major
  // order, nothing drawn when p == 1. Determinism over speed: the draw is sequential on the CPU.
  Tensor mask_host = Tensor::empty(input.shape(), TensorOptions{input.dtype(), Device::cpu()});
  visit_floating(input.dtype(), "dropout", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* m = mask_host.data<T>();
    const std::int64_t n = mask_host.numel();
    if (p == 1.0) {
      for (std::int64_t i = 0; i < n; ++i) m[i] = T(0);
      return;
    }
    const T keep = static_cast<T>(1.0 / (1.0 - p));
    for (std::int64_t i = 0; i < n; ++i) m[i] = gen.uniform() >= p ? keep : T(0);
  });
  Tensor mask = mask_host.to(input.device());
  return {mul(input.detach(), mask), mask};
}

Tensor dropout_backward(const Tensor& grad_output, const Tensor& mask) {
  const char* op = "dropout backward";
  require_cuda_float(grad_output, op, "grad_output");
  require_same(mask, grad_output, op, "mask");
  check(grad_output.shape() == mask.shape(), "{}: grad_output has shape {}, expected the mask's shape {}", op,
        grad_output.shape().str(), mask.shape().str());
  return mul(grad_output, mask);
}

}  // namespace tlk::kernels::cuda
