#pragma once
// Raw-pointer launchers of the CUDA 3D upsampling kernels (Note [CUDA kernel files] in launch.h),
// instantiated for float and double. The tap tables are computed on the host (upsample3d.cpp).
#include <cuda_runtime_api.h>

#include <cstdint>

namespace tlk::kernels::cuda {

/// `planes` (N * C) volumes of extents in[0..3) (D, H, W) resized to out[0..3); each output position
/// reads `taps` input positions per axis (1 for nearest, 2 for trilinear).
struct UpsampleGeometry {
  std::int64_t planes = 0;
  std::int64_t in[3] = {}, out[3] = {};
  int taps = 1;
};

/// y = upsample(x), both contiguous [planes, D, H, W]. Axis a's taps for output position o are
/// tap_index / tap_weight[(base_a + o) * 2 + k], k < taps, with base_a = out[0] + ... + out[a - 1];
/// each output is the double sum over (kd, kh, kw) of (wd * wh) * ww * x, in that loop order.
template <class T>
void launch_upsample3d_forward(T* y, const T* x, const UpsampleGeometry& g, const std::int64_t* tap_index,
                               const double* tap_weight, cudaStream_t stream);
/// dx = the adjoint of the forward, gathered per input element: axis a's input position i is read by
/// the entries e in [inv_start[ibase_a + i], inv_start[ibase_a + i + 1]) (output position inv_out[e],
/// weight inv_weight[e]), with ibase_a = (in[0] + 1) + ... + (in[a - 1] + 1).
template <class T>
void launch_upsample3d_backward(T* dx, const T* dy, const UpsampleGeometry& g, const std::int64_t* inv_start,
                                const std::int64_t* inv_out, const double* inv_weight, cudaStream_t stream);

}  // namespace tlk::kernels::cuda
