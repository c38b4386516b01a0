#pragma once
#include <vector>

#include "tlk/tensor/tensor.h"

namespace tlk::nn {

/// Options of SGD; nnUNet trains with lr 1e-2, momentum 0.99, Nesterov, weight decay 3e-5.
struct SgdOptions {
  double lr = 1e-2;
  double momentum = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;
};

/// Stochastic gradient descent with momentum, Nesterov and weight decay, step for step as
/// torch.optim.SGD: g = grad + wd·p; buf = momentum·buf + g (buf = g on the first step);
/// g = g + momentum·buf (Nesterov) or buf; p -= lr·g.
/// Example: `nn::Sgd opt(net.parameters(), {.lr = 1e-2, .momentum = 0.99, .nesterov = true}); opt.step();`
class Sgd {
 public:
  Sgd(std::vector<Tensor> parameters, const SgdOptions& options);
  /// Updates every parameter that has a gradient (in place, recorded in no graph).
  void step();
  /// Clears the parameters' gradients.
  void zero_grad();
  SgdOptions& options() { return options_; }

 private:
  std::vector<Tensor> parameters_;
  std::vector<Tensor> momentum_buffers_;
  SgdOptions options_;
};

}  // namespace tlk::nn
