#include "tlk/kernels/ref/common.h"

namespace tlk::kernels::ref {

Tensor cpu_input(const Tensor& t, const char* op, const char* what) {
  check(t.defined(), "{}: {} is undefined", op, what);
  check(t.device().is_cpu(), "{}: {} is on {}, expected the CPU (the reference kernels run on the CPU)", op, what,
        t.device().str());
  Tensor detached = t.detach();
  return detached.layout() == Layout::blocked ? detached.to(Layout::plain) : detached;
}

Tensor cpu_contiguous(const Tensor& t, const char* op, const char* what) { return cpu_input(t, op, what).contiguous(); }

ChannelView ChannelView::of(const Shape& shape, int axis) {
  axis = normalize_axis(axis, shape.size(), "ChannelView");
  ChannelView v;
  for (int i = 0; i < axis; ++i) v.outer *= shape[i];
  v.channels = shape[axis];
  for (int i = axis + 1; i < shape.size(); ++i) v.inner *= shape[i];
  return v;
}

void check_same_dtype(const char* op, const std::vector<const Tensor*>& tensors) {
  const Tensor* first = nullptr;
  for (const Tensor* t : tensors) {
    if (!t || !t->defined()) continue;
    if (!first) {
      first = t;
      continue;
    }
    check(t->dtype() == first->dtype(), "{}: mixed dtypes {} and {} (shapes {} and {}); convert with to(DType) first",
          op, dtype_name(first->dtype()), dtype_name(t->dtype()), first->shape().str(), t->shape().str());
    check(t->device() == first->device(), "{}: tensors on different devices ({} and {})", op, first->device().str(),
          t->device().str());
  }
}

void check_dim(const Tensor& t, int ndim, const char* op, const char* what) {
  check(t.dim() == ndim, "{}: expected a {}-D {}, got {}-D with shape {}", op, ndim, what, t.dim(), t.shape().str());
}

Dims broadcast_strides(const Tensor& t, const Shape& shape) {
  Dims out = shape;
  const int offset = shape.size() - t.dim();
  for (int i = 0; i < shape.size(); ++i) {
    const int j = i - offset;
    out[i] = (j < 0 || t.shape()[j] == 1) ? 0 : t.strides()[j];
  }
  return out;
}

}  // namespace tlk::kernels::ref
