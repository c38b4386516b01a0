#include "tlk/autograd/ops/linear.h"

#include "tlk/autograd/autocast.h"
#include "tlk/autograd/ops/op_support.h"
#include "tlk/kernels/ref/linear.h"

namespace tlk::ops {

Tensor linear(const Tensor& x_in, const Tensor& weight, const Tensor& bias) {
  // Note [Autocast]: cuBLAS runs linear layers in f32 (they are small next to the convolutions).
  const Tensor x = autograd::widen_half(x_in);
  Tensor y = k::linear_forward(x, weight, bias);
  attach("linear", {x, weight, bias}, {y},
         [xs = SavedTensor(x, "linear"), ws = SavedTensor(weight, "linear")](const Grads& g, const Node& self) {
           Grads out(3);
           if (self.needs_input_grad(0)) out[0] = k::linear_backward_input(g[0], ws.unpack());
           if (self.needs_input_grad(1)) out[1] = k::linear_backward_weights(g[0], xs.unpack());
           if (self.needs_input_grad(2)) out[2] = k::linear_backward_bias(g[0]);
           return out;
         });
  return y;
}

}  // namespace tlk::ops
