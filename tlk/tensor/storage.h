#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "tlk/tensor/device.h"

namespace tlk {

class Allocator;

/// A block of memory shared by a tensor and all its views, returned to its allocator when the last
/// one is gone. It carries the version counter that autograd reads to detect in-place changes to a
/// tensor saved for backward (Note [Version counter] in autograd/saved_tensor.h).
class Storage {
 public:
  /// Allocates `nbytes` on `device` from that device's allocator.
  Storage(std::size_t nbytes, Device device);
  /// Allocates `nbytes` from `allocator`, whose blocks live on `device` (pinned host memory: the CPU).
  Storage(std::size_t nbytes, Device device, Allocator& allocator);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  std::size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  /// True for page-locked host memory (Note [Pinned staging] in tensor/pinned_allocator.h).
  bool pinned() const;
  std::uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  /// Called by every op that writes into existing memory.
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  void* data_ = nullptr;
  std::size_t nbytes_ = 0;
  Device device_;
  Allocator* allocator_ = nullptr;
  std::atomic<std::uint64_t> version_{0};
};

/// The allocator serving `device` (the CPU allocator, or the CUDA one where built with CUDA).
Allocator& allocator_for(Device device);

}  // namespace tlk
