#include "tlk/tensor/blocked_format.h"

#include <fmt/format.h>

#include <atomic>

#include "tlk/tensor/error.h"

namespace tlk {

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& cpu_stream() {
  static dnnl::stream stream(cpu_engine());
  return stream;
}

namespace {
std::atomic<std::uint64_t> activation_reorders{0};
std::atomic<std::uint64_t> weight_reorders{0};
}  // namespace

ReorderStats reorder_stats() { return {activation_reorders.load(), weight_reorders.load()}; }

void reorder(const dnnl::memory::desc& src_desc, const void* src, const dnnl::memory::desc& dst_desc, void* dst,
             bool is_weight) {
  (is_weight ? weight_reorders : activation_reorders).fetch_add(1, std::memory_order_relaxed);
  dnnl::memory src_mem(src_desc, cpu_engine(), const_cast<void*>(src));
  dnnl::memory dst_mem(dst_desc, cpu_engine(), dst);
  dnnl::reorder(src_mem, dst_mem).execute(cpu_stream(), src_mem, dst_mem);
  cpu_stream().wait();
}

std::string BlockedFormat::name() const {
  const dnnl_memory_desc_t& d = desc_.data;
  if (d.format_kind != dnnl_blocked) return "opaque";
  const auto& blk = d.format_desc.blocking;
  static const char* spatial[] = {"", "w", "hw", "dhw"};
  int nspatial = d.ndims - 2;
  if (nspatial < 0 || nspatial > 3) return "opaque";
  if (blk.inner_nblks == 0) return "plain-strided";
  if (blk.inner_nblks == 1 && blk.inner_idxs[0] == 1)
    return fmt::format("nC{}{}c", spatial[nspatial], blk.inner_blks[0]);
  return "opaque";
}

BlockedFormat BlockedFormat::default_for(const Shape& shape) {
  check(shape.size() >= 3 && shape.size() <= 5, "blocked layout: needs a 3-D to 5-D shape (N, C, spatial...), got {}",
        shape.str());
  // Note [Default block size]: oneDNN 2.6 has no query for its preferred channel block, so the block
  // follows the vector width: 16 floats with AVX-512, 8 otherwise (what its convolutions pick for
  // `any` on those ISAs).
  const bool avx512 = dnnl::get_effective_cpu_isa() >= dnnl::cpu_isa::avx512_core;
  using tag = dnnl::memory::format_tag;
  tag t;
  switch (shape.size()) {
    case 3:
      t = avx512 ? tag::nCw16c : tag::nCw8c;
      break;
    case 4:
      t = avx512 ? tag::nChw16c : tag::nChw8c;
      break;
    default:
      t = avx512 ? tag::nCdhw16c : tag::nCdhw8c;
      break;
  }
  dnnl::memory::dims dims(shape.begin(), shape.end());
  return BlockedFormat(dnnl::memory::desc(dims, dnnl::memory::data_type::f32, t));
}

}  // namespace tlk
