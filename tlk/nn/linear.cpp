#include "tlk/nn/linear.h"

#include <cmath>

#include "tlk/autograd/ops/linear.h"
#include "tlk/tensor/error.h"

namespace tlk::nn {

Tensor uniform_init(const Shape& shape, double bound, Generator& gen) {
  check(bound >= 0.0 && std::isfinite(bound), "uniform_init: bound must be finite and >= 0, got {}", bound);
  return rand(shape, gen, -bound, bound);
}

Linear::Linear(std::int64_t in_features, std::int64_t out_features, Generator& gen, bool bias) {
  check(in_features >= 1 && out_features >= 1, "Linear: feature counts must be >= 1, got {} -> {}", in_features,
        out_features);
  // See Note [Linear initialisation].
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
  weight = register_parameter("weight", uniform_init({out_features, in_features}, bound, gen));
  if (bias) this->bias = register_parameter("bias", uniform_init({out_features}, bound, gen));
}

Tensor Linear::forward(const Tensor& input) {
  check(input.defined() && input.dim() >= 1 && input.size(-1) == in_features(),
        "Linear: expected an input [..., {}], got {}", in_features(),
        input.defined() ? input.shape().str() : std::string("an undefined tensor"));
  return ops::linear(input, weight, bias);
}

}  // namespace tlk::nn
