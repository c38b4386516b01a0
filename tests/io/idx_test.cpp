#include "tlk/io/idx.h"

#include <fstream>
#include <iterator>
#include <vector>

#include "test_util.h"

using namespace tlk;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / "tlk-idx-test";
  fs::create_directories(dir);
  return dir / name;
}

void write_bytes(const fs::path& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("read_idx reads hand-written big-endian u8 and i32 files") {
  const fs::path labels = scratch("labels-idx1-ubyte");
  write_bytes(labels, {0x00, 0x00, 0x08, 0x01, 0x00, 0x00, 0x00, 0x03, 7, 2, 1});
  const Tensor l = io::read_idx(labels);
  CHECK(l.dtype() == DType::u8);
  CHECK(l.shape() == Shape{3});
  CHECK(l.to_doubles() == std::vector<double>{7, 2, 1});

  const fs::path ints = scratch("ints-idx2-int");
  // [1, 2] i32: 258 and -2, big-endian.
  write_bytes(ints, {0x00, 0x00, 0x0C, 0x02, 0, 0, 0, 1, 0, 0, 0, 2, 0x00, 0x00, 0x01, 0x02, 0xFF, 0xFF, 0xFF, 0xFE});
  const Tensor i = io::read_idx(ints);
  CHECK(i.dtype() == DType::i32);
  CHECK(i.shape() == Shape{1, 2});
  CHECK(i.to_doubles() == std::vector<double>{258, -2});
}

TEST_CASE("write_idx and read_idx round trip, plain and gzip") {
  std::vector<std::uint8_t> values(3 * 4 * 5);
  for (std::size_t k = 0; k < values.size(); ++k) values[k] = static_cast<std::uint8_t>(k * 7 % 256);
  const Tensor images = Tensor::from_vector(values, {3, 4, 5});

  const fs::path plain = scratch("images-idx3-ubyte");
  io::write_idx(plain, images);
  const std::vector<std::uint8_t> bytes = read_bytes(plain);
  REQUIRE(bytes.size() == 16 + values.size());
  CHECK(std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + 16) ==
        std::vector<std::uint8_t>{0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5});
  CHECK(io::read_idx(plain).to_doubles() == images.to_doubles());

  const fs::path gz = scratch("images-idx3-ubyte.gz");
  io::write_idx(gz, images);
  const std::vector<std::uint8_t> zipped = read_bytes(gz);
  REQUIRE(zipped.size() > 2);
  CHECK((zipped[0] == 0x1f && zipped[1] == 0x8b));  // gzip magic
  const Tensor back = io::read_idx(gz);
  CHECK(back.dtype() == DType::u8);
  CHECK(back.shape() == Shape{3, 4, 5});
  CHECK(back.to_doubles() == images.to_doubles());

  const Tensor floats = Tensor::from_vector(std::vector<float>{1.5f, -2.25f, 1e-3f, 3e7f}, {2, 2});
  const fs::path f = scratch("floats.idx");
  io::write_idx(f, floats);
  CHECK(io::read_idx(f).dtype() == DType::f32);
  CHECK(io::read_idx(f).to_doubles() == floats.to_doubles());
}

TEST_CASE("read_idx refuses a wrong magic, truncated files and trailing bytes") {
  const fs::path text = scratch("not-idx.txt");
  write_bytes(text, {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'});
  CHECK_THROWS_WITH_AS(io::read_idx(text), doctest::Contains("not-idx.txt: not an IDX file (magic 0x68656C6C"),
                       Error);

  const fs::path bad_type = scratch("bad-type");
  write_bytes(bad_type, {0x00, 0x00, 0x07, 0x01, 0, 0, 0, 1, 5});
  CHECK_THROWS_WITH_AS(io::read_idx(bad_type), doctest::Contains("not an IDX file"), Error);

  const fs::path short_data = scratch("short-idx1-ubyte");
  write_bytes(short_data, {0x00, 0x00, 0x08, 0x01, 0, 0, 0, 10, 1, 2, 3, 4, 5});
  CHECK_THROWS_WITH_AS(io::read_idx(short_data), doctest::Contains("truncated IDX file"), Error);

  const fs::path short_header = scratch("short-header");
  write_bytes(short_header, {0x00, 0x00, 0x08, 0x03, 0, 0, 0, 10});
  CHECK_THROWS_WITH_AS(io::read_idx(short_header), doctest::Contains("truncated IDX file"), Error);

  const fs::path trailing = scratch("trailing");
  write_bytes(trailing, {0x00, 0x00, 0x08, 0x01, 0, 0, 0, 2, 1, 2, 3});
  CHECK_THROWS_WITH_AS(io::read_idx(trailing), doctest::Contains("1 bytes after"), Error);

  // A gzip file cut in the middle of its stream.
  std::vector<std::uint8_t> values(4000);
  for (std::size_t k = 0; k < values.size(); ++k) values[k] = static_cast<std::uint8_t>((k * 2654435761u) >> 13);
  const fs::path gz = scratch("cut.gz");
  io::write_idx(gz, Tensor::from_vector(values, {4000}));
  std::vector<std::uint8_t> zipped = read_bytes(gz);
  zipped.resize(zipped.size() / 2);
  write_bytes(gz, zipped);
  CHECK_THROWS_WITH_AS(io::read_idx(gz), doctest::Contains("cut.gz: the gzip stream is corrupt or cut short"), Error);

  CHECK_THROWS_WITH_AS(io::read_idx(scratch("missing")), doctest::Contains("no such file"), Error);
}
