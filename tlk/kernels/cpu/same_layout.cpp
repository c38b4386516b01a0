#include "tlk/kernels/cpu/same_layout.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <vector>

#include "tlk/tensor/blocked_format.h"
#include "tlk/tensor/error.h"

namespace tlk::kernels::cpu {

bool is_dense_layout(const Tensor& t) {
  const Layout l = t.layout();
  return l == Layout::blocked || l == Layout::channels_last || t.is_contiguous();
}

Tensor dense(const Tensor& t) { return is_dense_layout(t) ? t : t.contiguous(); }

Tensor empty_in_layout_of(const Tensor& like) {
  check(like.dtype() == DType::f32 && like.device().is_cpu() && is_dense_layout(like),
        "empty_in_layout_of: expected a dense f32 CPU tensor, got {} {} on {} in layout {}", like.shape().str(),
        dtype_name(like.dtype()), like.device().str(), layout_name(like.layout()));
  switch (like.layout()) {
    case Layout::blocked: {
      // As empty_with_desc, without zeroing: the caller writes the padding lanes too.
      const dnnl::memory::desc& desc = like.blocked_format().desc();
      auto impl = std::make_shared<TensorImpl>();
      impl->storage = std::make_shared<Storage>(desc.get_size(), Device::cpu());
      impl->shape = like.shape();
      impl->strides = contiguous_strides(like.shape());
      impl->dtype = DType::f32;
      impl->blocked = like.impl().blocked;
      return Tensor(impl);
    }
    case Layout::channels_last: {
      Tensor out = Tensor::empty(like.shape());
      out.impl().strides = channels_last_strides(like.shape());
      return out;
    }
    case Layout::plain:
      break;
  }
  return Tensor::empty(like.shape());
}

Tensor in_layout_of(const Tensor& t, const Tensor& like) {
  switch (like.layout()) {
    case Layout::blocked:
      return t.to(like.blocked_format());
    case Layout::channels_last:
      return t.to(Layout::channels_last);
    case Layout::plain:
      break;
  }
  return t.to(Layout::plain);
}

float* raw_f32(const Tensor& t) {
  return static_cast<float*>(t.layout() == Layout::blocked ? t.impl().storage->data() : t.raw_data());
}

std::int64_t raw_size(const Tensor& t) {
  return t.layout() == Layout::blocked ? static_cast<std::int64_t>(t.blocked_format().nbytes() / sizeof(float))
                                       : t.numel();
}

Tensor f32_cpu(const Tensor& t, const char* op, const char* what) {
  check(t.defined(), "{}: {} is undefined", op, what);
  check(t.dtype() == DType::f32 && t.device().is_cpu(), "{}: {} must be an f32 CPU tensor, got {} on {}", op, what,
        dtype_name(t.dtype()), t.device().str());
  return t.detach();
}

void* data_of(const Tensor& t) { return t.layout() == Layout::blocked ? t.impl().storage->data() : t.raw_data(); }

Tensor in_format(const Tensor& t, const dnnl::memory::desc& desc) {
  const dnnl::memory::desc current = memory_desc_of(t);
  if (current == desc) return t;
  Tensor out = empty_with_desc(t.shape(), desc);
  reorder(current, data_of(t), desc, data_of(out));
  return out;
}

std::int64_t channel_block(const Tensor& t) {
  if (t.layout() != Layout::blocked || t.dim() != 5) return 0;
  const dnnl::memory::dims dims(t.shape().begin(), t.shape().end());
  using tag = dnnl::memory::format_tag;
  for (auto [block, format] : {std::pair{8, tag::nCdhw8c}, std::pair{16, tag::nCdhw16c}})
    if (t.blocked_format().desc() == dnnl::memory::desc(dims, dnnl::memory::data_type::f32, format)) return block;
  return 0;
}

}  // namespace tlk::kernels::cpu

namespace tlk::kernels::cpu {

Tensor in_primitive_layout(const Tensor& t) {
  Tensor d = dense(t);
  if (d.layout() == Layout::blocked && channel_block(d) == 0)
    return in_format(d, BlockedFormat::default_for(d.shape()).desc());
  return d;
}

dnnl::memory::format_tag format_tag_of(const Tensor& t) {
  using tag = dnnl::memory::format_tag;
  if (t.layout() == Layout::channels_last) return tag::ndhwc;
  if (t.layout() == Layout::blocked) return channel_block(t) == 8 ? tag::nCdhw8c : tag::nCdhw16c;
  return tag::ncdhw;
}

Tensor empty_in_layout(const Shape& shape, const Tensor& like, const dnnl::memory::desc& desc) {
  if (like.layout() == Layout::blocked) return empty_with_desc(shape, desc);
  Tensor out = Tensor::empty(shape);
  if (like.layout() == Layout::channels_last) out.impl().strides = channels_last_strides(shape);
  return out;
}

std::string layout_key(const Tensor& t) {
  return t.layout() == Layout::blocked ? t.blocked_format().name() : std::string(layout_name(t.layout()));
}

std::string memory_desc_key(const dnnl::memory::desc& d) {
  const auto& m = d.data;
  const auto& b = m.format_desc.blocking;
  return fmt::format("{}/{}/{}/{}/{}", std::vector<std::int64_t>(m.dims, m.dims + m.ndims),
                     std::vector<std::int64_t>(m.padded_dims, m.padded_dims + m.ndims),
                     std::vector<std::int64_t>(b.strides, b.strides + m.ndims),
                     std::vector<std::int64_t>(b.inner_blks, b.inner_blks + b.inner_nblks),
                     std::vector<std::int64_t>(b.inner_idxs, b.inner_idxs + b.inner_nblks));
}

}  // namespace tlk::kernels::cpu
