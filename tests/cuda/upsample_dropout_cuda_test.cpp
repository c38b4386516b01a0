// The CUDA upsampling and dropout kernels against kernels/ref on random inputs.
#include <vector>

#include "cuda_test_util.h"
#include "tlk/kernels/cuda/dropout.h"
#include "tlk/kernels/cuda/upsample3d.h"
#include "tlk/kernels/ref/dropout.h"
#include "tlk/kernels/ref/upsample3d.h"

using namespace tlk;
namespace kc = kernels::cuda;
namespace ref = kernels::ref;
using testing::max_abs_diff;
using testing::rel_error;
using testing::to_cpu;
using testing::to_gpu;

namespace {

double tolerance(DType dtype) { return dtype == DType::f64 ? 1e-12 : 1e-6; }

struct UpsampleCase {
  Shape x;
  Upsample3dOptions opt;
};
const auto kNearest = Upsample3dOptions{};
const auto kLinear = Upsample3dOptions{}.with_mode(UpsampleMode::trilinear);
const UpsampleCase kUpsampleCases[] = {
    {{1, 5, 3, 4, 5}, kNearest.with_scale_factor({2, 2, 2})},
    {{3, 13, 2, 3, 4}, kNearest.with_scale_factor({1, 2, 2})},
    {{1, 5, 3, 4, 5}, kNearest.with_size({4, 6, 7})},        // non-integer factors
    {{1, 3, 6, 5, 7}, kNearest.with_size({4, 3, 7})},        // downsampling, one axis unchanged
    {{1, 5, 3, 4, 5}, kNearest.with_scale_factor({1.5, 2.5, 1.7})},
    {{1, 5, 3, 4, 5}, kLinear.with_scale_factor({2, 2, 2})},
    {{3, 13, 2, 3, 4}, kLinear.with_scale_factor({1, 2, 2})},
    {{1, 7, 4, 3, 5}, kLinear.with_size({6, 7, 5})},
    {{1, 7, 4, 3, 5}, kLinear.with_size({6, 7, 9}).with_align_corners(true)},
    {{3, 2, 5, 1, 4}, kLinear.with_size({3, 4, 1}).with_align_corners(true)},  // extents 1 and downsampling
    {{1, 5, 3, 4, 5}, kLinear.with_scale_factor({1.5, 2.5, 1.7})},
};

}  // namespace

TEST_CASE("cuda upsample3d forward and backward match ref (nearest, trilinear, align_corners)") {
  TLK_REQUIRE_GPU();
  Generator gen(721);
  for (DType dtype : {DType::f64, DType::f32}) {
    CAPTURE(dtype_name(dtype));
    for (const auto& c : kUpsampleCases) {
      CAPTURE(c.x.str());
      CAPTURE(c.opt.str());
      Tensor x = randn(c.x, gen, 0, 1, TensorOptions{DType::f64}).to(dtype);
      Tensor y_ref = ref::upsample3d_forward(x, c.opt);
      Tensor y = kc::upsample3d_forward(to_gpu(x), c.opt);
      CHECK(y.device().is_cuda());
      CHECK(y.dtype() == dtype);
      REQUIRE(y.shape() == y_ref.shape());
      CHECK(rel_error(to_cpu(y), y_ref) < tolerance(dtype));
      Tensor dy = randn(y_ref.shape(), gen, 0, 1, TensorOptions{DType::f64}).to(dtype);
      Tensor dx_ref = ref::upsample3d_backward(dy, x.shape(), c.opt);
      Tensor dx = kc::upsample3d_backward(to_gpu(dy), x.shape(), c.opt);
      REQUIRE(dx.shape() == x.shape());
      CHECK(dx.dtype() == dtype);
      CHECK(rel_error(to_cpu(dx), dx_ref) < tolerance(dtype));
      // A strided (permuted back and forth) input gives the same result.
      Tensor xp = to_gpu(x.permute({0, 1, 4, 3, 2}).contiguous()).permute({0, 1, 4, 3, 2});
      CHECK(rel_error(to_cpu(kc::upsample3d_forward(xp, c.opt)), y_ref) < tolerance(dtype));
    }
  }
}

TEST_CASE("cuda upsample3d reports bad arguments like ref") {
  TLK_REQUIRE_GPU();
  Tensor x = to_gpu(Tensor::ones({1, 2, 3, 4, 5}));
  CHECK_THROWS_WITH_AS(kc::upsample3d_forward(x, Upsample3dOptions{}), doctest::Contains("give exactly one of size"),
                       Error);
  CHECK_THROWS_WITH_AS(kc::upsample3d_backward(to_gpu(Tensor::ones({1, 2, 3, 4, 5})), {1, 2, 3, 4, 5},
                                               kNearest.with_scale_factor({2, 2, 2})),
                       doctest::Contains("expected [1, 2, 6, 8, 10]"), Error);
}

TEST_CASE("cuda dropout draws ref's mask from the same generator state, bit for bit") {
  TLK_REQUIRE_GPU();
  Generator data(722);
  for (DType dtype : {DType::f64, DType::f32}) {
    CAPTURE(dtype_name(dtype));
    Tensor x = randn({3, 5, 4, 6}, data, 0, 1, TensorOptions{DType::f64}).to(dtype);
    for (double p : {0.0, 0.3, 0.5, 1.0}) {
      CAPTURE(p);
      Generator a(7), b(7);
      ref::DropoutForward expected = ref::dropout_forward(x, p, a);
      kc::DropoutForward got = kc::dropout_forward(to_gpu(x), p, b);
      CHECK(a.state() == b.state());
      CHECK(got.mask.device().is_cuda());
      CHECK(got.output.device().is_cuda());
      CHECK(got.mask.dtype() == dtype);
      CHECK(max_abs_diff(to_cpu(got.mask), expected.mask) == 0.0);
      CHECK(max_abs_diff(to_cpu(got.output), expected.output) == 0.0);
      Tensor g = randn(x.shape(), data, 0, 1, TensorOptions{DType::f64}).to(dtype);
      CHECK(max_abs_diff(to_cpu(kc::dropout_backward(to_gpu(g), got.mask)),
                         ref::dropout_backward(g, expected.mask)) == 0.0);
    }
    // A strided input: the mask is drawn in the view's row-major order, as ref does.
    Generator a(9), b(9);
    Tensor xv = x.permute({3, 1, 0, 2});
    ref::DropoutForward expected = ref::dropout_forward(xv, 0.4, a);
    kc::DropoutForward got = kc::dropout_forward(to_gpu(x).permute({3, 1, 0, 2}), 0.4, b);
    CHECK(max_abs_diff(to_cpu(got.output), expected.output) == 0.0);
    CHECK(max_abs_diff(to_cpu(got.mask), expected.mask) == 0.0);
  }
  Generator gen(1);
  Tensor x = to_gpu(Tensor::ones({4}));
  CHECK_THROWS_WITH_AS(kc::dropout_forward(x, 1.5, gen), doctest::Contains("dropout: probability p must be in [0, 1]"),
                       Error);
  CHECK_THROWS_WITH_AS(kc::dropout_backward(x, to_gpu(Tensor::ones({5}))), doctest::Contains("expected the mask's shape"),
                       Error);
}
