#include "tlk/nn/module.h"

#include <fmt/format.h>

#include <map>

#include "tlk/autograd/grad_mode.h"
#include "tlk/tensor/error.h"

namespace tlk::nn {

void Module::check_new_name(const std::string& name) const {
  check(!name.empty() && name.find('.') == std::string::npos,
        "Module: invalid name '{}' (names are non-empty and contain no '.')", name);
  for (const auto& [n, t] : parameters_) check(n != name, "Module: the name '{}' is already a parameter", name);
  for (const auto& [n, t] : buffers_) check(n != name, "Module: the name '{}' is already a buffer", name);
  for (const auto& [n, m] : children_) check(n != name, "Module: the name '{}' is already a child module", name);
}

Tensor Module::register_parameter(const std::string& name, Tensor tensor) {
  check_new_name(name);
  check(tensor.defined() && is_floating(tensor.dtype()),
        "Module: parameter '{}' must be a defined floating-point tensor", name);
  check(tensor.is_leaf(), "Module: parameter '{}' must be a leaf tensor (detach() it first)", name);
  tensor.set_requires_grad(true);
  parameters_.emplace_back(name, tensor);
  return tensor;
}

Tensor Module::register_buffer(const std::string& name, Tensor tensor) {
  check_new_name(name);
  check(tensor.defined(), "Module: buffer '{}' is undefined", name);
  buffers_.emplace_back(name, tensor);
  return tensor;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name);
  check(module != nullptr, "Module: child '{}' is null", name);
  module->train(training_);
  children_.emplace_back(name, std::move(module));
}

void Module::collect(const std::string& prefix, bool buffers, std::vector<NamedTensor>& out) const {
  for (const auto& [name, t] : buffers ? buffers_ : parameters_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", buffers, out);
}

std::vector<NamedTensor> Module::named_parameters() const {
  std::vector<NamedTensor> out;
  collect("", false, out);
  return out;
}

std::vector<NamedTensor> Module::named_parameters(const std::string& prefix) const {
  std::vector<NamedTensor> out;
  for (auto& p : named_parameters())
    if (p.first.rfind(prefix, 0) == 0) out.push_back(p);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

std::vector<Tensor> parameters_of(const std::vector<const Module*>& modules) {
  std::vector<Tensor> out;
  for (const Module* m : modules)
    if (m)
      for (const Tensor& p : m->parameters()) out.push_back(p);
  return out;
}

std::vector<NamedTensor> Module::named_buffers() const {
  std::vector<NamedTensor> out;
  collect("", true, out);
  return out;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::to(Device device) {
  auto move = [&](Tensor& t, bool parameter) {
    if (t.device() == device) return;
    const Tensor moved = t.detach().to(Layout::plain).contiguous().to(device);
    // Note [Moving parameters in place]: the handle's TensorImpl keeps its autograd state (a leaf
    // that requires grad) and gets the new storage, so every copy of the handle follows the move.
    TensorImpl& impl = t.impl();
    impl.storage = moved.impl().storage;
    impl.strides = moved.strides();
    impl.offset = 0;
    impl.blocked.reset();
    if (parameter) t.set_grad(Tensor());
  };
  for (auto& [name, t] : parameters_) move(t, true);
  for (auto& [name, t] : buffers_) move(t, false);
  for (auto& [name, child] : children_) child->to(device);
}

Device Module::device() const {
  const auto params = named_parameters();
  return params.empty() ? Device::cpu() : params.front().second.device();
}

void Module::zero_grad() {
  for (auto& t : parameters()) t.set_grad(Tensor());
}

std::string LoadReport::str() const {
  auto join = [](const std::vector<std::string>& v) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
    return out;
  };
  std::string out;
  auto add = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    out += (out.empty() ? "" : "; ") + std::string(what) + ": " + join(v);
  };
  add("missing", missing);
  add("unexpected", unexpected);
  add("shape mismatch", mismatched);
  return out.empty() ? "all tensors matched" : out;
}

std::vector<NamedTensor> Module::state_dict() const {
  std::vector<NamedTensor> out = named_parameters();
  for (auto& b : named_buffers()) out.push_back(b);
  return out;
}

LoadReport Module::load_state_dict(const std::vector<NamedTensor>& state, bool strict) {
  const std::vector<NamedTensor> own = state_dict();
  std::map<std::string, Tensor> given;
  for (const auto& [name, t] : state) given[name] = t;
  LoadReport report;
  std::vector<std::pair<Tensor, Tensor>> copies;  // (destination, source)
  for (const auto& [name, dst] : own) {
    auto it = given.find(name);
    if (it == given.end()) {
      report.missing.push_back(name);
      continue;
    }
    if (it->second.shape() != dst.shape()) {
      report.mismatched.push_back(fmt::format("{}: {} vs {}", name, it->second.shape().str(), dst.shape().str()));
    } else {
      copies.emplace_back(dst, it->second);
    }
    given.erase(it);
  }
  for (const auto& [name, t] : given) report.unexpected.push_back(name);
  check(!strict || report.complete(), "load_state_dict: the state does not match the module ({})", report.str());
  NoGradGuard no_grad;
  for (auto& [dst, src] : copies) {
    Tensor d = dst;
    d.copy_(src);
  }
  return report;
}

std::int64_t Module::parameter_count() const {
  std::int64_t n = 0;
  for (auto& t : parameters()) n += t.numel();
  return n;
}

}  // namespace tlk::nn
