#include "tlk/tensor/storage.h"

#include "tlk/tensor/allocator.h"
#include "tlk/tensor/cuda_runtime.h"
#include "tlk/tensor/error.h"
#include "tlk/tensor/pinned_allocator.h"

namespace tlk {

Allocator& allocator_for(Device device) {
  if (device.is_cpu()) return CpuAllocator::instance();
  return cuda::device_allocator(device.index);
}

Storage::Storage(std::size_t nbytes, Device device) : Storage(nbytes, device, allocator_for(device)) {}

Storage::Storage(std::size_t nbytes, Device device, Allocator& allocator)
    : nbytes_(nbytes), device_(device), allocator_(&allocator) {
  data_ = allocator_->allocate(nbytes);
}

bool Storage::pinned() const { return allocator_ == &cuda::PinnedHostAllocator::instance(); }

Storage::~Storage() { allocator_->deallocate(data_, nbytes_); }

}  // namespace tlk
