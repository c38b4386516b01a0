#include "tlk/kernels/cuda/softmax.h"

#include "tlk/kernels/cuda/launch.h"
#include "tlk/kernels/cuda/softmax_launch.h"
#include "tlk/kernels/ref/common.h"

namespace tlk::kernels::cuda {

namespace {

// The tensor seen as [outer, channels, inner] around the reduced axis `dim` (as the reference).
ref::ChannelView lines_along(const Tensor& t, int dim, const char* op) {
  check(t.dim() >= 2, "{}: expected an input of at least 2 dimensions ([N, C, ...]), got {}-D with shape {}", op,
        t.dim(), t.shape().str());
  return ref::ChannelView::of(t.shape(), normalize_axis(dim, t.dim(), op));
}

Tensor softmax_impl(const Tensor& input, int dim, bool log, const char* op) {
  require_cuda_float(input, op, "input");
  const ref::ChannelView l = lines_along(input, dim, op);
  const Tensor x = contiguous(input);
  Tensor out = empty_like_shape(x, x.shape());
  visit_floating(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    check_status(launch::softmax_forward<T>(static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()),
                                            l.outer, l.channels, l.inner, log, stream()),
                 op, "kernel launch");
  });
  return out;
}

Tensor softmax_backward_impl(const Tensor& grad_in, const Tensor& output_in, int dim, bool log, const char* op) {
  require_cuda_float(output_in, op, "output");
  require_same(grad_in, output_in, op, "grad_output");
  check(grad_in.shape() == output_in.shape(), "{}: grad_output has shape {}, expected the output's shape {}", op,
        grad_in.shape().str(), output_in.shape().str());
  const ref::ChannelView l = lines_along(output_in, dim, op);
  const Tensor g = contiguous(grad_in), y = contiguous(output_in);
  Tensor out = empty_like_shape(y, y.shape());
  visit_floating(y.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    check_status(
        launch::softmax_backward<T>(static_cast<const T*>(g.raw_data()), static_cast<const T*>(y.raw_data()),
                                    static_cast<T*>(out.raw_data()), l.outer, l.channels, l.inner, log, stream()),
        op, "kernel launch");
  });
  return out;
}

}  // namespace

Tensor softmax_forward(const Tensor& input, int dim) { return softmax_impl(input, dim, false, "softmax"); }
Tensor log_softmax_forward(const Tensor& input, int dim) { return softmax_impl(input, dim, true, "log_softmax"); }
Tensor softmax_backward(const Tensor& grad_output, const Tensor& output, int dim) {
  return softmax_backward_impl(grad_output, output, dim, false, "softmax backward");
}
Tensor log_softmax_backward(const Tensor& grad_output, const Tensor& output, int dim) {
  return softmax_backward_impl(grad_output, output, dim, true, "log_softmax backward");
}

}  // namespace tlk::kernels::cuda
