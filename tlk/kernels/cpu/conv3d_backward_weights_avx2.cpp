// TLK's AVX2/FMA kernel for the weight gradient of conv3d (Note [Backward-weights kernel]).
#include "tlk/kernels/cpu/conv3d_backward_weights_avx2.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <iterator>
#include <vector>

#include "tlk/kernels/cpu/avx2_sums.h"
#include "tlk/kernels/cpu/channel_blocked_activation.h"

namespace tlk::kernels::cpu {

namespace {

constexpr std::int64_t kLanes = 8;    // f32 lanes of one AVX2 register
constexpr int kMaxTapsPerPass = 3;    // kernel columns (kw) one pass keeps in registers
constexpr int kMaxVectorsPerTap = 4;  // accumulators per tap: taps x vectors <= 12 of the 16 registers

// Which channels fill the register lanes (Note [Backward-weights kernel]).
enum class Lanes { input_channels, output_channels };

using Activation = ChannelBlockedActivation;

// `x` (n samples) inside a border of `pad` zeros on each side, in `storage`.
Activation zero_bordered(const Activation& x, std::int64_t n, const Int3& pad, std::vector<float>& storage) {
  Activation bordered{
      nullptr, x.block, x.blocks, {x.extent[0] + 2 * pad[0], x.extent[1] + 2 * pad[1], x.extent[2] + 2 * pad[2]}};
  storage.assign(static_cast<std::size_t>(n * bordered.sample()), 0.0f);
  bordered.data = storage.data();
  const std::int64_t volumes = n * x.blocks;
#pragma omp parallel for collapse(2)
  for (std::int64_t v = 0; v < volumes; ++v)
    for (std::int64_t d = 0; d < x.extent[0]; ++d)
      for (std::int64_t h = 0; h < x.extent[1]; ++h)
        std::copy_n(x.data + (v * x.extent[0] + d) * x.plane() + h * x.row(), x.row(),
                    storage.data() + (v * bordered.extent[0] + d + pad[0]) * bordered.plane() +
                        (h + pad[1]) * bordered.row() + pad[2] * bordered.block);
  return bordered;
}

// Where output plane (n, od) and the input plane (n, id) it reads for one kd lie, from a channel's first
// element; the lists hold only the planes whose input plane exists.
struct PlanePair {
  std::int64_t x, dy;
};

// One pass over the rows of a plane for kernel row kh and kernel columns kw0 .. kw0+T-1; the same for
// every unit, so computed once per call.
struct PassShape {
  std::int64_t kh, kw0, taps;
  std::int64_t iw0;           // input column of output column 0, tap kw0
  std::int64_t tap_step;      // floats between the taps' input columns
  std::int64_t ow_lo, ow_hi;  // [ow_lo, ow_hi): every tap of the pass inside the input
  std::int64_t oh_lo, oh_hi;  // output rows whose input row exists
  std::int64_t ih0;           // input row of output row 0
  // Small planes (Note [Small planes]): x's offset in its plane, tap kw0, of every output position of a
  // plane, row after row; empty where the pass walks rows.
  std::vector<std::int32_t> x_offsets;
};

struct Geometry {
  Activation x, dy;
  std::int64_t n, ci, co;
  Int3 k;
  Conv3dOptions opt;
  Lanes lanes;
  float* weights;  // the result, plain [Co, Ci, kD, kH, kW]
  float* partial;  // sums carried between plane chunks, [scalar][tile][tap][8 lanes]; null with one chunk
  std::vector<PassShape> passes;  // for each kh, kw0
  std::int64_t taps() const { return k[0] * k[1] * k[2]; }
  // Input-channel lanes: the scalars are output channels (rounded up to groups of 4) and a tile is 8 input
  // channels. Output-channel lanes: the scalars are input channels and a tile is 8 output channels.
  std::int64_t scalars() const { return lanes == Lanes::input_channels ? (co + 3) / 4 * 4 : ci; }
  std::int64_t tiles() const { return ((lanes == Lanes::input_channels ? ci : co) + kLanes - 1) / kLanes; }
  std::int64_t scalars_per_unit() const { return lanes == Lanes::input_channels ? kMaxVectorsPerTap : 1; }
  std::int64_t tiles_per_unit() const { return lanes == Lanes::input_channels ? 1 : kMaxVectorsPerTap; }
};

// One chunk of output planes, its plane pairs listed per kd.
struct Chunk {
  std::vector<std::vector<PlanePair>> by_kd;
  bool first, last;
};

// One unit of work: a group of scalar channels, a group of lane tiles and a range of kernel rows (kd, kh),
// over one chunk of planes. The units of a chunk write disjoint sums.
struct Unit {
  std::int64_t scalar0, tile0, row0, row1;
};

// Output indices o in [lo, hi) whose input index o*stride - pad + offset lies in [0, extent).
void valid_range(std::int64_t extent, std::int64_t out_extent, std::int64_t stride, std::int64_t pad,
                 std::int64_t offset, std::int64_t& lo, std::int64_t& hi) {
  const std::int64_t shift = pad - offset;
  lo = shift <= 0 ? 0 : (shift + stride - 1) / stride;
  const std::int64_t top = extent - 1 + shift;
  hi = top < 0 ? 0 : std::min(out_extent, top / stride + 1);
  if (hi < lo) hi = lo;
}

std::vector<PassShape> pass_shapes(const Activation& x, const Activation& dy, const Int3& k, const Conv3dOptions& o,
                                   bool small_planes) {
  std::vector<PassShape> passes;
  for (std::int64_t kh = 0; kh < k[1]; ++kh)
    for (std::int64_t kw0 = 0; kw0 < k[2]; kw0 += kMaxTapsPerPass) {
      PassShape s{};
      s.kh = kh;
      s.kw0 = kw0;
      s.taps = std::min<std::int64_t>(kMaxTapsPerPass, k[2] - kw0);
      s.iw0 = kw0 * o.dilation[2] - o.padding[2];
      s.tap_step = o.dilation[2] * x.block;
      s.ow_lo = 0;
      s.ow_hi = dy.extent[2];
      for (std::int64_t t = 0; t < s.taps; ++t) {
        std::int64_t lo, hi;
        valid_range(x.extent[2], dy.extent[2], o.stride[2], o.padding[2], (kw0 + t) * o.dilation[2], lo, hi);
        s.ow_lo = std::max(s.ow_lo, lo);
        s.ow_hi = std::min(s.ow_hi, hi);
      }
      s.ow_hi = std::max(s.ow_hi, s.ow_lo);
      valid_range(x.extent[1], dy.extent[1], o.stride[1], o.padding[1], kh * o.dilation[1], s.oh_lo, s.oh_hi);
      s.ih0 = kh * o.dilation[1] - o.padding[1];
      if (small_planes) {
        check(s.ow_lo == 0 && s.ow_hi == dy.extent[2] && s.oh_lo == 0 && s.oh_hi == dy.extent[1],
              "conv3d backward weights: a small-plane pass reaches outside its zero-bordered input");
        for (std::int64_t oh = 0; oh < dy.extent[1]; ++oh)
          for (std::int64_t ow = 0; ow < dy.extent[2]; ++ow)
            s.x_offsets.push_back(
                static_cast<std::int32_t>((s.ih0 + oh * o.stride[1]) * x.row() + (ow * o.stride[2] + s.iw0) * x.block));
      }
      passes.push_back(s);
    }
  return passes;
}

// A pass's sums, acc[t][j]: tap t of the pass, column j (an output channel of the unit's group, or a tile of
// output channels).
// Note [Accumulators by value]: GCC 12 keeps all twelve in registers only when they are passed and
// returned by value through the position step, inside a function that does nothing but walk the planes.
// As an array behind a reference, or inlined into the unit's set-up, they were stored back to the stack
// after every position: store-bound, at half speed. Loading the starting sums (zero or carried) inside
// that function instead of passing them in kept the assembly free of spills, yet ran every layer at half
// speed too (2026-11-27, bench/ops under DNNL_MAX_CPU_ISA=AVX2); check bench/ops after any change here.
template <int T, int J>
using Accumulators = Avx2Sums<T, J>;

// The dy pointers of a pass: one for a group of output channels broadcast from one block, one per tile
// where output channels fill the lanes.
template <Lanes L, int J>
struct DyPointers {
  const float* p[L == Lanes::input_channels ? 1 : J];
};

// One output position: acc[t][j] += x(tap t) * dy, with x(tap t) at x[t] and dy at dy.p. With Checked, a null
// x[t] is a column outside the input (the zero padding).
template <Lanes L, int T, int J, bool Checked>
__attribute__((target("avx2,fma"), always_inline)) inline Accumulators<T, J> accumulate_position(
    Accumulators<T, J> a, const float* const (&x)[T], const DyPointers<L, J>& dy) {
  auto& acc = a.acc;
  if constexpr (L == Lanes::input_channels) {
    __m256 xv[T];
    for (int t = 0; t < T; ++t) xv[t] = !Checked || x[t] ? _mm256_loadu_ps(x[t]) : _mm256_setzero_ps();
    for (int j = 0; j < J; ++j) {
      const __m256 b = _mm256_broadcast_ss(dy.p[0] + j);
      for (int t = 0; t < T; ++t) acc[t][j] = _mm256_fmadd_ps(b, xv[t], acc[t][j]);
    }
  } else {
    __m256 dv[J];
    for (int j = 0; j < J; ++j) dv[j] = _mm256_loadu_ps(dy.p[j]);
    for (int t = 0; t < T; ++t) {
      if (Checked && !x[t]) continue;
      const __m256 b = _mm256_broadcast_ss(x[t]);
      for (int j = 0; j < J; ++j) acc[t][j] = _mm256_fmadd_ps(dv[j], b, acc[t][j]);
    }
  }
  return a;
}

// Every row of the listed planes for one pass. Not inlined (Note [Accumulators by value]).
template <Lanes L, int T, int J>
__attribute__((target("avx2,fma"), noinline)) Accumulators<T, J> accumulate_planes(
    Accumulators<T, J> a, const Geometry& g, const PassShape& s, const float* x_channel,
    const DyPointers<L, J>& dy_channel, const std::vector<PlanePair>& planes) {
  const std::int64_t x_step = g.x.block, dy_step = g.dy.block, x_advance = g.opt.stride[2] * x_step;
  const std::int64_t in_w = g.x.extent[2], out_w = g.dy.extent[2];
  const std::int64_t x_row = g.opt.stride[1] * g.x.row(), dy_row = g.dy.row();
  if (!s.x_offsets.empty()) {
    // Small planes: one walk over all positions of a plane, every tap inside the (zero-bordered) input.
    const std::int64_t positions = static_cast<std::int64_t>(s.x_offsets.size());
    const std::int32_t* offsets = s.x_offsets.data();
    for (const PlanePair& plane : planes) {
      const float* x = x_channel + plane.x;
      DyPointers<L, J> d;
      for (std::size_t j = 0; j < std::size(d.p); ++j) d.p[j] = dy_channel.p[j] + plane.dy;
      for (std::int64_t position = 0; position < positions; ++position) {
        const float* xt[T];
        for (int t = 0; t < T; ++t) xt[t] = x + offsets[position] + t * s.tap_step;
        a = accumulate_position<L, T, J, false>(a, xt, d);
        for (std::size_t j = 0; j < std::size(d.p); ++j) d.p[j] += dy_step;
      }
    }
    return a;
  }
  for (const PlanePair& plane : planes) {
    const float* x = x_channel + plane.x + (s.ih0 + s.oh_lo * g.opt.stride[1]) * g.x.row();
    DyPointers<L, J> dy;
    for (std::size_t j = 0; j < std::size(dy.p); ++j) dy.p[j] = dy_channel.p[j] + plane.dy + s.oh_lo * dy_row;
    for (std::int64_t oh = s.oh_lo; oh < s.oh_hi; ++oh, x += x_row) {
      // Edge columns, where a tap may fall in the padding: one input-column check per tap.
      auto edge = [&](std::int64_t ow) __attribute__((target("avx2,fma"))) {
        const float* xt[T];
        for (int t = 0; t < T; ++t) {
          const std::int64_t iw = ow * g.opt.stride[2] + s.iw0 + t * g.opt.dilation[2];
          xt[t] = iw >= 0 && iw < in_w ? x + iw * x_step : nullptr;
        }
        DyPointers<L, J> d;
        for (std::size_t j = 0; j < std::size(d.p); ++j) d.p[j] = dy.p[j] + ow * dy_step;
        a = accumulate_position<L, T, J, true>(a, xt, d);
      };
      for (std::int64_t ow = 0; ow < s.ow_lo; ++ow) edge(ow);
      // Interior columns: every tap inside, the pointers advance by one output column.
      const float* xt[T];
      for (int t = 0; t < T; ++t) xt[t] = x + (s.ow_lo * g.opt.stride[2] + s.iw0) * x_step + t * s.tap_step;
      DyPointers<L, J> d;
      for (std::size_t j = 0; j < std::size(d.p); ++j) d.p[j] = dy.p[j] + s.ow_lo * dy_step;
      for (std::int64_t ow = s.ow_lo; ow < s.ow_hi; ++ow) {
        a = accumulate_position<L, T, J, false>(a, xt, d);
        for (int t = 0; t < T; ++t) xt[t] += x_advance;
        for (std::size_t j = 0; j < std::size(d.p); ++j) d.p[j] += dy_step;
      }
      for (std::int64_t ow = s.ow_hi; ow < out_w; ++ow) edge(ow);
      for (std::size_t j = 0; j < std::size(dy.p); ++j) dy.p[j] += dy_row;
    }
  }
  return a;
}

// One pass of one unit over one kernel row (kd, and the pass's kh and kw0 .. kw0+T-1), every plane of the
// chunk: starts from zero in the first chunk (else from the carried sums) and ends in the weights in the
// last (else in the carried sums).
template <Lanes L, int T, int J>
__attribute__((target("avx2,fma"))) void accumulate_pass(const Geometry& g, const Unit& u, std::int64_t kd,
                                                         const PassShape& s, const Chunk& chunk) {
  const std::int64_t taps = g.taps(), tiles = g.tiles(), tap0 = (kd * g.k[1] + s.kh) * g.k[2] + s.kw0;
  // (scalar channel, lane tile) of accumulator column j.
  auto scalar_of = [&](int j) { return L == Lanes::input_channels ? u.scalar0 + j : u.scalar0; };
  auto tile_of = [&](int j) { return L == Lanes::input_channels ? u.tile0 : u.tile0 + j; };
  auto carried = [&](int t, int j) {
    return g.partial + ((scalar_of(j) * tiles + tile_of(j)) * taps + tap0 + t) * kLanes;
  };

  const float* x_channel = g.x.channel(L == Lanes::input_channels ? u.tile0 * kLanes : u.scalar0);
  DyPointers<L, J> dy_channel;
  for (std::size_t j = 0; j < std::size(dy_channel.p); ++j)
    dy_channel.p[j] = g.dy.channel(L == Lanes::input_channels ? u.scalar0 : (u.tile0 + j) * kLanes);

  Accumulators<T, J> a;
  for (int t = 0; t < T; ++t)
    for (int j = 0; j < J; ++j) a.acc[t][j] = chunk.first ? _mm256_setzero_ps() : _mm256_loadu_ps(carried(t, j));
  a = accumulate_planes<L, T, J>(a, g, s, x_channel, dy_channel, chunk.by_kd[kd]);
  for (int j = 0; j < J; ++j) {
    const std::int64_t lane0 = tile_of(j) * kLanes;
    const std::int64_t co = L == Lanes::input_channels ? scalar_of(j) : lane0;
    const std::int64_t ci = L == Lanes::input_channels ? lane0 : scalar_of(j);
    const std::int64_t lane_stride = L == Lanes::input_channels ? taps : g.ci * taps;
    const std::int64_t valid =
        L == Lanes::input_channels ? (co < g.co ? std::min(kLanes, g.ci - ci) : 0) : std::min(kLanes, g.co - co);
    for (int t = 0; t < T; ++t) {
      if (!chunk.last) {
        _mm256_storeu_ps(carried(t, j), a.acc[t][j]);
        continue;
      }
      float lanes[kLanes];
      _mm256_storeu_ps(lanes, a.acc[t][j]);
      float* w = g.weights + (co * g.ci + ci) * taps + tap0 + t;
      for (std::int64_t lane = 0; lane < valid; ++lane) w[lane * lane_stride] = lanes[lane];
    }
  }
}

using Pass = void (*)(const Geometry&, const Unit&, std::int64_t, const PassShape&, const Chunk&);

template <Lanes L>
Pass pass_for(std::int64_t taps, std::int64_t vectors) {
  static constexpr Pass table[kMaxTapsPerPass][kMaxVectorsPerTap] = {
      {accumulate_pass<L, 1, 1>, accumulate_pass<L, 1, 2>, accumulate_pass<L, 1, 3>, accumulate_pass<L, 1, 4>},
      {accumulate_pass<L, 2, 1>, accumulate_pass<L, 2, 2>, accumulate_pass<L, 2, 3>, accumulate_pass<L, 2, 4>},
      {accumulate_pass<L, 3, 1>, accumulate_pass<L, 3, 2>, accumulate_pass<L, 3, 3>, accumulate_pass<L, 3, 4>}};
  return table[taps - 1][vectors - 1];
}

// Every pass of a unit: its kernel rows, each in passes of up to three columns.
void run_unit(const Geometry& g, const Unit& u, const Chunk& chunk) {
  const std::int64_t vectors = g.lanes == Lanes::input_channels
                                   ? kMaxVectorsPerTap
                                   : std::min<std::int64_t>(kMaxVectorsPerTap, g.tiles() - u.tile0);
  const std::int64_t passes_per_row = static_cast<std::int64_t>(g.passes.size()) / g.k[1];
  for (std::int64_t row = u.row0; row < u.row1; ++row) {
    const std::int64_t kd = row / g.k[1], kh = row % g.k[1];
    for (std::int64_t i = 0; i < passes_per_row; ++i) {
      const PassShape& s = g.passes[kh * passes_per_row + i];
      const Pass pass = g.lanes == Lanes::input_channels ? pass_for<Lanes::input_channels>(s.taps, vectors)
                                                         : pass_for<Lanes::output_channels>(s.taps, vectors);
      pass(g, u, kd, s, chunk);
    }
  }
}

// The chunks of output planes. Note [Plane chunks]: a unit reads one x tile and one dy block; while it
// runs, their planes should stay in L2 (1 MiB per core here). Where a unit's planes would not fit, the
// planes are cut into chunks of about half that, and the sums are carried between chunks in memory. The
// chunks are made equal, so none is a sliver that pays the fixed costs for little work.
std::vector<Chunk> plane_chunks(const Geometry& g) {
  constexpr std::int64_t kUnitBytes = 512 << 10;
  const std::int64_t x_plane = std::max(g.x.block, kLanes) * g.x.extent[1] * g.x.extent[2];
  const std::int64_t per_plane = static_cast<std::int64_t>(sizeof(float)) *
                                 (g.dy.block * g.dy.extent[1] * g.dy.extent[2] + g.opt.stride[0] * x_plane);
  const std::int64_t planes = g.n * g.dy.extent[0];
  const std::int64_t fit = std::max<std::int64_t>(1, kUnitBytes / per_plane);
  const std::int64_t count = (planes + fit - 1) / fit, size = (planes + count - 1) / count;
  std::vector<Chunk> chunks;
  const auto& o = g.opt;
  for (std::int64_t first = 0; first < planes; first += size) {
    Chunk c{std::vector<std::vector<PlanePair>>(g.k[0]), first == 0, first + size >= planes};
    for (std::int64_t p = first; p < std::min(planes, first + size); ++p) {
      const std::int64_t n = p / g.dy.extent[0], od = p % g.dy.extent[0];
      for (std::int64_t kd = 0; kd < g.k[0]; ++kd) {
        const std::int64_t id = od * o.stride[0] - o.padding[0] + kd * o.dilation[0];
        if (id >= 0 && id < g.x.extent[0])
          c.by_kd[kd].push_back({n * g.x.sample() + id * g.x.plane(), n * g.dy.sample() + od * g.dy.plane()});
      }
    }
    chunks.push_back(std::move(c));
  }
  return chunks;
}

void accumulate(const Geometry& g, const std::vector<Chunk>& chunks) {
  const std::int64_t scalar_groups = g.scalars() / g.scalars_per_unit();
  const std::int64_t tile_groups = (g.tiles() + g.tiles_per_unit() - 1) / g.tiles_per_unit();
  // A unit takes all kernel rows when there are enough channel groups to keep every thread busy; else
  // each kernel row is a unit of its own.
  const std::int64_t rows = g.k[0] * g.k[1];
  const std::int64_t rows_per_unit = scalar_groups * tile_groups >= 8 * omp_get_max_threads() ? rows : 1;
  const std::int64_t row_groups = rows / rows_per_unit, units = tile_groups * scalar_groups * row_groups;
#pragma omp parallel
  for (const Chunk& chunk : chunks) {
    // Consecutive units share their x tile.
#pragma omp for schedule(dynamic)
    for (std::int64_t index = 0; index < units; ++index) {
      const std::int64_t row_group = index % row_groups, group = index / row_groups;
      const Unit u{(group % scalar_groups) * g.scalars_per_unit(), (group / scalar_groups) * g.tiles_per_unit(),
                   row_group * rows_per_unit, (row_group + 1) * rows_per_unit};
      run_unit(g, u, chunk);
    }
  }
}

}  // namespace

bool conv3d_backward_weights_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

void check_backward_weights_arguments(const Tensor& grad, const Tensor& input, const Shape& weight_shape,
                                      const Conv3dOptions& opt) {
  check(grad.dtype() == DType::f32 && input.dtype() == DType::f32 && grad.device().is_cpu() && input.device().is_cpu(),
        "conv3d backward weights: expected f32 CPU tensors, got grad_output {} on {} and input {} on {}",
        dtype_name(grad.dtype()), grad.device().str(), dtype_name(input.dtype()), input.device().str());
  check(weight_shape.size() == 5 && grad.dim() == 5 && input.dim() == 5 && grad.shape()[1] == weight_shape[0] &&
            input.shape()[1] == weight_shape[1] && input.shape()[0] == grad.shape()[0],
        "conv3d backward weights: grad_output {} and input {} do not fit weight {}", grad.shape().str(),
        input.shape().str(), weight_shape.str());
  // An input may extend past the last full window (a transposed convolution's output_padding makes such
  // rows), so grad_output may be shorter than the windows the input holds, never longer.
  for (int i = 0; i < 3; ++i) {
    const std::int64_t span = opt.dilation[i] * (weight_shape[2 + i] - 1) + 1;
    const std::int64_t windows = (input.shape()[2 + i] + 2 * opt.padding[i] - span) / opt.stride[i] + 1;
    check(grad.shape()[2 + i] <= windows,
          "conv3d backward weights: grad_output {} has extent {} along spatial axis {}, but input {} with weight {} "
          "and {} gives at most {}",
          grad.shape().str(), grad.shape()[2 + i], i, input.shape().str(), weight_shape.str(), opt.str(), windows);
  }
}

void check_avx2_kernel_arguments(const Tensor& grad_output, const Tensor& input, const Shape& weight_shape,
                                 const Conv3dOptions& opt, const char* kernel) {
  check_backward_weights_arguments(grad_output, input, weight_shape, opt);
  check(conv3d_backward_weights_has_avx2(),
        "conv3d backward weights ({}): TLK's kernel needs AVX2 and FMA, which this CPU lacks; call "
        "conv3d_backward_weights, which picks another implementation",
        kernel);
}

Tensor conv3d_backward_weights_avx2(const Tensor& grad_in, const Tensor& input_in, const Shape& weight_shape,
                                    const Conv3dOptions& opt) {
  Tensor grad = grad_in.detach(), input = input_in.detach();
  check_avx2_kernel_arguments(grad, input, weight_shape, opt, "direct");

  // Fewer than 8 input channels (the network's input) would leave most lanes of an input-channel register
  // empty, so output channels fill the lanes instead (Note [Backward-weights kernel]); x is then read one
  // scalar at a time, which a plain tensor serves as it is (block 1).
  const Lanes lanes = input.shape()[1] < kLanes ? Lanes::output_channels : Lanes::input_channels;
  std::int64_t x_block = 1, dy_block = 0;
  Tensor x = lanes == Lanes::output_channels && input.layout() == Layout::plain && input.is_contiguous()
                 ? input
                 : in_channel_blocks(input, x_block);
  Tensor dy = in_channel_blocks(grad, dy_block);
  Tensor out = Tensor::empty(weight_shape);
  Geometry g{activation_of(x, x_block),
             activation_of(dy, dy_block),
             input.shape()[0],
             input.shape()[1],
             grad.shape()[1],
             {weight_shape[2], weight_shape[3], weight_shape[4]},
             opt,
             lanes,
             out.data<float>(),
             nullptr,
             {}};
  // Note [Small planes]: on planes a few positions wide, the fixed cost of each row (its set-up, and the
  // edge columns where a tap may fall in the padding and every tap is checked) rivals its FMAs. There x is
  // small, so a zero-bordered copy of it costs little, makes every position an interior one, and lets a
  // pass walk each plane's positions in one loop from a table of x offsets. Measured with bench/ops under
  // DNNL_MAX_CPU_ISA=AVX2, 2026-11-27: 10-20% faster on the 8- and 4-wide layers (L3, L3 down, L4); on
  // the 16-wide ones the copy of the larger x cost more than it saved.
  constexpr std::int64_t kSmallPlaneWidth = 8;
  const bool small_planes = g.dy.extent[2] <= kSmallPlaneWidth;
  std::vector<float> bordered;
  if (small_planes && (opt.padding[0] != 0 || opt.padding[1] != 0 || opt.padding[2] != 0)) {
    g.x = zero_bordered(g.x, g.n, opt.padding, bordered);
    g.opt.padding = {0, 0, 0};
  }
  g.passes = pass_shapes(g.x, g.dy, g.k, g.opt, small_planes);
  const std::vector<Chunk> chunks = plane_chunks(g);
  std::vector<float> partial;
  if (chunks.size() > 1) {
    partial.resize(static_cast<std::size_t>(g.scalars() * g.tiles() * g.taps() * kLanes));
    g.partial = partial.data();
  }
  accumulate(g, chunks);
  return out;
}

}  // namespace tlk::kernels::cpu
