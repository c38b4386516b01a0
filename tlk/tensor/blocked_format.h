#pragma once
#include <oneapi/dnnl/dnnl.hpp>
#include <string>

#include "tlk/tensor/shape.h"

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

/// The process-wide oneDNN CPU engine and stream (OpenMP runtime, so no thread pool of its own).
dnnl::engine& cpu_engine();
dnnl::stream& cpu_stream();

}  // namespace tlk
