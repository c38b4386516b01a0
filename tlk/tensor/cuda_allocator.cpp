#include "tlk/tensor/cuda_allocator.h"

#include <cuda_runtime_api.h>

#include "tlk/tensor/error.h"

namespace tlk::cuda {

std::size_t CudaCachingAllocator::round_size(std::size_t nbytes) {
  if (nbytes == 0) return 0;
  constexpr std::size_t small = 512;
  if (nbytes <= (std::size_t{64} << 10)) return (nbytes + small - 1) / small * small;
  return CpuAllocator::round_size(nbytes);
}

void* CudaCachingAllocator::system_allocate(std::size_t size) {
  if (cudaSetDevice(device_) != cudaSuccess) fail("CUDA allocator: cannot select cuda:{}", device_);
  void* ptr = nullptr;
  const cudaError_t status = cudaMalloc(&ptr, size);
  if (status == cudaSuccess) return ptr;
  cudaGetLastError();  // clear it: the caller releases the cache and retries
  last_status_ = static_cast<int>(status);
  return nullptr;
}

void CudaCachingAllocator::system_free(void* ptr) { cudaFree(ptr); }

void CudaCachingAllocator::out_of_memory(std::size_t size, std::size_t in_use) {
  fail("CUDA allocator: out of memory allocating {} bytes on cuda:{} ({} bytes held by tensors): {}", size, device_,
       in_use, cudaGetErrorString(static_cast<cudaError_t>(last_status_)));
}

void CudaCachingAllocator::before_release() {
  cudaSetDevice(device_);
  cudaDeviceSynchronize();
}

void CudaCachingAllocator::handed_out(void* ptr, std::size_t size) {
  if (poison_) cudaMemsetAsync(ptr, 0xFF, size, cudaStreamLegacy);
}

}  // namespace tlk::cuda
