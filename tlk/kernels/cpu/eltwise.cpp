#include "tlk/kernels/cpu/eltwise.h"

#include <cmath>

#include "tlk/kernels/cpu/same_layout.h"
#include "tlk/tensor/error.h"

namespace tlk::kernels::cpu {

// Note [Rectifier backward from the output]: the reference takes f'(x) = x > 0 ? 1 : slope. For
// slope >= 0, y = f(x) is > 0 exactly where x > 0 (slope > 0 keeps the sign; slope == 0 maps x <= 0 to
// 0 or -0), so y > 0 ? 1 : slope is the same derivative, bit for bit. Saving y instead of x lets the
// graph drop x when nothing else needs it (the next convolution keeps y anyway).

namespace {

constexpr std::int64_t kParallelFloats = 32768;

void check_slope(const char* op, double slope) {
  check(std::isfinite(slope), "{}: negative_slope must be finite, got {}", op, slope);
}

}  // namespace

bool eltwise_supported(const Tensor& x) { return x.defined() && x.dtype() == DType::f32 && x.device().is_cpu(); }

Tensor leaky_relu_forward(const Tensor& x_in, double negative_slope) {
  const char* op = negative_slope == 0.0 ? "relu" : "leaky_relu";
  check_slope(op, negative_slope);
  const Tensor x = dense(f32_cpu(x_in, op, "input"));
  Tensor y = empty_in_layout_of(x);
  const float* __restrict px = raw_f32(x);
  float* __restrict py = raw_f32(y);
  const float slope = static_cast<float>(negative_slope);
  const std::int64_t n = raw_size(x);  // a blocked format's padding included: f(0) = 0 keeps it zero
#pragma omp parallel for simd schedule(static) if (n > kParallelFloats)
  for (std::int64_t i = 0; i < n; ++i) py[i] = leaky_relu_value(px[i], slope);
  return y;
}

Tensor leaky_relu_backward(const Tensor& grad_in, const Tensor& saved_in, double negative_slope) {
  const char* op = negative_slope == 0.0 ? "relu backward" : "leaky_relu backward";
  check_slope(op, negative_slope);
  const Tensor saved = dense(f32_cpu(saved_in, op, "saved input or output"));
  const Tensor grad = f32_cpu(grad_in, op, "grad_output");
  check(grad.shape() == saved.shape(), "{}: grad_output has shape {}, expected the saved tensor's shape {}", op,
        grad.shape().str(), saved.shape().str());
  const Tensor g = in_layout_of(grad, saved);
  Tensor dx = empty_in_layout_of(saved);
  const float* __restrict ps = raw_f32(saved);
  const float* __restrict pg = raw_f32(g);
  float* __restrict pdx = raw_f32(dx);
  const float slope = static_cast<float>(negative_slope);
  const std::int64_t n = raw_size(saved);  // padding lanes: zero gradient times anything is zero
#pragma omp parallel for simd schedule(static) if (n > kParallelFloats)
  for (std::int64_t i = 0; i < n; ++i) pdx[i] = leaky_relu_grad(pg[i], ps[i], slope);
  return dx;
}

Tensor add_same_shape(const Tensor& a_in, const Tensor& b_in) {
  const Tensor a = dense(f32_cpu(a_in, "add", "left operand"));
  const Tensor b = f32_cpu(b_in, "add", "right operand");
  check(a.shape() == b.shape(), "add: shapes {} and {} differ", a.shape().str(), b.shape().str());
  const Tensor bb = in_layout_of(b, a);
  Tensor out = empty_in_layout_of(a);
  const float* __restrict pa = raw_f32(a);
  const float* __restrict pb = raw_f32(bb);
  float* __restrict po = raw_f32(out);
  const std::int64_t n = raw_size(a);  // padding lanes: 0 + 0 stays 0
#pragma omp parallel for simd schedule(static) if (n > kParallelFloats)
  for (std::int64_t i = 0; i < n; ++i) po[i] = pa[i] + pb[i];
  return out;
}

}  // namespace tlk::kernels::cpu
