#include "tlk/kernels/cuda/launch.h"

#include <cuda_runtime.h>

#include "tlk/tensor/cuda_runtime.h"

namespace tlk::kernels::cuda {

void check_status(cudaError_t status, const char* op, const char* what) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  fail("{}: {} failed: {} ({})", op, what, cudaGetErrorString(status), cudaGetErrorName(status));
}

void check_launch(const char* op) { check_status(cudaGetLastError(), op, "kernel launch"); }

cudaStream_t stream() { return cudaStreamLegacy; }

void require_cuda_float(const Tensor& t, const char* op, const char* what) {
  check(t.defined(), "{}: {} is undefined", op, what);
  check(t.device().is_cuda() && (t.dtype() == DType::f32 || t.dtype() == DType::f64),
        "{}: {} must be an f32 or f64 CUDA tensor, got {} on {} (shape {})", op, what, dtype_name(t.dtype()),
        t.device().str(), t.shape().str());
  check_status(cudaSetDevice(t.device().index), op, "cudaSetDevice");
}

void require_cuda_floating(const Tensor& t, const char* op, const char* what) {
  check(t.defined(), "{}: {} is undefined", op, what);
  check(t.device().is_cuda() && is_floating(t.dtype()),
        "{}: {} must be an f32, f64, bf16 or f16 CUDA tensor, got {} on {} (shape {})", op, what, dtype_name(t.dtype()),
        t.device().str(), t.shape().str());
  check_status(cudaSetDevice(t.device().index), op, "cudaSetDevice");
}

void require_same(const Tensor& t, const Tensor& like, const char* op, const char* what) {
  check(t.defined(), "{}: {} is undefined", op, what);
  check(t.device() == like.device() && t.dtype() == like.dtype(),
        "{}: {} is {} on {} but the op's other operands are {} on {}", op, what, dtype_name(t.dtype()),
        t.device().str(), dtype_name(like.dtype()), like.device().str());
}

Tensor contiguous(const Tensor& t) { return t.detach().contiguous(); }

Tensor empty_like_shape(const Tensor& like, const Shape& shape) {
  return Tensor::empty(shape, TensorOptions{like.dtype(), like.device()});
}

bool is_plain(const Tensor& t) { return t.is_contiguous(); }

bool is_channels_last(const Tensor& t) { return t.dim() == 5 && has_channels_last_strides(t); }

Layout layout_of(const Tensor& t) { return is_channels_last(t) ? Layout::channels_last : Layout::plain; }

Tensor empty_in_layout(const Tensor& like, const Shape& shape, Layout layout) {
  Tensor out = empty_like_shape(like, shape);
  if (layout == Layout::channels_last && shape.size() == 5) out.impl().strides = channels_last_strides(shape);
  return out;
}

Tensor dense_as(const Tensor& t, Layout layout, const char* op) {
  check(layout == Layout::plain || layout == Layout::channels_last,
        "{}: GPU tensors are plain or channels-last; blocked layouts are CPU-only", op);
  check(t.layout() != Layout::blocked, "{}: a blocked (oneDNN) tensor cannot be on the GPU", op);
  if (layout == Layout::plain ? is_plain(t) : is_channels_last(t)) return t.detach();
  check(layout == Layout::plain || t.dim() == 5, "{}: channels-last needs a 5-D tensor, got {}", op, t.shape().str());
  Tensor out = empty_in_layout(t, t.shape(), layout);
  if (t.numel() == 0) return out;
  require_cuda_floating(t, op, "tensor to copy");
  // The source keeps its real strides (a transposed or sliced view).
  tlk::cuda::copy_strided({out.raw_data(), out.dtype(), out.strides().begin()},
                          {t.raw_data(), t.dtype(), t.strides().begin()}, t.shape().begin(), t.dim(),
                          t.device().index);
  return out;
}

Tensor dense(const Tensor& t, const char* op) {
  if (is_plain(t) || is_channels_last(t)) return t.detach();
  return dense_as(t, Layout::plain, op);
}

}  // namespace tlk::kernels::cuda
