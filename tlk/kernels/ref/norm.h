#pragma once
#include <vector>

#include "tlk/kernels/norm_params.h"
#include "tlk/tensor/tensor.h"

/// Reference instance and batch normalisation: two-pass statistics accumulated in double.
/// Shapes: input [N, C, ...] (any spatial rank; batch norm also takes [N, C]), weight and bias [C]
/// or undefined (no affine transform).
namespace tlk::kernels::ref {

/// A normalisation's output and the per-group statistics its backward reads.
struct NormForward {
  Tensor output;
  Tensor mean;     ///< instance norm [N, C]; batch norm [C]
  Tensor inv_std;  ///< 1 / sqrt(var + eps), shaped like `mean`
};

/// Gradients of a normalisation w.r.t. its input, weight and bias (weight and bias [C], computed even
/// when the op had no affine transform; the caller drops what it does not need).
struct NormGrads {
  Tensor input, weight, bias;
};

/// Instance normalisation: statistics per (n, c) over the spatial axes, biased variance
/// (as torch.nn.functional.instance_norm without running statistics).
NormForward instance_norm_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, double eps);
NormGrads instance_norm_backward(const Tensor& grad_output, const Tensor& input, const Tensor& weight,
                                 const Tensor& mean, const Tensor& inv_std);

/// Note [Running statistics]: moves running_mean and running_var [C] towards a batch's per-channel
/// mean and biased variance over `count` values, by `momentum`, with the unbiased variance (count /
/// (count − 1) times the biased one that normalised the batch), as PyTorch does. The buffers are
/// written in place with copy_, which bumps their version counter; they never join the graph. Every
/// batch norm path (reference, oneDNN, synchronized) updates through this.
void update_running_statistics(const Tensor& running_mean, const Tensor& running_var,
                               const std::vector<double>& batch_mean, const std::vector<double>& batch_biased_var,
                               double count, double momentum);

/// Batch normalisation: statistics per channel over N and the spatial axes. In training it updates
/// `running_mean` and `running_var` ([C], or undefined to skip) in place; in evaluation it
/// normalises with them (then they must be defined) and `mean`/`inv_std` are copies derived from them.
NormForward batch_norm_forward(const Tensor& input, const Tensor& weight, const Tensor& bias,
                               const Tensor& running_mean, const Tensor& running_var, const BatchNormOptions& opt);
/// `training` must match the forward: in evaluation the statistics are constants (an affine map).
NormGrads batch_norm_backward(const Tensor& grad_output, const Tensor& input, const Tensor& weight, const Tensor& mean,
                              const Tensor& inv_std, bool training);

}  // namespace tlk::kernels::ref
