#pragma once
#include "tlk/nn/optimizer.h"

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
/// Example: `nn::Sgd opt(nn::single_group(net), {.lr = 1e-2, .momentum = 0.99, .nesterov = true});`
class Sgd : public Optimizer {
 public:
  Sgd(std::vector<ParamGroup> groups, const SgdOptions& options);
  /// All of `params` in one group.
  Sgd(std::vector<Tensor> params, const SgdOptions& options)
      : Sgd({ParamGroup{std::move(params), 1.0, -1, "all"}}, options) {}

 protected:
  void update(Tensor& p, const Tensor& g, std::vector<Tensor>& slots, double lr, double weight_decay) override;
  std::vector<std::string> slot_names() const override { return {"momentum"}; }

 private:
  SgdOptions options_;
};

}  // namespace tlk::nn
