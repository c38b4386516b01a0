#pragma once
#include <functional>
#include <vector>

#include "tlk/autograd/node.h"

namespace tlk::autograd {

/// A graph node whose backward is a closure.
///
/// Note [Closure nodes]: most ops need nothing but a few saved tensors and a formula, so they attach a
/// lambda instead of declaring a Node subclass. The lambda captures SavedTensor values, never Tensor
/// handles (a Tensor would bypass the in-place check and could keep its own grad_fn alive, a cycle).
/// release_saved() destroys the closure, which frees everything it captured.
class ClosureNode final : public Node {
 public:
  /// grads: one per output; returns one gradient per input (undefined where none is needed).
  using Backward = std::function<std::vector<Tensor>(const std::vector<Tensor>& grads, const Node& self)>;
  ClosureNode(const char* name, Backward backward) : name_(name), backward_(std::move(backward)) {}
  const char* name() const override { return name_; }
  std::vector<Tensor> apply(const std::vector<Tensor>& grads) override;
  void release_saved() override { backward_ = nullptr; }

 private:
  const char* name_;
  Backward backward_;
};

/// Makes a ClosureNode the grad_fn of `outputs` when grad mode is on and an input requires grad.
/// Example (inside an op, after the forward kernel ran):
/// ```
/// attach("relu", {x}, {y}, [xs = SavedTensor(x, "relu")](const auto& g, const Node&) {
///   return std::vector<Tensor>{kernels::ref::unary_backward(g[0], xs.unpack(), {}, UnaryOp::relu)};
/// });
/// ```
void attach(const char* name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            ClosureNode::Backward backward);

}  // namespace tlk::autograd
