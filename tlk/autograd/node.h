#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tlk/autograd/saved_tensor.h"
#include "tlk/tensor/tensor.h"

namespace tlk::autograd {

class Node;

/// Where a gradient goes: input `input_nr` of `node` (the node's output number `input_nr`).
struct Edge {
  std::shared_ptr<Node> node;
  int input_nr = 0;
  bool valid() const { return node != nullptr; }
};

/// What the engine needs to know of each output of a node (to make zeros for an output that
/// received no gradient and to check the gradients it is given).
struct OutputMeta {
  Shape shape;
  DType dtype = DType::f32;
  Device device;
};

/// A backward function in the graph: gradients of its outputs in, gradients of its inputs out.
///
/// To write a differentiable op: subclass Node, save what backward needs as SavedTensor members,
/// implement `apply` (one gradient per input, in the order given to `record`, undefined where an
/// input needs none) and `release_saved`, and call `record` after the forward kernel ran.
class Node : public std::enable_shared_from_this<Node> {
 public:
  Node();
  virtual ~Node() = default;
  /// The op's name, used in error messages ("conv3d").
  virtual const char* name() const = 0;
  /// Gradients w.r.t. the inputs, given gradients w.r.t. the outputs (all defined: the engine fills
  /// zeros for outputs that received none).
  virtual std::vector<Tensor> apply(const std::vector<Tensor>& grad_outputs) = 0;
  /// Frees saved tensors after a backward that does not retain the graph.
  virtual void release_saved() {}

  const std::vector<Edge>& next_edges() const { return next_edges_; }
  const std::vector<OutputMeta>& output_meta() const { return output_meta_; }
  int num_outputs() const { return static_cast<int>(output_meta_.size()); }
  /// Creation order; the engine runs later nodes first among those ready.
  std::uint64_t sequence_nr() const { return sequence_nr_; }
  /// Hooks on the gradient of output `output_nr`, run before `apply`.
  std::map<int, std::vector<GradHook>>& pre_hooks() { return pre_hooks_; }
  /// Whether should_compute_input_grad(i): input i leads to a tensor that requires grad.
  bool needs_input_grad(int i) const { return i < static_cast<int>(next_edges_.size()) && next_edges_[i].valid(); }

  bool released = false;

 protected:
  /// For nodes that are not made by record() (AccumulateGrad): declares one more output.
  void add_output_meta(const OutputMeta& meta) { output_meta_.push_back(meta); }

 private:
  friend void record(const std::shared_ptr<Node>&, const std::vector<Tensor>&, const std::vector<Tensor>&);
  std::vector<Edge> next_edges_;
  std::vector<OutputMeta> output_meta_;
  std::map<int, std::vector<GradHook>> pre_hooks_;
  std::uint64_t sequence_nr_;
};

/// The autograd state attached to a tensor.
struct AutogradMeta {
  bool requires_grad = false;        ///< leaves only: set by set_requires_grad
  Tensor grad;                       ///< accumulated gradient (leaves, or retain_grad)
  std::shared_ptr<Node> grad_fn;     ///< the node that produced this tensor (non-leaves)
  int output_nr = 0;                 ///< which output of grad_fn
  std::weak_ptr<Node> accumulator;   ///< leaves: the AccumulateGrad node, made on demand
  std::vector<GradHook> leaf_hooks;  ///< leaves: hooks run before accumulation
  std::vector<PostAccumulateHook> post_accumulate_hooks;  ///< leaves: hooks run after accumulation
  bool retains_grad = false;         ///< non-leaves: retain_grad() was called
};

/// True when grad mode is on and some input requires grad (undefined inputs are skipped).
bool any_requires_grad(const std::vector<Tensor>& inputs);

/// Connects `node` into the graph: its next edges point at each input's producer (or accumulator),
/// and every output gets `node` as grad_fn. Call only when any_requires_grad(inputs).
void record(const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs);

/// The edge a gradient for `t` flows into (invalid when `t` does not require grad).
Edge gradient_edge(const Tensor& t);

}  // namespace tlk::autograd
