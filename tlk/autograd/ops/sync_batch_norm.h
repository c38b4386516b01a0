#pragma once
#include <functional>

#include "tlk/kernels/norm_params.h"
#include "tlk/tensor/tensor.h"

namespace tlk::ops {

/// Sums a tensor over every process of a job and returns the sum (same shape, dtype and device), as
/// dist::ProcessGroup::all_reduce_sum does. Every process must call it in the same order.
using CrossProcessSum = std::function<Tensor(const Tensor&)>;

/// The sum of x over every process, differentiable: the gradient of each process's x is the sum of
/// every process's gradient of the output (Note [Synchronized batch norm]).
/// Example: `Tensor total = ops::cross_process_sum(local_sum, group_sum);`
Tensor cross_process_sum(const Tensor& x, const CrossProcessSum& sum);

/// Synchronized batch normalisation, as PyTorch's SyncBatchNorm: in training, every channel is
/// normalised by the mean and biased variance of the whole global batch (this process's x [N, C] or
/// [N, C, D, H, W] and the other processes' at the same call), and running_mean / running_var move
/// towards them (unbiased variance over the global count), so they stay equal on every process. In
/// evaluation it is ops::batch_norm with the running statistics. With one process it equals
/// ops::batch_norm.
///
/// Note [Synchronized batch norm]: the statistics are two cross-process sums (Σx, then Σ(x − mean)²,
/// the two-pass variance) built from differentiable ops, so the backward pass sums the per-channel
/// gradient terms over the processes through cross_process_sum's own backward. Each process then
/// holds the gradient of the sum of every process's loss with respect to its own x; averaging the
/// parameter gradients over the processes (data parallel) gives the gradient of the mean loss, as
/// one process with the whole batch would. Three sums forward (the value count too) and two backward.
///
/// Example: `Tensor y = ops::sync_batch_norm(x, gamma, beta, rm, rv, BatchNormOptions{}.with_training(true), sum);`
Tensor sync_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, const BatchNormOptions& options, const CrossProcessSum& sum);

}  // namespace tlk::ops
