#pragma once
#include <cstdint>
#include <vector>

/// Statistics of one channel of an image for the intensity transforms (contrast, gamma), on the CPU
/// and, from partials made on a GPU, for data/device_augment.h.
///
/// Note [Deterministic reductions]: means, standard deviations and extrema are summed in double per
/// z-slice in parallel and the slice partials are combined in slice order, so results are
/// bit-identical for a seed whatever the thread count (and, on a GPU, whatever the run).
namespace tlk::data {

/// Per-slice partial sums and extrema of one channel.
struct SlicePartials {
  std::vector<double> sums;
  std::vector<float> mins, maxs;
};
/// Mean, extrema and (when asked for) standard deviation of one channel.
struct ChannelStats {
  double mean = 0.0;
  double stddev = 0.0;  ///< population (ddof 0), as numpy's std; 0 unless asked for
  float min = 0.0f;
  float max = 0.0f;
};
/// Mean and extrema of a channel of `voxels` voxels from its slices' partials.
ChannelStats combine_slice_partials(const SlicePartials& partials, std::int64_t voxels);
/// The standard deviation from the slices' sums of squared deviations from the mean.
double combine_slice_squares(const std::vector<double>& squares, std::int64_t voxels);
/// The statistics of one contiguous channel `x` of `slices` z-slices of `plane` voxels, with the
/// standard deviation when `with_stddev` (<= 0 threads: OpenMP's default).
/// Example: `ChannelStats st = channel_statistics(x, 128, 128 * 128, true, 2);`
ChannelStats channel_statistics(const float* x, std::int64_t slices, std::int64_t plane, bool with_stddev,
                                int num_threads = 0);

}  // namespace tlk::data
