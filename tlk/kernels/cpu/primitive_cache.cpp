#include "tlk/kernels/cpu/primitive_cache.h"

namespace tlk::kernels::cpu {

PrimitiveCache& PrimitiveCache::instance() {
  static PrimitiveCache* cache = new PrimitiveCache();  // leaked: primitives may outlive static destruction
  return *cache;
}

PrimitiveCacheStats PrimitiveCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void PrimitiveCache::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.clear();
}

}  // namespace tlk::kernels::cpu
