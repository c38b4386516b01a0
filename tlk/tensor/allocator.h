#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

namespace tlk {

/// Counters of an allocator, in bytes (sizes are the rounded block sizes actually handed out).
struct AllocatorStats {
  std::size_t current_bytes = 0;  ///< held by live tensors now
  std::size_t peak_bytes = 0;     ///< highest current_bytes since start or reset_peak()
  std::size_t cached_bytes = 0;   ///< freed blocks kept for reuse
  std::uint64_t allocations = 0;  ///< allocate() calls
  std::uint64_t cache_hits = 0;   ///< allocate() calls served from the cache
};

/// Interface of a device allocator. Blocks are returned with the size they were requested with.
class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(std::size_t nbytes) = 0;
  virtual void deallocate(void* ptr, std::size_t nbytes) = 0;
  virtual AllocatorStats stats() const = 0;
};

/// What TLK's allocators share: blocks rounded to size classes and kept for reuse, with statistics.
///
/// Note [Size classes]: a request is rounded up to its class (for the CPU a multiple of 64 bytes
/// below 4 KiB, above that one of 8 steps between consecutive powers of two: waste under 12.5%).
/// Freed blocks go to a free list for their class and are handed out again before new memory is
/// asked of the system, so a training loop that allocates the same shapes every step stops calling
/// the system allocator after its first step. When the system refuses memory, the cache is released
/// and the request retried once. Each allocator (CPU, GPU, pinned host) says how to round, how to get
/// and free a block, and what to do around that.
class CachingAllocator : public Allocator {
 public:
  void* allocate(std::size_t nbytes) final;
  void deallocate(void* ptr, std::size_t nbytes) final;
  AllocatorStats stats() const final;
  /// Starts peak_bytes again from current_bytes.
  void reset_peak();
  /// Returns every cached block to the system.
  void empty_cache();

 protected:
  using RoundFn = std::size_t (*)(std::size_t);
  explicit CachingAllocator(RoundFn round) : round_(round) {}
  /// A block of `size` bytes from the system, or nullptr when it has none.
  virtual void* system_allocate(std::size_t size) = 0;
  virtual void system_free(void* ptr) = 0;
  /// Throws the out-of-memory error for a request of `size` bytes, `in_use` bytes held by tensors.
  [[noreturn]] virtual void out_of_memory(std::size_t size, std::size_t in_use) = 0;
  /// Called before cached blocks go back to the system.
  virtual void before_release() {}
  /// Called on every block handed out.
  virtual void handed_out(void* ptr, std::size_t size) {
    (void)ptr;
    (void)size;
  }

 private:
  void release_cache_locked();

  RoundFn round_;
  mutable std::mutex mutex_;
  std::map<std::size_t, std::vector<void*>> free_blocks_;
  AllocatorStats stats_;
};

/// The CPU allocator: 64-byte aligned blocks, reused by size class (Note [Size classes]).
///
/// Example: `auto s = CpuAllocator::instance().stats(); fmt::print("{} MB peak", s.peak_bytes >> 20);`
class CpuAllocator final : public CachingAllocator {
 public:
  static CpuAllocator& instance();
  /// The block size a request of `nbytes` is rounded to.
  static std::size_t round_size(std::size_t nbytes);

 private:
  CpuAllocator() : CachingAllocator(&CpuAllocator::round_size) {}
  void* system_allocate(std::size_t size) override;
  void system_free(void* ptr) override;
  [[noreturn]] void out_of_memory(std::size_t size, std::size_t in_use) override;
};

}  // namespace tlk
