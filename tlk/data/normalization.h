#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "tlk/tensor/random.h"
#include "tlk/tensor/tensor.h"

namespace tlk::data {

/// How one image channel is normalized (nnUNet's schemes): `ct` clips to the dataset's foreground
/// 0.5/99.5 percentiles and z-scores by the foreground mean and std of the whole dataset; `zscore`
/// subtracts each image's own mean and divides by its own std; `none` leaves values as they are.
enum class NormalizationScheme { ct, zscore, none };

/// The scheme nnUNet picks from a dataset.json channel name: "CT" (any case) is `ct`, "noNorm" is
/// `none`, anything else `zscore`.
NormalizationScheme scheme_for_channel(const std::string& channel_name);
std::string to_string(NormalizationScheme scheme);
/// Parses "ct", "zscore" or "none" (the inverse of to_string).
NormalizationScheme parse_normalization_scheme(const std::string& text);

/// One channel's normalization and, for `ct`, the dataset statistics it uses.
struct ChannelNormalization {
  NormalizationScheme scheme = NormalizationScheme::zscore;
  double lower = 0.0, upper = 0.0;  ///< clip range (ct): foreground 0.5 and 99.5 percentiles
  double mean = 0.0, std = 1.0;     ///< foreground mean and std after clipping (ct)
};

/// Collects foreground intensities of one channel over a dataset to compute `ct` statistics. As
/// nnUNet, it keeps every `stride`-th foreground voxel (labels > 0) of each case, so a large dataset
/// costs little memory. Thread-safe: cases may be added from several threads.
///
/// Example:
/// ```
/// data::ForegroundIntensities fg;
/// for (auto& c : cases) fg.add(c.image, 0, c.labels);
/// data::ChannelNormalization n = fg.ct_statistics();
/// ```
class ForegroundIntensities {
 public:
  explicit ForegroundIntensities(std::int64_t stride = 10) : stride_(stride) {}
  ForegroundIntensities(const ForegroundIntensities&) = delete;
  /// Adds the voxels of channel `channel` of `image` (f32 [C, D, H, W]) where `labels` (u8 [D, H, W])
  /// is not 0.
  void add(const Tensor& image, std::int64_t channel, const Tensor& labels);
  std::int64_t count() const { return static_cast<std::int64_t>(samples_.size()); }
  /// Percentiles, then mean and std of the samples clipped to them. A dataset without any
  /// foreground voxel is a tlk::Error (CT normalization needs labels).
  ChannelNormalization ct_statistics() const;

 private:
  std::int64_t stride_;
  std::vector<float> samples_;
  mutable std::mutex mutex_;
};

/// Normalizes channel `channel` of `image` (f32 [C, D, H, W], contiguous) in place with `norm`.
/// Note [Normalization before resampling]: as nnUNet, TLK normalizes the cropped image at its own
/// spacing and resamples afterwards, so interpolation works on values of order 1.
void normalize_channel_(Tensor& image, std::int64_t channel, const ChannelNormalization& norm);

}  // namespace tlk::data
