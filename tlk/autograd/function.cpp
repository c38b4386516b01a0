#include "tlk/autograd/function.h"

#include "tlk/tensor/error.h"

namespace tlk::autograd {

std::vector<Tensor> ClosureNode::apply(const std::vector<Tensor>& grads) {
  check(static_cast<bool>(backward_),
        "{} backward: the graph was freed by an earlier backward; pass retain_graph=true the first time", name_);
  return backward_(grads, *this);
}

void attach(const char* name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            ClosureNode::Backward backward) {
  if (!any_requires_grad(inputs)) return;
  record(std::make_shared<ClosureNode>(name, std::move(backward)), inputs, outputs);
}

}  // namespace tlk::autograd
