#include "test_util.h"

#include <cmath>

namespace tlk::testing {

Tensor random_leaf(const Shape& shape, Generator& gen, double low, double high) {
  Tensor t = rand(shape, gen, low, high, TensorOptions{DType::f64});
  t.set_requires_grad(true);
  return t;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  auto va = a.to_doubles(), vb = b.to_doubles();
  double m = 0.0;
  for (std::size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]));
  return m;
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
  for (std::size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]) / (1.0 + std::abs(vb[i])));
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
