#include "tlk/data/patch_sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tlk/tensor/error.h"

namespace tlk::data {

std::map<int, Tensor> sample_class_locations(const Tensor& labels, Generator& gen, std::int64_t min_per_label,
                                             double fraction) {
  check(labels.dtype() == DType::u8 && labels.dim() == 3, "sample_class_locations: expected u8 [D, H, W] labels, got "
        "{} {}", dtype_name(labels.dtype()), labels.shape().str());
  const Tensor l = labels.contiguous();
  const std::uint8_t* y = l.data<std::uint8_t>();
  std::array<std::int64_t, 256> counts{};
  for (std::int64_t i = 0; i < l.numel(); ++i) ++counts[y[i]];
  const std::int64_t H = l.size(1), W = l.size(2);
  std::map<int, Tensor> out;
  for (int label = 1; label < 256; ++label) {
    if (counts[label] == 0) continue;
    const std::int64_t keep = std::min<std::int64_t>(
        counts[label], std::max<std::int64_t>(min_per_label, static_cast<std::int64_t>(fraction * counts[label])));
    // Selection sampling (Knuth's algorithm S): each voxel of the label is kept with the
    // probability that leaves exactly `keep` of them, in one pass, in voxel order.
    std::vector<std::int32_t> coords;
    coords.reserve(static_cast<std::size_t>(keep) * 3);
    std::int64_t remaining = counts[label], needed = keep;
    for (std::int64_t i = 0; i < l.numel() && needed > 0; ++i) {
      if (y[i] != label) continue;
      if (static_cast<std::int64_t>(gen.below(static_cast<std::uint64_t>(remaining))) < needed) {
        coords.push_back(static_cast<std::int32_t>(i / (H * W)));
        coords.push_back(static_cast<std::int32_t>((i / W) % H));
        coords.push_back(static_cast<std::int32_t>(i % W));
        --needed;
      }
      --remaining;
    }
    out[label] = Tensor::from_vector(coords, {keep, 3});
  }
  return out;
}

bool slot_forces_foreground(std::int64_t slot, std::int64_t batch, double oversample_foreground, Generator& gen) {
  if (oversample_foreground <= 0.0) return false;
  if (batch == 1) return gen.uniform() < oversample_foreground;
  return slot >= std::llround(static_cast<double>(batch) * (1.0 - oversample_foreground));
}

PatchChoice choose_patch(const SampleSource& source, const std::array<std::int64_t, 3>& patch, bool force_foreground,
                         Generator& gen) {
  const auto& shape = source.image.shape();
  check(shape.size() == 4, "choose_patch: expected an image [C, D, H, W], got {}", shape.str());
  PatchChoice choice;
  std::array<std::int64_t, 3> lowest{}, highest{};
  for (int a = 0; a < 3; ++a) {
    // Note [Patch bounds]: as nnUNet, a volume smaller than the patch is centred with padding on
    // both sides; a larger one allows every position that keeps the patch inside.
    const std::int64_t extent = shape[a + 1];
    const std::int64_t pad = std::max<std::int64_t>(patch[a] - extent, 0);
    lowest[a] = -pad / 2;
    highest[a] = extent + (pad - pad / 2) - patch[a];
  }
  std::vector<int> present;
  for (const auto& [label, coords] : source.class_locations)
    if (coords.size(0) > 0) present.push_back(label);
  if (force_foreground && !present.empty()) {
    const int label = present[gen.below(present.size())];
    const Tensor& coords = source.class_locations.at(label);
    const std::int32_t* c = coords.data<std::int32_t>() + 3 * gen.below(static_cast<std::uint64_t>(coords.size(0)));
    for (int a = 0; a < 3; ++a) {
      // Centre the patch on the voxel, clamped so that the patch stays within the allowed range.
      choice.begin[a] = std::clamp<std::int64_t>(c[a] - patch[a] / 2, lowest[a], highest[a]);
    }
    choice.forced_foreground = true;
    return choice;
  }
  for (int a = 0; a < 3; ++a)
    choice.begin[a] = lowest[a] + static_cast<std::int64_t>(gen.below(static_cast<std::uint64_t>(highest[a] - lowest[a] + 1)));
  return choice;
}

void extract_patch(const SampleSource& source, const PatchChoice& choice, const std::array<std::int64_t, 3>& patch,
                   Tensor& image_patch, Tensor& label_patch) {
  const Tensor image = source.image.contiguous();
  const std::int64_t C = image.size(0), D = image.size(1), H = image.size(2), W = image.size(3);
  image_patch = Tensor::zeros({C, patch[0], patch[1], patch[2]});
  label_patch = Tensor::zeros({patch[0], patch[1], patch[2]}, TensorOptions{}.with(DType::u8));
  const float* x = image.data<float>();
  float* xp = image_patch.data<float>();
  const bool has_labels = source.labels.defined();
  const Tensor labels = has_labels ? source.labels.contiguous() : Tensor();
  const std::uint8_t* y = has_labels ? labels.data<std::uint8_t>() : nullptr;
  std::uint8_t* yp = label_patch.data<std::uint8_t>();
  // The overlap of the patch with the volume along x, copied row by row.
  const std::int64_t x0 = std::max<std::int64_t>(choice.begin[2], 0);
  const std::int64_t x1 = std::min<std::int64_t>(choice.begin[2] + patch[2], W);
  if (x1 <= x0) return;
  for (std::int64_t pz = 0; pz < patch[0]; ++pz) {
    const std::int64_t z = choice.begin[0] + pz;
    if (z < 0 || z >= D) continue;
    for (std::int64_t py = 0; py < patch[1]; ++py) {
      const std::int64_t yy = choice.begin[1] + py;
      if (yy < 0 || yy >= H) continue;
      const std::int64_t px = x0 - choice.begin[2];
      for (std::int64_t c = 0; c < C; ++c)
        std::memcpy(xp + ((c * patch[0] + pz) * patch[1] + py) * patch[2] + px, x + ((c * D + z) * H + yy) * W + x0,
                    sizeof(float) * (x1 - x0));
      if (y) std::memcpy(yp + (pz * patch[1] + py) * patch[2] + px, y + (z * H + yy) * W + x0, x1 - x0);
    }
  }
}

}  // namespace tlk::data
