#include "tlk/kernels/cpu/channel_blocked_activation.h"

#include "tlk/kernels/cpu/same_layout.h"
#include "tlk/tensor/blocked_format.h"

namespace tlk::kernels::cpu {

ChannelBlockedActivation activation_of(const Tensor& t, std::int64_t block) {
  const Shape& s = t.shape();
  return {raw_f32(t), block, (s[1] + block - 1) / block, {s[2], s[3], s[4]}};
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
