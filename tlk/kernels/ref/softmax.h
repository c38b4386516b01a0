#pragma once
#include "tlk/tensor/tensor.h"

/// Reference softmax and log-softmax along one axis of a tensor of rank >= 2, accumulated in double.
namespace tlk::kernels::ref {

/// exp(x - max) / Σ exp(x - max) along `dim` (negative counts from the end).
Tensor softmax_forward(const Tensor& input, int dim);
/// x - max - log Σ exp(x - max) along `dim`.
Tensor log_softmax_forward(const Tensor& input, int dim);
/// Input gradient from the forward's output y: y · (g - Σ g y).
Tensor softmax_backward(const Tensor& grad_output, const Tensor& output, int dim);
/// Input gradient from the forward's output y: g - exp(y) · Σ g.
Tensor log_softmax_backward(const Tensor& grad_output, const Tensor& output, int dim);

}  // namespace tlk::kernels::ref
