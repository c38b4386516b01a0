#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "tlk/tensor/tensor.h"

namespace tlk {

using Int3 = std::array<std::int64_t, 3>;

/// Geometry of a 3D convolution (or transposed convolution); per axis in D, H, W order.
/// Example: `Conv3dOptions{}.with_stride({1, 2, 2}).with_padding({0, 1, 1})` for a 1x3x3 kernel.
struct Conv3dOptions {
  Int3 stride{1, 1, 1};
  Int3 padding{0, 0, 0};
  Int3 dilation{1, 1, 1};
  /// Transposed convolution only: extra size added to one side of the output.
  Int3 output_padding{0, 0, 0};

  Conv3dOptions with_stride(Int3 s) const {
    auto o = *this;
    o.stride = s;
    return o;
  }
  Conv3dOptions with_padding(Int3 p) const {
    auto o = *this;
    o.padding = p;
    return o;
  }
  Conv3dOptions with_dilation(Int3 d) const {
    auto o = *this;
    o.dilation = d;
    return o;
  }
  Conv3dOptions with_output_padding(Int3 p) const {
    auto o = *this;
    o.output_padding = p;
    return o;
  }
  std::string str() const;
};

/// Checks a conv3d's arguments (input [N, Ci, D, H, W], weight [Co, Ci, kD, kH, kW], optional bias
/// [Co]) and returns the output shape; every mismatch is a tlk::Error naming `op`.
Shape conv3d_output_shape(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv3dOptions& opt,
                          const char* op = "conv3d");
/// The same for a transposed convolution (weight [Ci, Co, kD, kH, kW], bias [Co]).
Shape conv_transpose3d_output_shape(const Tensor& input, const Tensor& weight, const Tensor& bias,
                                    const Conv3dOptions& opt, const char* op = "conv_transpose3d");

}  // namespace tlk
