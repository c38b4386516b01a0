#include "test_util.h"

#include <cmath>
#include <cstring>

namespace tlk::testing {

Tensor random_leaf(const Shape& shape, Generator& gen, double low, double high) {
  Tensor t = rand(shape, gen, low, high, TensorOptions{DType::f64});
  t.set_requires_grad(true);
  return t;
}

namespace {
// |x - y|, where a NaN on one side only counts as an infinite difference (a NaN on both sides, as
// where a Dice is undefined in both results, as none). Note [NaN in comparisons]: std::max(m, NaN)
// returns m, so without this a NaN (an output a kernel never wrote, see Note [Poisoned GPU memory])
// would pass every tolerance.
double difference(double x, double y) {
  if (std::isnan(x) || std::isnan(y)) return std::isnan(x) && std::isnan(y) ? 0.0 : INFINITY;
  return std::abs(x - y);
}
}  // namespace

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  auto va = a.to_doubles(), vb = b.to_doubles();
  double m = 0.0;
  for (std::size_t i = 0; i < va.size(); ++i) m = std::max(m, difference(va[i], vb[i]));
  return m;
}

bool bit_identical(const Tensor& a, const Tensor& b) {
  if (!(a.shape() == b.shape()) || a.dtype() != b.dtype()) return false;
  return std::memcmp(a.raw_data(), b.raw_data(), static_cast<std::size_t>(a.numel()) * element_size(a.dtype())) == 0;
}

Tensor random_labels(const Shape& shape, Generator& gen, const std::vector<std::uint8_t>& values) {
  Tensor t = Tensor::empty(shape, TensorOptions{}.with(DType::u8));
  std::uint8_t* p = t.data<std::uint8_t>();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = values[gen.below(values.size())];
  return t;
}

std::filesystem::path shared_dir() {
  std::filesystem::path p(TLK_SHARED_DIR);
  return std::filesystem::exists(p / "data") ? p : std::filesystem::path();
}

}  // namespace tlk::testing

namespace tlk::testing {

TensorOptions f64() { return TensorOptions{DType::f64}; }

Tensor values(const std::vector<double>& v, const Shape& shape, DType dtype) {
  return Tensor::from_doubles(v, shape, dtype);
}

double max_rel_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  auto va = a.to_doubles(), vb = b.to_doubles();
  double m = 0.0;
  for (std::size_t i = 0; i < va.size(); ++i) m = std::max(m, difference(va[i], vb[i]) / (1.0 + std::abs(vb[i])));
  return m;
}

void check_f32_matches_f64(const std::function<Tensor(const Tensor&)>& fn, const Shape& shape, Generator& gen,
                           double rel) {
  Tensor x64 = randn(shape, gen, 0, 1, f64());
  auto y64 = fn(x64).to_doubles(), y32 = fn(x64.to(DType::f32)).to_doubles();
  REQUIRE(y64.size() == y32.size());
  for (std::size_t i = 0; i < y64.size(); ++i) CHECK(y32[i] == doctest::Approx(y64[i]).epsilon(rel));
}

}  // namespace tlk::testing

#include <limits>

#include "tlk/kernels/cpu/primitive_cache.h"
#include "tlk/kernels/cpu/same_layout.h"

namespace tlk::testing {

double rel_error(const Tensor& got, const Tensor& expected) {
  double scale = 1e-12;
  for (double v : expected.to_doubles()) scale = std::max(scale, std::abs(v));
  return max_abs_diff(got, expected) / scale;
}

BlockedFormat format_with_tag(const Shape& shape, dnnl::memory::format_tag tag) {
  return BlockedFormat(dnnl::memory::desc({shape.begin(), shape.end()}, dnnl::memory::data_type::f32, tag));
}

BlockedFormat channel_blocked(const Shape& shape, int block) {
  using tag = dnnl::memory::format_tag;
  return format_with_tag(shape, block == 8 ? tag::nCdhw8c : tag::nCdhw16c);
}

Tensor blocked(const Tensor& t, dnnl::memory::format_tag tag) { return t.to(format_with_tag(t.shape(), tag)); }

Tensor blocked(const Tensor& t, int block) { return t.to(channel_blocked(t.shape(), block)); }

Tensor LayoutCase::make(const Tensor& t) const { return block ? blocked(t, block) : t.to(layout); }

bool same_layout(const Tensor& t, const Tensor& like) {
  if (t.layout() != like.layout()) return false;
  return t.layout() != Layout::blocked || t.blocked_format() == like.blocked_format();
}

bool padding_is_zero(const Tensor& t) {
  if (t.layout() != Layout::blocked) return true;
  const auto& d = t.blocked_format().desc().data;
  const std::int64_t B = d.format_desc.blocking.inner_blks[0], Cp = d.padded_dims[1];
  const std::int64_t N = t.size(0), C = t.size(1), S = t.numel() / (N * C);
  const float* p = static_cast<const float*>(t.impl().storage->data());
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t c = C; c < Cp; ++c)
      for (std::int64_t s = 0; s < S; ++s)
        if (p[((n * (Cp / B) + c / B) * S + s) * B + c % B] != 0.0f) return false;
  return true;
}

void poison_cache(std::size_t nbytes) {
  std::vector<Tensor> blocks;
  for (int i = 0; i < 4; ++i)
    blocks.push_back(
        Tensor::full({static_cast<std::int64_t>(nbytes / sizeof(float))}, std::numeric_limits<double>::quiet_NaN()));
}

std::size_t storage_bytes(const Tensor& t) {
  return t.layout() == Layout::blocked ? t.blocked_format().nbytes() : t.numel() * sizeof(float);
}

void check_layout(const Tensor& out, const Tensor& in, bool one_voxel_may_be_plain) {
  if (one_voxel_may_be_plain) {
    const bool one_voxel = out.size(2) * out.size(3) * out.size(4) == 1 && in.layout() == Layout::channels_last;
    CHECK((out.layout() == in.layout() || (one_voxel && out.layout() == Layout::plain)));
  } else {
    CHECK(out.layout() == in.layout());
  }
  if (in.layout() != Layout::blocked) return;
  CHECK(out.blocked_format().name() == in.blocked_format().name());
  double raw = 0, logical = 0;  // the channel padding stays zero
  const float* p = kernels::cpu::raw_f32(out);
  for (std::int64_t i = 0; i < kernels::cpu::raw_size(out); ++i) raw += std::abs(p[i]);
  for (double v : out.to_doubles()) logical += std::abs(v);
  CHECK(raw == doctest::Approx(logical).epsilon(1e-6));
}

void check_steady_state(const std::function<void()>& run) {
  run();  // warm-up
  const auto reorders = reorder_stats().activations;
  const auto builds = kernels::cpu::PrimitiveCache::instance().stats().builds;
  run();
  CHECK(reorder_stats().activations == reorders);
  CHECK(kernels::cpu::PrimitiveCache::instance().stats().builds == builds);
}

void check_f32_layouts_match_f64(const std::function<std::vector<Tensor>(DType, Layout)>& run, double tol) {
  const auto expected = run(DType::f64, Layout::plain);
  for (Layout layout : {Layout::plain, Layout::channels_last, Layout::blocked}) {
    CAPTURE(layout_name(layout));
    const auto got = run(DType::f32, layout);
    for (std::size_t i = 0; i < got.size(); ++i) {
      CAPTURE(i);
      CHECK(rel_error(got[i], expected[i]) < tol);
    }
  }
}

}  // namespace tlk::testing

// ---- Synthetic raw dataset ---------------------------------------------------------------------------
#include "tlk/data/preprocess.h"
#include "tlk/data/raw_dataset.h"
#include "tlk/io/nifti.h"

namespace tlk::testing {

void write_synthetic_raw_dataset(const std::filesystem::path& dir, int cases, const std::array<std::int64_t, 3>& shape,
                                 std::uint64_t seed) {
  namespace fs = std::filesystem;
  fs::create_directories(dir / "imagesTr");
  fs::create_directories(dir / "labelsTr");
  data::DatasetJson info;
  info.name = "Synthetic";
  info.channel_names = {"CT"};
  info.labels = {{"background", 0}, {"kidney", 1}, {"tumor", 2}};
  info.num_training = cases;
  data::write_dataset_json(dir, info);
  Generator gen(seed);
  const auto [K, J, I] = shape;  // file tensor [dim3, dim2, dim1]
  for (int c = 0; c < cases; ++c) {
    Tensor image = Tensor::empty({K, J, I}, TensorOptions{}.with(DType::i32));
    Tensor labels = Tensor::zeros({K, J, I}, TensorOptions{}.with(DType::u8));
    std::int32_t* x = image.data<std::int32_t>();
    std::uint8_t* y = labels.data<std::uint8_t>();
    const double ck = K * gen.uniform(0.4, 0.6), cj = J * gen.uniform(0.35, 0.65), ci = I * gen.uniform(0.35, 0.65);
    const double rk = K * gen.uniform(0.2, 0.3), rj = J * gen.uniform(0.18, 0.28), ri = I * gen.uniform(0.18, 0.28);
    for (std::int64_t k = 0; k < K; ++k)
      for (std::int64_t j = 0; j < J; ++j)
        for (std::int64_t i = 0; i < I; ++i) {
          const double dk = (k - ck) / rk, dj = (j - cj) / rj, di = (i - ci) / ri;
          const double r2 = dk * dk + dj * dj + di * di;
          const std::int64_t v = (k * J + j) * I + i;
          std::uint8_t label = r2 < 1.0 ? (r2 < 0.25 && di > 0 ? 2 : 1) : 0;
          y[v] = label;
          const double hu = label == 1 ? 160.0 : label == 2 ? 60.0 : -80.0;
          x[v] = static_cast<std::int32_t>(std::lround(hu + 25.0 * gen.normal()));
        }
    io::NiftiImage img;
    img.data = image;
    img.dims = {I, J, K};
    img.spacing = {1.5, 1.5, 2.5};
    img.stored_type = io::NiftiType::i16;
    img.sform_code = 1;
    img.srow = {{{-1.5, 0, 0, 100.0}, {0, -1.5, 0, 80.0}, {0, 0, 2.5, -40.0}}};  // LPS storage
    const std::string id = fmt::format("case_{:03}", c);
    io::write_nifti(dir / "imagesTr" / (id + "_0000.nii.gz"), img);
    img.data = labels;
    img.stored_type = io::NiftiType::u8;
    io::write_nifti(dir / "labelsTr" / (id + ".nii.gz"), img);
  }
}

std::filesystem::path fresh_temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("tlk_test_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::filesystem::path make_adaptation_domains(const std::string& name) {
  const auto dir = fresh_temp_dir(name);
  write_synthetic_raw_dataset(dir / "raw_source", 3, {12, 20, 24}, 11);
  write_synthetic_raw_dataset(dir / "raw_target", 2, {10, 16, 20}, 12);
  std::filesystem::remove_all(dir / "raw_target" / "labelsTr");
  data::PreprocessOptions o;
  o.quiet = true;
  const data::PreprocessingPlan plan = data::preprocess_dataset(dir / "raw_source", dir / "source", o);
  o.norm_stats_from = dir / "source";
  o.spacing = plan.target_spacing;
  data::preprocess_dataset(dir / "raw_target", dir / "target", o);
  return dir;
}

data::ClassificationSplit bars(std::int64_t n, std::int64_t classes, std::uint64_t seed, int background) {
  Generator gen(seed);
  Tensor images = Tensor::zeros({n, 1, 16, 16}, TensorOptions{DType::u8});
  Tensor labels = Tensor::empty({n}, TensorOptions{DType::i64});
  for (std::int64_t i = 0; i < n; ++i) {
    const auto c = static_cast<std::int64_t>(i % classes);
    labels.data<std::int64_t>()[i] = c;
    std::uint8_t* img = images.data<std::uint8_t>() + i * 256;
    for (int p = 0; p < 256; ++p) img[p] = static_cast<std::uint8_t>(background + gen.below(60));
    const auto at = static_cast<int>(2 + gen.below(12));
    for (int k = 0; k < 16; ++k) {
      const int y = c == 0 ? at : k, x = c == 1 ? at : k;
      img[y * 16 + x] = 255;
      if (c != 2) img[(c == 0 ? y + 1 : y) * 16 + (c == 1 ? x + 1 : x)] = 255;
    }
  }
  return {"", images, labels};
}

std::string write_bars(const std::filesystem::path& dir, const std::string& name, std::int64_t n, std::int64_t classes,
                       std::uint64_t seed, int background) {
  const std::filesystem::path path = dir / (name + ".h5");
  data::write_classification_file(path, {bars(n, classes, seed, background)}, classes, name);
  return path.string();
}

std::string write_unlabelled(const std::filesystem::path& dir, std::int64_t n, std::uint64_t seed) {
  const std::filesystem::path path = dir / "target_images_only.h5";
  io::Hdf5File f = io::Hdf5File::create(path);
  f.write("images", bars(n, 2, seed, 70).images);
  f.flush();
  return path.string();
}

}  // namespace tlk::testing
