#include "tlk/data/classification_dataset.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tlk/io/hdf5_file.h"
#include "tlk/io/idx.h"
#include "tlk/tensor/error.h"

namespace tlk::data {

// Note [Image resize]: pixels are cells with centres at i + 0.5 (no "align corners"), as in
// Note [Resampling convention], torchvision and PIL. Output pixel o of an axis (in -> out) is centred
// at c = (o + 0.5) * in / out in input coordinates and averages the input pixels i with the triangle
// weights max(0, 1 - |i + 0.5 - c| / r), normalised to sum 1, over the pixels inside the image.
// r = 1 is linear interpolation with edge clamping (upsampling; also shrinking without antialias);
// antialiased shrinking widens it to r = in / out (PIL's / torchvision's antialiased bilinear), so
// every input pixel contributes. Axes are resized one after another (W, then H, then D), which for
// these separable weights is the same as bi/trilinear weighting of the 2-D/3-D neighbourhood.

namespace {

// The sparse weights of one axis: output o reads `taps` input pixels from first[o].
struct AxisWeights {
  std::int64_t taps = 0;
  std::vector<std::int64_t> first;
  std::vector<float> w;  // [out, taps]
};

AxisWeights axis_weights(std::int64_t in, std::int64_t out, bool antialias) {
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double radius = antialias && scale > 1.0 ? scale : 1.0;
  AxisWeights a;
  a.taps = static_cast<std::int64_t>(std::ceil(2.0 * radius)) + 1;
  a.first.resize(static_cast<std::size_t>(out));
  a.w.assign(static_cast<std::size_t>(out * a.taps), 0.0f);
  for (std::int64_t o = 0; o < out; ++o) {
    // Pixels with a nonzero weight satisfy |i + 0.5 - centre| < radius: at most taps of them from `first`.
    const double centre = (static_cast<double>(o) + 0.5) * scale;
    const std::int64_t first =
        std::max<std::int64_t>(0, static_cast<std::int64_t>(std::floor(centre - radius - 0.5)) + 1);
    std::vector<double> w(static_cast<std::size_t>(a.taps), 0.0);
    double sum = 0.0;
    for (std::int64_t t = 0; t < a.taps && first + t < in; ++t) {
      const double d = std::abs(static_cast<double>(first + t) + 0.5 - centre) / radius;
      w[static_cast<std::size_t>(t)] = std::max(0.0, 1.0 - d);
      sum += w[static_cast<std::size_t>(t)];
    }
    a.first[static_cast<std::size_t>(o)] = first;
    for (std::int64_t t = 0; t < a.taps; ++t)
      a.w[static_cast<std::size_t>(o * a.taps + t)] = static_cast<float>(w[static_cast<std::size_t>(t)] / sum);
  }
  return a;
}

// Resizes the middle axis of a row-major [outer, in, inner] array to [outer, out, inner].
std::vector<float> resize_axis(const std::vector<float>& src, std::int64_t outer, std::int64_t in, std::int64_t inner,
                               std::int64_t out, bool antialias) {
  const AxisWeights a = axis_weights(in, out, antialias);
  std::vector<float> dst(static_cast<std::size_t>(outer * out * inner), 0.0f);
#pragma omp parallel for schedule(static)
  for (std::int64_t p = 0; p < outer; ++p) {
    const float* s = src.data() + p * in * inner;
    float* d = dst.data() + p * out * inner;
    for (std::int64_t o = 0; o < out; ++o) {
      float* row = d + o * inner;
      const std::int64_t first = a.first[static_cast<std::size_t>(o)];
      for (std::int64_t t = 0; t < a.taps && first + t < in; ++t) {
        const float w = a.w[static_cast<std::size_t>(o * a.taps + t)];
        if (w == 0.0f) continue;
        const float* srow = s + (first + t) * inner;
        for (std::int64_t k = 0; k < inner; ++k) row[k] += w * srow[k];
      }
    }
  }
  return dst;
}

// The images' spatial extents as (D, H, W) (D = 1 for 2-D images).
std::array<std::int64_t, 3> spatial3(const Shape& s) {
  return s.size() == 5 ? std::array<std::int64_t, 3>{s[2], s[3], s[4]} : std::array<std::int64_t, 3>{1, s[2], s[3]};
}

Tensor resize_images(const Tensor& images, const std::array<std::int64_t, 3>& to, bool antialias) {
  const Shape& s = images.shape();
  const std::int64_t planes = s[0] * s[1];
  std::array<std::int64_t, 3> cur = spatial3(s);
  const float* p = images.data<float>();
  std::vector<float> buf(p, p + images.numel());
  // W, then H, then D; an axis that keeps its size is skipped (the weights would copy it).
  for (int axis = 2; axis >= 0; --axis) {
    if (cur[static_cast<std::size_t>(axis)] == to[static_cast<std::size_t>(axis)]) continue;
    std::int64_t outer = planes, inner = 1;
    for (int i = 0; i < axis; ++i) outer *= cur[static_cast<std::size_t>(i)];
    for (int i = axis + 1; i < 3; ++i) inner *= cur[static_cast<std::size_t>(i)];
    buf = resize_axis(buf, outer, cur[static_cast<std::size_t>(axis)], inner, to[static_cast<std::size_t>(axis)],
                      antialias);
    cur[static_cast<std::size_t>(axis)] = to[static_cast<std::size_t>(axis)];
  }
  Shape out_shape{s[0], s[1]};
  if (s.size() == 5) out_shape.push_back(to[0]);
  out_shape.push_back(to[1]);
  out_shape.push_back(to[2]);
  return Tensor::from_vector(buf, out_shape);
}

Tensor pad_or_crop_images(const Tensor& images, const std::array<std::int64_t, 3>& to) {
  const Shape& s = images.shape();
  const std::array<std::int64_t, 3> from = spatial3(s);
  std::array<std::int64_t, 3> src0{}, dst0{}, len{};
  for (std::size_t i = 0; i < 3; ++i) {
    len[i] = std::min(from[i], to[i]);
    src0[i] = from[i] > to[i] ? (from[i] - to[i]) / 2 : 0;
    dst0[i] = to[i] > from[i] ? (to[i] - from[i]) / 2 : 0;
  }
  Shape out_shape{s[0], s[1]};
  if (s.size() == 5) out_shape.push_back(to[0]);
  out_shape.push_back(to[1]);
  out_shape.push_back(to[2]);
  Tensor out = Tensor::zeros(out_shape, TensorOptions{DType::f32});
  const float* src = images.data<float>();
  float* dst = out.data<float>();
  const std::int64_t planes = s[0] * s[1];
  const std::int64_t in_plane = from[0] * from[1] * from[2], out_plane = to[0] * to[1] * to[2];
#pragma omp parallel for schedule(static)
  for (std::int64_t p = 0; p < planes; ++p)
    for (std::int64_t z = 0; z < len[0]; ++z)
      for (std::int64_t y = 0; y < len[1]; ++y)
        std::memcpy(dst + p * out_plane + ((dst0[0] + z) * to[1] + dst0[1] + y) * to[2] + dst0[2],
                    src + p * in_plane + ((src0[0] + z) * from[1] + src0[1] + y) * from[2] + src0[2],
                    static_cast<std::size_t>(len[2]) * sizeof(float));
  return out;
}

// Labels of any integer dtype, [N] or [N, 1], as i64 [N], each >= 0.
Tensor check_labels(const Tensor& labels, std::int64_t n, const std::string& where) {
  const DType t = labels.dtype();
  check(t == DType::i64 || t == DType::i32 || t == DType::u8, "{}: labels must be integers, got {}", where,
        dtype_name(t));
  const Shape& s = labels.shape();
  check(s.size() == 1 || (s.size() == 2 && s[1] == 1), "{}: labels must be [N] or [N, 1], got {}", where, s.str());
  check(s[0] == n, "{}: {} labels for {} images", where, s[0], n);
  Tensor out = labels.to(DType::i64).contiguous().reshape({n});
  const std::int64_t* v = out.data<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i) check(v[i] >= 0, "{}: label {} of image {} is negative", where, v[i], i);
  return out;
}

std::int64_t max_label(const Tensor& labels) {
  const std::int64_t* v = labels.data<std::int64_t>();
  return labels.numel() == 0 ? -1 : *std::max_element(v, v + labels.numel());
}

// Images as stored -> [N, C, (D,) H, W], same dtype; [N, H, W] and flattened [N, F] are reshaped.
Tensor image_layout(const Tensor& images, const ClassificationLoadOptions& options, const std::string& where) {
  const DType t = images.dtype();
  check(t == DType::u8 || t == DType::f32, "{}: images must be u8 or f32, got {}", where, dtype_name(t));
  const Shape& s = images.shape();
  check(s.size() >= 2 && s.size() <= 5,
        "{}: images must be [N, C, H, W] or [N, C, D, H, W] (or [N, H, W], or flattened [N, F]), got {}", where,
        s.str());
  check(s[0] > 0, "{}: no images (shape {})", where, s.str());
  if (s.size() == 3) return images.reshape({s[0], 1, s[1], s[2]});
  if (s.size() != 2) return images;
  std::vector<std::int64_t> per = options.flat_image_shape;
  if (per.empty()) {
    const auto side = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(s[1]))));
    check(side * side == s[1],
          "{}: flattened images [N, {}] are not square; give flat_image_shape (C, H, W) or (H, W)", where, s[1]);
    per = {1, side, side};
  }
  if (per.size() == 2) per.insert(per.begin(), 1);
  check(per.size() == 3 || per.size() == 4, "{}: flat_image_shape must be (H, W), (C, H, W) or (C, D, H, W)", where);
  Shape shape{s[0]};
  std::int64_t f = 1;
  for (std::int64_t d : per) {
    shape.push_back(d);
    f *= d;
  }
  check(f == s[1], "{}: flattened images [N, {}] do not fit flat_image_shape {}", where, s[1], Shape(per).str());
  return images.reshape(shape);
}

std::string dataset_where(const std::filesystem::path& file, const std::string& name) {
  return fmt::format("{} dataset '{}'", file.string(), name);
}

}  // namespace

std::vector<std::int64_t> ClassificationDataset::class_counts() const {
  std::vector<std::int64_t> counts(static_cast<std::size_t>(std::max<std::int64_t>(num_classes, 0)), 0);
  if (!labels.defined()) return counts;
  const std::int64_t* v = labels.data<std::int64_t>();
  for (std::int64_t i = 0; i < labels.numel(); ++i)
    if (v[i] >= 0 && v[i] < num_classes) ++counts[static_cast<std::size_t>(v[i])];
  return counts;
}

Tensor fit_images(const Tensor& images_in, const std::vector<std::int64_t>& spatial_size, SpatialFit fit,
                  bool antialias) {
  const Tensor images = images_in.to(DType::f32).to(Layout::plain).contiguous();
  const int spatial_dims = images.dim() - 2;
  check(images.dim() == 4 || images.dim() == 5, "fit_images: expected images [N, C, H, W] or [N, C, D, H, W], got {}",
        images.shape().str());
  check(static_cast<int>(spatial_size.size()) == spatial_dims,
        "fit_images: {}-D images {} need a spatial size of {} values, got {}", spatial_dims, images.shape().str(),
        spatial_dims, spatial_size.size());
  for (std::int64_t d : spatial_size) check(d > 0, "fit_images: spatial size {} must be positive", Shape(spatial_size).str());
  const std::array<std::int64_t, 3> to = spatial_dims == 3
                                             ? std::array<std::int64_t, 3>{spatial_size[0], spatial_size[1], spatial_size[2]}
                                             : std::array<std::int64_t, 3>{1, spatial_size[0], spatial_size[1]};
  if (spatial3(images.shape()) == to) return images;
  return fit == SpatialFit::resize ? resize_images(images, to, antialias) : pad_or_crop_images(images, to);
}

SplitPath split_path(const std::string& path, const std::string& split) {
  SplitPath out{path, split};
  if (!std::filesystem::exists(out.file)) {  // "file.h5:group" when path itself is no file
    const auto colon = path.rfind(':');
    check(colon != std::string::npos && std::filesystem::exists(path.substr(0, colon)), "{}: no such file", path);
    out.file = path.substr(0, colon);
    const std::string named = path.substr(colon + 1);
    check(split.empty() || split == named, "{}: the path names split '{}' but the options say '{}'", path, named,
          split);
    out.group = named;
  }
  while (!out.group.empty() && out.group.front() == '/') out.group.erase(out.group.begin());
  return out;
}

ClassificationDataset load_classification_dataset(const std::string& path, const ClassificationLoadOptions& options) {
  const auto [file, group] = split_path(path, options.split);
  const io::Hdf5File f = io::Hdf5File::open(file);
  const std::string prefix = group.empty() ? "/" : "/" + group + "/";
  std::string image_name = prefix + "images", label_name = prefix + "labels";
  if (!(f.has(image_name) && f.has(label_name)) && f.has(prefix + "data") && f.has(prefix + "target")) {
    image_name = prefix + "data";
    label_name = prefix + "target";
  }
  if (!(f.has(image_name) && f.has(label_name))) {
    std::string found;
    for (const std::string& name : f.datasets()) found += (found.empty() ? "" : ", ") + name;
    fail("{}: no '{}images' + '{}labels' (or '{}data' + '{}target') datasets; the file holds: {}{}", file.string(),
         prefix, prefix, prefix, prefix, found.empty() ? "nothing" : found,
         group.empty() ? " (choose a split with 'file.h5:train' or options.split)" : "");
  }
  ClassificationDataset ds;
  ds.source = group.empty() ? file.string() : file.string() + ":" + group;
  const std::string image_where = dataset_where(file, image_name);
  Tensor raw = image_layout(f.read(image_name), options, image_where);
  const std::int64_t n = raw.shape()[0];
  ds.labels = check_labels(f.read(label_name), n, dataset_where(file, label_name));

  const std::int64_t top = max_label(ds.labels);
  ds.num_classes = options.num_classes;
  std::string count_from = "options.num_classes";
  if (ds.num_classes <= 0 && f.has_attribute("num_classes")) {
    const std::string text = f.attribute("num_classes");
    char* end = nullptr;
    ds.num_classes = std::strtoll(text.c_str(), &end, 10);
    check(!text.empty() && *end == '\0' && ds.num_classes > 0,
          "{}: attribute num_classes = '{}' is not a positive integer", file.string(), text);
    count_from = "the file's num_classes attribute";
  }
  if (ds.num_classes <= 0) ds.num_classes = top + 1;
  check(top < ds.num_classes, "{}: label {} is out of range for {} classes ({})", dataset_where(file, label_name), top,
        ds.num_classes, count_from);

  // Scale into f32.
  const double scale = options.scale.value_or(raw.dtype() == DType::u8 ? 1.0 / 255.0 : 1.0);
  Tensor images = raw.to(DType::f32).contiguous();  // raw is ours: scaled in place
  if (scale != 1.0) {
    float* p = images.data<float>();
    const auto s = static_cast<float>(scale);
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < images.numel(); ++i) p[i] *= s;
  }
  if (!options.spatial_size.empty()) {
    check(static_cast<int>(options.spatial_size.size()) == images.dim() - 2,
          "{}: {}-D images {} need spatial_size of {} values, got {}", image_where, images.dim() - 2,
          images.shape().str(), images.dim() - 2, Shape(options.spatial_size).str());
    images = fit_images(images, options.spatial_size, options.fit, options.antialias);
  }
  if (options.grey_to_rgb && images.shape()[1] != 3) {
    check(images.shape()[1] == 1, "{}: grey_to_rgb needs 1 channel (or 3, kept), the images have {}", image_where,
          images.shape()[1]);
    Shape rgb = images.shape();
    rgb[1] = 3;
    Tensor out = Tensor::empty(rgb, TensorOptions{DType::f32});
    const std::int64_t plane = images.numel() / n;
    const float* src = images.data<float>();
    float* dst = out.data<float>();
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n; ++i)
      for (int c = 0; c < 3; ++c) std::memcpy(dst + (3 * i + c) * plane, src + i * plane, plane * sizeof(float));
    images = out;
  }
  if (!options.mean.empty() || !options.stddev.empty()) {
    const std::int64_t channels = images.shape()[1];
    auto per_channel = [&](const std::vector<double>& v, double fallback, const char* what) {
      check(v.empty() || v.size() == 1 || static_cast<std::int64_t>(v.size()) == channels,
            "{}: {} needs 1 or {} values (one per channel), got {}", image_where, what, channels, v.size());
      std::vector<double> out(static_cast<std::size_t>(channels), fallback);
      for (std::int64_t c = 0; c < channels; ++c)
        if (!v.empty()) out[static_cast<std::size_t>(c)] = v.size() == 1 ? v[0] : v[static_cast<std::size_t>(c)];
      return out;
    };
    const std::vector<double> mean = per_channel(options.mean, 0.0, "mean");
    const std::vector<double> stddev = per_channel(options.stddev, 1.0, "stddev");
    for (double s : stddev) check(s > 0, "{}: stddev must be positive, got {}", image_where, s);
    const std::int64_t plane = images.numel() / (n * channels);
    float* p = images.data<float>();
#pragma omp parallel for schedule(static)
    for (std::int64_t ic = 0; ic < n * channels; ++ic) {
      const auto c = static_cast<std::size_t>(ic % channels);
      const auto m = static_cast<float>(mean[c]), inv = static_cast<float>(1.0 / stddev[c]);
      for (std::int64_t k = 0; k < plane; ++k) p[ic * plane + k] = (p[ic * plane + k] - m) * inv;
    }
  }
  ds.images = images;
  return ds;
}

void write_classification_file(const std::filesystem::path& path, const std::vector<ClassificationSplit>& splits,
                               std::int64_t num_classes, const std::string& source) {
  check(!splits.empty(), "{}: write_classification_file: no splits to write", path.string());
  std::vector<Tensor> labels;
  std::int64_t top = -1;
  for (const ClassificationSplit& s : splits) {
    const std::string where = fmt::format("{} split '{}'", path.string(), s.group.empty() ? "/" : s.group);
    const DType t = s.images.dtype();
    check(t == DType::u8 || t == DType::f32, "{}: images must be u8 or f32, got {}", where, dtype_name(t));
    check(s.images.dim() == 4 || s.images.dim() == 5, "{}: images must be [N, C, H, W] or [N, C, D, H, W], got {}",
          where, s.images.shape().str());
    labels.push_back(check_labels(s.labels, s.images.shape()[0], where));
    top = std::max(top, max_label(labels.back()));
  }
  if (num_classes <= 0) num_classes = top + 1;
  check(top < num_classes, "{}: label {} is out of range for {} classes", path.string(), top, num_classes);
  io::write_atomically(path, [&](const std::filesystem::path& tmp) {
    io::Hdf5File f = io::Hdf5File::create(tmp);
    for (std::size_t i = 0; i < splits.size(); ++i) {
      const std::string prefix = splits[i].group.empty() ? "" : splits[i].group + "/";
      f.write(prefix + "images", splits[i].images);
      f.write(prefix + "labels", labels[i]);
    }
    f.set_attribute("num_classes", std::to_string(num_classes));
    if (!source.empty()) f.set_attribute("source", source);
    f.flush();
  });
}

ClassificationSplit read_mnist_idx(const std::filesystem::path& images_path, const std::filesystem::path& labels_path) {
  const Tensor images = io::read_idx(images_path);
  const Tensor labels = io::read_idx(labels_path);
  check(images.dtype() == DType::u8 && images.dim() == 3, "{}: expected MNIST images (u8 [N, H, W]), got {} {}",
        images_path.string(), dtype_name(images.dtype()), images.shape().str());
  check(labels.dim() == 1 && labels.dtype() != DType::f32 && labels.dtype() != DType::f64,
        "{}: expected MNIST labels (integers [N]), got {} {}", labels_path.string(), dtype_name(labels.dtype()),
        labels.shape().str());
  check(images.shape()[0] == labels.shape()[0], "{} holds {} images but {} holds {} labels", images_path.string(),
        images.shape()[0], labels_path.string(), labels.shape()[0]);
  const Shape& s = images.shape();
  return {"", images.reshape({s[0], 1, s[1], s[2]}), labels.to(DType::i64)};
}

ClassificationDataset subset(const ClassificationDataset& dataset, const std::vector<std::int64_t>& indices) {
  const Tensor images = dataset.images.contiguous();
  const std::int64_t n = dataset.size();
  Shape shape = images.shape();
  shape[0] = static_cast<std::int64_t>(indices.size());
  ClassificationDataset out;
  out.images = Tensor::empty(shape, TensorOptions{DType::f32});
  out.labels = Tensor::empty({shape[0]}, TensorOptions{DType::i64});
  out.num_classes = dataset.num_classes;
  out.source = dataset.source;
  const std::int64_t per = n > 0 ? images.numel() / n : 0;
  const float* src = images.data<float>();
  const std::int64_t* lab = dataset.labels.data<std::int64_t>();
  float* dst = out.images.data<float>();
  std::int64_t* dst_lab = out.labels.data<std::int64_t>();
  for (std::size_t i = 0; i < indices.size(); ++i) {
    const std::int64_t k = indices[i];
    check(k >= 0 && k < n, "{}: subset: index {} is out of range for {} images", dataset.source, k, n);
    std::memcpy(dst + static_cast<std::int64_t>(i) * per, src + k * per, static_cast<std::size_t>(per) * sizeof(float));
    dst_lab[i] = lab[k];
  }
  return out;
}

std::vector<std::int64_t> shuffled_indices(std::int64_t n, Generator& gen) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(std::max<std::int64_t>(n, 0)));
  for (std::int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
  for (std::int64_t i = n - 1; i > 0; --i)
    std::swap(order[static_cast<std::size_t>(i)], order[gen.below(static_cast<std::uint64_t>(i + 1))]);
  return order;
}

std::vector<std::vector<std::int64_t>> epoch_batches(std::int64_t n, std::int64_t batch_size, Generator* gen,
                                                     bool drop_last) {
  check(batch_size > 0, "epoch_batches: batch size must be positive, got {}", batch_size);
  std::vector<std::int64_t> order;
  if (gen) {
    order = shuffled_indices(n, *gen);
  } else {
    for (std::int64_t i = 0; i < n; ++i) order.push_back(i);
  }
  std::vector<std::vector<std::int64_t>> batches;
  for (std::int64_t start = 0; start < n; start += batch_size) {
    const std::int64_t end = std::min(n, start + batch_size);
    if (drop_last && end - start < batch_size) break;
    batches.emplace_back(order.begin() + start, order.begin() + end);
  }
  return batches;
}

}  // namespace tlk::data
