#include "tlk/kernels/cuda/launch.h"

#include <cuda_runtime.h>

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

}  // namespace tlk::kernels::cuda
