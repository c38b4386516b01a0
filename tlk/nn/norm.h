#pragma once
#include "tlk/nn/activation.h"  // LeakyReLU, which nnUNet pairs with the norm, lives there
#include "tlk/autograd/ops/sync_batch_norm.h"
#include "tlk/nn/module.h"

namespace tlk::nn {

/// Instance normalisation over D, H, W per sample and channel, with affine weight (ones) and bias
/// (zeros), as torch.nn.InstanceNorm3d(affine=True) and nnUNet's blocks.
class InstanceNorm3d : public UnaryModule {
 public:
  explicit InstanceNorm3d(std::int64_t channels, double eps = 1e-5);
  Tensor forward(const Tensor& input) override;
  Tensor weight, bias;
  double eps;
};

/// Batch normalisation per channel over N and the spatial axes, as torch.nn.BatchNorm3d (input
/// [N, C, D, H, W]) and BatchNorm1d (input [N, C]; the same class serves both): weight (ones) and
/// bias (zeros) parameters, running_mean (zeros) and running_var (ones) buffers. In training mode the
/// batch statistics normalise the input and the buffers move towards them by `momentum` (unbiased
/// variance, as PyTorch); in evaluation mode the buffers normalise and nothing changes (ops::batch_norm).
///
/// Example: `nn::BatchNorm3d bn(16); Tensor y = bn(x);  bn.eval();  Tensor z = bn(x);  // running stats`
class BatchNorm3d : public UnaryModule {
 public:
  /// momentum in [0, 1], eps >= 0 (else tlk::Error); PyTorch's order and defaults.
  explicit BatchNorm3d(std::int64_t channels, double eps = 1e-5, double momentum = 0.1);
  Tensor forward(const Tensor& input) override;
  Tensor weight, bias, running_mean, running_var;
  double eps, momentum;
  /// When set (data-parallel training with distributed.sync_batch_norm: task::DataParallel sets it),
  /// training normalises by the statistics of every process's batch (ops::sync_batch_norm).
  ops::CrossProcessSum cross_process_sum;
};

/// Batch normalisation of features [N, C]: BatchNorm3d accepts 2-D input as well.
using BatchNorm1d = BatchNorm3d;

}  // namespace tlk::nn
