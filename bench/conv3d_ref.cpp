// Times TLK's reference conv3d (forward, backward-data, backward-weights) on UNet-like layer shapes:
// the baseline that the CPU fast path (oneDNN + own kernels) is measured against.
//
//   build/bench/conv3d_ref [--iters 3] [--threads N] [--quick]
//
// Prints one line per shape and pass: median milliseconds over --iters runs and GFLOP/s.
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "timing.h"
#include "tlk/kernels/ref/conv3d.h"
#include "tlk/tensor/random.h"

using namespace tlk;

namespace {

struct LayerShape {
  std::int64_t n, ci, co, d, h, w;
  Int3 k;
};

}  // namespace

int main(int argc, char** argv) {
  int iters = 3;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--iters" && i + 1 < argc)
      iters = std::max(1, std::stoi(argv[++i]));
    else if (a == "--threads" && i + 1 < argc)
      omp_set_num_threads(std::stoi(argv[++i]));
    else if (a == "--quick")
      quick = true;
    else if (a == "--help" || a == "-h") {
      fmt::print(
          "usage: conv3d_ref [--iters N] [--threads N] [--quick]\n"
          "Times the reference conv3d passes on UNet layer shapes (median ms, GFLOP/s).\n"
          "example: build/bench/conv3d_ref --iters 3 --threads 2\n");
      return 0;
    } else {
      fmt::print(stderr, "conv3d_ref: unknown argument '{}' (see --help)\n", a);
      return 1;
    }
  }
  std::vector<LayerShape> shapes = {
      {2, 32, 32, 32, 32, 32, {3, 3, 3}}, {2, 64, 64, 16, 16, 16, {3, 3, 3}}, {2, 128, 128, 8, 8, 8, {3, 3, 3}},
      {2, 320, 320, 4, 4, 4, {3, 3, 3}},  {2, 32, 32, 8, 32, 32, {1, 3, 3}},
  };
  if (quick) shapes = {{1, 8, 8, 8, 8, 8, {3, 3, 3}}};
  fmt::print("# reference conv3d, {} thread(s), median of {} run(s)\n", omp_get_max_threads(), iters);
  fmt::print("{:<34} {:>10} {:>10} {:>10} {:>8} {:>8} {:>8}\n", "shape", "fwd_ms", "bwd_data", "bwd_wgt", "fwd_GF",
             "bd_GF", "bw_GF");
  Generator gen(1);
  for (const auto& s : shapes) {
    const Int3 pad{s.k[0] / 2, s.k[1] / 2, s.k[2] / 2};
    const auto opt = Conv3dOptions{}.with_padding(pad);
    Tensor x = randn({s.n, s.ci, s.d, s.h, s.w}, gen);
    Tensor w = randn({s.co, s.ci, s.k[0], s.k[1], s.k[2]}, gen, 0, 0.05);
    Tensor y = kernels::ref::conv3d_forward(x, w, {}, opt);
    const double flops = 2.0 * static_cast<double>(y.numel()) * static_cast<double>(s.ci * s.k[0] * s.k[1] * s.k[2]);
    const double fwd = bench::median_ms(iters, [&] { kernels::ref::conv3d_forward(x, w, {}, opt); });
    const double bd = bench::median_ms(iters, [&] { kernels::ref::conv3d_backward_data(y, w, x.shape(), opt); });
    const double bw = bench::median_ms(iters, [&] { kernels::ref::conv3d_backward_weights(y, x, w.shape(), opt); });
    const std::string name =
        fmt::format("N{} {}->{} {}x{}x{} k{}x{}x{}", s.n, s.ci, s.co, s.d, s.h, s.w, s.k[0], s.k[1], s.k[2]);
    fmt::print("{:<34} {:>10.1f} {:>10.1f} {:>10.1f} {:>8.2f} {:>8.2f} {:>8.2f}\n", name, fwd, bd, bw,
               flops / fwd / 1e6, flops / bd / 1e6, flops / bw / 1e6);
  }
  return 0;
}
