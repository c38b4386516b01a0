#pragma once
#include <string>
#include <vector>

#include "tlk/nn/module.h"

namespace tlk::nn {

/// Parameters that share a learning-rate multiplier and a weight decay (e.g. a pretrained body at
/// 0.2x and a fresh head at 1x, as TLK's fine-tuning does).
struct ParamGroup {
  std::vector<Tensor> params;
  double lr_scale = 1.0;     ///< this group's learning rate = optimizer lr x lr_scale
  double weight_decay = -1;  ///< negative: the optimizer's default
  std::string name;          ///< for logs and checkpoints
};

/// The base of TLK's optimizers: parameter groups, a learning rate that schedules set per step, and
/// per-parameter state that checkpoints save and restore.
class Optimizer {
 public:
  Optimizer(std::vector<ParamGroup> groups, double lr, double weight_decay, const char* name);
  virtual ~Optimizer() = default;

  /// Updates every parameter that has a gradient, in place (recorded in no graph).
  void step();
  /// Clears every parameter's gradient.
  void zero_grad();
  /// The base learning rate (schedules set it once per step).
  double lr() const { return lr_; }
  void set_lr(double lr);
  std::vector<ParamGroup>& groups() { return groups_; }
  /// Number of step() calls so far.
  std::int64_t steps() const { return steps_; }

  /// The optimizer's state as named tensors ("group.<g>.param.<i>.<slot>", plus "steps"), for checkpoints.
  std::vector<NamedTensor> state() const;
  /// Restores state() output; throws naming the first tensor whose name or shape does not fit.
  void load_state(const std::vector<NamedTensor>& state);

 protected:
  /// Updates one parameter `p` (contiguous, f32 or f64) from gradient `g` of the same dtype/shape;
  /// `slots` are this parameter's state tensors (created by the subclass on first use).
  virtual void update(Tensor& p, const Tensor& g, std::vector<Tensor>& slots, double lr, double weight_decay) = 0;
  /// Names of the per-parameter state slots, in the order update() keeps them ("momentum", ...).
  virtual std::vector<std::string> slot_names() const = 0;

 private:
  std::vector<ParamGroup> groups_;
  std::vector<std::vector<std::vector<Tensor>>> slots_;  // [group][param][slot]
  double lr_, weight_decay_;
  std::int64_t steps_ = 0;
  const char* name_;
};

/// One group holding all of `module`'s parameters.
std::vector<ParamGroup> single_group(const Module& module);

/// Scales all gradients so that their global L2 norm is at most `max_norm` (nnUNet clips at 12);
/// returns the norm before clipping. Parameters without a gradient are skipped.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace tlk::nn
