#pragma once
#include "tlk/kernels/norm_params.h"
#include "tlk/kernels/ref/norm.h"
#include "tlk/tensor/tensor.h"

/// The CPU fast path of batch normalisation: oneDNN 2.6 batch_normalization_forward/backward primitives
/// over f32 tensors [N, C] or [N, C, D, H, W] (and the 3-D/4-D kin) in the layout they come in, plain,
/// channels-last or blocked, with the output and the input gradient in that same layout (Note [Stay
/// blocked] in conv3d.h). Primitives are built once per shape and layout (Note [Primitive cache]).
namespace tlk::kernels::cpu {

/// True when the fast path takes these arguments: an f32 CPU input of rank 2 to 5 with elements, a
/// weight and bias undefined or f32 CPU [C], running statistics both undefined or both f32 CPU [C],
/// and options the reference accepts (training needs more than one value per channel, evaluation the
/// running statistics). Anything else belongs to the reference kernels, which give the error messages.
bool batch_norm_supported(const Tensor& input, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                          const Tensor& running_var, const BatchNormOptions& opt);

/// As ref::batch_norm_forward: in training the batch statistics (biased variance) normalise the input
/// and the running statistics ([C], or undefined) move towards them (Note [Running statistics] in
/// kernels/ref/norm.cpp); in evaluation the running statistics normalise it. Output in the input's
/// layout; mean and inv_std plain [C].
/// Example: `auto f = cpu::batch_norm_forward(x, gamma, beta, rmean, rvar, BatchNormOptions{}.with_training(true));`
ref::NormForward batch_norm_forward(const Tensor& input, const Tensor& weight, const Tensor& bias,
                                    const Tensor& running_mean, const Tensor& running_var, const BatchNormOptions& opt);

/// Gradients of batch_norm_forward w.r.t. input (in the input's layout), weight and bias ([C], always
/// computed). `opt` must be the forward's (training and eps).
ref::NormGrads batch_norm_backward(const Tensor& grad_output, const Tensor& input, const Tensor& weight,
                                   const Tensor& mean, const Tensor& inv_std, const BatchNormOptions& opt);

}  // namespace tlk::kernels::cpu
