#pragma once
#include <oneapi/dnnl/dnnl.hpp>
#include <string>

#include "tlk/tensor/shape.h"
#include "tlk/tensor/tensor.h"

namespace tlk {

/// The oneDNN memory descriptor of a blocked tensor (e.g. nCdhw8c: channels in blocks of 8, zero-padded).
///
/// Note [Blocked layout]: a blocked tensor keeps its logical NCDHW shape in Tensor::shape(); the
/// descriptor says where each element lives. Its storage is `desc.get_size()` bytes, which includes
/// the zero padding of the last channel block; code that writes blocked memory must keep that padding
/// zero (oneDNN primitives rely on it).
class BlockedFormat {
 public:
  explicit BlockedFormat(dnnl::memory::desc desc) : desc_(std::move(desc)) {}
  const dnnl::memory::desc& desc() const { return desc_; }
  /// Bytes of storage the format needs, padding included.
  std::size_t nbytes() const { return desc_.get_size(); }
  /// "nCdhw8c"-style name when the format is a simple channel blocking, otherwise "opaque".
  std::string name() const;
  friend bool operator==(const BlockedFormat& a, const BlockedFormat& b) { return a.desc_ == b.desc_; }

  /// oneDNN's default blocked format on this CPU for a plain f32 tensor of `shape` (nCdhw8c on AVX2,
  /// nCdhw16c on AVX-512; 4-D and 3-D shapes get the matching nChw/nCw formats).
  static BlockedFormat default_for(const Shape& shape);

 private:
  dnnl::memory::desc desc_;
};

/// How many layout reorders (plain <-> blocked, or between two blocked formats) of activations and
/// gradients TLK has run since start: the figure the fast path keeps low (Note [Stay blocked]).
/// Weight reorders, which every training step needs once per convolution, are counted apart.
struct ReorderStats {
  std::uint64_t activations = 0;
  std::uint64_t weights = 0;
};
ReorderStats reorder_stats();
/// Runs a oneDNN reorder between two memory descriptors over raw pointers and counts it.
void reorder(const dnnl::memory::desc& src_desc, const void* src, const dnnl::memory::desc& dst_desc, void* dst,
             bool is_weight = false);

/// The oneDNN descriptor of an f32 CPU tensor: its blocked format, or its dims and strides.
dnnl::memory::desc memory_desc_of(const Tensor& t);
/// A new CPU f32 tensor of `shape` stored in the oneDNN format `desc` (zeroed, so padding is zero);
/// a plain tensor when `desc` is a dense row-major format.
Tensor empty_with_desc(const Shape& shape, const dnnl::memory::desc& desc);

/// The process-wide oneDNN CPU engine and stream (OpenMP runtime, so no thread pool of its own).
dnnl::engine& cpu_engine();
dnnl::stream& cpu_stream();

}  // namespace tlk
