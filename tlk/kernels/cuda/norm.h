#pragma once
#include "tlk/kernels/norm_params.h"
#include "tlk/kernels/ref/norm.h"
#include "tlk/tensor/tensor.h"

/// Instance and batch normalisation on CUDA tensors (f32 or f64, on one GPU; also bf16 and f16
/// inputs, whose weight, bias, running statistics, saved mean / inv_std and their gradients are f32:
/// Note [Half precision on the GPU]): the same functions,
/// arguments and results as kernels/ref/norm.h, statistics accumulated in double (Note [GPU
/// normalisation statistics] in norm_launch.cu). Shapes: input [N, C, ...] (instance norm at least
/// 3-D; batch norm also [N, C]), weight and bias [C] or undefined. Results are new contiguous tensors
/// on the input's device; batch norm in training updates running_mean / running_var in place.
/// Example: `auto f = kernels::cuda::instance_norm_forward(x, w, b, 1e-5);  // f.output, f.mean, f.inv_std`
namespace tlk::kernels::cuda {

using ref::NormForward;
using ref::NormGrads;

/// Statistics per (n, c) over the spatial axes, biased variance; mean and inv_std are [N, C].
NormForward instance_norm_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, double eps);
/// Gradients w.r.t. input, weight and bias (the latter two always computed, [C]).
NormGrads instance_norm_backward(const Tensor& grad_output, const Tensor& input, const Tensor& weight,
                                 const Tensor& mean, const Tensor& inv_std);

/// instance_norm_forward, then leaky_relu(·, negative_slope >= 0) in the same pass (Note [GPU norm +
/// leaky ReLU] in norm_launch.cu); `output` is the activated result.
NormForward instance_norm_leaky_relu_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, double eps,
                                             double negative_slope);
/// The backward of instance_norm_leaky_relu_forward: `grad_output` is the activation's output
/// gradient and `output` the fused forward's output (the derivative is read from its sign).
NormGrads instance_norm_leaky_relu_backward(const Tensor& grad_output, const Tensor& input, const Tensor& weight,
                                            const Tensor& mean, const Tensor& inv_std, const Tensor& output,
                                            double negative_slope);
/// Statistics per channel over N and the spatial axes ([C]); in training the running statistics
/// (contiguous [C] CUDA tensors of the input's dtype, or both undefined) move towards the batch's,
/// in evaluation they normalise the input.
NormForward batch_norm_forward(const Tensor& input, const Tensor& weight, const Tensor& bias,
                               const Tensor& running_mean, const Tensor& running_var, const BatchNormOptions& opt);
/// `training` must match the forward's (in evaluation the statistics are constants).
NormGrads batch_norm_backward(const Tensor& grad_output, const Tensor& input, const Tensor& weight, const Tensor& mean,
                              const Tensor& inv_std, bool training);

/// The per-channel sums of a channels-last 5-D tensor: a [C] tensor of t's dtype (Note [Channels-last
/// channel sums] in norm_launch.cu). Example: `Tensor db = channels_last_channel_sum(grad, "conv3d");`
Tensor channels_last_channel_sum(const Tensor& t, const char* op);

}  // namespace tlk::kernels::cuda
