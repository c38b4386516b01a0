#pragma once
// Comparison of a CUDA kernel's result with the reference's, shared by the norm, softmax/loss and
// optimizer GPU tests. Unlike rel_error (which skips NaN through std::max), a NaN on one side only
// counts as an infinite error, so an output element a kernel never wrote (poisoned with NaN, Note
// [Poisoned GPU memory]) fails the check.
#include <cmath>
#include <limits>
#include <string>

#include "cuda_test_util.h"

namespace tlk::testing {

/// max |got − expected| / max(max |expected|, 1e-12) over the elements, +inf when exactly one of a
/// pair is NaN (both NaN agree). `got` may live on any device.
inline double gpu_rel_error(const Tensor& got, const Tensor& expected) {
  const std::vector<double> g = to_cpu(got).to_doubles(), e = expected.to_doubles();
  if (g.size() != e.size()) return std::numeric_limits<double>::infinity();
  double scale = 1e-12, diff = 0.0;
  for (double v : e)
    if (!std::isnan(v)) scale = std::max(scale, std::abs(v));
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(g[i]) || std::isnan(e[i])) {
      if (std::isnan(g[i]) != std::isnan(e[i])) return std::numeric_limits<double>::infinity();
      continue;
    }
    diff = std::max(diff, std::abs(g[i] - e[i]));
  }
  return diff / scale;
}

/// Checks that `got` is a CUDA tensor with `expected`'s shape and dtype and values within `tol`
/// (gpu_rel_error), naming `what` on failure.
inline void check_matches(const Tensor& got, const Tensor& expected, double tol, const std::string& what) {
  INFO(what);
  REQUIRE(got.defined());
  CHECK(got.device().is_cuda());
  CHECK(got.shape() == expected.shape());
  CHECK(got.dtype() == expected.dtype());
  const double err = gpu_rel_error(got, expected);
  CHECK_MESSAGE(err < tol, what << ": relative error " << err << " (tolerance " << tol << ")");
}

/// The tolerance of a GPU-vs-reference comparison in `dtype`: 1e-10 for f64, 1e-5 for f32.
inline double tolerance(DType dtype) { return dtype == DType::f64 ? 1e-10 : 1e-5; }

}  // namespace tlk::testing
