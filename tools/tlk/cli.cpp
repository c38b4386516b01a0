#include "cli.h"

#include <fmt/format.h>

#include "tlk/tensor/error.h"
#include "tlk/version.h"

namespace tlk::cli {

namespace {

const char* kUsage = R"(tlk - transfer learning kit for 3D convolutional networks

Usage:
  tlk <command> [options]
  tlk --version
  tlk --help

Commands:
  demo         TLK's domain-adaptation experiment end to end on generated AMOS-/KiTS-like CT
  preprocess   prepare an nnUNet raw dataset (canonical axes, crop, normalize, resample) as HDF5
  train        train a segmentation UNet from a YAML config (checkpoints, logs, progress)
  predict      segment NIfTI volumes with a checkpoint (sliding window, mirroring, original geometry)
  phantom      write synthetic AMOS-like or KiTS-like abdominal CT as an nnUNet raw dataset
  selfcheck    run a small 3D conv net forward and backward and check its gradients
  evaluate     score predicted label maps against references (Dice per case and label)
  info         show a NIfTI header and values, or a checkpoint's model and tensors
  convert      turn MNIST IDX files or the Kaggle usps.h5 into TLK's classification HDF5

Examples:
  tlk demo
  tlk --version
  tlk selfcheck
  tlk selfcheck --seed 7
  tlk phantom --domain amos --out raw/Dataset901_AmosPhantom --cases 8 --scale 0.5
  tlk preprocess --data raw/Dataset001_AMOS --out prep/AMOS --label-map 2:1,3:1,*:0
  tlk train --config train.yaml --set train.epochs=10
  tlk predict --model runs/amos/best.h5 --in raw/Dataset064_KiTS19/imagesTs --out pred
  tlk evaluate --pred predictions --ref Dataset064_KiTS19/labelsTr --labels 1+2,2
  tlk info case_00010/segmentation.nii.gz
  tlk convert mnist --images t10k-images-idx3-ubyte.gz --labels t10k-labels-idx1-ubyte.gz --out mnist.h5

Run `tlk <command> --help` for a command's options.
)";

}  // namespace

int run(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    fmt::print("{}", kUsage);
    return args.empty() ? 1 : 0;
  }
  const std::string& command = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (command == "--version" || command == "version") {
    fmt::print("tlk {}\n", TLK_VERSION_STRING);
    return 0;
  }
  if (command == "selfcheck") return selfcheck(rest);
  if (command == "demo") return demo(rest);
  if (command == "preprocess") return preprocess(rest);
  if (command == "train") return train(rest);
  if (command == "predict") return predict(rest);
  if (command == "phantom") return phantom(rest);
  if (command == "evaluate") return evaluate(rest);
  if (command == "info") return info(rest);
  if (command == "convert") return convert(rest);
  fail("unknown command '{}' (expected one of: demo, preprocess, train, predict, evaluate, info, convert, phantom, selfcheck; see tlk --help)", command);
}

}  // namespace tlk::cli
