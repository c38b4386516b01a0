#include "tlk/kernels/ref/pool3d.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "tlk/kernels/ref/common.h"

namespace tlk::kernels::ref {

namespace {

// The input positions [lo, hi) one output position reads along one axis, and the window's length
// counting padded positions (the divisor of an average with count_include_pad).
struct Span {
  std::int64_t lo, hi, padded;
};
using Spans = std::array<std::vector<Span>, 3>;

// Note [Pooling windows]: as in PyTorch (ceil_mode=False), window o starts at o*stride - padding and
// ends at min(start + kernel, extent + padding); the part inside [0, extent) is read. Because padding
// is at most kernel / 2 (checked in pool3d_output_shape) every window holds at least one input.
Spans pool_spans(const Shape& in, const Shape& out, const Pool3dOptions& opt) {
  const Int3 stride = opt.effective_stride();
  Spans spans;
  for (int a = 0; a < 3; ++a)
    for (std::int64_t o = 0; o < out[2 + a]; ++o) {
      const std::int64_t start = o * stride[a] - opt.padding[a];
      const std::int64_t end = std::min(start + opt.kernel[a], in[2 + a] + opt.padding[a]);
      spans[a].push_back({std::max<std::int64_t>(start, 0), std::min(end, in[2 + a]), end - start});
    }
  return spans;
}

// Note [Adaptive pooling bins]: PyTorch's rule, bin o covers [floor(o * in / out), ceil((o + 1) * in / out)),
// so bins tile the input, overlap by one element when out does not divide in, and repeat elements
// when out > in. Output size 1 is the global average.
Spans adaptive_spans(const Shape& in, const Shape& out) {
  Spans spans;
  for (int a = 0; a < 3; ++a) {
    const std::int64_t n = in[2 + a], m = out[2 + a];
    for (std::int64_t o = 0; o < m; ++o) {
      const std::int64_t lo = o * n / m, hi = ((o + 1) * n + m - 1) / m;
      spans[a].push_back({lo, hi, hi - lo});
    }
  }
  return spans;
}

// Calls fn(out_index, sd, sh, sw) for every output position of one (n, c) plane, in row-major order.
template <class Fn>
void for_each_window(const Spans& s, Fn&& fn) {
  std::int64_t o = 0;
  for (const Span& sd : s[0])
    for (const Span& sh : s[1])
      for (const Span& sw : s[2]) fn(o++, sd, sh, sw);
}

double divisor(const Span& sd, const Span& sh, const Span& sw, bool include_pad) {
  return include_pad ? static_cast<double>(sd.padded * sh.padded * sw.padded)
                     : static_cast<double>((sd.hi - sd.lo) * (sh.hi - sh.lo) * (sw.hi - sw.lo));
}

Tensor average_forward(const Tensor& input_in, const Shape& out_shape, const Spans& spans, bool include_pad,
                       const char* op) {
  Tensor input = cpu_contiguous(input_in, op, "input");
  Tensor out = Tensor::empty(out_shape, TensorOptions{input.dtype()});
  const Shape& in_shape = input.shape();
  const ChannelView in = ChannelView::of(in_shape);
  const std::int64_t planes = in.outer * in.channels, in_vol = in.inner, out_vol = ChannelView::of(out_shape).inner;
  const std::int64_t H = in_shape[3], W = in_shape[4];
  visit_floating(input.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = input.data<T>();
    T* y = out.data<T>();
#pragma omp parallel for schedule(static)
    for (std::int64_t p = 0; p < planes; ++p) {
      const T* xs = x + p * in_vol;
      T* ys = y + p * out_vol;
      for_each_window(spans, [&](std::int64_t o, const Span& sd, const Span& sh, const Span& sw) {
        double acc = 0.0;
        for (std::int64_t d = sd.lo; d < sd.hi; ++d)
          for (std::int64_t h = sh.lo; h < sh.hi; ++h)
            for (std::int64_t w = sw.lo; w < sw.hi; ++w) acc += xs[(d * H + h) * W + w];
        ys[o] = static_cast<T>(acc / divisor(sd, sh, sw, include_pad));
      });
    }
  });
  return out;
}

Tensor average_backward(const Tensor& grad_in, const Shape& in_shape, const Spans& spans, bool include_pad,
                        const char* op) {
  Tensor grad = cpu_contiguous(grad_in, op, "grad_output");
  Tensor out = Tensor::empty(in_shape, TensorOptions{grad.dtype()});
  const ChannelView in = ChannelView::of(in_shape);
  const std::int64_t planes = in.outer * in.channels, in_vol = in.inner, out_vol = ChannelView::of(grad.shape()).inner;
  const std::int64_t H = in_shape[3], W = in_shape[4];
  visit_floating(grad.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* dy = grad.data<T>();
    T* dx = out.data<T>();
#pragma omp parallel for schedule(static)
    for (std::int64_t p = 0; p < planes; ++p) {
      const T* dys = dy + p * out_vol;
      std::vector<double> acc(static_cast<std::size_t>(in_vol), 0.0);
      for_each_window(spans, [&](std::int64_t o, const Span& sd, const Span& sh, const Span& sw) {
        const double g = dys[o] / divisor(sd, sh, sw, include_pad);
        for (std::int64_t d = sd.lo; d < sd.hi; ++d)
          for (std::int64_t h = sh.lo; h < sh.hi; ++h)
            for (std::int64_t w = sw.lo; w < sw.hi; ++w) acc[static_cast<std::size_t>((d * H + h) * W + w)] += g;
      });
      T* dxs = dx + p * in_vol;
      for (std::int64_t i = 0; i < in_vol; ++i) dxs[i] = static_cast<T>(acc[static_cast<std::size_t>(i)]);
    }
  });
  return out;
}

// Checks that grad_output has the shape the forward produced from an input of `input_shape`.
void check_grad_shape(const Tensor& grad, const Shape& expected, const Shape& input_shape, const char* op) {
  check(grad.defined() && grad.shape() == expected, "{}: grad_output has shape {}, expected {} for input {}", op,
        grad.defined() ? grad.shape().str() : "undefined", expected.str(), input_shape.str());
}

}  // namespace

MaxPool3dResult max_pool3d_forward(const Tensor& input_in, const Pool3dOptions& opt) {
  const char* op = "max_pool3d";
  check(input_in.defined(), "{}: input is undefined", op);
  const Shape out_shape = pool3d_output_shape(input_in.shape(), opt, op);
  Tensor input = cpu_contiguous(input_in, op, "input");
  const Spans spans = pool_spans(input.shape(), out_shape, opt);
  const Shape& in_shape = input.shape();
  const ChannelView in = ChannelView::of(in_shape);
  const std::int64_t planes = in.outer * in.channels, in_vol = in.inner, out_vol = ChannelView::of(out_shape).inner;
  const std::int64_t H = in_shape[3], W = in_shape[4];
  MaxPool3dResult result;
  visit_floating(input.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    result.output = Tensor::empty(out_shape, TensorOptions{input.dtype()});
    result.indices = Tensor::empty(out_shape, TensorOptions{DType::i64});
    const T* x = input.data<T>();
    T* y = result.output.data<T>();
    std::int64_t* idx = result.indices.data<std::int64_t>();
#pragma omp parallel for schedule(static)
    for (std::int64_t p = 0; p < planes; ++p) {
      const T* xs = x + p * in_vol;
      T* ys = y + p * out_vol;
      std::int64_t* is = idx + p * out_vol;
      for_each_window(spans, [&](std::int64_t o, const Span& sd, const Span& sh, const Span& sw) {
        // Note [Max pooling ties and NaN]: as PyTorch's CPU kernel, start from -inf at the window's
        // first input, replace only on a strictly larger value (the first maximum wins a tie) or a NaN
        // (which then propagates), so padded positions never win.
        T best = -std::numeric_limits<T>::infinity();
        std::int64_t best_index = (sd.lo * H + sh.lo) * W + sw.lo;
        for (std::int64_t d = sd.lo; d < sd.hi; ++d)
          for (std::int64_t h = sh.lo; h < sh.hi; ++h)
            for (std::int64_t w = sw.lo; w < sw.hi; ++w) {
              const std::int64_t i = (d * H + h) * W + w;
              const T v = xs[i];
              if (v > best || std::isnan(v)) {
                best = v;
                best_index = i;
              }
            }
        ys[o] = best;
        is[o] = best_index;
      });
    }
  });
  return result;
}

Tensor max_pool3d_backward(const Tensor& grad_in, const Tensor& indices_in, const Shape& input_shape) {
  const char* op = "max_pool3d backward";
  check_volume_shape(input_shape, op);
  Tensor grad = cpu_input(grad_in, op, "grad_output"), indices = cpu_input(indices_in, op, "indices");
  // grad_output is the only floating tensor read; the indices are i64 by construction.
  check(indices.dtype() == DType::i64, "{}: indices have dtype {}, expected i64", op, dtype_name(indices.dtype()));
  check(grad.dim() == 5 && grad.shape() == indices.shape() && grad.size(0) == input_shape[0] &&
            grad.size(1) == input_shape[1],
        "{}: grad_output {} and indices {} do not fit input {} (expected one 5-D shape with the input's N and C)", op,
        grad.shape().str(), indices.shape().str(), input_shape.str());
  grad = grad.contiguous();
  indices = indices.contiguous();
  const ChannelView in = ChannelView::of(input_shape);
  const std::int64_t planes = in.outer * in.channels, in_vol = in.inner, out_vol = ChannelView::of(grad.shape()).inner;
  const std::int64_t* idx = indices.data<std::int64_t>();
  for (std::int64_t i = 0; i < indices.numel(); ++i)
    check(idx[i] >= 0 && idx[i] < in_vol, "{}: index {} at position {} is outside the input volume {}", op, idx[i], i,
          input_shape.str());
  Tensor out = Tensor::empty(input_shape, TensorOptions{grad.dtype()});
  visit_floating(grad.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* dy = grad.data<T>();
    T* dx = out.data<T>();
#pragma omp parallel for schedule(static)
    for (std::int64_t p = 0; p < planes; ++p) {
      std::vector<double> acc(static_cast<std::size_t>(in_vol), 0.0);
      const std::int64_t* ips = idx + p * out_vol;
      const T* dys = dy + p * out_vol;
      for (std::int64_t o = 0; o < out_vol; ++o) acc[static_cast<std::size_t>(ips[o])] += dys[o];
      T* dxs = dx + p * in_vol;
      for (std::int64_t i = 0; i < in_vol; ++i) dxs[i] = static_cast<T>(acc[static_cast<std::size_t>(i)]);
    }
  });
  return out;
}

Tensor avg_pool3d_forward(const Tensor& input, const Pool3dOptions& opt) {
  const char* op = "avg_pool3d";
  check(input.defined(), "{}: input is undefined", op);
  const Shape out_shape = pool3d_output_shape(input.shape(), opt, op);
  return average_forward(input, out_shape, pool_spans(input.shape(), out_shape, opt), opt.count_include_pad, op);
}

Tensor avg_pool3d_backward(const Tensor& grad_output, const Shape& input_shape, const Pool3dOptions& opt) {
  const char* op = "avg_pool3d backward";
  const Shape out_shape = pool3d_output_shape(input_shape, opt, op);
  check_grad_shape(grad_output, out_shape, input_shape, op);
  return average_backward(grad_output, input_shape, pool_spans(input_shape, out_shape, opt), opt.count_include_pad, op);
}

Tensor adaptive_avg_pool3d_forward(const Tensor& input, const Int3& output_size) {
  const char* op = "adaptive_avg_pool3d";
  check(input.defined(), "{}: input is undefined", op);
  const Shape out_shape = adaptive_pool3d_output_shape(input.shape(), output_size, op);
  return average_forward(input, out_shape, adaptive_spans(input.shape(), out_shape), false, op);
}

Tensor adaptive_avg_pool3d_backward(const Tensor& grad_output, const Shape& input_shape) {
  const char* op = "adaptive_avg_pool3d backward";
  check(grad_output.defined() && grad_output.dim() == 5, "{}: expected a 5-D grad_output, got {}", op,
        grad_output.defined() ? grad_output.shape().str() : "undefined");
  const Shape& g = grad_output.shape();
  const Shape out_shape = adaptive_pool3d_output_shape(input_shape, {g[2], g[3], g[4]}, op);
  check_grad_shape(grad_output, out_shape, input_shape, op);
  return average_backward(grad_output, input_shape, adaptive_spans(input_shape, out_shape), false, op);
}

}  // namespace tlk::kernels::ref
