#pragma once
#include "tlk/tensor/tensor.h"

namespace tlk::autograd {

/// Identity in the forward pass, −λ·grad in the backward pass (DANN's gradient reversal layer).
/// Example: `Tensor d = discriminator(grad_reverse(features, 0.3));`
Tensor grad_reverse(const Tensor& x, double lambda);

/// A gradient reversal layer whose λ is set per training step (by a warm-up schedule).
/// Example: `GradientReversal grl; grl.set_lambda(schedule(step)); Tensor r = grl(features);`
class GradientReversal {
 public:
  explicit GradientReversal(double lambda = 1.0) : lambda_(lambda) {}
  void set_lambda(double lambda) { lambda_ = lambda; }
  double lambda() const { return lambda_; }
  Tensor operator()(const Tensor& x) const { return grad_reverse(x, lambda_); }

 private:
  double lambda_;
};

}  // namespace tlk::autograd
