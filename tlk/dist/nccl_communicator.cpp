#include "tlk/dist/nccl_communicator.h"

#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "tlk/tensor/error.h"

#ifdef TLK_HAVE_CUDA
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <nccl.h>
#endif

namespace tlk::dist {

#ifdef TLK_HAVE_CUDA

namespace {

/// The NCCL entry points TLK uses, resolved from libnccl.so.2 (Note [NCCL at run time]).
struct NcclLibrary {
  std::string error;  ///< why it could not be loaded ("" when it could)
  ncclResult_t (*get_unique_id)(ncclUniqueId*) = nullptr;
  ncclResult_t (*init_rank_config)(ncclComm_t*, int, ncclUniqueId, int, ncclConfig_t*) = nullptr;
  ncclResult_t (*get_async_error)(ncclComm_t, ncclResult_t*) = nullptr;
  ncclResult_t (*all_reduce)(const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t,
                             cudaStream_t) = nullptr;
  ncclResult_t (*abort)(ncclComm_t) = nullptr;
  ncclResult_t (*destroy)(ncclComm_t) = nullptr;
  const char* (*error_string)(ncclResult_t) = nullptr;

  NcclLibrary() {
    void* handle = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      error = fmt::format("cannot load libnccl.so.2 ({}); install NCCL or add its folder to LD_LIBRARY_PATH",
                          dlerror());
      return;
    }
    auto resolve = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(handle, name));
      if (!fn && error.empty()) error = fmt::format("libnccl.so.2 has no {} (NCCL 2.18 or newer is needed)", name);
    };
    resolve(get_unique_id, "ncclGetUniqueId");
    resolve(init_rank_config, "ncclCommInitRankConfig");
    resolve(get_async_error, "ncclCommGetAsyncError");
    resolve(all_reduce, "ncclAllReduce");
    resolve(abort, "ncclCommAbort");
    resolve(destroy, "ncclCommDestroy");
    resolve(error_string, "ncclGetErrorString");
  }
};

const NcclLibrary& nccl() {
  static const NcclLibrary library;
  return library;
}

void check_cuda_call(cudaError_t status, const char* what) {
  check(status == cudaSuccess, "distributed (NCCL): {} failed: {}", what, cudaGetErrorString(status));
}

/// A collective on the communication stream: done when its event has completed.
class NcclWork final : public Work {
 public:
  NcclWork(ncclComm_t comm, cudaEvent_t done, double timeout_seconds, std::string what, bool* failed)
      : comm_(comm), done_(done), timeout_(timeout_seconds), what_(std::move(what)), failed_(failed) {}
  ~NcclWork() override { cudaEventDestroy(done_); }

  void wait() override {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_);
    for (;;) {
      const cudaError_t status = cudaEventQuery(done_);
      if (status == cudaSuccess) return;
      check(status == cudaErrorNotReady, "distributed (NCCL) {}: {}", what_, cudaGetErrorString(status));
      ncclResult_t async = ncclSuccess;
      nccl().get_async_error(comm_, &async);
      if (async != ncclSuccess && async != ncclInProgress) {
        *failed_ = true;
        nccl().abort(comm_);
        fail("distributed (NCCL) {}: {}", what_, nccl().error_string(async));
      }
      if (std::chrono::steady_clock::now() > deadline) {
        *failed_ = true;
        nccl().abort(comm_);
        fail("distributed (NCCL) {}: waited {:.0f} s for the other ranks (distributed.timeout_s); a rank stopped, "
             "died or fell far behind", what_, timeout_);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }

 private:
  ncclComm_t comm_;
  cudaEvent_t done_;
  double timeout_;
  std::string what_;
  bool* failed_;
};

}  // namespace

struct NcclCommunicator::Impl {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  int device = 0;
  double timeout_seconds = 600.0;
  bool failed = false;
};

bool NcclCommunicator::available(std::string* why) {
  if (!nccl().error.empty() && why) *why = nccl().error;
  return nccl().error.empty();
}

NcclCommunicator::NcclCommunicator(ProcessGroup& group, int device) : impl_(std::make_unique<Impl>()) {
  std::string why;
  check(available(&why), "distributed on GPUs: {}", why);
  impl_->device = device;
  impl_->timeout_seconds = group.options().timeout_seconds;
  check_cuda_call(cudaSetDevice(device), "cudaSetDevice");
  // Rank 0 makes the id; MPI carries it to the others.
  ncclUniqueId id{};
  if (group.rank() == 0) {
    const ncclResult_t r = nccl().get_unique_id(&id);
    check(r == ncclSuccess, "distributed (NCCL): ncclGetUniqueId failed: {}", nccl().error_string(r));
  }
  std::vector<std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(&id),
                                  reinterpret_cast<const std::uint8_t*>(&id) + sizeof(id));
  group.broadcast_bytes(bytes, 0, "the NCCL id");
  std::memcpy(&id, bytes.data(), sizeof(id));
  // Non-blocking initialisation, so that a rank that never joins is caught by the timeout.
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclResult_t r = nccl().init_rank_config(&impl_->comm, group.size(), id, group.rank(), &config);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(impl_->timeout_seconds);
  while (r == ncclInProgress) {
    check(std::chrono::steady_clock::now() < deadline, "distributed (NCCL): the communicator was not ready after {:.0f} "
          "s (distributed.timeout_s); a rank did not join", impl_->timeout_seconds);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    nccl().get_async_error(impl_->comm, &r);
  }
  check(r == ncclSuccess, "distributed (NCCL): joining {} ranks on GPU {} failed: {}", group.size(), device,
        nccl().error_string(r));
  check_cuda_call(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
}

NcclCommunicator::~NcclCommunicator() {
  if (impl_->comm) (impl_->failed ? nccl().abort : nccl().destroy)(impl_->comm);
  if (impl_->stream) cudaStreamDestroy(impl_->stream);
}

std::shared_ptr<Work> NcclCommunicator::all_reduce_mean_async(Tensor t, std::string what) {
  check(t.device().is_cuda() && t.dtype() == DType::f32 && t.layout() == Layout::plain && t.is_contiguous(),
        "distributed (NCCL) {}: expected a contiguous CUDA f32 tensor, got {}", what, t.str(0));
  check(!impl_->failed, "distributed (NCCL) {}: not run, an earlier collective failed", what);
  // The collective starts after everything already queued on TLK's stream (the bucket's copies).
  cudaEvent_t queued = nullptr, done = nullptr;
  check_cuda_call(cudaEventCreateWithFlags(&queued, cudaEventDisableTiming), "cudaEventCreate");
  check_cuda_call(cudaEventRecord(queued, cudaStreamLegacy), "cudaEventRecord");
  check_cuda_call(cudaStreamWaitEvent(impl_->stream, queued, 0), "cudaStreamWaitEvent");
  cudaEventDestroy(queued);
  const ncclResult_t r = nccl().all_reduce(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()), ncclFloat32,
                                           ncclAvg, impl_->comm, impl_->stream);
  check(r == ncclSuccess || r == ncclInProgress, "distributed (NCCL) {}: ncclAllReduce failed: {}", what,
        nccl().error_string(r));
  check_cuda_call(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "cudaEventCreate");
  check_cuda_call(cudaEventRecord(done, impl_->stream), "cudaEventRecord");
  return std::make_shared<NcclWork>(impl_->comm, done, impl_->timeout_seconds, "all-reduce of " + what,
                                    &impl_->failed);
}

#else  // built without CUDA

struct NcclCommunicator::Impl {};

bool NcclCommunicator::available(std::string* why) {
  if (why) *why = "TLK was built without CUDA";
  return false;
}

NcclCommunicator::NcclCommunicator(ProcessGroup&, int) { fail("distributed on GPUs: TLK was built without CUDA"); }

NcclCommunicator::~NcclCommunicator() = default;

std::shared_ptr<Work> NcclCommunicator::all_reduce_mean_async(Tensor, std::string what) {
  fail("distributed (NCCL) {}: TLK was built without CUDA", what);
}

#endif

}  // namespace tlk::dist
