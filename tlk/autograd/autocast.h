#pragma once
// Mixed precision on the GPU, as PyTorch's torch.autocast("cuda").
//
// Note [Autocast]: inside an AutocastGuard(bf16 or f16), the ops whose cost is tensor-core math
// (conv3d, conv_transpose3d) take their floating operands in the guard's dtype: f32 CUDA operands
// are cast with Tensor::to, which is recorded, so gradients reach the f32 master weights as f32.
// The ops that need range and precision (the losses, softmax, log_softmax, linear) and those whose
// kernels are f32/f64 only (pooling, upsampling, dropout) widen 16-bit inputs to f32, inside a guard
// or not. Every other op (norms, activations, cat, elementwise
// arithmetic) keeps the dtype it is given: a bf16 activation stays bf16 through instance norm
// (whose weight, bias and statistics stay f32) and leaky ReLU to the next convolution. CPU tensors are
// never cast: 16-bit tensors exist on the GPU only.
#include <string>

#include "tlk/tensor/dtype.h"
#include "tlk/tensor/tensor.h"

namespace tlk::autograd {

/// Turns autocast on for its scope on this thread (Note [Autocast]); `dtype` is bf16 or f16, or
/// f32 for a guard that turns it off. Example: `{ AutocastGuard amp(DType::bf16); loss = model(x); }`
class AutocastGuard {
 public:
  explicit AutocastGuard(DType dtype);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  DType previous_;
};

/// The dtype autocast lowers to on this thread, or f32 when it is off.
DType autocast_dtype();

/// A training precision by name: "f32", "bf16" or "f16"; anything else is a tlk::Error
/// "`what` must be f32, bf16 or f16, got '<text>'". Example: `parse_precision(v, "unet_step: --precision")`
DType parse_precision(const std::string& text, const std::string& what);

/// Whether autocast would lower any of `ts`: it is on and one of them is a defined f32 CUDA tensor.
bool autocast_lowers(std::initializer_list<const Tensor*> ts);
/// `t` in the autocast dtype when autocast is on and `t` is an f32 CUDA tensor; `t` itself otherwise.
Tensor autocast_lower(const Tensor& t);
/// `t` as f32 when it is a 16-bit (bf16 or f16) tensor; `t` itself otherwise (whether or not
/// autocast is on).
Tensor widen_half(const Tensor& t);

}  // namespace tlk::autograd

namespace tlk {
using autograd::AutocastGuard;
}
