#include "tlk/autograd/node.h"

#include <atomic>

#include "tlk/autograd/accumulate_grad.h"
#include "tlk/autograd/grad_mode.h"
#include "tlk/tensor/error.h"

namespace tlk::autograd {

namespace {
std::atomic<std::uint64_t> next_sequence_nr{0};
thread_local bool grad_mode_enabled = true;
}  // namespace

bool GradMode::is_enabled() { return grad_mode_enabled; }
void GradMode::set_enabled(bool enabled) { grad_mode_enabled = enabled; }

Node::Node() : sequence_nr_(next_sequence_nr.fetch_add(1)) {}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Edge gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  auto& meta = *t.impl().autograd;
  if (meta.grad_fn) return {meta.grad_fn, meta.output_nr};
  std::shared_ptr<Node> acc = meta.accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
    meta.accumulator = acc;
  }
  return {acc, 0};
}

void record(const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs) {
  node->next_edges_.clear();
  for (const auto& t : inputs) node->next_edges_.push_back(gradient_edge(t));
  node->output_meta_.clear();
  for (int i = 0; i < static_cast<int>(outputs.size()); ++i) {
    const Tensor& out = outputs[static_cast<std::size_t>(i)];
    node->output_meta_.push_back({out.shape(), out.dtype(), out.device()});
    auto& impl = out.impl();
    check(!impl.autograd || !impl.autograd->grad_fn, "{}: output {} already belongs to another graph node",
          node->name(), i);
    if (!impl.autograd) impl.autograd = std::make_shared<AutogradMeta>();
    impl.autograd->grad_fn = node;
    impl.autograd->output_nr = i;
  }
}

}  // namespace tlk::autograd
