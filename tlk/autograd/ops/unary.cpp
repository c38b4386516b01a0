#include "tlk/autograd/ops/unary.h"

#include "tlk/autograd/ops/op_support.h"

namespace tlk::ops::detail {

Tensor unary(const Tensor& x, k::UnaryOp op, double alpha) {
  Tensor y = k::unary(x, op, alpha);
  const char* name = k::op_name(op);
  const bool reads_input = k::unary_reads_input(op);
  SavedTensor saved(op == k::UnaryOp::neg ? Tensor() : reads_input ? x : y, name);
  attach(name, {x}, {y}, [op, alpha, reads_input, saved](const Grads& g, const Node&) {
    Tensor s = saved.unpack();
    return Grads{reads_input ? k::unary_backward(g[0], s, Tensor(), op, alpha)
                             : k::unary_backward(g[0], Tensor(), s, op, alpha)};
  });
  return y;
}

}  // namespace tlk::ops::detail
