#pragma once
#include <cstdint>

#include "tlk/nn/module.h"
#include "tlk/tensor/random.h"

/// Parameter-free layers: activations, dropout and flattening.
namespace tlk::nn {

/// max(x, 0). Example: `nn::ReLU relu; Tensor y = relu(x);`
class ReLU : public UnaryModule {
 public:
  Tensor forward(const Tensor& input) override;
};

/// max(x, 0) + negative_slope * min(x, 0). Example: `nn::LeakyReLU act(0.01); Tensor y = act(x);`
class LeakyReLU : public UnaryModule {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : negative_slope(negative_slope) {}
  Tensor forward(const Tensor& input) override;
  double negative_slope;
};

/// Dropout with probability p (ops::dropout): in training each element is zeroed with probability p
/// and the rest scaled by 1 / (1 - p); in evaluation it returns the input unchanged.
///
/// Note [Dropout owns its generator]: the masks come from a Generator the layer owns, seeded by the
/// constructor, so a network built with the same seeds draws the same masks in every run without
/// threading a generator through forward(). generator() exposes it for checkpoints (state/set_state).
///
/// Example: `nn::Dropout drop(0.5, /*seed=*/7); Tensor h = drop(features);`
class Dropout : public UnaryModule {
 public:
  /// p in [0, 1] (else tlk::Error).
  explicit Dropout(double p = 0.5, std::uint64_t seed = 0);
  Tensor forward(const Tensor& input) override;
  Generator& generator() { return gen_; }
  double p;

 private:
  Generator gen_;
};

/// Collapses dimensions start..end (inclusive; negative counts from the end) into one, as
/// torch.nn.Flatten. Example: `nn::Flatten flat; Tensor f = flat(x);  // [N, C, D, H, W] -> [N, C*D*H*W]`
class Flatten : public UnaryModule {
 public:
  explicit Flatten(int start = 1, int end = -1) : start(start), end(end) {}
  Tensor forward(const Tensor& input) override;
  int start, end;
};

}  // namespace tlk::nn
