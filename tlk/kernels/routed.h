#pragma once
// The kernels the autograd ops call (`k::...` in autograd/ops): each function takes the CUDA kernel
// when its tensors live on a GPU and the reference kernel otherwise, with kernels/ref's names and
// signatures. Functions that have no GPU version come from kernels/ref through the using-directive
// (for GPU tensors they fail with ref's "expected the CPU" message, naming the op).
//
// Note [Routing by device]: qualified lookup of `routed::f` finds the declarations below first and
// only falls back to ref's through `using namespace ref` when this namespace declares no `f`; so each
// function routed here must route every overload ref has. The CPU fast path (kernels/cpu) is chosen
// earlier, inside each op, by its `*_supported` predicate, which is false for GPU tensors.
#include "tlk/kernels/ref/conv3d.h"
#include "tlk/kernels/ref/dropout.h"
#include "tlk/kernels/ref/elementwise.h"
#include "tlk/kernels/ref/linear.h"
#include "tlk/kernels/ref/losses.h"
#include "tlk/kernels/ref/norm.h"
#include "tlk/kernels/ref/pool3d.h"
#include "tlk/kernels/ref/soft_dice.h"
#include "tlk/kernels/ref/softmax.h"
#include "tlk/kernels/ref/upsample3d.h"

#ifdef TLK_HAVE_CUDA
#include "tlk/kernels/cuda/conv3d.h"
#include "tlk/kernels/cuda/dropout.h"
#include "tlk/kernels/cuda/elementwise.h"
#include "tlk/kernels/cuda/linear.h"
#include "tlk/kernels/cuda/losses.h"
#include "tlk/kernels/cuda/norm.h"
#include "tlk/kernels/cuda/pool3d.h"
#include "tlk/kernels/cuda/softmax.h"
#include "tlk/kernels/cuda/upsample3d.h"
#endif

namespace tlk::kernels::routed {

using namespace ref;  // NOLINT: the fallback of Note [Routing by device]

#ifdef TLK_HAVE_CUDA
/// True when `t` is a defined tensor on a GPU.
inline bool on_gpu(const Tensor& t) { return t.defined() && t.device().is_cuda(); }

#define TLK_ROUTE(condition, call) return (condition) ? cuda::call : ref::call

// ---- Elementwise --------------------------------------------------------------------------------------
/// `a op b`; a one-element CPU operand (a scalar made on the host) follows the other operand to its GPU.
inline Tensor binary(const Tensor& a, const Tensor& b, BinaryOp op) {
  if (on_gpu(a) && !on_gpu(b) && b.numel() == 1) return cuda::binary(a, b.to(a.device()), op);
  if (on_gpu(b) && !on_gpu(a) && a.numel() == 1) return cuda::binary(a.to(b.device()), b, op);
  TLK_ROUTE(on_gpu(a) || on_gpu(b), binary(a, b, op));
}
inline Tensor binary_scalar(const Tensor& a, double s, BinaryOp op, bool scalar_first = false) {
  TLK_ROUTE(on_gpu(a), binary_scalar(a, s, op, scalar_first));
}
inline Tensor add(const Tensor& a, const Tensor& b) { return routed::binary(a, b, BinaryOp::add); }
inline Tensor sub(const Tensor& a, const Tensor& b) { return routed::binary(a, b, BinaryOp::sub); }
inline Tensor mul(const Tensor& a, const Tensor& b) { return routed::binary(a, b, BinaryOp::mul); }
inline Tensor div(const Tensor& a, const Tensor& b) { return routed::binary(a, b, BinaryOp::div); }
inline Tensor unary(const Tensor& x, UnaryOp op, double alpha = 0.0) { TLK_ROUTE(on_gpu(x), unary(x, op, alpha)); }
inline Tensor unary_backward(const Tensor& grad, const Tensor& x, const Tensor& y, UnaryOp op, double alpha = 0.0) {
  TLK_ROUTE(on_gpu(grad), unary_backward(grad, x, y, op, alpha));
}
inline Tensor sum_to(const Tensor& grad, const Shape& shape) { TLK_ROUTE(on_gpu(grad), sum_to(grad, shape)); }
inline Tensor expand_to(const Tensor& x, const Shape& shape) { TLK_ROUTE(on_gpu(x), expand_to(x, shape)); }
inline Tensor sum(const Tensor& x, const std::vector<int>& axes, bool keepdim) {
  TLK_ROUTE(on_gpu(x), sum(x, axes, keepdim));
}
inline Tensor where(const Tensor& mask, const Tensor& a, const Tensor& b) { TLK_ROUTE(on_gpu(a), where(mask, a, b)); }

// ---- Convolution ----------------------------------------------------------------------------------------
inline Tensor conv3d_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv3dOptions& opt) {
  TLK_ROUTE(on_gpu(input), conv3d_forward(input, weight, bias, opt));
}
inline Tensor conv3d_backward_data(const Tensor& grad_output, const Tensor& weight, const Shape& input_shape,
                                   const Conv3dOptions& opt) {
  TLK_ROUTE(on_gpu(grad_output), conv3d_backward_data(grad_output, weight, input_shape, opt));
}
inline Tensor conv3d_backward_weights(const Tensor& grad_output, const Tensor& input, const Shape& weight_shape,
                                      const Conv3dOptions& opt) {
  TLK_ROUTE(on_gpu(grad_output), conv3d_backward_weights(grad_output, input, weight_shape, opt));
}
inline Tensor conv3d_backward_bias(const Tensor& grad_output) {
  TLK_ROUTE(on_gpu(grad_output), conv3d_backward_bias(grad_output));
}
inline Tensor conv_transpose3d_forward(const Tensor& input, const Tensor& weight, const Tensor& bias,
                                       const Conv3dOptions& opt) {
  TLK_ROUTE(on_gpu(input), conv_transpose3d_forward(input, weight, bias, opt));
}

// ---- Pooling, upsampling, dropout, linear ------------------------------------------------------------------
inline MaxPool3dResult max_pool3d_forward(const Tensor& input, const Pool3dOptions& opt) {
  if (on_gpu(input)) {
    auto r = cuda::max_pool3d_forward(input, opt);
    return MaxPool3dResult{r.output, r.indices};
  }
  return ref::max_pool3d_forward(input, opt);
}
inline Tensor max_pool3d_backward(const Tensor& grad_output, const Tensor& indices, const Shape& input_shape) {
  TLK_ROUTE(on_gpu(grad_output), max_pool3d_backward(grad_output, indices, input_shape));
}
inline Tensor avg_pool3d_forward(const Tensor& input, const Pool3dOptions& opt) {
  TLK_ROUTE(on_gpu(input), avg_pool3d_forward(input, opt));
}
inline Tensor avg_pool3d_backward(const Tensor& grad_output, const Shape& input_shape, const Pool3dOptions& opt) {
  TLK_ROUTE(on_gpu(grad_output), avg_pool3d_backward(grad_output, input_shape, opt));
}
inline Tensor adaptive_avg_pool3d_forward(const Tensor& input, const Int3& output_size) {
  TLK_ROUTE(on_gpu(input), adaptive_avg_pool3d_forward(input, output_size));
}
inline Tensor adaptive_avg_pool3d_backward(const Tensor& grad_output, const Shape& input_shape) {
  TLK_ROUTE(on_gpu(grad_output), adaptive_avg_pool3d_backward(grad_output, input_shape));
}
inline Tensor upsample3d_forward(const Tensor& input, const Upsample3dOptions& opt) {
  TLK_ROUTE(on_gpu(input), upsample3d_forward(input, opt));
}
inline Tensor upsample3d_backward(const Tensor& grad_output, const Shape& input_shape, const Upsample3dOptions& opt) {
  TLK_ROUTE(on_gpu(grad_output), upsample3d_backward(grad_output, input_shape, opt));
}
inline DropoutForward dropout_forward(const Tensor& input, double p, Generator& gen) {
  if (on_gpu(input)) {
    auto r = cuda::dropout_forward(input, p, gen);
    return DropoutForward{r.output, r.mask};
  }
  return ref::dropout_forward(input, p, gen);
}
inline Tensor dropout_backward(const Tensor& grad_output, const Tensor& mask) {
  TLK_ROUTE(on_gpu(grad_output), dropout_backward(grad_output, mask));
}
inline Tensor matmul(const Tensor& a, const Tensor& b) { TLK_ROUTE(on_gpu(a), matmul(a, b)); }
inline Tensor linear_forward(const Tensor& input, const Tensor& weight, const Tensor& bias) {
  TLK_ROUTE(on_gpu(input), linear_forward(input, weight, bias));
}
inline Tensor linear_backward_input(const Tensor& grad_output, const Tensor& weight) {
  TLK_ROUTE(on_gpu(grad_output), linear_backward_input(grad_output, weight));
}
inline Tensor linear_backward_weights(const Tensor& grad_output, const Tensor& input) {
  TLK_ROUTE(on_gpu(grad_output), linear_backward_weights(grad_output, input));
}
inline Tensor linear_backward_bias(const Tensor& grad_output) {
  TLK_ROUTE(on_gpu(grad_output), linear_backward_bias(grad_output));
}

// ---- Normalization, softmax, losses -------------------------------------------------------------------
inline NormForward instance_norm_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, double eps) {
  TLK_ROUTE(on_gpu(input), instance_norm_forward(input, weight, bias, eps));
}
inline NormGrads instance_norm_backward(const Tensor& grad_output, const Tensor& input, const Tensor& weight,
                                        const Tensor& mean, const Tensor& inv_std) {
  TLK_ROUTE(on_gpu(grad_output), instance_norm_backward(grad_output, input, weight, mean, inv_std));
}
inline NormForward batch_norm_forward(const Tensor& input, const Tensor& weight, const Tensor& bias,
                                      const Tensor& running_mean, const Tensor& running_var,
                                      const BatchNormOptions& opt) {
  TLK_ROUTE(on_gpu(input), batch_norm_forward(input, weight, bias, running_mean, running_var, opt));
}
inline NormGrads batch_norm_backward(const Tensor& grad_output, const Tensor& input, const Tensor& weight,
                                     const Tensor& mean, const Tensor& inv_std, bool training) {
  TLK_ROUTE(on_gpu(grad_output), batch_norm_backward(grad_output, input, weight, mean, inv_std, training));
}
inline Tensor softmax_forward(const Tensor& input, int dim) { TLK_ROUTE(on_gpu(input), softmax_forward(input, dim)); }
inline Tensor log_softmax_forward(const Tensor& input, int dim) {
  TLK_ROUTE(on_gpu(input), log_softmax_forward(input, dim));
}
inline Tensor softmax_backward(const Tensor& grad_output, const Tensor& output, int dim) {
  TLK_ROUTE(on_gpu(output), softmax_backward(grad_output, output, dim));
}
inline Tensor log_softmax_backward(const Tensor& grad_output, const Tensor& output, int dim) {
  TLK_ROUTE(on_gpu(output), log_softmax_backward(grad_output, output, dim));
}
inline Tensor cross_entropy_forward(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& options) {
  TLK_ROUTE(on_gpu(logits), cross_entropy_forward(logits, target, options));
}
inline Tensor cross_entropy_backward(const Tensor& grad_output, const Tensor& logits, const Tensor& target,
                                     const CrossEntropyOptions& options) {
  TLK_ROUTE(on_gpu(logits), cross_entropy_backward(grad_output, logits, target, options));
}
inline Tensor bce_with_logits_forward(const Tensor& logits, const Tensor& target, const BceOptions& options) {
  TLK_ROUTE(on_gpu(logits), bce_with_logits_forward(logits, target, options));
}
inline std::array<Tensor, 2> bce_with_logits_backward(const Tensor& grad_output, const Tensor& logits,
                                                      const Tensor& target, const BceOptions& options,
                                                      bool need_logits = true, bool need_target = false) {
  TLK_ROUTE(on_gpu(logits), bce_with_logits_backward(grad_output, logits, target, options, need_logits, need_target));
}
inline Tensor kl_div_with_temperature_forward(const Tensor& student_logits, const Tensor& teacher_logits,
                                              double temperature, const Tensor& weights = Tensor()) {
  TLK_ROUTE(on_gpu(student_logits),
            kl_div_with_temperature_forward(student_logits, teacher_logits, temperature, weights));
}
inline Tensor kl_div_with_temperature_backward(const Tensor& grad_output, const Tensor& student_logits,
                                               const Tensor& teacher_logits, double temperature,
                                               const Tensor& weights = Tensor()) {
  TLK_ROUTE(on_gpu(student_logits),
            kl_div_with_temperature_backward(grad_output, student_logits, teacher_logits, temperature, weights));
}
inline Tensor mse_loss_forward(const Tensor& a, const Tensor& b) { TLK_ROUTE(on_gpu(a), mse_loss_forward(a, b)); }
inline Tensor mse_loss_backward(const Tensor& grad_output, const Tensor& a, const Tensor& b) {
  TLK_ROUTE(on_gpu(a), mse_loss_backward(grad_output, a, b));
}
inline Tensor soft_dice_forward(const Tensor& logits, const Tensor& target, const SoftDiceOptions& options) {
  TLK_ROUTE(on_gpu(logits), soft_dice_forward(logits, target, options));
}
inline Tensor soft_dice_backward(const Tensor& grad_output, const Tensor& logits, const Tensor& target,
                                 const SoftDiceOptions& options) {
  TLK_ROUTE(on_gpu(logits), soft_dice_backward(grad_output, logits, target, options));
}

#undef TLK_ROUTE
#endif  // TLK_HAVE_CUDA

}  // namespace tlk::kernels::routed
