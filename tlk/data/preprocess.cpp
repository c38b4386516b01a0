#include "tlk/data/preprocess.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "tlk/data/label_map.h"
#include "tlk/data/patch_sampler.h"
#include "tlk/io/nifti.h"
#include "tlk/io/progress_bar.h"
#include "tlk/tensor/error.h"

namespace tlk::data {

namespace {

std::array<std::int64_t, 3> spatial_shape_of(const io::NiftiImage& image, const std::filesystem::path& file) {
  const Tensor& d = image.data;
  check(d.dim() == 3 || (d.dim() == 4 && d.size(0) == 1), "{}: expected a 3-D volume, got data of shape {}",
        file.string(), d.shape().str());
  return {d.size(-3), d.size(-2), d.size(-1)};
}

Tensor spatial(const Tensor& t) {
  return t.dim() == 4 ? t.contiguous().reshape({t.size(1), t.size(2), t.size(3)}) : t;
}

/// Runs `work(i)` for i in [0, n) on `threads` threads (each with an equal share of the OpenMP
/// threads), advancing `bar`; the first exception is rethrown after every thread has stopped.
void for_each_case(std::size_t n, int threads, io::ProgressBar& bar, const std::function<std::string(std::size_t)>& work) {
  const int cores = std::max(1, omp_get_max_threads());
  threads = std::clamp<int>(threads > 0 ? threads : cores, 1, static_cast<int>(std::max<std::size_t>(n, 1)));
  const int omp_each = std::max(1, cores / threads);
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto run = [&] {
    omp_set_num_threads(omp_each);
    for (std::size_t i = next++; i < n; i = next++) {
      {
        std::lock_guard lock(error_mutex);
        if (error) return;
      }
      try {
        bar.advance(1, work(i));
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(run);
  run();
  for (auto& t : pool) t.join();
  omp_set_num_threads(cores);
  if (error) std::rethrow_exception(error);
}

}  // namespace

LoadedCase load_raw_case(const RawCase& raw, const std::string& label_map, bool with_labels) {
  check(!raw.images.empty(), "case {}: no image files", raw.id);
  LoadedCase c;
  c.id = raw.id;
  std::vector<Tensor> channels;
  std::array<std::int64_t, 3> shape{};
  for (std::size_t ch = 0; ch < raw.images.size(); ++ch) {
    io::NiftiImage image = io::read_nifti(raw.images[ch]);
    const auto s = spatial_shape_of(image, raw.images[ch]);
    const Orientation o = orientation_of(image.affine(), s);
    if (ch == 0) {
      shape = s;
      c.geometry.orientation = o;
      c.geometry.original_spacing = canonical_spacing(image, o);
      c.header = image;
      c.header.data = Tensor();
    } else {
      check(s == shape && o.world == c.geometry.orientation.world && o.flipped == c.geometry.orientation.flipped,
            "case {}: {} has shape [{}, {}, {}] and orientation {}, but channel 0 ({}) has [{}, {}, {}] and {}", raw.id,
            raw.images[ch].string(), s[0], s[1], s[2], o.code(), raw.images[0].string(), shape[0], shape[1], shape[2],
            c.geometry.orientation.code());
    }
    channels.push_back(to_canonical(spatial(image.scaled_f32()), o));
  }
  const auto canonical = c.geometry.orientation.canonical_shape();
  c.geometry.canonical_shape = canonical;
  const std::int64_t voxels = canonical[0] * canonical[1] * canonical[2];
  Tensor image = Tensor::empty({static_cast<std::int64_t>(channels.size()), canonical[0], canonical[1], canonical[2]});
  for (std::size_t ch = 0; ch < channels.size(); ++ch)
    std::memcpy(image.data<float>() + ch * voxels, channels[ch].contiguous().data<float>(), sizeof(float) * voxels);

  Tensor labels;
  if (with_labels && raw.label) {
    io::NiftiImage label_file = io::read_nifti(*raw.label);
    const auto s = spatial_shape_of(label_file, *raw.label);
    check(s == shape, "case {}: label file {} has shape [{}, {}, {}] but the image {} has [{}, {}, {}]", raw.id,
          raw.label->string(), s[0], s[1], s[2], raw.images[0].string(), shape[0], shape[1], shape[2]);
    const Orientation o = orientation_of(label_file.affine(), s);
    check(o.world == c.geometry.orientation.world && o.flipped == c.geometry.orientation.flipped,
          "case {}: label file {} is oriented {} but the image is {}", raw.id, raw.label->string(), o.code(),
          c.geometry.orientation.code());
    labels = to_canonical(apply(parse_label_map(label_map), spatial(label_file.data), raw.label->string()), o);
  }
  c.geometry.crop = nonzero_bounding_box(image);
  c.image = crop(image, c.geometry.crop);
  if (labels.defined()) c.labels = crop(labels, c.geometry.crop);
  return c;
}

PreprocessedCase finish_case(LoadedCase loaded, const PreprocessingPlan& plan, Generator& gen,
                             const ResampleOptions& resample) {
  check(static_cast<std::size_t>(loaded.image.size(0)) == plan.normalization.size(),
        "case {}: {} image channels, but the preprocessing plan has {} ({})", loaded.id, loaded.image.size(0),
        plan.normalization.size(), plan.dataset_name);
  PreprocessedCase out;
  out.id = loaded.id;
  out.geometry = loaded.geometry;
  out.geometry.spacing = plan.target_spacing;
  Tensor image = loaded.image.contiguous();
  for (std::int64_t ch = 0; ch < image.size(0); ++ch) normalize_channel_(image, ch, plan.normalization[ch]);
  const auto from = loaded.geometry.original_spacing;
  const auto shape = shape_for_spacing({image.size(1), image.size(2), image.size(3)}, from, plan.target_spacing);
  out.image = resample_image(image, shape, from, plan.target_spacing, resample);
  if (loaded.labels.defined()) {
    out.labels = resample_labels(loaded.labels, shape, from, plan.target_spacing, resample);
    out.class_locations = sample_class_locations(out.labels, gen);
  }
  return out;
}

Tensor labels_in_file_geometry(const Tensor& probabilities, const CaseGeometry& geometry) {
  check(probabilities.dim() == 4 && probabilities.dtype() == DType::f32,
        "labels_in_file_geometry: expected f32 probabilities [K, D, H, W], got {} {}",
        dtype_name(probabilities.dtype()), probabilities.shape().str());
  // Note [Mapping predictions back]: as nnUNet, probabilities (not labels) are resampled back with
  // linear interpolation (nearest along an anisotropic axis), then the argmax is taken at the
  // file's resolution, so thin structures do not alias.
  ResampleOptions back;
  back.image_order = Interpolation::linear;
  back.clip_to_input_range = false;
  const Tensor p = resample_image(probabilities, geometry.crop.shape(), geometry.spacing, geometry.original_spacing, back)
                       .contiguous();
  const std::int64_t K = p.size(0), voxels = p.numel() / K;
  Tensor labels = Tensor::empty({p.size(1), p.size(2), p.size(3)}, TensorOptions{}.with(DType::u8));
  const float* x = p.data<float>();
  std::uint8_t* y = labels.data<std::uint8_t>();
#pragma omp parallel for schedule(static)
  for (std::int64_t v = 0; v < voxels; ++v) {
    int best = 0;
    for (std::int64_t k = 1; k < K; ++k)
      if (x[k * voxels + v] > x[best * voxels + v]) best = static_cast<int>(k);
    y[v] = static_cast<std::uint8_t>(best);
  }
  return from_canonical(uncrop(labels, geometry.crop, geometry.canonical_shape, 0.0), geometry.orientation);
}

PreprocessingPlan preprocess_dataset(const std::filesystem::path& raw_dir, const std::filesystem::path& out_dir,
                                     const PreprocessOptions& options) {
  const RawDataset dataset = open_raw_dataset(raw_dir);
  check(!dataset.training.empty(), "preprocess: {} has no training cases in imagesTr", raw_dir.string());
  PreprocessingPlan plan;
  plan.dataset_name = dataset.info.name.empty() ? raw_dir.filename().string() : dataset.info.name;
  plan.channel_names = dataset.info.channel_names;
  plan.label_map = to_string(parse_label_map(options.label_map));
  plan.labels = mapped_labels(dataset.info.labels, options.label_map);

  std::vector<ChannelNormalization> source_norms;
  if (!options.norm_stats_from.empty()) {
    const PreprocessingPlan source = PreprocessingPlan::load(options.norm_stats_from);
    check(source.normalization.size() == plan.channel_names.size(), "preprocess: {} has {} channels but the "
          "statistics in {} are for {}", raw_dir.string(), plan.channel_names.size(),
          options.norm_stats_from.string(), source.normalization.size());
    source_norms = source.normalization;
    plan.normalization_source = std::filesystem::absolute(options.norm_stats_from).lexically_normal().string();
  }
  bool need_stats = false;
  for (std::size_t ch = 0; ch < plan.channel_names.size(); ++ch) {
    ChannelNormalization n;
    n.scheme = scheme_for_channel(plan.channel_names[ch]);
    if (n.scheme == NormalizationScheme::ct) {
      if (!source_norms.empty()) {
        check(source_norms[ch].scheme == NormalizationScheme::ct, "preprocess: channel {} ('{}') is CT, but {} "
              "normalized it as {}", ch, plan.channel_names[ch], options.norm_stats_from.string(),
              to_string(source_norms[ch].scheme));
        n = source_norms[ch];
      } else {
        need_stats = true;
      }
    }
    plan.normalization.push_back(n);
  }

  // Note [Unlabelled datasets]: an adaptation target may come without labels. Its cases are
  // preprocessed without them, which works when the CT statistics come from elsewhere
  // (norm_stats_from): statistics need the labelled foreground.
  if (need_stats)
    for (const auto& c : dataset.training)
      check(c.label.has_value(), "preprocess: case {} has no label file in {}/labelsTr, and CT normalization needs "
            "labelled foreground (give --norm-stats-from a labelled preprocessed folder)", c.id, raw_dir.string());
  const std::size_t n = dataset.training.size();
  if (need_stats || !options.spacing) {
    // Pass 1: spacings and foreground intensities (nnUNet's dataset fingerprint).
    std::vector<std::array<double, 3>> spacings(n);
    std::vector<std::unique_ptr<ForegroundIntensities>> fg;
    for (std::size_t ch = 0; ch < plan.channel_names.size(); ++ch)
      fg.push_back(std::make_unique<ForegroundIntensities>());
    io::ProgressBar bar("fingerprint", static_cast<std::int64_t>(n), options.quiet);
    for_each_case(n, options.threads, bar, [&](std::size_t i) {
      const LoadedCase c = load_raw_case(dataset.training[i], options.label_map);
      spacings[i] = c.geometry.original_spacing;
      if (c.labels.defined())
        for (std::size_t ch = 0; ch < fg.size(); ++ch) fg[ch]->add(c.image, static_cast<std::int64_t>(ch), c.labels);
      return c.id;
    });
    bar.finish();
    for (std::size_t ch = 0; ch < plan.normalization.size(); ++ch)
      if (plan.normalization[ch].scheme == NormalizationScheme::ct && source_norms.empty())
        plan.normalization[ch] = fg[ch]->ct_statistics();
    plan.target_spacing = options.spacing ? *options.spacing : default_target_spacing(spacings);
  } else {
    plan.target_spacing = *options.spacing;
  }
  for (double s : plan.target_spacing)
    check(s > 0 && std::isfinite(s), "preprocess: target spacing must be positive, got {}", s);

  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  check(!ec, "preprocess: cannot create {}: {}", out_dir.string(), ec.message());
  io::ProgressBar bar("preprocess", static_cast<std::int64_t>(n), options.quiet);
  for_each_case(n, options.threads, bar, [&](std::size_t i) {
    Generator gen(options.seed + 7919 * i);  // per case, so the result does not depend on thread timing
    PreprocessedCase c = finish_case(load_raw_case(dataset.training[i], options.label_map), plan, gen);
    save_preprocessed_case(out_dir, c);
    return c.id;
  });
  bar.finish();
  plan.save(out_dir);
  return plan;
}

}  // namespace tlk::data
