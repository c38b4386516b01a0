#include "tlk/autograd/saved_tensor.h"

#include "tlk/tensor/error.h"

namespace tlk::autograd {

SavedTensor::SavedTensor(const Tensor& tensor, const char* op) : op_(op), defined_(tensor.defined()) {
  if (!tensor.defined()) return;
  tensor_ = tensor.detach();
  version_ = tensor.version();
}

Tensor SavedTensor::unpack() const {
  if (!defined_) return Tensor();
  check(tensor_.defined(),
        "{} backward: its saved tensors were freed by an earlier backward; call backward(..., retain_graph=true) "
        "the first time to run backward twice",
        op_);
  check(tensor_.version() == version_,
        "{} backward: a tensor of shape {} saved for the gradient was modified in place after the forward pass "
        "(version {} when saved, {} now); use an out-of-place op or clone() it first",
        op_, tensor_.shape().str(), version_, tensor_.version());
  return tensor_;
}

}  // namespace tlk::autograd
