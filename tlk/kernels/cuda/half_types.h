#pragma once
// The 16-bit float element types of the CUDA kernels, as the host-side .cpp files see them: plain
// structs with the bits of a bf16 or an IEEE half (the .cu files read them as __nv_bfloat16 and
// __half through numeric.cuh). Note [CUDA kernel files] keeps CUDA's own headers out of the C++
// side, so these stand in for them in the launcher signatures.
//
// Note [Half precision on the GPU]: bf16 and f16 tensors exist on CUDA devices only. The kernels that
// take them (elementwise ops, sums, instance/batch norm, convolutions) read each element, compute in
// float (double for the sums, as for f32) and round the result to the element type once, the way
// PyTorch's CUDA kernels do; norm statistics and affine parameters stay f32.
#include <cstdint>

namespace tlk::kernels::cuda {

/// A bf16 element: the upper 16 bits of an f32 (8-bit exponent, 7-bit mantissa).
struct Bf16Bits {
  std::uint16_t bits;
};
/// An IEEE 754 half-precision element (5-bit exponent, 10-bit mantissa).
struct F16Bits {
  std::uint16_t bits;
};
}  // namespace tlk::kernels::cuda
