#pragma once
#include <memory>

#include "tlk/autograd/node.h"

namespace tlk::autograd {

/// The node at a leaf: adds the incoming gradient to the leaf's `grad()` after its hooks ran.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf);
  const char* name() const override { return "AccumulateGrad"; }
  std::vector<Tensor> apply(const std::vector<Tensor>& grad_outputs) override;

 private:
  std::shared_ptr<TensorImpl> leaf_;
};

}  // namespace tlk::autograd
