#include "tlk/kernels/ref/upsample3d.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tlk/kernels/ref/common.h"

namespace tlk::kernels::ref {

namespace {

// The input elements one output position reads along one axis and their weights; `count` is 1
// (nearest) or 2 (linear).
struct Taps {
  std::int64_t index[2];
  double weight[2];
  int count;
};
using AxisTaps = std::array<std::vector<Taps>, 3>;

// Note [Interpolation index math]: the source positions follow PyTorch's CPU kernels (UpSample.h)
// exactly, including the precision they are computed in, so that a voxel picks the same neighbours:
// - nearest: src = min(floor(dst * scale), in - 1) in float for every dtype, with scale = 1 / scale_factor
//   when a scale factor was given, else in / out; out == in copies and out == 2 * in uses dst / 2.
// - linear, align_corners false: src = max(scale * (dst + 0.5) - 0.5, 0), scale as for nearest;
//   align_corners true: src = dst * (in - 1) / (out - 1) (0 when out == 1); out == in copies. The
//   weights are computed in the input's precision T (PyTorch's opmath type for f32 and f64), the
//   left neighbour is floor(src) clamped to in - 1, the right one the next element or itself at the end.
// A `scale_factor` of 0 means none was given (as PyTorch's compute_scales_value reads it).
std::vector<Taps> nearest_taps(std::int64_t in, std::int64_t out, double scale_factor) {
  std::vector<Taps> taps(static_cast<std::size_t>(out));
  const float scale =
      scale_factor > 0.0 ? static_cast<float>(1.0 / scale_factor) : static_cast<float>(in) / static_cast<float>(out);
  for (std::int64_t dst = 0; dst < out; ++dst) {
    std::int64_t src;
    if (out == in)
      src = dst;
    else if (out == 2 * in)
      src = dst >> 1;
    else
      src = std::min(static_cast<std::int64_t>(std::floor(static_cast<float>(dst) * scale)), in - 1);
    taps[static_cast<std::size_t>(dst)] = {{src, src}, {1.0, 0.0}, 1};
  }
  return taps;
}

template <class T>
std::vector<Taps> linear_taps(std::int64_t in, std::int64_t out, bool align_corners, double scale_factor) {
  std::vector<Taps> taps(static_cast<std::size_t>(out));
  T scale;
  if (align_corners)
    scale = out > 1 ? static_cast<T>(in - 1) / static_cast<T>(out - 1) : T(0);
  else
    scale = scale_factor > 0.0 ? static_cast<T>(1.0 / scale_factor) : static_cast<T>(in) / static_cast<T>(out);
  for (std::int64_t dst = 0; dst < out; ++dst) {
    auto& t = taps[static_cast<std::size_t>(dst)];
    if (out == in) {
      t = {{dst, dst}, {1.0, 0.0}, 2};
      continue;
    }
    const T src =
        align_corners ? scale * static_cast<T>(dst) : std::max(scale * (static_cast<T>(dst) + T(0.5)) - T(0.5), T(0));
    const std::int64_t i0 = std::min(static_cast<std::int64_t>(std::floor(src)), in - 1);
    const T l1 = std::min(std::max(src - static_cast<T>(i0), T(0)), T(1));
    const T l0 = T(1) - l1;
    t = {{i0, i0 + (i0 < in - 1 ? 1 : 0)}, {static_cast<double>(l0), static_cast<double>(l1)}, 2};
  }
  return taps;
}

template <class T>
AxisTaps axis_taps(const Shape& in, const Shape& out, const Upsample3dOptions& opt) {
  AxisTaps taps;
  for (int a = 0; a < 3; ++a) {
    const double s = opt.scale_factor ? (*opt.scale_factor)[a] : 0.0;
    taps[a] = opt.mode == UpsampleMode::nearest ? nearest_taps(in[2 + a], out[2 + a], s)
                                                : linear_taps<T>(in[2 + a], out[2 + a], opt.align_corners, s);
  }
  return taps;
}

// Calls fn(out_index, in_index, weight) for every (output, input) pair of one (n, c) plane.
template <class Fn>
void for_each_tap(const AxisTaps& taps, std::int64_t H, std::int64_t W, Fn&& fn) {
  std::int64_t o = 0;
  for (const Taps& td : taps[0])
    for (const Taps& th : taps[1])
      for (const Taps& tw : taps[2]) {
        for (int a = 0; a < td.count; ++a)
          for (int b = 0; b < th.count; ++b) {
            const std::int64_t row = (td.index[a] * H + th.index[b]) * W;
            const double wdh = td.weight[a] * th.weight[b];
            for (int c = 0; c < tw.count; ++c) fn(o, row + tw.index[c], wdh * tw.weight[c]);
          }
        ++o;
      }
}

}  // namespace

Tensor upsample3d_forward(const Tensor& input_in, const Upsample3dOptions& opt) {
  const char* op = "upsample3d";
  check(input_in.defined(), "{}: input is undefined", op);
  const Shape out_shape = upsample3d_output_shape(input_in.shape(), opt, op);
  Tensor input = cpu_contiguous(input_in, op, "input");
  const Shape& in_shape = input.shape();
  const ChannelView in = ChannelView::of(in_shape);
  const std::int64_t planes = in.outer * in.channels, in_vol = in.inner, out_vol = ChannelView::of(out_shape).inner;
  Tensor out;
  visit_floating(input.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const AxisTaps taps = axis_taps<T>(in_shape, out_shape, opt);
    out = Tensor::empty(out_shape, TensorOptions{input.dtype()});
    const T* x = input.data<T>();
    T* y = out.data<T>();
#pragma omp parallel for schedule(static)
    for (std::int64_t p = 0; p < planes; ++p) {
      const T* xs = x + p * in_vol;
      T* ys = y + p * out_vol;
      std::vector<double> acc(static_cast<std::size_t>(out_vol), 0.0);
      for_each_tap(taps, in_shape[3], in_shape[4],
                   [&](std::int64_t o, std::int64_t i, double w) { acc[static_cast<std::size_t>(o)] += w * xs[i]; });
      for (std::int64_t o = 0; o < out_vol; ++o) ys[o] = static_cast<T>(acc[static_cast<std::size_t>(o)]);
    }
  });
  return out;
}

Tensor upsample3d_backward(const Tensor& grad_in, const Shape& input_shape, const Upsample3dOptions& opt) {
  const char* op = "upsample3d backward";
  const Shape out_shape = upsample3d_output_shape(input_shape, opt, op);
  Tensor grad = cpu_input(grad_in, op, "grad_output");  // the only tensor read
  check(grad.shape() == out_shape, "{}: grad_output has shape {}, expected {} for input {} ({})", op,
        grad.shape().str(), out_shape.str(), input_shape.str(), opt.str());
  grad = grad.contiguous();
  const ChannelView in = ChannelView::of(input_shape);
  const std::int64_t planes = in.outer * in.channels, in_vol = in.inner, out_vol = ChannelView::of(out_shape).inner;
  Tensor out;
  visit_floating(grad.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const AxisTaps taps = axis_taps<T>(input_shape, out_shape, opt);
    out = Tensor::empty(input_shape, TensorOptions{grad.dtype()});
    const T* dy = grad.data<T>();
    T* dx = out.data<T>();
#pragma omp parallel for schedule(static)
    for (std::int64_t p = 0; p < planes; ++p) {
      const T* dys = dy + p * out_vol;
      std::vector<double> acc(static_cast<std::size_t>(in_vol), 0.0);
      for_each_tap(taps, input_shape[3], input_shape[4],
                   [&](std::int64_t o, std::int64_t i, double w) { acc[static_cast<std::size_t>(i)] += w * dys[o]; });
      T* dxs = dx + p * in_vol;
      for (std::int64_t i = 0; i < in_vol; ++i) dxs[i] = static_cast<T>(acc[static_cast<std::size_t>(i)]);
    }
  });
  return out;
}

}  // namespace tlk::kernels::ref
