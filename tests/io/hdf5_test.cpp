#include <fstream>

#include "test_util.h"
#include "tlk/io/hdf5_file.h"

using namespace tlk;
namespace fs = std::filesystem;

namespace {
fs::path scratch(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / "tlk-io-test";
  fs::create_directories(dir);
  return dir / name;
}
}  // namespace

TEST_CASE("HDF5: tensors of every stored dtype round-trip, in groups, small and chunked") {
  Generator gen(1);
  const fs::path path = scratch("roundtrip.h5");
  Tensor f = randn({2, 13, 3, 4, 5}, gen);
  Tensor d = randn({7}, gen, 0, 1, TensorOptions{DType::f64});
  Tensor big = randn({3, 64, 40, 20}, gen);  // > 65536 elements: chunked + compressed
  Tensor l = Tensor::from_vector(std::vector<std::int64_t>{-1, 0, 5}, {3});
  Tensor u = Tensor::from_vector(std::vector<std::uint8_t>{0, 7, 255}, {3});
  Tensor s = Tensor::scalar(2.5);
  {
    auto file = io::Hdf5File::create(path);
    file.write("model/encoder.stages.0.conv1.weight", f.to(Layout::blocked));  // stored plain
    file.write("model/d", d);
    file.write("big", big.permute({0, 2, 1, 3}));  // a strided view is stored as its values
    file.write("labels/l", l);
    file.write("labels/u", u);
    file.write("scalar", s);
    file.set_attribute("config", R"({"levels": 5})");
    file.flush();
  }
  auto file = io::Hdf5File::open(path);
  CHECK(testing::max_abs_diff(file.read("model/encoder.stages.0.conv1.weight"), f) == 0.0);
  CHECK(file.read("model/d").dtype() == DType::f64);
  CHECK(testing::max_abs_diff(file.read("model/d"), d) == 0.0);
  CHECK(testing::max_abs_diff(file.read("big"), big.permute({0, 2, 1, 3}).contiguous()) == 0.0);
  CHECK(file.read("labels/l").to_doubles() == std::vector<double>{-1, 0, 5});
  CHECK(file.read("labels/u").dtype() == DType::u8);
  CHECK(file.read("scalar").item() == 2.5);
  CHECK(file.attribute("config") == R"({"levels": 5})");
  CHECK(file.has("model/d"));
  CHECK_FALSE(file.has("model/missing"));
  CHECK_FALSE(file.has("nowhere/at/all"));
  auto names = file.datasets("/model");
  CHECK(names == std::vector<std::string>{"d", "encoder.stages.0.conv1.weight"});
}

TEST_CASE("HDF5: missing, corrupt and truncated files and missing datasets give clear errors") {
  CHECK_THROWS_WITH_AS(io::Hdf5File::open(scratch("does-not-exist.h5")), doctest::Contains("no such file"), Error);
  const fs::path corrupt = scratch("corrupt.h5");
  std::ofstream(corrupt) << "this is not an HDF5 file";
  CHECK_THROWS_WITH_AS(io::Hdf5File::open(corrupt), doctest::Contains("not a readable HDF5 file"), Error);
  const fs::path good = scratch("good.h5");
  {
    auto file = io::Hdf5File::create(good);
    file.write("x", Tensor::zeros({100, 100}));
  }
  const fs::path truncated = scratch("truncated.h5");
  fs::copy_file(good, truncated, fs::copy_options::overwrite_existing);
  fs::resize_file(truncated, fs::file_size(good) / 2);
  CHECK_THROWS_AS(io::Hdf5File::open(truncated).read("x"), Error);
  auto file = io::Hdf5File::open(good);
  CHECK_THROWS_WITH_AS(file.read("y"), doctest::Contains("dataset '/y': not found"), Error);
  CHECK_THROWS_WITH_AS(file.attribute("nope"), doctest::Contains("attribute 'nope' not found"), Error);
  CHECK_THROWS_WITH_AS(io::Hdf5File::create(scratch("no-such-dir") / "x.h5"), doctest::Contains("cannot create"),
                       Error);
}

TEST_CASE("write_atomically: a failed write leaves the old file and no temporary") {
  const fs::path path = scratch("atomic.h5");
  io::write_atomically(path, [](const fs::path& tmp) { io::Hdf5File::create(tmp).write("v", Tensor::ones({2})); });
  CHECK(io::Hdf5File::open(path).read("v").to_doubles() == std::vector<double>{1, 1});
  CHECK_THROWS_WITH_AS(io::write_atomically(path,
                                            [](const fs::path& tmp) {
                                              auto f = io::Hdf5File::create(tmp);
                                              f.write("v", Tensor::zeros({2}));
                                              fail("simulated failure while writing");
                                            }),
                       doctest::Contains("simulated failure"), Error);
  CHECK(io::Hdf5File::open(path).read("v").to_doubles() == std::vector<double>{1, 1});
  CHECK_FALSE(fs::exists(path.string() + ".tmp"));
}
