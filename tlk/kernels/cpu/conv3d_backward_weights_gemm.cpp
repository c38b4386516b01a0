// TLK's packed-GEMM kernel for the weight gradient of conv3d (Note [Packed GEMM for small planes]).
#include "tlk/kernels/cpu/conv3d_backward_weights_gemm.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "tlk/kernels/cpu/channel_blocked_activation.h"
#include "tlk/kernels/cpu/conv3d_backward_weights_avx2.h"

namespace tlk::kernels::cpu {

namespace {

constexpr std::int64_t kRows = 4;                       // output channels of a micro-tile, broadcast from dy
constexpr std::int64_t kLanes = 8;                      // input channels of a panel: one AVX2 register
constexpr std::int64_t kPanelTaps = 3;                  // taps of a panel
constexpr std::int64_t kColumns = kPanelTaps * kLanes;  // columns of a panel and of a micro-tile
constexpr std::int64_t kDepth = 128;                    // output positions per packed panel
constexpr std::int64_t kPrefetchAhead = 8;
constexpr std::int64_t kMaxGroup = 9;  // panels per unit of work: a 3x3x3 kernel's taps of one tile
// Where the packed GEMM is chosen (Note [Packed GEMM for small planes]): on planes 32 positions wide it
// was as fast as the direct kernel or faster (up to 1.2x on L0 down), on 64 the direct one was 1.2x
// faster; a panel should serve at least 4 micro-tiles.
constexpr std::int64_t kSmallPlaneWidth = 32;
constexpr std::int64_t kMinOutputChannels = 16;

// A window's corner or a tap: where it lies from a sample's start in x (an offset, negative inside the
// padding), and its (d, h, w) for the bounds checks of the windows that reach into the padding.
struct Place {
  std::int32_t offset, d, h, w;
};

struct Problem {
  ChannelBlockedActivation x, dy;
  std::int64_t samples, ci, co, tap_count;
  std::int64_t tap_groups;           // panels per tile of 8 input channels: ⌈tap_count / 3⌉
  std::vector<Place> taps;           // from a window's corner, 3·tap_groups; the padding taps read the corner
  std::vector<Place> corners;        // each output position's window corner
  std::vector<std::uint8_t> inside;  // 1 where every tap of the position's window lies inside x
  float* weights;                    // plain [co, ci, tap_count]
  std::int64_t panels() const { return (ci + kLanes - 1) / kLanes * tap_groups; }
};

// Rows [0, depth) of panel (tile, tap group) for one sample: panel[k][t][lane] = x[channel tile·8 + lane,
// at position k0+k's window corner + tap 3·group + t], zero in the padding. Three vector copies per
// position from the channel-blocked x (Note [Packed GEMM for small planes]); the positions whose window
// reaches into the padding check each tap.
__attribute__((target("avx2,fma"))) void pack_panel(const Problem& p, const float* x_sample, std::int64_t tile,
                                                    std::int64_t tap_group, std::int64_t k0, std::int64_t depth,
                                                    float* panel) {
  const float* x = x_sample + (p.x.channel(tile * kLanes) - p.x.data);
  const Place* taps = p.taps.data() + tap_group * kPanelTaps;
  const Int3& e = p.x.extent;
  for (std::int64_t k = k0; k < k0 + depth; ++k, panel += kColumns) {
    const Place& c = p.corners[static_cast<std::size_t>(k)];
    const std::size_t ahead = static_cast<std::size_t>(k + kPrefetchAhead);
    if (k + kPrefetchAhead < k0 + depth && p.inside[ahead]) {
      const float* corner = x + p.corners[ahead].offset;
      _mm_prefetch(reinterpret_cast<const char*>(corner + taps[0].offset), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(corner + taps[2].offset), _MM_HINT_T0);
    }
    if (p.inside[static_cast<std::size_t>(k)]) {
      for (int t = 0; t < kPanelTaps; ++t)
        _mm256_storeu_ps(panel + t * kLanes, _mm256_loadu_ps(x + (c.offset + taps[t].offset)));
      continue;
    }
    for (int t = 0; t < kPanelTaps; ++t) {
      const std::int64_t d = c.d + taps[t].d, h = c.h + taps[t].h, w = c.w + taps[t].w;
      const bool in = d >= 0 && d < e[0] && h >= 0 && h < e[1] && w >= 0 && w < e[2];
      _mm256_storeu_ps(panel + t * kLanes, in ? _mm256_loadu_ps(x + (c.offset + taps[t].offset)) : _mm256_setzero_ps());
    }
  }
}

// c[r][0..24) (+)= Σ_k a[k][r] · panel[k][0..24) for the 4 rows r. The twelve sums are named
// locals of one function so that they stay in registers (Note [Accumulators by value] in
// conv3d_backward_weights_avx2.cpp: GCC spills them from an array behind a reference).
// Note [Unrolled positions]: a position costs 12 FMAs, 7 loads and 4 loop instructions, about 23 uops,
// which the front end issues in no less than the FMAs' 6 cycles. Unrolled 4 times, the loop
// instructions are paid once per 4 positions: 9-13% faster on every layer (bench/ops under
// DNNL_MAX_CPU_ISA=AVX2, 2026-11-27); 8 times was no faster than 4. The assembly keeps all 12 sums in
// registers (no %rsp traffic).
template <bool Accumulate>
__attribute__((target("avx2,fma"), noinline)) void multiply_tile(const float* a, const float* panel, std::int64_t depth,
                                                                 float* c, std::int64_t c_stride) {
  __m256 s00 = _mm256_setzero_ps(), s01 = s00, s02 = s00, s10 = s00, s11 = s00, s12 = s00;
  __m256 s20 = s00, s21 = s00, s22 = s00, s30 = s00, s31 = s00, s32 = s00;
#pragma GCC unroll 4
  for (std::int64_t k = 0; k < depth; ++k, a += kRows, panel += kColumns) {
    const __m256 b0 = _mm256_loadu_ps(panel), b1 = _mm256_loadu_ps(panel + 8), b2 = _mm256_loadu_ps(panel + 16);
    __m256 r = _mm256_broadcast_ss(a);
    s00 = _mm256_fmadd_ps(r, b0, s00), s01 = _mm256_fmadd_ps(r, b1, s01), s02 = _mm256_fmadd_ps(r, b2, s02);
    r = _mm256_broadcast_ss(a + 1);
    s10 = _mm256_fmadd_ps(r, b0, s10), s11 = _mm256_fmadd_ps(r, b1, s11), s12 = _mm256_fmadd_ps(r, b2, s12);
    r = _mm256_broadcast_ss(a + 2);
    s20 = _mm256_fmadd_ps(r, b0, s20), s21 = _mm256_fmadd_ps(r, b1, s21), s22 = _mm256_fmadd_ps(r, b2, s22);
    r = _mm256_broadcast_ss(a + 3);
    s30 = _mm256_fmadd_ps(r, b0, s30), s31 = _mm256_fmadd_ps(r, b1, s31), s32 = _mm256_fmadd_ps(r, b2, s32);
  }
  auto put = [&](float* row, __m256 v0, __m256 v1, __m256 v2) __attribute__((target("avx2,fma"))) {
    if (Accumulate) {
      v0 = _mm256_add_ps(v0, _mm256_loadu_ps(row));
      v1 = _mm256_add_ps(v1, _mm256_loadu_ps(row + 8));
      v2 = _mm256_add_ps(v2, _mm256_loadu_ps(row + 16));
    }
    _mm256_storeu_ps(row, v0);
    _mm256_storeu_ps(row + 8, v1);
    _mm256_storeu_ps(row + 16, v2);
  };
  put(c, s00, s01, s02);
  put(c + c_stride, s10, s11, s12);
  put(c + 2 * c_stride, s20, s21, s22);
  put(c + 3 * c_stride, s30, s31, s32);
}

// The start of the next micro-tile's dy rows and its 4 rows of sums, into L1 while this tile runs
// (1-5% on most layers, bench/ops 2026-11-27).
void prefetch_tile(const float* a, const float* c, std::int64_t c_stride) {
  for (int line = 0; line < 4; ++line) _mm_prefetch(reinterpret_cast<const char*>(a + 16 * line), _MM_HINT_T0);
  for (std::int64_t r = 0; r < kRows; ++r)
    for (const std::int64_t offset : {std::int64_t{0}, std::int64_t{16}, kColumns - 1})
      _mm_prefetch(reinterpret_cast<const char*>(c + r * c_stride + offset), _MM_HINT_T0);
}

// dy, 4 output channels at a time: rows[c / 4][n][position][c % 4], so that a micro-tile reads 16
// contiguous bytes per position; packed once for all groups. The 4 channels of a tile lie in one
// channel block (blocks are 8 or 16 wide); lanes past Co are the block's zero padding, and their sums
// are never stored.
std::vector<float> pack_dy_rows(const Problem& p) {
  const std::int64_t positions = static_cast<std::int64_t>(p.corners.size()), quads = (p.co + kRows - 1) / kRows;
  std::vector<float> rows(static_cast<std::size_t>(quads * p.samples * positions * kRows));
#pragma omp parallel for collapse(2)
  for (std::int64_t quad = 0; quad < quads; ++quad)
    for (std::int64_t n = 0; n < p.samples; ++n) {
      const float* dy = p.dy.channel(quad * kRows) + n * p.dy.sample();
      float* out = rows.data() + ((quad * p.samples + n) * positions) * kRows;
      for (std::int64_t k = 0; k < positions; ++k) std::copy_n(dy + k * p.dy.block, kRows, out + k * kRows);
    }
  return rows;
}

// Panels [panel0, panel1), in the order (tile, tap group): every sample, every block of positions, every
// micro-tile, summed in `sums` [⌈Co/4⌉·4][panel][24]; then the sums go to their places in the plain
// weights. A panel is packed right before its tiles run, so it stays in L1 while dy's rows stream past.
__attribute__((target("avx2,fma"))) void run_group(const Problem& p, const float* dy_rows, std::int64_t panel0,
                                                   std::int64_t panel1, float* packed, std::vector<float>& sums) {
  const std::int64_t positions = static_cast<std::int64_t>(p.corners.size());
  const std::int64_t rows = (p.co + kRows - 1) / kRows * kRows, row_stride = (panel1 - panel0) * kColumns;
  sums.resize(static_cast<std::size_t>(rows * row_stride));
  for (std::int64_t n = 0; n < p.samples; ++n)
    for (std::int64_t k0 = 0; k0 < positions; k0 += kDepth) {
      const std::int64_t depth = std::min(kDepth, positions - k0);
      const bool accumulate = n > 0 || k0 > 0;
      for (std::int64_t panel = panel0; panel < panel1; ++panel) {
        pack_panel(p, p.x.data + n * p.x.sample(), panel / p.tap_groups, panel % p.tap_groups, k0, depth, packed);
        for (std::int64_t row0 = 0; row0 < p.co; row0 += kRows) {
          const float* a = dy_rows + ((row0 / kRows * p.samples + n) * positions + k0) * kRows;
          float* c = sums.data() + row0 * row_stride + (panel - panel0) * kColumns;
          if (row0 + kRows < p.co) prefetch_tile(a + p.samples * positions * kRows, c + kRows * row_stride, row_stride);
          if (accumulate)
            multiply_tile<true>(a, packed, depth, c, row_stride);
          else
            multiply_tile<false>(a, packed, depth, c, row_stride);
        }
      }
    }
  // Each (output channel, input channel) gets its taps in a row: consecutive stores into the weights.
  for (std::int64_t co = 0; co < p.co; ++co)
    for (std::int64_t first = panel0; first < panel1;) {
      const std::int64_t tile = first / p.tap_groups, last = std::min(panel1, (tile + 1) * p.tap_groups);
      const std::int64_t tap_begin = (first - tile * p.tap_groups) * kPanelTaps;
      const std::int64_t tap_end = std::min(p.tap_count, (last - tile * p.tap_groups) * kPanelTaps);
      for (std::int64_t lane = 0; lane < std::min(kLanes, p.ci - tile * kLanes); ++lane) {
        // Tap t of this lane sits (t - tap_begin)·8 floats after tap_begin's: the panels are consecutive.
        const float* s = sums.data() + co * row_stride + (first - panel0) * kColumns + lane - tap_begin * kLanes;
        float* w = p.weights + (co * p.ci + tile * kLanes + lane) * p.tap_count;
        for (std::int64_t t = tap_begin; t < tap_end; ++t) w[t] = s[t * kLanes];
      }
      first = last;
    }
}

}  // namespace

bool conv3d_backward_weights_prefers_gemm(const Shape& grad_output, const Shape& input) {
  return grad_output.size() == 5 && input.size() == 5 && grad_output[4] <= kSmallPlaneWidth && input[1] >= kLanes &&
         grad_output[1] >= kMinOutputChannels;
}

Tensor conv3d_backward_weights_gemm(const Tensor& grad_in, const Tensor& input_in, const Shape& weight_shape,
                                    const Conv3dOptions& opt) {
  Tensor grad = grad_in.detach(), input = input_in.detach();
  check_avx2_kernel_arguments(grad, input, weight_shape, opt, "packed GEMM");
  check(input.shape()[1] >= kLanes,
        "conv3d backward weights (packed GEMM): input {} has {} channels, the kernel needs at least {}; call "
        "conv3d_backward_weights, which picks another implementation",
        input.shape().str(), input.shape()[1], kLanes);
  if (grad.numel() == 0) return Tensor::zeros(weight_shape);
  std::int64_t x_block = 0, dy_block = 0;
  Tensor x = in_channel_blocks(input, x_block), dy = in_channel_blocks(grad, dy_block);
  Tensor out = Tensor::empty(weight_shape);
  const Int3 k{weight_shape[2], weight_shape[3], weight_shape[4]};
  const std::int64_t tap_count = k[0] * k[1] * k[2];
  Problem p{activation_of(x, x_block),
            activation_of(dy, dy_block),
            input.shape()[0],
            input.shape()[1],
            grad.shape()[1],
            tap_count,
            (tap_count + kPanelTaps - 1) / kPanelTaps,
            {},
            {},
            {},
            out.data<float>()};
  check(p.x.sample() <= std::numeric_limits<std::int32_t>::max(),
        "conv3d backward weights (packed GEMM): a sample of input {} spans {} floats, more than 32-bit offsets "
        "reach; call conv3d_backward_weights, which picks another implementation",
        input.shape().str(), p.x.sample());

  auto place = [&](std::int64_t d, std::int64_t h, std::int64_t w) {
    return Place{static_cast<std::int32_t>(d * p.x.plane() + h * p.x.row() + w * p.x.block),
                 static_cast<std::int32_t>(d), static_cast<std::int32_t>(h), static_cast<std::int32_t>(w)};
  };
  p.taps.assign(static_cast<std::size_t>(p.tap_groups * kPanelTaps), Place{0, 0, 0, 0});
  for (std::int64_t kd = 0; kd < k[0]; ++kd)
    for (std::int64_t kh = 0; kh < k[1]; ++kh)
      for (std::int64_t kw = 0; kw < k[2]; ++kw)
        p.taps[static_cast<std::size_t>((kd * k[1] + kh) * k[2] + kw)] =
            place(kd * opt.dilation[0], kh * opt.dilation[1], kw * opt.dilation[2]);
  const Place& last_tap = p.taps[static_cast<std::size_t>(tap_count - 1)];
  for (std::int64_t od = 0; od < p.dy.extent[0]; ++od)
    for (std::int64_t oh = 0; oh < p.dy.extent[1]; ++oh)
      for (std::int64_t ow = 0; ow < p.dy.extent[2]; ++ow) {
        const Place c = place(od * opt.stride[0] - opt.padding[0], oh * opt.stride[1] - opt.padding[1],
                              ow * opt.stride[2] - opt.padding[2]);
        p.corners.push_back(c);
        p.inside.push_back(c.d >= 0 && c.h >= 0 && c.w >= 0 && c.d + last_tap.d < p.x.extent[0] &&
                           c.h + last_tap.h < p.x.extent[1] && c.w + last_tap.w < p.x.extent[2]);
      }

  // A group is a tile's panels (up to kMaxGroup): they read the same x, which stays in cache between them
  // (whole tiles ran 4-14% faster than groups of 4 panels on the wide layers, bench/ops 2026-11-27).
  // Groups shrink where there would be fewer than two per thread.
  const std::int64_t panels = p.panels(), threads = omp_get_max_threads();
  const std::int64_t group =
      std::clamp<std::int64_t>((panels + 2 * threads - 1) / (2 * threads), 1, std::min(kMaxGroup, p.tap_groups));
  const std::int64_t groups = (panels + group - 1) / group;
  const std::vector<float> dy_rows = pack_dy_rows(p);
#pragma omp parallel
  {
    alignas(32) float packed[kDepth * kColumns];
    std::vector<float> sums;
#pragma omp for schedule(dynamic)
    for (std::int64_t g = 0; g < groups; ++g)
      run_group(p, dy_rows.data(), g * group, std::min(panels, (g + 1) * group), packed, sums);
  }
  return out;
}

}  // namespace tlk::kernels::cpu
