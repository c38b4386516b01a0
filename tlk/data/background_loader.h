#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "tlk/data/augment.h"
#include "tlk/tensor/tensor.h"

namespace tlk::data {

/// One training batch.
struct Batch {
  Tensor image;   ///< f32 [B, C, D, H, W]
  Tensor labels;  ///< u8 [B, D, H, W] (undefined for unlabelled data)
  std::int64_t index = 0;
  /// One per sample when its augmentation is still to be applied: image and labels then hold the
  /// enlarged regions (Note [Augmentation on the GPU]); empty for a finished batch.
  std::vector<AugmentDraws> pending_augmentation;
};

/// Produces batches on background threads so that a training step rarely waits for data.
///
/// Batch i is made by `producer(i)`; the loader delivers batches strictly in order 0, 1, 2, ...
/// whichever thread made them, so a producer that seeds its random draws from i makes the whole
/// stream reproducible regardless of thread timing. At most `prefetch` batches are made ahead.
/// An exception thrown by the producer is rethrown by next().
///
/// Note [Loader threads and OpenMP]: each worker runs its OpenMP regions with one thread, so the
/// workers never compete with the training step's OpenMP team for more than their own core time.
///
/// Example:
/// ```
/// data::BackgroundLoader loader([&](std::int64_t i) { return make_batch(i); }, {.threads = 2});
/// for (int step = 0; step < 250; ++step) { data::Batch b = loader.next(); train(b); }
/// fmt::print("waited {:.2f} s for data\n", loader.total_wait_seconds());
/// ```
class BackgroundLoader {
 public:
  struct Options {
    int threads = 2;            ///< worker threads (0: make batches on the caller's thread)
    int prefetch = 4;           ///< batches made ahead of the consumer
    std::int64_t first_index = 0;  ///< index of the first batch (a resumed run continues the stream)
  };
  using Producer = std::function<Batch(std::int64_t index)>;

  BackgroundLoader(Producer producer, Options options);
  ~BackgroundLoader();
  BackgroundLoader(const BackgroundLoader&) = delete;
  BackgroundLoader& operator=(const BackgroundLoader&) = delete;

  /// The next batch in order; blocks until it is ready.
  Batch next();
  /// Seconds the consumer spent blocked in next(), in total and for the last call.
  double total_wait_seconds() const { return total_wait_; }
  double last_wait_seconds() const { return last_wait_; }

 private:
  void work();

  Producer producer_;
  Options options_;
  std::mutex mutex_;
  std::condition_variable ready_, space_;
  std::map<std::int64_t, Batch> done_;
  std::int64_t next_to_make_, next_to_deliver_;
  bool stopping_ = false;
  std::exception_ptr error_;
  std::vector<std::thread> workers_;
  double total_wait_ = 0.0, last_wait_ = 0.0;
};

}  // namespace tlk::data
