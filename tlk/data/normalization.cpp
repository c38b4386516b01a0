#include "tlk/data/normalization.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "tlk/tensor/error.h"

namespace tlk::data {

namespace {

std::string lower_case(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// Linear-interpolated percentile of sorted values (numpy's default "linear" method).
double percentile_of_sorted(const std::vector<float>& sorted, double q) {
  const double pos = q / 100.0 * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double t = pos - static_cast<double>(lo);
  return sorted[lo] * (1.0 - t) + sorted[hi] * t;
}

}  // namespace

NormalizationScheme scheme_for_channel(const std::string& channel_name) {
  const std::string n = lower_case(channel_name);
  if (n == "ct") return NormalizationScheme::ct;
  if (n == "nonorm") return NormalizationScheme::none;
  return NormalizationScheme::zscore;
}

std::string to_string(NormalizationScheme scheme) {
  switch (scheme) {
    case NormalizationScheme::ct: return "ct";
    case NormalizationScheme::zscore: return "zscore";
    case NormalizationScheme::none: return "none";
  }
  return "?";
}

NormalizationScheme parse_normalization_scheme(const std::string& text) {
  const std::string n = lower_case(text);
  if (n == "ct") return NormalizationScheme::ct;
  if (n == "zscore") return NormalizationScheme::zscore;
  if (n == "none") return NormalizationScheme::none;
  fail("normalization: unknown scheme '{}' (expected ct, zscore or none)", text);
}

void ForegroundIntensities::add(const Tensor& image, std::int64_t channel, const Tensor& labels) {
  check(image.dtype() == DType::f32 && labels.dtype() == DType::u8, "ForegroundIntensities: expected an f32 image "
        "and u8 labels, got {} and {}", dtype_name(image.dtype()), dtype_name(labels.dtype()));
  check(image.dim() == 4 && labels.dim() == 3 && image.size(1) == labels.size(0) && image.size(2) == labels.size(1) &&
            image.size(3) == labels.size(2) && channel >= 0 && channel < image.size(0),
        "ForegroundIntensities: image {} (channel {}) and labels {} do not fit together", image.shape().str(),
        channel, labels.shape().str());
  const Tensor c = image.contiguous(), l = labels.contiguous();
  const std::int64_t voxels = l.numel();
  const float* x = c.data<float>() + channel * voxels;
  const std::uint8_t* y = l.data<std::uint8_t>();
  std::vector<float> picked;
  std::int64_t seen = 0;
  for (std::int64_t i = 0; i < voxels; ++i) {
    if (y[i] == 0) continue;
    if (seen++ % stride_ == 0) picked.push_back(x[i]);
  }
  std::lock_guard lock(mutex_);
  samples_.insert(samples_.end(), picked.begin(), picked.end());
}

ChannelNormalization ForegroundIntensities::ct_statistics() const {
  std::lock_guard lock(mutex_);
  check(!samples_.empty(), "CT normalization: no foreground voxel (label > 0) in the dataset; CT statistics are "
        "computed on the labelled foreground (use --norm-stats-from or a zscore channel)");
  std::vector<float> sorted = samples_;
  std::sort(sorted.begin(), sorted.end());
  ChannelNormalization n;
  n.scheme = NormalizationScheme::ct;
  n.lower = percentile_of_sorted(sorted, 0.5);
  n.upper = percentile_of_sorted(sorted, 99.5);
  double sum = 0.0, sum_sq = 0.0;
  for (float v : sorted) {
    const double c = std::clamp<double>(v, n.lower, n.upper);
    sum += c;
    sum_sq += c * c;
  }
  const double count = static_cast<double>(sorted.size());
  n.mean = sum / count;
  n.std = std::sqrt(std::max(sum_sq / count - n.mean * n.mean, 0.0));
  return n;
}

void normalize_channel_(Tensor& image, std::int64_t channel, const ChannelNormalization& norm) {
  check(image.dtype() == DType::f32 && image.is_contiguous() && image.dim() == 4 && channel >= 0 &&
            channel < image.size(0),
        "normalize_channel_: expected a contiguous f32 [C, D, H, W] image and a channel in it, got {} {} channel {}",
        dtype_name(image.dtype()), image.shape().str(), channel);
  const std::int64_t n = image.numel() / image.size(0);
  float* x = image.data<float>() + channel * n;
  switch (norm.scheme) {
    case NormalizationScheme::none: return;
    case NormalizationScheme::ct: {
      const double scale = 1.0 / std::max(norm.std, 1e-8);
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < n; ++i)
        x[i] = static_cast<float>((std::clamp<double>(x[i], norm.lower, norm.upper) - norm.mean) * scale);
      return;
    }
    case NormalizationScheme::zscore: {
      double sum = 0.0, sum_sq = 0.0;
#pragma omp parallel for reduction(+ : sum, sum_sq) schedule(static)
      for (std::int64_t i = 0; i < n; ++i) {
        sum += x[i];
        sum_sq += static_cast<double>(x[i]) * x[i];
      }
      const double mean = sum / std::max<double>(n, 1);
      const double std = std::sqrt(std::max(sum_sq / std::max<double>(n, 1) - mean * mean, 0.0));
      const double scale = 1.0 / std::max(std, 1e-8);
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < n; ++i) x[i] = static_cast<float>((x[i] - mean) * scale);
      return;
    }
  }
}

}  // namespace tlk::data
