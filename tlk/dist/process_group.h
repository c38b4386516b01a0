#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tlk/tensor/tensor.h"

namespace tlk::dist {

/// How collectives behave.
struct ProcessGroupOptions {
  /// A collective that has not completed after this many seconds fails with an error naming it
  /// (a rank that hangs or died without its launcher noticing); the job is then aborted.
  double timeout_seconds = 600.0;
};

/// A collective started by an *_async call. wait() returns when it completed on this rank and
/// throws tlk::Error when it failed (timed out, or the group failed before it ran).
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
};

/// The processes of one MPI job (every rank started by `mpirun`), reached through MPI collectives.
///
/// Note [One thread calls MPI]: every collective runs on the group's own communication thread, in
/// the order the ranks submitted them (the same order on every rank, as MPI requires). The thread
/// posts the non-blocking MPI call and drives it with MPI_Test until it completes, so (a) collectives
/// progress while the training thread computes (Open MPI moves data only inside MPI calls), and (b)
/// a collective can time out: MPI itself would block forever on a rank that stopped. After a timeout
/// the group is failed: every later collective throws at once, and the process must end through
/// abort_job() (MPI_Finalize would wait for the missing rank).
///
/// Example:
/// ```
/// auto& group = dist::ProcessGroup::init_world({.timeout_seconds = 60});
/// Tensor t = Tensor::full({4}, group.rank());
/// group.all_reduce_sum(t);  // every rank now holds 0 + 1 + ... + (size - 1)
/// dist::ProcessGroup::finalize_world();
/// ```
class ProcessGroup {
 public:
  /// Joins the MPI job (MPI_Init_thread) once per process and returns the group of all its ranks.
  /// A process started without mpirun forms a job of one rank.
  static ProcessGroup& init_world(const ProcessGroupOptions& options = {});
  /// The world group when init_world ran (and finalize_world did not), else nullptr.
  static ProcessGroup* world();
  /// Leaves the job in order (MPI_Finalize); every rank must call it. A failed group aborts instead.
  static void finalize_world();
  /// Ends every rank of the job now with `exit_code` (MPI_Abort): for errors that hit one rank only,
  /// where the others would otherwise wait in their next collective.
  [[noreturn]] static void abort_job(int exit_code);

  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  /// How many ranks of the job run on this machine (to share its cores among them).
  int local_size() const { return local_size_; }
  /// This rank's index among the ranks on its machine (which GPU it takes: one rank per GPU).
  int local_rank() const { return local_rank_; }
  const ProcessGroupOptions& options() const { return options_; }

  /// Sums a contiguous CPU f32 or f64 tensor over the ranks, in place, without blocking: the tensor
  /// must not be touched until the returned Work completed. `what` names it in errors.
  std::shared_ptr<Work> all_reduce_sum_async(Tensor t, std::string what);
  /// The blocking form of all_reduce_sum_async (any CPU f32/f64 tensor; plain layouts).
  void all_reduce_sum(Tensor& t, const std::string& what);
  /// Sums doubles over the ranks (small values: losses, counts).
  std::vector<double> all_reduce_sum(const std::vector<double>& values, const std::string& what);
  /// Copies rank `root`'s tensor into every rank's `t` (CPU, contiguous, same shape and dtype).
  void broadcast(Tensor& t, int root, const std::string& what);
  /// Copies rank `root`'s bytes into every rank's `bytes` (resized to the root's size first by the
  /// caller: every rank passes the same size).
  void broadcast_bytes(std::vector<std::uint8_t>& bytes, int root, const std::string& what);
  /// Checks that every rank holds the same `text` (a config, a list of case files): on a mismatch every
  /// rank throws tlk::Error naming `what` and how many ranks differ from rank 0.
  void check_same(const std::string& text, const std::string& what);
  /// Returns when every rank reached it.
  void barrier(const std::string& what);

 private:
  struct Impl;
  ProcessGroup(int rank, int size, const ProcessGroupOptions& options);
  int rank_ = 0, size_ = 1, local_size_ = 1, local_rank_ = 0;
  ProcessGroupOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tlk::dist
