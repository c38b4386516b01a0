#include "tlk/autograd/ops/conv3d.h"

#include <cmath>

#include "tlk/autograd/autocast.h"
#include "tlk/autograd/ops/activation.h"
#include "tlk/autograd/ops/arith.h"
#include "tlk/autograd/ops/op_support.h"
#include "tlk/autograd/profiler.h"
#include "tlk/kernels/cpu/conv3d.h"
#include "tlk/kernels/cpu/conv3d_backward_weights.h"
#include "tlk/kernels/cpu/conv_transpose3d.h"
#include "tlk/kernels/cpu/eltwise.h"
#include "tlk/kernels/ref/conv3d.h"
#include "tlk/tensor/blocked_format.h"

namespace tlk::ops {

// Note [Conv3d dispatch]: f32 on the CPU takes the fast path (kernels/cpu: oneDNN forward and
// backward-data in blocked layouts, the fastest backward-weights this CPU has); f64 takes the
// reference kernels, which are the oracle the fast path is tested against.

namespace {

// The gradients of conv3d's input, weight and bias from the gradient of its (pre-activation) output.
Grads conv3d_backward(const Tensor& grad, const Tensor& x, const Tensor& w, const Conv3dOptions& opt, bool fast,
                      const Node& self) {
  Grads out(3);
  if (fast) {
    namespace cpu = kernels::cpu;
    if (self.needs_input_grad(0)) out[0] = cpu::conv3d_backward_data(grad, w, x.shape(), opt);
    if (self.needs_input_grad(1)) out[1] = cpu::conv3d_backward_weights(grad, x, w.shape(), opt);
    if (self.needs_input_grad(2)) out[2] = cpu::conv3d_backward_bias(grad);
    return out;
  }
  using autograd::profiled_part;
  if (self.needs_input_grad(0))
    out[0] = profiled_part("conv3d/data", [&] { return k::conv3d_backward_data(grad, w, x.shape(), opt); });
  if (self.needs_input_grad(1))
    out[1] = profiled_part("conv3d/weights", [&] { return k::conv3d_backward_weights(grad, x, w.shape(), opt); });
  if (self.needs_input_grad(2)) out[2] = profiled_part("conv3d/bias", [&] { return k::conv3d_backward_bias(grad); });
  return out;
}

// The layout the forward chose for y: a gradient that arrives in another layout (from a loss that
// works on plain memory) is converted once, rather than by each backward kernel.
std::shared_ptr<const BlockedFormat> format_of(const Tensor& y) {
  return y.layout() == Layout::blocked ? y.impl().blocked : nullptr;
}
Tensor in_format_of(const Tensor& g, const std::shared_ptr<const BlockedFormat>& format) {
  return format && g.layout() != Layout::blocked ? g.to(*format) : g;
}

// Note [Channels-last gradients]: a GPU convolution with a channels-last output (Note [Channels-last
// convolutions] in kernels/cuda/conv3d.cpp) gets its output gradient channels-last as well; one
// that arrives plain (from a loss, which works on plain memory) is converted once here, so the data
// gradient, and with it the rest of the backward pass, stays channels-last.
bool channels_last_on_gpu(const Tensor& y) { return y.device().is_cuda() && has_channels_last_strides(y); }
Tensor in_output_layout(const Tensor& g, bool channels_last) {
  return channels_last && !has_channels_last_strides(g) ? g.to(Layout::channels_last) : g;
}

}  // namespace

Tensor conv3d(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv3dOptions& opt) {
  if (autograd::autocast_lowers({&input, &weight, &bias}))  // Note [Autocast]
    return conv3d(autograd::autocast_lower(input), autograd::autocast_lower(weight), autograd::autocast_lower(bias),
                  opt);
  const bool fast = kernels::cpu::conv3d_supported(input, weight);
  Tensor y =
      fast ? kernels::cpu::conv3d_forward(input, weight, bias, opt) : k::conv3d_forward(input, weight, bias, opt);
  attach("conv3d", {input, weight, bias}, {y},
         [xs = SavedTensor(input, "conv3d"), ws = SavedTensor(weight, "conv3d"), opt, fast, y_format = format_of(y),
          channels_last = channels_last_on_gpu(y)](const Grads& g, const Node& self) {
           return conv3d_backward(fast ? in_format_of(g[0], y_format) : in_output_layout(g[0], channels_last),
                                  xs.unpack(), ws.unpack(), opt, fast, self);
         });
  return y;
}

Tensor conv3d_leaky_relu(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv3dOptions& opt,
                         double slope) {
  check(std::isfinite(slope) && slope >= 0, "conv3d_leaky_relu: negative_slope must be finite and >= 0, got {}", slope);
  if (!kernels::cpu::conv3d_supported(input, weight)) return leaky_relu(conv3d(input, weight, bias, opt), slope);
  kernels::cpu::Conv3dPostOps post;
  post.leaky_relu_slope = slope;
  Tensor y = kernels::cpu::conv3d_forward(input, weight, bias, opt, post);
  attach("conv3d_leaky_relu", {input, weight, bias}, {y},
         [xs = SavedTensor(input, "conv3d_leaky_relu"), ws = SavedTensor(weight, "conv3d_leaky_relu"),
          ys = SavedTensor(y, "conv3d_leaky_relu"), opt, slope](const Grads& g, const Node& self) {
           const Tensor y_saved = ys.unpack();
           // Note [Training-safe fusion]: the activation's derivative from the fused output alone.
           const Tensor pre = kernels::cpu::leaky_relu_backward(in_format_of(g[0], format_of(y_saved)), y_saved, slope);
           return conv3d_backward(pre, xs.unpack(), ws.unpack(), opt, true, self);
         });
  return y;
}

Tensor conv3d_add(const Tensor& input, const Tensor& weight, const Tensor& bias, const Tensor& residual,
                  const Conv3dOptions& opt) {
  if (!kernels::cpu::conv3d_supported(input, weight) || residual.dtype() != DType::f32 || !residual.device().is_cpu())
    return add(conv3d(input, weight, bias, opt), residual);
  kernels::cpu::Conv3dPostOps post;
  post.sum_with = residual;
  Tensor y = kernels::cpu::conv3d_forward(input, weight, bias, opt, post);
  attach("conv3d_add", {input, weight, bias, residual}, {y},
         [xs = SavedTensor(input, "conv3d_add"), ws = SavedTensor(weight, "conv3d_add"), opt, y_format = format_of(y),
          residual_format = format_of(residual)](const Grads& g, const Node& self) {
           const Tensor grad = in_format_of(g[0], y_format);
           Grads out = conv3d_backward(grad, xs.unpack(), ws.unpack(), opt, true, self);
           // d(conv + residual)/d residual is the identity, returned in the residual's own layout.
           if (self.needs_input_grad(3))
             out.push_back(residual_format ? grad.to(*residual_format) : grad.to(Layout::plain));
           return out;
         });
  return y;
}

// Note [Transposed convolution as convolution] in kernels/ref/conv3d.h. f32 on the CPU takes the fast
// path (kernels/cpu/conv_transpose3d.h: oneDNN's deconvolution primitives in blocked layouts), f64 the
// reference kernels, as in Note [Conv3d dispatch].
Tensor conv_transpose3d(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv3dOptions& opt) {
  if (autograd::autocast_lowers({&input, &weight, &bias}))  // Note [Autocast]
    return conv_transpose3d(autograd::autocast_lower(input), autograd::autocast_lower(weight),
                            autograd::autocast_lower(bias), opt);
  const bool fast = kernels::cpu::conv_transpose3d_supported(input, weight);
  Tensor y = fast ? kernels::cpu::conv_transpose3d_forward(input, weight, bias, opt)
                  : k::conv_transpose3d_forward(input, weight, bias, opt);
  attach("conv_transpose3d", {input, weight, bias}, {y},
         [xs = SavedTensor(input, "conv_transpose3d"), ws = SavedTensor(weight, "conv_transpose3d"), opt, fast,
          channels_last = channels_last_on_gpu(y)](const Grads& g_in, const Node& self) {
           Grads out(3);
           const Grads g{fast ? g_in[0] : in_output_layout(g_in[0], channels_last)};
           if (fast) {
             namespace cpu = kernels::cpu;
             const Tensor w = ws.unpack();
             if (self.needs_input_grad(0))
               out[0] = cpu::conv_transpose3d_backward_data(g[0], w, xs.unpack().shape(), opt);
             if (self.needs_input_grad(1)) {
               auto grads =
                   cpu::conv_transpose3d_backward_weights(g[0], xs.unpack(), w.shape(), opt, self.needs_input_grad(2));
               out[1] = grads.weight;
               out[2] = grads.bias;
             } else if (self.needs_input_grad(2)) {
               out[2] = cpu::conv3d_backward_bias(g[0]);
             }
             return out;
           }
           Conv3dOptions plain = opt;
           plain.output_padding = {0, 0, 0};
           if (self.needs_input_grad(0)) {
             // An output_padding of at least the stride (allowed below the dilation) adds output rows
             // past the last full window; the convolution then yields extra rows that match no input.
             const Shape in = xs.unpack().shape();
             Tensor dx = k::conv3d_forward(g[0], ws.unpack(), Tensor(), plain);
             out[0] = dx.shape() == in ? dx : make_view(dx, in, dx.strides(), 0).to(dx.layout());
           }
           if (self.needs_input_grad(1))
             out[1] = k::conv3d_backward_weights(xs.unpack(), g[0], ws.unpack().shape(), plain);
           if (self.needs_input_grad(2)) out[2] = k::conv3d_backward_bias(g[0]);
           return out;
         });
  return y;
}

}  // namespace tlk::ops
