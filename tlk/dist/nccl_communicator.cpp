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
      error =
          fmt::format("cannot load libnccl.so.2 ({}); install NCCL or add its folder to LD_LIBRARY_PATH", dlerror());
      return;
    }
    auto resolve = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(handle, name));
      if (!fn && error.empty()) error = fmt::format("libnccl.so.2 has no {} (NCCL 2.14 or newer is needed)", name);
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

using Clock = std::chrono::steady_clock;

Clock::time_point deadline_after(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

}  // namespace

// Note [Non-blocking NCCL]: the communicator is non-blocking (config.blocking = 0), so that a rank
// that never joins or stops mid-run is caught by distributed.timeout_s instead of hanging. Then
// ncclCommInitRankConfig and every collective may return ncclInProgress while NCCL works in the
// background, and nothing may use the communicator (or record an event after the collective) until
// ncclCommGetAsyncError says ncclSuccess: wait_ready polls for that with the deadline. A failure or
// timeout aborts the communicator once (ncclCommAbort frees it; comm is cleared), and every later
// use reports the first failure. The Impl is shared with the pending works, which keep their tensor
// alive until they are waited for (the caching allocator would hand its memory out again at once).
struct NcclCommunicator::Impl {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  int device = 0;
  double timeout_seconds = 600.0;
  std::string failure;  ///< the first failure ("" while healthy)

  [[noreturn]] void abort_and_fail(const std::string& message) {
    if (failure.empty()) failure = message;
    if (comm) nccl().abort(comm);
    comm = nullptr;
    fail("{}", message);
  }
  [[noreturn]] void fail_timed_out(const std::string& what) {
    abort_and_fail(
        fmt::format("distributed (NCCL) {}: waited {:.0f} s for the other ranks (distributed.timeout_s); "
                    "a rank stopped, died or fell far behind",
                    what, timeout_seconds));
  }
  void check_healthy(const std::string& what) const {
    check(failure.empty() && comm, "distributed (NCCL) {}: not run, an earlier collective failed: {}", what, failure);
  }
  /// Polls the communicator until it leaves ncclInProgress (Note [Non-blocking NCCL]).
  void wait_ready(ncclResult_t r, Clock::time_point deadline, const std::string& what) {
    while (r == ncclInProgress) {
      if (Clock::now() > deadline) fail_timed_out(what);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      const ncclResult_t query = nccl().get_async_error(comm, &r);
      if (query != ncclSuccess) r = query;
    }
    if (r != ncclSuccess) abort_and_fail(fmt::format("distributed (NCCL) {}: {}", what, nccl().error_string(r)));
  }
};

namespace {

/// A collective on the communication stream: done when its event has completed.
class NcclWork final : public Work {
 public:
  NcclWork(std::shared_ptr<NcclCommunicator::Impl> impl, Tensor tensor, cudaEvent_t done, std::string what)
      : impl_(std::move(impl)), tensor_(std::move(tensor)), done_(done), what_(std::move(what)) {}
  ~NcclWork() override { cudaEventDestroy(done_); }

  void wait() override {
    const auto deadline = deadline_after(impl_->timeout_seconds);
    for (;;) {
      impl_->check_healthy(what_);
      const cudaError_t status = cudaEventQuery(done_);
      if (status == cudaSuccess) return;
      if (status != cudaErrorNotReady)
        impl_->abort_and_fail(fmt::format("distributed (NCCL) {}: {}", what_, cudaGetErrorString(status)));
      ncclResult_t async = ncclSuccess;
      const ncclResult_t query = nccl().get_async_error(impl_->comm, &async);
      if (query != ncclSuccess) async = query;
      if (async != ncclSuccess && async != ncclInProgress)
        impl_->abort_and_fail(fmt::format("distributed (NCCL) {}: {}", what_, nccl().error_string(async)));
      if (Clock::now() > deadline) impl_->fail_timed_out(what_);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }

 private:
  std::shared_ptr<NcclCommunicator::Impl> impl_;
  Tensor tensor_;  // kept alive until the collective is done
  cudaEvent_t done_;
  std::string what_;
};

}  // namespace

bool NcclCommunicator::available(std::string* why) {
  if (!nccl().error.empty() && why) *why = nccl().error;
  return nccl().error.empty();
}

NcclCommunicator::NcclCommunicator(ProcessGroup& group, int device) : impl_(std::make_shared<Impl>()) {
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
  // Non-blocking initialisation (Note [Non-blocking NCCL]): a rank that never joins is caught by the
  // timeout, and any failure from here on aborts the communicator before the error leaves.
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  const auto deadline = deadline_after(impl_->timeout_seconds);
  const ncclResult_t r = nccl().init_rank_config(&impl_->comm, group.size(), id, group.rank(), &config);
  impl_->wait_ready(r, deadline, fmt::format("joining {} ranks on GPU {}", group.size(), device));
  const cudaError_t stream = cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking);
  if (stream != cudaSuccess)
    impl_->abort_and_fail(
        fmt::format("distributed (NCCL): cudaStreamCreateWithFlags failed: {}", cudaGetErrorString(stream)));
}

NcclCommunicator::~NcclCommunicator() {
  if (impl_->comm) {
    // ncclCommDestroy does nothing on a communicator in an error state: abort it then.
    ncclResult_t state = ncclSuccess;
    const ncclResult_t query = nccl().get_async_error(impl_->comm, &state);
    if (query != ncclSuccess || state != ncclSuccess || nccl().destroy(impl_->comm) != ncclSuccess)
      nccl().abort(impl_->comm);
    impl_->comm = nullptr;
  }
  if (impl_->stream) cudaStreamDestroy(impl_->stream);
}

std::shared_ptr<Work> NcclCommunicator::all_reduce_mean_async(Tensor t, std::string what) {
  check(t.device().is_cuda() && t.device().index == impl_->device && t.dtype() == DType::f32 &&
            t.layout() == Layout::plain && t.is_contiguous(),
        "distributed (NCCL) {}: expected a contiguous f32 tensor on cuda:{}, got {}", what, impl_->device, t.str(0));
  what = "all-reduce of " + what;
  impl_->check_healthy(what);
  check_cuda_call(cudaSetDevice(impl_->device), "cudaSetDevice");
  // The collective starts after everything already queued on TLK's stream (the bucket's copies).
  cudaEvent_t queued = nullptr, done = nullptr;
  check_cuda_call(cudaEventCreateWithFlags(&queued, cudaEventDisableTiming), "cudaEventCreate");
  check_cuda_call(cudaEventRecord(queued, cudaStreamLegacy), "cudaEventRecord");
  check_cuda_call(cudaStreamWaitEvent(impl_->stream, queued, 0), "cudaStreamWaitEvent");
  cudaEventDestroy(queued);
  const auto deadline = deadline_after(impl_->timeout_seconds);
  const ncclResult_t r = nccl().all_reduce(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()), ncclFloat32,
                                           ncclAvg, impl_->comm, impl_->stream);
  impl_->wait_ready(r, deadline, what);  // launched (Note [Non-blocking NCCL]) before the event is recorded
  check_cuda_call(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "cudaEventCreate");
  check_cuda_call(cudaEventRecord(done, impl_->stream), "cudaEventRecord");
  return std::make_shared<NcclWork>(impl_, std::move(t), done, std::move(what));
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
