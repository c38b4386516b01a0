#include "tlk/kernels/pool_params.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tlk/tensor/error.h"

namespace tlk {

std::string Pool3dOptions::str() const {
  return fmt::format("kernel {}, stride {}, padding {}", kernel, effective_stride(), padding);
}

void check_volume_shape(const Shape& shape, const char* op, const char* what) {
  check(shape.size() == 5, "{}: expected a 5-D {} [N, C, D, H, W], got {}-D with shape {}", op, what, shape.size(),
        shape.str());
  for (int i = 1; i < 5; ++i)
    check(shape[i] >= 1, "{}: {} {} is empty; C, D, H and W must be at least 1", op, what, shape.str());
}

Shape pool3d_output_shape(const Shape& input, const Pool3dOptions& opt, const char* op) {
  check_volume_shape(input, op);
  const Int3 stride = opt.effective_stride();
  for (int i = 0; i < 3; ++i) {
    check(opt.kernel[i] >= 1 && stride[i] >= 1 && opt.padding[i] >= 0,
          "{}: invalid geometry ({}); kernel and stride must be >= 1, padding >= 0", op, opt.str());
    check(opt.padding[i] <= opt.kernel[i] / 2,
          "{}: padding {} along axis {} is more than half the kernel {} ({}); padded windows could hold no input", op,
          opt.padding[i], i, opt.kernel[i], opt.str());
  }
  Shape out{input[0], input[1], 0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    const std::int64_t padded = input[2 + i] + 2 * opt.padding[i];
    check(padded >= opt.kernel[i],
          "{}: output would be empty: kernel {} is larger than the padded input along axis {} ({} = {} + 2*{}); "
          "input {}",
          op, opt.kernel[i], i, padded, input[2 + i], opt.padding[i], input.str());
    out[2 + i] = (padded - opt.kernel[i]) / stride[i] + 1;
  }
  return out;
}

Shape adaptive_pool3d_output_shape(const Shape& input, const Int3& output_size, const char* op) {
  check_volume_shape(input, op);
  for (int i = 0; i < 3; ++i)
    check(output_size[i] >= 1, "{}: output_size {} must be at least 1 along every axis (input {})", op, output_size,
          input.str());
  return Shape{input[0], input[1], output_size[0], output_size[1], output_size[2]};
}

}  // namespace tlk
