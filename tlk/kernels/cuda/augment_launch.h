#pragma once
// Raw-pointer launchers of the augmentation kernels (augment_launch.cu), f32 only; the caller is
// data/device_augment.cpp (Note [Augmentation on the GPU]). Every kernel is a grid-stride loop over
// voxels calling one body of kernels/augment_voxel.h (Note [Kernel bodies on the host]). Volumes are
// contiguous [D, H, W] (one channel) unless a launcher says otherwise. Each launcher returns the
// launch status (cudaGetLastError).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "tlk/kernels/augment_voxel.h"

namespace tlk::kernels::cuda::launch {

/// The most taps a GPU blur takes (kernel radius 63: sigma up to 21 voxels).
inline constexpr int kMaxBlurTaps = 127;

/// Rotation and scaling: every output voxel of b (all channels, and the label) from resample_voxel.
cudaError_t augment_resample(const augment::ResampleBuffers& b, const augment::ResampleGeometry& g,
                             cudaStream_t stream);
/// dst = src with the axes in `flip` (bit a: axis a) mirrored; `channels` volumes of extent e.
cudaError_t augment_mirror(float* dst, const float* src, std::int64_t channels, const std::int64_t* e, unsigned flip,
                           cudaStream_t stream);
/// The same for one u8 label volume.
cudaError_t augment_mirror_labels(std::uint8_t* dst, const std::uint8_t* src, const std::int64_t* e, unsigned flip,
                                  cudaStream_t stream);
/// x[i] += noise_value(seed, i, sigma) for i < n.
cudaError_t augment_add_noise(float* x, std::int64_t n, std::uint64_t seed, double sigma, cudaStream_t stream);
/// dst = src blurred along `axis` with `tap_count` (odd, <= kMaxBlurTaps) taps; dst != src.
cudaError_t augment_blur_axis(float* dst, const float* src, const std::int64_t* e, int axis, const float* taps,
                              int tap_count, cudaStream_t stream);
/// x[i] = a * x[i] + b for i < n.
cudaError_t augment_affine(float* x, std::int64_t n, float a, float b, cudaStream_t stream);
/// x[i] = contrast_voxel(x[i], mean, factor, lo, hi, clip) for i < n.
cudaError_t augment_contrast(float* x, std::int64_t n, float mean, float factor, float lo, float hi, bool clip,
                             cudaStream_t stream);
/// x[i] = gamma_voxel(x[i], lo, inv_range, gamma, range) for i < n.
cudaError_t augment_gamma(float* x, std::int64_t n, float lo, float inv_range, float gamma, float range,
                          cudaStream_t stream);
/// low [small] = the nearest-exact picks of x [e]; then x = the trilinear upsampling of low.
cudaError_t augment_low_resolution_down(float* low, const float* x, const std::int64_t* e, const std::int64_t* small,
                                        cudaStream_t stream);
cudaError_t augment_low_resolution_up(float* x, const float* low, const std::int64_t* e, const std::int64_t* small,
                                      cudaStream_t stream);
/// Per z-slice of x [slices, plane]: the sum (double), minimum and maximum (one block per slice, a
/// fixed reduction order, Note [Deterministic GPU sums]).
cudaError_t augment_slice_stats(const float* x, std::int64_t slices, std::int64_t plane, double* sums, float* mins,
                                float* maxs, cudaStream_t stream);
/// Per z-slice: the sum of (x - mean)^2 in double.
cudaError_t augment_slice_squares(const float* x, std::int64_t slices, std::int64_t plane, double mean, double* sums,
                                  cudaStream_t stream);

}  // namespace tlk::kernels::cuda::launch
