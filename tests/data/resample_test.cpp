#include "tlk/data/resample.h"

#include <chrono>
#include <cmath>
#include <functional>
#include <set>

#include "test_util.h"

using namespace tlk;
using data::Interpolation;

namespace {

using Shape3 = std::array<std::int64_t, 3>;
constexpr std::array<Interpolation, 3> kNearest{Interpolation::nearest, Interpolation::nearest, Interpolation::nearest};
constexpr std::array<Interpolation, 3> kLinear{Interpolation::linear, Interpolation::linear, Interpolation::linear};
constexpr std::array<Interpolation, 3> kCubic{Interpolation::cubic, Interpolation::cubic, Interpolation::cubic};

// The input coordinate that output index o samples (Note [Resampling convention]).
double source_coordinate(std::int64_t o, std::int64_t in, std::int64_t out) {
  return (static_cast<double>(o) + 0.5) * static_cast<double>(in) / static_cast<double>(out) - 0.5;
}

// An f32 [1, D, H, W] volume with value f(z, y, x) at each index.
Tensor volume_of(const Shape3& s, const std::function<double(double, double, double)>& f) {
  Tensor t = Tensor::empty({1, s[0], s[1], s[2]});
  float* p = t.data<float>();
  for (std::int64_t z = 0; z < s[0]; ++z)
    for (std::int64_t y = 0; y < s[1]; ++y)
      for (std::int64_t x = 0; x < s[2]; ++x)
        p[(z * s[1] + y) * s[2] + x] =
            static_cast<float>(f(static_cast<double>(z), static_cast<double>(y), static_cast<double>(x)));
  return t;
}

// The largest |out - f(source coordinates)| over output voxels whose source lies at least `margin`
// inside the input on every axis.
double interior_error(const Tensor& out, const Shape3& in, const std::function<double(double, double, double)>& f,
                      double margin) {
  const Shape3 os{out.shape()[1], out.shape()[2], out.shape()[3]};
  const float* p = out.data<float>();
  double worst = 0;
  int counted = 0;
  for (std::int64_t z = 0; z < os[0]; ++z)
    for (std::int64_t y = 0; y < os[1]; ++y)
      for (std::int64_t x = 0; x < os[2]; ++x) {
        const double cz = source_coordinate(z, in[0], os[0]), cy = source_coordinate(y, in[1], os[1]),
                     cx = source_coordinate(x, in[2], os[2]);
        auto inside = [&](double c, std::int64_t n) { return c >= margin && c <= static_cast<double>(n - 1) - margin; };
        if (!inside(cz, in[0]) || !inside(cy, in[1]) || !inside(cx, in[2])) continue;
        worst = std::max(worst, std::abs(p[(z * os[1] + y) * os[2] + x] - f(cz, cy, cx)));
        ++counted;
      }
  REQUIRE(counted > 0);
  return worst;
}

std::int64_t count_label(const Tensor& labels, std::uint8_t label) {
  const std::uint8_t* p = labels.data<std::uint8_t>();
  std::int64_t n = 0;
  for (std::int64_t i = 0; i < labels.numel(); ++i) n += p[i] == label;
  return n;
}

}  // namespace

TEST_CASE("resample: shape_for_spacing rounds like nnUNet (numpy round, half to even)") {
  CHECK(data::shape_for_spacing({50, 512, 512}, {3, 0.7578, 0.7578}, {3, 1.5, 1.5}) == Shape3{50, 259, 259});
  CHECK(data::shape_for_spacing({34, 512, 512}, {5, 0.8301, 0.8301}, {1.5, 1.5, 1.5}) == Shape3{113, 283, 283});
  CHECK(data::shape_for_spacing({5, 7, 3}, {1, 1, 1}, {2, 2, 2}) == Shape3{2, 4, 2});  // 2.5, 3.5, 1.5
  CHECK(data::shape_for_spacing({1, 2, 3}, {1, 1, 1}, {10, 10, 10}) == Shape3{1, 1, 1});
  CHECK(data::shape_for_spacing({10, 20, 30}, {1, 2, 3}, {1, 2, 3}) == Shape3{10, 20, 30});
  CHECK_THROWS_AS(data::shape_for_spacing({1, 1, 1}, {0, 1, 1}, {1, 1, 1}), Error);
}

TEST_CASE("resample: the anisotropic axis is chosen as nnUNet's separate z") {
  CHECK(data::anisotropic_axis({5, 0.8, 0.8}, {1, 1, 1}) == 0);
  CHECK(data::anisotropic_axis({3, 0.8, 0.8}, {3, 0.8, 0.8}) == 0);                 // 3.75 > 3
  CHECK(data::anisotropic_axis({2.4, 0.8, 0.8}, {2.4, 0.8, 0.8}) == std::nullopt);  // exactly 3: not above
  CHECK(data::anisotropic_axis({1, 1, 1}, {4, 1, 1}) == 0);                         // from the new spacing
  CHECK(data::anisotropic_axis({0.8, 5, 0.8}, {1, 1, 1}) == 1);                     // any axis
  CHECK(data::anisotropic_axis({4, 4, 1}, {1, 1, 1}) == std::nullopt);              // two low-resolution axes
  CHECK(data::anisotropic_axis({1, 1, 1}, {1, 1, 1}) == std::nullopt);
  CHECK(data::anisotropic_axis({5, 0.8, 0.8}, {1, 1, 1}, 10.0) == std::nullopt);
  data::ResampleOptions opt;
  CHECK(data::axis_orders({5, 0.8, 0.8}, {3, 1, 1}, Interpolation::cubic, opt) ==
        std::array<Interpolation, 3>{Interpolation::nearest, Interpolation::cubic, Interpolation::cubic});
  CHECK(data::axis_orders({1, 1, 1}, {2, 2, 2}, Interpolation::linear, opt) == kLinear);
}

TEST_CASE("resample: a constant volume stays constant for every interpolation, up and down") {
  const Tensor c = Tensor::full({2, 7, 9, 11}, 3.25);
  for (const auto& orders : {kNearest, kLinear, kCubic})
    for (const Shape3& to : {Shape3{13, 20, 5}, Shape3{3, 4, 23}, Shape3{1, 1, 1}}) {
      const Tensor r = data::resize_image(c, to, orders);
      CHECK(r.shape() == Shape{2, to[0], to[1], to[2]});
      CHECK(testing::max_abs_diff(r, Tensor::full(r.shape(), 3.25)) < 1e-5);
    }
}

TEST_CASE("resample: linear is exact on a linear ramp inside the volume") {
  const Shape3 in{9, 12, 15};
  auto f = [](double z, double y, double x) { return 2.0 * z - 1.5 * y + 0.75 * x + 4.0; };
  const Tensor v = volume_of(in, f);
  for (const Shape3& to : {Shape3{17, 31, 8}, Shape3{5, 12, 29}}) {
    const Tensor r = data::resize_image(v, to, kLinear);
    CHECK(interior_error(r, in, f, 0.0) < 1e-4);
  }
}

TEST_CASE("resample: cubic (B-spline) reproduces cubic polynomials inside the volume") {
  const Shape3 in{26, 30, 40};
  auto f = [](double z, double y, double x) {
    const double u = x / 40 - 0.4, w = y / 30 - 0.5;
    return 2.0 * u * u * u - 0.5 * w * w + u * w + z / 26;
  };
  const Tensor v = volume_of(in, f);
  for (const Shape3& to : {Shape3{37, 45, 53}, Shape3{19, 21, 29}}) {
    const Tensor r = data::resize_image(v, to, kCubic);
    // The edge padding breaks the polynomial outside; its effect decays as 0.268^distance.
    CHECK(interior_error(r, in, f, 9.0) < 2e-5);
  }
  // The interpolant passes through the samples: an unchanged grid is reproduced exactly, and a
  // factor-3 upsampling hits every input sample (o = 3 i + 1).
  Generator gen(2);
  const Tensor noise = rand({1, 6, 7, 8}, gen, -1, 1);
  CHECK(testing::max_abs_diff(data::resize_image(noise, {6, 7, 8}, kCubic), noise) == 0.0);
  const Tensor up = data::resize_image(noise, {6, 7, 24}, kCubic);
  double worst = 0;
  for (std::int64_t i = 0; i < 6 * 7; ++i)
    for (std::int64_t x = 0; x < 8; ++x)
      worst = std::max(
          worst, static_cast<double>(std::abs(up.data<float>()[i * 24 + 3 * x + 1] - noise.data<float>()[i * 8 + x])));
  CHECK(worst < 1e-5);
}

TEST_CASE("resample: upsampling then downsampling by an integer factor recovers the input") {
  Generator gen(4);
  const Shape3 in{12, 16, 20};
  auto smooth = [](double z, double y, double x) {
    return std::sin(2 * M_PI * z / 16) * std::cos(2 * M_PI * y / 20) + x / 30;
  };
  const Tensor v = volume_of(in, smooth);
  const Tensor noise = rand({1, 12, 16, 20}, gen, -1, 1);
  // Nearest: exact for any volume (output 2o + 1 of the upsampled grid is input o).
  CHECK(testing::max_abs_diff(data::resize_image(data::resize_image(noise, {24, 32, 40}, kNearest), in, kNearest),
                              noise) == 0.0);
  CHECK(testing::max_abs_diff(data::resize_image(data::resize_image(noise, {36, 48, 60}, kNearest), in, kNearest),
                              noise) == 0.0);
  const double linear =
      testing::max_abs_diff(data::resize_image(data::resize_image(v, {24, 32, 40}, kLinear), in, kLinear), v);
  const double cubic =
      testing::max_abs_diff(data::resize_image(data::resize_image(v, {24, 32, 40}, kCubic), in, kCubic), v);
  MESSAGE("up x2 then down x2 on a smooth volume: max error linear " << linear << ", cubic " << cubic);
  CHECK(linear < 0.08);  // linear smooths: error ~ second difference / 8
  CHECK(cubic < 0.005);
  CHECK(cubic < linear);
}

TEST_CASE("resample: clipping keeps cubic inside the input range") {
  Tensor step = Tensor::zeros({1, 1, 1, 16});
  for (int x = 8; x < 16; ++x) step.data<float>()[x] = 1.0f;
  const Tensor raw = data::resize_image(step, {1, 1, 37}, kCubic, false);
  const Tensor clipped = data::resize_image(step, {1, 1, 37}, kCubic, true);
  const auto r = raw.to_doubles(), c = clipped.to_doubles();
  CHECK(*std::max_element(r.begin(), r.end()) > 1.01);  // the spline overshoots at a step
  CHECK(*std::min_element(r.begin(), r.end()) < -0.01);
  CHECK(*std::max_element(c.begin(), c.end()) == 1.0);
  CHECK(*std::min_element(c.begin(), c.end()) == 0.0);
}

TEST_CASE("resample: labels keep only labels that exist, nearest and linear on one-hot") {
  Generator gen(8);
  Tensor l = Tensor::empty({10, 12, 14}, TensorOptions{DType::u8});
  const std::uint8_t values[3] = {0, 3, 7};
  for (std::int64_t i = 0; i < l.numel(); ++i) l.data<std::uint8_t>()[i] = values[gen.below(3)];
  for (const auto& orders : {kNearest, kLinear})
    for (const Shape3& to : {Shape3{23, 7, 31}, Shape3{5, 25, 9}}) {
      const Tensor r = data::resize_labels(l, to, orders);
      CHECK(r.dtype() == DType::u8);
      CHECK(r.shape() == Shape{to[0], to[1], to[2]});
      std::set<int> seen;
      for (std::int64_t i = 0; i < r.numel(); ++i) seen.insert(r.data<std::uint8_t>()[i]);
      CHECK(seen == std::set<int>{0, 3, 7});
    }
  // Nearest up x2 then down x2 is exact for labels too.
  CHECK(testing::max_abs_diff(
            data::resize_labels(data::resize_labels(l, {20, 24, 28}, kNearest), {10, 12, 14}, kNearest), l) == 0.0);
}

TEST_CASE("resample: linear on one-hot equals thresholding the interpolated indicator, and keeps a sphere's volume") {
  const Shape3 in{40, 40, 40};
  Tensor l = Tensor::zeros({40, 40, 40}, TensorOptions{DType::u8});
  std::uint8_t* p = l.data<std::uint8_t>();
  const double r0 = 12.0;
  for (std::int64_t z = 0; z < 40; ++z)
    for (std::int64_t y = 0; y < 40; ++y)
      for (std::int64_t x = 0; x < 40; ++x) {
        const double d = std::hypot(z - 19.5, y - 18.7, x - 20.2);
        p[(z * 40 + y) * 40 + x] = d < r0 ? 1 : 0;
      }
  const double in_volume = static_cast<double>(count_label(l, 1));
  Tensor indicator = l.to(DType::f32).reshape({1, 40, 40, 40});
  for (const Shape3& to : {Shape3{27, 27, 27}, Shape3{17, 23, 31}, Shape3{71, 71, 71}}) {
    CAPTURE(to[0]);
    const Tensor r = data::resize_labels(l, to, kLinear);
    const Tensor prob = data::resize_image(indicator, to, kLinear);
    std::int64_t disagree = 0;
    const float* pp = prob.data<float>();
    const std::uint8_t* rp = r.data<std::uint8_t>();
    for (std::int64_t i = 0; i < r.numel(); ++i)
      if (std::abs(pp[i] - 0.5f) > 1e-4f) disagree += (pp[i] > 0.5f) != (rp[i] == 1);
    CHECK(disagree == 0);
    // Volume in input voxel units.
    const double scale = static_cast<double>(in[0] * in[1] * in[2]) / static_cast<double>(to[0] * to[1] * to[2]);
    const double out_volume = static_cast<double>(count_label(r, 1)) * scale;
    CHECK(std::abs(out_volume / in_volume - 1.0) < 0.03);
  }
}

TEST_CASE("resample: anisotropic volumes go nearest along the low-resolution axis") {
  Generator gen(9);
  const Tensor v = rand({2, 6, 10, 10}, gen, 0, 1);
  const std::array<double, 3> old_spacing{5, 1, 1}, new_spacing{2.5, 1, 1};
  const Shape3 to = data::shape_for_spacing({6, 10, 10}, old_spacing, new_spacing);
  REQUIRE(to == Shape3{12, 10, 10});
  const Tensor r = data::resample_image(v, to, old_spacing, new_spacing);
  // Output slice o is input slice round((o + 0.5) / 2 - 0.5), copied exactly (in-plane unchanged).
  for (std::int64_t o = 0; o < 12; ++o) {
    const std::int64_t src = static_cast<std::int64_t>(std::floor((static_cast<double>(o) + 0.5) / 2.0));
    CHECK(testing::max_abs_diff(r.narrow(1, o, 1), v.narrow(1, src, 1)) == 0.0);
  }
  // With the separate axis switched off, the slices are interpolated instead.
  data::ResampleOptions iso;
  iso.anisotropy_threshold = 100;
  const Tensor s = data::resample_image(v, to, old_spacing, new_spacing, iso);
  CHECK(testing::max_abs_diff(s.narrow(1, 1, 1), v.narrow(1, 0, 1)) > 0.01);
  // Labels: in-plane linear on one-hot, z nearest -> every output slice of an upsampled-in-z map
  // equals the in-plane resize of its nearest input slice.
  Tensor l = Tensor::empty({6, 10, 10}, TensorOptions{DType::u8});
  for (std::int64_t i = 0; i < l.numel(); ++i) l.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(gen.below(2));
  const Tensor lr = data::resample_labels(l, {12, 15, 15}, {5, 1, 1}, {2.5, 0.667, 0.667});
  const Tensor plane = data::resize_labels(l, {6, 15, 15}, kLinear);
  for (std::int64_t o = 0; o < 12; ++o)
    CHECK(testing::max_abs_diff(lr.narrow(0, o, 1), plane.narrow(0, o / 2, 1)) == 0.0);
}

TEST_CASE("resample: bad inputs are clear errors") {
  CHECK_THROWS_WITH_AS(data::resize_labels(Tensor::zeros({4, 4, 4}, TensorOptions{DType::u8}), {2, 2, 2}, kCubic),
                       doctest::Contains("nearest or linear"), Error);
  CHECK_THROWS_WITH_AS(data::resize_labels(Tensor::zeros({4, 4, 4}), {2, 2, 2}, kLinear), doctest::Contains("u8"),
                       Error);
  CHECK_THROWS_WITH_AS(data::resize_image(Tensor::zeros({4, 4, 4}, TensorOptions{DType::u8}), {2, 2, 2}, kLinear),
                       doctest::Contains("f32"), Error);
  CHECK_THROWS_WITH_AS(data::resize_image(Tensor::zeros({1, 4, 4, 4}), {0, 2, 2}, kLinear),
                       doctest::Contains("at least 1"), Error);
}

TEST_SUITE("slow") {
  TEST_CASE("resample: a 100x512x512 CT-sized volume resamples in reasonable time") {
    Generator gen(1);
    const Tensor ct = rand({1, 100, 512, 512}, gen, -1000, 1000);
    Tensor labels = Tensor::zeros({100, 512, 512}, TensorOptions{DType::u8});
    labels.narrow(0, 20, 50).narrow(1, 100, 200).narrow(2, 150, 200).fill_(1);
    const std::array<double, 3> old_spacing{3, 0.78, 0.78}, new_spacing{3, 1.5, 1.5};
    const Shape3 to = data::shape_for_spacing({100, 512, 512}, old_spacing, new_spacing);
    auto t0 = std::chrono::steady_clock::now();
    const Tensor small = data::resample_image(ct, to, old_spacing, new_spacing);
    auto t1 = std::chrono::steady_clock::now();
    const Tensor big = data::resample_image(small, {100, 512, 512}, new_spacing, old_spacing);
    auto t2 = std::chrono::steady_clock::now();
    const Tensor ls = data::resample_labels(labels, to, old_spacing, new_spacing);
    const Tensor lb = data::resample_labels(ls, {100, 512, 512}, new_spacing, old_spacing);
    auto t3 = std::chrono::steady_clock::now();
    auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    MESSAGE("cubic image down " << ms(t0, t1) << " ms, up " << ms(t1, t2) << " ms; labels down+up " << ms(t2, t3)
                                << " ms");
    CHECK(big.shape() == ct.shape());
    const double kept = static_cast<double>(count_label(lb, 1)) / static_cast<double>(count_label(labels, 1));
    CHECK(std::abs(kept - 1.0) < 0.02);  // a box survives the round trip
    CHECK(ms(t0, t3) < 20000);
  }
}
