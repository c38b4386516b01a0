#include "tlk/data/classification_dataset.h"

#include <algorithm>
#include <numeric>

#include "test_util.h"
#include "tlk/io/hdf5_file.h"

using namespace tlk;
namespace fs = std::filesystem;
using tlk::testing::shared_dir;

namespace {

fs::path scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / "tlk-classification-dataset-test";
  fs::create_directories(dir);
  return dir / name;
}

// A tiny TLK-layout file: 4 u8 images [4, 1, 2, 3] with values 10 * i + k, labels {0, 2, 1, 2}.
fs::path tiny_file(const std::string& name) {
  std::vector<std::uint8_t> v(4 * 6);
  for (std::size_t k = 0; k < v.size(); ++k) v[k] = static_cast<std::uint8_t>(10 * (k / 6) + k % 6);
  const fs::path path = scratch(name);
  data::write_classification_file(path, {{"", Tensor::from_vector(v, {4, 1, 2, 3}),
                                          Tensor::from_vector(std::vector<std::int32_t>{0, 2, 1, 2}, {4})}});
  return path;
}

// One f32 image [1, 1, H, W] holding `v` (row-major).
Tensor image(const std::vector<float>& v, std::int64_t h, std::int64_t w) { return Tensor::from_vector(v, {1, 1, h, w}); }

std::vector<double> values(const Tensor& t) { return t.to_doubles(); }

void check_near(const std::vector<double>& got, const std::vector<double>& expected, double tol = 1e-5) {
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(expected[i]).epsilon(tol));
}

// Mean ink of class `label` in the central band of 4 columns (all rows) minus the central band of 4
// rows (all columns): positive for an upright "1" (a vertical stroke), negative when transposed.
double vertical_stroke_score(const data::ClassificationDataset& ds, std::int64_t label) {
  const Shape& s = ds.images.shape();
  const std::int64_t h = s[2], w = s[3];
  std::vector<double> mean(static_cast<std::size_t>(h * w), 0.0);
  const float* p = ds.images.data<float>();
  const std::int64_t* l = ds.labels.data<std::int64_t>();
  for (std::int64_t i = 0; i < ds.size(); ++i)
    if (l[i] == label)
      for (std::int64_t k = 0; k < h * w; ++k) mean[static_cast<std::size_t>(k)] += p[i * h * w + k];
  double cols = 0, rows = 0;
  for (std::int64_t y = 0; y < h; ++y)
    for (std::int64_t x = w / 2 - 2; x < w / 2 + 2; ++x) cols += mean[static_cast<std::size_t>(y * w + x)];
  for (std::int64_t y = h / 2 - 2; y < h / 2 + 2; ++y)
    for (std::int64_t x = 0; x < w; ++x) rows += mean[static_cast<std::size_t>(y * w + x)];
  return cols - rows;
}

}  // namespace

TEST_CASE("load_classification_dataset reads TLK's layout and scales u8 to [0, 1]") {
  const fs::path path = tiny_file("tiny.h5");
  const data::ClassificationDataset ds = data::load_classification_dataset(path.string());
  CHECK(ds.size() == 4);
  CHECK(ds.num_classes == 3);
  CHECK(ds.images.dtype() == DType::f32);
  CHECK(ds.images.shape() == Shape{4, 1, 2, 3});
  CHECK(ds.labels.dtype() == DType::i64);
  CHECK(values(ds.labels) == std::vector<double>{0, 2, 1, 2});
  CHECK(ds.class_counts() == std::vector<std::int64_t>{1, 1, 2});
  const std::vector<double> v = values(ds.images);
  CHECK(v[0] == doctest::Approx(0.0));
  CHECK(v[7] == doctest::Approx(11.0 / 255.0));
  CHECK(v[23] == doctest::Approx(35.0 / 255.0));
  CHECK(io::Hdf5File::open(path).attribute("num_classes") == "3");

  data::ClassificationLoadOptions o;
  o.scale = 1.0;
  o.mean = {10.0};
  o.stddev = {2.0};
  o.num_classes = 5;
  const data::ClassificationDataset n = data::load_classification_dataset(path.string(), o);
  CHECK(n.num_classes == 5);
  CHECK(values(n.images)[7] == doctest::Approx((11.0 - 10.0) / 2.0));
  o.num_classes = 2;  // label 2 does not fit
  CHECK_THROWS_WITH_AS(data::load_classification_dataset(path.string(), o),
                       doctest::Contains("label 2 is out of range for 2 classes"), Error);
}

TEST_CASE("load_classification_dataset reads the Kaggle usps.h5 layout by split") {
  const fs::path path = scratch("kaggle.h5");
  {
    io::Hdf5File f = io::Hdf5File::create(path);
    std::vector<float> train(3 * 9), test(2 * 9);
    for (std::size_t k = 0; k < train.size(); ++k) train[k] = static_cast<float>(k) / 27.0f;
    f.write("train/data", Tensor::from_vector(train, {3, 9}));
    f.write("train/target", Tensor::from_vector(std::vector<std::int32_t>{1, 0, 1}, {3}));
    f.write("test/data", Tensor::from_vector(test, {2, 9}));
    f.write("test/target", Tensor::from_vector(std::vector<std::int32_t>{0, 0}, {2}));
  }
  const data::ClassificationDataset train = data::load_classification_dataset(path.string() + ":train");
  CHECK(train.source == path.string() + ":train");
  CHECK(train.images.shape() == Shape{3, 1, 3, 3});
  CHECK(values(train.images)[10] == doctest::Approx(10.0 / 27.0));  // f32 is not rescaled
  CHECK(values(train.labels) == std::vector<double>{1, 0, 1});
  CHECK(train.num_classes == 2);

  data::ClassificationLoadOptions o;
  o.split = "test";
  CHECK(data::load_classification_dataset(path.string(), o).size() == 2);
  CHECK_THROWS_WITH_AS(data::load_classification_dataset(path.string() + ":train", o),
                       doctest::Contains("names split 'train' but the options say 'test'"), Error);
  // No split: the error lists what the file holds.
  CHECK_THROWS_WITH_AS(data::load_classification_dataset(path.string()),
                       doctest::Contains("the file holds: test/data, test/target, train/data, train/target"), Error);
  o.split = "train";
  o.flat_image_shape = {1, 9, 1};
  CHECK(data::load_classification_dataset(path.string(), o).images.shape() == Shape{3, 1, 9, 1});
  o.flat_image_shape = {2, 4};
  CHECK_THROWS_WITH_AS(data::load_classification_dataset(path.string(), o), doctest::Contains("do not fit"), Error);
}

TEST_CASE("load_classification_dataset refuses bad files with messages naming file and dataset") {
  const fs::path path = scratch("bad.h5");
  auto write = [&](const Tensor& images, const Tensor& labels) {
    io::Hdf5File f = io::Hdf5File::create(path);
    f.write("images", images);
    f.write("labels", labels);
  };
  const Tensor good_images = Tensor::zeros({3, 1, 4, 4}, TensorOptions{DType::u8});
  const Tensor good_labels = Tensor::from_vector(std::vector<std::int64_t>{0, 1, 2}, {3});

  write(good_images, Tensor::from_vector(std::vector<std::int64_t>{0, 1}, {2}));
  CHECK_THROWS_WITH_AS(data::load_classification_dataset(path.string()),
                       doctest::Contains("bad.h5 dataset '/labels': 2 labels for 3 images"), Error);
  write(good_images, Tensor::from_vector(std::vector<std::int64_t>{0, -1, 2}, {3}));
  CHECK_THROWS_WITH_AS(data::load_classification_dataset(path.string()),
                       doctest::Contains("label -1 of image 1 is negative"), Error);
  write(Tensor::zeros({3, 1, 4, 4}, TensorOptions{DType::f64}), good_labels);
  CHECK_THROWS_WITH_AS(data::load_classification_dataset(path.string()),
                       doctest::Contains("bad.h5 dataset '/images': images must be u8 or f32, got f64"), Error);
  write(Tensor::zeros({3, 10}, TensorOptions{DType::f32}), good_labels);
  CHECK_THROWS_WITH_AS(data::load_classification_dataset(path.string()), doctest::Contains("are not square"), Error);
  write(Tensor::zeros({3, 1, 1, 1, 2, 2}, TensorOptions{DType::f32}), good_labels);
  CHECK_THROWS_WITH_AS(data::load_classification_dataset(path.string()), doctest::Contains("got [3, 1, 1, 1, 2, 2]"),
                       Error);
  write(good_images, Tensor::zeros({3}, TensorOptions{DType::f32}));
  CHECK_THROWS_WITH_AS(data::load_classification_dataset(path.string()),
                       doctest::Contains("labels must be integers, got f32"), Error);
  CHECK_THROWS_WITH_AS(data::load_classification_dataset(scratch("nope.h5").string()),
                       doctest::Contains("nope.h5: no such file"), Error);
}

TEST_CASE("fit_images resizes bilinearly with half-pixel centres and antialiased shrinking") {
  // Upsampling 2 -> 4: [0, 4] -> [0, 1, 3, 4] per axis (edges clamp).
  const Tensor up = data::fit_images(image({0, 4, 8, 12}, 2, 2), {4, 4}, data::SpatialFit::resize);
  CHECK(up.shape() == Shape{1, 1, 4, 4});
  const std::vector<double> u = values(up);
  check_near({u[0], u[1], u[2], u[3]}, {0, 1, 3, 4});
  check_near({u[0], u[4], u[8], u[12]}, {0, 2, 6, 8});
  CHECK(u[5] == doctest::Approx(3.0));  // 0.75 * 1 + 0.25 * 9

  // Shrinking 4 -> 2: antialiased (triangle of radius 2) vs sampled.
  const Tensor row = image({0, 0, 4, 4}, 1, 4);
  check_near(values(data::fit_images(row, {1, 2}, data::SpatialFit::resize)), {4.0 / 7.0, 24.0 / 7.0});
  check_near(values(data::fit_images(row, {1, 2}, data::SpatialFit::resize, false)), {0, 4});

  // A constant stays constant through any resize; 3-D images are resized trilinearly.
  const Tensor c = data::fit_images(Tensor::full({2, 3, 7, 5}, 0.25), {16, 9}, data::SpatialFit::resize);
  CHECK(c.shape() == Shape{2, 3, 16, 9});
  for (double x : values(c)) CHECK(x == doctest::Approx(0.25));
  const Tensor vol = Tensor::from_vector(std::vector<float>{0, 0, 0, 0, 4, 4, 4, 4}, {1, 1, 2, 2, 2});
  const std::vector<double> t = values(data::fit_images(vol, {4, 3, 3}, data::SpatialFit::resize));
  REQUIRE(t.size() == 36);
  check_near({t[0], t[9], t[18], t[27]}, {0, 1, 3, 4});
  CHECK_THROWS_WITH_AS(data::fit_images(vol, {4, 4}, data::SpatialFit::resize),
                       doctest::Contains("need a spatial size of 3 values"), Error);
}

TEST_CASE("fit_images pads with centred zeros and crops the centre") {
  const Tensor padded = data::fit_images(image({1, 2, 3, 4}, 2, 2), {5, 4}, data::SpatialFit::pad);
  CHECK(padded.shape() == Shape{1, 1, 5, 4});
  // Rows: 1 above, 2 below (the odd pixel at the end); columns: 1 left, 1 right.
  CHECK(values(padded) == std::vector<double>{0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  std::vector<float> v(16);
  std::iota(v.begin(), v.end(), 0.0f);
  const Tensor cropped = data::fit_images(image(v, 4, 4), {2, 3}, data::SpatialFit::pad);
  CHECK(values(cropped) == std::vector<double>{4, 5, 6, 8, 9, 10});  // rows 1-2, columns 0-2
}

TEST_CASE("load_classification_dataset resizes, pads and replicates grey to RGB") {
  const fs::path path = tiny_file("tiny-fit.h5");
  data::ClassificationLoadOptions o;
  o.spatial_size = {4, 6};
  o.grey_to_rgb = true;
  const data::ClassificationDataset r = data::load_classification_dataset(path.string(), o);
  CHECK(r.images.shape() == Shape{4, 3, 4, 6});
  const std::vector<double> v = values(r.images);
  for (std::int64_t k = 0; k < 24; ++k) {  // image 1: channels equal
    CHECK(v[static_cast<std::size_t>(72 + k)] == v[static_cast<std::size_t>(72 + 24 + k)]);
    CHECK(v[static_cast<std::size_t>(72 + k)] == v[static_cast<std::size_t>(72 + 48 + k)]);
  }
  CHECK(v[72] == doctest::Approx(10.0 / 255.0));  // corners keep their value
  o.fit = data::SpatialFit::pad;
  o.grey_to_rgb = false;
  const data::ClassificationDataset p = data::load_classification_dataset(path.string(), o);
  CHECK(p.images.shape() == Shape{4, 1, 4, 6});
  const std::vector<double> pv = values(p.images);
  CHECK(pv[24 + 0] == 0.0);
  CHECK(pv[24 + 6 + 1] == doctest::Approx(10.0 / 255.0));  // row 1, column 1 <- (0, 0)
  o.spatial_size = {4, 6, 6};
  CHECK_THROWS_WITH_AS(data::load_classification_dataset(path.string(), o),
                       doctest::Contains("2-D images [4, 1, 2, 3] need spatial_size of 2 values"), Error);
}

TEST_CASE("subset, shuffled_indices and epoch_batches") {
  const data::ClassificationDataset ds = data::load_classification_dataset(tiny_file("tiny-batch.h5").string());
  const data::ClassificationDataset b = data::subset(ds, {3, 0, 3});
  CHECK(b.images.shape() == Shape{3, 1, 2, 3});
  CHECK(values(b.labels) == std::vector<double>{2, 0, 2});
  const std::vector<double> v = values(b.images), all = values(ds.images);
  CHECK(std::equal(v.begin(), v.begin() + 6, all.begin() + 18));
  CHECK(std::equal(v.begin() + 6, v.begin() + 12, all.begin()));
  CHECK_THROWS_WITH_AS(data::subset(ds, {4}), doctest::Contains("index 4 is out of range for 4 images"), Error);

  Generator g1(5), g2(5), g3(6);
  const std::vector<std::int64_t> a = data::shuffled_indices(100, g1);
  CHECK(a == data::shuffled_indices(100, g2));
  CHECK(a != data::shuffled_indices(100, g3));
  std::vector<std::int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::int64_t> expected(100);
  std::iota(expected.begin(), expected.end(), 0);
  CHECK(sorted == expected);
  CHECK(a != expected);

  Generator g(1);
  const auto batches = data::epoch_batches(10, 4, &g);
  REQUIRE(batches.size() == 3);
  CHECK(batches[2].size() == 2);
  CHECK(data::epoch_batches(10, 4, &g, true).size() == 2);
  CHECK(data::epoch_batches(10, 4, nullptr)[1] == std::vector<std::int64_t>{4, 5, 6, 7});
}

TEST_CASE("real USPS: the train and test splits of the Kaggle usps.h5") {
  if (shared_dir().empty()) {
    MESSAGE("skipped: ../shared is absent");
    return;
  }
  const fs::path usps = shared_dir() / "data/digits/usps.h5";
  const data::ClassificationDataset train = data::load_classification_dataset(usps.string() + ":train");
  CHECK(train.images.shape() == Shape{7291, 1, 16, 16});
  CHECK(train.num_classes == 10);
  CHECK(train.class_counts() == std::vector<std::int64_t>{1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644});
  const auto [lo, hi] = std::minmax_element(train.images.data<float>(), train.images.data<float>() + train.images.numel());
  CHECK(*lo >= 0.0f);
  CHECK(*hi <= 1.0f);
  CHECK(*hi > 0.9f);
  CHECK(vertical_stroke_score(train, 1) > 0.0);  // upright, not transposed

  data::ClassificationLoadOptions o;
  o.split = "test";
  o.spatial_size = {28, 28};  // LeNet's input, as MNIST
  const data::ClassificationDataset test = data::load_classification_dataset(usps.string(), o);
  CHECK(test.images.shape() == Shape{2007, 1, 28, 28});
  CHECK(test.class_counts() == std::vector<std::int64_t>{359, 264, 198, 166, 200, 160, 170, 147, 166, 177});
  CHECK(vertical_stroke_score(test, 1) > 0.0);
  o.fit = data::SpatialFit::pad;
  o.grey_to_rgb = true;
  const data::ClassificationDataset padded = data::load_classification_dataset(usps.string(), o);
  CHECK(padded.images.shape() == Shape{2007, 3, 28, 28});
  CHECK(values(data::subset(padded, {0}).images)[0] == 0.0);
}

TEST_CASE("real MNIST: the t10k IDX files as a split, and resized to USPS's 16x16") {
  if (shared_dir().empty()) {
    MESSAGE("skipped: ../shared is absent");
    return;
  }
  const fs::path dir = shared_dir() / "data/digits/mnist";
  const data::ClassificationSplit s =
      data::read_mnist_idx(dir / "t10k-images-idx3-ubyte.gz", dir / "t10k-labels-idx1-ubyte.gz");
  CHECK(s.images.dtype() == DType::u8);
  CHECK(s.images.shape() == Shape{10000, 1, 28, 28});
  const std::vector<double> first = values(s.labels.narrow(0, 0, 10));
  CHECK(first == std::vector<double>{7, 2, 1, 0, 4, 1, 4, 9, 5, 9});

  const fs::path h5 = scratch("mnist-t10k.h5");
  data::write_classification_file(h5, {s});
  data::ClassificationLoadOptions o;
  o.spatial_size = {16, 16};
  const data::ClassificationDataset small = data::load_classification_dataset(h5.string(), o);
  CHECK(small.images.shape() == Shape{10000, 1, 16, 16});
  CHECK(small.class_counts() == std::vector<std::int64_t>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009});
  CHECK(vertical_stroke_score(small, 1) > 0.0);
  const auto [lo, hi] = std::minmax_element(small.images.data<float>(), small.images.data<float>() + small.images.numel());
  CHECK(*lo >= 0.0f);
  CHECK(*hi <= 1.0f + 1e-6f);
}
