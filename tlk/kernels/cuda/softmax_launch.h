#pragma once
// Raw-pointer launchers of the softmax kernels (softmax_launch.cu); the Tensor API is softmax.h.
// A contiguous tensor is seen as [outer, channels, inner] around the reduced axis: the outer * inner
// lines start at (o * channels) * inner + i and step by `inner`. Each launcher returns the launch
// status (cudaGetLastError).
#include <cuda_runtime_api.h>

#include <cstdint>

namespace tlk::kernels::cuda::launch {

/// y = softmax(x) (or log_softmax when `log`) along every line, computed in double.
template <class T>
cudaError_t softmax_forward(const T* x, T* y, std::int64_t outer, std::int64_t channels, std::int64_t inner, bool log,
                            cudaStream_t stream);

/// dx from the forward's output y: y · (g − Σ g·y) (softmax) or g − exp(y) · Σ g (log_softmax).
template <class T>
cudaError_t softmax_backward(const T* grad, const T* y, T* dx, std::int64_t outer, std::int64_t channels,
                             std::int64_t inner, bool log, cudaStream_t stream);

}  // namespace tlk::kernels::cuda::launch
