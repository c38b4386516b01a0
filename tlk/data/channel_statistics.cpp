#include "tlk/data/channel_statistics.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "tlk/tensor/error.h"

namespace tlk::data {

ChannelStats channel_statistics(const float* x, std::int64_t slices, std::int64_t plane, bool with_stddev,
                                int num_threads) {
  const int nt = num_threads > 0 ? num_threads : omp_get_max_threads();
  SlicePartials p;
  p.sums.resize(static_cast<std::size_t>(slices));
  p.mins.resize(static_cast<std::size_t>(slices));
  p.maxs.resize(static_cast<std::size_t>(slices));
#pragma omp parallel for schedule(static) num_threads(nt)
  for (std::int64_t z = 0; z < slices; ++z) {
    const float* s = x + z * plane;
    double sum = 0.0;
    float lo = s[0], hi = s[0];
    for (std::int64_t i = 0; i < plane; ++i) {
      sum += s[i];
      lo = std::min(lo, s[i]);
      hi = std::max(hi, s[i]);
    }
    p.sums[static_cast<std::size_t>(z)] = sum;
    p.mins[static_cast<std::size_t>(z)] = lo;
    p.maxs[static_cast<std::size_t>(z)] = hi;
  }
  ChannelStats st = combine_slice_partials(p, slices * plane);
  if (with_stddev) {
    const double mean = st.mean;
    std::vector<double>& squares = p.sums;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (std::int64_t z = 0; z < slices; ++z) {
      const float* s = x + z * plane;
      double ss = 0.0;
      for (std::int64_t i = 0; i < plane; ++i) {
        const double dlt = static_cast<double>(s[i]) - mean;
        ss += dlt * dlt;
      }
      squares[static_cast<std::size_t>(z)] = ss;
    }
    st.stddev = combine_slice_squares(squares, slices * plane);
  }
  return st;
}

ChannelStats combine_slice_partials(const SlicePartials& p, std::int64_t voxels) {
  check(!p.sums.empty() && p.mins.size() == p.sums.size() && p.maxs.size() == p.sums.size(),
        "data::combine_slice_partials: expected one sum, minimum and maximum per slice, got {}, {} and {}",
        p.sums.size(), p.mins.size(), p.maxs.size());
  ChannelStats st;
  double total = 0.0;
  st.min = p.mins[0];
  st.max = p.maxs[0];
  for (std::size_t z = 0; z < p.sums.size(); ++z) {
    total += p.sums[z];
    st.min = std::min(st.min, p.mins[z]);
    st.max = std::max(st.max, p.maxs[z]);
  }
  st.mean = total / static_cast<double>(voxels);
  return st;
}

double combine_slice_squares(const std::vector<double>& squares, std::int64_t voxels) {
  double ss = 0.0;
  for (double s : squares) ss += s;
  return std::sqrt(ss / static_cast<double>(voxels));
}

}  // namespace tlk::data
