#include "tlk/autograd/engine.h"

#include <queue>
#include <unordered_map>

#include "tlk/autograd/grad_mode.h"
#include "tlk/autograd/node.h"
#include "tlk/autograd/profiler.h"
#include "tlk/kernels/cpu/eltwise.h"
#include "tlk/kernels/routed.h"
#include "tlk/tensor/error.h"

namespace tlk::autograd {

namespace {

struct ReadyOrder {
  bool operator()(const Node* a, const Node* b) const { return a->sequence_nr() < b->sequence_nr(); }
};

void accumulate(std::vector<Tensor>& slots, int index, const Tensor& grad) {
  Tensor& slot = slots[static_cast<std::size_t>(index)];
  slot = accumulate_gradient(slot, grad, false);
}

void check_gradient(const Node& producer, const Edge& edge, const Tensor& grad, std::size_t input_index) {
  const OutputMeta& expected = edge.node->output_meta()[static_cast<std::size_t>(edge.input_nr)];
  check(grad.shape() == expected.shape && grad.dtype() == expected.dtype,
        "{} backward: gradient for input {} has shape {} and dtype {}, expected shape {} and dtype {}", producer.name(),
        input_index, grad.shape().str(), dtype_name(grad.dtype()), expected.shape.str(), dtype_name(expected.dtype));
}

}  // namespace

Tensor accumulate_gradient(const Tensor& accumulated, const Tensor& grad, bool copy_first) {
  if (!accumulated.defined()) return copy_first ? grad.detach().clone() : grad;
  if (accumulated.shape() == grad.shape() && kernels::cpu::eltwise_supported(accumulated) &&
      kernels::cpu::eltwise_supported(grad))
    return kernels::cpu::add_same_shape(accumulated, grad);
  return kernels::routed::add(accumulated, grad);
}

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots, bool retain_graph) {
  check(grad_roots.empty() || grad_roots.size() == roots.size(), "backward: {} roots but {} gradients", roots.size(),
        grad_roots.size());
  NoGradGuard no_grad;

  // Seed gradients for the roots' edges.
  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  std::vector<Edge> root_edges;
  for (std::size_t i = 0; i < roots.size(); ++i) {
    const Tensor& root = roots[i];
    check(root.defined() && root.requires_grad(),
          "backward: tensor {} does not require grad and has no grad_fn (did a parameter miss set_requires_grad, or "
          "did the forward run under NoGradGuard?)",
          root.defined() ? root.shape().str() : std::string("(undefined)"));
    Tensor grad = i < grad_roots.size() ? grad_roots[i] : Tensor();
    if (!grad.defined()) {
      check(root.numel() == 1,
            "backward: a gradient must be given for a root with {} elements (shape {}); only one-element roots default "
            "to 1",
            root.numel(), root.shape().str());
      grad = Tensor::ones(root.shape(), TensorOptions{root.dtype(), root.device()});
    }
    check(grad.shape() == root.shape(), "backward: gradient shape {} does not match root shape {}", grad.shape().str(),
          root.shape().str());
    Edge edge = gradient_edge(root);
    auto& slots = buffers[edge.node.get()];
    slots.resize(static_cast<std::size_t>(edge.node->num_outputs()));
    accumulate(slots, edge.input_nr, grad.to(root.dtype()));
    root_edges.push_back(edge);
  }

  // Count dependencies: how many edges lead into each reachable node.
  std::unordered_map<Node*, int> dependencies;
  std::vector<Node*> stack;
  std::unordered_map<Node*, bool> seen;
  for (const auto& e : root_edges)
    if (!seen[e.node.get()]) {
      seen[e.node.get()] = true;
      stack.push_back(e.node.get());
    }
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    for (const auto& e : node->next_edges()) {
      if (!e.valid()) continue;
      ++dependencies[e.node.get()];
      if (!seen[e.node.get()]) {
        seen[e.node.get()] = true;
        stack.push_back(e.node.get());
      }
    }
  }

  std::priority_queue<Node*, std::vector<Node*>, ReadyOrder> ready;
  for (const auto& e : root_edges)
    if (dependencies[e.node.get()] == 0) {
      dependencies[e.node.get()] = -1;  // queued
      ready.push(e.node.get());
    }

  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    check(!node->released,
          "{} backward: the graph was freed by an earlier backward; pass retain_graph=true to the first backward to "
          "run it twice",
          node->name());
    std::vector<Tensor> grads = std::move(buffers[node]);
    buffers.erase(node);
    grads.resize(static_cast<std::size_t>(node->num_outputs()));
    for (int i = 0; i < node->num_outputs(); ++i) {
      auto& g = grads[static_cast<std::size_t>(i)];
      const OutputMeta& meta = node->output_meta()[static_cast<std::size_t>(i)];
      if (!g.defined()) g = Tensor::zeros(meta.shape, TensorOptions{meta.dtype, meta.device});
      auto hooks = node->pre_hooks().find(i);
      if (hooks != node->pre_hooks().end())
        for (auto& hook : hooks->second) {
          Tensor changed = hook(g);
          if (!changed.defined()) continue;
          check(changed.shape() == meta.shape && changed.dtype() == meta.dtype,
                "gradient hook on output {} of {}: returned a gradient of shape {} and dtype {}, expected shape {} "
                "and dtype {}",
                i, node->name(), changed.shape().str(), dtype_name(changed.dtype()), meta.shape.str(),
                dtype_name(meta.dtype));
          g = changed;
        }
    }
    OpProfiler& profiler = OpProfiler::instance();
    const double started = profiler.enabled() ? synchronized_now_ms() : 0.0;
    std::vector<Tensor> input_grads = node->apply(grads);
    if (profiler.enabled()) profiler.add_backward(node->name(), synchronized_now_ms() - started);
    grads.clear();
    // Accumulators (no next edges) belong to their leaf and outlive any one graph.
    if (!retain_graph && !node->next_edges().empty()) {
      node->release_saved();
      node->released = true;
    }
    const auto& edges = node->next_edges();
    check(input_grads.size() <= edges.size(), "{} backward: returned {} gradients for {} inputs", node->name(),
          input_grads.size(), edges.size());
    for (std::size_t i = 0; i < edges.size(); ++i) {
      const Edge& e = edges[i];
      if (!e.valid()) continue;
      if (i < input_grads.size() && input_grads[i].defined()) {
        check_gradient(*node, e, input_grads[i], i);
        auto& slots = buffers[e.node.get()];
        slots.resize(static_cast<std::size_t>(e.node->num_outputs()));
        accumulate(slots, e.input_nr, input_grads[i]);
      }
      if (--dependencies[e.node.get()] == 0) ready.push(e.node.get());
    }
  }
  // The backward pass was timed node by node: the next forward mark starts from here, so it does
  // not count the backward again.
  if (OpProfiler::instance().enabled()) OpProfiler::instance().restart_clock();
}

}  // namespace tlk::autograd
