#include "tlk/kernels/cuda/upsample3d.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tlk/kernels/cuda/launch.h"
#include "tlk/kernels/cuda/upsample3d_launch.h"

namespace tlk::kernels::cuda {

namespace {

// Two input positions and weights per output position along one axis (nearest: the second weight 0).
struct AxisTaps {
  std::vector<std::int64_t> index;  // 2 per output position
  std::vector<double> weight;
};

// Note [Upsampling taps on the host]: the source positions and weights are computed here, on the host,
// with the formulas and precisions of Note [Interpolation index math] (kernels/ref/upsample3d.cpp), so
// the GPU reads exactly the neighbours ref reads with exactly its weights; the kernels only sum.
AxisTaps nearest_taps(std::int64_t in, std::int64_t out, double scale_factor) {
  AxisTaps t;
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
    t.index.insert(t.index.end(), {src, src});
    t.weight.insert(t.weight.end(), {1.0, 0.0});
  }
  return t;
}

template <class T>
AxisTaps linear_taps(std::int64_t in, std::int64_t out, bool align_corners, double scale_factor) {
  AxisTaps t;
  T scale;
  if (align_corners)
    scale = out > 1 ? static_cast<T>(in - 1) / static_cast<T>(out - 1) : T(0);
  else
    scale = scale_factor > 0.0 ? static_cast<T>(1.0 / scale_factor) : static_cast<T>(in) / static_cast<T>(out);
  for (std::int64_t dst = 0; dst < out; ++dst) {
    if (out == in) {
      t.index.insert(t.index.end(), {dst, dst});
      t.weight.insert(t.weight.end(), {1.0, 0.0});
      continue;
    }
    const T src =
        align_corners ? scale * static_cast<T>(dst) : std::max(scale * (static_cast<T>(dst) + T(0.5)) - T(0.5), T(0));
    const std::int64_t i0 = std::min(static_cast<std::int64_t>(std::floor(src)), in - 1);
    const T l1 = std::min(std::max(src - static_cast<T>(i0), T(0)), T(1));
    const T l0 = T(1) - l1;
    t.index.insert(t.index.end(), {i0, i0 + (i0 < in - 1 ? 1 : 0)});
    t.weight.insert(t.weight.end(), {static_cast<double>(l0), static_cast<double>(l1)});
  }
  return t;
}

template <class T>
std::array<AxisTaps, 3> axis_taps(const Shape& in, const Shape& out, const Upsample3dOptions& opt) {
  std::array<AxisTaps, 3> taps;
  for (int a = 0; a < 3; ++a) {
    const double s = opt.scale_factor ? (*opt.scale_factor)[a] : 0.0;
    taps[static_cast<std::size_t>(a)] = opt.mode == UpsampleMode::nearest
                                            ? nearest_taps(in[2 + a], out[2 + a], s)
                                            : linear_taps<T>(in[2 + a], out[2 + a], opt.align_corners, s);
  }
  return taps;
}

UpsampleGeometry geometry(const Shape& in, const Shape& out, const Upsample3dOptions& opt) {
  UpsampleGeometry g;
  g.planes = in[0] * in[1];
  for (int a = 0; a < 3; ++a) {
    g.in[a] = in[2 + a];
    g.out[a] = out[2 + a];
  }
  g.taps = opt.mode == UpsampleMode::nearest ? 1 : 2;
  return g;
}

// A small host table copied to `device`.
template <class V>
Tensor upload(const std::vector<V>& values, Device device) {
  return Tensor::from_vector(values, Shape{static_cast<std::int64_t>(values.size())}).to(device);
}

}  // namespace

Tensor upsample3d_forward(const Tensor& input_in, const Upsample3dOptions& opt) {
  const char* op = "upsample3d";
  require_cuda_float(input_in, op, "input");
  const Shape out_shape = upsample3d_output_shape(input_in.shape(), opt, op);
  Tensor input = contiguous(input_in);
  const UpsampleGeometry g = geometry(input.shape(), out_shape, opt);
  Tensor out = empty_like_shape(input, out_shape);
  visit_floating(input.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto taps = axis_taps<T>(input.shape(), out_shape, opt);
    std::vector<std::int64_t> index;
    std::vector<double> weight;
    for (const AxisTaps& t : taps) {
      index.insert(index.end(), t.index.begin(), t.index.end());
      weight.insert(weight.end(), t.weight.begin(), t.weight.end());
    }
    Tensor index_d = upload(index, input.device()), weight_d = upload(weight, input.device());
    launch_upsample3d_forward<T>(static_cast<T*>(out.raw_data()), static_cast<const T*>(input.raw_data()), g,
                                 static_cast<const std::int64_t*>(index_d.raw_data()),
                                 static_cast<const double*>(weight_d.raw_data()), stream());
  });
  check_launch(op);
  return out;
}

Tensor upsample3d_backward(const Tensor& grad_in, const Shape& input_shape, const Upsample3dOptions& opt) {
  const char* op = "upsample3d backward";
  const Shape out_shape = upsample3d_output_shape(input_shape, opt, op);
  require_cuda_float(grad_in, op, "grad_output");
  check(grad_in.shape() == out_shape, "{}: grad_output has shape {}, expected {} for input {} ({})", op,
        grad_in.shape().str(), out_shape.str(), input_shape.str(), opt.str());
  Tensor grad = contiguous(grad_in);
  const UpsampleGeometry g = geometry(input_shape, out_shape, opt);
  Tensor out = empty_like_shape(grad, input_shape);
  visit_floating(grad.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto taps = axis_taps<T>(input_shape, out_shape, opt);
    // Inverse tap lists, one CSR table per axis: which output positions read input position i, with
    // which weight (a position read twice by one output, as at the last voxel, appears twice).
    std::vector<std::int64_t> starts, outs;
    std::vector<double> weights;
    for (int a = 0; a < 3; ++a) {
      const AxisTaps& t = taps[static_cast<std::size_t>(a)];
      const std::int64_t in = g.in[a], n_out = g.out[a];
      std::vector<std::int64_t> count(static_cast<std::size_t>(in) + 1, 0);
      for (std::int64_t o = 0; o < n_out; ++o)
        for (int k = 0; k < g.taps; ++k) ++count[static_cast<std::size_t>(t.index[static_cast<std::size_t>(o * 2 + k)]) + 1];
      const std::int64_t first = static_cast<std::int64_t>(outs.size());
      for (std::int64_t i = 0; i < in; ++i) count[static_cast<std::size_t>(i) + 1] += count[static_cast<std::size_t>(i)];
      for (std::int64_t i = 0; i <= in; ++i) starts.push_back(first + count[static_cast<std::size_t>(i)]);
      outs.resize(outs.size() + static_cast<std::size_t>(count[static_cast<std::size_t>(in)]));
      weights.resize(outs.size());
      std::vector<std::int64_t> fill(count.begin(), count.end() - 1);  // next free slot per input position
      for (std::int64_t o = 0; o < n_out; ++o)
        for (int k = 0; k < g.taps; ++k) {
          const std::size_t j = static_cast<std::size_t>(o * 2 + k);
          const std::size_t slot = static_cast<std::size_t>(first + fill[static_cast<std::size_t>(t.index[j])]++);
          outs[slot] = o;
          weights[slot] = t.weight[j];
        }
    }
    Tensor starts_d = upload(starts, grad.device()), outs_d = upload(outs, grad.device()),
           weights_d = upload(weights, grad.device());
    launch_upsample3d_backward<T>(static_cast<T*>(out.raw_data()), static_cast<const T*>(grad.raw_data()), g,
                                  static_cast<const std::int64_t*>(starts_d.raw_data()),
                                  static_cast<const std::int64_t*>(outs_d.raw_data()),
                                  static_cast<const double*>(weights_d.raw_data()), stream());
  });
  check_launch(op);
  return out;
}

}  // namespace tlk::kernels::cuda
