#pragma once
#include "tlk/kernels/pool_params.h"
#include "tlk/kernels/ref/pool3d.h"
#include "tlk/tensor/tensor.h"

/// 3D max and average pooling on the GPU with the names, signatures and results of
/// kernels/ref/pool3d.h: TLK's own kernels (pool3d_launch.cu), since ref's max-pool backward takes the
/// argmax indices rather than (x, y) as cuDNN's does. Inputs f32 or f64, plain or channels-last (read
/// through a plain copy); results are new plain tensors, indices i64, all on the input's GPU.
namespace tlk::kernels::cuda {

/// Output and per-output argmax (flat d * H * W + h * W + w within its (n, c) volume, i64).
using MaxPool3dResult = ref::MaxPool3dResult;

/// Max pooling; padded positions never win, ties go to the first maximum in (d, h, w) order, NaN wins.
/// Example: `auto [y, idx] = cuda::max_pool3d_forward(x, Pool3dOptions{{2, 2, 2}});`
MaxPool3dResult max_pool3d_forward(const Tensor& input, const Pool3dOptions& opt);
/// Gradient w.r.t. the input (of `input_shape`): each output gradient is added at its argmax.
Tensor max_pool3d_backward(const Tensor& grad_output, const Tensor& indices, const Shape& input_shape);

/// Average pooling; the divisor follows `opt.count_include_pad`.
Tensor avg_pool3d_forward(const Tensor& input, const Pool3dOptions& opt);
/// Gradient w.r.t. the input (of `input_shape`).
Tensor avg_pool3d_backward(const Tensor& grad_output, const Shape& input_shape, const Pool3dOptions& opt);

/// Adaptive average pooling to `output_size` with PyTorch's bins (Note [Adaptive pooling bins]).
Tensor adaptive_avg_pool3d_forward(const Tensor& input, const Int3& output_size);
/// Gradient w.r.t. the input (of `input_shape`); the output size is read from grad_output.
Tensor adaptive_avg_pool3d_backward(const Tensor& grad_output, const Shape& input_shape);

}  // namespace tlk::kernels::cuda
