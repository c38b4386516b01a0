#include "tlk/kernels/cuda/pool3d.h"

#include <cuda_runtime.h>

#include "tlk/kernels/cuda/cudnn_context.h"
#include "tlk/kernels/cuda/launch.h"
#include "tlk/kernels/cuda/pool3d_launch.h"

namespace tlk::kernels::cuda {

namespace {

// Calls fn(T{}) with T = float or double after require_cuda_float checked the dtype.
template <class Fn>
void visit_float(DType dtype, Fn&& fn) {
  if (dtype == DType::f32)
    fn(float{});
  else
    fn(double{});
}

PoolGeometry geometry(const Shape& in, const Shape& out, const Pool3dOptions* opt) {
  PoolGeometry g;
  g.planes = in[0] * in[1];
  g.adaptive = opt == nullptr;
  g.count_include_pad = opt ? opt->count_include_pad : false;
  const Int3 stride = opt ? opt->effective_stride() : Int3{1, 1, 1};
  for (int a = 0; a < 3; ++a) {
    g.axis[a].in = in[2 + a];
    g.axis[a].out = out[2 + a];
    if (opt) {
      g.axis[a].kernel = opt->kernel[a];
      g.axis[a].stride = stride[a];
      g.axis[a].padding = opt->padding[a];
    }
  }
  return g;
}

// Checks that grad_output has the shape the forward produced from an input of `input_shape`.
void check_grad_shape(const Tensor& grad, const Shape& expected, const Shape& input_shape, const char* op) {
  check(grad.shape() == expected, "{}: grad_output has shape {}, expected {} for input {}", op, grad.shape().str(),
        expected.str(), input_shape.str());
}

Tensor average_forward(const Tensor& input, const Shape& out_shape, const Pool3dOptions* opt, const char* op) {
  const Tensor x = dense_as(input, Layout::plain, op);
  Tensor y = empty_like_shape(x, out_shape);
  if (y.numel() == 0) return y;
  const PoolGeometry g = geometry(x.shape(), out_shape, opt);
  visit_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    avg_pool3d_forward_launch<T>(static_cast<const T*>(x.raw_data()), static_cast<T*>(y.raw_data()), g, stream());
  });
  check_launch(op);
  return y;
}

Tensor average_backward(const Tensor& grad_in, const Shape& input_shape, const Pool3dOptions* opt, const char* op) {
  const Tensor grad = dense_as(grad_in, Layout::plain, op);
  Tensor dx = empty_like_shape(grad, input_shape);
  if (dx.numel() == 0) return dx;
  const PoolGeometry g = geometry(input_shape, grad.shape(), opt);
  visit_float(grad.dtype(), [&](auto tag) {
    using T = decltype(tag);
    avg_pool3d_backward_launch<T>(static_cast<const T*>(grad.raw_data()), static_cast<T*>(dx.raw_data()), g,
                                  stream());
  });
  check_launch(op);
  return dx;
}

}  // namespace

MaxPool3dResult max_pool3d_forward(const Tensor& input, const Pool3dOptions& opt) {
  const char* op = "max_pool3d";
  require_cuda_float(input, op, "input");
  const Shape out_shape = pool3d_output_shape(input.shape(), opt, op);
  const Tensor x = dense_as(input, Layout::plain, op);
  MaxPool3dResult result;
  result.output = empty_like_shape(x, out_shape);
  result.indices = Tensor::empty(out_shape, TensorOptions{DType::i64, x.device()});
  if (result.output.numel() == 0) return result;
  const PoolGeometry g = geometry(x.shape(), out_shape, &opt);
  visit_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    max_pool3d_forward_launch<T>(static_cast<const T*>(x.raw_data()), static_cast<T*>(result.output.raw_data()),
                                 static_cast<std::int64_t*>(result.indices.raw_data()), g, stream());
  });
  check_launch(op);
  return result;
}

// Note [Max-pool backward indices]: ref checks every index on the host; here that would cost a
// device-to-host copy and a synchronisation per call, so the kernel instead skips an index outside the
// (n, c) volume (no out-of-bounds write can happen). The indices come from max_pool3d_forward, which
// only writes valid ones. The adds are atomic because overlapping windows may share an argmax.
Tensor max_pool3d_backward(const Tensor& grad_in, const Tensor& indices, const Shape& input_shape) {
  const char* op = "max_pool3d backward";
  check_volume_shape(input_shape, op);
  require_cuda_float(grad_in, op, "grad_output");
  check(indices.defined() && indices.device() == grad_in.device() && indices.dtype() == DType::i64,
        "{}: indices must be an i64 tensor on {}, got {}", op, grad_in.device().str(),
        indices.defined() ? fmt::format("{} on {}", dtype_name(indices.dtype()), indices.device().str())
                          : std::string("an undefined tensor"));
  check(grad_in.dim() == 5 && grad_in.shape() == indices.shape() && grad_in.size(0) == input_shape[0] &&
            grad_in.size(1) == input_shape[1],
        "{}: grad_output {} and indices {} do not fit input {} (expected one 5-D shape with the input's N and C)", op,
        grad_in.shape().str(), indices.shape().str(), input_shape.str());
  check(indices.is_contiguous(), "{}: indices {} must be contiguous (strides {}), as max_pool3d_forward returns them",
        op, indices.shape().str(), indices.strides().str());
  const Tensor grad = dense_as(grad_in, Layout::plain, op);
  Tensor dx = empty_like_shape(grad, input_shape);
  if (dx.numel() == 0) return dx;
  check_status(cudaMemsetAsync(dx.raw_data(), 0, static_cast<std::size_t>(dx.numel()) * element_size(dx.dtype()),
                               stream()),
               op, "cudaMemsetAsync");
  const std::int64_t planes = input_shape[0] * input_shape[1];
  const std::int64_t in_volume = input_shape[2] * input_shape[3] * input_shape[4];
  const std::int64_t out_volume = grad.size(2) * grad.size(3) * grad.size(4);
  visit_float(grad.dtype(), [&](auto tag) {
    using T = decltype(tag);
    max_pool3d_backward_launch<T>(static_cast<const T*>(grad.raw_data()),
                                  static_cast<const std::int64_t*>(indices.raw_data()), static_cast<T*>(dx.raw_data()),
                                  planes, in_volume, out_volume, stream());
  });
  check_launch(op);
  return dx;
}

Tensor avg_pool3d_forward(const Tensor& input, const Pool3dOptions& opt) {
  const char* op = "avg_pool3d";
  require_cuda_float(input, op, "input");
  const Shape out_shape = pool3d_output_shape(input.shape(), opt, op);
  return average_forward(input, out_shape, &opt, op);
}

Tensor avg_pool3d_backward(const Tensor& grad_output, const Shape& input_shape, const Pool3dOptions& opt) {
  const char* op = "avg_pool3d backward";
  require_cuda_float(grad_output, op, "grad_output");
  const Shape out_shape = pool3d_output_shape(input_shape, opt, op);
  check_grad_shape(grad_output, out_shape, input_shape, op);
  return average_backward(grad_output, input_shape, &opt, op);
}

Tensor adaptive_avg_pool3d_forward(const Tensor& input, const Int3& output_size) {
  const char* op = "adaptive_avg_pool3d";
  require_cuda_float(input, op, "input");
  const Shape out_shape = adaptive_pool3d_output_shape(input.shape(), output_size, op);
  return average_forward(input, out_shape, nullptr, op);
}

Tensor adaptive_avg_pool3d_backward(const Tensor& grad_output, const Shape& input_shape) {
  const char* op = "adaptive_avg_pool3d backward";
  require_cuda_float(grad_output, op, "grad_output");
  check(grad_output.dim() == 5, "{}: expected a 5-D grad_output, got {}", op, grad_output.shape().str());
  const Shape& g = grad_output.shape();
  const Shape out_shape = adaptive_pool3d_output_shape(input_shape, {g[2], g[3], g[4]}, op);
  check_grad_shape(grad_output, out_shape, input_shape, op);
  return average_backward(grad_output, input_shape, nullptr, op);
}

}  // namespace tlk::kernels::cuda
