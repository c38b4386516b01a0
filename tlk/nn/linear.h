#pragma once
#include "tlk/nn/module.h"
#include "tlk/tensor/random.h"

namespace tlk::nn {

/// Fully connected layer y = x · weightᵀ + bias: weight [out, in], bias [out] (optional).
///
/// Note [Linear initialisation]: as torch.nn.Linear, the weight is drawn by
/// kaiming_uniform(a = sqrt(5)), whose bound gain · sqrt(3 / fan_in) with gain = sqrt(2 / (1 + 5))
/// simplifies to 1 / sqrt(in); the bias is uniform in ±1 / sqrt(in) as well.
///
/// Example: `Generator gen(0); nn::Linear fc(500, 10, gen); Tensor logits = fc(features);  // [N, 10]`
class Linear : public UnaryModule {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, Generator& gen, bool bias = true);
  /// input [N, in] or [..., in]; output [..., out].
  Tensor forward(const Tensor& input) override;
  std::int64_t in_features() const { return weight.size(1); }
  std::int64_t out_features() const { return weight.size(0); }
  Tensor weight, bias;
};

/// A new f32 tensor of `shape` with values uniform in [-bound, bound), drawn from `gen`: PyTorch's
/// default initialisation of Linear (and Conv) weights and biases with bound = 1 / sqrt(fan_in).
/// Example: `Tensor b = nn::uniform_init({10}, 1.0 / std::sqrt(500.0), gen);`
Tensor uniform_init(const Shape& shape, double bound, Generator& gen);

}  // namespace tlk::nn
