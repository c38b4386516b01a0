#pragma once
#include "tlk/tensor/tensor.h"

/// The CPU fast path of softmax and log-softmax over the channel axis (dim 1) of f32 tensors of rank
/// >= 2: oneDNN 2.6 softmax_forward/backward and logsoftmax_forward/backward primitives in the layout
/// the input comes in, plain, channels-last or blocked (axis 1 of nCdhw8c/nCdhw16c is fine for
/// oneDNN), with the result in that layout; plain inputs of rank > 2 take the reference loops (Note
/// [Plain softmax] in softmax.cpp) (Note [Stay blocked] in conv3d.h). Primitives are built once
/// per shape and layout (Note [Primitive cache]).
namespace tlk::kernels::cpu {

/// True when the fast path takes `x` and `dim`: an f32 CPU tensor of rank 2 to 12 with elements, and
/// dim 1 (or its negative equivalent). Other axes belong to the reference kernels.
bool softmax_supported(const Tensor& x, int dim);

/// exp(x - max) / Σ exp(x - max) over the channel axis, in x's layout.
/// Example: `Tensor p = cpu::softmax_forward(logits);`
Tensor softmax_forward(const Tensor& input);
/// x - max - log Σ exp(x - max) over the channel axis, in x's layout.
Tensor log_softmax_forward(const Tensor& input);
/// Input gradient y · (g - Σ g y) from the forward's output y, in y's layout (g converted when it differs).
Tensor softmax_backward(const Tensor& grad_output, const Tensor& output);
/// Input gradient g - exp(y) · Σ g from the forward's output y, in y's layout.
Tensor log_softmax_backward(const Tensor& grad_output, const Tensor& output);

}  // namespace tlk::kernels::cpu
