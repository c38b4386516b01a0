#include "test_util.h"
#include "tlk/task/slice_figure.h"

using namespace tlk;

TEST_CASE("slice figure: panels side by side, labels coloured, anterior up, zoom, busiest slice") {
  Tensor ct = Tensor::full({2, 3}, -160.0);  // the window's lower end: black
  ct.data<float>()[0] = 240.0f;               // canonical row 0 (posterior) -> the bottom row on screen
  Tensor labels = Tensor::zeros({2, 3}, TensorOptions{}.with(DType::u8));
  labels.data<std::uint8_t>()[5] = 1;  // canonical (1, 2): the top row on screen, right column
  const Tensor rgb = task::render_slices(ct, {{"image", Tensor()}, {"truth", labels}}, 2);
  REQUIRE(rgb.shape() == Shape{4, 12, 3});
  auto pixel = [&](std::int64_t y, std::int64_t x, int k) { return rgb.data<std::uint8_t>()[(y * 12 + x) * 3 + k]; };
  CHECK(pixel(3, 0, 0) == 255);  // white, bottom-left, zoomed 2x
  CHECK(pixel(2, 1, 1) == 255);
  CHECK(pixel(0, 0, 0) == 0);
  CHECK(pixel(0, 6 + 4, 0) > 100);  // the label in the second panel is red
  CHECK(pixel(0, 6 + 4, 1) < 50);
  CHECK(pixel(0, 4, 0) == 0);  // the first panel has no overlay

  Tensor volume = Tensor::zeros({4, 2, 2}, TensorOptions{}.with(DType::u8));
  volume.data<std::uint8_t>()[2 * 4 + 1] = 1;
  volume.data<std::uint8_t>()[2 * 4 + 2] = 2;
  volume.data<std::uint8_t>()[3 * 4] = 1;
  CHECK(task::busiest_slice(volume) == 2);
  CHECK(task::busiest_slice(Tensor::zeros({5, 2, 2}, TensorOptions{}.with(DType::u8))) == 2);  // none: the middle
  CHECK(task::axial_slice(volume, 2).to_doubles() == std::vector<double>{0, 1, 2, 0});
  CHECK_THROWS_AS(task::axial_slice(volume, 4), Error);
  CHECK_THROWS_AS(task::render_slices(ct, {{"bad", Tensor::zeros({3, 3}, TensorOptions{}.with(DType::u8))}}), Error);
}
