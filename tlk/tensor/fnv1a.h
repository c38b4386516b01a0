#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace tlk {

/// FNV-1a over bytes, chained from `h`: a fingerprint (of a file, a config), not a secure hash.
inline std::uint64_t fnv1a(const void* data, std::size_t n, std::uint64_t h = 0xcbf29ce484222325ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}
inline std::uint64_t fnv1a(const std::string& s, std::uint64_t h = 0xcbf29ce484222325ull) {
  return fnv1a(s.data(), s.size(), h);
}

}  // namespace tlk
