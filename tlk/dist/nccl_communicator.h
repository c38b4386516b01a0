#pragma once
#include <memory>
#include <string>

#include "tlk/dist/process_group.h"
#include "tlk/tensor/tensor.h"

namespace tlk::dist {

/// NCCL between the GPUs of an MPI job (one rank per GPU): the communicator is bootstrapped through
/// the MPI group (rank 0's NCCL id is broadcast), and gradient buckets are averaged on the GPUs.
///
/// Note [NCCL at run time]: TLK loads libnccl.so.2 with dlopen when a distributed run trains on
/// GPUs, instead of linking it: NCCL is a 200 MB library that single-GPU and CPU users never need,
/// and the TLK binaries must start where it is absent. Collectives run on a stream of their own that
/// first waits for the work already queued on TLK's stream; a collective that has not completed
/// after the group's timeout aborts the communicator (ncclCommAbort) and fails with an error.
class NcclCommunicator {
 public:
  /// True when NCCL can be loaded and TLK was built with CUDA; otherwise `why` says what is missing.
  static bool available(std::string* why = nullptr);
  /// Joins every rank of `group` on GPU `device` (collective over `group`).
  NcclCommunicator(ProcessGroup& group, int device);
  ~NcclCommunicator();
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  /// Replaces a contiguous CUDA f32 tensor on this communicator's GPU by its mean over the ranks,
  /// without waiting for it (the returned work keeps `t` alive until it is waited for).
  std::shared_ptr<Work> all_reduce_mean_async(Tensor t, std::string what);

  struct Impl;  ///< shared with the pending works (Note [Non-blocking NCCL] in the .cpp)

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tlk::dist
