#include "tlk/kernels/ref/elementwise.h"

#include <cmath>

#include "tlk/kernels/ref/common.h"

namespace tlk::kernels::ref {

namespace {

template <class T>
T apply_binary(T a, T b, BinaryOp op) {
  switch (op) {
    case BinaryOp::add:
      return a + b;
    case BinaryOp::sub:
      return a - b;
    case BinaryOp::mul:
      return a * b;
    case BinaryOp::div:
      return a / b;
  }
  return T(0);
}

template <class T>
T apply_unary(T x, UnaryOp op, T alpha) {
  switch (op) {
    case UnaryOp::relu:
      return x > T(0) ? x : T(0);
    case UnaryOp::leaky_relu:
      return x > T(0) ? x : alpha * x;
    case UnaryOp::sigmoid:
      return x >= T(0) ? T(1) / (T(1) + std::exp(-x)) : std::exp(x) / (T(1) + std::exp(x));
    case UnaryOp::tanh:
      return std::tanh(x);
    case UnaryOp::exp:
      return std::exp(x);
    case UnaryOp::log:
      return std::log(x);
    case UnaryOp::neg:
      return -x;
    case UnaryOp::abs:
      return std::abs(x);
    case UnaryOp::sqrt:
      return std::sqrt(x);
    case UnaryOp::square:
      return x * x;
  }
  return T(0);
}

// Derivative f'(x) expressed through the input x and the output y.
template <class T>
T unary_derivative(T x, T y, UnaryOp op, T alpha) {
  switch (op) {
    case UnaryOp::relu:
      return x > T(0) ? T(1) : T(0);
    case UnaryOp::leaky_relu:
      return x > T(0) ? T(1) : alpha;
    case UnaryOp::sigmoid:
      return y * (T(1) - y);
    case UnaryOp::tanh:
      return T(1) - y * y;
    case UnaryOp::exp:
      return y;
    case UnaryOp::log:
      return T(1) / x;
    case UnaryOp::neg:
      return T(-1);
    case UnaryOp::abs:
      return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
    case UnaryOp::sqrt:
      return T(0.5) / y;
    case UnaryOp::square:
      return T(2) * x;
  }
  return T(0);
}

}  // namespace

bool unary_reads_input(UnaryOp op) {
  return op == UnaryOp::relu || op == UnaryOp::leaky_relu || op == UnaryOp::log || op == UnaryOp::abs ||
         op == UnaryOp::square || op == UnaryOp::neg;
}

const char* op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add:
      return "add";
    case BinaryOp::sub:
      return "sub";
    case BinaryOp::mul:
      return "mul";
    case BinaryOp::div:
      return "div";
  }
  return "binary op";
}

const char* op_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::relu:
      return "relu";
    case UnaryOp::leaky_relu:
      return "leaky_relu";
    case UnaryOp::sigmoid:
      return "sigmoid";
    case UnaryOp::tanh:
      return "tanh";
    case UnaryOp::exp:
      return "exp";
    case UnaryOp::log:
      return "log";
    case UnaryOp::neg:
      return "neg";
    case UnaryOp::abs:
      return "abs";
    case UnaryOp::sqrt:
      return "sqrt";
    case UnaryOp::square:
      return "square";
  }
  return "unary op";
}

Tensor binary(const Tensor& a_in, const Tensor& b_in, BinaryOp op) {
  const char* name = op_name(op);
  Tensor a = cpu_input(a_in, name, "left operand"), b = cpu_input(b_in, name, "right operand");
  check_same_dtype(name, {&a, &b});
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(shape, TensorOptions{a.dtype()});
  visit_floating(a.dtype(), name, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* o = out.data<T>();
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    const std::array<Dims, 2> strides{broadcast_strides(a, shape), broadcast_strides(b, shape)};
    const std::int64_t sa = shape.size() ? strides[0].back() : 0, sb = shape.size() ? strides[1].back() : 0;
    for_each_row(shape, strides, [&](std::int64_t out_off, const std::array<std::int64_t, 2>& off, std::int64_t n) {
      for (std::int64_t i = 0; i < n; ++i) o[out_off + i] = apply_binary(pa[off[0] + i * sa], pb[off[1] + i * sb], op);
    });
  });
  return out;
}

Tensor binary_scalar(const Tensor& a_in, double s, BinaryOp op, bool scalar_first) {
  const char* name = op_name(op);
  Tensor a = cpu_input(a_in, name, "operand");
  Tensor out = Tensor::empty(a.shape(), TensorOptions{a.dtype()});
  visit_floating(a.dtype(), name, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* o = out.data<T>();
    const T* pa = a.data<T>();
    const T v = static_cast<T>(s);
    const std::array<Dims, 1> strides{a.strides()};
    const std::int64_t sa = a.dim() ? a.strides().back() : 0;
    for_each_row(a.shape(), strides, [&](std::int64_t out_off, const std::array<std::int64_t, 1>& off, std::int64_t n) {
      for (std::int64_t i = 0; i < n; ++i) {
        const T x = pa[off[0] + i * sa];
        o[out_off + i] = scalar_first ? apply_binary(v, x, op) : apply_binary(x, v, op);
      }
    });
  });
  return out;
}

Tensor unary(const Tensor& x_in, UnaryOp op, double alpha) {
  const char* name = op_name(op);
  Tensor x = cpu_contiguous(x_in, name, "input");
  Tensor out = empty_like(x);
  visit_floating(x.dtype(), name, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* o = out.data<T>();
    const std::int64_t n = x.numel();
    const T a = static_cast<T>(alpha);
#pragma omp parallel for if (n > 32768)
    for (std::int64_t i = 0; i < n; ++i) o[i] = apply_unary(px[i], op, a);
  });
  return out;
}

Tensor unary_backward(const Tensor& grad_in, const Tensor& x_in, const Tensor& y_in, UnaryOp op, double alpha) {
  const char* name = op_name(op);
  Tensor grad = cpu_contiguous(grad_in, name, "gradient");
  const bool reads_input = unary_reads_input(op);
  const Tensor& saved_in = reads_input ? x_in : y_in;
  check(op == UnaryOp::neg || saved_in.defined(), "{} backward: needs the op's {}, which was not given", name,
        reads_input ? "input" : "output");
  Tensor saved = saved_in.defined() ? cpu_contiguous(saved_in, name, reads_input ? "input" : "output") : Tensor();
  check(!saved.defined() || (saved.shape() == grad.shape() && saved.dtype() == grad.dtype()),
        "{} backward: gradient {} {} does not match the saved {} {} {}", name, grad.shape().str(),
        dtype_name(grad.dtype()), reads_input ? "input" : "output", saved.defined() ? saved.shape().str() : "",
        saved.defined() ? dtype_name(saved.dtype()) : "");
  Tensor x = reads_input ? saved : Tensor(), y = reads_input ? Tensor() : saved;
  Tensor out = empty_like(grad);
  visit_floating(grad.dtype(), name, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* g = grad.data<T>();
    const T* px = x.defined() ? x.data<T>() : nullptr;
    const T* py = y.defined() ? y.data<T>() : nullptr;
    T* o = out.data<T>();
    const std::int64_t n = grad.numel();
    const T a = static_cast<T>(alpha);
#pragma omp parallel for if (n > 32768)
    for (std::int64_t i = 0; i < n; ++i) o[i] = g[i] * unary_derivative(px ? px[i] : T(0), py ? py[i] : T(0), op, a);
  });
  return out;
}

std::vector<int> sum_to_axes(const Shape& grad_shape, const Shape& shape) {
  const int lead = grad_shape.size() - shape.size();
  check(lead >= 0 && broadcast_shapes(shape, grad_shape, "sum_to") == grad_shape,
        "sum_to: gradient of shape {} cannot be reduced to shape {} (it is not a broadcast of it)", grad_shape.str(),
        shape.str());
  std::vector<int> axes;
  for (int i = 0; i < grad_shape.size(); ++i)
    if (i < lead || (shape[i - lead] == 1 && grad_shape[i] != 1)) axes.push_back(i);
  return axes;
}

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  Tensor reduced = sum(grad, sum_to_axes(grad.shape(), shape), true);
  // Drop the leading axes that `shape` does not have.
  return make_view(reduced, shape, contiguous_strides(shape), reduced.offset());
}

Tensor expand_to(const Tensor& x, const Shape& shape) {
  broadcast_shapes(x.shape(), shape, "expand");
  Tensor zeros = Tensor::zeros(shape, TensorOptions{x.dtype()});
  return binary(zeros, x, BinaryOp::add);
}

Tensor sum(const Tensor& x_in, const std::vector<int>& axes_in, bool keepdim) {
  Tensor x = cpu_contiguous(x_in, "sum", "input");
  const int nd = x.dim();
  std::vector<bool> reduce(static_cast<std::size_t>(nd), axes_in.empty());
  for (int a : axes_in) reduce[static_cast<std::size_t>(normalize_axis(a, nd, "sum"))] = true;
  Shape kept;  // output shape with reduced axes as 1
  for (int i = 0; i < nd; ++i) kept.push_back(reduce[static_cast<std::size_t>(i)] ? 1 : x.shape()[i]);
  Tensor out = Tensor::empty(kept, TensorOptions{x.dtype()});
  visit_floating(x.dtype(), "sum", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* o = out.data<T>();
    std::vector<double> acc(static_cast<std::size_t>(kept.numel()), 0.0);
    const Dims out_strides = contiguous_strides(kept);
    const std::int64_t n = x.numel();
    std::vector<std::int64_t> idx(static_cast<std::size_t>(nd), 0);
    for (std::int64_t i = 0; i < n; ++i) {
      std::int64_t off = 0;
      for (int d = 0; d < nd; ++d)
        if (!reduce[static_cast<std::size_t>(d)]) off += idx[static_cast<std::size_t>(d)] * out_strides[d];
      acc[static_cast<std::size_t>(off)] += static_cast<double>(px[i]);
      for (int d = nd - 1; d >= 0; --d) {
        if (++idx[static_cast<std::size_t>(d)] < x.shape()[d]) break;
        idx[static_cast<std::size_t>(d)] = 0;
      }
    }
    for (std::size_t i = 0; i < acc.size(); ++i) o[i] = static_cast<T>(acc[i]);
  });
  if (keepdim) return out;
  Shape squeezed;
  for (int i = 0; i < nd; ++i)
    if (!reduce[static_cast<std::size_t>(i)]) squeezed.push_back(x.shape()[i]);
  return make_view(out, squeezed, contiguous_strides(squeezed), out.offset());
}

Tensor where(const Tensor& mask_in, const Tensor& a_in, const Tensor& b_in) {
  Tensor mask = mask_in.contiguous().to(DType::f64), a = a_in.contiguous(), b = b_in.contiguous();
  check(mask.shape() == a.shape() && a.shape() == b.shape(), "where: shapes differ (mask {}, a {}, b {})",
        mask.shape().str(), a.shape().str(), b.shape().str());
  check_same_dtype("where", {&a, &b});
  Tensor out = empty_like(a);
  visit_floating(a.dtype(), "where", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const double* m = mask.data<double>();
    const T *pa = a.data<T>(), *pb = b.data<T>();
    T* o = out.data<T>();
    for (std::int64_t i = 0; i < a.numel(); ++i) o[i] = m[i] != 0.0 ? pa[i] : pb[i];
  });
  return out;
}

}  // namespace tlk::kernels::ref
