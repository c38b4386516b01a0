#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tlk/dist/process_group.h"
#include "tlk/tensor/tensor.h"

namespace tlk::dist {

/// How gradients are grouped for the all-reduce.
struct GradientReducerOptions {
  /// Gradients travel in buckets of about this many bytes (distributed.bucket_mb); one MPI
  /// all-reduce per bucket.
  std::int64_t bucket_bytes = 25ll << 20;
};

/// Averages the gradients of a model's trainable parameters over the ranks of a group, as
/// PyTorch's DistributedDataParallel does: every rank computes its own batch's gradients and ends
/// each backward pass with the mean over all ranks in `grad()`, so one SGD step on N ranks with
/// batch B equals one on a single rank with batch N·B (for losses that average over the batch).
///
/// Note [Gradient buckets]: the parameters are grouped, in reverse order (backward reaches the last
/// layers first), into buckets of about `bucket_bytes`. A hook after each parameter's gradient
/// accumulation copies it into its bucket; a full bucket starts its all-reduce at once, on the
/// group's communication thread, while backward goes on with earlier layers. Buckets start in index
/// order on every rank (MPI matches collectives by order), so a bucket that fills early waits for
/// its predecessors. finish_backward() starts what is left, waits, and writes the means back.
///
/// Note [Unused parameters]: a parameter may get no gradient in a pass (the UNet's lowest deep-
/// supervision head has weight 0; a frozen branch). A bucket waits only for the parameters that had
/// a gradient on this rank in the previous pass, so such a parameter does not hold its bucket (and
/// every later one) back until finish_backward(); the first pass learns the set. A gradient that
/// arrives after its bucket left is kept and all-reduced in one extra call that every rank makes
/// (they learn of it from a small all-reduce of per-parameter counts). A parameter that got no
/// gradient on some rank counts as zero there; one that got none on any rank keeps an undefined
/// gradient, so the optimizer skips it as it would on one process.
///
/// Example:
/// ```
/// dist::GradientReducer reducer(group, net.parameters());
/// loss.backward();            // buckets are all-reduced while backward runs
/// reducer.finish_backward();  // every grad() now holds the mean over the ranks
/// optimizer.step();
/// ```
class GradientReducer {
 public:
  /// `parameters`: leaves that require grad, the same list in the same order on every rank.
  GradientReducer(ProcessGroup& group, std::vector<Tensor> parameters, const GradientReducerOptions& options = {});
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  /// Completes the current backward pass's reduction (see the class note). Call once after every
  /// backward pass, on every rank.
  void finish_backward();

  std::size_t num_buckets() const;
  /// Buckets whose all-reduce started during the last completed pass's backward, before
  /// finish_backward() (the overlap of communication with backward).
  std::size_t buckets_started_during_backward() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

/// Copies rank `root`'s values of `tensors` (parameters and buffers, any device or layout) into
/// every rank's tensors: the start of data-parallel training, so all ranks hold the same model.
void broadcast_tensors(ProcessGroup& group, const std::vector<Tensor>& tensors, int root, const std::string& what);

/// Replaces every floating-point tensor in `tensors` by its mean over the ranks (batch-norm
/// running statistics before a checkpoint; the ranks saw different batches).
void average_tensors(ProcessGroup& group, const std::vector<Tensor>& tensors, const std::string& what);

}  // namespace tlk::dist
