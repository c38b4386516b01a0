#include "tlk/tensor/cuda_runtime.h"

#include <cstring>
#include <mutex>

#include "tlk/tensor/allocator.h"
#include "tlk/tensor/error.h"

#ifdef TLK_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace tlk::cuda {

namespace {

struct Discovery {
  int count = 0;
  std::string reason;
};

const Discovery& discovery() {
  static const Discovery result = [] {
    Discovery d;
#ifdef TLK_HAVE_CUDA
    int n = 0;
    cudaError_t status = cudaGetDeviceCount(&n);
    if (status != cudaSuccess) {
      d.reason = fmt::format("CUDA device discovery failed: {}", cudaGetErrorString(status));
      cudaGetLastError();  // clear the sticky error
    } else if (n == 0) {
      d.reason = "no CUDA GPU found";
    } else {
      d.count = n;
    }
#else
    d.reason = "TLK was built without CUDA (configure with nvcc and cuDNN present, or -DTLK_WITH_CUDA=ON)";
#endif
    return d;
  }();
  return result;
}

#ifdef TLK_HAVE_CUDA
void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) fail("CUDA: {} failed: {}", what, cudaGetErrorString(status));
}

class CudaAllocator final : public Allocator {
 public:
  explicit CudaAllocator(int index) : index_(index) {}
  void* allocate(std::size_t nbytes) override {
    if (nbytes == 0) return nullptr;
    check_cuda(cudaSetDevice(index_), "cudaSetDevice");
    void* ptr = nullptr;
    cudaError_t status = cudaMalloc(&ptr, nbytes);
    if (status != cudaSuccess) {
      cudaGetLastError();
      fail("CUDA allocator: out of memory allocating {} bytes on cuda:{} ({} bytes in use): {}", nbytes, index_,
           stats_.current_bytes, cudaGetErrorString(status));
    }
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.allocations;
    stats_.current_bytes += nbytes;
    stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.current_bytes);
    return ptr;
  }
  void deallocate(void* ptr, std::size_t nbytes) override {
    if (ptr == nullptr) return;
    cudaFree(ptr);
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.current_bytes -= nbytes;
  }
  AllocatorStats stats() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

 private:
  int index_;
  mutable std::mutex mutex_;
  AllocatorStats stats_;
};
#endif

}  // namespace

bool is_available() { return discovery().count > 0; }
int device_count() { return discovery().count; }
std::string unavailable_reason() { return discovery().reason; }

void require_device(int index, const char* op) {
  check(is_available(), "{}: no usable CUDA GPU ({})", op, unavailable_reason());
  check(index >= 0 && index < device_count(), "{}: cuda:{} does not exist ({} GPU(s) present)", op, index,
        device_count());
}

Allocator& device_allocator(int index) {
  require_device(index, "CUDA allocator");
#ifdef TLK_HAVE_CUDA
  static std::mutex mutex;
  static std::vector<std::unique_ptr<CudaAllocator>> allocators;
  std::lock_guard<std::mutex> lock(mutex);
  if (allocators.empty())
    for (int i = 0; i < device_count(); ++i) allocators.push_back(std::make_unique<CudaAllocator>(i));
  return *allocators[static_cast<std::size_t>(index)];
#else
  fail("unreachable");
#endif
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
#ifdef TLK_HAVE_CUDA
  check_cuda(cudaMemcpy(dst, src, nbytes, cudaMemcpyDefault), "cudaMemcpy");
#else
  fail("copy between {} and {}: {}", src_device.str(), dst_device.str(), unavailable_reason());
#endif
}

#ifndef TLK_HAVE_CUDA
void fill(void*, DType, std::size_t, double, int) { fail("CUDA fill: {}", unavailable_reason()); }
#endif

}  // namespace tlk::cuda
