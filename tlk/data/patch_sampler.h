#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <vector>

#include "tlk/tensor/random.h"
#include "tlk/tensor/tensor.h"

namespace tlk::data {

/// One training case in memory, as the patch sampler needs it.
struct SampleSource {
  Tensor image;   ///< f32 [C, D, H, W]
  Tensor labels;  ///< u8 [D, H, W]
  /// For each foreground label, voxel coordinates (i32 [n, 3], z y x) to centre foreground patches
  /// on (a sample of the label's voxels, as nnUNet's class_locations).
  std::map<int, Tensor> class_locations;
};

/// Foreground voxel coordinates per label, for SampleSource::class_locations: at most
/// max(min_per_label, fraction · voxels of that label) voxels per label, drawn without bias (nnUNet
/// keeps 10000 or 1%, whichever is larger... capped by the label's own count).
std::map<int, Tensor> sample_class_locations(const Tensor& labels, Generator& gen, std::int64_t min_per_label = 10000,
                                             double fraction = 0.01);

/// Where a patch is taken from and whether it had to contain foreground.
struct PatchChoice {
  std::array<std::int64_t, 3> begin{};  ///< may be negative or run past the volume (padded)
  bool forced_foreground = false;
};

/// nnUNet's patch placement: a random patch anywhere the volume allows (padding it when it is
/// smaller than the patch), or, when `force_foreground`, one centred (with a random offset that keeps
/// the voxel inside) on a random voxel of a random foreground label present in the case. A case with
/// no foreground falls back to a random patch.
PatchChoice choose_patch(const SampleSource& source, const std::array<std::int64_t, 3>& patch, bool force_foreground,
                         Generator& gen);

/// Copies the patch at `choice` out of `source`: image [C, pd, ph, pw] (zero outside the volume)
/// and labels [pd, ph, pw] (0 outside).
void extract_patch(const SampleSource& source, const PatchChoice& choice, const std::array<std::int64_t, 3>& patch,
                   Tensor& image_patch, Tensor& label_patch);

/// nnUNet's rule for which batch slots must contain foreground: slot i is forced when
/// i >= round(batch · (1 − oversample)) (batch 2 at 0.33: the second slot). A batch of one would
/// never be forced by that rule, so there the slot is forced with probability `oversample` instead
/// (nnUNet v2's probabilistic oversampling).
bool slot_forces_foreground(std::int64_t slot, std::int64_t batch, double oversample_foreground, Generator& gen);

}  // namespace tlk::data
