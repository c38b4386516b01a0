#include "tlk/dist/process_group.h"

#include <fmt/format.h>

// MPI's C API only: the deprecated C++ bindings would need libmpi_cxx.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "tlk/tensor/error.h"
#include "tlk/tensor/fnv1a.h"

namespace tlk::dist {

namespace {

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, static_cast<std::size_t>(length));
}

/// The completion state of one collective, shared by the caller's Work handle and the thread.
class WorkState final : public Work {
 public:
  void wait() override {
    std::unique_lock lock(mutex_);
    done_changed_.wait(lock, [&] { return done_; });
    if (!error_.empty()) throw Error(error_);
  }
  void finish(std::string error) {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
      error_ = std::move(error);
    }
    done_changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_changed_;
  bool done_ = false;
  std::string error_;
};

std::unique_ptr<ProcessGroup>& world_slot() {
  static std::unique_ptr<ProcessGroup> world;
  return world;
}

MPI_Datatype mpi_type(const Tensor& t, const std::string& what) {
  check(t.device().is_cpu(), "distributed {}: the MPI path takes CPU tensors, got one on {}", what,
        t.device().str());
  check(t.layout() == Layout::plain && t.is_contiguous(), "distributed {}: expected a contiguous plain tensor", what);
  check(t.numel() < INT_MAX, "distributed {}: {} elements exceed MPI's count limit", what, t.numel());
  if (t.dtype() == DType::f32) return MPI_FLOAT;
  check(t.dtype() == DType::f64, "distributed {}: expected f32 or f64, got {}", what, dtype_name(t.dtype()));
  return MPI_DOUBLE;
}

}  // namespace

struct ProcessGroup::Impl {
  /// Posts one non-blocking MPI call into *request.
  using Post = std::function<int(MPI_Comm, MPI_Request*)>;
  struct Task {
    std::string what;
    Post post;
    std::shared_ptr<WorkState> work;
  };

  MPI_Comm comm = MPI_COMM_NULL;
  double timeout_seconds = 600.0;
  int rank = 0, size = 1;
  std::mutex mutex;
  std::condition_variable queue_changed;
  std::deque<Task> queue;
  bool stopping = false;
  std::string failure;  ///< set once a collective failed; guarded by mutex
  std::thread thread;

  void loop() {
    for (;;) {
      Task task;
      std::string failed_before;
      {
        std::unique_lock lock(mutex);
        queue_changed.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;
        task = std::move(queue.front());
        queue.pop_front();
        failed_before = failure;
      }
      if (!failed_before.empty()) {
        task.work->finish(failed_before);  // the first failure is the one worth reporting
        continue;
      }
      std::string error = run(task);
      if (!error.empty()) {
        std::lock_guard lock(mutex);
        if (failure.empty()) failure = error;
      }
      task.work->finish(std::move(error));
    }
  }

  /// Posts the call and drives it to completion or to the timeout; returns an error text or "".
  std::string run(const Task& task) {
    MPI_Request request = MPI_REQUEST_NULL;
    int code = task.post(comm, &request);
    if (code != MPI_SUCCESS) return fmt::format("distributed {}: MPI failed: {}", task.what, mpi_error_text(code));
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + std::chrono::duration<double>(timeout_seconds);
    // Poll: at once for a short while (collectives on a quiet link finish in microseconds), then
    // with growing sleeps up to 1 ms so the polling thread does not take a core from the compute.
    std::chrono::microseconds pause(0);
    for (int polls = 0;; ++polls) {
      int completed = 0;
      code = MPI_Test(&request, &completed, MPI_STATUS_IGNORE);
      if (code != MPI_SUCCESS) return fmt::format("distributed {}: MPI failed: {}", task.what, mpi_error_text(code));
      if (completed) return "";
      const auto now = std::chrono::steady_clock::now();
      if (now > deadline)
        return fmt::format("distributed {}: rank {} of {} waited {:.0f} s for the other ranks (distributed.timeout_s); "
                           "a rank stopped, died or fell far behind (raise the timeout if ranks are only slow)", task.what, rank, size, timeout_seconds);
      if (polls > 64) {
        pause = std::min(std::chrono::microseconds(1000), pause + std::chrono::microseconds(20));
        std::this_thread::sleep_for(pause);
      }
    }
  }

  std::shared_ptr<Work> submit(std::string what, Post post) {
    auto work = std::make_shared<WorkState>();
    {
      std::lock_guard lock(mutex);
      queue.push_back({std::move(what), std::move(post), work});
    }
    queue_changed.notify_one();
    return work;
  }

  bool failed() {
    std::lock_guard lock(mutex);
    return !failure.empty();
  }
};

ProcessGroup::ProcessGroup(int rank, int size, const ProcessGroupOptions& options)
    : rank_(rank), size_(size), options_(options), impl_(std::make_unique<Impl>()) {
  check(options.timeout_seconds > 0, "distributed: the collective timeout must be positive, got {} s",
        options.timeout_seconds);
  impl_->timeout_seconds = options.timeout_seconds;
  impl_->rank = rank;
  impl_->size = size;
  // A communicator of TLK's own, whose errors come back as codes instead of ending the process.
  MPI_Comm_dup(MPI_COMM_WORLD, &impl_->comm);
  MPI_Comm_set_errhandler(impl_->comm, MPI_ERRORS_RETURN);
  MPI_Comm node = MPI_COMM_NULL;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  MPI_Comm_size(node, &local_size_);
  MPI_Comm_rank(node, &local_rank_);
  MPI_Comm_free(&node);
  impl_->thread = std::thread([impl = impl_.get()] { impl->loop(); });
}

ProcessGroup::~ProcessGroup() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->queue_changed.notify_all();
  impl_->thread.join();
  if (!impl_->failed()) MPI_Comm_free(&impl_->comm);
}

ProcessGroup& ProcessGroup::init_world(const ProcessGroupOptions& options) {
  auto& world = world_slot();
  if (world) return *world;
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    // Note [One thread calls MPI]: the communication thread makes every call after this one, never
    // two at once, which MPI_THREAD_SERIALIZED allows.
    const int code = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
    check(code == MPI_SUCCESS, "distributed: MPI_Init_thread failed: {}", mpi_error_text(code));
    check(provided >= MPI_THREAD_SERIALIZED, "distributed: the MPI library offers thread level {}, TLK needs "
          "MPI_THREAD_SERIALIZED ({})", provided, static_cast<int>(MPI_THREAD_SERIALIZED));
  }
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  world.reset(new ProcessGroup(rank, size, options));
  return *world;
}

ProcessGroup* ProcessGroup::world() { return world_slot().get(); }

void ProcessGroup::finalize_world() {
  auto& world = world_slot();
  if (!world) return;
  if (world->impl_->failed()) abort_job(1);
  world.reset();
  MPI_Finalize();
}

void ProcessGroup::abort_job(int exit_code) {
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

std::shared_ptr<Work> ProcessGroup::all_reduce_sum_async(Tensor t, std::string what) {
  const MPI_Datatype type = mpi_type(t, what);
  const int count = static_cast<int>(t.numel());
  return impl_->submit("all-reduce of " + what, [t, type, count](MPI_Comm comm, MPI_Request* request) {
    return MPI_Iallreduce(MPI_IN_PLACE, t.raw_data(), count, type, MPI_SUM, comm, request);
  });
}

void ProcessGroup::all_reduce_sum(Tensor& t, const std::string& what) { all_reduce_sum_async(t, what)->wait(); }

std::vector<double> ProcessGroup::all_reduce_sum(const std::vector<double>& values, const std::string& what) {
  Tensor t = Tensor::empty({static_cast<std::int64_t>(values.size())}, TensorOptions{}.with(DType::f64));
  std::copy(values.begin(), values.end(), t.data<double>());
  all_reduce_sum(t, what);
  return std::vector<double>(t.data<double>(), t.data<double>() + values.size());
}

void ProcessGroup::broadcast(Tensor& t, int root, const std::string& what) {
  const MPI_Datatype type = mpi_type(t, what);
  const int count = static_cast<int>(t.numel());
  impl_->submit("broadcast of " + what, [t, type, count, root](MPI_Comm comm, MPI_Request* request) {
         return MPI_Ibcast(t.raw_data(), count, type, root, comm, request);
       })->wait();
}

void ProcessGroup::broadcast_bytes(std::vector<std::uint8_t>& bytes, int root, const std::string& what) {
  check(bytes.size() < INT_MAX, "distributed broadcast of {}: {} bytes exceed MPI's count limit", what, bytes.size());
  std::uint8_t* data = bytes.data();
  const int count = static_cast<int>(bytes.size());
  impl_->submit("broadcast of " + what, [data, count, root](MPI_Comm comm, MPI_Request* request) {
         return MPI_Ibcast(data, count, MPI_BYTE, root, comm, request);
       })->wait();
}

void ProcessGroup::check_same(const std::string& text, const std::string& what) {
  // The fingerprint as two 32-bit halves (exact in doubles), so that the broadcast carries it unchanged.
  const std::uint64_t h = fnv1a(text);
  Tensor mine = Tensor::empty({2}, TensorOptions{}.with(DType::f64));
  mine.data<double>()[0] = static_cast<double>(h >> 32);
  mine.data<double>()[1] = static_cast<double>(h & 0xffffffffull);
  Tensor root = mine.clone();
  broadcast(root, 0, what + " fingerprint");
  const bool differs = root.data<double>()[0] != mine.data<double>()[0] || root.data<double>()[1] != mine.data<double>()[1];
  const double differing = all_reduce_sum({differs ? 1.0 : 0.0}, what + " check")[0];
  check(differing == 0, "distributed: {} differs between the ranks ({} of {} differ from rank 0's{}); every rank must "
        "run the same config on the same data", what, differing, size_, differs ? ", this one included" : "");
}

void ProcessGroup::barrier(const std::string& what) {
  impl_->submit("barrier at " + what, [](MPI_Comm comm, MPI_Request* request) {
         return MPI_Ibarrier(comm, request);
       })->wait();
}

}  // namespace tlk::dist
