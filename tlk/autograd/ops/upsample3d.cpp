#include "tlk/autograd/ops/upsample3d.h"

#include "tlk/autograd/ops/op_support.h"
#include "tlk/kernels/ref/upsample3d.h"

namespace tlk::ops {

Tensor upsample3d(const Tensor& x, const Upsample3dOptions& opt) {
  Tensor y = k::upsample3d_forward(x, opt);
  attach("upsample3d", {x}, {y}, [shape = x.shape(), opt](const Grads& g, const Node&) {
    return Grads{k::upsample3d_backward(g[0], shape, opt)};
  });
  return y;
}

}  // namespace tlk::ops
