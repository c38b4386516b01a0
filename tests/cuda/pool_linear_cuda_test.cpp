// TLK's GPU pooling kernels (kernels/cuda/pool3d.h) and the cuBLAS matrix products
// (kernels/cuda/linear.h) against the reference kernels.
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "compare_to_ref.h"
#include "cuda_test_util.h"
#include "tlk/kernels/cuda/cudnn_context.h"
#include "tlk/kernels/cuda/linear.h"
#include "tlk/kernels/cuda/pool3d.h"
#include "tlk/kernels/ref/linear.h"
#include "tlk/kernels/ref/pool3d.h"

using namespace tlk;
namespace kc = kernels::cuda;
namespace ref = kernels::ref;
using testing::to_cpu;
using testing::to_gpu;
using testing::to_gpu_channels_last;

using testing::gpu_error;
using testing::Tf32Scope;
using Mode = testing::PrecisionMode;
static constexpr const auto& kModes = testing::kPrecisionModes;

namespace {

Tensor random(const Shape& shape, Generator& gen, DType dtype) {
  return randn(shape, gen, 0.0, 1.0, TensorOptions{DType::f64}).to(dtype);
}

std::vector<double> values_of(const Tensor& t) { return to_cpu(t).to_doubles(); }

struct PoolCase {
  Shape x;
  Pool3dOptions opt;
};

const std::vector<PoolCase>& pool_cases() {
  static const std::vector<PoolCase> all = {
      {{1, 3, 6, 7, 8}, Pool3dOptions{{2, 2, 2}}},
      {{3, 5, 5, 9, 10}, Pool3dOptions{{1, 2, 2}}},
      {{2, 17, 7, 8, 9}, Pool3dOptions{{3, 3, 3}, {2, 2, 2}, {1, 1, 1}}},  // overlapping, padded
      {{1, 3, 5, 6, 7}, Pool3dOptions{{2, 3, 3}, {1, 2, 2}, {1, 1, 0}}},
  };
  return all;
}

constexpr DType kFloatTypes[] = {DType::f64, DType::f32};

}  // namespace

TEST_CASE("cuda max_pool3d: output, indices and gradient match the reference") {
  TLK_REQUIRE_GPU();
  Generator gen(801);
  for (DType dtype : kFloatTypes) {
    CAPTURE(dtype_name(dtype));
    for (const PoolCase& c : pool_cases()) {
      CAPTURE(c.x.str());
      CAPTURE(c.opt.str());
      const Tensor x = random(c.x, gen, dtype);
      const auto [y_ref, idx_ref] = ref::max_pool3d_forward(x, c.opt);
      for (const Tensor& gx : {to_gpu(x), to_gpu_channels_last(x)}) {
        const auto [y, idx] = kc::max_pool3d_forward(gx, c.opt);
        CHECK(gpu_error(y, y_ref) == 0.0);  // a maximum is one of the inputs, exactly
        CHECK(idx.dtype() == DType::i64);
        CHECK(values_of(idx) == idx_ref.to_doubles());
      }
      const Tensor dy = random(y_ref.shape(), gen, dtype);
      const Tensor dx_ref = ref::max_pool3d_backward(dy, idx_ref, c.x);
      CHECK(gpu_error(kc::max_pool3d_backward(to_gpu(dy), to_gpu(idx_ref), c.x), dx_ref) <
            (dtype == DType::f64 ? 1e-12 : 1e-6));
    }
  }
}

TEST_CASE("cuda max_pool3d: ties go to the first maximum and NaN propagates, as in the reference") {
  TLK_REQUIRE_GPU();
  Generator gen(802);
  const PoolCase c{{2, 3, 6, 6, 7}, Pool3dOptions{{3, 3, 3}, {2, 2, 2}, {1, 1, 1}}};
  // Small integers: many windows hold their maximum more than once.
  std::vector<double> v = randn(c.x, gen, 0.0, 1.5, TensorOptions{DType::f64}).to_doubles();
  for (double& e : v) e = std::round(e);
  v[17] = std::numeric_limits<double>::quiet_NaN();
  v[200] = std::numeric_limits<double>::quiet_NaN();
  for (DType dtype : kFloatTypes) {
    CAPTURE(dtype_name(dtype));
    const Tensor x = testing::values(v, c.x, dtype);
    const auto [y_ref, idx_ref] = ref::max_pool3d_forward(x, c.opt);
    const auto [y, idx] = kc::max_pool3d_forward(to_gpu(x), c.opt);
    CHECK(values_of(idx) == idx_ref.to_doubles());
    const std::vector<double> got = values_of(y), want = y_ref.to_doubles();
    REQUIRE(got.size() == want.size());
    int nan_windows = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      CHECK(std::isnan(got[i]) == std::isnan(want[i]));
      if (std::isnan(want[i])) ++nan_windows;
      else CHECK(got[i] == want[i]);
    }
    CHECK(nan_windows > 0);
  }
}

TEST_CASE("cuda avg_pool3d and adaptive_avg_pool3d: forward and backward match the reference") {
  TLK_REQUIRE_GPU();
  Generator gen(803);
  for (DType dtype : kFloatTypes) {
    CAPTURE(dtype_name(dtype));
    const double tol = dtype == DType::f64 ? 1e-12 : 1e-6;
    for (const PoolCase& base : pool_cases())
      for (bool include_pad : {true, false}) {
        const Pool3dOptions opt = base.opt.with_count_include_pad(include_pad);
        CAPTURE(base.x.str());
        CAPTURE(opt.str());
        CAPTURE(include_pad);
        const Tensor x = random(base.x, gen, dtype);
        const Tensor y_ref = ref::avg_pool3d_forward(x, opt);
        CHECK(gpu_error(kc::avg_pool3d_forward(to_gpu(x), opt), y_ref) < tol);
        CHECK(gpu_error(kc::avg_pool3d_forward(to_gpu_channels_last(x), opt), y_ref) < tol);
        const Tensor dy = random(y_ref.shape(), gen, dtype);
        CHECK(gpu_error(kc::avg_pool3d_backward(to_gpu(dy), base.x, opt), ref::avg_pool3d_backward(dy, base.x, opt)) <
              tol);
      }
    const Shape xs{2, 3, 5, 7, 9};
    for (const Int3& size : {Int3{3, 4, 2}, Int3{1, 1, 1}, Int3{7, 3, 10}, Int3{5, 7, 9}}) {
      CAPTURE(size[0]);
      CAPTURE(size[1]);
      CAPTURE(size[2]);
      const Tensor x = random(xs, gen, dtype);
      const Tensor y_ref = ref::adaptive_avg_pool3d_forward(x, size);
      CHECK(gpu_error(kc::adaptive_avg_pool3d_forward(to_gpu(x), size), y_ref) < tol);
      const Tensor dy = random(y_ref.shape(), gen, dtype);
      CHECK(gpu_error(kc::adaptive_avg_pool3d_backward(to_gpu(dy), xs), ref::adaptive_avg_pool3d_backward(dy, xs)) <
            tol);
    }
  }
}

namespace {

// The 2-D view (shape, strides, offset) of `t` on its own storage: the same view on CPU and GPU.
Tensor view(const Tensor& t, const Shape& shape, const Dims& strides, std::int64_t offset) {
  return make_view(t, shape, strides, offset);
}

}  // namespace

TEST_CASE("cuda matmul: plain, transposed and strided operands match the reference") {
  TLK_REQUIRE_GPU();
  Generator gen(804);
  for (const Mode& mode : kModes) {
    CAPTURE(mode.name);
    Tf32Scope tf32(mode.tf32);
    const std::vector<std::array<std::int64_t, 3>> sizes = {{7, 13, 5}, {1, 17, 3}, {9, 1, 4}, {33, 65, 17}};
    for (const auto& [m, k, n] : sizes) {
      CAPTURE(m);
      CAPTURE(k);
      CAPTURE(n);
      const Tensor a = random({m, k}, gen, mode.dtype), b = random({k, n}, gen, mode.dtype);
      const Tensor at = random({k, m}, gen, mode.dtype), bt = random({n, k}, gen, mode.dtype);
      const Tensor wide = random({m, k + 5}, gen, mode.dtype);  // a column slice: leading dimension k + 5
      const Tensor gat = to_gpu(at), gbt = to_gpu(bt), gwide = to_gpu(wide);
      const Tensor at_view = view(at, {m, k}, {1, m}, 0), bt_view = view(bt, {k, n}, {1, k}, 0);
      const Tensor slice = view(wide, {m, k}, {k + 5, 1}, 3);
      CHECK(gpu_error(kc::matmul(to_gpu(a), to_gpu(b)), ref::matmul(a, b)) < mode.tol);
      CHECK(gpu_error(kc::matmul(view(gat, {m, k}, {1, m}, 0), to_gpu(b)), ref::matmul(at_view, b)) < mode.tol);
      CHECK(gpu_error(kc::matmul(to_gpu(a), view(gbt, {k, n}, {1, k}, 0)), ref::matmul(a, bt_view)) < mode.tol);
      CHECK(gpu_error(kc::matmul(view(gat, {m, k}, {1, m}, 0), view(gbt, {k, n}, {1, k}, 0)),
                      ref::matmul(at_view, bt_view)) < mode.tol);
      CHECK(gpu_error(kc::matmul(view(gwide, {m, k}, {k + 5, 1}, 3), to_gpu(b)), ref::matmul(slice, b)) < mode.tol);
      // A stride pattern cuBLAS cannot read (every other column) goes through a dense copy.
      const Tensor sparse = random({m, 2 * k}, gen, mode.dtype);
      CHECK(gpu_error(kc::matmul(view(to_gpu(sparse), {m, k}, {2 * k, 2}, 1), to_gpu(b)),
                      ref::matmul(view(sparse, {m, k}, {2 * k, 2}, 1), b)) < mode.tol);
    }
  }
}

TEST_CASE("cuda linear: forward and the three backward kernels match the reference") {
  TLK_REQUIRE_GPU();
  Generator gen(805);
  for (const Mode& mode : kModes) {
    CAPTURE(mode.name);
    Tf32Scope tf32(mode.tf32);
    for (const Shape& xs : {Shape{3, 4, 17}, Shape{1, 17}, Shape{17}, Shape{5, 17}}) {
      CAPTURE(xs.str());
      const Tensor x = random(xs, gen, mode.dtype), w = random({5, 17}, gen, mode.dtype),
                   b = random({5}, gen, mode.dtype);
      const Tensor y_ref = ref::linear_forward(x, w, b);
      const Tensor dy = random(y_ref.shape(), gen, mode.dtype);
      const Tensor gx = to_gpu(x), gw = to_gpu(w), gdy = to_gpu(dy);
      CHECK(gpu_error(kc::linear_forward(gx, gw, to_gpu(b)), y_ref) < mode.tol);
      CHECK(gpu_error(kc::linear_forward(gx, gw, Tensor()), ref::linear_forward(x, w, Tensor())) < mode.tol);
      CHECK(gpu_error(kc::linear_backward_input(gdy, gw), ref::linear_backward_input(dy, w)) < mode.tol);
      CHECK(gpu_error(kc::linear_backward_weights(gdy, gx), ref::linear_backward_weights(dy, x)) < mode.tol);
      CHECK(gpu_error(kc::linear_backward_bias(gdy), ref::linear_backward_bias(dy)) <
            (mode.dtype == DType::f64 ? 1e-10 : 1e-5));
    }
  }
}

TEST_CASE("cuda pooling and linear: CPU operands are errors naming the op") {
  // Runs without a GPU: the checks come before any device work.
  const Tensor x = Tensor::zeros({1, 2, 4, 4, 4});
  CHECK_THROWS_WITH_AS(kc::max_pool3d_forward(x, Pool3dOptions{}), doctest::Contains("max_pool3d"), Error);
  CHECK_THROWS_WITH_AS(kc::avg_pool3d_forward(x, Pool3dOptions{}), doctest::Contains("avg_pool3d"), Error);
  CHECK_THROWS_WITH_AS(kc::adaptive_avg_pool3d_forward(x, {1, 1, 1}), doctest::Contains("adaptive_avg_pool3d"), Error);
  CHECK_THROWS_WITH_AS(kc::matmul(Tensor::zeros({2, 3}), Tensor::zeros({3, 4})), doctest::Contains("matmul"), Error);
  CHECK_THROWS_WITH_AS(kc::linear_forward(Tensor::zeros({2, 3}), Tensor::zeros({4, 3}), Tensor()),
                       doctest::Contains("linear"), Error);
}
