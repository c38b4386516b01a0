#include "tlk/tensor/allocator.h"

#include <algorithm>
#include <bit>
#include <cstdlib>

#include "tlk/tensor/error.h"

namespace tlk {

void* CachingAllocator::allocate(std::size_t nbytes) {
  if (nbytes == 0) return nullptr;
  const std::size_t size = round_(nbytes);
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
    ptr = system_allocate(size);
    if (ptr == nullptr) {
      release_cache_locked();
      ptr = system_allocate(size);
    }
    if (ptr == nullptr) out_of_memory(size, stats_.current_bytes);
  }
  handed_out(ptr, size);
  stats_.current_bytes += size;
  stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.current_bytes);
  return ptr;
}

void CachingAllocator::deallocate(void* ptr, std::size_t nbytes) {
  if (ptr == nullptr) return;
  const std::size_t size = round_(nbytes);
  std::lock_guard<std::mutex> lock(mutex_);
  free_blocks_[size].push_back(ptr);
  stats_.current_bytes -= size;
  stats_.cached_bytes += size;
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_bytes = stats_.current_bytes;
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_cache_locked();
}

void CachingAllocator::release_cache_locked() {
  if (stats_.cached_bytes == 0) return;
  before_release();
  for (auto& [size, blocks] : free_blocks_)
    for (void* p : blocks) system_free(p);
  free_blocks_.clear();
  stats_.cached_bytes = 0;
}

namespace {
constexpr std::size_t kAlignment = 64;
}

CpuAllocator& CpuAllocator::instance() {
  // Note [Allocator lifetime]: deliberately leaked, so tensors destroyed during static destruction
  // (e.g. in a user's global) can still return their blocks.
  static CpuAllocator* allocator = new CpuAllocator();
  return *allocator;
}

std::size_t CpuAllocator::round_size(std::size_t nbytes) {
  if (nbytes == 0) return 0;
  if (nbytes <= 4096) return (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  std::size_t power = std::bit_floor(nbytes);
  std::size_t step = power / 8;
  return (nbytes + step - 1) / step * step;
}

void* CpuAllocator::system_allocate(std::size_t size) { return std::aligned_alloc(kAlignment, size); }

void CpuAllocator::system_free(void* ptr) { std::free(ptr); }

void CpuAllocator::out_of_memory(std::size_t size, std::size_t in_use) {
  fail("CPU allocator: out of memory allocating {} bytes ({} bytes in use)", size, in_use);
}

}  // namespace tlk
