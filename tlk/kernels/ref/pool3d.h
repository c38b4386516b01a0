#pragma once
#include "tlk/kernels/pool_params.h"
#include "tlk/tensor/tensor.h"

/// Reference 3D pooling: plain loops over [N, C, D, H, W], sums accumulated in double (the oracle
/// for faster kernels). Every function returns a new contiguous tensor.
namespace tlk::kernels::ref {

/// Max pooling's output and, per output element, the flat index (d * H * W + h * W + w) of the
/// chosen input element within its (n, c) volume, as an i64 tensor of the output's shape.
struct MaxPool3dResult {
  Tensor output;
  Tensor indices;
};

/// Max pooling; padded positions never win, ties go to the first maximum in (d, h, w) order.
/// Example: `auto [y, idx] = max_pool3d_forward(x, Pool3dOptions{{2, 2, 2}});`
MaxPool3dResult max_pool3d_forward(const Tensor& input, const Pool3dOptions& opt);
/// Gradient w.r.t. the input (of `input_shape`): each output gradient is added at its argmax.
Tensor max_pool3d_backward(const Tensor& grad_output, const Tensor& indices, const Shape& input_shape);

/// Average pooling; the divisor follows `opt.count_include_pad`.
Tensor avg_pool3d_forward(const Tensor& input, const Pool3dOptions& opt);
/// Gradient w.r.t. the input (of `input_shape`).
Tensor avg_pool3d_backward(const Tensor& grad_output, const Shape& input_shape, const Pool3dOptions& opt);

/// Adaptive average pooling to `output_size` with PyTorch's bins (see Note [Adaptive pooling bins]).
Tensor adaptive_avg_pool3d_forward(const Tensor& input, const Int3& output_size);
/// Gradient w.r.t. the input (of `input_shape`); the output size is read from grad_output.
Tensor adaptive_avg_pool3d_backward(const Tensor& grad_output, const Shape& input_shape);

}  // namespace tlk::kernels::ref
