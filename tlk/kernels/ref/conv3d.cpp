#include "tlk/kernels/ref/conv3d.h"

#include <vector>

#include "tlk/kernels/ref/common.h"
#include "tlk/kernels/ref/elementwise.h"

namespace tlk::kernels::ref {

namespace {

// Output indices o in [lo, hi) for which the input index o*stride - pad + offset lies in [0, extent).
struct Range {
  std::int64_t lo, hi;
};
Range valid_outputs(std::int64_t extent, std::int64_t out_extent, std::int64_t stride, std::int64_t pad,
                    std::int64_t offset) {
  const std::int64_t shift = pad - offset;  // o*stride >= shift and o*stride <= extent - 1 + shift
  const std::int64_t lo = shift <= 0 ? 0 : (shift + stride - 1) / stride;
  const std::int64_t top = extent - 1 + shift;
  const std::int64_t hi = top < 0 ? 0 : std::min(out_extent, top / stride + 1);
  return {lo, std::max(lo, hi)};
}

// Sizes of one convolution, with `in` the spatial input and `out` the spatial output.
struct Geometry {
  std::int64_t n, ci, co;
  Int3 in, out, k;
  Conv3dOptions opt;
  std::int64_t in_volume() const { return in[0] * in[1] * in[2]; }
  std::int64_t out_volume() const { return out[0] * out[1] * out[2]; }
  std::int64_t k_volume() const { return k[0] * k[1] * k[2]; }
};

Geometry geometry(const Shape& input, const Shape& weight, const Shape& output, const Conv3dOptions& opt) {
  return {input[0],
          input[1],
          weight[0],
          {input[2], input[3], input[4]},
          {output[2], output[3], output[4]},
          {weight[2], weight[3], weight[4]},
          opt};
}

// Calls fn(in_offset, out_offset, count, in_stride) for every run of output positions along W that
// tap (kd, kh, kw) connects to valid input positions; offsets are within one spatial volume.
template <class Fn>
void for_each_tap_run(const Geometry& g, std::int64_t kd, std::int64_t kh, std::int64_t kw, Fn&& fn) {
  const auto& o = g.opt;
  const Range rd = valid_outputs(g.in[0], g.out[0], o.stride[0], o.padding[0], kd * o.dilation[0]);
  const Range rh = valid_outputs(g.in[1], g.out[1], o.stride[1], o.padding[1], kh * o.dilation[1]);
  const Range rw = valid_outputs(g.in[2], g.out[2], o.stride[2], o.padding[2], kw * o.dilation[2]);
  if (rw.lo >= rw.hi) return;
  for (std::int64_t od = rd.lo; od < rd.hi; ++od) {
    const std::int64_t id = od * o.stride[0] - o.padding[0] + kd * o.dilation[0];
    for (std::int64_t oh = rh.lo; oh < rh.hi; ++oh) {
      const std::int64_t ih = oh * o.stride[1] - o.padding[1] + kh * o.dilation[1];
      const std::int64_t iw = rw.lo * o.stride[2] - o.padding[2] + kw * o.dilation[2];
      fn((id * g.in[1] + ih) * g.in[2] + iw, (od * g.out[1] + oh) * g.out[2] + rw.lo, rw.hi - rw.lo, o.stride[2]);
    }
  }
}

Tensor prepare(const Tensor& t, const char* what) { return cpu_contiguous(t, "conv3d", what); }

}  // namespace

Tensor conv3d_forward(const Tensor& input_in, const Tensor& weight_in, const Tensor& bias_in,
                      const Conv3dOptions& opt) {
  const Shape out_shape = conv3d_output_shape(input_in, weight_in, bias_in, opt);
  Tensor input = prepare(input_in, "input"), weight = prepare(weight_in, "weight");
  Tensor bias = bias_in.defined() ? prepare(bias_in, "bias") : Tensor();
  const Geometry g = geometry(input.shape(), weight.shape(), out_shape, opt);
  Tensor out = Tensor::empty(out_shape, TensorOptions{input.dtype()});
  visit_floating(input.dtype(), "conv3d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = input.data<T>();
    const T* w = weight.data<T>();
    const T* b = bias.defined() ? bias.data<T>() : nullptr;
    T* y = out.data<T>();
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (std::int64_t n = 0; n < g.n; ++n)
      for (std::int64_t co = 0; co < g.co; ++co) {
        std::vector<double> acc(static_cast<std::size_t>(g.out_volume()), b ? static_cast<double>(b[co]) : 0.0);
        for (std::int64_t ci = 0; ci < g.ci; ++ci) {
          const T* xs = x + (n * g.ci + ci) * g.in_volume();
          const T* wk = w + (co * g.ci + ci) * g.k_volume();
          for (std::int64_t kd = 0; kd < g.k[0]; ++kd)
            for (std::int64_t kh = 0; kh < g.k[1]; ++kh)
              for (std::int64_t kw = 0; kw < g.k[2]; ++kw) {
                const double wv = wk[(kd * g.k[1] + kh) * g.k[2] + kw];
                for_each_tap_run(g, kd, kh, kw,
                                 [&](std::int64_t in_off, std::int64_t out_off, std::int64_t count, std::int64_t s) {
                                   for (std::int64_t i = 0; i < count; ++i)
                                     acc[static_cast<std::size_t>(out_off + i)] += wv * xs[in_off + i * s];
                                 });
              }
        }
        T* ys = y + (n * g.co + co) * g.out_volume();
        for (std::int64_t i = 0; i < g.out_volume(); ++i) ys[i] = static_cast<T>(acc[static_cast<std::size_t>(i)]);
      }
  });
  return out;
}

Tensor conv3d_backward_data(const Tensor& grad_in, const Tensor& weight_in, const Shape& input_shape,
                            const Conv3dOptions& opt) {
  Tensor grad = prepare(grad_in, "grad_output"), weight = prepare(weight_in, "weight");
  check_same_dtype("conv3d backward data", {&grad, &weight});
  check(input_shape.size() == 5 && grad.dim() == 5 && weight.dim() == 5 && grad.shape()[1] == weight.shape()[0] &&
            input_shape[1] == weight.shape()[1] && input_shape[0] == grad.shape()[0],
        "conv3d backward data: grad_output {} and weight {} do not fit input shape {}", grad.shape().str(),
        weight.shape().str(), input_shape.str());
  const Geometry g = geometry(input_shape, weight.shape(), grad.shape(), opt);
  Tensor out = Tensor::empty(input_shape, TensorOptions{grad.dtype()});
  visit_floating(grad.dtype(), "conv3d backward data", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* dy = grad.data<T>();
    const T* w = weight.data<T>();
    T* dx = out.data<T>();
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (std::int64_t n = 0; n < g.n; ++n)
      for (std::int64_t ci = 0; ci < g.ci; ++ci) {
        std::vector<double> acc(static_cast<std::size_t>(g.in_volume()), 0.0);
        for (std::int64_t co = 0; co < g.co; ++co) {
          const T* dys = dy + (n * g.co + co) * g.out_volume();
          const T* wk = w + (co * g.ci + ci) * g.k_volume();
          for (std::int64_t kd = 0; kd < g.k[0]; ++kd)
            for (std::int64_t kh = 0; kh < g.k[1]; ++kh)
              for (std::int64_t kw = 0; kw < g.k[2]; ++kw) {
                const double wv = wk[(kd * g.k[1] + kh) * g.k[2] + kw];
                for_each_tap_run(g, kd, kh, kw,
                                 [&](std::int64_t in_off, std::int64_t out_off, std::int64_t count, std::int64_t s) {
                                   for (std::int64_t i = 0; i < count; ++i)
                                     acc[static_cast<std::size_t>(in_off + i * s)] += wv * dys[out_off + i];
                                 });
              }
        }
        T* dxs = dx + (n * g.ci + ci) * g.in_volume();
        for (std::int64_t i = 0; i < g.in_volume(); ++i) dxs[i] = static_cast<T>(acc[static_cast<std::size_t>(i)]);
      }
  });
  return out;
}

Tensor conv3d_backward_weights(const Tensor& grad_in, const Tensor& input_in, const Shape& weight_shape,
                               const Conv3dOptions& opt) {
  Tensor grad = prepare(grad_in, "grad_output"), input = prepare(input_in, "input");
  check_same_dtype("conv3d backward weights", {&grad, &input});
  check(weight_shape.size() == 5 && grad.dim() == 5 && input.dim() == 5 && grad.shape()[1] == weight_shape[0] &&
            input.shape()[1] == weight_shape[1] && input.shape()[0] == grad.shape()[0],
        "conv3d backward weights: grad_output {} and input {} do not fit weight {}", grad.shape().str(),
        input.shape().str(), weight_shape.str());
  const Geometry g = geometry(input.shape(), weight_shape, grad.shape(), opt);
  Tensor out = Tensor::empty(weight_shape, TensorOptions{grad.dtype()});
  visit_floating(grad.dtype(), "conv3d backward weights", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* dy = grad.data<T>();
    const T* x = input.data<T>();
    T* dw = out.data<T>();
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (std::int64_t co = 0; co < g.co; ++co)
      for (std::int64_t ci = 0; ci < g.ci; ++ci)
        for (std::int64_t kd = 0; kd < g.k[0]; ++kd)
          for (std::int64_t kh = 0; kh < g.k[1]; ++kh)
            for (std::int64_t kw = 0; kw < g.k[2]; ++kw) {
              double acc = 0.0;
              for (std::int64_t n = 0; n < g.n; ++n) {
                const T* dys = dy + (n * g.co + co) * g.out_volume();
                const T* xs = x + (n * g.ci + ci) * g.in_volume();
                for_each_tap_run(g, kd, kh, kw,
                                 [&](std::int64_t in_off, std::int64_t out_off, std::int64_t count, std::int64_t s) {
                                   for (std::int64_t i = 0; i < count; ++i)
                                     acc += static_cast<double>(dys[out_off + i]) * xs[in_off + i * s];
                                 });
              }
              dw[((co * g.ci + ci) * g.k[0] + kd) * g.k[1] * g.k[2] + kh * g.k[2] + kw] = static_cast<T>(acc);
            }
  });
  return out;
}

Tensor conv3d_backward_bias(const Tensor& grad_output) { return sum(grad_output, {0, 2, 3, 4}, false); }

Tensor conv_transpose3d_forward(const Tensor& input, const Tensor& weight, const Tensor& bias_in,
                                const Conv3dOptions& opt) {
  const Shape out_shape = conv_transpose3d_output_shape(input, weight, bias_in, opt);
  Tensor out = conv3d_backward_data(input, weight, out_shape, opt);
  if (!bias_in.defined()) return out;
  Tensor bias = prepare(bias_in, "bias");
  return add(out, make_view(bias, Shape{1, bias.size(0), 1, 1, 1}, Dims{0, 1, 0, 0, 0}, bias.offset()));
}

}  // namespace tlk::kernels::ref
