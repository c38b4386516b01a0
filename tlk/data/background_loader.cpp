#include "tlk/data/background_loader.h"

#include <omp.h>

#include <chrono>

namespace tlk::data {

BackgroundLoader::BackgroundLoader(Producer producer, Options options)
    : producer_(std::move(producer)),
      options_(options),
      next_to_make_(options.first_index),
      next_to_deliver_(options.first_index) {
  if (options_.prefetch < 1) options_.prefetch = 1;
  for (int t = 0; t < options_.threads; ++t) workers_.emplace_back([this] { work(); });
}

BackgroundLoader::~BackgroundLoader() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  space_.notify_all();
  ready_.notify_all();
  for (auto& w : workers_) w.join();
}

void BackgroundLoader::work() {
  omp_set_num_threads(1);  // Note [Loader threads and OpenMP]
  for (;;) {
    std::int64_t index;
    {
      std::unique_lock lock(mutex_);
      space_.wait(lock, [&] {
        return stopping_ || error_ || next_to_make_ < next_to_deliver_ + options_.prefetch;
      });
      if (stopping_ || error_) return;
      index = next_to_make_++;
    }
    try {
      Batch batch = producer_(index);
      batch.index = index;
      std::lock_guard lock(mutex_);
      done_.emplace(index, std::move(batch));
    } catch (...) {
      std::lock_guard lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    ready_.notify_all();
  }
}

Batch BackgroundLoader::next() {
  const auto start = std::chrono::steady_clock::now();
  Batch batch;
  if (workers_.empty()) {
    batch = producer_(next_to_deliver_);
    batch.index = next_to_deliver_++;
  } else {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return error_ || done_.count(next_to_deliver_) > 0; });
    if (error_ && done_.count(next_to_deliver_) == 0) std::rethrow_exception(error_);
    auto it = done_.find(next_to_deliver_);
    batch = std::move(it->second);
    done_.erase(it);
    ++next_to_deliver_;
  }
  space_.notify_all();
  // Without workers the whole production counts as waiting: the step could not run meanwhile.
  last_wait_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  total_wait_ += last_wait_;
  return batch;
}

}  // namespace tlk::data
