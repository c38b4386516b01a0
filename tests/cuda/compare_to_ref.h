#pragma once
// Comparison of a CUDA kernel's result with the reference's, shared by the GPU kernel tests. Unlike rel_error (which skips NaN through std::max), a NaN on one side only
// counts as an infinite error, so an output element a kernel never wrote (poisoned with NaN, Note
// [Poisoned GPU memory]) fails the check.
#include <cmath>
#include <limits>
#include <string>

#include "cuda_test_util.h"
#include "tlk/kernels/cuda/cudnn_context.h"

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

/// gpu_rel_error of a result that must be a CUDA tensor of `expected`'s shape, dense in `layout`
/// (plain or channels_last, Note [Channels-last on the GPU]).
inline double gpu_error(const Tensor& got, const Tensor& expected, Layout layout = Layout::plain) {
  CHECK(got.device().is_cuda());
  CHECK_MESSAGE((layout == Layout::plain ? got.is_contiguous() : kernels::cuda::is_channels_last(got)),
                "expected a dense " << std::string(layout_name(layout)) << " result, got strides " << got.strides().str());
  REQUIRE(got.shape() == expected.shape());
  return gpu_rel_error(got, expected);
}

/// One precision the cuDNN/cuBLAS kernels are checked in, with its tolerance (Note [TF32 switch]).
struct PrecisionMode {
  const char* name;
  DType dtype;
  bool tf32;
  double tol;
};
inline constexpr PrecisionMode kPrecisionModes[] = {
    {"f64", DType::f64, false, 1e-10},
    {"f32, fp32 math", DType::f32, false, 1e-5},
    {"f32, TF32", DType::f32, true, 5e-3},
};

/// Sets the TF32 switch for a scope and restores it afterwards.
struct Tf32Scope {
  bool saved;
  explicit Tf32Scope(bool on) : saved(kernels::cuda::allow_tf32()) { kernels::cuda::set_allow_tf32(on); }
  ~Tf32Scope() { kernels::cuda::set_allow_tf32(saved); }
  Tf32Scope(const Tf32Scope&) = delete;
  Tf32Scope& operator=(const Tf32Scope&) = delete;
};

/// The tolerance of a GPU-vs-reference comparison in `dtype`: 1e-10 for f64, 1e-5 for f32.
inline double tolerance(DType dtype) { return dtype == DType::f64 ? 1e-10 : 1e-5; }

}  // namespace tlk::testing
