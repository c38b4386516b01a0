#include "tlk/tensor/shape.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tlk/tensor/error.h"

namespace tlk {

Dims::Dims(std::initializer_list<std::int64_t> values) {
  for (auto v : values) push_back(v);
}

Dims::Dims(const std::vector<std::int64_t>& values) {
  for (auto v : values) push_back(v);
}

void Dims::push_back(std::int64_t v) {
  check(size_ < kMaxDims, "shape: at most {} dimensions are supported; adding extent {} to {}", kMaxDims, v, str());
  values_[static_cast<std::size_t>(size_++)] = v;
}

std::int64_t Dims::numel() const {
  std::int64_t n = 1;
  for (auto v : *this) n *= v;
  return n;
}

std::string Dims::str() const { return fmt::format("[{}]", fmt::join(begin(), end(), ", ")); }

bool operator==(const Dims& a, const Dims& b) {
  if (a.size_ != b.size_) return false;
  for (int i = 0; i < a.size_; ++i)
    if (a[i] != b[i]) return false;
  return true;
}

Dims contiguous_strides(const Shape& shape) {
  Dims strides = shape;
  std::int64_t s = 1;
  for (int i = shape.size() - 1; i >= 0; --i) {
    strides[i] = s;
    s *= std::max<std::int64_t>(shape[i], 1);
  }
  return strides;
}

Dims channels_last_strides(const Shape& shape) {
  check(shape.size() >= 3, "channels_last: needs at least 3 dimensions (N, C, spatial...), got {}", shape.str());
  Dims strides = shape;
  std::int64_t s = std::max<std::int64_t>(shape[1], 1);
  strides[1] = 1;
  for (int i = shape.size() - 1; i >= 2; --i) {
    strides[i] = s;
    s *= std::max<std::int64_t>(shape[i], 1);
  }
  strides[0] = s;
  return strides;
}

int normalize_axis(int axis, int ndim, const char* op) {
  int a = axis < 0 ? axis + ndim : axis;
  check(a >= 0 && a < ndim, "{}: axis {} is out of range for a {}-D tensor", op, axis, ndim);
  return a;
}

}  // namespace tlk
