#include "tlk/autograd/gradient_reversal.h"

#include "tlk/autograd/function.h"
#include "tlk/kernels/routed.h"

namespace tlk::autograd {

Tensor grad_reverse(const Tensor& x, double lambda) {
  // The output is a new handle on the same data, so the graph gets its own node.
  Tensor y = x.detach();
  attach("grad_reverse", {x}, {y}, [lambda](const std::vector<Tensor>& g, const Node&) {
    return std::vector<Tensor>{kernels::routed::binary_scalar(g[0], -lambda, kernels::ref::BinaryOp::mul)};
  });
  return y;
}

}  // namespace tlk::autograd
