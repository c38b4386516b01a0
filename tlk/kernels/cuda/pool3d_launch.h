#pragma once
// Raw-pointer launchers of the 3D pooling kernels (Note [CUDA kernel files] in launch.h): templates over
// float and double on plain [N, C, D, H, W] data, launched on the given stream. The caller checks the
// launch (check_launch) and has validated every size.
#include <cuda_runtime.h>

#include <cstdint>

namespace tlk::kernels::cuda {

/// One spatial axis of a pooling: input and output extents and, for regular windows, the window's
/// kernel, stride and padding (Note [Pooling windows] in kernels/ref/pool3d.cpp).
struct PoolAxis {
  std::int64_t in = 1, out = 1, kernel = 1, stride = 1, padding = 0;
};

/// The geometry of one pooling over `planes` = N * C volumes, axes in D, H, W order. `adaptive` selects
/// PyTorch's adaptive bins (Note [Adaptive pooling bins]) instead of regular windows.
struct PoolGeometry {
  std::int64_t planes = 0;
  PoolAxis axis[3];
  bool adaptive = false;
  bool count_include_pad = true;
};

/// y = the window maxima, indices = their flat (d * H + h) * W + w position in the (n, c) volume.
template <class T>
void max_pool3d_forward_launch(const T* x, T* y, std::int64_t* indices, const PoolGeometry& g, cudaStream_t stream);
/// dx[p, indices[p, o]] += dy[p, o] (atomic adds); dx must be zeroed first. Indices outside
/// [0, in_volume) are skipped (Note [Max-pool backward indices] in pool3d.cpp).
template <class T>
void max_pool3d_backward_launch(const T* dy, const std::int64_t* indices, T* dx, std::int64_t planes,
                                std::int64_t in_volume, std::int64_t out_volume, cudaStream_t stream);
/// y = the window means (regular windows or adaptive bins), summed in double.
template <class T>
void avg_pool3d_forward_launch(const T* x, T* y, const PoolGeometry& g, cudaStream_t stream);
/// dx = the average pooling's input gradient, gathered per input element (no atomics, deterministic).
template <class T>
void avg_pool3d_backward_launch(const T* dy, T* dx, const PoolGeometry& g, cudaStream_t stream);

}  // namespace tlk::kernels::cuda
