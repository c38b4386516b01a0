#include "tlk/autograd/ops/softmax.h"

#include "tlk/autograd/autocast.h"
#include "tlk/autograd/ops/op_support.h"
#include "tlk/kernels/cpu/softmax.h"
#include "tlk/kernels/ref/softmax.h"

namespace tlk::ops {

// Note [Softmax dispatch]: f32 on the CPU over the channel axis takes the fast path
// (kernels/cpu/softmax: oneDNN primitives in the input's own layout, blocked included); other axes,
// f64 (the gradcheck oracle) and bad arguments (whose messages the reference gives) take the reference.
// Both backwards read only the output, so the input is not kept.
Tensor softmax(const Tensor& x_in, int dim) {
  const Tensor x = autograd::widen_half(x_in);  // Note [Autocast]
  const bool fast = kernels::cpu::softmax_supported(x, dim);
  Tensor y = fast ? kernels::cpu::softmax_forward(x) : k::softmax_forward(x, dim);
  attach("softmax", {x}, {y}, [ys = SavedTensor(y, "softmax"), dim, fast](const Grads& g, const Node&) {
    return Grads{fast ? kernels::cpu::softmax_backward(g[0], ys.unpack())
                      : k::softmax_backward(g[0], ys.unpack(), dim)};
  });
  return y;
}

Tensor log_softmax(const Tensor& x_in, int dim) {
  const Tensor x = autograd::widen_half(x_in);  // Note [Autocast]
  const bool fast = kernels::cpu::softmax_supported(x, dim);
  Tensor y = fast ? kernels::cpu::log_softmax_forward(x) : k::log_softmax_forward(x, dim);
  attach("log_softmax", {x}, {y}, [ys = SavedTensor(y, "log_softmax"), dim, fast](const Grads& g, const Node&) {
    return Grads{fast ? kernels::cpu::log_softmax_backward(g[0], ys.unpack())
                      : k::log_softmax_backward(g[0], ys.unpack(), dim)};
  });
  return y;
}

}  // namespace tlk::ops
