#pragma once
#include "tlk/kernels/norm_params.h"
#include "tlk/tensor/tensor.h"

/// Differentiable normalisations (nnUNet uses instance norm; classifier heads use batch norm).
namespace tlk::ops {

/// Instance normalisation, as PyTorch's InstanceNorm3d: each (n, c) slice of x [N, C, D, H, W]
/// (any spatial rank >= 1) is normalised by its own mean and biased variance, then scaled by
/// weight [C] and shifted by bias [C] when they are defined. Gradients flow to x, weight and bias.
/// Example: `Tensor y = ops::instance_norm(x, gamma, beta);`
Tensor instance_norm(const Tensor& x, const Tensor& weight = {}, const Tensor& bias = {}, double eps = 1e-5);

/// leaky_relu(instance_norm(x, weight, bias, eps), negative_slope), the nnUNet stage's norm and
/// activation, in one pass over memory for f32 CPU inputs with negative_slope >= 0 (elsewhere the two
/// ops in turn). Example: `Tensor y = ops::instance_norm_leaky_relu(x, gamma, beta, 0.01);`
Tensor instance_norm_leaky_relu(const Tensor& x, const Tensor& weight = {}, const Tensor& bias = {},
                                double negative_slope = 0.01, double eps = 1e-5);

/// Batch normalisation, as PyTorch's BatchNorm1d/3d: x [N, C] or [N, C, D, H, W] is normalised per
/// channel over N and the spatial axes. In training it uses the batch statistics and updates
/// running_mean and running_var [C] in place (pass undefined tensors to keep no running statistics);
/// in evaluation it uses the running statistics. The buffers never receive gradients and must not
/// require grad. Gradients flow to x, weight and bias in both modes.
/// Example: `Tensor y = ops::batch_norm(x, gamma, beta, rmean, rvar, BatchNormOptions{}.with_training(true));`
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, const BatchNormOptions& options = {});

}  // namespace tlk::ops
