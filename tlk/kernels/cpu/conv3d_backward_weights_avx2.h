#pragma once
#include "tlk/kernels/conv_params.h"
#include "tlk/tensor/tensor.h"

namespace tlk::kernels::cpu {

/// TLK's direct AVX2/FMA backward-weights kernel (conv3d_backward_weights picks it for output planes
/// wider than 32 positions and for shapes the other kernels do not take). It reads x and dy in nCdhw8c
/// and nCdhw16c directly, and an x with fewer than 8 channels also in the plain layout; inputs in any
/// other layout are reordered (counted). Requires AVX2 and FMA.
///
/// Note [Backward-weights kernel]: oneDNN 2.6 has no JIT 3D backward-weights on AVX2 (DESIGN §3).
/// dW[co, ci, kd, kh, kw] = Σ_{n, o} dy[n, co, o] · x[n, ci, o·s − p + k·dil] is a GEMM whose reduction
/// runs over the output positions. One pass of the kernel holds 12 accumulator registers: 3 kernel
/// columns (kw) x 4 output channels, each register 8 input channels wide. Per output position it loads
/// the 3 x vectors of the 3 columns and broadcasts 4 dy values: 7 loads feed 12 FMAs, so the FMA units,
/// not the loads, set the pace. With fewer than 8 input channels (the network's input) the roles turn:
/// registers are 8 output channels wide (4 registers, 32 channels) and x is broadcast.
/// The work is split into units (4 output channels x 8 input channels x a range of kernel rows (kd, kh))
/// that write disjoint weights, so threads need no reduction; dynamic scheduling balances them. Planes
/// are walked in chunks that keep a unit's data in L2 (Note [Plane chunks]).
Tensor conv3d_backward_weights_avx2(const Tensor& grad_output, const Tensor& input, const Shape& weight_shape,
                                    const Conv3dOptions& opt);

/// Whether this CPU can run TLK's AVX2 kernel.
bool conv3d_backward_weights_has_avx2();

/// Checks the arguments of a conv3d weight gradient: f32 CPU tensors, grad_output [N, Co, D', H', W'] and
/// input [N, Ci, D, H, W] that fit weight_shape [Co, Ci, kD, kH, kW] and `opt` (no more output positions
/// than the input has windows); a tlk::Error naming the shapes otherwise.
void check_backward_weights_arguments(const Tensor& grad_output, const Tensor& input, const Shape& weight_shape,
                                      const Conv3dOptions& opt);

/// check_backward_weights_arguments, and that this CPU has AVX2 and FMA: the checks every TLK AVX2
/// backward-weights kernel makes; `kernel` names it in the message.
void check_avx2_kernel_arguments(const Tensor& grad_output, const Tensor& input, const Shape& weight_shape,
                                 const Conv3dOptions& opt, const char* kernel);

}  // namespace tlk::kernels::cpu
