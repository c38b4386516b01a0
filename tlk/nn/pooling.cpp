#include "tlk/nn/pooling.h"

#include <fmt/ranges.h>

#include "tlk/autograd/ops/pool3d.h"
#include "tlk/autograd/ops/upsample3d.h"
#include "tlk/tensor/error.h"

namespace tlk::nn {

Tensor MaxPool3d::forward(const Tensor& input) { return ops::max_pool3d(input, options); }

Tensor AvgPool3d::forward(const Tensor& input) { return ops::avg_pool3d(input, options); }

AdaptiveAvgPool3d::AdaptiveAvgPool3d(Int3 output_size) : output_size(output_size) {
  check(output_size[0] >= 1 && output_size[1] >= 1 && output_size[2] >= 1,
        "AdaptiveAvgPool3d: output size must be >= 1 per axis, got {}", output_size);
}

Tensor AdaptiveAvgPool3d::forward(const Tensor& input) { return ops::adaptive_avg_pool3d(input, output_size); }

Tensor Upsample::forward(const Tensor& input) { return ops::upsample3d(input, options); }

}  // namespace tlk::nn
