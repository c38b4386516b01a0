#pragma once
// What every CUDA kernel family in kernels/cuda shares, on the host side: error checks, the stream,
// launch geometry and argument checks. Included by the .cpp files of kernels/cuda (compiled by the
// C++ compiler); the .cu files hold only raw-pointer kernels and their launchers.
//
// Note [CUDA kernel files]: each family is `<family>.h/.cpp` (Tensor in, Tensor out, checks and
// allocation, in namespace tlk::kernels::cuda, with the same names and signatures as kernels/ref) plus
// `<family>_launch.h/.cu` (templates over float and double taking raw pointers, sizes and a stream).
// nvcc never parses TLK's tensor headers, and the C++ side never sees CUDA syntax.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <string_view>

#include "tlk/kernels/cuda/half_types.h"
#include "tlk/tensor/error.h"
#include "tlk/tensor/tensor.h"

namespace tlk::kernels::cuda {

/// Throws tlk::Error "`op`: `what` failed: <CUDA's message>" unless `status` is cudaSuccess.
void check_status(cudaError_t status, const char* op, const char* what);
/// Call right after a kernel launch: throws naming `op` when the launch itself failed (bad geometry,
/// no kernel image for this GPU). Faults inside the kernel surface at the next synchronizing call.
void check_launch(const char* op);
/// The stream TLK's work on the current device runs on. Note [One stream]: everything (kernels,
/// cuDNN, copies) is ordered on this one stream, so a freed block can be reused at once by the caching
/// allocator: any later use of it is queued after every earlier use.
cudaStream_t stream();
/// Checks that `t` is defined, on a CUDA device, of dtype f32 or f64, and makes its device current.
/// Message: "`op`: `what` must be an f32 or f64 CUDA tensor, got <dtype> on <device>".
void require_cuda_float(const Tensor& t, const char* op, const char* what);
/// As require_cuda_float, but bf16 and f16 pass too (for the kernels that take them, Note [Half
/// precision on the GPU] in half_types.h).
void require_cuda_floating(const Tensor& t, const char* op, const char* what);
/// Checks that `t` is on the same CUDA device and has the same dtype as `like`.
void require_same(const Tensor& t, const Tensor& like, const char* op, const char* what);
/// A contiguous (plain NCDHW row-major) tensor with `t`'s data, on `t`'s device: `t` itself when it
/// already is one, else a copy made on the GPU. Never records autograd (works on a detached handle).
Tensor contiguous(const Tensor& t);
/// An uninitialised contiguous tensor of `shape` on `like`'s device with `like`'s dtype.
Tensor empty_like_shape(const Tensor& like, const Shape& shape);

// ---- Layouts -----------------------------------------------------------------------------------------------
// Note [Channels-last on the GPU]: GPU tensors are plain (NCDHW row-major) or channels-last (NDHWC
// in memory, `Tensor::to(Layout::channels_last)`). The convolutions, normalisations, elementwise ops,
// channel sums, concatenation and casts keep a channels-last input channels-last, so a network fed
// channels-last activations runs in NDHWC end to end and cuDNN's tensor-core engines take their
// operands as they are, without transposing them in a workspace. Every other kernel reads its inputs
// through contiguous(): correct in either layout, at the cost of one copy.

/// True when `t` is dense in the plain (row-major) arrangement.
bool is_plain(const Tensor& t);
/// True when `t` is a dense channels-last (NDHWC) 5-D tensor (has_channels_last_strides): also one
/// whose memory is plain too (one channel, like a CT image batch) when to(Layout::channels_last) or a
/// channels-last kernel made it, so a network's first convolution keeps it channels-last.
bool is_channels_last(const Tensor& t);
/// `t` (on a GPU) densely arranged in `layout` (plain or channels_last): `t` itself when it already
/// is, else a copy made on the GPU from its real strides. Never records autograd.
/// Example: `Tensor x = dense_as(input, Layout::plain, "max_pool3d");`
Tensor dense_as(const Tensor& t, Layout layout, const char* op);
/// `t` if it is plain or channels-last dense, else a plain copy.
Tensor dense(const Tensor& t, const char* op);
/// The layout a GPU op's output takes when `t` is its input: channels_last for a channels-last `t`,
/// else plain.
Layout layout_of(const Tensor& t);
/// An uninitialised tensor of `shape` with `like`'s dtype and device, in `layout` (channels_last only
/// for 5-D shapes; others are plain).
Tensor empty_in_layout(const Tensor& like, const Shape& shape, Layout layout);

/// Calls `fn(TypeTag<T>{})` with T float, double, Bf16Bits or F16Bits for the floating dtype `t`.
/// Example: `visit_cuda_floating(x.dtype(), "relu", [&](auto tag) { using T = typename decltype(tag)::type; });`
template <class Fn>
decltype(auto) visit_cuda_floating(DType t, std::string_view op, Fn&& fn) {
  switch (t) {
    case DType::f32:
      return fn(TypeTag<float>{});
    case DType::f64:
      return fn(TypeTag<double>{});
    case DType::bf16:
      return fn(TypeTag<Bf16Bits>{});
    case DType::f16:
      return fn(TypeTag<F16Bits>{});
    default:
      fail("{}: dtype {} is not a floating dtype", op, dtype_name(t));
  }
}

}  // namespace tlk::kernels::cuda
