#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tlk/tensor/tensor.h"

/// The CPU fast path of channel concatenation (the UNet's skip connections): oneDNN 2.6's concat
/// primitive forward, TLK's own blocked copy backward, both staying in the channel-blocked layout
/// (Note [Stay blocked] in kernels/cpu/conv3d.h).
namespace tlk::kernels::cpu {

/// True when the fast path handles this concatenation: 5-D f32 CPU tensors joined along dim 1.
bool concat_supported(const std::vector<Tensor>& tensors, int dim);

/// Joins 5-D f32 tensors [N, Ci, D, H, W] (any layouts, any mix) along channels into
/// [N, ΣCi, D, H, W], in a channel-blocked layout (Note [Concat output layout]).
/// Example: `Tensor y = cpu::concat_channels({upsampled, skip});`
Tensor concat_channels(const std::vector<Tensor>& tensors);

/// The backward of concat_channels: splits grad_output [N, ΣCi, D, H, W] into one tensor per entry of
/// `channels` (extents Ci, in order), in grad_output's channel-blocked layout when it has one, plain
/// otherwise (Note [Concat backward]).
/// Example: `auto grads = cpu::concat_channels_backward(dy, {32, 32});`
std::vector<Tensor> concat_channels_backward(const Tensor& grad_output, const std::vector<std::int64_t>& channels);

/// oneDNN's implementation name for the concat of these tensors' layouts ("simple:any", "ref:any").
std::string concat_channels_impl(const std::vector<Tensor>& tensors);

}  // namespace tlk::kernels::cpu
