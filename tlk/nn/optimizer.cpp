#include "tlk/nn/optimizer.h"

#include <cmath>
#include <cstdio>
#include <string>

#include "tlk/autograd/grad_mode.h"
#include "tlk/autograd/ops/arith.h"
#include "tlk/autograd/ops/reduce.h"
#include "tlk/tensor/error.h"

namespace tlk::nn {

Optimizer::Optimizer(std::vector<ParamGroup> groups, double lr, double weight_decay, const char* name)
    : groups_(std::move(groups)), lr_(lr), weight_decay_(weight_decay), name_(name) {
  check(lr >= 0 && weight_decay >= 0, "{}: lr and weight_decay must be >= 0, got {} and {}", name, lr, weight_decay);
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    check(groups_[g].lr_scale >= 0, "{}: group {} has a negative lr_scale {}", name, g, groups_[g].lr_scale);
    for (std::size_t i = 0; i < groups_[g].params.size(); ++i) {
      const Tensor& p = groups_[g].params[i];
      check(p.defined() && (p.device().is_cpu() || p.device().is_cuda()) && p.is_contiguous() &&
                (p.dtype() == DType::f32 || p.dtype() == DType::f64),
            "{}: parameter {} of group {} must be a contiguous f32 or f64 tensor on the CPU or a CUDA device{}", name,
            i, g,
            p.defined() ? fmt::format(", got {} {} on {}", p.shape().str(), dtype_name(p.dtype()), p.device().str())
                        : std::string(", got an undefined tensor"));
    }
    slots_.emplace_back(groups_[g].params.size());
  }
}

void Optimizer::set_lr(double lr) {
  check(lr >= 0 && std::isfinite(lr), "{}: learning rate must be finite and >= 0, got {}", name_, lr);
  lr_ = lr;
}

void Optimizer::step() {
  NoGradGuard no_grad;
  ++steps_;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const ParamGroup& group = groups_[g];
    const double wd = group.weight_decay >= 0 ? group.weight_decay : weight_decay_;
    for (std::size_t i = 0; i < group.params.size(); ++i) {
      Tensor p = group.params[i];
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      grad = grad.to(Layout::plain).to(p.dtype());
      check(grad.shape() == p.shape(), "{}: gradient of parameter {} in group {} has shape {}, expected {}", name_, i,
            g, grad.shape().str(), p.shape().str());
      check(grad.device() == p.device(), "{}: gradient of parameter {} in group {} is on {}, the parameter on {}",
            name_, i, g, grad.device().str(), p.device().str());
      update(p, grad, slots_[g][i], lr_ * group.lr_scale, wd);
      p.impl().storage->bump_version();
    }
  }
}

void Optimizer::zero_grad() {
  for (auto& group : groups_)
    for (auto& p : group.params) p.set_grad(Tensor());
}

std::vector<NamedTensor> Optimizer::state() const {
  std::vector<NamedTensor> out;
  out.emplace_back("steps", Tensor::scalar(static_cast<double>(steps_), TensorOptions{DType::f64}));
  const auto names = slot_names();
  for (std::size_t g = 0; g < slots_.size(); ++g)
    for (std::size_t i = 0; i < slots_[g].size(); ++i)
      for (std::size_t s = 0; s < slots_[g][i].size(); ++s)
        if (slots_[g][i][s].defined()) {
          // Note [Optimizer state on the GPU]: the slots of CUDA parameters live on the parameter's GPU;
          // state() hands out CPU copies, so checkpoints hold CPU tensors whatever device trained them.
          const Tensor& slot = slots_[g][i][s];
          out.emplace_back(fmt::format("group.{}.param.{}.{}", g, i, names[s]),
                           slot.device().is_cpu() ? slot : slot.detach().to(Device::cpu()));
        }
  return out;
}

void Optimizer::load_state(const std::vector<NamedTensor>& state) {
  const auto names = slot_names();
  for (auto& group_slots : slots_)
    for (auto& s : group_slots) s.assign(names.size(), Tensor());
  for (const auto& [name, t] : state) {
    if (name == "steps") {
      steps_ = static_cast<std::int64_t>(t.item());
      continue;
    }
    std::size_t g = 0, i = 0;
    char slot[64] = {};
    check(std::sscanf(name.c_str(), "group.%zu.param.%zu.%63s", &g, &i, slot) == 3 && g < slots_.size() &&
              i < slots_[g].size(),
          "{}: optimizer state '{}' does not belong to this optimizer ({} groups)", name_, name, slots_.size());
    std::size_t s = 0;
    while (s < names.size() && names[s] != slot) ++s;
    check(s < names.size(), "{}: unknown state slot '{}' in '{}'", name_, slot, name);
    const Tensor& p = groups_[g].params[i];
    // A 0-D slot is a per-parameter counter (Adam's step, kept in f64), not a tensor shaped like p.
    const bool counter = t.dim() == 0;
    check(counter || t.shape() == p.shape(), "{}: optimizer state '{}' has shape {}, the parameter has {}", name_, name,
          t.shape().str(), p.shape().str());
    // Counters stay on the CPU; other slots go to the parameter's device (Note [Optimizer state on the GPU]).
    const Tensor host = t.device().is_cpu() ? t : t.detach().to(Layout::plain).contiguous().to(Device::cpu());
    Tensor restored = (counter ? host.to(DType::f64) : host.to(p.dtype())).contiguous().clone();
    slots_[g][i][s] = counter || p.device().is_cpu() ? restored : restored.to(p.device());
  }
}

std::vector<ParamGroup> single_group(const Module& module) { return {ParamGroup{module.parameters(), 1.0, -1, "all"}}; }

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  check(max_norm > 0, "clip_grad_norm: max_norm must be > 0, got {}", max_norm);
  double total = 0;
  Tensor gpu_total;  // GPU gradients: squares summed on the GPU and read back once, not per tensor
  std::vector<Tensor> grads;
  NoGradGuard no_grad;
  for (const auto& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    g = g.to(Layout::plain).contiguous();
    if (g.device().is_cuda()) {
      const Tensor squares = ops::sum(g.to(DType::f64) * g.to(DType::f64));
      gpu_total = gpu_total.defined() ? gpu_total + squares : squares;
    } else {
      for (double v : g.to_doubles()) total += v * v;
    }
    grads.push_back(g);
  }
  if (gpu_total.defined()) total += gpu_total.item();
  const double norm = std::sqrt(total);
  if (norm > max_norm) {
    const double scale = max_norm / (norm + 1e-6);  // as torch.nn.utils.clip_grad_norm_
    std::size_t k = 0;
    for (const auto& p : params) {
      if (!p.grad().defined()) continue;
      p.set_grad(grads[k++] * scale);
    }
  }
  return norm;
}

}  // namespace tlk::nn
