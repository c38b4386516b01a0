#include "tlk/kernels/cpu/channel_blocked_activation.h"

#include <algorithm>

#include "tlk/kernels/cpu/same_layout.h"
#include "tlk/tensor/blocked_format.h"

namespace tlk::kernels::cpu {

ChannelBlockedActivation activation_of(const Tensor& t, std::int64_t block) {
  const Shape& s = t.shape();
  return {raw_f32(t), block, (s[1] + block - 1) / block, {s[2], s[3], s[4]}};
}

ChannelBlockedActivation zero_bordered(const ChannelBlockedActivation& x, std::int64_t n, const Int3& pad,
                                       std::vector<float>& storage) {
  ChannelBlockedActivation bordered{
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

namespace {

BlockedFormat channel_blocked_format(const Shape& shape, std::int64_t block) {
  using tag = dnnl::memory::format_tag;
  return BlockedFormat(dnnl::memory::desc(dnnl::memory::dims(shape.begin(), shape.end()), dnnl::memory::data_type::f32,
                                          block == 16 ? tag::nCdhw16c : tag::nCdhw8c));
}

}  // namespace

Tensor in_channel_blocks(const Tensor& t, std::int64_t& block) {
  block = channel_block(t);
  if (block != 0) return t;
  Tensor out = t.to(Layout::blocked);
  block = channel_block(out);
  if (block == 0) {  // the CPU's default blocked format is another one
    out = t.to(channel_blocked_format(t.shape(), 8));
    block = 8;
  }
  return out;
}

}  // namespace tlk::kernels::cpu
