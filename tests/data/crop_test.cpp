#include "tlk/data/crop.h"

#include <cmath>
#include <limits>

#include "test_util.h"

using namespace tlk;

namespace {

bool equal_exactly(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && a.to_doubles() == b.to_doubles();
}

}  // namespace

TEST_CASE("crop: the bounding box covers every nonzero voxel of any channel") {
  Tensor v = Tensor::zeros({2, 10, 12, 14});
  float* p = v.data<float>();
  p[((0 * 10 + 3) * 12 + 4) * 14 + 5] = 1.5f;    // channel 0 at (3, 4, 5)
  p[((1 * 10 + 7) * 12 + 2) * 14 + 11] = -2.0f;  // channel 1 at (7, 2, 11)
  const data::BoundingBox box = data::nonzero_bounding_box(v);
  CHECK(box == data::BoundingBox{{3, 2, 5}, {8, 5, 12}});
  CHECK(box.shape() == std::array<std::int64_t, 3>{5, 3, 7});
  CHECK(box.str() == "[3:8, 2:5, 5:12]");
  // One channel alone gives its own box.
  CHECK(data::nonzero_bounding_box(v.narrow(0, 0, 1)) == data::BoundingBox{{3, 4, 5}, {4, 5, 6}});
  // [D, H, W] of an integer type; a single voxel at the far corner.
  Tensor l = Tensor::zeros({4, 5, 6}, TensorOptions{DType::u8});
  l.data<std::uint8_t>()[4 * 5 * 6 - 1] = 2;
  CHECK(data::nonzero_bounding_box(l) == data::BoundingBox{{3, 4, 5}, {4, 5, 6}});
}

TEST_CASE("crop: an all-zero volume gives the whole volume; NaN counts as nonzero") {
  const Tensor zero = Tensor::zeros({3, 4, 5}, TensorOptions{DType::i32});
  CHECK(data::nonzero_bounding_box(zero) == data::BoundingBox{{0, 0, 0}, {3, 4, 5}});
  CHECK(data::crop(zero, data::nonzero_bounding_box(zero)).shape() == Shape{3, 4, 5});
  Tensor nan = Tensor::zeros({3, 4, 5});
  nan.data<float>()[(1 * 4 + 2) * 5 + 3] = std::numeric_limits<float>::quiet_NaN();
  CHECK(data::nonzero_bounding_box(nan) == data::BoundingBox{{1, 2, 3}, {2, 3, 4}});
}

TEST_CASE("crop: crop then uncrop restores the volume, for several dtypes and a channel axis") {
  Generator gen(21);
  for (DType dt : {DType::f32, DType::u8, DType::i32}) {
    CAPTURE(dtype_name(dt));
    // A random blob inside a zero frame.
    Tensor v = Tensor::zeros({2, 9, 11, 13}, TensorOptions{dt});
    Tensor inner = v.narrow(1, 2, 5).narrow(2, 1, 7).narrow(3, 4, 6);
    inner.copy_(rand({2, 5, 7, 6}, gen, 1, 100).to(dt));
    const data::BoundingBox box = data::nonzero_bounding_box(v);
    CHECK(box == data::BoundingBox{{2, 1, 4}, {7, 8, 10}});
    const Tensor c = data::crop(v, box);
    CHECK(c.shape() == Shape{2, 5, 7, 6});
    CHECK(c.is_contiguous());
    CHECK(equal_exactly(c, inner.contiguous()));
    CHECK(equal_exactly(data::uncrop(c, box, {9, 11, 13}), v));
    // [D, H, W]
    const Tensor v3 = v.narrow(0, 1, 1).reshape({9, 11, 13});
    const data::BoundingBox box3 = data::nonzero_bounding_box(v3);
    CHECK(equal_exactly(data::uncrop(data::crop(v3, box3), box3, {9, 11, 13}), v3.contiguous()));
  }
}

TEST_CASE("crop: uncrop fills outside the box with the given value") {
  const Tensor ones = Tensor::ones({2, 2, 2});
  const data::BoundingBox box{{1, 0, 2}, {3, 2, 4}};
  const Tensor full = data::uncrop(ones, box, {4, 3, 5}, -1.0);
  CHECK(full.shape() == Shape{4, 3, 5});
  const auto values = full.to_doubles();
  double inside = 0, outside = 0;
  for (double x : values) (x == 1.0 ? inside : outside) += 1;
  CHECK(inside == 8);
  CHECK(outside == 4 * 3 * 5 - 8);
  CHECK(full.data<float>()[(1 * 3 + 0) * 5 + 2] == 1.0f);
  CHECK(full.data<float>()[(0 * 3 + 0) * 5 + 2] == -1.0f);
}

TEST_CASE("crop: boxes that do not fit are clear errors") {
  const Tensor v = Tensor::zeros({4, 4, 4});
  CHECK_THROWS_WITH_AS(data::crop(v, data::BoundingBox{{0, 0, 0}, {5, 4, 4}}), doctest::Contains("does not fit"),
                       Error);
  CHECK_THROWS_WITH_AS(data::crop(v, data::BoundingBox{{3, 0, 0}, {2, 4, 4}}), doctest::Contains("does not fit"),
                       Error);
  CHECK_THROWS_WITH_AS(data::uncrop(v, data::BoundingBox{{0, 0, 0}, {3, 4, 4}}, {8, 8, 8}), doctest::Contains("box"),
                       Error);
  CHECK_THROWS_WITH_AS(data::nonzero_bounding_box(Tensor::zeros({4, 4})), doctest::Contains("[D, H, W]"), Error);
}
