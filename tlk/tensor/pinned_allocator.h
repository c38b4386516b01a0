#pragma once
#include <cstddef>

#include "tlk/tensor/allocator.h"

namespace tlk::cuda {

/// Page-locked ("pinned") host memory for the staging of batches on their way to a GPU.
///
/// Note [Pinned staging]: a copy from ordinary (pageable) host memory to a GPU goes through the
/// driver's own bounce buffer at a fraction of the bus's bandwidth, and cudaMemcpy from pageable
/// memory waits for the GPU to go idle first. The loader threads therefore write batches bound for a
/// GPU into pinned blocks (Tensor::pinned_empty); Tensor::to(cuda) then queues a cudaMemcpyAsync on
/// TLK's stream and returns at once. The source's storage is kept, with an event recorded after the
/// copy, in a list of pending copies; the next pinned allocation or copy drops the sources whose
/// event has passed (cuda::release_finished_copies), so a block is reused only after its copy. No
/// CUDA host callback frees memory: a callback that took the allocator's lock could deadlock against
/// cudaFreeHost, which may wait for the stream. Blocks are cudaHostAlloc'd, rounded like the CPU
/// allocator's (Note [Size classes]) and kept for reuse: page-locking is slow. A host write into a
/// pinned tensor after its to(cuda) may race with the copy, as with PyTorch's non_blocking copies.
class PinnedHostAllocator final : public CachingAllocator {
 public:
  static PinnedHostAllocator& instance();

 private:
  PinnedHostAllocator() : CachingAllocator(&CpuAllocator::round_size) {}
  /// Throws tlk::Error saying why when TLK was built without CUDA or no GPU is usable.
  void* system_allocate(std::size_t size) override;
  void system_free(void* ptr) override;
  [[noreturn]] void out_of_memory(std::size_t size, std::size_t in_use) override;
};

}  // namespace tlk::cuda
