#pragma once
#include <string>
#include <vector>

#include "tlk/io/config.h"

namespace tlk::task {

/// The `distributed.*` config keys, read by both trainers and used by `tlk train --distributed`
/// (docs/config.md, docs/distributed.md).
struct DistributedOptions {
  double bucket_mb = 25.0;         ///< distributed.bucket_mb: gradient all-reduce bucket size
  double timeout_seconds = 600.0;  ///< distributed.timeout_s: a collective waiting longer fails the job
  bool sync_batch_norm = false;    ///< distributed.sync_batch_norm: batch norm over the global batch

  /// Reads the keys (checked: both positive).
  static DistributedOptions from(const io::Config& config);
  /// The `distributed:` section of a --print-config YAML.
  std::string to_yaml() const;
  static std::vector<std::string> keys() { return {"distributed.bucket_mb", "distributed.timeout_s", "distributed.sync_batch_norm"}; }
};

}  // namespace tlk::task
