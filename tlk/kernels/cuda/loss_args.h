#pragma once
// Host-side helpers shared by the CUDA loss kernels (losses.cpp, soft_dice.cpp); not public API.
#include <cstdint>

#include "tlk/kernels/cuda/losses_launch.h"
#include "tlk/tensor/error.h"
#include "tlk/tensor/tensor.h"

namespace tlk::kernels::cuda::loss_detail {

/// `shape` [N, C, ...spatial] as the kernels' [outer, channels, inner].
launch::LossLayout layout_of(const Shape& shape);
/// An uninitialised f64 scratch vector of `n` (at least 1) elements on `like`'s device.
Tensor scratch(const Tensor& like, std::int64_t n);
/// The typed device pointer of `t`, or null when `t` is undefined.
template <class T>
T* ptr(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr;
}

/// Checks that the gradient of a scalar loss has one element and `like`'s dtype and device (as the
/// reference's grad_scalar and check_same_dtype); returns it contiguous. The kernels read its value
/// on the device, so a backward never waits for the GPU for it.
Tensor grad_scalar(const Tensor& grad_output, const Tensor& like, const char* op);
/// Checks that `target` holds integer class indices (i64, i32 or u8) on `like`'s device; returns it
/// contiguous (its dtype kept: the kernels read every label type).
Tensor labels(const Tensor& target, const Tensor& like, const char* op, const char* what);

/// Calls fn(TypeTag<L>{}) with L the C++ type of the label dtype `t` (i64, i32 or u8).
template <class Fn>
decltype(auto) visit_labels(DType t, const char* op, Fn&& fn) {
  switch (t) {
    case DType::i64:
      return fn(TypeTag<std::int64_t>{});
    case DType::i32:
      return fn(TypeTag<std::int32_t>{});
    case DType::u8:
      return fn(TypeTag<std::uint8_t>{});
    default:
      fail("{}: labels of dtype {} are not supported (expected i64, i32 or u8)", op, dtype_name(t));
  }
}

/// Note [Label checks on the GPU]: the reference rejects a label outside [0, C) (that is not the
/// ignore index) with a message naming it. The kernels record the smallest such position in this
/// device flag instead of reading out of bounds; check() then copies the flag to the host (one
/// 8-byte copy, which waits for the queued work) and throws the reference's message.
class BadLabelFlag {
 public:
  /// A flag on `like`'s device, set to "none" on the stream.
  explicit BadLabelFlag(const Tensor& like);
  unsigned long long* get() const;
  /// Throws naming `op` when a kernel recorded a bad label in `labels` (`classes` classes; the ignore
  /// index is mentioned when `has_ignore`).
  void check(const Tensor& labels, std::int64_t classes, const char* op, bool has_ignore, std::int64_t ignore) const;

 private:
  Tensor flag_;
};

}  // namespace tlk::kernels::cuda::loss_detail
