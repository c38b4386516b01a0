#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tlk/dist/gradient_reducer.h"
#include "tlk/dist/process_group.h"
#include "tlk/nn/module.h"
#include "tlk/tensor/device.h"

namespace tlk::task {

/// What a trainer does differently when it is one rank of a data-parallel job
/// (`tlk train --distributed`, docs/distributed.md), in one place for both trainers. Without a group
/// (one process) every call is a no-op or the identity, so the trainers call it unconditionally.
///
/// Example (the shape of a trainer's step):
/// ```
/// task::DataParallel parallel(group);
/// parallel.start(config.to_yaml(), {net.get()}, trained_parameters, config.bucket_mb);
/// loss.backward();
/// parallel.after_backward();                    // gradients averaged over the ranks
/// auto terms = parallel.mean({loss.item()}, "loss");
/// if (parallel.writes()) log.write(...);        // rank 0 alone
/// ```
class DataParallel {
 public:
  explicit DataParallel(dist::ProcessGroup* group) : group_(group) {}

  bool distributed() const { return group_ != nullptr; }
  int rank() const { return group_ ? group_->rank() : 0; }
  int ranks() const { return group_ ? group_->size() : 1; }
  /// Rank 0 alone writes checkpoints, logs and progress output.
  bool writes() const { return rank() == 0; }

  /// OpenMP threads for this rank: `threads` when set (> 0), else the machine's cores shared among
  /// the ranks on it; 0 (the runtime's default) for one process.
  int threads(int threads) const;
  /// "cuda" (no index) is the GPU of this rank's index on its machine: one rank per GPU.
  Device device(const Device& configured, const std::string& text) const;

  /// Checks that every rank has the same `inputs` (config and case lists), copies rank 0's state of
  /// `modules` to every rank, and averages the gradients of their parameters (those that require
  /// grad) after each backward pass from now on, in buckets of `bucket_mb` MiB.
  void start(const std::string& inputs, const std::vector<const nn::Module*>& modules, double bucket_mb);
  /// Ends a backward pass: every trained gradient is now the mean over the ranks.
  void after_backward();
  /// Waits until every rank got here (`what` names the wait in a timeout's error). A no-op alone.
  void barrier(const std::string& what) const;
  /// The mean and the sum over the ranks of a few numbers (loss terms, counts).
  std::vector<double> mean(std::vector<double> values, const std::string& what) const;
  std::vector<double> sum(std::vector<double> values, const std::string& what) const;
  /// Replaces the modules' floating-point buffers (batch-norm running statistics) by their mean over
  /// the ranks, which saw different batches: before evaluation and checkpoints.
  void average_buffers(const std::vector<const nn::Module*>& modules) const;
  /// distributed.sync_batch_norm: from now on every nn::BatchNorm3d in `modules` (and their
  /// submodules) normalises in training by the statistics of the whole global batch
  /// (ops::sync_batch_norm, PyTorch's SyncBatchNorm). A no-op alone. Returns the layers it set.
  int synchronize_batch_norm(const std::vector<nn::Module*>& modules) const;

 private:
  dist::ProcessGroup* group_ = nullptr;
  std::unique_ptr<dist::GradientReducer> reducer_;
};

}  // namespace tlk::task
