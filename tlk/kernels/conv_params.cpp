#include "tlk/kernels/conv_params.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tlk/tensor/error.h"

namespace tlk {

std::string Conv3dOptions::str() const {
  return fmt::format("stride {}, padding {}, dilation {}", stride, padding, dilation);
}

namespace {
void check_common(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv3dOptions& opt,
                  const char* op) {
  check(input.defined() && weight.defined(), "{}: input and weight must be defined", op);
  check(input.dim() == 5, "{}: expected a 5-D input [N, C, D, H, W], got {}-D with shape {}", op, input.dim(),
        input.shape().str());
  check(weight.dim() == 5, "{}: expected a 5-D weight, got {}-D with shape {}", op, weight.dim(), weight.shape().str());
  check(input.dtype() == weight.dtype() && (!bias.defined() || bias.dtype() == input.dtype()),
        "{}: mixed dtypes (input {}, weight {}{}); convert with to(DType)", op, dtype_name(input.dtype()),
        dtype_name(weight.dtype()), bias.defined() ? fmt::format(", bias {}", dtype_name(bias.dtype())) : "");
  check(input.device() == weight.device() && (!bias.defined() || bias.device() == input.device()),
        "{}: tensors on different devices (input {}, weight {})", op, input.device().str(), weight.device().str());
  for (int i = 0; i < 3; ++i) {
    check(opt.stride[i] >= 1 && opt.dilation[i] >= 1 && opt.padding[i] >= 0 && opt.output_padding[i] >= 0,
          "{}: invalid geometry ({}); strides and dilations must be >= 1, paddings >= 0", op, opt.str());
    check(weight.shape()[2 + i] >= 1, "{}: weight {} has an empty kernel", op, weight.shape().str());
  }
}
}  // namespace

Shape conv3d_output_shape(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv3dOptions& opt,
                          const char* op) {
  check_common(input, weight, bias, opt, op);
  check(opt.output_padding == Int3{0, 0, 0},
        "{}: output_padding {} is only meaningful for a transposed convolution, expected 0", op,
        fmt::format("{}", opt.output_padding));
  check(input.shape()[1] == weight.shape()[1], "{}: input has {} channels but weight expects {} (input {}, weight {})",
        op, input.shape()[1], weight.shape()[1], input.shape().str(), weight.shape().str());
  check(!bias.defined() || (bias.dim() == 1 && bias.shape()[0] == weight.shape()[0]),
        "{}: bias has shape {}, expected [{}]", op, bias.defined() ? bias.shape().str() : "", weight.shape()[0]);
  Shape out{input.shape()[0], weight.shape()[0], 0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    const std::int64_t padded = input.shape()[2 + i] + 2 * opt.padding[i];
    const std::int64_t span = opt.dilation[i] * (weight.shape()[2 + i] - 1) + 1;
    check(padded >= span,
          "{}: kernel {} (dilated extent {}) is larger than the padded input along axis {} ({} = {} + 2*{}); input {}",
          op, weight.shape().str(), span, i, padded, input.shape()[2 + i], opt.padding[i], input.shape().str());
    out[2 + i] = (padded - span) / opt.stride[i] + 1;
  }
  return out;
}

Shape conv_transpose3d_output_shape(const Tensor& input, const Tensor& weight, const Tensor& bias,
                                    const Conv3dOptions& opt, const char* op) {
  check_common(input, weight, bias, opt, op);
  check(input.shape()[1] == weight.shape()[0],
        "{}: input has {} channels but weight expects {} (input {}, weight {} is [in, out, kD, kH, kW])", op,
        input.shape()[1], weight.shape()[0], input.shape().str(), weight.shape().str());
  check(!bias.defined() || (bias.dim() == 1 && bias.shape()[0] == weight.shape()[1]),
        "{}: bias has shape {}, expected [{}]", op, bias.defined() ? bias.shape().str() : "", weight.shape()[1]);
  Shape out{input.shape()[0], weight.shape()[1], 0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    check(opt.output_padding[i] < std::max(opt.stride[i], opt.dilation[i]),
          "{}: output_padding {} must be smaller than stride or dilation along axis {}", op, opt.output_padding[i], i);
    out[2 + i] = (input.shape()[2 + i] - 1) * opt.stride[i] - 2 * opt.padding[i] +
                 opt.dilation[i] * (weight.shape()[2 + i] - 1) + opt.output_padding[i] + 1;
    check(out[2 + i] >= 1, "{}: output would be empty along axis {} (input {}, weight {}, {})", op, i,
          input.shape().str(), weight.shape().str(), opt.str());
  }
  return out;
}

}  // namespace tlk
