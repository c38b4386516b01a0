// `tlk phantom`: writes synthetic AMOS-like or KiTS-like abdominal CT as an nnUNet raw dataset.
#include <fmt/format.h>

#include "args.h"
#include "cli.h"
#include "tlk/data/phantom_dataset.h"

namespace tlk::cli {

namespace {
const char* kHelp = R"(tlk phantom - write synthetic abdominal CT volumes as an nnUNet raw dataset

Usage:
  tlk phantom --domain amos|kits --out DIR [--cases N] [--test-cases N] [--scale S] [--seed N] [--no-labels]

  amos   AMOS-like source: 15 organ labels (2 = right kidney, 3 = left kidney), portal-venous
         contrast, 2 x 1.5 x 1.5 mm, stored LPS; 64 x 128 x 128 voxels at scale 1
  kits   KiTS19-like target: 1 = kidney, 2 = tumor, corticomedullary contrast, noisier and blurrier,
         4 x 1.2 x 1.2 mm, stored IPL like the KiTS19 files; 32 x 160 x 160 voxels at scale 1

Writes DIR/dataset.json, DIR/imagesTr/<case>_0000.nii.gz (int16 HU) and DIR/labelsTr/<case>.nii.gz,
plus imagesTs/labelsTs for --test-cases. The same seed gives the same files. Use different seeds for
the two domains.

Options:
  --domain D        amos or kits
  --out DIR         dataset folder (created)
  --cases N         training cases (default 4)
  --test-cases N    test cases in imagesTs/labelsTs (default 0)
  --scale S         resolution factor: 0.5 halves the voxels per axis, same anatomy in mm (default 1)
  --seed N          seed (default 1)
  --no-labels       no labelsTr: an unlabelled adaptation target (labelsTs are still written)
  --help            this text

Examples:
  tlk phantom --domain amos --out raw/Dataset901_AmosPhantom --cases 8 --scale 0.5
  tlk phantom --domain kits --out raw/Dataset902_KitsPhantom --cases 8 --test-cases 4 --seed 2
)";
}  // namespace

int phantom(const std::vector<std::string>& args) {
  Args a("phantom", args, {{"domain"}, {"out"}, {"cases"}, {"test-cases"}, {"scale"}, {"seed"}, {"no-labels", false}});
  if (a.help()) {
    fmt::print("{}", kHelp);
    return 0;
  }
  check(a.positional().empty(), "phantom: unexpected argument '{}' (see tlk phantom --help)",
        a.positional().empty() ? "" : a.positional()[0]);
  const std::string domain = a.required("domain");
  const auto cases = static_cast<int>(a.get_int("cases", 4));
  const double scale = a.get_double("scale", 1.0);
  check(cases >= 1, "phantom: --cases must be at least 1, got {}", cases);
  check(scale > 0 && scale <= 4, "phantom: --scale must be in (0, 4], got {}", scale);
  data::PhantomDomainOptions options;
  if (domain == "amos")
    options = data::amos_like_source(cases, scale);
  else if (domain == "kits")
    options = data::kits_like_target(cases, scale);
  else
    fail("phantom: --domain must be amos or kits, got '{}'", domain);
  options.test_cases = static_cast<int>(a.get_int("test-cases", 0));
  const std::string out = a.required("out");
  data::write_phantom_dataset(out, options, static_cast<std::uint64_t>(a.get_int("seed", 1)),
                              {.write_labels = !a.flag("no-labels")});
  const auto grid = options.grid();
  fmt::print("wrote {} {} case(s) ({} x {} x {} voxels, {} x {} x {} mm) to {}\n", cases + options.test_cases,
             options.name, grid.shape[0], grid.shape[1], grid.shape[2], grid.spacing[0], grid.spacing[1],
             grid.spacing[2], out);
  return 0;
}

}  // namespace tlk::cli
