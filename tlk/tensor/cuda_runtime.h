#pragma once
#include <cstddef>
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

/// The allocator of GPU `index` (plain cudaMalloc/cudaFree with statistics for now).
Allocator& device_allocator(int index);

/// Copies `nbytes` between any two devices (host<->device, device<->device); synchronous.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes);

/// Sets `count` elements of dtype `dtype` (f32 or f64) at device pointer `dst` to `value`.
void fill(void* dst, DType dtype, std::size_t count, double value, int device_index);

}  // namespace tlk::cuda
