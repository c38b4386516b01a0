#pragma once
#include <cstdint>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>

#include "tlk/tensor/tensor.h"

/// Helpers for the fast kernels that compute in whatever layout their input comes in and return
/// their output in that same layout (Note [Stay blocked] in conv3d.h): plain row-major, channels-last,
/// or a oneDNN blocked format.
namespace tlk::kernels::cpu {

/// A dense f32 CPU layout a loop can walk over raw memory: row-major, channels-last (both with the
/// tensor's numel elements) or blocked (its format's full storage, channel padding included).
bool is_dense_layout(const Tensor& t);
/// `t` (f32, CPU) in a dense layout: itself when it is one, else a row-major copy (strided views).
Tensor dense(const Tensor& t);
/// A new, uninitialised f32 CPU tensor in the layout of `like` (which must be dense): the caller writes
/// every element of its storage, the channel padding of a blocked format included.
/// Example: `Tensor y = empty_in_layout_of(x); float* p = raw_f32(y);`
Tensor empty_in_layout_of(const Tensor& like);
/// `t` in the layout of `like` (dense): `t` itself when it already is, else a converted copy. A
/// conversion from or to a blocked format is a reorder and counted by reorder_stats().
Tensor in_layout_of(const Tensor& t, const Tensor& like);
/// The first float of a dense tensor's memory (the storage start for a blocked tensor).
float* raw_f32(const Tensor& t);
/// How many floats raw_f32(t) spans: numel, or the blocked storage size (padding included).
std::int64_t raw_size(const Tensor& t);

/// `t` detached, after checking it is a defined f32 CPU tensor; `op` and `what` name it in the message.
Tensor f32_cpu(const Tensor& t, const char* op, const char* what);
/// The pointer a oneDNN memory object takes for `t`: the storage start of a blocked tensor, else the
/// first element.
void* data_of(const Tensor& t);
/// `t` in the oneDNN format `desc`: the tensor itself when it already is, else a counted reorder.
Tensor in_format(const Tensor& t, const dnnl::memory::desc& desc);
/// The channel block of a 5-D tensor in nCdhw8c (8) or nCdhw16c (16); 0 for any other layout.
std::int64_t channel_block(const Tensor& t);

/// `t` (f32 CPU) in a layout oneDNN primitives take as is: a dense plain, channels-last or simple
/// channel-blocked (nCdhw8c/nCdhw16c) tensor; an opaque blocked format is reordered (counted) to this
/// CPU's default. Example: `Tensor x = in_primitive_layout(f32_cpu(input, "max_pool3d", "input"));`
Tensor in_primitive_layout(const Tensor& t);
/// The oneDNN tag of a 5-D tensor's layout after in_primitive_layout: ndhwc, nCdhw8c, nCdhw16c or ncdhw.
dnnl::memory::format_tag format_tag_of(const Tensor& t);
/// A new, uninitialised f32 tensor of `shape` in the layout of `like`, described by `desc` (built from
/// format_tag_of(like), e.g. a primitive's dst_desc()).
Tensor empty_in_layout(const Shape& shape, const Tensor& like, const dnnl::memory::desc& desc);
/// A short name of `t`'s layout for a primitive cache key: the blocked format's name, else the layout's.
std::string layout_key(const Tensor& t);
/// Everything that defines a oneDNN memory layout (dims, padded dims, strides, inner blocks), for a
/// primitive cache key: two layouts of one shape give different keys.
std::string memory_desc_key(const dnnl::memory::desc& d);

}  // namespace tlk::kernels::cpu
