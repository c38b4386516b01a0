#include "tlk/nn/activation.h"

#include "tlk/autograd/ops/activation.h"
#include "tlk/autograd/ops/dropout.h"
#include "tlk/autograd/ops/view.h"
#include "tlk/tensor/error.h"

namespace tlk::nn {

Tensor ReLU::forward(const Tensor& input) { return ops::relu(input); }

Tensor LeakyReLU::forward(const Tensor& input) { return ops::leaky_relu(input, negative_slope); }

Dropout::Dropout(double p, std::uint64_t seed) : p(p), gen_(seed) {
  check(p >= 0.0 && p <= 1.0, "Dropout: p must be in [0, 1], got {}", p);
}

Tensor Dropout::forward(const Tensor& input) { return ops::dropout(input, p, gen_, is_training()); }

Tensor Flatten::forward(const Tensor& input) { return ops::flatten(input, start, end); }

}  // namespace tlk::nn
