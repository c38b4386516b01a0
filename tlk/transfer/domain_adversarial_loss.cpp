#include "tlk/transfer/domain_adversarial_loss.h"

#include <cmath>
#include <string>
#include <tuple>

#include "tlk/autograd/grad_mode.h"
#include "tlk/autograd/ops/arith.h"
#include "tlk/autograd/ops/losses.h"
#include "tlk/autograd/ops/reduce.h"
#include "tlk/autograd/ops/softmax.h"
#include "tlk/autograd/ops/view.h"
#include "tlk/tensor/error.h"

namespace tlk::transfer {
namespace {

Tensor as_matrix(const Tensor& logits, const char* which) {
  check(logits.defined() && (logits.dim() == 1 || logits.dim() == 2) && logits.numel() > 0,
        "domain_adversarial_loss: expected non-empty {} logits [N, K] or [N], got {}", which,
        logits.defined() ? logits.shape().str() : std::string("an undefined tensor"));
  check(logits.dtype() == DType::f32 || logits.dtype() == DType::f64,
        "domain_adversarial_loss: expected f32 or f64 {} logits, got {}", which, dtype_name(logits.dtype()));
  return logits.dim() == 1 ? ops::reshape(logits, Shape{logits.size(0), 1}) : logits;
}

// Note [Weighted BCE through log-softmax]: −log σ(x) and −log(1 − σ(x)) are −log_softmax([x, 0]) at
// index 0 and 1, which the stable log-softmax computes without overflow for any x and with the exact
// derivative everywhere (σ(x) − 1 and σ(x)), also at x = 0, where a relu/abs composition would not be.
Tensor weighted_bce(const Tensor& logits, bool source, const Tensor& weight, const char* which) {
  const std::int64_t n = logits.size(0), k = logits.size(1);
  check(weight.dim() == 1 && weight.size(0) == n, "domain_adversarial_loss: expected a {} weight [{}], got {}", which,
        n, weight.shape().str());
  Tensor w = weight.detach().to(logits.dtype()).contiguous();
  const std::vector<double> values = w.to_doubles();
  w = w.to(logits.device());
  for (double v : values)
    check(std::isfinite(v) && v >= 0.0, "domain_adversarial_loss: {} weights must be finite and >= 0, got {}", which,
          v);
  Tensor x = ops::reshape(logits, Shape{n, k, 1});
  Tensor pair = ops::cat({x, Tensor::zeros(Shape{n, k, 1}, TensorOptions{logits.dtype(), logits.device()})}, 2);
  Tensor log_p = ops::narrow(ops::log_softmax(pair, 2), 2, source ? 0 : 1, 1);
  Tensor per_element = ops::neg(ops::reshape(log_p, Shape{n, k}));
  return ops::mean(ops::mul(per_element, ops::reshape(w, Shape{n, 1})));
}

double fraction(const std::vector<double>& values, bool source) {
  std::int64_t right = 0;
  for (double v : values) right += source ? (v >= 0.0) : (v < 0.0);
  return static_cast<double>(right) / static_cast<double>(values.size());
}

double mean_sigmoid(const std::vector<double>& values) {
  double sum = 0.0;
  for (double v : values) sum += v >= 0.0 ? 1.0 / (1.0 + std::exp(-v)) : std::exp(v) / (1.0 + std::exp(v));
  return sum / static_cast<double>(values.size());
}

}  // namespace

DomainAdversarialResult domain_adversarial_loss(const Tensor& source_logits, const Tensor& target_logits,
                                                const DomainAdversarialOptions& options) {
  const Tensor s = as_matrix(source_logits, "source");
  const Tensor t = as_matrix(target_logits, "target");
  check(s.size(1) == t.size(1) && s.dtype() == t.dtype(),
        "domain_adversarial_loss: source logits {} {} and target logits {} {} must agree in K and dtype",
        s.shape().str(), dtype_name(s.dtype()), t.shape().str(), dtype_name(t.dtype()));
  DomainAdversarialResult r;
  const Tensor source_loss =
      options.source_weight.defined()
          ? weighted_bce(s, true, options.source_weight, "source")
          : ops::bce_with_logits(s, Tensor::ones(s.shape(), TensorOptions{s.dtype(), s.device()}));
  const Tensor target_loss =
      options.target_weight.defined()
          ? weighted_bce(t, false, options.target_weight, "target")
          : ops::bce_with_logits(t, Tensor::zeros(t.shape(), TensorOptions{t.dtype(), t.device()}));
  r.loss = ops::mul(ops::add(source_loss, target_loss), 0.5);
  const std::vector<double> sv = s.detach().contiguous().to_doubles();
  const std::vector<double> tv = t.detach().contiguous().to_doubles();
  r.source_accuracy = fraction(sv, true);
  r.target_accuracy = fraction(tv, false);
  r.accuracy = 0.5 * (r.source_accuracy + r.target_accuracy);
  r.source_probability = mean_sigmoid(sv);
  r.target_probability = mean_sigmoid(tv);
  return r;
}

DomainAdapter::DomainAdapter(std::shared_ptr<Discriminator> discriminator, const WarmStartSchedule& schedule)
    : schedule_(schedule) {
  check(discriminator != nullptr, "DomainAdapter: the discriminator is null");
  schedule.validate();
  discriminator_ = register_module("discriminator", std::move(discriminator));
}

void DomainAdapter::set_schedule(const WarmStartSchedule& schedule) {
  schedule.validate();
  schedule_ = schedule;
}

// Note [Two discriminator passes]: the original joins source and target along the batch axis and runs
// the discriminator once. When a sample's logits depend on that sample alone (instance norm:
// Discriminator::samples_independent), two passes give exactly the same logits and gradients and skip
// the batch concatenation, which would copy every (channel-blocked) feature map to a plain layout and
// back each step; with batch norm the statistics must cover both domains, so the batch is joined.
AdversarialTerm DomainAdapter::adapt(const std::vector<Tensor>& source_features,
                                     const std::vector<Tensor>& target_features, std::int64_t step) {
  check(!source_features.empty() && source_features.size() == target_features.size(),
        "DomainAdapter::adapt: expected the same non-zero number of source and target features, got {} and {}",
        source_features.size(), target_features.size());
  const double lambda = schedule_.lambda(step);
  grl_.set_lambda(lambda);
  const std::size_t taps = source_features.size();
  const std::int64_t n_source = batch_size(source_features, "source");
  batch_size(target_features, "target");

  std::vector<Tensor> joint;  // only where the batch must be joined or weights need it
  const bool join = !discriminator_->samples_independent();
  if (join || discriminator_->has_sample_weights()) {
    joint.resize(taps);
    for (std::size_t i = 0; i < taps; ++i)
      if (discriminator_->uses_feature(i)) joint[i] = ops::cat({source_features[i], target_features[i]}, 0);
  }
  Tensor source_logits, target_logits;
  if (join) {
    std::tie(source_logits, target_logits) = joint_logits(joint, n_source);
  } else {
    std::vector<Tensor> rs(taps), rt(taps);
    for (std::size_t i = 0; i < taps; ++i) {
      if (!discriminator_->uses_feature(i)) continue;
      rs[i] = grl_(source_features[i]);
      rt[i] = grl_(target_features[i]);
    }
    source_logits = discriminator_->forward(rs);
    target_logits = discriminator_->forward(rt);
  }
  return finish(source_logits, target_logits, joint, n_source, step, lambda);
}

AdversarialTerm DomainAdapter::adapt_joint(const std::vector<Tensor>& features, std::int64_t source_batch,
                                           std::int64_t step) {
  check(!features.empty(), "DomainAdapter::adapt_joint: expected at least one feature tensor");
  const double lambda = schedule_.lambda(step);
  grl_.set_lambda(lambda);
  const std::int64_t n = batch_size(features, "joint");
  check(source_batch > 0 && source_batch < n,
        "DomainAdapter::adapt_joint: source_batch must be in [1, {}) for a joint batch of {}, got {}", n, n,
        source_batch);
  auto [source_logits, target_logits] = joint_logits(features, source_batch);
  return finish(source_logits, target_logits, features, source_batch, step, lambda);
}

std::int64_t DomainAdapter::batch_size(const std::vector<Tensor>& features, const char* which) const {
  std::int64_t n = -1;
  for (std::size_t i = 0; i < features.size(); ++i) {
    if (!discriminator_->uses_feature(i)) continue;
    const Tensor& f = features[i];
    check(f.defined() && f.dim() >= 1 && f.size(0) > 0,
          "DomainAdapter: {} feature {} must be a defined tensor with a batch axis, got {}", which, i,
          f.defined() ? f.shape().str() : std::string("an undefined tensor"));
    if (n < 0) n = f.size(0);
    check(f.size(0) == n, "DomainAdapter: {} feature {} has batch {}, the first used feature has {}", which, i,
          f.size(0), n);
  }
  check(n > 0, "DomainAdapter: the discriminator uses none of the {} {} features given", features.size(), which);
  return n;
}

std::pair<Tensor, Tensor> DomainAdapter::joint_logits(const std::vector<Tensor>& joint, std::int64_t n_source) {
  std::vector<Tensor> reversed(joint.size());
  for (std::size_t i = 0; i < joint.size(); ++i)
    if (discriminator_->uses_feature(i)) reversed[i] = grl_(joint[i]);
  const Tensor logits = discriminator_->forward(reversed);
  check(logits.dim() >= 1 && logits.size(0) > n_source,
        "DomainAdapter: the discriminator returned {} for a joint batch with {} source samples and more",
        logits.shape().str(), n_source);
  auto parts = ops::split(logits, {n_source, logits.size(0) - n_source}, 0);
  return {parts[0], parts[1]};
}

AdversarialTerm DomainAdapter::finish(const Tensor& source_logits, const Tensor& target_logits,
                                      const std::vector<Tensor>& joint, std::int64_t n_source, std::int64_t step,
                                      double lambda) {
  DomainAdversarialOptions weights;
  if (discriminator_->has_sample_weights()) {
    const Tensor w = discriminator_->sample_weights(joint);
    if (w.defined()) {
      check(w.dim() == 1 && w.size(0) > n_source, "DomainAdapter: sample weights {} for a joint batch of {} and more",
            w.shape().str(), n_source);
      weights.source_weight = ops::narrow(w, 0, 0, n_source).contiguous();
      weights.target_weight = ops::narrow(w, 0, n_source, w.size(0) - n_source).contiguous();
    }
  }
  const DomainAdversarialResult r = domain_adversarial_loss(source_logits, target_logits, weights);
  last_ = AdversarialTerm{r.loss, step, lambda, r.accuracy, r.source_probability, r.target_probability};
  return last_;
}

}  // namespace tlk::transfer
