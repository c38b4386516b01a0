#include "tlk/kernels/ref/dropout.h"

#include <cmath>

#include "tlk/kernels/ref/common.h"
#include "tlk/kernels/ref/elementwise.h"

namespace tlk::kernels::ref {

void check_dropout_probability(double p) {
  check(std::isfinite(p) && p >= 0.0 && p <= 1.0, "dropout: probability p must be in [0, 1], got {}", p);
}

DropoutForward dropout_forward(const Tensor& input, double p, Generator& gen) {
  Tensor x = cpu_input(input, "dropout", "input");
  check_dropout_probability(p);
  // Note [Dropout mask]: the mask is drawn straight into a tensor of x's dtype (no double or f64
  // temporaries: at 1e9 elements those would cost tens of GB), one uniform number per element,
  // sequentially in row-major order (no OpenMP), so that it depends only on the generator's state,
  // never on the thread count or the dtype. p == 1 draws nothing.
  Tensor mask = Tensor::empty(x.shape(), TensorOptions{x.dtype()});
  visit_floating(x.dtype(), "dropout", [&](auto tag) {  // rejects integer inputs before drawing
    using T = typename decltype(tag)::type;
    T* m = mask.data<T>();
    const std::int64_t n = mask.numel();
    if (p == 1.0) {
      for (std::int64_t i = 0; i < n; ++i) m[i] = T(0);
      return;
    }
    const T keep = static_cast<T>(1.0 / (1.0 - p));
    for (std::int64_t i = 0; i < n; ++i) m[i] = gen.uniform() >= p ? keep : T(0);
  });
  return {mul(x, mask), mask};
}

Tensor dropout_backward(const Tensor& grad_output, const Tensor& mask_in) {
  const char* op = "dropout backward";
  Tensor g = cpu_input(grad_output, op, "grad_output"), mask = cpu_input(mask_in, op, "mask");
  check_same_dtype(op, {&g, &mask});
  check(g.shape() == mask.shape(), "{}: grad_output has shape {}, expected the mask's shape {}", op, g.shape().str(),
        mask.shape().str());
  return mul(g, mask);
}

}  // namespace tlk::kernels::ref
