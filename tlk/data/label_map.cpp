#include "tlk/data/label_map.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <type_traits>

#include "tlk/tensor/error.h"

namespace tlk::data {

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

std::uint8_t parse_label(const std::string& item, const std::string& text) {
  check(!item.empty() && item.find_first_not_of("0123456789") == std::string::npos,
        "label map '{}': '{}' is not a label (expected a whole number 0..255)", text, item);
  check(item.size() <= 3 && std::stoi(item) <= 255, "label map '{}': label {} is outside 0..255", text, item);
  return static_cast<std::uint8_t>(std::stoi(item));
}

// Voxel values -> u8 through `table`; returns the index of the first value outside 0..255 (or not a
// whole number), or -1.
template <class T>
std::int64_t map_voxels(const T* in, std::uint8_t* out, std::int64_t n, const std::array<std::uint8_t, 256>& table) {
  std::int64_t first_bad = std::numeric_limits<std::int64_t>::max();
#pragma omp parallel for reduction(min : first_bad) if (n > 65536)
  for (std::int64_t i = 0; i < n; ++i) {
    const T v = in[i];
    bool ok = true;
    if constexpr (!std::is_same_v<T, std::uint8_t>) ok = v >= T(0) && v <= T(255);
    if constexpr (std::is_floating_point_v<T>) ok = ok && v == std::floor(v);
    if (ok) {
      out[i] = table[static_cast<std::size_t>(v)];
    } else {
      out[i] = 0;
      first_bad = std::min(first_bad, i);
    }
  }
  return first_bad == std::numeric_limits<std::int64_t>::max() ? -1 : first_bad;
}

}  // namespace

bool LabelMap::is_identity() const {
  if (others && *others != 0) return false;
  for (int v = 0; v < 256; ++v)
    if (map(static_cast<std::uint8_t>(v)) != v) return false;
  return true;
}

std::uint8_t LabelMap::map(std::uint8_t label) const {
  auto it = pairs.find(label);
  if (it != pairs.end()) return it->second;
  return others ? *others : label;
}

LabelMap parse_label_map(const std::string& text) {
  LabelMap m;
  if (trim(text).empty()) return m;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    const std::string item = trim(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    const std::size_t colon = item.find(':');
    check(colon != std::string::npos && item.find(':', colon + 1) == std::string::npos,
          "label map '{}': item '{}' is not 'from:to' (expected e.g. '2:1,3:1,*:0')", text, item);
    const std::string from = trim(item.substr(0, colon)), to = trim(item.substr(colon + 1));
    const std::uint8_t target = parse_label(to, text);
    if (from == "*") {
      check(!m.others, "label map '{}': '*' is given twice", text);
      m.others = target;
    } else {
      const std::uint8_t source = parse_label(from, text);
      check(m.pairs.count(source) == 0, "label map '{}': label {} is mapped twice", text, from);
      m.pairs[source] = target;
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return m;
}

std::string to_string(const LabelMap& m) {
  std::string out;
  for (const auto& [from, to] : m.pairs) out += fmt::format("{}{}:{}", out.empty() ? "" : ",", from, to);
  if (m.others) out += fmt::format("{}*:{}", out.empty() ? "" : ",", *m.others);
  return out;
}

Tensor apply(const LabelMap& map, const Tensor& labels_in, const std::string& what) {
  check(labels_in.defined(), "label map: {} is an undefined tensor", what);
  Tensor labels = labels_in.to(Device::cpu()).to(Layout::plain).contiguous();
  const bool identity = map.is_identity();
  if (identity && labels.dtype() == DType::u8) return labels;
  std::array<std::uint8_t, 256> table{};
  for (int v = 0; v < 256; ++v) table[static_cast<std::size_t>(v)] = map.map(static_cast<std::uint8_t>(v));
  Tensor out = Tensor::empty(labels.shape(), TensorOptions{DType::u8});
  std::uint8_t* o = out.data<std::uint8_t>();
  const std::int64_t n = labels.numel();
  std::int64_t bad = -1;
  switch (labels.dtype()) {
    case DType::u8:
      bad = map_voxels(labels.data<std::uint8_t>(), o, n, table);
      break;
    case DType::i32:
      bad = map_voxels(labels.data<std::int32_t>(), o, n, table);
      break;
    case DType::i64:
      bad = map_voxels(labels.data<std::int64_t>(), o, n, table);
      break;
    case DType::f32:
      bad = map_voxels(labels.data<float>(), o, n, table);
      break;
    case DType::f64:
      bad = map_voxels(labels.data<double>(), o, n, table);
      break;
    default:
      fail("label map: {} has dtype {}, expected integer labels (u8, i32, i64) or whole numbers in f32/f64", what,
           dtype_name(labels.dtype()));
  }
  if (bad >= 0) {
    const Tensor one = labels.reshape({n}).narrow(0, bad, 1);
    fail("label map: {} holds the value {} at voxel {} of shape {}; labels must be whole numbers 0..255", what,
         one.item(), bad, labels.shape().str());
  }
  return out;
}

}  // namespace tlk::data
