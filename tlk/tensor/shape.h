#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace tlk {

/// A fixed-capacity list of extents or strides (TLK tensors have at most 6 dimensions: the 5 of
/// N, C, D, H, W plus one for reshapes that split a dimension).
class Dims {
 public:
  static constexpr int kMaxDims = 6;

  Dims() = default;
  Dims(std::initializer_list<std::int64_t> values);
  explicit Dims(const std::vector<std::int64_t>& values);

  int size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::int64_t operator[](int i) const { return values_[static_cast<std::size_t>(i)]; }
  std::int64_t& operator[](int i) { return values_[static_cast<std::size_t>(i)]; }
  std::int64_t back() const { return values_[static_cast<std::size_t>(size_ - 1)]; }
  const std::int64_t* begin() const { return values_.data(); }
  const std::int64_t* end() const { return values_.data() + size_; }
  void push_back(std::int64_t v);
  std::vector<std::int64_t> vec() const { return {begin(), end()}; }

  /// Product of the extents (1 for an empty list).
  std::int64_t numel() const;
  /// "[2, 3, 8, 8, 8]".
  std::string str() const;

  friend bool operator==(const Dims& a, const Dims& b);

 private:
  std::array<std::int64_t, kMaxDims> values_{};
  int size_ = 0;
};

using Shape = Dims;

/// Row-major (C-contiguous) strides of a shape.
Dims contiguous_strides(const Shape& shape);
/// Strides of a dense channels-last arrangement (NDHWC for 5-D, NHWC for 4-D, NWC for 3-D).
Dims channels_last_strides(const Shape& shape);
/// Normalises a possibly negative axis against `ndim`; throws naming `op` when it is out of range.
int normalize_axis(int axis, int ndim, const char* op);

}  // namespace tlk
