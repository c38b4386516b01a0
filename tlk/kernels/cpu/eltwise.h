#pragma once
#include "tlk/tensor/tensor.h"

/// The CPU fast path of the rectifiers (ReLU, leaky ReLU): OpenMP loops over the raw memory of f32
/// tensors in any dense layout, plain, channels-last or blocked (any oneDNN format), with the result in
/// that same layout (Note [Stay blocked] in conv3d.h). A blocked format's channel padding stays zero:
/// f(0) = 0, and a zero gradient times any slope is zero.
namespace tlk::kernels::cpu {

/// True when the fast path takes `x`: an f32 CPU tensor.
bool eltwise_supported(const Tensor& x);

/// max(x, 0) + negative_slope * min(x, 0), in x's layout (a strided view that is neither row-major nor
/// channels-last is read through a row-major copy). negative_slope = 0 is ReLU.
/// Example: `Tensor y = cpu::leaky_relu_forward(x, 0.01);`
Tensor leaky_relu_forward(const Tensor& x, double negative_slope);
/// grad_output * (saved > 0 ? 1 : negative_slope), in saved's layout (grad_output is converted to it
/// when it differs). `saved` is the forward's input, or, when negative_slope >= 0, its output: both are
/// > 0 at the same elements (Note [Rectifier backward from the output] in eltwise.cpp).
Tensor leaky_relu_backward(const Tensor& grad_output, const Tensor& saved, double negative_slope);

/// The scalar rectifier and its derivative as the loops compute them: f(x) = x > 0 ? x : slope * x, and
/// g * f'(x) read from `saved` (the input, or for slope >= 0 the output).
/// Note [Branch-free rectifier]: written as two selects of plain values and a multiply-add. Under the
/// default -ftrapping-math, GCC will not vectorise `x > 0 ? x : slope * x` (the multiply sits in a branch
/// and might trap), while this form vectorises and gives the same values (x + slope * 0 == x).
inline float leaky_relu_value(float x, float slope) {
  const float pos = x > 0.0f ? x : 0.0f, neg = x > 0.0f ? 0.0f : x;
  return pos + slope * neg;
}
inline float leaky_relu_grad(float g, float saved, float slope) {
  const float pos = saved > 0.0f ? g : 0.0f, neg = saved > 0.0f ? 0.0f : g;
  return pos + slope * neg;
}

/// max(x, 0) and its backward (`saved` the input or the output, as above).
inline Tensor relu_forward(const Tensor& x) { return leaky_relu_forward(x, 0.0); }
inline Tensor relu_backward(const Tensor& grad_output, const Tensor& saved) {
  return leaky_relu_backward(grad_output, saved, 0.0);
}

/// a + b for two f32 CPU tensors of one shape, in a's layout (b is converted when its layout differs,
/// a counted reorder for blocked formats): the engine sums gradients with it, so the gradients of a
/// blocked activation used twice (a UNet skip) stay blocked.
Tensor add_same_shape(const Tensor& a, const Tensor& b);

}  // namespace tlk::kernels::cpu
