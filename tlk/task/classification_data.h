#pragma once
// The data side of classification training: images from HDF5 files, batches of indices that
// reshuffle every pass, rows gathered into batches, and accuracy.
#include <cstdint>
#include <string>
#include <vector>

#include "tlk/data/classification_dataset.h"
#include "tlk/nn/module.h"
#include "tlk/tensor/tensor.h"

namespace tlk::task {

/// The images of `path` (file.h5 or file.h5:split, layouts as data::load_classification_dataset)
/// prepared as `options` say, f32 [N, C, H, W] or [N, C, D, H, W]. Labels are neither read nor kept:
/// the file may have none (an unlabelled domain-adaptation target).
/// Example: `Tensor t = task::load_unlabelled_images("usps.h5:train", {.spatial_size = {28, 28}});`
Tensor load_unlabelled_images(const std::string& path, const data::ClassificationLoadOptions& options);

/// Images [N, C, H, W] as the one-slice volumes [N, C, 1, H, W] that TLK's networks take; 5-D
/// input is returned as is.
/// Example: `Tensor logits = net.forward(task::as_volumes(batch.images));`
Tensor as_volumes(const Tensor& images);

/// Top-1 accuracy of `net` (its logits [N, K]) on labelled images, in batches of `batch`, without
/// a graph and in evaluation mode (the module's training mode is restored afterwards).
/// Example: `double acc = task::classification_accuracy(*net, test.images, test.labels);`
double classification_accuracy(nn::Module& net, const Tensor& images, const Tensor& labels, std::int64_t batch = 500);

/// The rows `indices` of t ([N, ...], any dtype), copied into a new contiguous tensor.
Tensor gather_rows(const Tensor& t, const std::vector<std::int64_t>& indices);

/// The fraction of rows whose argmax over `logits` [N, K] equals `labels` [N] (NaN for no rows).
double fraction_correct(const Tensor& logits, const Tensor& labels);

/// Batches of indices into n items, reshuffled on every pass over them: batch i of a run is batch
/// i % P of pass i / P (P batches per pass, the last partial batch dropped), the pass shuffled by a
/// generator seeded from (seed, stream, pass). Batch i depends only on the seed and i, so a resumed
/// run draws what an uninterrupted one would.
class BatchCycle {
 public:
  BatchCycle(std::int64_t n, std::int64_t batch, std::uint64_t seed, std::uint64_t stream);
  std::int64_t batches_per_pass() const { return n_ / batch_; }
  /// The indices of batch i.
  const std::vector<std::int64_t>& indices(std::int64_t i);

 private:
  std::int64_t n_, batch_;
  std::uint64_t seed_;
  std::int64_t pass_ = -1;
  std::vector<std::vector<std::int64_t>> batches_;
};

}  // namespace tlk::task
