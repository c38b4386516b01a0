#pragma once
#include <cstdint>

#include "tlk/kernels/conv_params.h"
#include "tlk/tensor/tensor.h"

/// Raw access to 5-D activations in the channel-blocked layouts TLK's own conv3d backward-weights kernels
/// read (conv3d_backward_weights_avx2.h, conv3d_backward_weights_gemm.h, conv3d_backward_weights_pointwise.h).
namespace tlk::kernels::cpu {

/// A 5-D f32 activation, plain (block 1) or channel-blocked (block 8 or 16): element (n, c, d, h, w) is at
/// data + ((n * blocks + c / block) * D * H * W + (d * H + h) * W + w) * block + c % block.
struct ChannelBlockedActivation {
  const float* data;
  std::int64_t block, blocks;
  Int3 extent;
  std::int64_t row() const { return extent[2] * block; }                // floats between rows
  std::int64_t plane() const { return extent[1] * row(); }              // floats between planes
  std::int64_t sample() const { return blocks * extent[0] * plane(); }  // floats between samples
  /// Element (0, c, 0, 0, 0); positions along a row are `block` floats apart.
  const float* channel(std::int64_t c) const { return data + (c / block) * extent[0] * plane() + c % block; }
};

/// The raw view of `t` (dense, in nCdhw<block>c, or plain for block 1).
ChannelBlockedActivation activation_of(const Tensor& t, std::int64_t block);

/// `t` in nCdhw8c or nCdhw16c: as it is when already so, else reordered (counted) to the CPU's default
/// channel-blocked format; `block` receives the block.
Tensor in_channel_blocks(const Tensor& t, std::int64_t& block);

}  // namespace tlk::kernels::cpu
