#pragma once

namespace tlk {

/// How batch normalisation runs (shared by the kernels and the differentiable op).
/// Example: `BatchNormOptions{}.with_training(true).with_momentum(0.01)`.
///
/// In training the batch statistics normalise the input and the running statistics move towards
/// them: running = (1 - momentum) * running + momentum * batch (the unbiased variance, as PyTorch).
/// In evaluation the running statistics normalise the input and nothing is updated.
struct BatchNormOptions {
  bool training = false;
  double momentum = 0.1;  ///< in [0, 1]; PyTorch's cumulative average (momentum=None) is not offered
  double eps = 1e-5;      ///< added to the variance before the square root; >= 0

  BatchNormOptions with_training(bool t) const {
    auto o = *this;
    o.training = t;
    return o;
  }
  BatchNormOptions with_momentum(double m) const {
    auto o = *this;
    o.momentum = m;
    return o;
  }
  BatchNormOptions with_eps(double e) const {
    auto o = *this;
    o.eps = e;
    return o;
  }
};

}  // namespace tlk
