// `tlk predict`: sliding-window segmentation of raw NIfTI volumes with a trained checkpoint.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "args.h"
#include "cli.h"
#include "tlk/autograd/autocast.h"
#include "tlk/io/nifti.h"
#include "tlk/task/predictor.h"

namespace tlk::cli {

namespace {
const char* kHelp = R"(tlk predict - segment NIfTI volumes with a trained model

Usage:
  tlk predict --model CKPT --in DIR_OR_FILE --out DIR [--step 0.5] [--no-mirror] [--batch N]
              [--class-map MAP] [--device cpu|cuda[:N]] [--precision f32|bf16|f16]
              [--layout auto|plain|channels_last] [--quiet]

Preprocesses each input exactly as the model's training data (the plan stored in the checkpoint),
runs sliding windows with Gaussian importance weighting (sigma = patch/8), averages softmax outputs
(and their 8 mirrored variants unless --no-mirror), resamples the probabilities back to the input's
geometry and writes <out>/<case>.nii.gz as uint8 labels with the input's affine, so it overlays the
image in ITK-SNAP, 3D Slicer or MITK. Prints seconds per case.

Options:
  --model CKPT        checkpoint written by tlk train (best.h5, final.h5, ...)
  --in DIR_OR_FILE    a .nii/.nii.gz file, or a folder of them (<case>_0000.nii.gz names group channels)
  --out DIR           output folder (created)
  --step F            window step as a fraction of the patch (default 0.5; 0.75 or 1 is faster)
  --no-mirror         no mirroring test-time augmentation (about 8x faster)
  --batch N           windows per network call (default 1)
  --class-map MAP     write other classes than the model's: "k=a+b" gives output class k the largest
                      probability of model classes a and b, background the rest (a source model on a
                      target task: AMOS kidneys 2 and 3 -> kidney 1 is "1=2+3")
  --device D          where the network runs: cpu (default), cuda or cuda:N
  --precision P       f32 (default), or bf16 / f16: the network runs in mixed precision on the GPU
                      (needs --device cuda; the probabilities are averaged in f32)
  --layout L          auto (default: channels_last on a GPU, plain on the CPU), plain, or
                      channels_last: NDHWC activations on the GPU, which cuDNN's tensor-core
                      engines take without transposing (needs --device cuda)
  --quiet             no progress bar
  --help              this text

Examples:
  tlk predict --model runs/amos/best.h5 --in raw/Dataset064_KiTS19/imagesTs --out pred
  tlk predict --model runs/amos/best.h5 --in case_00010_0000.nii.gz --out pred --no-mirror --step 0.75
  tlk predict --model runs/amos15/final.h5 --in raw/KiTS/imagesTs --out pred --class-map 1=2+3
  tlk predict --model runs/amos/best.h5 --in raw/KiTS/imagesTs --out pred --device cuda --batch 4
  tlk predict --model runs/amos/best.h5 --in raw/KiTS/imagesTs --out pred --device cuda --precision bf16
  tlk predict --model runs/amos/best.h5 --in raw/KiTS/imagesTs --out pred --device cuda --layout plain
)";
}  // namespace

int predict(const std::vector<std::string>& args) {
  Args a("predict", args, {{"model"}, {"in"}, {"out"}, {"step"}, {"no-mirror", false}, {"batch"}, {"class-map"}, {"device"}, {"precision"}, {"layout"}, {"quiet", false}});
  if (a.help()) {
    fmt::print("{}", kHelp);
    return 0;
  }
  check(a.positional().empty(), "predict: unexpected argument '{}' (see tlk predict --help)",
        a.positional().empty() ? "" : a.positional()[0]);
  task::PredictOptions options;
  options.step = a.get_double("step", options.step);
  check(options.step > 0 && options.step <= 1, "predict: --step must be in (0, 1], got {}", options.step);
  options.mirror = !a.flag("no-mirror");
  options.batch = static_cast<int>(a.get_int("batch", 1));
  check(options.batch >= 1, "predict: --batch must be at least 1, got {}", options.batch);
  options.quiet = a.flag("quiet");
  options.device = parse_device(a.get("device", "cpu"), "predict --device");
  options.precision = autograd::parse_precision(a.get("precision", "f32"), "predict: --precision");
  options.layout = parse_activation_layout(a.get("layout", "auto"), options.device, "predict: --layout");
  options.class_map = task::parse_class_map(a.get("class-map", ""));
  const std::string model = a.required("model"), in = a.required("in");
  const std::filesystem::path out = a.required("out");
  const task::Predictor predictor(task::load_checkpoint(model), options);
  const auto cases = task::list_prediction_inputs(in, predictor.plan().channel_names.size());
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  check(!ec, "predict: cannot create {}: {}", out.string(), ec.message());
  for (const auto& c : cases) {
    const auto start = std::chrono::steady_clock::now();
    const io::NiftiImage labels = predictor.predict(c);
    const auto file = out / (c.id + ".nii.gz");
    io::write_nifti(file, labels);
    fmt::print("{}: {:.1f} s -> {}\n", c.id,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), file.string());
  }
  return 0;
}

}  // namespace tlk::cli
