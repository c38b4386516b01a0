#include <fstream>

#include "test_util.h"
#include "tlk/io/png.h"

using namespace tlk;

TEST_CASE("png: grey and RGB images round trip; bad input is refused") {
  const auto dir = testing::fresh_temp_dir("png");
  Tensor grey = Tensor::empty({5, 7}, TensorOptions{}.with(DType::u8));
  for (std::int64_t i = 0; i < grey.numel(); ++i) grey.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(i * 7);
  io::write_png(dir / "grey.png", grey);
  CHECK(testing::max_abs_diff(io::read_png(dir / "grey.png"), grey) == 0);
  Tensor rgb = Tensor::empty({3, 4, 3}, TensorOptions{}.with(DType::u8));
  for (std::int64_t i = 0; i < rgb.numel(); ++i) rgb.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(255 - i);
  io::write_png(dir / "rgb.png", rgb);
  CHECK(testing::max_abs_diff(io::read_png(dir / "rgb.png"), rgb) == 0);
  // The signature and chunk layout viewers expect.
  std::ifstream in(dir / "grey.png", std::ios::binary);
  char head[16] = {};
  in.read(head, 16);
  CHECK(std::string(head + 1, 3) == "PNG");
  CHECK(std::string(head + 12, 4) == "IHDR");
  CHECK_THROWS_WITH_AS(io::write_png(dir / "bad.png", Tensor::zeros({4, 4})), doctest::Contains("u8 pixels"), Error);
  CHECK_FALSE(std::filesystem::exists(dir / "bad.png"));
  std::ofstream(dir / "fake.png") << "not a png";
  CHECK_THROWS_WITH_AS(io::read_png(dir / "fake.png"), doctest::Contains("not a PNG"), Error);
}
