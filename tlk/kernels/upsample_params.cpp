#include "tlk/kernels/upsample_params.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

#include "tlk/kernels/pool_params.h"
#include "tlk/tensor/error.h"

namespace tlk {

const char* upsample_mode_name(UpsampleMode mode) {
  switch (mode) {
    case UpsampleMode::nearest:
      return "nearest";
    case UpsampleMode::trilinear:
      return "trilinear";
  }
  return "?";
}

std::string Upsample3dOptions::str() const {
  return fmt::format("mode {}, size {}, scale_factor {}, align_corners {}", upsample_mode_name(mode),
                     size ? fmt::format("{}", *size) : "unset",
                     scale_factor ? fmt::format("{}", *scale_factor) : "unset", align_corners);
}

Shape upsample3d_output_shape(const Shape& input, const Upsample3dOptions& opt, const char* op) {
  check_volume_shape(input, op);
  check(opt.mode == UpsampleMode::nearest || opt.mode == UpsampleMode::trilinear, "{}: unknown mode {}", op,
        static_cast<int>(opt.mode));
  check(opt.size.has_value() != opt.scale_factor.has_value(), "{}: give exactly one of size and scale_factor ({})", op,
        opt.str());
  check(!opt.align_corners || opt.mode == UpsampleMode::trilinear,
        "{}: align_corners applies to trilinear mode only ({})", op, opt.str());
  Shape out{input[0], input[1], 0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    if (opt.size) {
      out[2 + i] = (*opt.size)[i];
    } else {
      const double s = (*opt.scale_factor)[i];
      check(std::isfinite(s) && s > 0.0, "{}: scale_factor must be finite and > 0 along every axis ({})", op,
            opt.str());
      const double extent = std::floor(static_cast<double>(input[2 + i]) * s);
      check(extent < 1e12, "{}: scale_factor gives an absurd output extent {} along axis {} (input {}, {})", op, extent,
            i, input.str(), opt.str());
      out[2 + i] = static_cast<std::int64_t>(extent);
    }
    check(out[2 + i] >= 1, "{}: output would be empty along axis {} (input {}, {})", op, i, input.str(), opt.str());
  }
  return out;
}

}  // namespace tlk
