// CUDA 3D upsampling: one thread per output element (forward) or input element (backward, a gather
// over the inverse tap lists, so no atomics and a result that depends only on the shapes).
#include <cuda_runtime.h>

#include <cstdint>

#include "tlk/kernels/cuda/upsample3d_launch.h"
#include "tlk/kernels/cuda/grid_size.h"

namespace tlk::kernels::cuda {

namespace {

constexpr unsigned kThreads = 256;

template <class T>
__global__ void upsample_forward_kernel(T* y, const T* x, UpsampleGeometry g, const std::int64_t* tap_index,
                                        const double* tap_weight) {
  const std::int64_t out_vol = g.out[0] * g.out[1] * g.out[2], in_vol = g.in[0] * g.in[1] * g.in[2];
  const std::int64_t n = g.planes * out_vol;
  const std::int64_t base_h = g.out[0], base_w = g.out[0] + g.out[1];
  for (std::int64_t e = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t p = e / out_vol, o = e % out_vol;
    const std::int64_t od = o / (g.out[1] * g.out[2]), oh = (o / g.out[2]) % g.out[1], ow = o % g.out[2];
    const T* xs = x + p * in_vol;
    double acc = 0.0;
    for (int a = 0; a < g.taps; ++a) {
      const std::int64_t id = tap_index[od * 2 + a];
      const double wd = tap_weight[od * 2 + a];
      for (int b = 0; b < g.taps; ++b) {
        const std::int64_t ih = tap_index[(base_h + oh) * 2 + b];
        const std::int64_t row = (id * g.in[1] + ih) * g.in[2];
        const double wdh = wd * tap_weight[(base_h + oh) * 2 + b];
        for (int c = 0; c < g.taps; ++c) {
          const std::int64_t iw = tap_index[(base_w + ow) * 2 + c];
          acc += wdh * tap_weight[(base_w + ow) * 2 + c] * static_cast<double>(xs[row + iw]);
        }
      }
    }
    y[e] = static_cast<T>(acc);
  }
}

template <class T>
__global__ void upsample_backward_kernel(T* dx, const T* dy, UpsampleGeometry g, const std::int64_t* inv_start,
                                         const std::int64_t* inv_out, const double* inv_weight) {
  const std::int64_t out_vol = g.out[0] * g.out[1] * g.out[2], in_vol = g.in[0] * g.in[1] * g.in[2];
  const std::int64_t n = g.planes * in_vol;
  const std::int64_t base_h = g.in[0] + 1, base_w = g.in[0] + 1 + g.in[1] + 1;
  for (std::int64_t e = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t p = e / in_vol, i = e % in_vol;
    const std::int64_t id = i / (g.in[1] * g.in[2]), ih = (i / g.in[2]) % g.in[1], iw = i % g.in[2];
    const T* dys = dy + p * out_vol;
    double acc = 0.0;
    for (std::int64_t ed = inv_start[id]; ed < inv_start[id + 1]; ++ed) {
      const std::int64_t od = inv_out[ed];
      const double wd = inv_weight[ed];
      for (std::int64_t eh = inv_start[base_h + ih]; eh < inv_start[base_h + ih + 1]; ++eh) {
        const std::int64_t row = (od * g.out[1] + inv_out[eh]) * g.out[2];
        const double wdh = wd * inv_weight[eh];
        for (std::int64_t ew = inv_start[base_w + iw]; ew < inv_start[base_w + iw + 1]; ++ew)
          acc += wdh * inv_weight[ew] * static_cast<double>(dys[row + inv_out[ew]]);
      }
    }
    dx[e] = static_cast<T>(acc);
  }
}

}  // namespace

template <class T>
void launch_upsample3d_forward(T* y, const T* x, const UpsampleGeometry& g, const std::int64_t* tap_index,
                               const double* tap_weight, cudaStream_t stream) {
  const std::int64_t n = g.planes * g.out[0] * g.out[1] * g.out[2];
  if (n == 0) return;
  upsample_forward_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(y, x, g, tap_index, tap_weight);
}

template <class T>
void launch_upsample3d_backward(T* dx, const T* dy, const UpsampleGeometry& g, const std::int64_t* inv_start,
                                const std::int64_t* inv_out, const double* inv_weight, cudaStream_t stream) {
  const std::int64_t n = g.planes * g.in[0] * g.in[1] * g.in[2];
  if (n == 0) return;
  upsample_backward_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(dx, dy, g, inv_start, inv_out, inv_weight);
}

template void launch_upsample3d_forward<float>(float*, const float*, const UpsampleGeometry&, const std::int64_t*,
                                               const double*, cudaStream_t);
template void launch_upsample3d_forward<double>(double*, const double*, const UpsampleGeometry&, const std::int64_t*,
                                                const double*, cudaStream_t);
template void launch_upsample3d_backward<float>(float*, const float*, const UpsampleGeometry&, const std::int64_t*,
                                                const std::int64_t*, const double*, cudaStream_t);
template void launch_upsample3d_backward<double>(double*, const double*, const UpsampleGeometry&, const std::int64_t*,
                                                 const std::int64_t*, const double*, cudaStream_t);

}  // namespace tlk::kernels::cuda
