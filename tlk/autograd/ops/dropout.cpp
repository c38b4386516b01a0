#include "tlk/autograd/ops/dropout.h"

#include <cmath>

#include "tlk/autograd/function.h"
#include "tlk/kernels/ref/dropout.h"

namespace tlk::ops {

using autograd::attach;
using autograd::Node;
using autograd::SavedTensor;
namespace k = kernels::ref;
using Grads = std::vector<Tensor>;

Tensor dropout(const Tensor& x, double p, Generator& gen, bool training) {
  check(x.defined(), "dropout: input is undefined");
  check(std::isfinite(p) && p >= 0.0 && p <= 1.0, "dropout: probability p must be in [0, 1], got {}", p);
  if (!training || p == 0.0) return x;
  k::DropoutForward f = k::dropout_forward(x, p, gen);
  attach("dropout", {x}, {f.output}, [ms = SavedTensor(f.mask, "dropout")](const Grads& g, const Node&) {
    return Grads{k::dropout_backward(g[0], ms.unpack())};
  });
  return f.output;
}

}  // namespace tlk::ops
