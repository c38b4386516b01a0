#pragma once
#include <array>
#include <optional>
#include <string>

#include "tlk/kernels/conv_params.h"
#include "tlk/tensor/tensor.h"

namespace tlk {

/// How upsample3d reads the input: PyTorch's `nearest` (not `nearest-exact`) or `trilinear`.
enum class UpsampleMode { nearest, trilinear };

/// Resizing of [N, C, D, H, W] volumes, as torch.nn.functional.interpolate: give exactly one of an
/// output `size` or per-axis `scale_factor` (output extent floor(in * scale), and the index math
/// then uses 1 / scale as PyTorch does when recompute_scale_factor is off).
/// Example: `Upsample3dOptions{}.with_mode(UpsampleMode::trilinear).with_scale_factor({1, 2, 2})`.
struct Upsample3dOptions {
  UpsampleMode mode = UpsampleMode::nearest;
  std::optional<Int3> size;
  std::optional<std::array<double, 3>> scale_factor;
  /// Trilinear only: map the corner voxel centres onto each other (src = dst * (in - 1) / (out - 1)).
  bool align_corners = false;

  Upsample3dOptions with_mode(UpsampleMode m) const {
    auto o = *this;
    o.mode = m;
    return o;
  }
  Upsample3dOptions with_size(Int3 s) const {
    auto o = *this;
    o.size = s;
    return o;
  }
  Upsample3dOptions with_scale_factor(std::array<double, 3> s) const {
    auto o = *this;
    o.scale_factor = s;
    return o;
  }
  Upsample3dOptions with_align_corners(bool a) const {
    auto o = *this;
    o.align_corners = a;
    return o;
  }
  std::string str() const;
};

/// Short name of a mode as printed in messages: "nearest", "trilinear".
const char* upsample_mode_name(UpsampleMode mode);

/// Checks an upsampling's arguments (input of shape `input`) and returns the output shape; every
/// problem is a tlk::Error naming `op`.
Shape upsample3d_output_shape(const Shape& input, const Upsample3dOptions& opt, const char* op);

}  // namespace tlk
