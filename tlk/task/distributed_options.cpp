#include "tlk/task/distributed_options.h"

#include <fmt/format.h>

#include "tlk/tensor/error.h"

namespace tlk::task {

DistributedOptions DistributedOptions::from(const io::Config& c) {
  DistributedOptions o;
  o.bucket_mb = c.get_double("distributed.bucket_mb", o.bucket_mb);
  check(o.bucket_mb > 0, "{}: distributed.bucket_mb must be positive, got {}", c.source(), o.bucket_mb);
  o.timeout_seconds = c.get_double("distributed.timeout_s", o.timeout_seconds);
  check(o.timeout_seconds > 0, "{}: distributed.timeout_s must be positive, got {}", c.source(), o.timeout_seconds);
  o.sync_batch_norm = c.get_bool("distributed.sync_batch_norm", o.sync_batch_norm);
  return o;
}

std::string DistributedOptions::to_yaml() const {
  return fmt::format("distributed:\n  bucket_mb: {}\n  timeout_s: {}\n  sync_batch_norm: {}\n", bucket_mb,
                     timeout_seconds, sync_batch_norm);
}

}  // namespace tlk::task
