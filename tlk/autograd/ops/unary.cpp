#include "tlk/autograd/ops/unary.h"

#include "tlk/autograd/function.h"

namespace tlk::ops::detail {

namespace k = kernels::ref;

Tensor unary(const Tensor& x, k::UnaryOp op, double alpha) {
  Tensor y = k::unary(x, op, alpha);
  const char* name = k::op_name(op);
  const bool reads_input = k::unary_reads_input(op);
  autograd::SavedTensor saved(op == k::UnaryOp::neg ? Tensor() : reads_input ? x : y, name);
  autograd::attach(name, {x}, {y}, [op, alpha, reads_input, saved](const std::vector<Tensor>& g, const autograd::Node&) {
    Tensor s = saved.unpack();
    return std::vector<Tensor>{reads_input ? k::unary_backward(g[0], s, Tensor(), op, alpha)
                                           : k::unary_backward(g[0], Tensor(), s, op, alpha)};
  });
  return y;
}

}  // namespace tlk::ops::detail
