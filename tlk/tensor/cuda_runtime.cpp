#include "tlk/tensor/cuda_runtime.h"

#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "tlk/tensor/allocator.h"
#ifdef TLK_HAVE_CUDA
#include "tlk/tensor/cuda_allocator.h"
#endif
#include "tlk/tensor/error.h"

#ifdef TLK_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace tlk {

Device parse_device(const std::string& text, const char* what) {
  if (text == "cpu") return Device::cpu();
  if (text == "cuda") return Device::cuda(0);
  if (text.rfind("cuda:", 0) == 0 && text.size() > 5 &&
      text.find_first_not_of("0123456789", 5) == std::string::npos && text.size() < 10)
    return Device::cuda(std::stoi(text.substr(5)));
  fail("{}: unknown device '{}' (expected cpu, cuda or cuda:N)", what, text);
}

Layout parse_activation_layout(const std::string& text, Device device, const char* what) {
  if (text == "auto") return device.is_cuda() ? Layout::channels_last : Layout::plain;
  if (text == "plain") return Layout::plain;
  check(text == "channels_last", "{}: unknown layout '{}' (expected auto, plain or channels_last)", what, text);
  check(device.is_cuda(), "{}: channels_last needs a CUDA device (the CPU picks oneDNN's blocked layouts itself); "
        "got {}", what, device.str());
  return Layout::channels_last;
}

}  // namespace tlk

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

std::vector<std::unique_ptr<CudaCachingAllocator>>& allocators() {
  // Note [Allocator lifetime] (tensor/allocator.cpp): leaked on purpose, like the CPU allocator.
  static auto* all = [] {
    auto* v = new std::vector<std::unique_ptr<CudaCachingAllocator>>();
    for (int i = 0; i < discovery().count; ++i) v->push_back(std::make_unique<CudaCachingAllocator>(i));
    return v;
  }();
  return *all;
}
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

void set_current_device(int index, const char* op) {
  require_device(index, op);
#ifdef TLK_HAVE_CUDA
  check_cuda(cudaSetDevice(index), "cudaSetDevice");
#endif
}

Allocator& device_allocator(int index) {
  require_device(index, "CUDA allocator");
#ifdef TLK_HAVE_CUDA
  return *allocators()[static_cast<std::size_t>(index)];
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

#ifdef TLK_HAVE_CUDA
namespace {

/// A queued copy from pinned memory and the source it keeps alive until its event has passed.
struct PendingCopy {
  cudaEvent_t done = nullptr;
  std::shared_ptr<const void> source;
};
std::mutex pending_mutex;
std::vector<PendingCopy>* pending = new std::vector<PendingCopy>();  // Note [Allocator lifetime]

}  // namespace
#endif

void release_finished_copies() {
#ifdef TLK_HAVE_CUDA
  std::vector<PendingCopy> finished;
  {
    std::lock_guard<std::mutex> lock(pending_mutex);
    auto keep = pending->begin();
    for (auto& copy : *pending) {
      if (cudaEventQuery(copy.done) == cudaErrorNotReady)
        *keep++ = std::move(copy);
      else
        finished.push_back(std::move(copy));
    }
    pending->erase(keep, pending->end());
    cudaGetLastError();  // a failed query is reported by the next synchronizing call instead
  }
  for (PendingCopy& copy : finished) cudaEventDestroy(copy.done);
  // The sources go here, outside the lock: a pinned block returns to its allocator's free list.
#endif
}

void copy_from_pinned(void* dst, Device dst_device, const void* src, std::size_t nbytes,
                      std::shared_ptr<const void> keep_alive) {
  if (nbytes == 0) return;
#ifdef TLK_HAVE_CUDA
  release_finished_copies();
  set_current_device(dst_device.index, "copy from pinned memory");
  PendingCopy copy{nullptr, std::move(keep_alive)};
  check_cuda(cudaEventCreateWithFlags(&copy.done, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  const cudaError_t queued = cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, cudaStreamLegacy);
  const cudaError_t recorded = queued == cudaSuccess ? cudaEventRecord(copy.done, cudaStreamLegacy) : queued;
  if (recorded != cudaSuccess) {
    cudaStreamSynchronize(cudaStreamLegacy);  // whatever was queued is done: the source may go
    cudaEventDestroy(copy.done);
    check_cuda(recorded, queued == cudaSuccess ? "cudaEventRecord" : "cudaMemcpyAsync");
  }
  std::lock_guard<std::mutex> lock(pending_mutex);
  pending->push_back(std::move(copy));
#else
  (void)dst;
  (void)src;
  (void)keep_alive;
  fail("copy to {}: {}", dst_device.str(), unavailable_reason());
#endif
}

void set_poison_allocations(bool on) {
#ifdef TLK_HAVE_CUDA
  for (auto& a : allocators()) a->set_poison(on);
#else
  (void)on;
#endif
}

void empty_cache() {
#ifdef TLK_HAVE_CUDA
  for (auto& a : allocators()) a->empty_cache();
#endif
}

void reset_peak() {
#ifdef TLK_HAVE_CUDA
  for (auto& a : allocators()) a->reset_peak();
#endif
}

void synchronize() {
#ifdef TLK_HAVE_CUDA
  if (!is_available()) return;
  const cudaError_t status = cudaDeviceSynchronize();
  if (status != cudaSuccess) fail("CUDA: a queued kernel failed: {}", cudaGetErrorString(status));
#endif
}

#ifndef TLK_HAVE_CUDA
void fill(void*, DType, std::size_t, double, int) { fail("CUDA fill: {}", unavailable_reason()); }
void copy_strided(const StridedDeviceArray&, const StridedDeviceArray&, const std::int64_t*, int, int) {
  fail("CUDA strided copy: {}", unavailable_reason());
}
void fill_strided(const StridedDeviceArray&, const std::int64_t*, int, double, int) {
  fail("CUDA strided fill: {}", unavailable_reason());
}
#endif

}  // namespace tlk::cuda
