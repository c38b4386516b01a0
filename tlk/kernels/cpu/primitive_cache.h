#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace tlk::kernels::cpu {

/// How often the cache built a primitive set and how often it found one.
struct PrimitiveCacheStats {
  std::uint64_t builds = 0;
  std::uint64_t hits = 0;
};

/// TLK's own cache of oneDNN primitive sets, keyed by everything that defines them.
///
/// Note [Primitive cache]: building a oneDNN primitive (JIT code generation) costs far more than
/// running a small one, so each op builds its forward and backward primitives once per key (shapes,
/// strides, padding, dilation, formats, attributes) and keeps them, with the forward primitive
/// descriptor that backward primitives need as a hint. In a training loop's steady state every
/// lookup is a hit (a test checks the build counter stays flat).
///
/// Example: `auto p = PrimitiveCache::instance().get<ConvPrimitives>(key, [&] { return build(...); });`
class PrimitiveCache {
 public:
  static PrimitiveCache& instance();

  /// The entry for `key`, built by `build` on the first request.
  template <class Entry>
  std::shared_ptr<Entry> get(const std::string& key, const std::function<std::shared_ptr<Entry>()>& build) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      ++stats_.hits;
      return std::static_pointer_cast<Entry>(it->second);
    }
    std::shared_ptr<Entry> entry = build();
    ++stats_.builds;
    entries_.emplace(key, entry);
    return entry;
  }

  PrimitiveCacheStats stats() const;
  /// Drops every entry (their memory returns); counters keep running.
  void clear();

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<void>> entries_;
  PrimitiveCacheStats stats_;
};

}  // namespace tlk::kernels::cpu
