#include "tlk/kernels/ref/upsample3d.h"

#include "test_util.h"

using namespace tlk;
using testing::check_f32_matches_f64;
using testing::random_leaf;
using testing::values;
using Inputs = std::vector<Tensor>;

namespace {

const Upsample3dOptions nearest = Upsample3dOptions{}.with_mode(UpsampleMode::nearest);
const Upsample3dOptions trilinear = Upsample3dOptions{}.with_mode(UpsampleMode::trilinear);

void check_approx(const std::vector<double>& got, const std::vector<double>& expected, double eps = 1e-12) {
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i] == doctest::Approx(expected[i]).epsilon(eps));
  }
}

}  // namespace

TEST_CASE("upsample3d nearest matches hand-computed values") {
  // 2x2 -> 4x4 (out == 2 * in): each input becomes a 2x2 block.
  Tensor x = values({1, 2, 3, 4}, {1, 1, 1, 2, 2});
  Tensor y = ops::upsample3d(x, nearest.with_size({1, 4, 4}));
  CHECK(y.to_doubles() == std::vector<double>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  // Size and scale factor give different sources: in 5 -> out 6 reads floor(dst * 5/6) =
  // 0 0 1 2 3 4 with size 6, but floor(dst / 1.3) = 0 0 1 2 3 3 with scale_factor 1.3 (out floor(6.5)).
  Tensor r = values({0, 1, 2, 3, 4}, {1, 1, 1, 1, 5});
  CHECK(ops::upsample3d(r, nearest.with_size({1, 1, 6})).to_doubles() == std::vector<double>{0, 0, 1, 2, 3, 4});
  CHECK(ops::upsample3d(r, nearest.with_scale_factor({1, 1, 1.3})).to_doubles() ==
        std::vector<double>{0, 0, 1, 2, 3, 3});
  // Downsampling 5 -> 2 reads floor(dst * 2.5) = 0, 2.
  CHECK(ops::upsample3d(r, nearest.with_size({1, 1, 2})).to_doubles() == std::vector<double>{0, 2});
  // Backward sums the gradient of every copy: 4 per input for the 2x2 blocks.
  Tensor leaf = x.clone();
  leaf.set_requires_grad(true);
  ops::sum(ops::upsample3d(leaf, nearest.with_scale_factor({1, 2, 2}))).backward();
  CHECK(leaf.grad().to_doubles() == std::vector<double>{4, 4, 4, 4});
}

TEST_CASE("upsample3d trilinear matches hand-computed values for both align_corners") {
  // 2x2 -> 4x4 of x(h, w) = 1 + 2h + w. Linear interpolation reproduces a linear function, so
  // y(i, j) = 1 + 2 a_i + a_j where a is the (clamped) source position.
  Tensor x = values({1, 2, 3, 4}, {1, 1, 1, 2, 2});
  auto expect = [](const std::vector<double>& a) {
    std::vector<double> v;
    for (double ah : a)
      for (double aw : a) v.push_back(1 + 2 * ah + aw);
    return v;
  };
  // align_corners false: src = max((dst + 0.5) / 2 - 0.5, 0) = 0, 0.25, 0.75, 1.25 -> 1 (clamped).
  check_approx(ops::upsample3d(x, trilinear.with_size({1, 4, 4})).to_doubles(), expect({0, 0.25, 0.75, 1}));
  CHECK(ops::upsample3d(x, trilinear.with_size({1, 4, 4})).to_doubles() ==
        std::vector<double>{1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4});
  // align_corners true: src = dst * (2 - 1) / (4 - 1).
  check_approx(ops::upsample3d(x, trilinear.with_size({1, 4, 4}).with_align_corners(true)).to_doubles(),
               expect({0, 1.0 / 3, 2.0 / 3, 1}));
  // All three axes at once: 2x2x2 of 1 + 4d + 2h + w, scale factor 2.
  Tensor c = values({1, 2, 3, 4, 5, 6, 7, 8}, {1, 1, 2, 2, 2});
  const std::vector<double> a{0, 0.25, 0.75, 1};
  std::vector<double> cube;
  for (double ad : a)
    for (double ah : a)
      for (double aw : a) cube.push_back(1 + 4 * ad + 2 * ah + aw);
  check_approx(ops::upsample3d(c, trilinear.with_scale_factor({2, 2, 2})).to_doubles(), cube);
  // Scale factor 1.5 on 3 -> 4 uses src = (dst + 0.5) / 1.5 - 0.5; size 4 uses (dst + 0.5) * 3/4 - 0.5.
  Tensor r = values({0, 1, 2}, {1, 1, 1, 1, 3});
  check_approx(ops::upsample3d(r, trilinear.with_scale_factor({1, 1, 1.5})).to_doubles(), {0, 0.5, 7.0 / 6, 11.0 / 6});
  check_approx(ops::upsample3d(r, trilinear.with_size({1, 1, 4})).to_doubles(), {0, 0.625, 1.375, 2});
  // align_corners with one output element reads the first input.
  CHECK(ops::upsample3d(r, trilinear.with_size({1, 1, 1}).with_align_corners(true)).to_doubles() ==
        std::vector<double>{0});
}

TEST_CASE("upsample3d f32 forward agrees with f64") {
  Generator gen(41);
  const std::vector<Upsample3dOptions> cases = {
      nearest.with_size({5, 7, 9}), nearest.with_scale_factor({2, 1.5, 1.3}), trilinear.with_size({5, 7, 9}),
      trilinear.with_scale_factor({2, 1.5, 1.3}).with_align_corners(true), trilinear.with_size({2, 3, 2})};
  for (const auto& opt : cases) {
    CAPTURE(opt.str());
    check_f32_matches_f64([&](const Tensor& x) { return ops::upsample3d(x, opt); }, {2, 3, 3, 4, 5}, gen);
  }
}

TEST_CASE("upsample3d gradients: nearest and trilinear, sizes and scale factors, both align_corners") {
  Generator gen(42);
  struct Case {
    Shape x;
    Upsample3dOptions opt;
  };
  const std::vector<Case> cases = {
      {{1, 3, 2, 3, 4}, nearest.with_size({3, 5, 7})},
      {{3, 2, 2, 3, 3}, nearest.with_scale_factor({1, 2, 1.5})},
      {{1, 5, 2, 3, 3}, trilinear.with_size({3, 5, 4})},
      {{3, 2, 2, 2, 3}, trilinear.with_scale_factor({2, 2, 2}).with_align_corners(true)},
      {{1, 3, 5, 4, 6}, trilinear.with_size({3, 3, 4})},
      {{1, 3, 2, 3, 5}, trilinear.with_size({1, 4, 2}).with_align_corners(true)},
  };
  for (const auto& c : cases) {
    CAPTURE(c.x.str());
    CAPTURE(c.opt.str());
    CHECK_GRADCHECK([&](const Inputs& t) { return Inputs{ops::upsample3d(t[0], c.opt)}; },
                    (Inputs{random_leaf(c.x, gen)}));
  }
}

TEST_CASE("upsample3d bad input gives a clear error") {
  Tensor x = Tensor::zeros({1, 3, 2, 2, 2});
  CHECK_THROWS_WITH_AS(ops::upsample3d(Tensor::zeros({3, 2, 2, 2}), nearest.with_size({4, 4, 4})),
                       doctest::Contains("upsample3d: expected a 5-D input [N, C, D, H, W], got 4-D"), Error);
  CHECK_THROWS_WITH_AS(ops::upsample3d(x, nearest), doctest::Contains("give exactly one of size and scale_factor"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::upsample3d(x, nearest.with_size({4, 4, 4}).with_scale_factor({2, 2, 2})),
                       doctest::Contains("give exactly one of size and scale_factor"), Error);
  CHECK_THROWS_WITH_AS(ops::upsample3d(x, nearest.with_size({4, 4, 4}).with_align_corners(true)),
                       doctest::Contains("align_corners applies to trilinear mode only"), Error);
  CHECK_THROWS_WITH_AS(ops::upsample3d(x, trilinear.with_scale_factor({2, 0, 2})),
                       doctest::Contains("scale_factor must be finite and > 0"), Error);
  CHECK_THROWS_WITH_AS(ops::upsample3d(x, trilinear.with_scale_factor({2, 0.4, 2})),
                       doctest::Contains("output would be empty along axis 1"), Error);
  CHECK_THROWS_WITH_AS(ops::upsample3d(x, trilinear.with_size({4, 0, 4})),
                       doctest::Contains("output would be empty along axis 1"), Error);
  CHECK_THROWS_WITH_AS(
      ops::upsample3d(Tensor::zeros({1, 3, 2, 2, 2}, TensorOptions{DType::i64}), nearest.with_size({4, 4, 4})),
      doctest::Contains("upsample3d: dtype i64 is not supported"), Error);
  CHECK_THROWS_WITH_AS(kernels::ref::upsample3d_backward(x, x.shape(), nearest.with_size({4, 4, 4})),
                       doctest::Contains("grad_output has shape [1, 3, 2, 2, 2], expected [1, 3, 4, 4, 4]"), Error);
}
