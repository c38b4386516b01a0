#include "tlk/autograd/function.h"

#include "tlk/autograd/grad_mode.h"
#include "tlk/autograd/profiler.h"
#include "tlk/tensor/error.h"

namespace tlk::autograd {

std::vector<Tensor> ClosureNode::apply(const std::vector<Tensor>& grads) {
  check(static_cast<bool>(backward_),
        "{} backward: the graph was freed by an earlier backward; pass retain_graph=true the first time", name_);
  return backward_(grads, *this);
}

void attach(const char* name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            ClosureNode::Backward backward) {
  // Conversions inside backward (gradient clones) run with grad mode off: they belong to the node.
  if (OpProfiler::instance().enabled() && GradMode::is_enabled()) OpProfiler::instance().mark_forward(name);
  if (!any_requires_grad(inputs)) return;
  record(std::make_shared<ClosureNode>(name, std::move(backward)), inputs, outputs);
}

}  // namespace tlk::autograd
