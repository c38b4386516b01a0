// The augmentation split into draws and their application (Note [Draw, then apply]), and the GPU
// kernels' per-voxel bodies run on the host against the CPU transforms (Note [Kernel bodies on the
// host], tlk/kernels/augment_voxel.h). Runs without a GPU.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <numbers>
#include <vector>

#include "test_util.h"
#include "tlk/data/augment.h"
#include "tlk/data/device_augment.h"
#include "tlk/kernels/augment_voxel.h"
#include "tlk/tensor/cuda_runtime.h"

using namespace tlk;
using namespace tlk::data;
namespace body = tlk::kernels::augment;
using testing::bit_identical;

namespace {

Tensor random_image(std::int64_t c, Extent3 e, Generator& gen) {
  return tlk::rand({c, e[0], e[1], e[2]}, gen, -1.0, 2.0);
}

Tensor random_labels(Extent3 e, Generator& gen) {
  return testing::random_labels({e[0], e[1], e[2]}, gen, {0, 1, 2, 3, 4});
}

AugmentOptions often() { return AugmentOptions::all(0.6); }

/// One channel of `image` as a plain vector.
std::vector<float> channel_of(const Tensor& image, std::int64_t c) {
  const std::int64_t n = image.size(1) * image.size(2) * image.size(3);
  const float* p = image.data<float>() + c * n;
  return {p, p + n};
}

}  // namespace

TEST_CASE("augment: draws applied later equal augment_patch bit for bit, and the draws read no voxel") {
  Generator g0(11);
  const Tensor image = random_image(2, {27, 25, 29}, g0);
  const Tensor labels = random_labels({27, 25, 29}, g0);
  int spatial = 0, intensity = 0;
  for (std::uint64_t seed = 0; seed < 24; ++seed) {
    CAPTURE(seed);
    Generator a(seed), b(seed), c(seed);
    const AugmentedPatch direct = augment_patch(image, labels, {16, 18, 20}, often(), a);
    const AugmentDraws draws = draw_augmentation(often(), 2, b);
    const AugmentedPatch later = apply_augmentation(image, labels, {16, 18, 20}, draws);
    CHECK(bit_identical(direct.image, later.image));
    CHECK(bit_identical(direct.labels, later.labels));
    CHECK(a.next_u64() == b.next_u64());  // the same number of draws
    // The draws do not depend on the image: another image's draws are the same.
    const AugmentDraws other = draw_augmentation(often(), 2, c);
    CHECK(other.spatial.matrix == draws.spatial.matrix);
    CHECK(other.noise.channel_seeds == draws.noise.channel_seeds);
    CHECK(other.gamma.gamma.factors == draws.gamma.gamma.factors);
    spatial += draws.spatial.transformed;
    intensity += draws.blur.acted + draws.contrast.factor.acted + draws.low_resolution.acted;
  }
  CHECK(spatial > 4);  // the seeds exercise both paths
  CHECK(intensity > 8);
}

TEST_CASE("augment: a draw made for another channel count is refused by name") {
  Generator gen(2);
  AugmentOptions o = AugmentOptions::none();
  o.brightness.probability = 1;
  const AugmentDraws d = draw_augmentation(o, 3, gen);
  REQUIRE(d.brightness.factors.size() == 3);
  const Tensor two_channels = random_image(2, {8, 8, 8}, gen);
  CHECK_THROWS_WITH_AS(apply_augmentation(two_channels, Tensor(), {8, 8, 8}, d),
                       doctest::Contains("data::brightness_: the draw was made for 3 channels, the image has 2"),
                       Error);
}

TEST_CASE("augment kernels on the host: resample_voxel over every voxel equals resample_patch") {
  Generator gen(4);
  const Extent3 in{31, 28, 35}, out{20, 33, 18};  // rows that end inside a tile, output larger than input on H
  const Tensor image = random_image(2, in, gen), labels = random_labels(in, gen);
  for (const auto& angles : {std::array<double, 3>{0.4, -0.3, 0.2}, std::array<double, 3>{0.0, 0.0, 0.0},
                             std::array<double, 3>{std::numbers::pi / 2, 0.0, -0.7}}) {
    for (double scale : {0.8, 1.0, 1.3}) {
      const Matrix3 m = rotation_scale_matrix(angles, {scale, scale, scale});
      const AugmentedPatch cpu = resample_patch(image, labels, out, m, 2);
      Tensor gpu_image = Tensor::zeros({2, out[0], out[1], out[2]});
      Tensor gpu_labels = Tensor::zeros({out[0], out[1], out[2]}, TensorOptions{}.with(DType::u8));
      body::ResampleBuffers b;
      b.src = image.data<float>();
      b.dst = gpu_image.data<float>();
      b.lsrc = labels.data<std::uint8_t>();
      b.ldst = gpu_labels.data<std::uint8_t>();
      b.channels = 2;
      body::ResampleGeometry g;
      for (std::size_t a = 0; a < 3; ++a) {
        b.in[a] = in[a];
        b.out[a] = out[a];
        for (std::size_t j = 0; j < 3; ++j) g.m[a][j] = m[a][j];
        g.c_out[a] = static_cast<double>(out[a] - 1) / 2.0;
        g.c_in[a] = static_cast<double>(centre_crop_start(in[a], out[a])) + g.c_out[a];
      }
      for (std::int64_t o = 0; o < out[0] * out[1] * out[2]; ++o) body::resample_voxel(b, g, o);
      CAPTURE(scale);
      CHECK(bit_identical(cpu.image, gpu_image));
      CHECK(bit_identical(cpu.labels, gpu_labels));
    }
  }
}

TEST_CASE("augment kernels on the host: mirrored_index equals mirror_ for every set of axes") {
  Generator gen(5);
  const Extent3 e{5, 6, 7};
  const Tensor image = random_image(2, e, gen), labels = random_labels(e, gen);
  const std::int64_t ext[3] = {e[0], e[1], e[2]}, volume = e[0] * e[1] * e[2];
  for (unsigned flip = 1; flip < 8; ++flip) {
    AugmentedPatch cpu{image.clone(), labels.clone()};
    mirror_(cpu, {(flip & 1u) != 0, (flip & 2u) != 0, (flip & 4u) != 0});
    for (std::int64_t c = 0; c < 2; ++c)
      for (std::int64_t o = 0; o < volume; ++o)
        REQUIRE(cpu.image.data<float>()[c * volume + o] ==
                image.data<float>()[c * volume + body::mirrored_index(o, ext, flip)]);
    for (std::int64_t o = 0; o < volume; ++o)
      REQUIRE(cpu.labels.data<std::uint8_t>()[o] == labels.data<std::uint8_t>()[body::mirrored_index(o, ext, flip)]);
  }
}

TEST_CASE("augment kernels on the host: blur_voxel along each axis equals the CPU blur") {
  Generator gen(6);
  const Extent3 e{9, 12, 4};  // W of 4 is shorter than a sigma-1 kernel's radius: reflection wraps twice
  const Tensor image = random_image(1, e, gen);
  const std::int64_t ext[3] = {e[0], e[1], e[2]}, volume = e[0] * e[1] * e[2];
  for (const std::array<double, 3>& sigma :
       {std::array<double, 3>{0.7, 1.0, 1.6}, std::array<double, 3>{0.0, 2.5, 0.0}}) {
    BlurDraw d;
    d.acted = true;
    d.channel_sigmas = {sigma};
    Tensor cpu = image.clone();
    apply_gaussian_blur_(cpu, d, 2);
    std::vector<float> x = channel_of(image, 0), tmp(static_cast<std::size_t>(volume));
    for (int axis = 0; axis < 3; ++axis) {
      if (!(sigma[static_cast<std::size_t>(axis)] > 0)) continue;
      const std::vector<float> taps = gaussian_kernel(sigma[static_cast<std::size_t>(axis)]);
      for (std::int64_t o = 0; o < volume; ++o)
        tmp[static_cast<std::size_t>(o)] =
            body::blur_voxel(x.data(), ext, axis, taps.data(), static_cast<int>(taps.size()), o);
      x = tmp;
    }
    CHECK(std::memcmp(x.data(), cpu.data<float>(), x.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("augment kernels on the host: the low-resolution bodies equal the CPU simulation") {
  Generator gen(7);
  const Extent3 e{10, 13, 16};
  const Tensor image = random_image(1, e, gen);
  const std::int64_t ext[3] = {e[0], e[1], e[2]}, volume = e[0] * e[1] * e[2];
  for (const double zoom : {0.5, 0.63, 0.91}) {
    for (const bool ignore_axis0 : {false, true}) {
      LowResolutionDraw d;
      d.acted = true;
      d.channel_zoom = {zoom};
      d.ignore_axis0 = ignore_axis0;
      Tensor cpu = image.clone();
      apply_low_resolution_(cpu, d, 2);
      std::int64_t small[3];
      for (int a = 0; a < 3; ++a) small[a] = low_resolution_extent(ext[a], zoom);
      if (ignore_axis0) small[0] = ext[0];
      std::vector<float> x = channel_of(image, 0), low(static_cast<std::size_t>(small[0] * small[1] * small[2]));
      for (std::int64_t o = 0; o < static_cast<std::int64_t>(low.size()); ++o)
        low[static_cast<std::size_t>(o)] = body::low_resolution_down_voxel(x.data(), ext, small, o);
      for (std::int64_t o = 0; o < volume; ++o)
        x[static_cast<std::size_t>(o)] = body::low_resolution_up_voxel(low.data(), small, ext, o);
      CAPTURE(zoom);
      CAPTURE(ignore_axis0);
      CHECK(std::memcmp(x.data(), cpu.data<float>(), x.size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("augment kernels on the host: the GPU noise is N(0, sigma^2), independent between voxels and seeds") {
  const double sigma = 0.08;
  const std::int64_t n = 200000;
  double sum = 0, squares = 0, lag1 = 0, cross = 0;
  float previous = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const float v = body::noise_value(1234, i, sigma);
    REQUIRE(std::isfinite(v));
    sum += v;
    squares += static_cast<double>(v) * v;
    if (i > 0) lag1 += static_cast<double>(v) * previous;  // includes the cosine/sine pairs
    cross += static_cast<double>(v) * body::noise_value(1235, i, sigma);
    previous = v;
  }
  const double mean = sum / n, var = squares / n - mean * mean;
  CHECK(std::abs(mean) < 4 * sigma / std::sqrt(static_cast<double>(n)));
  CHECK(std::sqrt(var) == doctest::Approx(sigma).epsilon(0.01));
  CHECK(std::abs(lag1 / n) < 4 * sigma * sigma / std::sqrt(static_cast<double>(n)));
  CHECK(std::abs(cross / n) < 4 * sigma * sigma / std::sqrt(static_cast<double>(n)));
  // The tails: about 4.55% of N(0, 1) lies beyond 2 sigma.
  std::int64_t beyond = 0;
  for (std::int64_t i = 0; i < n; ++i) beyond += std::abs(body::noise_value(99, i, 1.0)) > 2.0;
  CHECK(static_cast<double>(beyond) / n == doctest::Approx(0.0455).epsilon(0.05));
}

TEST_CASE("augment: apply_augmentation_cuda refuses a CPU image by name") {
  if (cuda::is_available()) return;  // tests/cuda covers it with a GPU
  Generator gen(8);
  const AugmentDraws d = draw_augmentation(AugmentOptions{}, 1, gen);
  const Tensor image = random_image(1, {8, 8, 8}, gen);
  CHECK_THROWS_WITH_AS(apply_augmentation_cuda(image, Tensor(), {8, 8, 8}, d),
                       doctest::Contains("data::apply_augmentation_cuda"), Error);
}
