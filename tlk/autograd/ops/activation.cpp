#include "tlk/autograd/ops/activation.h"

#include "tlk/autograd/function.h"
#include "tlk/kernels/ref/elementwise.h"

namespace tlk::ops {

using autograd::attach;
using autograd::Node;
using autograd::SavedTensor;
namespace k = kernels::ref;
using k::UnaryOp;
using Grads = std::vector<Tensor>;

namespace {
// relu and leaky_relu differentiate through the input; sigmoid and tanh through the output.
Tensor activation(const char* name, const Tensor& x, UnaryOp op, double alpha, bool saves_output) {
  Tensor y = k::unary(x, op, alpha);
  attach(name, {x}, {y},
         [name, op, alpha, saves_output, s = SavedTensor(saves_output ? y : x, name)](const Grads& g, const Node&) {
           Tensor saved = s.unpack();
           return Grads{saves_output ? k::unary_backward(g[0], Tensor(), saved, op, alpha)
                                     : k::unary_backward(g[0], saved, Tensor(), op, alpha)};
         });
  return y;
}
}  // namespace

Tensor relu(const Tensor& x) { return activation("relu", x, UnaryOp::relu, 0.0, false); }
Tensor leaky_relu(const Tensor& x, double negative_slope) {
  return activation("leaky_relu", x, UnaryOp::leaky_relu, negative_slope, false);
}
Tensor sigmoid(const Tensor& x) { return activation("sigmoid", x, UnaryOp::sigmoid, 0.0, true); }
Tensor tanh(const Tensor& x) { return activation("tanh", x, UnaryOp::tanh, 0.0, true); }

}  // namespace tlk::ops
