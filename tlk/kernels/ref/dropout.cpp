#include "tlk/kernels/ref/dropout.h"

#include <cmath>
#include <vector>

#include "tlk/kernels/ref/common.h"
#include "tlk/kernels/ref/elementwise.h"

namespace tlk::kernels::ref {

DropoutForward dropout_forward(const Tensor& input, double p, Generator& gen) {
  Tensor x = cpu_input(input, "dropout", "input");
  check(std::isfinite(p) && p >= 0.0 && p <= 1.0, "dropout: probability p must be in [0, 1], got {}", p);
  visit_floating(x.dtype(), "dropout", [](auto) {});  // rejects integer inputs before drawing
  // Note [Dropout mask]: the draws run sequentially in row-major order (no OpenMP) so that the mask
  // depends only on the generator's state, never on the thread count.
  std::vector<double> mask(static_cast<std::size_t>(x.numel()), 0.0);
  if (p < 1.0) {
    const double scale = 1.0 / (1.0 - p);
    for (double& m : mask) m = gen.uniform() >= p ? scale : 0.0;
  }
  Tensor mask_t = Tensor::from_doubles(mask, x.shape(), x.dtype());
  return {mul(x, mask_t), mask_t};
}

Tensor dropout_backward(const Tensor& grad_output, const Tensor& mask) {
  Tensor g = cpu_input(grad_output, "dropout backward", "grad_output");
  check(g.shape() == mask.shape(), "dropout backward: grad_output {} does not match the mask {}", g.shape().str(),
        mask.shape().str());
  return mul(g, mask);
}

}  // namespace tlk::kernels::ref
