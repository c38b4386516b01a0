#include "tlk/autograd/ops/dropout.h"

#include "tlk/autograd/autocast.h"
#include "tlk/autograd/ops/op_support.h"
#include "tlk/kernels/ref/dropout.h"

namespace tlk::ops {

Tensor dropout(const Tensor& x_in, double p, Generator& gen, bool training) {
  const Tensor x = autograd::widen_half(x_in);  // Note [Autocast]: f32/f64 kernels only
  check(x.defined(), "dropout: input is undefined");
  k::check_dropout_probability(p);  // also in evaluation, where the kernel does not run
  if (!training || p == 0.0) return x;
  k::DropoutForward f = k::dropout_forward(x, p, gen);
  attach("dropout", {x}, {f.output}, [ms = SavedTensor(f.mask, "dropout")](const Grads& g, const Node&) {
    return Grads{k::dropout_backward(g[0], ms.unpack())};
  });
  return f.output;
}

}  // namespace tlk::ops
