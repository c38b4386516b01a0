#include "tlk/tensor/allocator.h"

#include <algorithm>
#include <bit>
#include <cstdlib>

#include "tlk/tensor/error.h"

namespace tlk {

namespace {
constexpr std::size_t kAlignment = 64;
}

CpuAllocator& CpuAllocator::instance() {
  // Note [Allocator lifetime]: deliberately leaked, so tensors destroyed during static destruction
  // (e.g. in a user's global) can still return their blocks.
  static CpuAllocator* allocator = new CpuAllocator();
  return *allocator;
}

CpuAllocator::~CpuAllocator() { release_cache_locked(); }

std::size_t CpuAllocator::round_size(std::size_t nbytes) {
  if (nbytes == 0) return 0;
  if (nbytes <= 4096) return (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  std::size_t power = std::bit_floor(nbytes);
  std::size_t step = power / 8;
  return (nbytes + step - 1) / step * step;
}

void* CpuAllocator::allocate(std::size_t nbytes) {
  if (nbytes == 0) return nullptr;
  std::size_t size = round_size(nbytes);
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
    ptr = std::aligned_alloc(kAlignment, size);
    if (ptr == nullptr) {
      release_cache_locked();
      ptr = std::aligned_alloc(kAlignment, size);
    }
    check(ptr != nullptr, "CPU allocator: out of memory allocating {} bytes ({} bytes in use)", size,
          stats_.current_bytes);
  }
  stats_.current_bytes += size;
  stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.current_bytes);
  return ptr;
}

void CpuAllocator::deallocate(void* ptr, std::size_t nbytes) {
  if (ptr == nullptr) return;
  std::size_t size = round_size(nbytes);
  std::lock_guard<std::mutex> lock(mutex_);
  free_blocks_[size].push_back(ptr);
  stats_.current_bytes -= size;
  stats_.cached_bytes += size;
}

AllocatorStats CpuAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CpuAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_bytes = stats_.current_bytes;
}

void CpuAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_cache_locked();
}

void CpuAllocator::release_cache_locked() {
  for (auto& [size, blocks] : free_blocks_)
    for (void* p : blocks) std::free(p);
  free_blocks_.clear();
  stats_.cached_bytes = 0;
}

}  // namespace tlk
