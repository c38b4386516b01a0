#pragma once
#include <cstdint>

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

}  // namespace tlk::kernels::cpu
