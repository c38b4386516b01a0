#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "tlk/tensor/device.h"
#include "tlk/tensor/dtype.h"

namespace tlk {
class Allocator;
}

/// The thin layer over the CUDA runtime that tensors need: discovery, memory, copies, fill.
/// Built without CUDA, every call that needs a GPU throws tlk::Error saying so.
namespace tlk::cuda {

/// True when TLK was built with CUDA and a usable GPU with a recent enough driver is present.
/// Note [GPU discovery]: any error from device discovery (no driver, "CUDA driver version is
/// insufficient", no device) means "no GPU"; the reason is kept for messages and test skips.
bool is_available();
/// Number of usable GPUs (0 when is_available() is false).
int device_count();
/// Why no GPU is usable ("built without CUDA", the driver's message, ...); empty when one is.
std::string unavailable_reason();
/// Throws a tlk::Error naming `op` unless GPU `index` is usable.
void require_device(int index, const char* op);
/// Makes GPU `index` this thread's current device (after require_device), so that the CUDA calls the
/// thread makes next (pinned allocations, events) use it rather than GPU 0.
void set_current_device(int index, const char* op);

/// The caching allocator of GPU `index` (Note [CUDA caching allocator] in tensor/cuda_allocator.h).
/// Example: `fmt::print("{} MB peak", cuda::device_allocator(0).stats().peak_bytes >> 20);`
Allocator& device_allocator(int index);
/// Fill fresh GPU blocks with NaN before handing them out (tests; Note [Poisoned GPU memory]).
void set_poison_allocations(bool on);
/// Returns the cached blocks of every GPU to the driver.
void empty_cache();
/// Starts every GPU allocator's peak_bytes again from its current_bytes.
void reset_peak();
/// Waits for all queued GPU work; throws naming the failure when a kernel faulted. A no-op without a GPU.
void synchronize();

/// Copies `nbytes` between any two devices (host<->device, device<->device); synchronous.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes);

/// Queues a copy of `nbytes` from pinned host memory `src` to `dst` on GPU `dst_device` on TLK's
/// stream and returns at once; `keep_alive` (the source's storage) is held until an event recorded
/// after the copy has passed (Note [Pinned staging] in tensor/pinned_allocator.h).
void copy_from_pinned(void* dst, Device dst_device, const void* src, std::size_t nbytes,
                      std::shared_ptr<const void> keep_alive);
/// Drops the sources of the pinned copies that have finished (copy_from_pinned and
/// Tensor::pinned_empty call it; a no-op without CUDA).
void release_finished_copies();

/// Sets `count` elements of dtype `dtype` (f32 or f64) at device pointer `dst` to `value`.
void fill(void* dst, DType dtype, std::size_t count, double value, int device_index);

/// The most dimensions copy_strided and fill_strided take.
inline constexpr int kMaxStridedDims = 12;

/// A strided array in GPU memory: the address of its first element (any view offset already
/// applied), its dtype, and one stride per dimension in elements.
struct StridedDeviceArray {
  void* data = nullptr;
  DType dtype = DType::f32;
  const std::int64_t* strides = nullptr;
};

/// Copies `src` into `dst`, both of extents `shape[0..ndim)` on GPU `device_index`, converting each
/// element to dst's dtype as static_cast does (f32, f64, bf16, f16, i64, i32, u8; bf16/f16 round to
/// nearest). Queued on the legacy default stream (asynchronous; launch errors throw). `dst` must not
/// overlap `src` unless both are the same elements in the same order.
/// Example: `cuda::copy_strided({out.raw_data(), out.dtype(), out.strides().begin()},
///                              {x.raw_data(), x.dtype(), x.strides().begin()}, x.shape().begin(), x.dim(), 0);`
void copy_strided(const StridedDeviceArray& dst, const StridedDeviceArray& src, const std::int64_t* shape, int ndim,
                  int device_index);
/// Sets every element of the strided array `dst` (extents `shape[0..ndim)`, any dtype above) to
/// `value` converted to its dtype; queued on the legacy default stream like copy_strided.
void fill_strided(const StridedDeviceArray& dst, const std::int64_t* shape, int ndim, double value, int device_index);

}  // namespace tlk::cuda
