#include "tlk/autograd/ops/pool3d.h"

#include "tlk/autograd/ops/op_support.h"
#include "tlk/kernels/ref/pool3d.h"

namespace tlk::ops {

Tensor max_pool3d(const Tensor& x, const Pool3dOptions& opt) {
  auto [y, indices] = k::max_pool3d_forward(x, opt);
  attach("max_pool3d", {x}, {y},
         [idx = SavedTensor(indices, "max_pool3d"), shape = x.shape()](const Grads& g, const Node&) {
           return Grads{k::max_pool3d_backward(g[0], idx.unpack(), shape)};
         });
  return y;
}

Tensor avg_pool3d(const Tensor& x, const Pool3dOptions& opt) {
  Tensor y = k::avg_pool3d_forward(x, opt);
  attach("avg_pool3d", {x}, {y}, [shape = x.shape(), opt](const Grads& g, const Node&) {
    return Grads{k::avg_pool3d_backward(g[0], shape, opt)};
  });
  return y;
}

Tensor adaptive_avg_pool3d(const Tensor& x, Int3 output_size) {
  Tensor y = k::adaptive_avg_pool3d_forward(x, output_size);
  attach("adaptive_avg_pool3d", {x}, {y}, [shape = x.shape()](const Grads& g, const Node&) {
    return Grads{k::adaptive_avg_pool3d_backward(g[0], shape)};
  });
  return y;
}

Tensor global_avg_pool3d(const Tensor& x) { return adaptive_avg_pool3d(x, {1, 1, 1}); }

}  // namespace tlk::ops
