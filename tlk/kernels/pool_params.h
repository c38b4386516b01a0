#pragma once
#include <optional>
#include <string>

#include "tlk/kernels/conv_params.h"
#include "tlk/tensor/tensor.h"

namespace tlk {

/// Window geometry of a 3D max or average pooling; per axis in D, H, W order. `stride` defaults to
/// the kernel (non-overlapping windows) and padding may be at most half the kernel, as in PyTorch.
/// Example: `Pool3dOptions{{1, 2, 2}}` halves H and W; overlapping windows:
/// `Pool3dOptions{{3, 3, 3}, {2, 2, 2}, {1, 1, 1}}` or
/// `Pool3dOptions{}.with_kernel({3, 3, 3}).with_stride({2, 2, 2}).with_padding({1, 1, 1})`.
struct Pool3dOptions {
  /// A 2x2x2 kernel with stride 2.
  Pool3dOptions() = default;
  /// `kernel` with stride = kernel and no padding.
  Pool3dOptions(Int3 kernel) : kernel(kernel) {}
  Pool3dOptions(Int3 kernel, Int3 stride, Int3 padding = {0, 0, 0})
      : kernel(kernel), stride(stride), padding(padding) {}

  Int3 kernel{2, 2, 2};
  /// Unset means equal to `kernel`.
  std::optional<Int3> stride;
  Int3 padding{0, 0, 0};
  /// Average pooling only: whether padded positions count in the divisor (PyTorch's default true).
  bool count_include_pad = true;

  Pool3dOptions with_kernel(Int3 k) const {
    auto o = *this;
    o.kernel = k;
    return o;
  }
  Pool3dOptions with_stride(Int3 s) const {
    auto o = *this;
    o.stride = s;
    return o;
  }
  Pool3dOptions with_padding(Int3 p) const {
    auto o = *this;
    o.padding = p;
    return o;
  }
  Pool3dOptions with_count_include_pad(bool c) const {
    auto o = *this;
    o.count_include_pad = c;
    return o;
  }
  /// The stride in use: `stride` when set, else `kernel`.
  Int3 effective_stride() const { return stride.value_or(kernel); }
  std::string str() const;
};

/// Checks a pooling's arguments (input [N, C, D, H, W] of shape `input`) and returns the output
/// shape [N, C, (D + 2p - k) / s + 1, ...] (floor, as PyTorch's ceil_mode=False); every problem is a
/// tlk::Error naming `op`.
Shape pool3d_output_shape(const Shape& input, const Pool3dOptions& opt, const char* op);

/// Checks an adaptive pooling's arguments and returns [N, C, output_size...].
Shape adaptive_pool3d_output_shape(const Shape& input, const Int3& output_size, const char* op);

/// Checks that `shape` is a 5-D [N, C, D, H, W] shape with non-empty C, D, H, W (N may be 0).
void check_volume_shape(const Shape& shape, const char* op, const char* what = "input");

}  // namespace tlk
