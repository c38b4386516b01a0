// Tests for nnUNet-style patch augmentation (tlk/data/augment.h, spatial_transform.h,
// intensity_transforms.h).
#include "tlk/data/augment.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "test_util.h"

using namespace tlk;
using namespace tlk::data;
using testing::bit_identical;

namespace {

Tensor random_image(std::int64_t c, Extent3 e, Generator& gen, double low = -1.0, double high = 1.0) {
  return tlk::rand({c, e[0], e[1], e[2]}, gen, low, high);
}

Tensor random_labels(Extent3 e, Generator& gen, const std::vector<std::uint8_t>& values) {
  return testing::random_labels({e[0], e[1], e[2]}, gen, values);
}

/// Every transform forced on, so that each code path draws and acts.
AugmentOptions all_forced() { return AugmentOptions::all(1.0); }

/// The reference centre crop: starts at floor((in - out) / 2), zero outside.
Tensor reference_crop(const Tensor& t, Extent3 out) {
  const bool labels = t.dim() == 3;
  const std::int64_t c = labels ? 1 : t.size(0);
  const int o = labels ? 0 : 1;
  const Extent3 in{t.size(o), t.size(o + 1), t.size(o + 2)};
  std::vector<double> src = t.to_doubles(), dst;
  for (std::int64_t ch = 0; ch < c; ++ch)
    for (std::int64_t z = 0; z < out[0]; ++z)
      for (std::int64_t y = 0; y < out[1]; ++y)
        for (std::int64_t x = 0; x < out[2]; ++x) {
          const std::int64_t sz = z + static_cast<std::int64_t>(std::floor((in[0] - out[0]) / 2.0));
          const std::int64_t sy = y + static_cast<std::int64_t>(std::floor((in[1] - out[1]) / 2.0));
          const std::int64_t sx = x + static_cast<std::int64_t>(std::floor((in[2] - out[2]) / 2.0));
          const bool inside = sz >= 0 && sz < in[0] && sy >= 0 && sy < in[1] && sx >= 0 && sx < in[2];
          dst.push_back(inside ? src[static_cast<std::size_t>(((ch * in[0] + sz) * in[1] + sy) * in[2] + sx)] : 0.0);
        }
  return labels ? Tensor::from_doubles(dst, {out[0], out[1], out[2]}, DType::u8)
                : Tensor::from_doubles(dst, {c, out[0], out[1], out[2]}, DType::f32);
}

struct Moments {
  double mean = 0, var = 0;
};
Moments moments(const Tensor& t, std::int64_t channel = -1) {
  std::vector<double> v = t.to_doubles();
  std::size_t begin = 0, end = v.size();
  if (channel >= 0) {
    const std::size_t n = v.size() / static_cast<std::size_t>(t.size(0));
    begin = n * static_cast<std::size_t>(channel);
    end = begin + n;
  }
  Moments m;
  for (std::size_t i = begin; i < end; ++i) m.mean += v[i];
  m.mean /= static_cast<double>(end - begin);
  for (std::size_t i = begin; i < end; ++i) m.var += (v[i] - m.mean) * (v[i] - m.mean);
  m.var /= static_cast<double>(end - begin);
  return m;
}

float at(const Tensor& image, std::int64_t c, std::int64_t z, std::int64_t y, std::int64_t x) {
  return image.data<float>()[((c * image.size(1) + z) * image.size(2) + y) * image.size(3) + x];
}
std::uint8_t label_at(const Tensor& labels, std::int64_t z, std::int64_t y, std::int64_t x) {
  return labels.data<std::uint8_t>()[(z * labels.size(1) + y) * labels.size(2) + x];
}

/// A zero image [1, e] and zero labels with one marker voxel (image 1, label 7).
AugmentedPatch marker_patch(Extent3 e, Extent3 marker) {
  AugmentedPatch p{Tensor::zeros({1, e[0], e[1], e[2]}),
                   Tensor::zeros({e[0], e[1], e[2]}, TensorOptions{}.with(DType::u8))};
  p.image.data<float>()[(marker[0] * e[1] + marker[1]) * e[2] + marker[2]] = 1.0f;
  p.labels.data<std::uint8_t>()[(marker[0] * e[1] + marker[1]) * e[2] + marker[2]] = 7;
  return p;
}

std::int64_t count_nonzero(const Tensor& t) {
  std::int64_t n = 0;
  for (double v : t.to_doubles()) n += v != 0.0;
  return n;
}

}  // namespace

TEST_CASE("augment: the same seed gives bit-identical output, another seed a different one") {
  Generator data_gen(1);
  const Tensor image = random_image(2, {30, 28, 26}, data_gen);
  const Tensor labels = random_labels({30, 28, 26}, data_gen, {0, 1, 2});
  for (AugmentOptions opt : {all_forced(), AugmentOptions{}}) {
    for (std::uint64_t seed : {3u, 11u, 12u, 29u}) {
      opt.num_threads = 1;
      Generator g1(seed);
      const AugmentedPatch a = augment_patch(image, labels, {16, 16, 16}, opt, g1);
      opt.num_threads = 2;
      Generator g2(seed);
      const AugmentedPatch b = augment_patch(image, labels, {16, 16, 16}, opt, g2);
      CHECK(bit_identical(a.image, b.image));
      CHECK(bit_identical(a.labels, b.labels));
      CHECK(g1.next_u64() == g2.next_u64());  // the same number of draws
    }
  }
  const AugmentOptions opt = all_forced();
  Generator g1(5), g2(6);
  const AugmentedPatch a = augment_patch(image, labels, {16, 16, 16}, opt, g1);
  const AugmentedPatch b = augment_patch(image, labels, {16, 16, 16}, opt, g2);
  CHECK_FALSE(bit_identical(a.image, b.image));
  CHECK_FALSE(bit_identical(a.labels, b.labels));
}

TEST_CASE("augment: with every transform disabled the output is the centre crop") {
  Generator gen(2);
  const Tensor image = random_image(2, {21, 19, 30}, gen);
  const Tensor labels = random_labels({21, 19, 30}, gen, {0, 3, 4});
  for (Extent3 out : {Extent3{12, 12, 12}, Extent3{24, 19, 29}, Extent3{21, 19, 30}}) {
    const AugmentedPatch p = augment_patch(image, labels, out, AugmentOptions::none(), gen);
    CHECK(p.image.shape() == Shape({2, out[0], out[1], out[2]}));
    CHECK(bit_identical(p.image, reference_crop(image, out)));
    CHECK(bit_identical(p.labels, reference_crop(labels, out)));
    // A rotation by 0 degrees goes through the sampler and must give the same crop exactly.
    AugmentOptions zero = AugmentOptions::none();
    zero.rotation.probability = 1;
    zero.rotation.angle_range_deg = {{{0, 0}, {0, 0}, {0, 0}}};
    const AugmentedPatch q = augment_patch(image, labels, out, zero, gen);
    CHECK(bit_identical(q.image, p.image));
    CHECK(bit_identical(q.labels, p.labels));
  }
  // The inputs are left alone.
  Generator again(2);
  CHECK(bit_identical(image, random_image(2, {21, 19, 30}, again)));
}

TEST_CASE("augment: mirroring flips image and labels together") {
  const AugmentedPatch in = marker_patch({9, 10, 11}, {2, 3, 4});
  Generator gen(0);
  AugmentOptions opt = AugmentOptions::none();
  opt.mirror.probability_per_axis = {0, 0, 1};
  AugmentedPatch p = augment_patch(in.image, in.labels, {9, 10, 11}, opt, gen);
  CHECK(at(p.image, 0, 2, 3, 6) == 1.0f);
  CHECK(label_at(p.labels, 2, 3, 6) == 7);
  CHECK(count_nonzero(p.image) == 1);
  CHECK(count_nonzero(p.labels) == 1);
  opt.mirror.probability_per_axis = {1, 1, 1};
  p = augment_patch(in.image, in.labels, {9, 10, 11}, opt, gen);
  CHECK(at(p.image, 0, 6, 6, 6) == 1.0f);
  CHECK(label_at(p.labels, 6, 6, 6) == 7);
  CHECK(count_nonzero(p.labels) == 1);
  // Default mirroring flips each axis about half the time.
  std::array<int, 3> flips{};
  Generator g(9);
  for (int i = 0; i < 400; ++i) {
    const std::array<bool, 3> axes = draw_mirror(MirrorOptions{}, g);
    for (std::size_t a = 0; a < 3; ++a) flips[a] += axes[a];
  }
  for (int f : flips) CHECK((f > 150 && f < 250));
}

TEST_CASE("augment: a forced 90-degree rotation moves a marker voxel as documented") {
  // Output voxel q reads the input at c + R q (R = R0 or R1 of rotation_scale_matrix), c = (10, 10, 10).
  const AugmentedPatch in = marker_patch({21, 21, 21}, {11, 12, 13});  // offset (1, 2, 3)
  struct Case {
    int axis;
    Extent3 expected;
  };
  // About axis 0: input (dh, dw) = (-qw, qh) -> q = (1, 3, -2). About axis 1: (dd, dw) = (qw, -qd) -> q = (-3, 2, 1).
  for (const Case& cs : {Case{0, {11, 13, 8}}, Case{1, {7, 12, 11}}}) {
    AugmentOptions opt = AugmentOptions::none();
    opt.rotation.probability = 1;
    opt.rotation.angle_range_deg = {{{0, 0}, {0, 0}, {0, 0}}};
    opt.rotation.angle_range_deg[static_cast<std::size_t>(cs.axis)] = {90, 90};
    Generator gen(4);
    const AugmentedPatch p = augment_patch(in.image, in.labels, {21, 21, 21}, opt, gen);
    CHECK(at(p.image, 0, cs.expected[0], cs.expected[1], cs.expected[2]) == doctest::Approx(1.0).epsilon(1e-6));
    CHECK(label_at(p.labels, cs.expected[0], cs.expected[1], cs.expected[2]) == 7);
    CHECK(count_nonzero(p.labels) == 1);
    double total = 0;
    for (double v : p.image.to_doubles()) total += std::abs(v);
    CHECK(total == doctest::Approx(1.0).epsilon(1e-5));
  }
}

TEST_CASE("augment: scaling keeps the patch centre fixed and scales offsets from it") {
  // Input 41^3 (centre 20), output 21^3 (centre 10): output q reads input 20 + s (q - 10).
  for (double s : {2.0, 0.5}) {
    const Extent3 marker = s > 1 ? Extent3{20, 20, 24} : Extent3{20, 20, 22};
    const Extent3 expected = s > 1 ? Extent3{10, 10, 12} : Extent3{10, 10, 14};
    AugmentedPatch in = marker_patch({41, 41, 41}, marker);
    in.image.data<float>()[(20 * 41 + 20) * 41 + 20] = 3.0f;  // the centre
    in.labels.data<std::uint8_t>()[(20 * 41 + 20) * 41 + 20] = 5;
    AugmentOptions opt = AugmentOptions::none();
    opt.scaling.probability = 1;
    opt.scaling.range = {s, s};
    Generator gen(8);
    const AugmentedPatch p = augment_patch(in.image, in.labels, {21, 21, 21}, opt, gen);
    CHECK(at(p.image, 0, 10, 10, 10) == doctest::Approx(3.0));
    CHECK(label_at(p.labels, 10, 10, 10) == 5);
    CHECK(at(p.image, 0, expected[0], expected[1], expected[2]) == doctest::Approx(1.0));
    CHECK(label_at(p.labels, expected[0], expected[1], expected[2]) == 7);
  }
}

TEST_CASE("augment: labels after a spatial transform come from the input only") {
  AugmentOptions opt = AugmentOptions::none();
  opt.rotation.probability = 1;
  opt.rotation.angle_range_deg = {{{-30, 30}, {0, 0}, {0, 0}}};
  opt.scaling.probability = 1;
  const Extent3 out{24, 24, 24};
  // nnUNet's get_patch_size grows only H for a rotation about axis 0 (Note [Enlarged patch size]), so load a
  // region that surely holds every sampling point: 1.4 * 12 * (cos 30 + sin 30) < 23 voxels from the centre.
  CHECK(enlarged_patch_size(out, opt) == Extent3{34, 46, 34});
  const Extent3 load{34, 48, 48};
  Generator gen(12);
  const Tensor image = random_image(1, load, gen);
  const Tensor labels = random_labels(load, gen, {2, 5, 9});
  std::set<double> seen;
  for (int i = 0; i < 12; ++i) {
    const AugmentedPatch p = augment_patch(image, labels, out, opt, gen);
    for (double v : p.labels.to_doubles()) seen.insert(v);
  }
  CHECK(seen == std::set<double>{2, 5, 9});  // no 0 from outside the loaded region either
}

TEST_CASE("augment: enlarged_patch_size follows nnUNet's get_patch_size") {
  const Extent3 patch{128, 128, 128};
  CHECK(enlarged_patch_size(patch, AugmentOptions{}) == Extent3{249, 249, 249});
  CHECK(enlarged_patch_size(patch, AugmentOptions::none()) == patch);
  AugmentOptions rot_only = AugmentOptions::none();
  rot_only.rotation.probability = 0.2;
  CHECK(enlarged_patch_size(patch, rot_only) == Extent3{174, 174, 174});
  rot_only.rotation.angle_range_deg = {{{-15, 15}, {-15, 15}, {-15, 15}}};
  CHECK(enlarged_patch_size(patch, rot_only) == Extent3{156, 156, 156});  // 128 (cos 15 + sin 15)
  AugmentOptions scale_only = AugmentOptions::none();
  scale_only.scaling.probability = 0.2;
  CHECK(enlarged_patch_size(patch, scale_only) == Extent3{182, 182, 182});  // 128 / 0.7
  // Dummy 2D: axis 0 untouched, in-plane rotation clamped to 90 degrees (nnUNet).
  CHECK(uses_dummy_2d({20, 320, 256}));
  CHECK_FALSE(uses_dummy_2d({64, 160, 160}));
  CHECK(enlarged_patch_size({20, 320, 256}, dummy_2d_augment_options()) == Extent3{20, 457, 457});
}

TEST_CASE("augment: dummy 2D keeps every output voxel in its own axial slice") {
  Generator gen(21);
  const Extent3 out{6, 24, 24};
  const AugmentOptions opt_base = dummy_2d_augment_options();
  const Extent3 load = enlarged_patch_size(out, opt_base);
  // Label = slice index + 1: after the spatial transform each output slice must still hold only its own.
  Tensor labels = Tensor::empty({load[0], load[1], load[2]}, TensorOptions{}.with(DType::u8));
  for (std::int64_t i = 0; i < labels.numel(); ++i)
    labels.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(i / (load[1] * load[2]) + 1);
  AugmentOptions opt = AugmentOptions::none();
  opt.rotation = opt_base.rotation;
  opt.rotation.probability = 1;
  opt.scaling = opt_base.scaling;
  opt.scaling.probability = 1;
  const AugmentedPatch p = augment_patch(random_image(1, load, gen), labels, out, opt, gen);
  const std::vector<double> v = p.labels.to_doubles();
  const std::int64_t plane = out[1] * out[2];
  for (std::int64_t z = 0; z < out[0]; ++z) {
    const double own = static_cast<double>(z + 1 + (load[0] - out[0]) / 2);
    bool only_own = true;
    for (std::int64_t i = 0; i < plane; ++i) {
      const double l = v[static_cast<std::size_t>(z * plane + i)];
      only_own = only_own && (l == own || l == 0.0);
    }
    CHECK(only_own);
    CHECK(v[static_cast<std::size_t>(z * plane + 12 * out[2] + 12)] == own);
  }
}

TEST_CASE("augment: unlabelled patches and bad arguments") {
  Generator gen(3);
  const Tensor image = random_image(1, {20, 20, 20}, gen);
  const AugmentedPatch p = augment_patch(image, Tensor(), {16, 16, 16}, all_forced(), gen);
  CHECK(p.image.shape() == Shape({1, 16, 16, 16}));
  CHECK_FALSE(p.labels.defined());
  CHECK_THROWS_AS(augment_patch(image, Tensor::zeros({20, 20, 19}, TensorOptions{}.with(DType::u8)), {16, 16, 16},
                                AugmentOptions{}, gen),
                  Error);
  CHECK_THROWS_AS(augment_patch(image, Tensor::zeros({20, 20, 20}), {16, 16, 16}, AugmentOptions{}, gen), Error);
  CHECK_THROWS_AS(augment_patch(Tensor::zeros({20, 20, 20}), Tensor(), {16, 16, 16}, AugmentOptions{}, gen), Error);
  CHECK_THROWS_AS(augment_patch(image, Tensor(), {16, 0, 16}, AugmentOptions{}, gen), Error);
}

TEST_CASE("augment: brightness multiplies each channel's mean by a factor in range") {
  Generator gen(4);
  for (int i = 0; i < 8; ++i) {
    Tensor image = random_image(2, {8, 8, 8}, gen, 1.0, 2.0);
    const Moments m0 = moments(image, 0), m1 = moments(image, 1);
    CHECK(brightness_(image, BrightnessOptions{.probability = 1}, gen));
    const double r0 = moments(image, 0).mean / m0.mean, r1 = moments(image, 1).mean / m1.mean;
    CHECK((r0 >= 0.75 - 1e-6 && r0 <= 1.25 + 1e-6));
    CHECK((r1 >= 0.75 - 1e-6 && r1 <= 1.25 + 1e-6));
  }
  Tensor image = random_image(1, {8, 8, 8}, gen, 1.0, 2.0);
  const double mean = moments(image).mean;
  brightness_(image, BrightnessOptions{.probability = 1, .multiplier_range = {1.2, 1.2}}, gen);
  CHECK(moments(image).mean == doctest::Approx(1.2 * mean).epsilon(1e-6));
  CHECK_FALSE(brightness_(image, BrightnessOptions{.probability = 0}, gen));
}

TEST_CASE("augment: gamma with retained statistics keeps mean and standard deviation") {
  for (bool invert : {false, true}) {
    for (double g : {0.7, 1.5}) {
      Generator gen(5);
      Tensor image = random_image(2, {10, 10, 10}, gen, -1.0, 3.0);
      const Tensor before = image.clone();
      CHECK(gamma_(image, GammaOptions{.probability = 1, .gamma_range = {g, g}, .invert_image = invert}, gen));
      for (std::int64_t c = 0; c < 2; ++c) {
        CHECK(moments(image, c).mean == doctest::Approx(moments(before, c).mean).epsilon(1e-4));
        CHECK(moments(image, c).var == doctest::Approx(moments(before, c).var).epsilon(1e-4));
      }
      CHECK(testing::max_abs_diff(image, before) > 0.05);  // it did change the values
    }
  }
}

TEST_CASE("augment: Gaussian noise adds a variance sigma^2 with sigma in range") {
  Generator gen(6);
  for (int i = 0; i < 6; ++i) {
    Tensor image = Tensor::zeros({1, 24, 24, 24});
    CHECK(gaussian_noise_(image, GaussianNoiseOptions{.probability = 1}, gen));
    CHECK(moments(image).var <= 0.01 * 1.05);
  }
  Tensor image = Tensor::zeros({2, 24, 24, 24});
  gaussian_noise_(image, GaussianNoiseOptions{.probability = 1, .sigma_range = {0.05, 0.05}}, gen);
  for (std::int64_t c = 0; c < 2; ++c) {
    CHECK(moments(image, c).var == doctest::Approx(0.0025).epsilon(0.05));
    CHECK(std::abs(moments(image, c).mean) < 0.002);
  }
  CHECK(testing::max_abs_diff(image.narrow(0, 0, 1).contiguous(), image.narrow(0, 1, 1).contiguous()) > 0.01);
}

TEST_CASE("augment: Gaussian blur reduces the variance of white noise and keeps constants") {
  Generator gen(7);
  Tensor image = randn({1, 20, 20, 20}, gen);
  const Moments before = moments(image);
  CHECK(gaussian_blur_(image, GaussianBlurOptions{.probability = 1, .probability_per_channel = 1}, gen));
  const Moments after = moments(image);
  CHECK(after.var < 0.5 * before.var);
  CHECK(std::abs(after.mean - before.mean) < 0.02);
  Tensor constant = Tensor::full({1, 6, 7, 8}, 2.5);
  gaussian_blur_(constant, GaussianBlurOptions{.probability = 1, .probability_per_channel = 1}, gen);
  CHECK(testing::max_abs_diff(constant, Tensor::full({1, 6, 7, 8}, 2.5)) < 1e-6);
  // probability_per_channel 0: the per-sample draw fires but no channel changes.
  Tensor untouched = randn({2, 5, 5, 5}, gen);
  const Tensor copy = untouched.clone();
  gaussian_blur_(untouched, GaussianBlurOptions{.probability = 1, .probability_per_channel = 0}, gen);
  CHECK(bit_identical(untouched, copy));
}

TEST_CASE("augment: contrast keeps the mean and scales deviations, within the original range") {
  Generator gen(8);
  Tensor image = random_image(2, {10, 10, 10}, gen, 0.0, 4.0);
  const Tensor before = image.clone();
  CHECK(contrast_(image, ContrastOptions{.probability = 1, .factor_range = {0.8, 0.8}}, gen));
  for (std::int64_t c = 0; c < 2; ++c) {
    CHECK(moments(image, c).mean == doctest::Approx(moments(before, c).mean).epsilon(1e-5));
    CHECK(std::sqrt(moments(image, c).var) == doctest::Approx(0.8 * std::sqrt(moments(before, c).var)).epsilon(1e-4));
  }
  image = before.clone();
  contrast_(image, ContrastOptions{.probability = 1, .factor_range = {1.25, 1.25}}, gen);
  std::vector<double> a = image.to_doubles(), b = before.to_doubles();
  CHECK(*std::min_element(a.begin(), a.end()) >= *std::min_element(b.begin(), b.end()));
  CHECK(*std::max_element(a.begin(), a.end()) <= *std::max_element(b.begin(), b.end()));
  CHECK(moments(image).var > moments(before).var);
}

TEST_CASE("augment: low-resolution simulation smooths noise and keeps constants and range") {
  Generator gen(9);
  const LowResolutionOptions opt{.probability = 1, .probability_per_channel = 1, .zoom_range = {0.5, 0.5}};
  Tensor image = randn({1, 16, 16, 16}, gen);
  const Tensor before = image.clone();
  CHECK(low_resolution_(image, opt, gen));
  std::vector<double> a = image.to_doubles(), b = before.to_doubles();
  CHECK(*std::min_element(a.begin(), a.end()) >= *std::min_element(b.begin(), b.end()) - 1e-6);
  CHECK(*std::max_element(a.begin(), a.end()) <= *std::max_element(b.begin(), b.end()) + 1e-6);
  CHECK(moments(image).var < 0.8 * moments(before).var);
  // A volume constant in pairs of z-slices (0, 0, 1, 1, 2, 2, 3, 3): nearest-exact keeps slices 1, 3, 5, 7, and
  // trilinear up-sampling with half-pixel centres clamps at the borders, so the first and last slices survive.
  Tensor blocks = Tensor::empty({1, 8, 8, 8});
  for (std::int64_t i = 0; i < 512; ++i) blocks.data<float>()[i] = static_cast<float>((i / 64) / 2);
  low_resolution_(blocks, opt, gen);
  CHECK(at(blocks, 0, 0, 3, 3) == doctest::Approx(0.0));
  CHECK(at(blocks, 0, 7, 3, 3) == doctest::Approx(3.0));
  // In-plane only: a volume that varies along z alone is unchanged.
  LowResolutionOptions in_plane = opt;
  in_plane.ignore_axis0 = true;
  Tensor z_ramp = Tensor::empty({1, 8, 8, 8});
  for (std::int64_t i = 0; i < 512; ++i) z_ramp.data<float>()[i] = static_cast<float>(i / 64);
  const Tensor ramp_before = z_ramp.clone();
  low_resolution_(z_ramp, in_plane, gen);
  CHECK(testing::max_abs_diff(z_ramp, ramp_before) < 1e-6);
}

// Not run by default (no timing assertions): `test_data -tc="augment: timing*" --no-skip`.
TEST_CASE("augment: timing of a 1x128^3 patch" * doctest::skip()) {
  Generator gen(10);
  AugmentOptions opt;
  opt.num_threads = 2;
  const Extent3 out{128, 128, 128};
  const Extent3 load = enlarged_patch_size(out, opt);
  const Tensor image = randn({1, load[0], load[1], load[2]}, gen);
  const Tensor labels = random_labels(load, gen, {0, 1, 2});
  for (const std::string name : {"defaults", "all forced"}) {
    AugmentOptions o = name == "defaults" ? opt : all_forced();
    o.num_threads = 2;
    const int runs = 40;
    const auto t0 = std::chrono::steady_clock::now();
    const std::clock_t c0 = std::clock();
    for (int i = 0; i < runs; ++i) augment_patch(image, labels, out, o, gen);
    const double cpu = 1000.0 * static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC / runs;
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / runs;
    MESSAGE(name << ": " << ms << " ms wall, " << cpu << " ms CPU per patch (input " << load[0] << "^3, 2 threads)");
  }
  // Each part alone, forced on.
  const auto time_ms = [](const std::function<void()>& f) {
    double best = 1e30;
    for (int i = 0; i < 5; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      f();
      best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  };
  MESSAGE("best-of-5 wall ms per part, forced on, 2 threads:");
  const AugmentOptions f = all_forced();
  const SpatialDraw draw = draw_spatial(f.rotation, f.scaling, gen);
  AugmentedPatch p = centre_crop(image, labels, out);
  MESSAGE("centre crop " << time_ms([&] { centre_crop(image, labels, out); }) << " ms");
  MESSAGE("rotate+scale 1 thread " << time_ms([&] { resample_patch(image, labels, out, draw.matrix, 1); }) << " ms");
  MESSAGE("rotate+scale " << time_ms([&] { resample_patch(image, labels, out, draw.matrix, 2); }) << " ms");
  MESSAGE("noise " << time_ms([&] { gaussian_noise_(p.image, f.noise, gen, 2); }) << " ms");
  MESSAGE("blur " << time_ms([&] { gaussian_blur_(p.image, f.blur, gen, 2); }) << " ms");
  MESSAGE("brightness " << time_ms([&] { brightness_(p.image, f.brightness, gen, 2); }) << " ms");
  MESSAGE("contrast " << time_ms([&] { contrast_(p.image, f.contrast, gen, 2); }) << " ms");
  MESSAGE("low-res " << time_ms([&] { low_resolution_(p.image, f.low_resolution, gen, 2); }) << " ms");
  MESSAGE("gamma " << time_ms([&] { gamma_(p.image, f.gamma, gen, 2); }) << " ms");
  MESSAGE("mirror " << time_ms([&] { mirror_(p, {true, true, true}, 2); }) << " ms");
}
