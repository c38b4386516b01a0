#pragma once
#include <cstdint>
#include <oneapi/dnnl/dnnl.hpp>

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

}  // namespace tlk::kernels::cpu
