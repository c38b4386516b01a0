#include "tlk/transfer/cdan.h"

#include <cmath>
#include <string>

#include "tlk/autograd/ops/arith.h"
#include "tlk/autograd/ops/linear.h"
#include "tlk/autograd/ops/softmax.h"
#include "tlk/autograd/ops/view.h"
#include "tlk/tensor/error.h"

namespace tlk::transfer {
namespace {

void check_pair(const Tensor& f, const Tensor& p, const char* op) {
  check(f.defined() && p.defined() && f.dim() == 2 && p.dim() == 2 && f.size(0) == p.size(0),
        "{}: expected features [N, F] and probabilities [N, K] of one batch, got {} and {}", op,
        f.defined() ? f.shape().str() : std::string("undefined"),
        p.defined() ? p.shape().str() : std::string("undefined"));
}

}  // namespace

Tensor multilinear_map(const Tensor& features, const Tensor& probabilities) {
  check_pair(features, probabilities, "multilinear_map");
  const std::int64_t n = features.size(0), f = features.size(1), k = probabilities.size(1);
  // [N, K, 1] · [N, 1, F] broadcasts to the per-sample outer product [N, K, F].
  Tensor outer = ops::mul(ops::reshape(probabilities, Shape{n, k, 1}), ops::reshape(features, Shape{n, 1, f}));
  return ops::reshape(outer, Shape{n, k * f});
}

RandomizedMultilinearMap::RandomizedMultilinearMap(std::int64_t features, std::int64_t classes, std::int64_t output_dim,
                                                   Generator& gen) {
  check(features > 0 && classes > 0 && output_dim > 0,
        "RandomizedMultilinearMap: features {}, classes {} and output_dim {} must be > 0", features, classes,
        output_dim);
  rf_ = register_buffer("rf", randn(Shape{output_dim, features}, gen));
  rg_ = register_buffer("rg", randn(Shape{output_dim, classes}, gen));
}

Tensor RandomizedMultilinearMap::forward(const Tensor& features, const Tensor& probabilities) const {
  check_pair(features, probabilities, "RandomizedMultilinearMap");
  check(features.size(1) == rf_.size(1) && probabilities.size(1) == rg_.size(1),
        "RandomizedMultilinearMap: expected [N, {}] features and [N, {}] probabilities, got {} and {}", rf_.size(1),
        rg_.size(1), features.shape().str(), probabilities.shape().str());
  auto like = [](const Tensor& r, const Tensor& x) {
    return r.dtype() == x.dtype() && r.device() == x.device() ? r : r.to(x.dtype()).to(x.device());
  };
  Tensor a = ops::linear(features, like(rf_, features));            // f · R_f
  Tensor b = ops::linear(probabilities, like(rg_, probabilities));  // p · R_g
  return ops::mul(ops::mul(a, b), 1.0 / std::sqrt(static_cast<double>(output_dim())));
}

Tensor entropy_weights(const Tensor& probabilities) {
  check(probabilities.defined() && probabilities.dim() == 2 && probabilities.numel() > 0,
        "entropy_weights: expected probabilities [N, K], got {}",
        probabilities.defined() ? probabilities.shape().str() : std::string("an undefined tensor"));
  const std::int64_t n = probabilities.size(0), k = probabilities.size(1);
  const std::vector<double> p = probabilities.detach().contiguous().to_doubles();
  std::vector<double> w(static_cast<std::size_t>(n));
  double total = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    double h = 0.0;
    for (std::int64_t c = 0; c < k; ++c) {
      const double v = p[static_cast<std::size_t>(i * k + c)];
      check(std::isfinite(v) && v >= 0.0, "entropy_weights: probabilities must be finite and >= 0, got {}", v);
      h -= v * std::log(v + 1e-5);
    }
    w[static_cast<std::size_t>(i)] = 1.0 + std::exp(-h);
    total += w[static_cast<std::size_t>(i)];
  }
  for (double& v : w) v *= static_cast<double>(n) / total;
  return Tensor::from_doubles(w, Shape{n}, probabilities.dtype()).to(probabilities.device());
}

CdanDiscriminator::CdanDiscriminator(std::int64_t features, std::int64_t classes, const CdanOptions& options,
                                     Generator& gen)
    : features_(features), classes_(classes), options_(options) {
  check(features > 0 && classes > 0, "CdanDiscriminator: features {} and classes {} must be > 0", features, classes);
  check(options.randomized_dim > 0 && options.max_multilinear_dim > 0,
        "CdanDiscriminator: randomized_dim {} and max_multilinear_dim {} must be > 0", options.randomized_dim,
        options.max_multilinear_dim);
  const bool randomized =
      options.conditioning == CdanConditioning::randomized ||
      (options.conditioning == CdanConditioning::automatic && features * classes > options.max_multilinear_dim);
  if (randomized)
    map_ = register_module("map",
                           std::make_shared<RandomizedMultilinearMap>(features, classes, options.randomized_dim, gen));
  const std::int64_t in = randomized ? options.randomized_dim : features * classes;
  discriminator_ =
      register_module("discriminator", std::make_shared<DomainDiscriminator>(in, options.discriminator, gen));
}

void CdanDiscriminator::check_inputs(const std::vector<Tensor>& features) const {
  check(features.size() == 2, "CdanDiscriminator: expected {{features [N, {}], logits [N, {}]}}, got {} tensors",
        features_, classes_, features.size());
  const Tensor& f = features[0];
  const Tensor& g = features[1];
  check(f.defined() && g.defined() && f.dim() == 2 && g.dim() == 2 && f.size(0) == g.size(0) &&
            f.size(1) == features_ && g.size(1) == classes_,
        "CdanDiscriminator: expected features [N, {}] and logits [N, {}], got {} and {}", features_, classes_,
        f.defined() ? f.shape().str() : std::string("undefined"),
        g.defined() ? g.shape().str() : std::string("undefined"));
}

Tensor CdanDiscriminator::condition(const Tensor& f, const Tensor& probabilities) const {
  return map_ ? map_->forward(f, probabilities) : multilinear_map(f, probabilities);
}

Tensor CdanDiscriminator::forward(const std::vector<Tensor>& features) {
  check_inputs(features);
  const Tensor p = ops::softmax(features[1], 1).detach();  // Note [CDAN detaches the prediction]
  return discriminator_->forward(condition(features[0], p));
}

Tensor CdanDiscriminator::sample_weights(const std::vector<Tensor>& joint_features) {
  if (!options_.entropy_weighting) return {};
  check_inputs(joint_features);
  return entropy_weights(ops::softmax(joint_features[1].detach(), 1));
}

}  // namespace tlk::transfer
