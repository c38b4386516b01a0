// `tlk convert`, run as a user runs it.
#include "run_tlk.h"
#include "tlk/data/classification_dataset.h"
#include "tlk/io/hdf5_file.h"
#include "tlk/io/idx.h"

using namespace tlk;
namespace fs = std::filesystem;
using tlk::testing::count_lines;
using tlk::testing::run_tlk;
using tlk::testing::shared_dir;

namespace {

fs::path scratch_dir(const std::string& name) { return tlk::testing::fresh_temp_dir("convert_cli_" + name); }

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// 5 synthetic 4x4 "digits" and their labels as IDX files (the images gzipped).
void write_tiny_mnist(const fs::path& dir, std::int64_t label_count = 5) {
  std::vector<std::uint8_t> pixels(5 * 16);
  for (std::size_t k = 0; k < pixels.size(); ++k) pixels[k] = static_cast<std::uint8_t>(k * 3);
  io::write_idx(dir / "images-idx3-ubyte.gz", Tensor::from_vector(pixels, {5, 4, 4}));
  std::vector<std::uint8_t> labels{3, 0, 9, 3, 1};
  labels.resize(static_cast<std::size_t>(label_count));
  io::write_idx(dir / "labels-idx1-ubyte", Tensor::from_vector(labels, {label_count}));
}

}  // namespace

TEST_CASE("tlk convert mnist writes TLK's classification layout") {
  const fs::path dir = scratch_dir("mnist");
  write_tiny_mnist(dir);
  const fs::path out = dir / "tiny.h5";
  const auto r = run_tlk(fmt::format("convert mnist --images {} --labels {} --out {}", (dir / "images-idx3-ubyte.gz").string(),
                                     (dir / "labels-idx1-ubyte").string(), out.string()));
  CHECK(r.status == 0);
  CHECK(r.err.empty());
  CHECK(contains(r.out, "images [5, 1, 4, 4] u8, labels 5"));
  REQUIRE(fs::exists(out));
  CHECK_FALSE(fs::exists(out.string() + ".tmp"));
  const io::Hdf5File f = io::Hdf5File::open(out);
  CHECK(f.read("images").dtype() == DType::u8);
  CHECK(f.read("images").to_doubles()[17] == 51.0);
  CHECK(f.read("labels").dtype() == DType::i64);
  CHECK(f.attribute("num_classes") == "10");
  const data::ClassificationDataset ds = data::load_classification_dataset(out.string());
  CHECK(ds.labels.to_doubles() == std::vector<double>{3, 0, 9, 3, 1});
  CHECK(ds.images.to_doubles()[17] == doctest::Approx(51.0 / 255.0));
}

TEST_CASE("tlk convert refuses bad input with one line and status 1") {
  const fs::path dir = scratch_dir("bad");
  write_tiny_mnist(dir, 4);
  const std::string images = (dir / "images-idx3-ubyte.gz").string(), labels = (dir / "labels-idx1-ubyte").string();
  const fs::path out = dir / "out.h5";

  auto r = run_tlk(fmt::format("convert mnist --images {} --labels {} --out {}", images, labels, out.string()));
  CHECK(r.status == 1);
  CHECK(count_lines(r.err) == 1);
  CHECK(contains(r.err, "holds 5 images but"));
  CHECK(contains(r.err, "holds 4 labels"));
  CHECK_FALSE(fs::exists(out));

  std::ofstream(dir / "garbage") << "this is not an IDX file";
  r = run_tlk(fmt::format("convert mnist --images {} --labels {} --out {}", (dir / "garbage").string(), labels,
                          out.string()));
  CHECK(r.status == 1);
  CHECK(count_lines(r.err) == 1);
  CHECK(contains(r.err, "garbage: not an IDX file"));

  // Labels given as images: a valid IDX file of the wrong kind.
  r = run_tlk(fmt::format("convert mnist --images {} --labels {} --out {}", labels, labels, out.string()));
  CHECK(r.status == 1);
  CHECK(contains(r.err, "expected MNIST images (u8 [N, H, W]), got u8 [4]"));

  r = run_tlk(fmt::format("convert mnist --images {} --out {}", images, out.string()));
  CHECK(r.status == 1);
  CHECK(contains(r.err, "--labels is required"));
  r = run_tlk("convert svhn --in x");
  CHECK(r.status == 1);
  CHECK(contains(r.err, "unknown format 'svhn'"));
  CHECK_FALSE(fs::exists(out));

  r = run_tlk("convert --help");
  CHECK(r.status == 0);
  CHECK(contains(r.out, "tlk convert mnist --images"));
  CHECK(contains(run_tlk("--help").out, "convert"));
}

TEST_CASE("tlk convert on the real MNIST test set and usps.h5") {
  if (shared_dir().empty()) {
    MESSAGE("skipped: ../shared is absent");
    return;
  }
  const fs::path digits = shared_dir() / "data/digits";
  const fs::path dir = scratch_dir("real");
  auto r = run_tlk(fmt::format("convert mnist --images {} --labels {} --out {}",
                               (digits / "mnist/t10k-images-idx3-ubyte.gz").string(),
                               (digits / "mnist/t10k-labels-idx1-ubyte.gz").string(), (dir / "mnist.h5").string()));
  REQUIRE_MESSAGE(r.status == 0, r.err);
  const data::ClassificationDataset mnist = data::load_classification_dataset((dir / "mnist.h5").string());
  CHECK(mnist.images.shape() == Shape{10000, 1, 28, 28});
  CHECK(mnist.num_classes == 10);
  CHECK(mnist.class_counts() == std::vector<std::int64_t>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009});

  r = run_tlk(fmt::format("convert usps --in {} --out {}", (digits / "usps.h5").string(), (dir / "usps.h5").string()));
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(count_lines(r.out) == 2);
  data::ClassificationLoadOptions o;
  o.split = "train";
  const data::ClassificationDataset train = data::load_classification_dataset((dir / "usps.h5").string(), o);
  CHECK(train.images.shape() == Shape{7291, 1, 16, 16});
  CHECK(train.class_counts()[0] == 1194);
  CHECK(io::Hdf5File::open(dir / "usps.h5").read("test/images").shape() == Shape{2007, 1, 16, 16});

  r = run_tlk(fmt::format("convert usps --in {} --out {} --split test", (digits / "usps.h5").string(),
                          (dir / "usps_test.h5").string()));
  REQUIRE_MESSAGE(r.status == 0, r.err);
  const data::ClassificationDataset test = data::load_classification_dataset((dir / "usps_test.h5").string());
  CHECK(test.size() == 2007);
  CHECK(test.images.dtype() == DType::f32);
  CHECK(test.num_classes == 10);

  r = run_tlk(fmt::format("convert usps --in {} --out {} --split validation", (digits / "usps.h5").string(),
                          (dir / "usps_val.h5").string()));
  CHECK(r.status == 1);
  CHECK(count_lines(r.err) == 1);
  CHECK(contains(r.err, "no '/validation/images'"));
}
