#include "tlk/autograd/ops/arith.h"

#include "tlk/autograd/ops/op_support.h"
#include "tlk/autograd/ops/unary.h"
#include "tlk/kernels/ref/elementwise.h"

namespace tlk::ops {

using k::BinaryOp;
using k::UnaryOp;

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = k::add(a, b);
  attach("add", {a, b}, {y}, [sa = a.shape(), sb = b.shape()](const Grads& g, const Node&) {
    return Grads{k::sum_to(g[0], sa), k::sum_to(g[0], sb)};
  });
  return y;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor y = k::sub(a, b);
  attach("sub", {a, b}, {y}, [sa = a.shape(), sb = b.shape()](const Grads& g, const Node& self) {
    return Grads{k::sum_to(g[0], sa),
                 self.needs_input_grad(1) ? k::sum_to(k::unary(g[0], UnaryOp::neg), sb) : Tensor()};
  });
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = k::mul(a, b);
  attach("mul", {a, b}, {y},
         [as = SavedTensor(a, "mul"), bs = SavedTensor(b, "mul")](const Grads& g, const Node& self) {
           Tensor ga, gb;
           if (self.needs_input_grad(0)) ga = k::sum_to(k::mul(g[0], bs.unpack()), as.unpack().shape());
           if (self.needs_input_grad(1)) gb = k::sum_to(k::mul(g[0], as.unpack()), bs.unpack().shape());
           return Grads{ga, gb};
         });
  return y;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor y = k::div(a, b);
  attach("div", {a, b}, {y},
         [as = SavedTensor(a, "div"), bs = SavedTensor(b, "div")](const Grads& g, const Node& self) {
           Tensor b_ = bs.unpack();
           Tensor ga, gb;
           if (self.needs_input_grad(0)) ga = k::sum_to(k::div(g[0], b_), as.unpack().shape());
           if (self.needs_input_grad(1)) {
             // d(a/b)/db = -a / b^2
             Tensor t = k::div(k::mul(g[0], as.unpack()), k::mul(b_, b_));
             gb = k::sum_to(k::unary(t, UnaryOp::neg), b_.shape());
           }
           return Grads{ga, gb};
         });
  return y;
}

Tensor add(const Tensor& a, double s) {
  Tensor y = k::binary_scalar(a, s, BinaryOp::add);
  attach("add_scalar", {a}, {y}, [](const Grads& g, const Node&) { return Grads{g[0]}; });
  return y;
}

Tensor mul(const Tensor& a, double s) {
  Tensor y = k::binary_scalar(a, s, BinaryOp::mul);
  attach("mul_scalar", {a}, {y},
         [s](const Grads& g, const Node&) { return Grads{k::binary_scalar(g[0], s, BinaryOp::mul)}; });
  return y;
}

Tensor rsub(double s, const Tensor& a) {
  Tensor y = k::binary_scalar(a, s, BinaryOp::sub, true);
  attach("rsub_scalar", {a}, {y}, [](const Grads& g, const Node&) { return Grads{k::unary(g[0], UnaryOp::neg)}; });
  return y;
}

Tensor rdiv(double s, const Tensor& a) {
  Tensor y = k::binary_scalar(a, s, BinaryOp::div, true);
  attach("rdiv_scalar", {a}, {y}, [as = SavedTensor(a, "rdiv_scalar"), s](const Grads& g, const Node&) {
    Tensor a_ = as.unpack();
    // d(s/a)/da = -s / a^2
    return Grads{k::div(k::binary_scalar(g[0], -s, BinaryOp::mul), k::mul(a_, a_))};
  });
  return y;
}

Tensor neg(const Tensor& a) { return detail::unary(a, UnaryOp::neg); }
Tensor exp(const Tensor& a) { return detail::unary(a, UnaryOp::exp); }
Tensor log(const Tensor& a) { return detail::unary(a, UnaryOp::log); }
Tensor sqrt(const Tensor& a) { return detail::unary(a, UnaryOp::sqrt); }
Tensor square(const Tensor& a) { return detail::unary(a, UnaryOp::square); }
Tensor abs(const Tensor& a) { return detail::unary(a, UnaryOp::abs); }

}  // namespace tlk::ops
