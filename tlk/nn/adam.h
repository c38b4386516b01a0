#pragma once
#include "tlk/nn/optimizer.h"

namespace tlk::nn {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  /// AdamW: weight decay applied to the weights directly (p -= lr·wd·p) instead of added to the gradient.
  bool decoupled_weight_decay = false;
};

/// Adam and AdamW, step for step as torch.optim.Adam / AdamW (no amsgrad):
/// m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²; p -= lr · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + eps).
class Adam : public Optimizer {
 public:
  Adam(std::vector<ParamGroup> groups, const AdamOptions& options);
  Adam(std::vector<Tensor> params, const AdamOptions& options)
      : Adam({ParamGroup{std::move(params), 1.0, -1, "all"}}, options) {}

 protected:
  void update(Tensor& p, const Tensor& g, std::vector<Tensor>& slots, double lr, double weight_decay) override;
  std::vector<std::string> slot_names() const override { return {"exp_avg", "exp_avg_sq", "step"}; }

 private:
  AdamOptions options_;
};

}  // namespace tlk::nn
