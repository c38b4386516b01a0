#include "tlk/task/metrics.h"

#include <limits>

#include "tlk/tensor/error.h"

namespace tlk::task {

Tensor argmax_channels(const Tensor& logits_in) {
  check(logits_in.dim() >= 2, "argmax_channels: expected logits [N, C, ...], got shape {}", logits_in.shape().str());
  Tensor logits = logits_in.detach().to(Layout::plain).to(DType::f64).to(Device::cpu()).contiguous();
  const std::int64_t n = logits.size(0), c = logits.size(1), inner = logits.numel() / std::max<std::int64_t>(1, n * c);
  Shape out_shape{n};
  for (int i = 2; i < logits.dim(); ++i) out_shape.push_back(logits.size(i));
  Tensor out = Tensor::empty(out_shape, TensorOptions{DType::i64});
  const double* x = logits.data<double>();
  std::int64_t* o = out.data<std::int64_t>();
#pragma omp parallel for if (n * inner > 65536)
  for (std::int64_t i = 0; i < n * inner; ++i) {
    const std::int64_t b = i / inner, v = i % inner;
    std::int64_t best = 0;
    for (std::int64_t k = 1; k < c; ++k)
      if (x[(b * c + k) * inner + v] > x[(b * c + best) * inner + v]) best = k;
    o[i] = best;
  }
  return out;
}

double dice(const Tensor& prediction, const Tensor& reference, std::int64_t label) {
  return dice_per_label(prediction, reference, {label})[0];
}

std::vector<double> dice_per_label(const Tensor& prediction, const Tensor& reference,
                                   const std::vector<std::int64_t>& labels) {
  check(prediction.shape() == reference.shape(), "dice: prediction shape {} differs from reference shape {}",
        prediction.shape().str(), reference.shape().str());
  const std::vector<double> p = prediction.to_doubles(), r = reference.to_doubles();
  std::vector<double> out;
  for (std::int64_t label : labels) {
    const double l = static_cast<double>(label);
    std::int64_t both = 0, in_p = 0, in_r = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
      in_p += p[i] == l;
      in_r += r[i] == l;
      both += p[i] == l && r[i] == l;
    }
    out.push_back(in_p + in_r == 0 ? std::numeric_limits<double>::quiet_NaN()
                                   : 2.0 * static_cast<double>(both) / static_cast<double>(in_p + in_r));
  }
  return out;
}

ConfusionCounts::ConfusionCounts(std::int64_t classes_)
    : classes(classes_),
      tp(static_cast<std::size_t>(classes_), 0.0),
      fp(static_cast<std::size_t>(classes_), 0.0),
      fn(static_cast<std::size_t>(classes_), 0.0) {}

void ConfusionCounts::add(const Tensor& predicted_in, const Tensor& reference_in) {
  const Tensor predicted = predicted_in.to(Device::cpu()).to(DType::i64).contiguous();
  const Tensor reference = reference_in.to(Device::cpu()).to(DType::u8).contiguous();
  check(predicted.numel() == reference.numel(), "pseudo Dice: a prediction of {} voxels for a reference of {}",
        predicted.numel(), reference.numel());
  const std::int64_t* p = predicted.data<std::int64_t>();
  const std::uint8_t* y = reference.data<std::uint8_t>();
  for (std::int64_t i = 0; i < predicted.numel(); ++i) {
    check(p[i] >= 0 && p[i] < classes, "pseudo Dice: predicted class {} outside [0, {})", p[i], classes);
    if (p[i] == y[i]) {
      tp[p[i]] += 1;
    } else {
      fp[p[i]] += 1;
      if (y[i] < classes) fn[y[i]] += 1;
    }
  }
}

std::vector<double> ConfusionCounts::flat() const {
  std::vector<double> out = tp;
  out.insert(out.end(), fp.begin(), fp.end());
  out.insert(out.end(), fn.begin(), fn.end());
  return out;
}

void ConfusionCounts::set_flat(const std::vector<double>& values) {
  check(values.size() == 3 * tp.size(), "pseudo Dice: {} counts for {} classes", values.size(), classes);
  const auto k = static_cast<std::ptrdiff_t>(classes);
  tp.assign(values.begin(), values.begin() + k);
  fp.assign(values.begin() + k, values.begin() + 2 * k);
  fn.assign(values.begin() + 2 * k, values.end());
}

std::vector<double> ConfusionCounts::foreground_dice() const {
  std::vector<double> out;
  for (std::int64_t k = 1; k < classes; ++k) {
    const double denominator = 2 * tp[k] + fp[k] + fn[k];
    out.push_back(denominator > 0 ? 2 * tp[k] / denominator : std::numeric_limits<double>::quiet_NaN());
  }
  return out;
}

}  // namespace tlk::task
