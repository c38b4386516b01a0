// `tlk preprocess`: an nnUNet raw dataset -> canonical, cropped, normalized, resampled HDF5 cases.
#include <fmt/format.h>

#include "args.h"
#include "cli.h"
#include "tlk/data/preprocess.h"

namespace tlk::cli {

namespace {
const char* kHelp = R"(tlk preprocess - prepare an nnUNet raw dataset for training

Usage:
  tlk preprocess --data DIR --out DIR [--spacing z,y,x] [--label-map MAP] [--norm-stats-from DIR]
                 [--threads N] [--seed N] [--quiet]

Reads DIR/dataset.json, DIR/imagesTr/<case>_<XXXX>.nii.gz and DIR/labelsTr/<case>.nii.gz, and writes
one HDF5 file per case plus preprocessing.json to the output folder. Each case is brought to
canonical (RAS) axis order, cropped to its nonzero box, normalized (CT: clipped to the foreground
0.5/99.5 percentiles and z-scored by the foreground mean and std; other channels: z-scored per image)
and resampled to the target spacing (cubic for images, linear on one-hot for labels, the thick axis
on its own when spacing is anisotropic).

Options:
  --data DIR             nnUNet raw dataset folder (with dataset.json)
  --out DIR              output folder (created)
  --spacing z,y,x        target spacing in mm (default: the dataset's median spacing, nnUNet's rule)
  --label-map MAP        relabel on load, "from:to" pairs; "*:to" sends every other label to `to`
                         (AMOS kidneys -> one kidney: 2:1,3:1,*:0; KiTS tumor into kidney: 1:1,2:1)
  --norm-stats-from DIR  reuse the CT statistics of another preprocessed folder (TLK normalizes an
                         adaptation target with its source's statistics)
  --threads N            cases processed in parallel (default: number of cores)
  --seed N               seed for the sampled foreground locations (default 1)
  --quiet                no progress bar
  --help                 this text

Examples:
  tlk preprocess --data raw/Dataset001_AMOS --out prep/AMOS --label-map 2:1,3:1,*:0
  tlk preprocess --data raw/Dataset064_KiTS19 --out prep/KiTS --spacing 3,1.5,1.5 \
                 --label-map 1:1,2:1 --norm-stats-from prep/AMOS
)";
}  // namespace

int preprocess(const std::vector<std::string>& args) {
  Args a("preprocess", args,
         {{"data"}, {"out"}, {"spacing"}, {"label-map"}, {"norm-stats-from"}, {"threads"}, {"seed"}, {"quiet", false}});
  if (a.help()) {
    fmt::print("{}", kHelp);
    return 0;
  }
  check(a.positional().empty(), "preprocess: unexpected argument '{}' (see tlk preprocess --help)",
        a.positional().empty() ? "" : a.positional()[0]);
  data::PreprocessOptions options;
  if (auto s = a.get("spacing")) {
    const auto v = parse_number_list(*s, "preprocess: --spacing", 3);
    options.spacing = std::array<double, 3>{v[0], v[1], v[2]};
  }
  options.label_map = a.get("label-map", "");
  options.norm_stats_from = a.get("norm-stats-from", "");
  options.threads = static_cast<int>(a.get_int("threads", 0));
  options.seed = static_cast<std::uint64_t>(a.get_int("seed", 1));
  options.quiet = a.flag("quiet");
  const std::string out = a.required("out");
  const data::PreprocessingPlan plan = data::preprocess_dataset(a.required("data"), out, options);
  fmt::print("preprocessed {} into {}: spacing {}x{}x{} mm, {} channel(s), {} classes\n", plan.dataset_name, out,
             plan.target_spacing[0], plan.target_spacing[1], plan.target_spacing[2], plan.channel_names.size(),
             plan.num_classes());
  return 0;
}

}  // namespace tlk::cli
