#include "tlk/nn/conv.h"

#include <fmt/ranges.h>

#include "tlk/autograd/grad_mode.h"
#include "tlk/autograd/ops/conv3d.h"
#include "tlk/tensor/error.h"

namespace tlk::nn {

namespace {

Conv3dOptions geometry_of(const ConvOptions& o, const char* layer) {
  Conv3dOptions g;
  for (int i = 0; i < 3; ++i) {
    check(o.kernel[i] >= 1, "{}: kernel extents must be >= 1, got {}", layer, fmt::format("{}", o.kernel));
    g.stride[i] = o.stride[i];
    g.dilation[i] = o.dilation[i];
    g.padding[i] = o.padding[i] >= 0 ? o.padding[i] : (o.kernel[i] / 2) * o.dilation[i];
  }
  return g;
}

}  // namespace

Conv3d::Conv3d(std::int64_t in_channels, std::int64_t out_channels, const ConvOptions& options, Generator& gen)
    : geometry(geometry_of(options, "Conv3d")) {
  check(in_channels >= 1 && out_channels >= 1, "Conv3d: channel counts must be >= 1, got {} -> {}", in_channels,
        out_channels);
  Tensor w = Tensor::empty({out_channels, in_channels, options.kernel[0], options.kernel[1], options.kernel[2]});
  kaiming_normal_(w, gen, options.init_negative_slope);
  weight = register_parameter("weight", w);
  if (options.bias) bias = register_parameter("bias", Tensor::zeros({out_channels}));
}

Tensor Conv3d::forward(const Tensor& input) { return ops::conv3d(input, weight, bias, geometry); }

ConvTranspose3d::ConvTranspose3d(std::int64_t in_channels, std::int64_t out_channels, const ConvOptions& options,
                                 Generator& gen)
    : geometry(geometry_of(options.padding[0] < 0 ? options.with_padding({0, 0, 0}) : options, "ConvTranspose3d")) {
  check(in_channels >= 1 && out_channels >= 1, "ConvTranspose3d: channel counts must be >= 1, got {} -> {}",
        in_channels, out_channels);
  Tensor w = Tensor::empty({in_channels, out_channels, options.kernel[0], options.kernel[1], options.kernel[2]});
  kaiming_normal_(w, gen, options.init_negative_slope);
  weight = register_parameter("weight", w);
  if (options.bias) bias = register_parameter("bias", Tensor::zeros({out_channels}));
}

Tensor ConvTranspose3d::forward(const Tensor& input) { return ops::conv_transpose3d(input, weight, bias, geometry); }

}  // namespace tlk::nn
