#include "tlk/kernels/cpu/conv3d_backward_weights.h"

#include <immintrin.h>

#include <vector>

#include "tlk/kernels/cpu/conv3d.h"
#include "tlk/kernels/cpu/same_layout.h"
#include "tlk/tensor/blocked_format.h"

namespace tlk::kernels::cpu {

namespace {

// Tiles are 8 x 8 channels (one AVX2 register of input channels by 8 output channels); the layouts
// may block channels by 8 (nCdhw8c, AVX2) or 16 (nCdhw16c, AVX-512): a 16-block holds two tiles' worth.
constexpr std::int64_t kTile = 8;

struct Geometry {
  std::int64_t n, block, ci_blocks, co_blocks, ci, co;
  Int3 in, out, k;
  Conv3dOptions opt;
  std::int64_t taps() const { return k[0] * k[1] * k[2]; }
  std::int64_t ci_tiles() const { return (ci + kTile - 1) / kTile; }
  std::int64_t co_tiles() const { return (co + kTile - 1) / kTile; }
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

// One 8x8 tile, one tap, one output plane: acc[j] (input-channel lanes) += dy[co lane j] * x.
__attribute__((target("avx2,fma"))) void tile_tap_plane(const float* x_plane, const float* dy_plane, const Geometry& g,
                                                        std::int64_t kh, std::int64_t kw, float* tile) {
  std::int64_t oh_lo, oh_hi, ow_lo, ow_hi;
  const auto& o = g.opt;
  valid_range(g.in[1], g.out[1], o.stride[1], o.padding[1], kh * o.dilation[1], oh_lo, oh_hi);
  valid_range(g.in[2], g.out[2], o.stride[2], o.padding[2], kw * o.dilation[2], ow_lo, ow_hi);
  if (oh_lo >= oh_hi || ow_lo >= ow_hi) return;
  __m256 acc[kTile];
  for (int j = 0; j < kTile; ++j) acc[j] = _mm256_loadu_ps(tile + j * kTile);
  const std::int64_t B = g.block, x_step = o.stride[2] * B;
  for (std::int64_t oh = oh_lo; oh < oh_hi; ++oh) {
    const std::int64_t ih = oh * o.stride[1] - o.padding[1] + kh * o.dilation[1];
    const std::int64_t iw = ow_lo * o.stride[2] - o.padding[2] + kw * o.dilation[2];
    const float* xr = x_plane + (ih * g.in[2] + iw) * B;
    const float* dr = dy_plane + (oh * g.out[2] + ow_lo) * B;
    for (std::int64_t ow = ow_lo; ow < ow_hi; ++ow, xr += x_step, dr += B) {
      const __m256 xv = _mm256_loadu_ps(xr);
      for (int j = 0; j < kTile; ++j) acc[j] = _mm256_fmadd_ps(_mm256_broadcast_ss(dr + j), xv, acc[j]);
    }
  }
  for (int j = 0; j < kTile; ++j) _mm256_storeu_ps(tile + j * kTile, acc[j]);
}

void backward_weights_blocked(const float* x, const float* dy, const Geometry& g, std::vector<float>& tiles) {
  const std::int64_t B = g.block;
  const std::int64_t in_plane = g.in[1] * g.in[2] * B, out_plane = g.out[1] * g.out[2] * B;
  const std::int64_t pairs = g.co_tiles() * g.ci_tiles(), taps = g.taps();
  const auto& o = g.opt;
#pragma omp parallel
  for (std::int64_t n = 0; n < g.n; ++n)
    for (std::int64_t od = 0; od < g.out[0]; ++od) {
#pragma omp for schedule(dynamic)
      for (std::int64_t pair = 0; pair < pairs; ++pair) {
        // Tile (cot, cit) covers channels cot*8.. and cit*8..: block t*8/B, lanes starting at t*8 % B.
        const std::int64_t cot = pair / g.ci_tiles(), cit = pair % g.ci_tiles();
        const float* dy_plane =
            dy + ((n * g.co_blocks + cot * kTile / B) * g.out[0] + od) * out_plane + (cot * kTile) % B;
        const float* x_volume = x + (n * g.ci_blocks + cit * kTile / B) * g.in[0] * in_plane + (cit * kTile) % B;
        float* pair_tiles = tiles.data() + pair * taps * kTile * kTile;
        for (std::int64_t kd = 0; kd < g.k[0]; ++kd) {
          const std::int64_t id = od * o.stride[0] - o.padding[0] + kd * o.dilation[0];
          if (id < 0 || id >= g.in[0]) continue;
          for (std::int64_t kh = 0; kh < g.k[1]; ++kh)
            for (std::int64_t kw = 0; kw < g.k[2]; ++kw) {
              const std::int64_t tap = (kd * g.k[1] + kh) * g.k[2] + kw;
              tile_tap_plane(x_volume + id * in_plane, dy_plane, g, kh, kw, pair_tiles + tap * kTile * kTile);
            }
        }
      }
    }
}

BlockedFormat channel_blocked_format(const Shape& shape, std::int64_t block) {
  using tag = dnnl::memory::format_tag;
  return BlockedFormat(dnnl::memory::desc(dnnl::memory::dims(shape.begin(), shape.end()), dnnl::memory::data_type::f32,
                                          block == 16 ? tag::nCdhw16c : tag::nCdhw8c));
}

// `t` in nCdhw8c or nCdhw16c: as it is when already so, else reordered (counted) to the CPU's default.
Tensor in_channel_blocks(const Tensor& t, std::int64_t& block) {
  block = channel_block(t);
  if (block != 0) return t;
  Tensor out = t.to(Layout::blocked);
  block = channel_block(out);
  check(block != 0, "conv3d backward weights: the default blocked format {} is not nCdhw8c/16c",
        out.blocked_format().name());
  return out;
}

void check_arguments(const Tensor& grad, const Tensor& input, const Shape& weight_shape) {
  check(grad.dtype() == DType::f32 && input.dtype() == DType::f32 && grad.device().is_cpu() && input.device().is_cpu(),
        "conv3d backward weights: expected f32 CPU tensors, got grad_output {} on {} and input {} on {}",
        dtype_name(grad.dtype()), grad.device().str(), dtype_name(input.dtype()), input.device().str());
  check(weight_shape.size() == 5 && grad.dim() == 5 && input.dim() == 5 && grad.shape()[1] == weight_shape[0] &&
            input.shape()[1] == weight_shape[1] && input.shape()[0] == grad.shape()[0],
        "conv3d backward weights: grad_output {} and input {} do not fit weight {}", grad.shape().str(),
        input.shape().str(), weight_shape.str());
}

}  // namespace

bool conv3d_backward_weights_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

Tensor conv3d_backward_weights(const Tensor& grad_output, const Tensor& input, const Shape& weight_shape,
                               const Conv3dOptions& opt) {
  check_arguments(grad_output, input, weight_shape);
  const bool onednn_jit = conv3d_backward_weights_onednn_impl(input.shape(), weight_shape, grad_output.shape(), opt,
                                                              OneDnnWeightsLayout::chosen)
                              .rfind("jit", 0) == 0;
  if (onednn_jit)
    return conv3d_backward_weights_onednn(grad_output, input, weight_shape, opt, OneDnnWeightsLayout::chosen);
  if (conv3d_backward_weights_has_avx2() && own_backward_weights_preferred(input.shape(), grad_output.shape()))
    return conv3d_backward_weights_avx2(grad_output, input, weight_shape, opt);
  return conv3d_backward_weights_onednn(grad_output, input, weight_shape, opt, OneDnnWeightsLayout::plain);
}

// Note [Backward-weights choice]: measured 2026-11-26 on the 2-core development machine with oneDNN
// held to AVX2 (DNNL_MAX_CPU_ISA=AVX2 build/bench/ops --iters 3 --threads 2; batch 2, 64^3, base 32),
// TLK's kernel against oneDNN's GEMM path, times with the reorders each needs:
//   stem 1->32 at 64^3      0.28x   (one input channel fills 1/8 of a block)
//   L0 32->32 at 64^3       1.53x
//   L0 down 32->64 to 32^3  0.97x
//   L1 64->64 at 32^3       1.08x
//   L1 down 64->128 to 16^3 0.79x, and 0.59-0.86x on every deeper layer.
// The kernel keeps all taps of a plane pair in registers and wins where planes are large; on small
// planes GEMM's blocking does better. Hence Ci >= 8 and at least 32^3 output voxels per sample.
bool own_backward_weights_preferred(const Shape& input, const Shape& grad_output) {
  if (input.size() != 5 || grad_output.size() != 5) return false;
  const std::int64_t voxels = grad_output[2] * grad_output[3] * grad_output[4];
  return input[1] >= 8 && voxels >= 32 * 32 * 32;
}

Tensor conv3d_backward_weights_avx2(const Tensor& grad_in, const Tensor& input_in, const Shape& weight_shape,
                                    const Conv3dOptions& opt) {
  Tensor grad = grad_in.detach(), input = input_in.detach();
  check_arguments(grad, input, weight_shape);
  check(conv3d_backward_weights_has_avx2(),
        "conv3d backward weights: TLK's kernel needs AVX2 and FMA, which this CPU "
        "lacks; call conv3d_backward_weights, which picks another implementation");

  std::int64_t x_block = 8, dy_block = 8;
  Tensor x_blocked = in_channel_blocks(input, x_block), dy_blocked = in_channel_blocks(grad, dy_block);
  if (dy_block != x_block) dy_blocked = grad.to(channel_blocked_format(grad.shape(), x_block));
  Geometry g{input.shape()[0],
             x_block,
             (input.shape()[1] + x_block - 1) / x_block,
             (grad.shape()[1] + x_block - 1) / x_block,
             input.shape()[1],
             grad.shape()[1],
             {input.shape()[2], input.shape()[3], input.shape()[4]},
             {grad.shape()[2], grad.shape()[3], grad.shape()[4]},
             {weight_shape[2], weight_shape[3], weight_shape[4]},
             opt};
  std::vector<float> tiles(static_cast<std::size_t>(g.co_tiles() * g.ci_tiles() * g.taps() * kTile * kTile), 0.0f);
  backward_weights_blocked(static_cast<const float*>(x_blocked.impl().storage->data()),
                           static_cast<const float*>(dy_blocked.impl().storage->data()), g, tiles);

  // tiles[pair][tap][co lane][ci lane] -> plain [Co, Ci, taps].
  Tensor out = Tensor::empty(weight_shape);
  float* w = out.data<float>();
  const std::int64_t taps = g.taps();
#pragma omp parallel for
  for (std::int64_t co = 0; co < g.co; ++co)
    for (std::int64_t ci = 0; ci < g.ci; ++ci) {
      const std::int64_t pair = (co / kTile) * g.ci_tiles() + ci / kTile;
      const float* tile = tiles.data() + pair * taps * kTile * kTile + (co % kTile) * kTile + ci % kTile;
      for (std::int64_t tap = 0; tap < taps; ++tap) w[(co * g.ci + ci) * taps + tap] = tile[tap * kTile * kTile];
    }
  return out;
}

}  // namespace tlk::kernels::cpu
