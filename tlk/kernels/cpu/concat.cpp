#include "tlk/kernels/cpu/concat.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>

#include "tlk/kernels/cpu/primitive_cache.h"
#include "tlk/kernels/cpu/same_layout.h"
#include "tlk/tensor/blocked_format.h"

namespace tlk::kernels::cpu {

namespace {

using dnnl::memory;
using tag = memory::format_tag;

memory::desc channel_blocked_desc(const Shape& shape, std::int64_t block) {
  return memory::desc(memory::dims(shape.begin(), shape.end()), memory::data_type::f32,
                      block == 16 ? tag::nCdhw16c : tag::nCdhw8c);
}

// The channel block of `t` when it is stored as nCdhw8c or nCdhw16c, else 0.

// Everything that tells two memory descriptors apart, for the cache key.
std::string desc_key(const memory::desc& desc) {
  const dnnl_memory_desc_t& d = desc.data;
  std::vector<std::int64_t> dims(d.dims, d.dims + d.ndims), padded(d.padded_dims, d.padded_dims + d.ndims);
  std::string key = fmt::format("{} pad{} off{} kind{}", dims, padded, d.offset0, static_cast<int>(d.format_kind));
  if (d.format_kind == dnnl_blocked) {
    const auto& b = d.format_desc.blocking;
    key += fmt::format(" strides{} blocks{} idxs{}", std::vector<std::int64_t>(b.strides, b.strides + d.ndims),
                       std::vector<std::int64_t>(b.inner_blks, b.inner_blks + b.inner_nblks),
                       std::vector<std::int64_t>(b.inner_idxs, b.inner_idxs + b.inner_nblks));
  }
  return key;
}

struct ConcatPrimitive {
  dnnl::concat::primitive_desc pd;
  dnnl::concat prim;
};

// Note [Concat output layout]: oneDNN's `any` for a concat's destination takes the first non-plain
// input's format, but falls back to a plain layout when the channel offsets are not multiples of the
// block (13 + 20 channels in nCdhw16c) or when every input is plain. TLK names the destination
// format itself, the same choice made always blocked: the channel blocking of the first input that
// has one (nCdhw16c/8c), else this CPU's default blocked format. With block-aligned offsets oneDNN
// copies each input into its sub-memory of the output ("simple:any"); otherwise its reference
// concat gathers through a plain temporary, internal to oneDNN and not counted as a TLK reorder.
std::shared_ptr<ConcatPrimitive> concat_primitive(const std::vector<memory::desc>& srcs, const memory::desc& dst) {
  std::string key = "concat dst " + desc_key(dst);
  for (const auto& s : srcs) key += " | " + desc_key(s);
  return PrimitiveCache::instance().get<ConcatPrimitive>(key, [&] {
    try {
      auto entry = std::make_shared<ConcatPrimitive>();
      entry->pd = dnnl::concat::primitive_desc(dst, 1, srcs, cpu_engine());
      entry->prim = dnnl::concat(entry->pd);
      return entry;
    } catch (const dnnl::error& e) {
      fail("concat: oneDNN could not build a concat primitive into {} from {} inputs: {}", desc_key(dst), srcs.size(),
           e.what());
    }
  });
}

struct Plan {
  std::vector<Tensor> parts;  // the inputs with at least one channel, detached
  Shape out_shape;
  memory::desc dst;
};

Plan plan_concat(const std::vector<Tensor>& tensors) {
  check(!tensors.empty(), "concat: no tensors given");
  Plan plan;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    check(t.defined(), "concat: tensor {} is undefined", i);
    check(t.dim() == 5 && t.dtype() == DType::f32 && t.device().is_cpu(),
          "concat: expected 5-D f32 CPU tensors [N, C, D, H, W], tensor {} is {} {} on {}", i, t.shape().str(),
          dtype_name(t.dtype()), t.device().str());
    const Shape& first = tensors.front().shape();
    check(t.shape()[0] == first[0] && t.shape()[2] == first[2] && t.shape()[3] == first[3] && t.shape()[4] == first[4],
          "concat: tensor {} has shape {}, which differs from tensor 0's {} outside dimension 1", i, t.shape().str(),
          first.str());
    if (t.shape()[1] > 0) plan.parts.push_back(t.detach());
  }
  plan.out_shape = tensors.front().shape();
  plan.out_shape[1] = 0;
  for (const Tensor& t : tensors) plan.out_shape[1] += t.shape()[1];
  std::int64_t block = 0;
  for (const Tensor& t : plan.parts)
    if ((block = channel_block(t)) != 0) break;
  plan.dst =
      block != 0 ? channel_blocked_desc(plan.out_shape, block) : BlockedFormat::default_for(plan.out_shape).desc();
  return plan;
}

std::vector<memory::desc> source_descs(const std::vector<Tensor>& parts) {
  std::vector<memory::desc> srcs;
  for (const Tensor& t : parts) srcs.push_back(memory_desc_of(t));
  return srcs;
}

// dst (nCdhwBc, `channels` channels) <- channels [c0, c0 + channels) of src (nCdhwBc, src_blocks
// blocks); lanes past `channels` in dst's last block are written zero (Note [Blocked layout]).
void copy_channel_range(const float* src, std::int64_t src_blocks, std::int64_t c0, float* dst, std::int64_t channels,
                        std::int64_t batch, std::int64_t volume, std::int64_t block) {
  const std::int64_t dst_blocks = (channels + block - 1) / block, span = volume * block;
#pragma omp parallel for collapse(2) schedule(static)
  for (std::int64_t n = 0; n < batch; ++n)
    for (std::int64_t b = 0; b < dst_blocks; ++b) {
      const std::int64_t first = c0 + b * block;  // source channel of lane 0
      const float* s = src + (n * src_blocks + first / block) * span;
      float* d = dst + (n * dst_blocks + b) * span;
      const std::int64_t valid = std::min(block, channels - b * block);
      if (first % block == 0 && valid == block) {
        std::memcpy(d, s, static_cast<std::size_t>(span) * sizeof(float));
        continue;
      }
      // Lane l reads source channel first + l: from this source block, then from the next one.
      std::int64_t offset[16];
      for (std::int64_t l = 0; l < block; ++l) {
        const std::int64_t c = first % block + l;
        offset[l] = l < valid ? (c / block) * span + c % block : -1;
      }
      for (std::int64_t v = 0; v < volume; ++v)
        for (std::int64_t l = 0; l < block; ++l) d[v * block + l] = offset[l] >= 0 ? s[offset[l] + v * block] : 0.0f;
    }
}

}  // namespace

bool concat_supported(const std::vector<Tensor>& tensors, int dim) {
  if (tensors.empty()) return false;
  const int nd = tensors.front().defined() ? tensors.front().dim() : 0;
  if (nd != 5 || (dim != 1 && dim != 1 - nd)) return false;
  for (const Tensor& t : tensors)
    if (!t.defined() || t.dim() != 5 || t.dtype() != DType::f32 || !t.device().is_cpu()) return false;
  return true;
}

Tensor concat_channels(const std::vector<Tensor>& tensors) {
  Plan plan = plan_concat(tensors);
  Tensor out = empty_with_desc(plan.out_shape, plan.dst);
  if (plan.parts.empty() || plan.out_shape.numel() == 0) return out;
  auto p = concat_primitive(source_descs(plan.parts), plan.dst);
  std::unordered_map<int, memory> args{{DNNL_ARG_DST, memory(p->pd.dst_desc(), cpu_engine(), data_of(out))}};
  for (std::size_t i = 0; i < plan.parts.size(); ++i)
    args.emplace(DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i),
                 memory(p->pd.src_desc(static_cast<int>(i)), cpu_engine(), data_of(plan.parts[i])));
  p->prim.execute(cpu_stream(), args);
  cpu_stream().wait();
  return out;
}

std::string concat_channels_impl(const std::vector<Tensor>& tensors) {
  Plan plan = plan_concat(tensors);
  check(!plan.parts.empty(), "concat: every input has zero channels; no primitive runs");
  return concat_primitive(source_descs(plan.parts), plan.dst)->pd.impl_info_str();
}

// Note [Concat backward]: the gradient of input i is channels [c_i, c_i + C_i) of grad_output. In a
// channel-blocked layout (nCdhwBc) a slice that starts on a block boundary is a run of whole blocks
// per sample (a memcpy); one that does not (13 + 20 channels, or 8 + 8 in 16-channel blocks) takes
// each lane from one of two neighbouring source blocks. Either way TLK copies straight into a new
// tensor in the same blocked format, with its padding lanes zero: no reorder, aligned or not (a
// oneDNN sub-memory view would cover the aligned case only, and the unaligned one would go through
// plain, costing two reorders). A gradient in a plain or channels-last layout is sliced as a strided
// view and copied to plain; any other blocked format is reordered to plain first (counted).
std::vector<Tensor> concat_channels_backward(const Tensor& grad_in, const std::vector<std::int64_t>& channels) {
  check(grad_in.defined(), "concat backward: grad_output is undefined");
  Tensor grad = grad_in.detach();
  check(grad.dim() == 5 && grad.dtype() == DType::f32 && grad.device().is_cpu(),
        "concat backward: expected a 5-D f32 CPU grad_output, got {} {} on {}", grad.shape().str(),
        dtype_name(grad.dtype()), grad.device().str());
  std::int64_t total = 0;
  for (std::int64_t c : channels) {
    check(c >= 0, "concat backward: negative channel count {} in {}", c, fmt::format("{}", channels));
    total += c;
  }
  check(total == grad.shape()[1], "concat backward: channel counts {} add up to {}, but grad_output {} has {}",
        fmt::format("{}", channels), total, grad.shape().str(), grad.shape()[1]);

  std::vector<Tensor> out;
  const std::int64_t block = channel_block(grad);
  const std::int64_t volume = grad.shape()[2] * grad.shape()[3] * grad.shape()[4];
  Tensor plain;
  if (block == 0) plain = grad.layout() == Layout::blocked ? grad.to(Layout::plain) : grad;
  std::int64_t c0 = 0;
  for (std::int64_t c : channels) {
    Shape shape = grad.shape();
    shape[1] = c;
    if (block == 0) {
      out.push_back(make_view(plain, shape, plain.strides(), plain.offset() + c0 * plain.strides()[1]).contiguous());
    } else if (c == 0) {
      out.push_back(Tensor::empty(shape));
    } else {
      Tensor piece = empty_with_desc(shape, channel_blocked_desc(shape, block));
      copy_channel_range(static_cast<const float*>(grad.impl().storage->data()), (grad.shape()[1] + block - 1) / block,
                         c0, static_cast<float*>(piece.impl().storage->data()), c, grad.shape()[0], volume, block);
      out.push_back(piece);
    }
    c0 += c;
  }
  return out;
}

}  // namespace tlk::kernels::cpu
