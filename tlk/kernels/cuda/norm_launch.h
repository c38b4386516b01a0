#pragma once
// Raw-pointer launchers of the instance / batch normalisation kernels (norm_launch.cu); the Tensor
// API is norm.h. Every launcher queues its kernels on `stream` and checks the launch with
// cudaGetLastError, returning the error (cudaSuccess when the launch went through).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "tlk/kernels/cuda/half_types.h"

namespace tlk::kernels::cuda::launch {

/// The elements that share one mean and variance, as the reference's Note [Normalisation groups]:
/// group g holds `segments` runs of `length` contiguous elements starting at g * length + s *
/// seg_stride and uses channel g % channels' weight and bias. Instance norm of [N, C, S]: count =
/// N * C, segments = 1, length = S. Batch norm: count = C, segments = N, seg_stride = C * S.
/// Row r of the [count * segments, length] element grid belongs to group r % count.
///
/// Channels-last inputs (`channels_last`, Note [Channels-last normalisation] in norm_launch.cu): the
/// input is [B, length, channels] row-major and group g = b * channels + c holds the `length`
/// elements (b * length + k) * channels + c; segments = 1. Instance norm of NDHWC [N, C, S]: count =
/// N * C, length = S. Batch norm: count = C, length = N * S.
struct NormGroups {
  std::int64_t count = 0, channels = 0, segments = 0, length = 0, seg_stride = 0;
  bool channels_last = false;
  std::int64_t size() const { return segments * length; }
};

/// How many partial sums per group the reductions below write: the scratch `partial` arrays hold
/// 2 * count * norm_parts(groups) doubles.
std::int64_t norm_parts(const NormGroups& groups);

/// out[c] = Σ over rows of x[r * channels + c] (a [rows, channels] row-major input, the channel sum of
/// an NDHWC tensor), accumulated in double in a fixed order; `partial` holds channels *
/// channel_sum_parts(rows, channels) doubles.
std::int64_t channel_sum_parts(std::int64_t rows, std::int64_t channels);
template <class T>
cudaError_t channels_last_channel_sum(const T* x, std::int64_t rows, std::int64_t channels, T* out, double* partial,
                                      cudaStream_t stream);

/// T is the element type of the input, output and gradients (float, double, Bf16Bits, F16Bits); P
/// that of the affine parameters, statistics and their gradients (T for float and double, float for
/// the 16-bit types: Note [Half precision on the GPU]).
///
/// Per group: mean and 1/sqrt(var + eps) from the input (biased variance), written as P to `mean`
/// and `inv_std` ([count]) and as the double map y = (x − mean) · scale + bias to `scale_shift`
/// ([3 * count]: scale, mean and bias of group g at 3g, 3g + 1, 3g + 2) with `weight`, `bias`
/// ([channels] or null).
/// When `running_mean` is not null (batch norm in training) it and `running_var` move towards the
/// batch statistics with `momentum` (unbiased variance). `partial` is scratch (see norm_parts).
template <class T, class P>
cudaError_t norm_stats(const T* x, const NormGroups& groups, double eps, const P* weight, const P* bias, P* mean,
                       P* inv_std, double* scale_shift, P* running_mean, P* running_var, double momentum,
                       double* partial, cudaStream_t stream);

/// Batch norm in evaluation: the statistics are the running ones (count = channels groups):
/// mean = running_mean, inv_std = 1/sqrt(running_var + eps), and the affine map as norm_stats.
template <class P>
cudaError_t norm_stats_from_running(const P* running_mean, const P* running_var, std::int64_t channels, double eps,
                                    const P* weight, const P* bias, P* mean, P* inv_std, double* scale_shift,
                                    cudaStream_t stream);

/// y = (x − mean) · scale + bias (in double) with group r % count's map for row r; when `leaky_slope`
/// is given, y = leaky_relu(that, *leaky_slope) (Note [GPU norm + leaky ReLU] in norm_launch.cu).
template <class T>
cudaError_t norm_apply(const T* x, const NormGroups& groups, const double* scale_shift, T* y, cudaStream_t stream,
                       const double* leaky_slope = nullptr);

/// The backward (the reference's Note [Normalisation backward]): dx, and dweight / dbias ([channels],
/// each the in-order sum over the channel's groups). `mean` and `inv_std` are the saved statistics
/// ([count]); `weight` may be null (γ = 1). `stats_from_input` is false for batch norm in evaluation
/// (dx = γσ⁻¹g). `partial` is scratch as for norm_stats; `coef` scratch of 5 * count doubles. With
/// `activation_output` (the fused forward's output), `grad` is the gradient of the leaky ReLU's
/// output and its derivative is applied first.
template <class T, class P>
cudaError_t norm_backward(const T* grad, const T* x, const NormGroups& groups, const P* weight, const P* mean,
                          const P* inv_std, bool stats_from_input, T* grad_input, P* grad_weight, P* grad_bias,
                          double* partial, double* coef, cudaStream_t stream, const T* activation_output = nullptr,
                          double leaky_slope = 0.0);

}  // namespace tlk::kernels::cuda::launch
