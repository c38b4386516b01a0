// TLK's kernel for the weight gradient of a 1x1x1 convolution with few output channels
// (Note [Pointwise weight gradient]).
#include "tlk/kernels/cpu/conv3d_backward_weights_pointwise.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "tlk/kernels/cpu/avx2_sums.h"
#include "tlk/kernels/cpu/channel_blocked_activation.h"
#include "tlk/kernels/cpu/conv3d_backward_weights_avx2.h"

namespace tlk::kernels::cpu {

namespace {

constexpr std::int64_t kLanes = 8;     // input channels of a tile: one AVX2 register
constexpr int kMaxOutputs = 3;         // output channels: 3 x 4 tiles of sums + 3 broadcasts + 1 load = 16
constexpr int kMaxTiles = 4;           // input-channel tiles summed in one walk over the positions
constexpr std::int64_t kChunk = 8192;  // positions per unit of work

struct Pointwise {
  ChannelBlockedActivation x, dy;
  std::int64_t positions;  // per sample
};

template <int CO, int TILES>
using Sums = Avx2Sums<CO, TILES>;

template <int TILES>
struct TilePointers {
  const float* p[TILES];
};

// `count` positions from x (one pointer per tile) and dy, `step` floats apart. Sums travel by value
// through this noinline function: GCC keeps them in registers only so (Note [Accumulators by value] in
// conv3d_backward_weights_avx2.cpp; local arrays here were stored to the stack after every FMA).
template <int CO, int TILES>
__attribute__((target("avx2,fma"), noinline)) Sums<CO, TILES> walk_positions(Sums<CO, TILES> s, TilePointers<TILES> x,
                                                                             std::int64_t x_step, const float* dy,
                                                                             std::int64_t dy_step, std::int64_t count) {
  for (std::int64_t p = 0; p < count; ++p, dy += dy_step) {
    __m256 b[CO];
    for (int co = 0; co < CO; ++co) b[co] = _mm256_broadcast_ss(dy + co);
    for (int t = 0; t < TILES; ++t) {
      const __m256 xv = _mm256_loadu_ps(x.p[t]);
      x.p[t] += x_step;
      for (int co = 0; co < CO; ++co) s.acc[co][t] = _mm256_fmadd_ps(b[co], xv, s.acc[co][t]);
    }
  }
  return s;
}

// sums[co][(tile0 + t)·8 + lane] += Σ_{p in [p0, p1)} dy[n, co, p] · x[n, (tile0 + t)·8 + lane, p] for the CO
// output channels and TILES tiles.
template <int CO, int TILES>
__attribute__((target("avx2,fma"))) void accumulate_positions(const Pointwise& g, std::int64_t n, std::int64_t p0,
                                                              std::int64_t p1, std::int64_t tile0, float* sums,
                                                              std::int64_t sums_stride) {
  Sums<CO, TILES> s;
  for (int co = 0; co < CO; ++co)
    for (int t = 0; t < TILES; ++t) s.acc[co][t] = _mm256_setzero_ps();
  TilePointers<TILES> x;
  for (int t = 0; t < TILES; ++t) x.p[t] = g.x.channel((tile0 + t) * kLanes) + n * g.x.sample() + p0 * g.x.block;
  const float* dy = g.dy.channel(0) + n * g.dy.sample() + p0 * g.dy.block;
  s = walk_positions<CO, TILES>(s, x, g.x.block, dy, g.dy.block, p1 - p0);
  for (int co = 0; co < CO; ++co)
    for (int t = 0; t < TILES; ++t) {
      float* out = sums + co * sums_stride + (tile0 + t) * kLanes;
      _mm256_storeu_ps(out, _mm256_add_ps(_mm256_loadu_ps(out), s.acc[co][t]));
    }
}

using Accumulate = void (*)(const Pointwise&, std::int64_t, std::int64_t, std::int64_t, std::int64_t, float*,
                            std::int64_t);

Accumulate accumulate_for(std::int64_t outputs, std::int64_t tiles) {
  static constexpr Accumulate table[kMaxOutputs][kMaxTiles] = {
      {accumulate_positions<1, 1>, accumulate_positions<1, 2>, accumulate_positions<1, 3>, accumulate_positions<1, 4>},
      {accumulate_positions<2, 1>, accumulate_positions<2, 2>, accumulate_positions<2, 3>, accumulate_positions<2, 4>},
      {accumulate_positions<3, 1>, accumulate_positions<3, 2>, accumulate_positions<3, 3>, accumulate_positions<3, 4>}};
  return table[outputs - 1][tiles - 1];
}

}  // namespace

bool conv3d_backward_weights_pointwise_fits(const Shape& grad, const Shape& input, const Shape& weight,
                                            const Conv3dOptions& opt) {
  if (grad.size() != 5 || input.size() != 5 || weight.size() != 5) return false;
  return weight[2] == 1 && weight[3] == 1 && weight[4] == 1 && opt.stride == Int3{1, 1, 1} &&
         opt.padding == Int3{0, 0, 0} && grad[2] == input[2] && grad[3] == input[3] && grad[4] == input[4] &&
         grad[1] <= kMaxOutputs && input[1] >= kLanes;
}

Tensor conv3d_backward_weights_pointwise(const Tensor& grad_in, const Tensor& input_in, const Shape& weight_shape,
                                         const Conv3dOptions& opt) {
  Tensor grad = grad_in.detach(), input = input_in.detach();
  check_avx2_kernel_arguments(grad, input, weight_shape, opt, "pointwise");
  check(conv3d_backward_weights_pointwise_fits(grad.shape(), input.shape(), weight_shape, opt),
        "conv3d backward weights (pointwise): grad_output {}, input {}, weight {} and {} are not a 1x1x1 "
        "convolution with stride 1, no padding, at most {} output and at least 8 input channels; call "
        "conv3d_backward_weights, which picks another implementation",
        grad.shape().str(), input.shape().str(), weight_shape.str(), opt.str(), kMaxOutputs);
  std::int64_t x_block = 0, dy_block = 0;
  Tensor x = in_channel_blocks(input, x_block), dy = in_channel_blocks(grad, dy_block);
  const Pointwise g{activation_of(x, x_block), activation_of(dy, dy_block),
                    input.shape()[2] * input.shape()[3] * input.shape()[4]};
  const std::int64_t samples = input.shape()[0], ci = input.shape()[1], co = grad.shape()[1];
  const std::int64_t tiles = (ci + kLanes - 1) / kLanes, stride = tiles * kLanes;
  const std::int64_t chunks = (g.positions + kChunk - 1) / kChunk, units = samples * chunks;
  const int threads = omp_get_max_threads();
  std::vector<float> partial(static_cast<std::size_t>(threads * co * stride), 0.0f);
  const Accumulate whole_group = accumulate_for(co, kMaxTiles);
  const Accumulate last_group = accumulate_for(co, (tiles - 1) % kMaxTiles + 1);
#pragma omp parallel num_threads(threads)
  {
    float* sums = partial.data() + omp_get_thread_num() * co * stride;
    // A static schedule: which thread adds which positions does not depend on timing.
#pragma omp for schedule(static)
    for (std::int64_t unit = 0; unit < units; ++unit) {
      const std::int64_t n = unit / chunks, p0 = unit % chunks * kChunk, p1 = std::min(g.positions, p0 + kChunk);
      for (std::int64_t tile0 = 0; tile0 < tiles; tile0 += kMaxTiles)
        (tile0 + kMaxTiles <= tiles ? whole_group : last_group)(g, n, p0, p1, tile0, sums, stride);
    }
  }
  Tensor out = Tensor::zeros(weight_shape);
  float* w = out.data<float>();
  for (int t = 0; t < threads; ++t)
    for (std::int64_t o = 0; o < co; ++o)
      for (std::int64_t i = 0; i < ci; ++i)
        w[o * ci + i] += partial[static_cast<std::size_t>((t * co + o) * stride + i)];
  return out;
}

}  // namespace tlk::kernels::cpu
