#include "tlk/transfer/transferrable_model.h"

#include <cmath>

#include "tlk/autograd/ops/arith.h"
#include "tlk/tensor/error.h"

namespace tlk::transfer {

Strategy parse_strategy(const std::string& text) {
  if (text == "supervised") return Strategy::supervised;
  if (text == "finetune") return Strategy::finetune;
  if (text == "distill") return Strategy::distill;
  if (text == "adapt") return Strategy::adapt;
  if (text == "finetune+adapt") return Strategy::finetune_adapt;
  if (text == "distill+adapt") return Strategy::distill_adapt;
  fail("transfer strategy '{}' is not one of supervised, finetune, distill, adapt, finetune+adapt, distill+adapt",
       text);
}

std::string to_string(Strategy strategy) {
  switch (strategy) {
    case Strategy::supervised: return "supervised";
    case Strategy::finetune: return "finetune";
    case Strategy::distill: return "distill";
    case Strategy::adapt: return "adapt";
    case Strategy::finetune_adapt: return "finetune+adapt";
    case Strategy::distill_adapt: return "distill+adapt";
  }
  return "?";
}

bool finetunes(Strategy s) { return s == Strategy::finetune || s == Strategy::finetune_adapt; }
bool distills(Strategy s) { return s == Strategy::distill || s == Strategy::distill_adapt; }
bool adapts(Strategy s) { return s == Strategy::adapt || s == Strategy::finetune_adapt || s == Strategy::distill_adapt; }

TransferrableModel::TransferrableModel(Strategy strategy, BackboneTask task, std::shared_ptr<DomainAdapter> adapter,
                                       LossWeights weights)
    : strategy_(strategy), task_(std::move(task)), adapter_(std::move(adapter)), weights_(weights) {
  check(task_.forward && task_.task_loss, "TransferrableModel: the backbone task needs forward and task_loss");
  check(!adapts(strategy_) || adapter_ != nullptr, "TransferrableModel: strategy {} needs a domain adapter",
        to_string(strategy_));
  check(!distills(strategy_) || (task_.teacher && task_.distill_loss),
        "TransferrableModel: strategy {} needs a teacher and a distillation loss", to_string(strategy_));
}

TransferLosses TransferrableModel::losses(const Tensor& source_images, const Tensor& source_labels,
                                          const Tensor& target_images, std::int64_t step) {
  TransferLosses out;
  out.distill = out.adversarial = out.lambda = out.domain_accuracy = std::nan("");
  const BackboneOutput source = task_.forward(source_images);
  Tensor task_loss = task_.task_loss(source, source_labels);
  out.task = task_loss.item();
  Tensor total = weights_.task * task_loss;

  BackboneOutput target;
  if (adapts(strategy_)) {
    check(target_images.defined(), "TransferrableModel: strategy {} needs a target batch each step",
          to_string(strategy_));
    target = task_.forward(target_images);
  }
  if (distills(strategy_)) {
    Tensor distill = task_.distill_loss(source, task_.teacher(source_images), source_labels);
    if (adapts(strategy_))  // Note [Distillation on the target]
      distill = 0.5 * (distill + task_.distill_loss(target, task_.teacher(target_images), Tensor()));
    out.distill = distill.item();
    total = total + weights_.distill * distill;
  }
  if (adapts(strategy_)) {
    const AdversarialTerm adversarial = adapter_->adapt(source.features, target.features, step);
    out.adversarial = adversarial.loss.item();
    out.lambda = adversarial.lambda;
    out.domain_accuracy = adversarial.accuracy;
    total = total + weights_.adversarial * adversarial.loss;
  }
  out.total = total;
  return out;
}

}  // namespace tlk::transfer
