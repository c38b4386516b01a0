#include "tlk/tensor/pinned_allocator.h"

#include "tlk/tensor/cuda_runtime.h"
#include "tlk/tensor/error.h"

#ifdef TLK_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace tlk::cuda {

PinnedHostAllocator& PinnedHostAllocator::instance() {
  static PinnedHostAllocator* allocator = new PinnedHostAllocator();  // Note [Allocator lifetime]
  return *allocator;
}

void* PinnedHostAllocator::system_allocate(std::size_t size) {
  check(is_available(), "pinned host memory: {}", unavailable_reason());
#ifdef TLK_HAVE_CUDA
  void* ptr = nullptr;
  if (cudaHostAlloc(&ptr, size, cudaHostAllocPortable) == cudaSuccess) return ptr;
  cudaGetLastError();
#endif
  return nullptr;
}

void PinnedHostAllocator::system_free(void* ptr) {
#ifdef TLK_HAVE_CUDA
  cudaFreeHost(ptr);
#else
  (void)ptr;
#endif
}

void PinnedHostAllocator::out_of_memory(std::size_t size, std::size_t in_use) {
  fail("pinned host memory: cudaHostAlloc refused {} bytes ({} bytes pinned by tensors)", size, in_use);
}

}  // namespace tlk::cuda
