#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "tlk/tensor/tensor.h"

namespace tlk::task {

/// One panel of a slice figure: a CT slice alone, or with a label map drawn over it.
struct SlicePanel {
  std::string title;  ///< for the caller's legend (the PNG itself carries no text)
  Tensor labels;      ///< u8 [H, W] (undefined: the image alone)
};

/// Renders an axial CT slice (f32 [H, W] in HU, shown with a soft-tissue window of [−160, 240] HU)
/// once per panel, side by side, each panel's labels blended over it in fixed colours (1 red,
/// 2 green, 3 blue, then more), as an RGB u8 image [H·zoom, W·panels·zoom, 3] with the anterior side
/// up; `zoom` repeats every pixel (small phantoms stay legible).
/// Example: `io::write_png("case.png", task::render_slices(ct_slice, {{"truth", truth}, {"pred", pred}}));`
Tensor render_slices(const Tensor& ct_slice, const std::vector<SlicePanel>& panels, int zoom = 1);

/// The axial slice (index along z of a canonical [D, H, W] volume) with the most voxels of labels > 0
/// in `labels`; the middle slice when there are none.
std::int64_t busiest_slice(const Tensor& labels);

/// Slice `z` of a canonical volume [D, H, W] as a contiguous [H, W] copy (any dtype).
Tensor axial_slice(const Tensor& volume, std::int64_t z);

}  // namespace tlk::task
