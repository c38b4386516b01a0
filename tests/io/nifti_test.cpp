#include "tlk/io/nifti.h"

#include <zlib.h>

#include <fstream>
#include <sstream>

#include "test_util.h"
#include "tlk/task/metrics.h"

using namespace tlk;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / "tlk-nifti-test";
  fs::create_directories(dir);
  return dir / name;
}

std::vector<std::uint8_t> file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& p, const std::vector<std::uint8_t>& bytes) {
  std::ofstream(p, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

io::NiftiImage synthetic(io::NiftiType type, int version) {
  io::NiftiImage im;
  Generator gen(1);
  im.data = rand({4, 3, 5}, gen, 0, 200, TensorOptions{DType::f64});  // [z, y, x]: x = 5 fastest
  if (type != io::NiftiType::f32 && type != io::NiftiType::f64) {
    Tensor r = im.data.to(DType::i32);
    im.data = type == io::NiftiType::u8 ? r.to(DType::u8) : r;
  } else {
    im.data = im.data.to(type == io::NiftiType::f32 ? DType::f32 : DType::f64);
  }
  im.dims = {5, 3, 4};
  im.spacing = {0.75, 0.8, 3.0};
  im.stored_type = type;
  im.version = version;
  im.qform_code = 1;
  im.quatern = {0, 0, 1, -10, 20, 30};  // 180 degrees about z
  im.sform_code = 0;
  im.description = "tlk test";
  return im;
}

}  // namespace

TEST_CASE("NIfTI: every voxel type, NIfTI-1 and -2, .nii and .nii.gz round-trip with their geometry") {
  for (auto type : {io::NiftiType::u8, io::NiftiType::i16, io::NiftiType::u16, io::NiftiType::i32, io::NiftiType::f32,
                    io::NiftiType::f64})
    for (int version : {1, 2})
      for (const char* ext : {".nii", ".nii.gz"}) {
        CAPTURE(static_cast<int>(type));
        CAPTURE(version);
        CAPTURE(ext);
        const io::NiftiImage im = synthetic(type, version);
        const fs::path path = scratch(std::string("roundtrip") + ext);
        io::write_nifti(path, im);
        const io::NiftiImage back = io::read_nifti(path);
        CHECK(back.version == version);
        CHECK(back.stored_type == type);
        CHECK(back.dims == std::vector<std::int64_t>{5, 3, 4});
        CHECK(back.data.shape() == Shape{4, 3, 5});
        CHECK(testing::max_abs_diff(back.data, im.data) == 0.0);
        CHECK(back.spacing[2] == doctest::Approx(3.0));
        CHECK(back.description == "tlk test");
        const auto a = back.affine();
        // 180 degrees about z: x and y flip, z is kept; columns scaled by the spacing.
        CHECK(a[0][0] == doctest::Approx(-0.75));
        CHECK(a[1][1] == doctest::Approx(-0.8));
        CHECK(a[2][2] == doctest::Approx(3.0));
        CHECK(a[0][3] == doctest::Approx(-10));
        CHECK(a[2][3] == doctest::Approx(30));
      }
}

TEST_CASE("NIfTI: sform wins over qform, scl_slope/scl_inter scale the values") {
  io::NiftiImage im = synthetic(io::NiftiType::i16, 1);
  im.sform_code = 2;
  im.srow = {{{0, 0, -2, 5}, {0, 1.5, 0, 6}, {1, 0, 0, 7}}};
  im.scl_slope = 2.0;
  im.scl_inter = -1.0;
  const fs::path path = scratch("sform.nii");
  io::write_nifti(path, im);
  const io::NiftiImage back = io::read_nifti(path);
  CHECK(back.affine()[0][2] == -2.0);
  CHECK(back.affine()[2][3] == 7.0);
  const auto raw = back.data.to_doubles(), scaled = back.scaled_f32().to_doubles();
  CHECK(scaled[3] == doctest::Approx(2.0 * raw[3] - 1.0));
}

TEST_CASE("NIfTI: corrupt, truncated and inconsistent files are clear errors naming the file") {
  const fs::path good = scratch("good.nii");
  io::write_nifti(good, synthetic(io::NiftiType::f32, 1));
  const auto bytes = file_bytes(good);
  auto expect_error = [](const std::vector<std::uint8_t>& data, const char* phrase) {
    const fs::path bad = scratch("bad.nii");
    write_bytes(bad, data);
    CHECK_THROWS_WITH_AS(io::read_nifti(bad), doctest::Contains(phrase), Error);
  };
  CHECK_THROWS_WITH_AS(io::read_nifti(scratch("absent.nii")), doctest::Contains("no such file"), Error);
  expect_error({1, 2, 3}, "too short for a NIfTI header");
  auto wrong_size = bytes;
  const std::int32_t ninety_nine = 99;
  std::memcpy(wrong_size.data(), &ninety_nine, 4);
  expect_error(wrong_size, "header size field is 99");
  auto wrong_magic = bytes;
  wrong_magic[344] = 'x';
  expect_error(wrong_magic, "bad NIfTI-1 magic");
  auto wrong_type = bytes;
  wrong_type[70] = 128;  // RGB24
  expect_error(wrong_type, "unsupported voxel type code 128");
  auto truncated = bytes;
  truncated.resize(bytes.size() - 7);
  expect_error(truncated, "truncated or inconsistent");
  auto big_dims = bytes;
  big_dims[42] = 50;  // dim[1] = 50 instead of 5
  expect_error(big_dims, "truncated or inconsistent");
  auto inside_header = bytes;
  const float offset = 100.0f;
  std::memcpy(inside_header.data() + 108, &offset, 4);
  expect_error(inside_header, "vox_offset 100 points inside");
  // A gzip stream cut short.
  const fs::path gz = scratch("good.nii.gz");
  io::write_nifti(gz, synthetic(io::NiftiType::f32, 1));
  auto gz_bytes = file_bytes(gz);
  gz_bytes.resize(gz_bytes.size() / 2);
  const fs::path cut = scratch("cut.nii.gz");
  write_bytes(cut, gz_bytes);
  CHECK_THROWS_WITH_AS(io::read_nifti(cut), doctest::Contains("cut.nii.gz"), Error);
}

TEST_CASE("NIfTI: the real KiTS19 masks match their manifest") {
  const fs::path shared = testing::shared_dir();
  if (shared.empty()) {
    MESSAGE("skipped: ../shared is absent");
    return;
  }
  const fs::path root = shared / "data" / "kits19-masks";
  std::ifstream manifest(root / "manifest.csv");
  std::string line;
  std::getline(manifest, line);  // header
  int cases = 0;
  while (std::getline(manifest, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
    REQUIRE(f.size() >= 8);
    CAPTURE(f[0]);
    const io::NiftiImage mask = io::read_nifti(root / f[0] / "segmentation.nii.gz");
    std::int64_t d1, d2, d3;
    double s1, s2, s3;
    REQUIRE(std::sscanf(f[1].c_str(), "%ldx%ldx%ld", &d1, &d2, &d3) == 3);
    REQUIRE(std::sscanf(f[2].c_str(), "%lfx%lfx%lf", &s1, &s2, &s3) == 3);
    CHECK(mask.dims == std::vector<std::int64_t>{d1, d2, d3});
    CHECK(mask.spacing[0] == doctest::Approx(s1).epsilon(1e-3));
    CHECK(mask.spacing[1] == doctest::Approx(s2).epsilon(1e-3));
    CHECK(mask.stored_type == (f[3] == "uint16" ? io::NiftiType::u16 : io::NiftiType::u8));
    std::int64_t counts[3] = {0, 0, 0};
    const Tensor labels = mask.data.to(DType::i32);
    const std::int32_t* l = labels.data<std::int32_t>();
    for (std::int64_t i = 0; i < labels.numel(); ++i)
      if (l[i] >= 0 && l[i] < 3) ++counts[l[i]];
    CHECK(counts[0] == std::stoll(f[5]));
    CHECK(counts[1] == std::stoll(f[6]));
    CHECK(counts[2] == std::stoll(f[7]));
    ++cases;
  }
  CHECK(cases == 10);
}

TEST_CASE("NIfTI: a real mask written and read back is identical, and its Dice with itself is 1") {
  const fs::path shared = testing::shared_dir();
  if (shared.empty()) {
    MESSAGE("skipped: ../shared is absent");
    return;
  }
  for (const char* c : {"case_00010", "case_00015"}) {  // uint8 and uint16
    CAPTURE(c);
    const io::NiftiImage mask = io::read_nifti(shared / "data" / "kits19-masks" / c / "segmentation.nii.gz");
    const fs::path copy = scratch(std::string(c) + ".nii.gz");
    io::write_nifti(copy, mask);
    const io::NiftiImage back = io::read_nifti(copy);
    CHECK(back.stored_type == mask.stored_type);
    CHECK(back.affine() == mask.affine());
    CHECK(testing::max_abs_diff(back.data.narrow(0, 100, 50), mask.data.narrow(0, 100, 50)) == 0.0);
    const auto equal = [&] {
      const Tensor a = back.data.to(DType::i32), b = mask.data.to(DType::i32);
      return std::memcmp(a.raw_data(), b.raw_data(), static_cast<std::size_t>(a.numel()) * 4) == 0;
    }();
    CHECK(equal);
    CHECK(task::dice(back.data.narrow(0, 200, 100), mask.data.narrow(0, 200, 100), 1) == 1.0);
  }
}

TEST_CASE("NIfTI: a big-endian file is read with every field and voxel swapped") {
  // A NIfTI-1 header written by hand in big-endian order: dims 3x2x1 (x, y, z), int16 voxels.
  std::vector<std::uint8_t> bytes(352 + 6 * 2, 0);
  auto put_be = [&](std::size_t offset, auto value) {
    std::uint8_t raw[sizeof value];
    std::memcpy(raw, &value, sizeof value);
    for (std::size_t i = 0; i < sizeof value; ++i) bytes[offset + i] = raw[sizeof value - 1 - i];
  };
  put_be(0, std::int32_t{348});
  const std::int16_t dims[8] = {3, 3, 2, 1, 1, 1, 1, 1};
  for (int i = 0; i < 8; ++i) put_be(40 + 2 * static_cast<std::size_t>(i), dims[i]);
  put_be(70, std::int16_t{4});  // int16
  put_be(72, std::int16_t{16});
  const float pixdim[8] = {1, 0.5f, 0.25f, 2.0f, 1, 1, 1, 1};
  for (int i = 0; i < 8; ++i) put_be(76 + 4 * static_cast<std::size_t>(i), pixdim[i]);
  put_be(108, 352.0f);
  std::memcpy(bytes.data() + 344, "n+1\0", 4);
  const std::int16_t voxels[6] = {1, -2, 300, -400, 5, 32767};
  for (int i = 0; i < 6; ++i) put_be(352 + 2 * static_cast<std::size_t>(i), voxels[i]);
  const fs::path path = scratch("big_endian.nii");
  write_bytes(path, bytes);
  const io::NiftiImage im = io::read_nifti(path);
  CHECK(im.dims == std::vector<std::int64_t>{3, 2, 1});
  CHECK(im.data.shape() == Shape{1, 2, 3});
  CHECK(im.spacing[1] == 0.25);
  CHECK(im.stored_type == io::NiftiType::i16);
  CHECK(im.data.to_doubles() == std::vector<double>{1, -2, 300, -400, 5, 32767});
}
