#include "tlk/autograd/ops/conv3d.h"

#include "tlk/autograd/ops/op_support.h"
#include "tlk/kernels/ref/conv3d.h"

namespace tlk::ops {

Tensor conv3d(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv3dOptions& opt) {
  Tensor y = k::conv3d_forward(input, weight, bias, opt);
  attach(
      "conv3d", {input, weight, bias}, {y},
      [xs = SavedTensor(input, "conv3d"), ws = SavedTensor(weight, "conv3d"), opt](const Grads& g, const Node& self) {
        Grads out(3);
        if (self.needs_input_grad(0)) out[0] = k::conv3d_backward_data(g[0], ws.unpack(), xs.unpack().shape(), opt);
        if (self.needs_input_grad(1)) out[1] = k::conv3d_backward_weights(g[0], xs.unpack(), ws.unpack().shape(), opt);
        if (self.needs_input_grad(2)) out[2] = k::conv3d_backward_bias(g[0]);
        return out;
      });
  return y;
}

// Note [Transposed convolution as convolution] in kernels/ref/conv3d.h.
Tensor conv_transpose3d(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv3dOptions& opt) {
  Tensor y = k::conv_transpose3d_forward(input, weight, bias, opt);
  attach("conv_transpose3d", {input, weight, bias}, {y},
         [xs = SavedTensor(input, "conv_transpose3d"), ws = SavedTensor(weight, "conv_transpose3d"), opt](
             const Grads& g, const Node& self) {
           Grads out(3);
           Conv3dOptions plain = opt;
           plain.output_padding = {0, 0, 0};
           if (self.needs_input_grad(0)) out[0] = k::conv3d_forward(g[0], ws.unpack(), Tensor(), plain);
           if (self.needs_input_grad(1))
             out[1] = k::conv3d_backward_weights(xs.unpack(), g[0], ws.unpack().shape(), plain);
           if (self.needs_input_grad(2)) out[2] = k::conv3d_backward_bias(g[0]);
           return out;
         });
  return y;
}

}  // namespace tlk::ops
