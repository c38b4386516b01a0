#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tlk/tensor/tensor.h"

/// Modules, layers, networks, losses and optimizers (the nn layer).
namespace tlk::nn {

/// A named tensor: "encoder.stages.0.conv1.weight".
using NamedTensor = std::pair<std::string, Tensor>;

/// What load_state_dict found: names the module has that the state lacks, names the state has that
/// the module lacks, and names present in both with different shapes ("name: [..] vs [..]").
struct LoadReport {
  std::vector<std::string> missing, unexpected, mismatched;
  bool complete() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  /// One line per category, for logs: "missing: a, b; unexpected: c; shape mismatch: d: [2] vs [3]".
  std::string str() const;
};

/// The base of every layer and network: named parameters and buffers in a hierarchy of children,
/// and a train/eval mode.
///
/// Note [Parameters are shared handles]: a module's parameters are Tensor handles; optimizers update
/// their data in place (under NoGradGuard), so the module sees new values without any copy back.
///
/// Example:
/// ```
/// class Block : public nn::Module {
///  public:
///   Block() { conv = register_module("conv", std::make_shared<nn::Conv3d>(1, 8, Int3{3, 3, 3})); }
///   std::shared_ptr<nn::Conv3d> conv;
/// };
/// for (auto& [name, p] : Block().named_parameters()) fmt::print("{} {}\n", name, p.shape().str());
/// ```
class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// Parameters of this module and its children, depth-first, with dotted names.
  std::vector<NamedTensor> named_parameters() const;
  std::vector<Tensor> parameters() const;
  /// Parameters whose name starts with `prefix` ("encoder." selects the encoder).
  std::vector<NamedTensor> named_parameters(const std::string& prefix) const;
  /// Buffers (state that is saved but not trained, e.g. batch norm's running statistics).
  std::vector<NamedTensor> named_buffers() const;
  /// Direct children with their names.
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }

  /// Every parameter and buffer by name (shared handles, not copies).
  std::vector<NamedTensor> state_dict() const;
  /// Copies tensors from `state` into the parameters and buffers of the same name and shape.
  /// strict: any missing, unexpected or mismatched name is a tlk::Error listing them all, and nothing
  /// is copied. Non-strict: what matches is copied and the rest is reported.
  LoadReport load_state_dict(const std::vector<NamedTensor>& state, bool strict = true);

  /// Switches this module and all children to training (true) or evaluation (false) mode.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  /// Clears the gradient of every parameter.
  void zero_grad();
  /// Moves every parameter and buffer to `device` in place: the handles the module (and an optimizer
  /// made later) hold see the new storage; gradients are cleared. Build optimizers after the move.
  /// Example: `net.to(Device::cuda());`
  void to(Device device);
  /// The device of the first parameter (the CPU for a module without parameters).
  Device device() const;
  /// Total number of parameter elements.
  std::int64_t parameter_count() const;

 protected:
  /// Adds a trainable tensor (marked requires_grad) under `name`; returns the stored handle.
  Tensor register_parameter(const std::string& name, Tensor tensor);
  Tensor register_buffer(const std::string& name, Tensor tensor);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void collect(const std::string& prefix, bool buffers, std::vector<NamedTensor>& out) const;
  void check_new_name(const std::string& name) const;

  std::vector<NamedTensor> parameters_;
  std::vector<NamedTensor> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

/// A module with one input and one output, the kind Sequential chains.
class UnaryModule : public Module {
 public:
  virtual Tensor forward(const Tensor& input) = 0;
  Tensor operator()(const Tensor& input) { return forward(input); }
};

/// The parameters of several modules in turn (null entries skipped): what a trainer updates when the
/// model, a discriminator and distillation regressors train together.
std::vector<Tensor> parameters_of(const std::vector<const Module*>& modules);

}  // namespace tlk::nn
