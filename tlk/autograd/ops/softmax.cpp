#include "tlk/autograd/ops/softmax.h"

#include "tlk/autograd/ops/op_support.h"
#include "tlk/kernels/ref/softmax.h"

namespace tlk::ops {

// Both backwards read only the output, so the input is not kept.
Tensor softmax(const Tensor& x, int dim) {
  Tensor y = k::softmax_forward(x, dim);
  attach("softmax", {x}, {y}, [ys = SavedTensor(y, "softmax"), dim](const Grads& g, const Node&) {
    return Grads{k::softmax_backward(g[0], ys.unpack(), dim)};
  });
  return y;
}

Tensor log_softmax(const Tensor& x, int dim) {
  Tensor y = k::log_softmax_forward(x, dim);
  attach("log_softmax", {x}, {y}, [ys = SavedTensor(y, "log_softmax"), dim](const Grads& g, const Node&) {
    return Grads{k::log_softmax_backward(g[0], ys.unpack(), dim)};
  });
  return y;
}

}  // namespace tlk::ops
