#include <cmath>
#include <fstream>
#include <iterator>
#include <set>

#include "test_util.h"
#include "tlk/data/orientation.h"
#include "tlk/data/phantom_dataset.h"
#include "tlk/data/raw_dataset.h"
#include "tlk/io/nifti.h"

using namespace tlk;

namespace {

bool same(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && a.to_doubles() == b.to_doubles();
}

// Voxel count and mean x index (W axis, towards patient Right) of the voxels labelled `value`.
struct LabelStats {
  std::int64_t count = 0;
  double mean_x = 0;
};
LabelStats label_stats(const data::PhantomCase& c, int value) {
  const auto W = c.labels.shape()[2];
  const std::uint8_t* y = c.labels.data<std::uint8_t>();
  LabelStats s;
  for (std::int64_t v = 0; v < c.labels.numel(); ++v)
    if (y[v] == value) {
      ++s.count;
      s.mean_x += static_cast<double>(v % W);
    }
  if (s.count) s.mean_x /= static_cast<double>(s.count);
  return s;
}

// Mean and sd of the image over voxels whose label is in `values` and whose 6 neighbours are too.
std::pair<double, double> interior_stats(const data::PhantomCase& c, const std::set<int>& values) {
  const auto D = c.labels.shape()[0], H = c.labels.shape()[1], W = c.labels.shape()[2];
  const std::uint8_t* y = c.labels.data<std::uint8_t>();
  const float* x = c.image.data<float>();
  double sum = 0, sum2 = 0;
  std::int64_t n = 0;
  for (std::int64_t k = 1; k + 1 < D; ++k)
    for (std::int64_t j = 1; j + 1 < H; ++j)
      for (std::int64_t i = 1; i + 1 < W; ++i) {
        const std::int64_t v = (k * H + j) * W + i;
        bool in = values.contains(y[v]);
        for (std::int64_t d : {H * W, W, std::int64_t{1}})
          in = in && values.contains(y[v - d]) && values.contains(y[v + d]);
        if (!in) continue;
        sum += x[v];
        sum2 += static_cast<double>(x[v]) * x[v];
        ++n;
      }
  REQUIRE(n > 0);
  const double mean = sum / static_cast<double>(n);
  return {mean, std::sqrt(std::max(0.0, sum2 / static_cast<double>(n) - mean * mean))};
}

// Mean and sd of the image in the 8 x 8 in-plane corner (far outside the body) of every slice.
std::pair<double, double> corner_air_stats(const data::PhantomCase& c) {
  const auto D = c.image.shape()[0], H = c.image.shape()[1], W = c.image.shape()[2];
  const float* x = c.image.data<float>();
  double sum = 0, sum2 = 0, n = 0;
  for (std::int64_t k = 0; k < D; ++k)
    for (std::int64_t j = 0; j < 8; ++j)
      for (std::int64_t i = 0; i < 8; ++i) {
        const double v = x[(k * H + j) * W + i];
        sum += v, sum2 += v * v, n += 1;
      }
  return {sum / n, std::sqrt(sum2 / n - (sum / n) * (sum / n))};
}

std::string file_bytes(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

}  // namespace

TEST_CASE("phantom: presets have the documented shapes, spacings and orientations") {
  const auto src = data::amos_like_source(3), tgt = data::kits_like_target(3);
  CHECK(src.grid().shape == std::array<std::int64_t, 3>{64, 128, 128});
  CHECK(tgt.grid().shape == std::array<std::int64_t, 3>{32, 160, 160});
  CHECK(data::amos_like_source(3, 0.5).grid().shape == std::array<std::int64_t, 3>{32, 64, 64});
  CHECK(data::amos_like_source(3, 0.5).spacing == std::array<double, 3>{4.0, 3.0, 3.0});
  CHECK(tgt.spacing == std::array<double, 3>{4.0, 1.2, 1.2});
  CHECK(src.orientation == "LPS");
  CHECK(tgt.orientation == "IPL");
  CHECK(tgt.anatomy.tumours);
  CHECK_FALSE(src.anatomy.tumours);
  CHECK_THROWS_AS(data::amos_like_source(3, 0.0), Error);
}

TEST_CASE("phantom: the same seed and index give the same case; another seed or index another") {
  const auto o = data::amos_like_source(2, 0.5);
  const data::PhantomCase a = data::generate_phantom_case(o, 11, 1), b = data::generate_phantom_case(o, 11, 1);
  CHECK(a.id == "amos_00001");
  CHECK(a.image.shape() == Shape{32, 64, 64});
  CHECK(a.image.dtype() == DType::f32);
  CHECK(a.labels.dtype() == DType::u8);
  CHECK(same(a.image, b.image));
  CHECK(same(a.labels, b.labels));
  CHECK_FALSE(same(a.labels, data::generate_phantom_case(o, 11, 0).labels));
  CHECK_FALSE(same(a.labels, data::generate_phantom_case(o, 12, 1).labels));
}

TEST_CASE("phantom: source cases hold both kidneys on the right sides and only AMOS labels, inside the body") {
  const auto o = data::amos_like_source(4, 0.5);
  for (int c = 0; c < 4; ++c) {
    CAPTURE(c);
    const data::PhantomCase pc = data::generate_phantom_case(o, 5, c);
    const double center = 0.5 * static_cast<double>(pc.labels.shape()[2] - 1);
    const std::uint8_t* y = pc.labels.data<std::uint8_t>();
    const std::uint8_t* body = pc.body.data<std::uint8_t>();
    std::set<int> present;
    bool outside = false;
    for (std::int64_t v = 0; v < pc.labels.numel(); ++v) {
      present.insert(y[v]);
      outside = outside || (y[v] > 0 && body[v] == 0);
    }
    CHECK_FALSE(outside);
    CHECK(*present.rbegin() <= 15);
    CHECK(present.size() >= 14);  // background and at least 13 organs (prostate/bladder may leave the FOV)
    const LabelStats right = label_stats(pc, 2), left = label_stats(pc, 3);
    CHECK(right.count > 300);
    CHECK(left.count > 300);
    CHECK(right.mean_x > center + 5);  // RAS: x grows towards the patient's right
    CHECK(left.mean_x < center - 5);
    CHECK(label_stats(pc, 6).mean_x > center);  // liver right
    CHECK(label_stats(pc, 1).mean_x < center);  // spleen left
  }
}

TEST_CASE("phantom: target cases hold both kidneys and an attached tumour, labels 0/1/2 only") {
  const auto o = data::kits_like_target(4, 0.5);
  for (int c = 0; c < 4; ++c) {
    CAPTURE(c);
    const data::PhantomCase pc = data::generate_phantom_case(o, 9, c);
    const auto H = pc.labels.shape()[1], W = pc.labels.shape()[2];
    const std::uint8_t* y = pc.labels.data<std::uint8_t>();
    const std::uint8_t* body = pc.body.data<std::uint8_t>();
    std::int64_t kidney_right = 0, kidney_left = 0, tumour = 0, touching = 0;
    bool outside = false, bad_value = false;
    for (std::int64_t v = 0; v < pc.labels.numel(); ++v) {
      bad_value = bad_value || y[v] > 2;
      outside = outside || (y[v] > 0 && body[v] == 0);
      if (y[v] == 1) (static_cast<double>(v % W) > 0.5 * static_cast<double>(W - 1) ? kidney_right : kidney_left)++;
      if (y[v] == 2) {
        ++tumour;
        for (std::int64_t d : {H * W, W, std::int64_t{1}})
          if ((v >= d && y[v - d] == 1) || (v + d < pc.labels.numel() && y[v + d] == 1)) ++touching;
      }
    }
    CHECK_FALSE(bad_value);
    CHECK_FALSE(outside);
    CHECK(kidney_right > 150);  // 8 x 2.4 x 2.4 mm voxels at scale 0.5
    CHECK(kidney_left > 150);
    CHECK(tumour >= 5);
    CHECK(touching > 0);
  }
}

TEST_CASE("phantom: noise, calibration and kidney contrast follow the domain options") {
  const auto src = data::amos_like_source(1, 0.5), tgt = data::kits_like_target(1, 0.5);
  const data::PhantomCase s = data::generate_phantom_case(src, 3, 0), t = data::generate_phantom_case(tgt, 3, 0);
  const auto [s_air, s_noise] = corner_air_stats(s);
  const auto [t_air, t_noise] = corner_air_stats(t);
  CHECK(s_air == doctest::Approx(-1000).epsilon(0.003));
  CHECK(t_air == doctest::Approx(0.95 * -1000 + 20).epsilon(0.004));
  CHECK(s_noise == doctest::Approx(src.intensity.noise_sigma).epsilon(0.12));
  CHECK(t_noise == doctest::Approx(tgt.intensity.noise_sigma).epsilon(0.12));
  // Portal-venous kidneys are nearly uniform; corticomedullary ones are a bright rim on a dark core.
  const auto [s_mean, s_sd] = interior_stats(s, {2, 3});
  const auto [t_mean, t_sd] = interior_stats(t, {1});
  CHECK(s_mean > 150);
  CHECK(s_mean < 190);
  CHECK(s_sd < 25);
  CHECK(t_sd > 40);
  CHECK(t_mean > 120);
  CHECK(t_mean < 240);

  // The same patient and noise with the kidney 60 HU brighter: only the kidney changes, by 60 HU.
  auto brighter = src;
  brighter.intensity.kidney_cortex += 60;
  brighter.intensity.kidney_medulla += 60;
  const data::PhantomCase b = data::generate_phantom_case(brighter, 3, 0);
  CHECK(same(b.labels, s.labels));
  CHECK(interior_stats(b, {2, 3}).first - s_mean == doctest::Approx(60).epsilon(0.01));
  CHECK(interior_stats(b, {6}).first == doctest::Approx(interior_stats(s, {6}).first).epsilon(1e-6));
}

TEST_CASE("phantom: headers encode the orientation code, spacing and origin (sform and qform agree)") {
  const auto grid = data::kits_like_target(1, 0.5).grid();
  for (const std::string code : {"RAS", "LPS", "IPL", "ASR", "PIR", "SLA"}) {
    CAPTURE(code);
    const data::PhantomHeader h = data::phantom_nifti_header(grid, code);
    const auto o = data::orientation_of(h.header.affine(), h.orientation.file_shape);
    CHECK(o.code() == code);
    CHECK(o.canonical_shape() == grid.shape);
    io::NiftiImage q = h.header;
    q.sform_code = 0;
    const auto qa = q.affine(), sa = h.header.affine();
    for (int r = 0; r < 3; ++r)
      for (int col = 0; col < 4; ++col) CHECK(qa[r][col] == doctest::Approx(sa[r][col]).epsilon(1e-9));
    // The canonical affine is diag(spacing x, y, z) with voxel 0 at the grid's origin.
    const auto ca = data::canonical_affine(sa, h.orientation);
    for (int r = 0; r < 3; ++r) {
      CHECK(ca[r][r] == doctest::Approx(grid.spacing[2 - r]));
      CHECK(ca[r][3] == doctest::Approx(grid.origin[2 - r]));
    }
  }
  CHECK_THROWS_AS(data::phantom_nifti_header(grid, "RAX"), Error);
  CHECK_THROWS_AS(data::phantom_nifti_header(grid, "RRS"), Error);
  CHECK_THROWS_AS(data::phantom_nifti_header(grid, "RA"), Error);
}

TEST_CASE("phantom: written datasets read back in their orientation and spacing, identical per seed") {
  namespace fs = std::filesystem;
  const fs::path root = testing::fresh_temp_dir("phantom_dataset");
  auto src = data::amos_like_source(2, 0.5);
  src.test_cases = 1;
  auto tgt = data::kits_like_target(2, 0.5);
  tgt.test_cases = 1;
  data::write_phantom_dataset(root / "source", src, 21);
  data::write_phantom_dataset(root / "target", tgt, 22, {.write_labels = false});
  data::write_phantom_dataset(root / "source_again", src, 21);

  const data::RawDataset s = data::open_raw_dataset(root / "source");
  REQUIRE(s.training.size() == 2);
  REQUIRE(s.test.size() == 1);
  CHECK(s.training[1].id == "amos_00001");
  CHECK(s.training[0].label.has_value());
  CHECK(s.test[0].id == "amos_00002");
  CHECK(s.test[0].label.has_value());
  CHECK(s.info.labels.size() == 16);
  CHECK(s.info.label_value("left kidney") == 3);
  CHECK(s.info.channel_names == std::vector<std::string>{"CT"});
  const data::RawDataset t = data::open_raw_dataset(root / "target");
  REQUIRE(t.training.size() == 2);
  CHECK_FALSE(t.training[0].label.has_value());
  REQUIRE(t.test.size() == 1);
  CHECK(t.test[0].label.has_value());
  CHECK(t.info.label_value("tumor") == 2);

  for (const auto& [ds, options, seed, code] : {std::tuple{&s, &src, 21, "LPS"}, std::tuple{&t, &tgt, 22, "IPL"}}) {
    const data::RawCase& rc = ds->test[0];
    CAPTURE(rc.id);
    const io::NiftiImage im = io::read_nifti(rc.images[0]), lab = io::read_nifti(*rc.label);
    CHECK(im.stored_type == io::NiftiType::i16);
    CHECK(lab.stored_type == io::NiftiType::u8);
    const data::Orientation o = data::orientation_of(im);
    CHECK(o.code() == code);
    CHECK(data::orientation_of(lab).code() == code);
    const auto spacing = data::canonical_spacing(im, o);  // pixdim is f32 in NIfTI-1
    for (std::size_t a = 0; a < 3; ++a) CHECK(spacing[a] == doctest::Approx(options->spacing[a]).epsilon(1e-6));
    const data::PhantomCase pc = data::generate_phantom_case(*options, static_cast<std::uint64_t>(seed), 2);
    CHECK(same(data::to_canonical(im.scaled_f32(), o), pc.image));
    CHECK(same(data::to_canonical(lab.data, o), pc.labels));
  }
  for (const std::string f : {"imagesTr/amos_00000_0000.nii.gz", "labelsTr/amos_00001.nii.gz", "dataset.json"})
    CHECK(file_bytes(root / "source" / f) == file_bytes(root / "source_again" / f));
  // Another domain's cases in the folder would join the dataset: refused.
  CHECK_THROWS_AS(data::write_phantom_dataset(root / "source", data::kits_like_target(1, 0.25), 1), Error);
  fs::remove_all(root);
}
