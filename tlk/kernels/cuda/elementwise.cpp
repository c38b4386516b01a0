#include "tlk/kernels/cuda/elementwise.h"

#include <array>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "tlk/kernels/cuda/elementwise_launch.h"
#include "tlk/kernels/cuda/launch.h"
#include "tlk/tensor/cuda_runtime.h"

namespace tlk::kernels::cuda {

static_assert(static_cast<int>(BinaryOp::add) == kAdd && static_cast<int>(BinaryOp::sub) == kSub &&
              static_cast<int>(BinaryOp::mul) == kMul && static_cast<int>(BinaryOp::div) == kDiv);
static_assert(static_cast<int>(UnaryOp::relu) == kRelu && static_cast<int>(UnaryOp::leaky_relu) == kLeakyRelu &&
              static_cast<int>(UnaryOp::sigmoid) == kSigmoid && static_cast<int>(UnaryOp::tanh) == kTanh &&
              static_cast<int>(UnaryOp::exp) == kExp && static_cast<int>(UnaryOp::log) == kLog &&
              static_cast<int>(UnaryOp::neg) == kNeg && static_cast<int>(UnaryOp::abs) == kAbs &&
              static_cast<int>(UnaryOp::sqrt) == kSqrt && static_cast<int>(UnaryOp::square) == kSquare);

namespace {

template <class T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

// The strides with which `t` is read as if broadcast to `shape` (0 along broadcast dimensions).
Dims broadcast_strides(const Tensor& t, const Shape& shape) {
  Dims s;
  const int lead = shape.size() - t.dim();
  for (int i = 0; i < shape.size(); ++i) {
    const int j = i - lead;
    s.push_back(j >= 0 && t.shape()[j] != 1 ? t.strides()[j] : 0);
  }
  return s;
}

// Extent-1 dimensions dropped, neighbours that are dense relative to each other in both operands
// merged (the output is contiguous, so it always merges): a same-shape contiguous op is 1-D.
BroadcastGeometry broadcast_geometry(const Shape& shape, const Dims& a, const Dims& b) {
  BroadcastGeometry g;
  for (int d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    const int last = g.ndim - 1;
    if (last >= 0 && g.a_strides[last] == a[d] * shape[d] && g.b_strides[last] == b[d] * shape[d]) {
      g.shape[last] *= shape[d];
      g.a_strides[last] = a[d];
      g.b_strides[last] = b[d];
      continue;
    }
    g.shape[g.ndim] = shape[d];
    g.a_strides[g.ndim] = a[d];
    g.b_strides[g.ndim] = b[d];
    ++g.ndim;
  }
  return g;
}

// Note [Channels-last elementwise]: an op whose output is channels-last walks the output in memory
// order: every operand's (shape, strides) is permuted to N, D, H, W, C before the geometry is built,
// so the output is contiguous in that order and broadcast_geometry merges as for a plain output.
// Unary ops and ops with a scalar walk a dense input (plain or channels-last) as one array and give
// their output its strides; sums read a dense input through its real strides.
const std::vector<int> kChannelsLastOrder{0, 2, 3, 4, 1};

template <class Array>
Array in_channels_last_order(const Array& a) {
  Array out;
  for (int d : kChannelsLastOrder) out.push_back(a[d]);
  return out;
}

// The layout of an elementwise op's output: channels-last when an operand of the output's shape is.
Layout output_layout(const Shape& shape, std::initializer_list<const Tensor*> operands) {
  for (const Tensor* t : operands)
    if (t->shape() == shape && is_channels_last(*t)) return Layout::channels_last;
  return Layout::plain;
}

BroadcastGeometry geometry_in_layout(const Shape& shape, const Tensor& a, const Tensor& b, Layout layout) {
  const Dims as = broadcast_strides(a, shape), bs = broadcast_strides(b, shape);
  if (layout != Layout::channels_last) return broadcast_geometry(shape, as, bs);
  return broadcast_geometry(in_channels_last_order(shape), in_channels_last_order(as), in_channels_last_order(bs));
}

// One side (kept or reduced) of a ReduceGeometry: appends dimension (extent, stride) of a dense input
// (plain or channels-last), merged into the previous one of the same side when they are neighbours in
// memory.
void append_dim(int& ndim, std::int64_t* shape, std::int64_t* strides, std::int64_t extent, std::int64_t stride) {
  if (ndim > 0 && strides[ndim - 1] == stride * extent) {
    shape[ndim - 1] *= extent;
    strides[ndim - 1] = stride;
    return;
  }
  shape[ndim] = extent;
  strides[ndim] = stride;
  ++ndim;
}

}  // namespace

Tensor binary(const Tensor& a, const Tensor& b, BinaryOp op) {
  const char* name = op_name(op);
  require_cuda_floating(a, name, "left operand");
  require_same(b, a, name, "right operand");
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  const Layout layout = output_layout(shape, {&a, &b});
  Tensor out = empty_in_layout(a, shape, layout);
  if (shape.numel() == 0) return out;
  const BroadcastGeometry g = geometry_in_layout(shape, a, b, layout);
  visit_cuda_floating(a.dtype(), name, [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_binary<T>(ptr<T>(out), ptr<const T>(a), ptr<const T>(b), g, static_cast<int>(op), stream());
  });
  check_launch(name);
  return out;
}

void add_inplace(const Tensor& out, const Tensor& b) {
  const char* name = "add_";
  require_cuda_floating(out, name, "output");
  require_same(b, out, name, "addend");
  check(is_plain(out) || is_channels_last(out),
        "{}: the output must be dense (plain or channels-last), got shape {} strides {}", name, out.shape().str(),
        out.strides().str());
  check(broadcast_shapes(out.shape(), b.shape(), name) == out.shape(), "{}: {} does not broadcast to the output {}",
        name, b.shape().str(), out.shape().str());
  if (out.numel() == 0) return;
  // Each element reads only its own index of `out`, so writing in place is safe.
  const BroadcastGeometry g = geometry_in_layout(out.shape(), out, b, layout_of(out));
  visit_cuda_floating(out.dtype(), name, [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_binary<T>(ptr<T>(out), ptr<const T>(out), ptr<const T>(b), g, kAdd, stream());
  });
  check_launch(name);
}

Tensor binary_scalar(const Tensor& a_in, double s, BinaryOp op, bool scalar_first) {
  const char* name = op_name(op);
  require_cuda_floating(a_in, name, "operand");
  Tensor a = dense(a_in, name);
  Tensor out = empty_in_layout(a, a.shape(), layout_of(a));
  visit_cuda_floating(a.dtype(), name, [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_binary_scalar<T>(ptr<T>(out), ptr<const T>(a), a.numel(), s, static_cast<int>(op),
                            scalar_first, stream());
  });
  check_launch(name);
  return out;
}

Tensor unary(const Tensor& x_in, UnaryOp op, double alpha) {
  const char* name = op_name(op);
  require_cuda_floating(x_in, name, "input");
  Tensor x = dense(x_in, name);
  Tensor out = empty_in_layout(x, x.shape(), layout_of(x));
  visit_cuda_floating(x.dtype(), name, [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_unary<T>(ptr<T>(out), ptr<const T>(x), x.numel(), static_cast<int>(op), alpha, stream());
  });
  check_launch(name);
  return out;
}

Tensor unary_backward(const Tensor& grad_in, const Tensor& x_in, const Tensor& y_in, UnaryOp op, double alpha) {
  const char* name = op_name(op);
  require_cuda_floating(grad_in, name, "gradient");
  const bool reads_input = unary_reads_input(op);
  const char* saved_name = reads_input ? "input" : "output";
  const Tensor& saved_in = reads_input ? x_in : y_in;
  check(op == UnaryOp::neg || saved_in.defined(), "{} backward: needs the op's {}, which was not given", name,
        saved_name);
  Tensor grad = dense(grad_in, name);
  Tensor saved;
  if (op != UnaryOp::neg) {
    require_same(saved_in, grad, name, saved_name);
    check(saved_in.shape() == grad.shape(), "{} backward: gradient {} {} does not match the saved {} {} {}", name,
          grad.shape().str(), dtype_name(grad.dtype()), saved_name, saved_in.shape().str(),
          dtype_name(saved_in.dtype()));
    saved = dense_as(saved_in, layout_of(grad), name);
  }
  Tensor out = empty_in_layout(grad, grad.shape(), layout_of(grad));
  visit_cuda_floating(grad.dtype(), name, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* s = saved.defined() ? ptr<const T>(saved) : nullptr;
    launch_unary_backward<T>(ptr<T>(out), ptr<const T>(grad), reads_input ? s : nullptr, reads_input ? nullptr : s,
                             grad.numel(), static_cast<int>(op), alpha, stream());
  });
  check_launch(name);
  return out;
}

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  Tensor reduced = sum(grad, ref::sum_to_axes(grad.shape(), shape), true);
  // Drop the leading axes that `shape` does not have.
  return make_view(reduced, shape, contiguous_strides(shape), reduced.offset());
}

Tensor expand_to(const Tensor& x, const Shape& shape) {
  require_cuda_floating(x, "expand", "input");
  const Shape target = broadcast_shapes(shape, x.shape(), "expand");
  Tensor out = empty_like_shape(x, target);
  const Dims strides = broadcast_strides(x, target);
  tlk::cuda::copy_strided({out.raw_data(), out.dtype(), out.strides().begin()}, {x.raw_data(), x.dtype(), strides.begin()},
                          target.begin(), target.size(), x.device().index);
  return out;
}

Tensor sum(const Tensor& x_in, const std::vector<int>& axes_in, bool keepdim) {
  require_cuda_floating(x_in, "sum", "input");
  // A channels-last input is read where it lies: the geometry below takes its real strides.
  Tensor x = dense(x_in, "sum");
  const int nd = x.dim();
  std::vector<bool> reduce(static_cast<std::size_t>(nd), axes_in.empty());
  for (int a : axes_in) reduce[static_cast<std::size_t>(normalize_axis(a, nd, "sum"))] = true;
  Shape kept;  // output shape with reduced axes as 1
  for (int i = 0; i < nd; ++i) kept.push_back(reduce[static_cast<std::size_t>(i)] ? 1 : x.shape()[i]);
  Tensor out = empty_like_shape(x, kept);
  ReduceGeometry g;
  const Dims strides = x.strides();
  for (int d = 0; d < nd; ++d) {
    if (x.shape()[d] == 1) continue;
    if (reduce[static_cast<std::size_t>(d)])
      append_dim(g.reduced_ndim, g.reduced_shape, g.reduced_strides, x.shape()[d], strides[d]);
    else
      append_dim(g.kept_ndim, g.kept_shape, g.kept_strides, x.shape()[d], strides[d]);
  }
  g.outputs = kept.numel();
  g.reduced = g.outputs > 0 ? x.numel() / g.outputs : 0;
  if (g.outputs > 0 && g.reduced == 0) {
    out.fill_(0.0);  // a sum over an empty axis
  } else if (g.outputs > 0) {
    const std::int64_t chunks = sum_chunks(g);
    Tensor partials;
    if (chunks > 1) partials = Tensor::empty({g.outputs * chunks}, TensorOptions{DType::f64, x.device()});
    visit_cuda_floating(x.dtype(), "sum", [&](auto tag) {
      using T = typename decltype(tag)::type;
      launch_sum<T>(ptr<T>(out), ptr<const T>(x), g, partials.defined() ? ptr<double>(partials) : nullptr, chunks,
                    stream());
    });
    check_launch("sum");
  }
  if (keepdim) return out;
  Shape squeezed;
  for (int i = 0; i < nd; ++i)
    if (!reduce[static_cast<std::size_t>(i)]) squeezed.push_back(x.shape()[i]);
  return make_view(out, squeezed, contiguous_strides(squeezed), out.offset());
}

Tensor where(const Tensor& mask_in, const Tensor& a_in, const Tensor& b_in) {
  require_cuda_float(a_in, "where", "a");
  require_same(b_in, a_in, "where", "b");
  check(mask_in.defined() && mask_in.device() == a_in.device(), "where: the mask must be on {} like a and b, got {}",
        a_in.device().str(), mask_in.defined() ? mask_in.device().str() : std::string("an undefined tensor"));
  check(mask_in.shape() == a_in.shape() && a_in.shape() == b_in.shape(), "where: shapes differ (mask {}, a {}, b {})",
        mask_in.shape().str(), a_in.shape().str(), b_in.shape().str());
  Tensor a = contiguous(a_in), b = contiguous(b_in), mask = contiguous(mask_in);
  // Masks other than u8, f32 and f64 are read as f64: every nonzero integer stays nonzero.
  if (mask.dtype() != DType::u8 && mask.dtype() != DType::f32 && mask.dtype() != DType::f64)
    mask = mask.to(DType::f64);
  Tensor out = empty_like_shape(a, a.shape());
  visit_floating(a.dtype(), "where", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const std::int64_t n = a.numel();
    if (mask.dtype() == DType::u8)
      launch_where<T>(ptr<T>(out), ptr<const std::uint8_t>(mask), ptr<const T>(a), ptr<const T>(b), n, stream());
    else if (mask.dtype() == DType::f32)
      launch_where<T>(ptr<T>(out), ptr<const float>(mask), ptr<const T>(a), ptr<const T>(b), n, stream());
    else
      launch_where<T>(ptr<T>(out), ptr<const double>(mask), ptr<const T>(a), ptr<const T>(b), n, stream());
  });
  check_launch("where");
  return out;
}

}  // namespace tlk::kernels::cuda
