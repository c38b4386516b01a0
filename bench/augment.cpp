// nnUNet's training augmentation of one sample, on the CPU (what a loader thread does) and on a GPU
// (data.augment_on: device, Note [Augmentation on the GPU]).
//
//   build/bench/augment --patch 128,128,128 --threads 1 --iters 10
//   build/bench/augment --device cuda --patch 128,128,128 --iters 20
//
// For each of two option sets (nnUNet's defaults, and every transform forced on) it times, interleaved,
// the CPU's augment_patch and - with --device cuda - the copy of the enlarged region from page-locked
// memory to the GPU plus apply_augmentation there, ending with a device synchronization (gpu_ms),
// and that copy alone (copy_ms). The region is the extent
// enlarged_patch_size gives (249^3 for a 128^3 patch). Prints '#' lines and one line per option set:
// `options=<name> cpu_ms=<median> [gpu_ms=<median> copy_ms=<median>]`.
#include "tlk/data/augment.h"

#include <fmt/format.h>
#include <omp.h>

#include <string>
#include <vector>

#include "timing.h"
#include "tlk/tensor/cuda_runtime.h"
#include "tlk/tensor/error.h"

using namespace tlk;

namespace {

const char* kHelp = R"(usage: augment [options]
Times nnUNet's augmentation of one sample on the CPU and, with --device cuda, on the GPU.

Options (defaults in brackets):
  --patch D,H,W     patch size after augmentation [128,128,128]
  --channels N      image channels [1]
  --iters N         timed repetitions per path; medians are printed [10]
  --threads N       OpenMP threads of the CPU path (a loader thread uses 1) [1]
  --device D        cpu, or cuda to time the GPU path too [cpu]
  --seed N          random seed [0]

Example:
  build/bench/augment --device cuda --patch 128,128,128 --iters 20
)";


int run(int argc, char** argv) {
  data::Extent3 patch{128, 128, 128};
  std::int64_t channels = 1;
  int iters = 10, threads = 1;
  std::string device_name = "cpu";
  std::uint64_t seed = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      check(i + 1 < argc, "augment: {} needs a value (see --help)", arg);
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      fmt::print("{}", kHelp);
      return 0;
    } else if (arg == "--patch") {
      const std::string v = value();
      check(std::sscanf(v.c_str(), "%ld,%ld,%ld", &patch[0], &patch[1], &patch[2]) == 3 && patch[0] > 0 &&
                patch[1] > 0 && patch[2] > 0,
            "augment: --patch expects D,H,W, got {}", v);
    } else if (arg == "--channels") {
      channels = std::stoll(value());
    } else if (arg == "--iters") {
      iters = std::stoi(value());
    } else if (arg == "--threads") {
      threads = std::stoi(value());
    } else if (arg == "--device") {
      device_name = value();
    } else if (arg == "--seed") {
      seed = std::stoull(value());
    } else {
      fail("augment: unknown option {} (see --help)", arg);
    }
  }
  const Device device = parse_device(device_name, "--device");
  if (device.is_cuda()) cuda::require_device(device.index, "augment --device");
  check(iters >= 1 && threads >= 1 && channels >= 1, "augment: --iters, --threads and --channels must be positive");
  omp_set_num_threads(threads);

  Generator gen(seed);
  const data::Extent3 load = data::enlarged_patch_size(patch, data::AugmentOptions{});
  const Tensor image = tlk::randn({channels, load[0], load[1], load[2]}, gen);
  Tensor labels = Tensor::empty({load[0], load[1], load[2]}, TensorOptions{}.with(DType::u8));
  for (std::int64_t i = 0; i < labels.numel(); ++i) labels.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(i % 3);
  fmt::print("# region {}x{}x{} x {} channel(s) -> patch {}x{}x{}, CPU {} thread(s), {} iterations\n", load[0], load[1],
             load[2], channels, patch[0], patch[1], patch[2], threads, iters);

  for (const auto& [name, options] : {std::pair{std::string("defaults"), data::AugmentOptions{}},
                                      std::pair{std::string("all_forced"), data::AugmentOptions::all(1.0)}}) {
    data::AugmentOptions o = options;
    o.num_threads = threads;
    Generator cpu_gen(seed + 1), gpu_gen(seed + 1);
    const auto on_cpu = [&] { data::augment_patch(image, labels, patch, o, cpu_gen); };
    if (!device.is_cuda()) {
      fmt::print("options={} cpu_ms={:.2f}\n", name, bench::median_ms(iters, on_cpu, 1));
      continue;
    }
    // The region travels from page-locked memory, as the trainer's batches do (Note [Pinned staging]).
    Tensor pinned_image = Tensor::pinned_empty(image.shape(), image.dtype(), device).copy_(image);
    Tensor pinned_labels = Tensor::pinned_empty(labels.shape(), labels.dtype(), device).copy_(labels);
    Tensor on_device_image, on_device_labels;
    const auto copy = [&] {
      on_device_image = pinned_image.to(device);
      on_device_labels = pinned_labels.to(device);
      cuda::synchronize();
    };
    const auto on_gpu = [&] {
      copy();
      data::augment_patch(on_device_image, on_device_labels, patch, o, gpu_gen);
      cuda::synchronize();
    };
    const std::vector<double> ms = bench::interleaved_medians_ms(iters, on_cpu, on_gpu, copy);
    fmt::print("options={} cpu_ms={:.2f} gpu_ms={:.2f} copy_ms={:.2f}\n", name, ms[0], ms[1], ms[2]);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return tlk::bench::guarded_main("augment", run, argc, argv); }
