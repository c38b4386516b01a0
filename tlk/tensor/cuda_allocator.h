#pragma once
#include <cstddef>
#include <map>
#include <mutex>
#include <vector>

#include "tlk/tensor/allocator.h"

namespace tlk::cuda {

/// The caching allocator of one GPU: cudaMalloc'd blocks, reused by size class.
///
/// Note [CUDA caching allocator]: cudaMalloc and cudaFree are slow and cudaFree synchronizes the
/// whole device, so a training step that frees and re-allocates its activations every iteration
/// would stall on them. Blocks are rounded like the CPU allocator's (Note [Size classes]; 512-byte
/// multiples below 64 KiB) and a freed block goes to a free list for its class. All of TLK's GPU work
/// runs on one stream (Note [One stream] in kernels/cuda/launch.h), so a block freed on the host can be
/// handed out again at once: any kernel that still reads it was queued before the new owner's work.
/// When cudaMalloc fails, the cache is returned to the driver and the request retried once.
class CudaCachingAllocator final : public Allocator {
 public:
  explicit CudaCachingAllocator(int device_index) : device_(device_index) {}
  ~CudaCachingAllocator() override;

  void* allocate(std::size_t nbytes) override;
  void deallocate(void* ptr, std::size_t nbytes) override;
  AllocatorStats stats() const override;
  /// Starts peak_bytes again from current_bytes.
  void reset_peak();
  /// Returns every cached block to the driver (cudaFree).
  void empty_cache();
  /// Note [Poisoned GPU memory]: when on, every block handed out is first filled with 0xFF bytes
  /// (NaN in f32 and f64), so tests see any element a kernel failed to write.
  void set_poison(bool on) { poison_ = on; }
  /// The block size a request of `nbytes` is rounded to.
  static std::size_t round_size(std::size_t nbytes);

 private:
  void release_cache_locked();

  int device_;
  bool poison_ = false;
  mutable std::mutex mutex_;
  std::map<std::size_t, std::vector<void*>> free_blocks_;
  AllocatorStats stats_;
};

}  // namespace tlk::cuda
