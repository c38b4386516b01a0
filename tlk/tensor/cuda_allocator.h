#pragma once
#include <cstddef>

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
class CudaCachingAllocator final : public CachingAllocator {
 public:
  explicit CudaCachingAllocator(int device_index)
      : CachingAllocator(&CudaCachingAllocator::round_size), device_(device_index) {}
  ~CudaCachingAllocator() override { empty_cache(); }

  /// Note [Poisoned GPU memory]: when on, every block handed out is first filled with 0xFF bytes
  /// (NaN in f32 and f64), so tests see any element a kernel failed to write.
  void set_poison(bool on) { poison_ = on; }
  /// The block size a request of `nbytes` is rounded to (512-byte multiples below 64 KiB).
  static std::size_t round_size(std::size_t nbytes);

 private:
  void* system_allocate(std::size_t size) override;
  void system_free(void* ptr) override;
  [[noreturn]] void out_of_memory(std::size_t size, std::size_t in_use) override;
  /// Waits for queued work: it may still read a cached block.
  void before_release() override;
  void handed_out(void* ptr, std::size_t size) override;

  int device_;
  bool poison_ = false;
  int last_status_ = 0;  ///< the cudaError_t of the last failed cudaMalloc
};

}  // namespace tlk::cuda
