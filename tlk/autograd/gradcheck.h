#pragma once
#include <functional>
#include <string>
#include <vector>

#include "tlk/tensor/tensor.h"

namespace tlk::autograd {

/// Tolerances and step of a gradient check.
struct GradcheckOptions {
  double eps = 1e-6;          ///< finite-difference step
  double atol = 1e-7;         ///< absolute tolerance
  double rtol = 1e-5;         ///< relative tolerance
  std::uint64_t seed = 1234;  ///< for the random projection of the outputs
};

/// What a gradient check found: ok, and the worst mismatch it saw.
struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0.0;
  std::string message;  ///< empty when ok; else names the input, element and both values
};

/// Checks the analytic backward of `fn` against central finite differences, in f64.
///
/// Note [Projected gradient check]: `fn` may return any number of tensors of any shape. They are
/// reduced to one scalar L = Σ_k <r_k, out_k> with fixed random r_k, so one backward gives dL/dx for
/// every input element, which is compared with (L(x + eps e_i) - L(x - eps e_i)) / (2 eps). A wrong
/// Jacobian entry changes L's gradient for almost every r, so this checks the full Jacobian at the
/// cost of two forward passes per input element. The inputs must be f64 leaves with requires_grad.
///
/// Example:
/// ```
/// Tensor x = randn({2, 3, 4, 4, 4}, gen, 0, 1, TensorOptions{DType::f64}); x.set_requires_grad();
/// auto r = gradcheck([](const auto& in) { return std::vector<Tensor>{ops::relu(in[0])}; }, {x});
/// CHECK_MESSAGE(r.ok, r.message);
/// ```
GradcheckResult gradcheck(const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

}  // namespace tlk::autograd
