// `tlk convert`: classic digit data (MNIST IDX files, the Kaggle usps.h5) -> TLK's classification HDF5.
#include <fmt/format.h>

#include "args.h"
#include "cli.h"
#include "tlk/data/classification_dataset.h"
#include "tlk/io/hdf5_file.h"
#include "tlk/tensor/error.h"

namespace tlk::cli {

namespace {
const char* kHelp = R"(tlk convert - turn digit datasets into TLK's classification HDF5 layout

Usage:
  tlk convert mnist --images FILE --labels FILE --out FILE.h5
  tlk convert usps --in usps.h5 --out FILE.h5 [--split train|test]

The output holds `images` (N, 1, H, W) and `labels` (N) i64, plus the root attributes num_classes
and source; `tlk train` and data::load_classification_dataset read it (FILE.h5, or FILE.h5:SPLIT for
a file with splits).

  mnist  IDX files as distributed by LeCun (t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte), gzip
         or not. Images stay u8 [N, 1, 28, 28] (the loader scales them to [0, 1]).
  usps   the common Kaggle usps.h5 (train/data [7291, 256] f32 in [0, 1], train/target; test/...).
         Images become f32 [N, 1, 16, 16]. With --split, that split is written at the root;
         without, every split as SPLIT/images and SPLIT/labels.

Options:
  --images FILE   mnist: the images IDX file (magic 0x00000803)
  --labels FILE   mnist: the labels IDX file (magic 0x00000801)
  --in FILE       usps: the source HDF5 file
  --split NAME    usps: convert only this split (train or test)
  --out FILE      the HDF5 file to write (replaced atomically)
  --help          this text

Examples:
  tlk convert mnist --images mnist/t10k-images-idx3-ubyte.gz --labels mnist/t10k-labels-idx1-ubyte.gz \
                    --out mnist_test.h5
  tlk convert usps --in usps.h5 --out usps_train.h5 --split train
  tlk convert usps --in usps.h5 --out usps_tlk.h5
)";

void print_summary(const std::string& out, const std::string& group, const Tensor& images, const Tensor& labels) {
  fmt::print("wrote {}{}: images {} {}, labels {}\n", out, group.empty() ? "" : ":" + group, images.shape().str(),
             dtype_name(images.dtype()), labels.numel());
}

int convert_mnist(const std::vector<std::string>& args) {
  Args a("convert mnist", args, {{"images"}, {"labels"}, {"out"}});
  if (a.help()) {
    fmt::print("{}", kHelp);
    return 0;
  }
  check(a.positional().empty(), "convert mnist: unexpected argument '{}' (see tlk convert --help)",
        a.positional().empty() ? "" : a.positional()[0]);
  const std::string images = a.required("images"), labels = a.required("labels"), out = a.required("out");
  const data::ClassificationSplit split = data::read_mnist_idx(images, labels);
  data::write_classification_file(out, {split}, 0, fmt::format("MNIST IDX: {} + {}", images, labels));
  print_summary(out, "", split.images, split.labels);
  return 0;
}

int convert_usps(const std::vector<std::string>& args) {
  Args a("convert usps", args, {{"in"}, {"out"}, {"split"}});
  if (a.help()) {
    fmt::print("{}", kHelp);
    return 0;
  }
  check(a.positional().empty(), "convert usps: unexpected argument '{}' (see tlk convert --help)",
        a.positional().empty() ? "" : a.positional()[0]);
  const std::string in = a.required("in"), out = a.required("out");
  std::vector<std::string> groups;
  if (auto split = a.get("split")) {
    groups.push_back(*split);
  } else {
    for (const std::string& name : io::Hdf5File::open(in).datasets()) {
      const auto slash = name.rfind('/');
      if (slash == std::string::npos || name.substr(slash + 1) != "data") continue;
      groups.push_back(name.substr(0, slash));
    }
    check(!groups.empty(), "convert usps: {} has no SPLIT/data datasets (expected the Kaggle usps.h5 layout)", in);
  }
  std::vector<data::ClassificationSplit> splits;
  for (const std::string& g : groups) {
    // Keep the stored values (f32 in [0, 1]); 256 values per image are read as 1 x 16 x 16.
    data::ClassificationLoadOptions options;
    options.split = g;
    options.scale = 1.0;
    const data::ClassificationDataset ds = data::load_classification_dataset(in, options);
    splits.push_back({a.has("split") ? "" : g, ds.images, ds.labels});
  }
  data::write_classification_file(out, splits, 0, fmt::format("USPS: {}", in));
  for (const auto& s : splits) print_summary(out, s.group, s.images, s.labels);
  return 0;
}

}  // namespace

int convert(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    fmt::print("{}", kHelp);
    return args.empty() ? 1 : 0;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "mnist") return convert_mnist(rest);
  if (args[0] == "usps") return convert_usps(rest);
  fail("convert: unknown format '{}' (expected mnist or usps; see tlk convert --help)", args[0]);
}

}  // namespace tlk::cli
