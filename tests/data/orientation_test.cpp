#include "tlk/data/orientation.h"

#include <algorithm>
#include <cmath>

#include "test_util.h"

using namespace tlk;

namespace {

using Affine = std::array<std::array<double, 4>, 4>;

// world = A * (i, j, k, 1) for the file tensor index [k, j, i].
std::array<double, 3> to_world(const Affine& a, double i, double j, double k) {
  std::array<double, 3> w{};
  for (std::size_t r = 0; r < 3; ++r) w[r] = a[r][0] * i + a[r][1] * j + a[r][2] * k + a[r][3];
  return w;
}

// An affine whose file axis f runs along world axis world[f], reversed where flipped[f].
Affine signed_permutation(const std::array<int, 3>& world, const std::array<bool, 3>& flipped,
                          const std::array<double, 3>& spacing) {
  Affine a{};
  for (std::size_t f = 0; f < 3; ++f) a[static_cast<std::size_t>(world[f])][f] = (flipped[f] ? -1.0 : 1.0) * spacing[f];
  a[0][3] = -12.5;
  a[1][3] = 40.0;
  a[2][3] = 7.25;
  a[3] = {0, 0, 0, 1};
  return a;
}

bool equal_exactly(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && a.to_doubles() == b.to_doubles();
}

}  // namespace

TEST_CASE("orientation: an identity (RAS+) affine is a no-op") {
  io::NiftiImage im;
  Generator gen(3);
  im.data = rand({4, 3, 5}, gen, 0, 10);  // [k, j, i]
  im.dims = {5, 3, 4};
  im.spacing = {0.5, 0.75, 2.0};
  const data::Orientation o = data::orientation_of(im);
  CHECK(o.code() == "RAS");
  CHECK(o.is_canonical());
  CHECK(o.canonical_shape() == std::array<std::int64_t, 3>{4, 3, 5});
  const Tensor c = data::to_canonical(im.data, o);
  CHECK(equal_exactly(c, im.data));
  CHECK_FALSE(c.is_same(im.data));  // a copy, not an alias
  CHECK(data::canonical_spacing(im, o) == std::array<double, 3>{2.0, 0.75, 0.5});
  CHECK(data::describe(o) == "RAS, file [4, 3, 5] -> canonical [4, 3, 5] (z, y, x)");
}

TEST_CASE("orientation: a KiTS-like IPL affine puts a marker voxel where the world says") {
  // i -> inferior (slices), j -> posterior, k -> left, as the KiTS19 files.
  const Affine a = signed_permutation({2, 1, 0}, {true, true, true}, {3.0, 0.8, 0.8});
  const std::array<std::int64_t, 3> file_shape{4, 3, 2};  // [k, j, i]: dims (2, 3, 4)
  const data::Orientation o = data::orientation_of(a, file_shape);
  CHECK(o.code() == "IPL");
  CHECK(o.world == std::array<int, 3>{2, 1, 0});
  CHECK(o.canonical_shape() == std::array<std::int64_t, 3>{2, 3, 4});  // z <- i, y <- j, x <- k
  Tensor v = Tensor::zeros({4, 3, 2}, TensorOptions{DType::i32});
  v.data<std::int32_t>()[(1 * 3 + 0) * 2 + 0] = 7;  // k = 1, j = 0, i = 0
  const Tensor c = data::to_canonical(v, o);
  REQUIRE(c.shape() == Shape{2, 3, 4});
  // z = (2 - 1) - i = 1, y = (3 - 1) - j = 2, x = (4 - 1) - k = 2.
  CHECK(c.data<std::int32_t>()[(1 * 3 + 2) * 4 + 2] == 7);
  const auto w_file = to_world(a, 0, 0, 1);
  const auto w_canon = to_world(data::canonical_affine(a, o), 2, 2, 1);  // (x, y, z)
  for (int r = 0; r < 3; ++r)
    CHECK(w_canon[static_cast<std::size_t>(r)] == doctest::Approx(w_file[static_cast<std::size_t>(r)]));
  io::NiftiImage im;
  im.spacing = {3.0, 0.8, 0.8};
  CHECK(data::canonical_spacing(im, o) == std::array<double, 3>{3.0, 0.8, 0.8});
}

TEST_CASE("orientation: all 48 axis permutations and flips round-trip exactly and agree with the affine") {
  Generator gen(11);
  const std::array<double, 3> spacing{0.7, 1.3, 2.9};
  const std::array<std::int64_t, 3> file_shape{5, 4, 3};  // distinct extents catch any axis mix-up
  std::array<int, 3> perm{0, 1, 2};
  int combos = 0;
  do {
    for (int bits = 0; bits < 8; ++bits) {
      const std::array<bool, 3> flips{(bits & 1) != 0, (bits & 2) != 0, (bits & 4) != 0};
      const Affine a = signed_permutation(perm, flips, spacing);
      const data::Orientation o = data::orientation_of(a, file_shape);
      CAPTURE(o.code());
      CHECK(o.world == perm);
      CHECK(o.flipped == flips);
      // Canonical affine: positive diagonal, nothing off it, spacing in canonical order.
      const Affine ca = data::canonical_affine(a, o);
      io::NiftiImage im;
      im.spacing = spacing;
      const auto cs = data::canonical_spacing(im, o);  // (z, y, x)
      for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 3; ++c) {
          if (r == c)
            CHECK(ca[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)] ==
                  doctest::Approx(cs[static_cast<std::size_t>(2 - c)]));
          else
            CHECK(ca[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)] == 0.0);
        }
      // Every voxel: its world position is the same before and after (checked on a marker each).
      for (int marker = 0; marker < 3; ++marker) {
        const std::int64_t k = static_cast<std::int64_t>(gen.below(5)), j = static_cast<std::int64_t>(gen.below(4)),
                           i = static_cast<std::int64_t>(gen.below(3));
        Tensor v = Tensor::zeros({5, 4, 3}, TensorOptions{DType::u8});
        v.data<std::uint8_t>()[(k * 4 + j) * 3 + i] = 1;
        const Tensor c = data::to_canonical(v, o);
        const auto cshape = o.canonical_shape();
        REQUIRE(c.shape() == Shape{cshape[0], cshape[1], cshape[2]});
        const std::uint8_t* p = c.data<std::uint8_t>();
        const std::int64_t at = std::max_element(p, p + c.numel()) - p;
        const std::int64_t x = at % cshape[2], y = (at / cshape[2]) % cshape[1], z = at / (cshape[2] * cshape[1]);
        const auto wf = to_world(a, static_cast<double>(i), static_cast<double>(j), static_cast<double>(k));
        const auto wc = to_world(ca, static_cast<double>(x), static_cast<double>(y), static_cast<double>(z));
        for (std::size_t r = 0; r < 3; ++r) CHECK(wc[r] == doctest::Approx(wf[r]));
      }
      // Exact round trips: u8 and i32 [D, H, W], f32 [C, D, H, W].
      const Tensor f = rand({2, 5, 4, 3}, gen, -100, 100);
      const Tensor l8 = rand({5, 4, 3}, gen, 0, 250).to(DType::u8);
      const Tensor l32 = rand({5, 4, 3}, gen, -1e6, 1e6).to(DType::i32);
      for (const Tensor& t : {f, l8, l32}) {
        const Tensor c = data::to_canonical(t, o);
        CHECK(c.dtype() == t.dtype());
        CHECK(equal_exactly(data::from_canonical(c, o), t));
      }
      // The channel axis is left alone.
      const Tensor c = data::to_canonical(f, o);
      CHECK(equal_exactly(c.narrow(0, 1, 1), data::to_canonical(f.narrow(0, 1, 1), o)));
      ++combos;
    }
  } while (std::next_permutation(perm.begin(), perm.end()));
  CHECK(combos == 48);
}

TEST_CASE("orientation: a non-contiguous input view is reoriented like its copy") {
  Generator gen(5);
  const Affine a = signed_permutation({1, 2, 0}, {false, true, true}, {1, 1, 1});
  const Tensor big = rand({6, 5, 7}, gen);
  const Tensor view = big.narrow(0, 1, 4).narrow(2, 2, 3);  // [4, 5, 3], strided
  const data::Orientation o = data::orientation_of(a, {4, 5, 3});
  CHECK(equal_exactly(data::to_canonical(view, o), data::to_canonical(view.contiguous(), o)));
  CHECK(equal_exactly(data::from_canonical(data::to_canonical(view, o), o), view.contiguous()));
}

TEST_CASE("orientation: oblique affines pick the most aligned axis, deterministically") {
  // 20 degrees about z on an LPS-like base: still L, P, S.
  const double t = 20.0 * M_PI / 180.0, c = std::cos(t), s = std::sin(t);
  Affine a{};
  a[0] = {-c, s, 0, 0};
  a[1] = {-s, -c, 0, 0};
  a[2] = {0, 0, 2.5, 0};
  a[3] = {0, 0, 0, 1};
  CHECK(data::orientation_of(a, {3, 3, 3}).code() == "LPS");
  // Exactly 45 degrees: a tie; the lower file axis takes the lower world axis.
  const double h = std::sqrt(0.5);
  a[0] = {h, -h, 0, 0};
  a[1] = {h, h, 0, 0};
  a[2] = {0, 0, 1, 0};
  const data::Orientation o = data::orientation_of(a, {3, 3, 3});
  CHECK(o.code() == "RAS");
  // Columns are compared by direction, not length: raw entries would give i (5 mm, mostly x) to R first.
  a[0] = {5 * 0.75, 0.9, 0, 0};
  a[1] = {5 * 0.6614, 0.4359, 0, 0};
  a[2] = {0, 0, 1, 0};
  CHECK(data::orientation_of(a, {3, 3, 3}).code() == "ARS");
  // A degenerate (all-zero) affine still gives a valid permutation instead of failing.
  Affine zero{};
  zero[3] = {0, 0, 0, 1};
  CHECK(data::orientation_of(zero, {2, 2, 2}).code() == "RAS");
}

TEST_CASE("orientation: shapes that do not match the orientation are clear errors") {
  const data::Orientation o =
      data::orientation_of(signed_permutation({2, 1, 0}, {true, true, true}, {1, 1, 1}), {4, 3, 2});
  CHECK_THROWS_WITH_AS(data::to_canonical(Tensor::zeros({4, 3, 3}), o), doctest::Contains("file's spatial shape"),
                       Error);
  CHECK_THROWS_WITH_AS(data::from_canonical(Tensor::zeros({4, 3, 2}), o), doctest::Contains("canonical spatial shape"),
                       Error);
  CHECK_THROWS_WITH_AS(data::to_canonical(Tensor::zeros({4, 3}), o), doctest::Contains("[D, H, W]"), Error);
  data::Orientation bad = o;
  bad.world = {0, 0, 1};
  CHECK_THROWS_WITH_AS(data::to_canonical(Tensor::zeros({4, 3, 2}), bad), doctest::Contains("permutation"), Error);
}
