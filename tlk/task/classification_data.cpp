#include "tlk/task/classification_data.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "tlk/autograd/grad_mode.h"
#include "tlk/io/hdf5_file.h"
#include "tlk/nn/module.h"
#include "tlk/task/metrics.h"
#include "tlk/task/mix_seed.h"
#include "tlk/tensor/error.h"

namespace tlk::task {

Tensor gather_rows(const Tensor& t_in, const std::vector<std::int64_t>& indices) {
  const Tensor t = t_in.contiguous();
  Shape shape = t.shape();
  const std::int64_t n = shape[0];
  const std::size_t row = static_cast<std::size_t>(n > 0 ? t.numel() / n : 0) * element_size(t.dtype());
  shape[0] = static_cast<std::int64_t>(indices.size());
  Tensor out = Tensor::empty(shape, TensorOptions{t.dtype()});
  const auto* src = static_cast<const char*>(t.raw_data());
  auto* dst = static_cast<char*>(out.raw_data());
  for (std::size_t i = 0; i < indices.size(); ++i) {
    check(indices[i] >= 0 && indices[i] < n, "gather_rows: index {} is out of range for {} rows", indices[i], n);
    std::memcpy(dst + i * row, src + static_cast<std::size_t>(indices[i]) * row, row);
  }
  return out;
}

BatchCycle::BatchCycle(std::int64_t n, std::int64_t batch, std::uint64_t seed, std::uint64_t stream)
    : n_(n), batch_(std::min(batch, n)), seed_(mix_seed(seed, stream)) {}

const std::vector<std::int64_t>& BatchCycle::indices(std::int64_t i) {
  const std::int64_t pass = i / batches_per_pass();
  if (pass != pass_) {
    Generator gen(mix_seed(seed_, static_cast<std::uint64_t>(pass)));
    batches_ = data::epoch_batches(n_, batch_, &gen, /*drop_last=*/true);
    pass_ = pass;
  }
  return batches_[static_cast<std::size_t>(i % batches_per_pass())];
}

double fraction_correct(const Tensor& logits, const Tensor& labels) {
  const Tensor predicted = argmax_channels(logits).contiguous();  // on the CPU
  const Tensor y = labels.to(Device::cpu()).contiguous();
  const std::int64_t* p = predicted.data<std::int64_t>();
  const std::int64_t* t = y.data<std::int64_t>();
  std::int64_t right = 0;
  for (std::int64_t i = 0; i < predicted.numel(); ++i) right += p[i] == t[i];
  return predicted.numel() ? static_cast<double>(right) / static_cast<double>(predicted.numel()) : std::nan("");
}

Tensor load_unlabelled_images(const std::string& path, const data::ClassificationLoadOptions& options) {
  const auto [file, group] = data::split_path(path, options.split);
  const io::Hdf5File f = io::Hdf5File::open(file);
  const std::string prefix = group.empty() ? "/" : "/" + group + "/";
  std::string name = prefix + "images";
  if (!f.has(name)) name = prefix + "data";
  check(f.has(name), "{}: no '{}images' (or '{}data') dataset of images", file.string(), prefix, prefix);
  Tensor raw = f.read(name);  // only the images: the labels stay on disk, unread
  const std::string where = fmt::format("{} dataset '{}'", file.string(), name);
  check(raw.dtype() == DType::u8 || raw.dtype() == DType::f32, "{}: images must be u8 or f32, got {}", where,
        dtype_name(raw.dtype()));
  Shape s = raw.shape();
  check(s.size() >= 2 && s.size() <= 5 && s[0] > 0, "{}: expected images [N, C, H, W], [N, C, D, H, W], [N, H, W] or "
        "flattened [N, F], got {}", where, s.str());
  if (s.size() == 3) raw = raw.reshape({s[0], 1, s[1], s[2]});
  if (s.size() == 2) {
    std::vector<std::int64_t> per = options.flat_image_shape;
    if (per.empty()) {
      const auto side = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(s[1]))));
      check(side * side == s[1], "{}: flattened images [N, {}] are not square", where, s[1]);
      per = {1, side, side};
    }
    if (per.size() == 2) per.insert(per.begin(), 1);
    Shape shape{s[0]};
    for (std::int64_t d : per) shape.push_back(d);
    raw = raw.reshape(shape);
  }
  Tensor images = raw.to(DType::f32).contiguous();
  const double scale = options.scale.value_or(raw.dtype() == DType::u8 ? 1.0 / 255.0 : 1.0);
  if (scale != 1.0) {
    float* p = images.data<float>();
    for (std::int64_t i = 0; i < images.numel(); ++i) p[i] = static_cast<float>(p[i] * scale);
  }
  if (!options.spatial_size.empty()) images = data::fit_images(images, options.spatial_size, options.fit, options.antialias);
  const std::int64_t n = images.size(0);
  if (options.grey_to_rgb && images.size(1) == 1) {
    Shape rgb = images.shape();
    rgb[1] = 3;
    Tensor out = Tensor::empty(rgb, TensorOptions{DType::f32});
    const std::int64_t plane = images.numel() / n;
    for (std::int64_t i = 0; i < n; ++i)
      for (int c = 0; c < 3; ++c)
        std::memcpy(out.data<float>() + (3 * i + c) * plane, images.data<float>() + i * plane, plane * sizeof(float));
    images = out;
  }
  check(!options.grey_to_rgb || images.size(1) == 3, "{}: grey_to_rgb needs 1 or 3 channels, got {}", where,
        images.size(1));
  if (!options.mean.empty() || !options.stddev.empty()) {
    const std::int64_t channels = images.size(1), plane = images.numel() / (n * channels);
    auto at = [&](const std::vector<double>& v, std::int64_t c, double fallback) {
      check(v.empty() || v.size() == 1 || static_cast<std::int64_t>(v.size()) == channels,
            "{}: mean/std need 1 or {} values, got {}", where, channels, v.size());
      return v.empty() ? fallback : v.size() == 1 ? v[0] : v[static_cast<std::size_t>(c)];
    };
    float* p = images.data<float>();
    for (std::int64_t ic = 0; ic < n * channels; ++ic) {
      const auto m = static_cast<float>(at(options.mean, ic % channels, 0.0));
      const auto inv = static_cast<float>(1.0 / at(options.stddev, ic % channels, 1.0));
      for (std::int64_t k = 0; k < plane; ++k) p[ic * plane + k] = (p[ic * plane + k] - m) * inv;
    }
  }
  return images;
}

Tensor as_volumes(const Tensor& images) {
  if (images.dim() != 4) return images;
  return images.contiguous().reshape({images.size(0), images.size(1), 1, images.size(2), images.size(3)});
}

double classification_accuracy(nn::Module& net, const Tensor& images, const Tensor& labels, std::int64_t batch) {
  check(images.defined() && labels.defined() && images.size(0) == labels.numel(),
        "classification_accuracy: expected images [N, ...] and labels [N]");
  auto* unary = dynamic_cast<nn::UnaryModule*>(&net);
  check(unary != nullptr, "classification_accuracy: the network is not a single-input module");
  NoGradGuard no_grad;
  const bool was_training = net.is_training();
  net.eval();
  const std::int64_t n = images.size(0);
  std::int64_t right = 0;
  for (std::int64_t start = 0; start < n; start += batch) {
    std::vector<std::int64_t> idx;
    for (std::int64_t i = start; i < std::min(n, start + batch); ++i) idx.push_back(i);
    const Tensor logits = unary->forward(as_volumes(gather_rows(images, idx)).to(net.device()));
    right += static_cast<std::int64_t>(
        std::llround(fraction_correct(logits, gather_rows(labels, idx)) * static_cast<double>(idx.size())));
  }
  net.train(was_training);
  return n ? static_cast<double>(right) / static_cast<double>(n) : std::nan("");
}

}  // namespace tlk::task
