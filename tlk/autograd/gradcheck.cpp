#include "tlk/autograd/gradcheck.h"

#include <fmt/format.h>

#include <cmath>

#include "tlk/autograd/engine.h"
#include "tlk/autograd/grad_mode.h"
#include "tlk/tensor/error.h"
#include "tlk/tensor/random.h"

namespace tlk::autograd {

namespace {

double projected(const std::vector<Tensor>& outputs, const std::vector<std::vector<double>>& weights) {
  double total = 0.0;
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    std::vector<double> values = outputs[k].to_doubles();
    for (std::size_t i = 0; i < values.size(); ++i) total += values[i] * weights[k][i];
  }
  return total;
}

}  // namespace

GradcheckResult gradcheck(const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
  bool any_differentiable = false;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    check(x.defined(), "gradcheck: input {} is undefined", i);
    check(x.dtype() == DType::f64, "gradcheck: input {} has dtype {}, expected f64", i, dtype_name(x.dtype()));
    check(x.is_leaf(), "gradcheck: input {} (shape {}) is not a leaf tensor", i, x.shape().str());
    check(x.is_contiguous(), "gradcheck: input {} (shape {}) is not contiguous", i, x.shape().str());
    any_differentiable = any_differentiable || x.requires_grad();
  }
  check(any_differentiable,
        "gradcheck: no input requires grad, so nothing would be checked; call "
        "set_requires_grad() on the inputs to differentiate");

  // Analytic gradient of L = Σ <r_k, out_k>.
  for (const Tensor& x : inputs) x.set_grad(Tensor());
  std::vector<Tensor> outputs = fn(inputs);
  Generator gen(options.seed);
  std::vector<std::vector<double>> weights;
  std::vector<Tensor> roots, root_grads;
  for (const Tensor& out : outputs) {
    std::vector<double> r(static_cast<std::size_t>(out.numel()));
    for (auto& v : r) v = gen.uniform(-1.0, 1.0);
    weights.push_back(r);
    if (out.requires_grad()) {
      roots.push_back(out);
      root_grads.push_back(Tensor::from_vector(r, out.shape()).to(out.dtype()));
    }
  }
  if (!roots.empty()) backward(roots, root_grads);

  GradcheckResult result;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.requires_grad()) continue;
    Tensor analytic_t = x.grad();
    std::vector<double> analytic =
        analytic_t.defined() ? analytic_t.to_doubles() : std::vector<double>(static_cast<std::size_t>(x.numel()), 0.0);
    double* data = x.data<double>();
    for (std::int64_t e = 0; e < x.numel(); ++e) {
      const double saved = data[e];
      double plus, minus;
      {
        NoGradGuard guard;
        data[e] = saved + options.eps;
        plus = projected(fn(inputs), weights);
        data[e] = saved - options.eps;
        minus = projected(fn(inputs), weights);
        data[e] = saved;
      }
      const double numeric = (plus - minus) / (2.0 * options.eps);
      const double a = analytic[static_cast<std::size_t>(e)];
      const double error = std::abs(numeric - a);
      result.max_abs_error = std::max(result.max_abs_error, error);
      if (!(error <= options.atol + options.rtol * std::abs(numeric)) && result.ok) {
        result.ok = false;
        result.message = fmt::format("gradcheck: input {} (shape {}), element {}: analytic {:.10g}, numeric {:.10g}", i,
                                     x.shape().str(), e, a, numeric);
      }
    }
  }
  return result;
}

}  // namespace tlk::autograd
