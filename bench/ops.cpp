// Per-op timings of the CPU fast path on the nnUNet-style UNet's layer shapes: milliseconds, GFLOP/s
// and the fraction of this machine's fp32 FMA peak, measured by an FMA loop in this binary.
//
//   build/bench/ops [--iters 5] [--threads 2] [--batch 2] [--patch 64] [--quick]
//
// Rows: conv3d forward and backward-data (oneDNN, blocked layout), and backward-weights five ways:
// TLK's direct kernel, packed GEMM and pointwise (1x1x1 head) kernel, oneDNN given plain layouts, oneDNN
// given the layouts it chooses.
#include <fmt/format.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "timing.h"
#include "tlk/kernels/cpu/conv3d.h"
#include "tlk/kernels/cpu/conv3d_backward_weights.h"
#include "tlk/kernels/cpu/conv3d_backward_weights_gemm.h"
#include "tlk/kernels/cpu/conv3d_backward_weights_pointwise.h"
#include "tlk/tensor/blocked_format.h"
#include "tlk/tensor/random.h"

using namespace tlk;
namespace cpu = kernels::cpu;

namespace {

// Note [FMA peak]: 10 independent FMA chains per thread, each with its own start value (identical
// chains would be merged by the compiler) and all summed into the result (unused ones would be
// dropped), so latency never limits throughput and nothing is optimised away.
#define TLK_FMA_CHAINS(T, SET, FMA, ADD)                                                                \
  T b = SET(0.999999f), c = SET(1e-7f);                                                                 \
  T a0 = SET(1.0f), a1 = SET(1.001f), a2 = SET(1.002f), a3 = SET(1.003f), a4 = SET(1.004f);             \
  T a5 = SET(1.005f), a6 = SET(1.006f), a7 = SET(1.007f), a8 = SET(1.008f), a9 = SET(1.009f);           \
  for (std::int64_t r = 0; r < rounds; ++r) {                                                           \
    a0 = FMA(a0, b, c), a1 = FMA(a1, b, c), a2 = FMA(a2, b, c), a3 = FMA(a3, b, c), a4 = FMA(a4, b, c); \
    a5 = FMA(a5, b, c), a6 = FMA(a6, b, c), a7 = FMA(a7, b, c), a8 = FMA(a8, b, c), a9 = FMA(a9, b, c); \
  }                                                                                                     \
  T sum = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(ADD(a6, a7), ADD(a8, a9))));          \
  float lanes[sizeof(T) / 4];                                                                           \
  std::memcpy(lanes, &sum, sizeof(T));                                                                  \
  return lanes[0];

__attribute__((target("avx512f,fma"), noinline)) float fma_chains_avx512(std::int64_t rounds) {
  TLK_FMA_CHAINS(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps)
}
__attribute__((target("avx2,fma"), noinline)) float fma_chains_avx2(std::int64_t rounds) {
  TLK_FMA_CHAINS(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps)
}

double fma_peak_gflops(bool avx512) {
  const std::int64_t rounds = 20'000'000;
  float total = 0;
  const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel reduction(+ : total)
  total += avx512 ? fma_chains_avx512(rounds) : fma_chains_avx2(rounds);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double lanes = avx512 ? 16 : 8;
  if (!(total > 0)) fmt::print(stderr, "ops: FMA loop produced {}\n", total);
  return 2.0 * lanes * 10 * static_cast<double>(rounds) * omp_get_max_threads() / seconds / 1e9;
}

struct Layer {
  std::string name;
  std::int64_t ci, co, size;
  Int3 k, stride;
};

}  // namespace

int main(int argc, char** argv) {
  int iters = 5;
  std::int64_t batch = 2, patch = 64;
  bool quick = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&] {
      if (i + 1 >= argc) {
        fmt::print(stderr, "ops: {} needs a value\n", a);
        std::exit(1);
      }
      return std::stoll(argv[++i]);
    };
    if (a == "--iters")
      iters = static_cast<int>(std::max<long long>(1, value()));
    else if (a == "--threads")
      omp_set_num_threads(static_cast<int>(value()));
    else if (a == "--batch")
      batch = value();
    else if (a == "--patch")
      patch = value();
    else if (a == "--quick")
      quick = true;
    else if (a == "--layer" && i + 1 < argc)
      only = argv[++i];
    else if (a == "--help" || a == "-h") {
      fmt::print(
          "usage: ops [--iters N] [--threads N] [--batch N] [--patch N] [--quick] [--layer TEXT]\n"
          "Times conv3d forward, backward-data and backward-weights on UNet layer shapes.\n"
          "The three backward-weights implementations run interleaved, one call of each per round.\n"
          "  --quick       only the first two layers\n"
          "  --layer TEXT  only the layers whose name contains TEXT (e.g. 'L3')\n"
          "examples: build/bench/ops --iters 5 --threads 2\n"
          "          DNNL_MAX_CPU_ISA=AVX2 build/bench/ops --layer down\n");
      return 0;
    } else {
      fmt::print(stderr, "ops: unknown argument '{}' (see --help)\n", a);
      return 1;
    }
  }
  const bool avx512 = __builtin_cpu_supports("avx512f");
  // The machine is shared: the best of several short measurements is the least disturbed one.
  // TLK's backward-weights kernel is AVX2 code: its share is of the AVX2 peak.
  double peak = 0, peak_avx2 = 0;
  for (int i = 0; i < 5; ++i) {
    peak = std::max(peak, fma_peak_gflops(avx512));
    if (avx512) peak_avx2 = std::max(peak_avx2, fma_peak_gflops(false));
  }
  if (!avx512) peak_avx2 = peak;
  fmt::print(
      "# {} thread(s), median of {} run(s), batch {}, patch {}^3; fp32 FMA peak {:.0f} GFLOP/s ({}), "
      "AVX2 {:.0f} GFLOP/s\n",
      omp_get_max_threads(), iters, batch, patch, peak, avx512 ? "AVX-512" : "AVX2", peak_avx2);

  std::vector<Layer> layers;
  const std::int64_t widths[] = {32, 64, 128, 256, 320};
  for (int level = 0; level < 5; ++level) {
    const std::int64_t size = patch >> level, c = widths[level];
    if (size < 2) break;
    if (level == 0) layers.push_back({"stem 1->32", 1, c, size, {3, 3, 3}, {1, 1, 1}});
    layers.push_back({fmt::format("L{} {}->{}", level, c, c), c, c, size, {3, 3, 3}, {1, 1, 1}});
    if (level + 1 < 5 && (size >> 1) >= 2)
      layers.push_back({fmt::format("L{} down {}->{}", level, c, widths[level + 1]),
                        c,
                        widths[level + 1],
                        size,
                        {3, 3, 3},
                        {2, 2, 2}});
  }
  // The 1x1x1 segmentation head (and the deep-supervision heads, at lower resolutions).
  layers.push_back({"head 32->2 1x1x1", widths[0], 2, patch, {1, 1, 1}, {1, 1, 1}});
  if (quick) layers.resize(2);
  if (!only.empty())
    layers.erase(std::remove_if(layers.begin(), layers.end(),
                                [&](const Layer& L) { return L.name.find(only) == std::string::npos; }),
                 layers.end());

  fmt::print("{:<16} {:>6} | {:>7} {:>8} | {:>7} {:>9} | {:>9} {:>8} {:>8} {:>8} {:>8} | {:>8} {:>9} | {:>6}  {}\n",
             "layer", "GFLOP", "fwd ms", "bwd-d ms", "fwd %pk", "bwd-d %pk", "bw direct", "bw GEMM", "bw 1x1",
             "bw dnnl", "bw dnnl*", "TLK %pk2", "dnnl %pk2", "TLK x", "oneDNN chosen impl");
  Generator gen(1);
  for (const auto& L : layers) {
    const auto opt = Conv3dOptions{}.with_stride(L.stride).with_padding({L.k[0] / 2, L.k[1] / 2, L.k[2] / 2});
    Tensor x = randn({batch, L.ci, L.size, L.size, L.size}, gen);
    Tensor w = randn({L.co, L.ci, L.k[0], L.k[1], L.k[2]}, gen, 0, 0.05);
    Tensor y = cpu::conv3d_forward(x, w, {}, opt);
    Tensor xb = x.to(Layout::blocked);  // activations arrive in the blocked layout inside a network
    if (L.ci < 8) xb = x;               // except the network input
    const double gflop =
        2.0 * static_cast<double>(y.numel()) * static_cast<double>(L.ci * L.k[0] * L.k[1] * L.k[2]) / 1e9;
    const double fwd = bench::median_ms(
        iters, [&] { cpu::conv3d_forward(xb, w, {}, opt); }, 1);
    const double bwd_data = bench::median_ms(
        iters, [&] { cpu::conv3d_backward_data(y, w, x.shape(), opt); }, 1);
    // TLK's packed GEMM needs 8 input channels, its pointwise kernel a 1x1x1 head; where one cannot run,
    // its column shows "-".
    const bool gemm_runs = L.ci >= 8;
    const bool pointwise_runs = cpu::conv3d_backward_weights_pointwise_fits(y.shape(), x.shape(), w.shape(), opt);
    const auto bw = bench::interleaved_medians_ms(
        iters, [&] { cpu::conv3d_backward_weights_avx2(y, xb, w.shape(), opt); },
        [&] {
          if (gemm_runs) cpu::conv3d_backward_weights_gemm(y, xb, w.shape(), opt);
        },
        [&] {
          if (pointwise_runs) cpu::conv3d_backward_weights_pointwise(y, xb, w.shape(), opt);
        },
        [&] { cpu::conv3d_backward_weights_onednn(y, xb, w.shape(), opt, cpu::OneDnnWeightsLayout::plain); },
        [&] { cpu::conv3d_backward_weights_onednn(y, xb, w.shape(), opt, cpu::OneDnnWeightsLayout::chosen); });
    const double bw_onednn = std::min(bw[3], bw[4]);
    // The kernel conv3d_backward_weights takes on an AVX2 machine.
    const auto picked = cpu::avx2_backward_weights_kernel(y.shape(), x.shape(), w.shape(), opt);
    const double bw_tlk = picked == cpu::Avx2WeightsKernel::pointwise ? bw[2]
                          : picked == cpu::Avx2WeightsKernel::gemm    ? bw[1]
                                                                      : bw[0];
    const std::string impl = cpu::conv3d_backward_weights_onednn_impl(x.shape(), w.shape(), y.shape(), opt,
                                                                      cpu::OneDnnWeightsLayout::chosen);
    auto pct = [&](double ms, double of) { return 100.0 * gflop / (ms / 1e3) / of; };
    auto ms_or_dash = [](bool runs, double ms) { return runs ? fmt::format("{:.1f}", ms) : std::string("-"); };
    fmt::print(
        "{:<16} {:>6.2f} | {:>7.1f} {:>8.1f} | {:>6.0f}% {:>8.0f}% | {:>9.1f} {:>8} {:>8} {:>8.1f} {:>8.1f} | "
        "{:>7.0f}% "
        "{:>8.0f}% | {:>5.2f}x  {}\n",
        L.name, gflop, fwd, bwd_data, pct(fwd, peak), pct(bwd_data, peak), bw[0], ms_or_dash(gemm_runs, bw[1]),
        ms_or_dash(pointwise_runs, bw[2]), bw[3], bw[4], pct(bw_tlk, peak_avx2), pct(bw_onednn, peak_avx2),
        bw_onednn / bw_tlk, impl);
  }
  fmt::print(
      "# bw direct / bw GEMM / bw 1x1: TLK's three kernels; bw dnnl: oneDNN on plain layouts (im2col+GEMM); bw\n"
      "# dnnl*: oneDNN on the layouts it chooses. TLK x: the better oneDNN time over the TLK kernel that\n"
      "# conv3d_backward_weights picks without a oneDNN JIT (1x1 for heads of up to 3 classes, else GEMM for\n"
      "# planes <= 32 wide, else direct; above 1 means TLK is faster). Times include the\n"
      "# reorders each path needs from the blocked activations. %pk: of the FMA peak; %pk2: of the AVX2 FMA peak\n"
      "# (TLK's kernels are AVX2 code; TLK %pk2 is the picked kernel's, dnnl %pk2 the faster oneDNN path's).\n");
  return 0;
}
