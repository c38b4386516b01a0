// One training step and one forward pass of the nnUNet-style UNet, on the CPU or one GPU.
//
//   build/bench/unet_step --batch 2 --patch 64,64,64 --base 32 --max-features 320 --levels 5
//                         --classes 2 --iters 3 --threads 2
//   build/bench/unet_step --device cuda --batch 2 --patch 128,128,128 --iters 20
//
// A training step is: forward with deep supervision, nnUNet's Dice + CE loss over every output,
// backward, SGD with Nesterov momentum (lr 1e-2, momentum 0.99, weight decay 3e-5). The forward pass
// runs in eval mode under NoGradGuard with only the full-resolution head, as inference does.
// Prints one line: `train_step_ms=<median> forward_ms=<median> peak_rss_mb=<n>` (after a warm-up
// step that builds the oneDNN primitives or picks the cuDNN algorithms), plus a few lines starting
// with '#'. On a GPU the line ends with `peak_gpu_mb=<n>` (the caching allocator's peak of memory
// held by tensors), and each timed call ends with a device synchronization.
#include <fmt/format.h>
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "timing.h"
#include "tlk/autograd/grad_mode.h"
#include "tlk/autograd/autocast.h"
#include "tlk/autograd/profiler.h"
#include "tlk/nn/grad_scaler.h"
#include "tlk/kernels/cpu/primitive_cache.h"
#include "tlk/nn/deep_supervision_loss.h"
#include "tlk/nn/sgd.h"
#include "tlk/nn/unet.h"
#include "tlk/tensor/allocator.h"
#include "tlk/tensor/cuda_runtime.h"
#ifdef TLK_HAVE_CUDA
#include "tlk/kernels/cuda/conv3d.h"
#include "tlk/kernels/cuda/cudnn_context.h"
#include "tlk/kernels/cuda/cudnn_engine.h"
#endif
#include "tlk/tensor/blocked_format.h"
#include "tlk/tensor/error.h"

using namespace tlk;

namespace {

const char* kHelp = R"(usage: unet_step [options]
Times one training step and one forward pass of the nnUNet-style 3D UNet.

Options (defaults in brackets):
  --batch N            batch size [2]
  --patch D,H,W        patch size [64,64,64]
  --base N             features of the first stage [32]
  --max-features N     cap on the features of any stage [320]
  --levels N           number of stages (stride 2 between them) [5]
  --classes N          output classes [2]
  --iters N            timed repetitions; the median is printed [3]
  --threads N          OpenMP threads [all cores]
  --seed N             random seed [0]
  --device D           cpu or cuda [cpu]
  --tf32 on|off        TF32 tensor cores for f32 convolutions on the GPU [on]
  --conv-api A         engine (cuDNN's graph API, falling back per shape) or legacy [engine]
  --precision P        f32, bf16 or f16 (GPU only: autocast with f32 master weights; f16 with
                       dynamic loss scaling) [f32]
  --layout L           auto, plain or channels_last: the activations' layout (channels_last, GPU only:
                       the input is made NDHWC and every layer keeps it, Note [Channels-last on the
                       GPU]; auto: channels_last on a GPU, plain on the CPU) [auto]
  --conv-search S      heuristic (up to 10 plans from cuDNN's heuristics, as PyTorch) or exhaustive
                       (every engine that accepts a shape) [heuristic]
  --profile            after the timed steps, one profiled step: time per op, forward and backward
                       (Note [Op profiling]), printed as '#' lines

Example:
  build/bench/unet_step --batch 2 --patch 64,64,64 --base 32 --levels 5 --iters 3 --threads 2
)";

std::vector<std::int64_t> parse_list(const std::string& text) {
  std::vector<std::int64_t> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = text.find(',', start);
    out.push_back(std::stoll(text.substr(start, comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Labels with one ball per foreground class per sample, at seeded random centres.
Tensor ball_labels(std::int64_t batch, const Shape& patch, std::int64_t classes, Generator& gen) {
  Tensor labels = Tensor::zeros({batch, patch[0], patch[1], patch[2]}, TensorOptions{DType::i64});
  std::int64_t* l = labels.data<std::int64_t>();
  for (std::int64_t n = 0; n < batch; ++n)
    for (std::int64_t c = 1; c < classes; ++c) {
      double centre[3], radius = 0.2 * static_cast<double>(std::min({patch[0], patch[1], patch[2]}));
      for (int a = 0; a < 3; ++a) centre[a] = gen.uniform(0.3, 0.7) * static_cast<double>(patch[a]);
      for (std::int64_t d = 0; d < patch[0]; ++d)
        for (std::int64_t h = 0; h < patch[1]; ++h)
          for (std::int64_t w = 0; w < patch[2]; ++w) {
            const double dd = d - centre[0], hh = h - centre[1], ww = w - centre[2];
            if (dd * dd + hh * hh + ww * ww < radius * radius)
              l[((n * patch[0] + d) * patch[1] + h) * patch[2] + w] = c;
          }
    }
  return labels;
}

int run(int argc, char** argv) {
  std::int64_t batch = 2, base = 32, max_features = 320, levels = 5, classes = 2, seed = 0;
  int iters = 3;
  Device device = Device::cpu();
  bool tf32 = true, profile = false, conv_engine = true, exhaustive = false;
  DType precision = DType::f32;
  std::string layout_text = "auto";
  std::vector<std::int64_t> patch{64, 64, 64};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      fmt::print("{}", kHelp);
      return 0;
    }
    if (a == "--profile") {
      profile = true;
      continue;
    }
    check(i + 1 < argc, "unet_step: {} needs a value (see --help)", a);
    const std::string v = argv[++i];
    try {
      if (a == "--batch")
        batch = std::stoll(v);
      else if (a == "--patch")
        patch = parse_list(v);
      else if (a == "--base")
        base = std::stoll(v);
      else if (a == "--max-features")
        max_features = std::stoll(v);
      else if (a == "--levels")
        levels = std::stoll(v);
      else if (a == "--classes")
        classes = std::stoll(v);
      else if (a == "--iters")
        iters = static_cast<int>(std::stoll(v));
      else if (a == "--threads")
        omp_set_num_threads(static_cast<int>(std::stoll(v)));
      else if (a == "--seed")
        seed = std::stoll(v);
      else if (a == "--device") {
        check(v == "cpu" || v == "cuda", "unet_step: --device must be cpu or cuda, got '{}'", v);
        device = v == "cpu" ? Device::cpu() : Device::cuda();
      } else if (a == "--conv-api") {
        check(v == "engine" || v == "legacy", "unet_step: --conv-api must be engine or legacy, got '{}'", v);
        conv_engine = v == "engine";
      } else if (a == "--precision") {
        precision = autograd::parse_precision(v, "unet_step: --precision");
      } else if (a == "--conv-search") {
        check(v == "heuristic" || v == "exhaustive", "unet_step: --conv-search must be heuristic or exhaustive, got '{}'",
              v);
        exhaustive = v == "exhaustive";
      } else if (a == "--layout") {
        layout_text = v;
      } else if (a == "--tf32") {
        check(v == "on" || v == "off", "unet_step: --tf32 must be on or off, got '{}'", v);
        tf32 = v == "on";
      }
      else
        fail("unet_step: unknown option '{}' (see --help)", a);
    } catch (const std::invalid_argument&) {
      fail("unet_step: {} expects a number, got '{}'", a, v);
    }
  }
  check(patch.size() == 3, "unet_step: --patch needs three extents D,H,W, got {} values", patch.size());
  check(batch >= 1 && iters >= 1 && levels >= 2 && classes >= 2, "unet_step: batch, iters >= 1, levels, classes >= 2");
  check(precision == DType::f32 || device.is_cuda(), "unet_step: --precision {} needs --device cuda (16-bit tensors "
        "live on the GPU)", dtype_name(precision));
  const Layout layout = parse_activation_layout(layout_text, device, "unet_step: --layout");

  Generator gen(static_cast<std::uint64_t>(seed));
  nn::UNetConfig config = nn::UNetConfig::isotropic(static_cast<int>(levels), 1, classes);
  config.base_features = base;
  config.max_features = max_features;
  nn::UNet net(config, gen);
  if (device.is_cuda()) {
    cuda::require_device(device.index, "unet_step");
#ifdef TLK_HAVE_CUDA
    kernels::cuda::set_allow_tf32(tf32);
    kernels::cuda::set_conv_engine_api(conv_engine);
    kernels::cuda::set_conv_engine_search(exhaustive ? kernels::cuda::ConvEngineSearch::exhaustive
                                                     : kernels::cuda::ConvEngineSearch::heuristic);
#endif
  }
  net.to(device);
  nn::Sgd sgd(nn::single_group(net), nn::SgdOptions{1e-2, 0.99, true, 3e-5});
  const Shape patch_shape{patch[0], patch[1], patch[2]};
  Tensor x = randn({batch, 1, patch[0], patch[1], patch[2]}, gen).to(device).to(layout);
  Tensor labels = ball_labels(batch, patch_shape, classes, gen).to(device);
  fmt::print("# UNet: {} stages, {}..{} features, {} parameters; batch {}, patch {}x{}x{}, {} thread(s), {}{}{}\n",
             levels, base, config.features(static_cast<int>(levels) - 1), net.parameter_count(), batch, patch[0],
             patch[1], patch[2], omp_get_max_threads(), device.str(),
             device.is_cuda() ? (tf32 ? " (TF32 on" : " (TF32 off") : "",
             device.is_cuda() ? fmt::format(", {})", dtype_name(precision)) : "");

  double last_loss = 0, optimizer_ms = 0;
  Layout output_layout = Layout::plain;
  nn::GradScaler scaler;  // f16 only (Note [Loss scaling])
  const std::vector<Tensor> params = net.parameters();
  auto train_step = [&] {
    net.train();
    net.set_deep_supervision(true);
    sgd.zero_grad();
    Tensor loss;
    {
      AutocastGuard amp(precision);
      loss = nn::deep_supervision_loss(net.forward(x), labels, net.deep_supervision_weights());
    }
    if (precision == DType::f16) {
      scaler.scale(loss).backward();
      const bool finite = scaler.unscale(params);
      if (finite) sgd.step();
      scaler.update(!finite);
    } else {
      loss.backward();
      const double before_step = profile ? autograd::synchronized_now_ms() : 0.0;
      sgd.step();
      if (profile) optimizer_ms = autograd::synchronized_now_ms() - before_step;
    }
    last_loss = loss.item();
  };
  auto forward = [&] {
    NoGradGuard no_grad;
    AutocastGuard amp(precision);
    net.eval();
    net.set_deep_supervision(false);
    output_layout = net.forward(x)[0].layout();
    cuda::synchronize();  // GPU work is asynchronous: time it to the end
  };

  train_step();  // warm-up: builds every primitive
  forward();
#ifdef TLK_HAVE_CUDA
  const auto searches = kernels::cuda::conv_algorithm_searches();
#endif
  if (device.is_cuda()) cuda::reset_peak();
  const auto builds = kernels::cpu::PrimitiveCache::instance().stats().builds;
  const auto reorders = reorder_stats();
  std::vector<double> train_ms, forward_ms;
  for (int i = 0; i < iters; ++i) train_ms.push_back(bench::time_ms(train_step));
  const auto step_reorders = reorder_stats();
  for (int i = 0; i < iters; ++i) forward_ms.push_back(bench::time_ms(forward));
  fmt::print("# loss after {} steps: {:.4f}; primitives built in the timed steps: {}\n", iters + 1, last_loss,
             kernels::cpu::PrimitiveCache::instance().stats().builds - builds);
  if (device.is_cuda())
    fmt::print("# activations: {} requested, the network's output is {}\n", layout_name(layout),
               layout_name(output_layout));
  fmt::print("# reorders per training step: {:.1f} activation, {:.1f} weight\n",
             static_cast<double>(step_reorders.activations - reorders.activations) / iters,
             static_cast<double>(step_reorders.weights - reorders.weights) / iters);
#ifdef TLK_HAVE_CUDA
  if (device.is_cuda())
    fmt::print("# cuDNN searches: {} in the warm-up ({} engine searches, {} fell back to the legacy API), {} in the "
               "timed steps\n", searches, kernels::cuda::conv_engine_searches(), kernels::cuda::conv_engine_fallbacks(),
               kernels::cuda::conv_algorithm_searches() - searches);
#endif
  if (profile) {
    auto& profiler = autograd::OpProfiler::instance();
    profiler.reset();
    profiler.enable(true);
    train_step();
    profiler.enable(false);
    fmt::print("# one profiled training step (each op waits for the device; optimizer step {:.1f} ms):\n{}",
               optimizer_ms, profiler.report(40));
#ifdef TLK_HAVE_CUDA
    if (device.is_cuda()) {
      fmt::print("# the convolution plan of each shape (pass, operands, engine, timed ms):\n");
      for (const std::string& line : kernels::cuda::conv_engine_choices()) fmt::print("#   {}\n", line);
    }
#endif
  }
  if (device.is_cuda())
    fmt::print("train_step_ms={:.1f} forward_ms={:.1f} peak_rss_mb={:.0f} peak_gpu_mb={:.0f}\n", median(train_ms),
               median(forward_ms), peak_rss_mb(),
               static_cast<double>(cuda::device_allocator(device.index).stats().peak_bytes) / (1 << 20));
  else
    fmt::print("train_step_ms={:.1f} forward_ms={:.1f} peak_rss_mb={:.0f}\n", median(train_ms), median(forward_ms),
               peak_rss_mb());
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return tlk::bench::guarded_main("unet_step", run, argc, argv); }
