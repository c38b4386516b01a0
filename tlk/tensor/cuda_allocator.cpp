#include "tlk/tensor/cuda_allocator.h"

#include <cuda_runtime_api.h>

#include <algorithm>

#include "tlk/tensor/error.h"

namespace tlk::cuda {

CudaCachingAllocator::~CudaCachingAllocator() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_cache_locked();
}

std::size_t CudaCachingAllocator::round_size(std::size_t nbytes) {
  if (nbytes == 0) return 0;
  constexpr std::size_t small = 512;
  if (nbytes <= (std::size_t{64} << 10)) return (nbytes + small - 1) / small * small;
  return CpuAllocator::round_size(nbytes);
}

void* CudaCachingAllocator::allocate(std::size_t nbytes) {
  if (nbytes == 0) return nullptr;
  const std::size_t size = round_size(nbytes);
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.allocations;
  void* ptr = nullptr;
  auto it = free_blocks_.find(size);
  if (it != free_blocks_.end() && !it->second.empty()) {
    ptr = it->second.back();
    it->second.pop_back();
    stats_.cached_bytes -= size;
    ++stats_.cache_hits;
  } else {
    if (cudaSetDevice(device_) != cudaSuccess) fail("CUDA allocator: cannot select cuda:{}", device_);
    cudaError_t status = cudaMalloc(&ptr, size);
    if (status != cudaSuccess) {
      cudaGetLastError();
      release_cache_locked();
      status = cudaMalloc(&ptr, size);
    }
    if (status != cudaSuccess) {
      cudaGetLastError();
      fail("CUDA allocator: out of memory allocating {} bytes on cuda:{} ({} bytes held by tensors): {}", size, device_,
           stats_.current_bytes, cudaGetErrorString(status));
    }
  }
  if (poison_) cudaMemsetAsync(ptr, 0xFF, size, cudaStreamLegacy);
  stats_.current_bytes += size;
  stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.current_bytes);
  return ptr;
}

void CudaCachingAllocator::deallocate(void* ptr, std::size_t nbytes) {
  if (ptr == nullptr) return;
  const std::size_t size = round_size(nbytes);
  std::lock_guard<std::mutex> lock(mutex_);
  free_blocks_[size].push_back(ptr);
  stats_.current_bytes -= size;
  stats_.cached_bytes += size;
}

AllocatorStats CudaCachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CudaCachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_bytes = stats_.current_bytes;
}

void CudaCachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_cache_locked();
}

void CudaCachingAllocator::release_cache_locked() {
  if (stats_.cached_bytes == 0) return;
  cudaSetDevice(device_);
  cudaDeviceSynchronize();  // queued work may still read a cached block
  for (auto& [size, blocks] : free_blocks_)
    for (void* p : blocks) cudaFree(p);
  free_blocks_.clear();
  stats_.cached_bytes = 0;
}

}  // namespace tlk::cuda
