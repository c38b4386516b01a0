// The CPU fast path of upsampling (oneDNN resampling) against the reference kernels, in every layout.
#include <cmath>

#include "test_util.h"
#include "tlk/autograd/ops/upsample3d.h"
#include "tlk/kernels/cpu/primitive_cache.h"
#include "tlk/kernels/cpu/same_layout.h"
#include "tlk/kernels/cpu/upsample3d.h"
#include "tlk/kernels/ref/upsample3d.h"
#include "tlk/tensor/blocked_format.h"

using namespace tlk;
namespace cpu = kernels::cpu;
namespace ref = kernels::ref;
using testing::check_layout;
using testing::kLayouts;
using testing::rel_error;

namespace {

struct Case {
  Shape x;
  Upsample3dOptions opt;
};
const auto kNearest = Upsample3dOptions{};
const auto kLinear = Upsample3dOptions{}.with_mode(UpsampleMode::trilinear);
const Case kFast[] = {
    {{1, 5, 3, 4, 5}, kNearest.with_scale_factor({2, 2, 2})},
    {{3, 13, 2, 3, 4}, kNearest.with_scale_factor({1, 2, 2})},
    {{1, 20, 3, 2, 3}, kNearest.with_size({3, 6, 9})},
    {{1, 5, 3, 4, 5}, kLinear.with_scale_factor({2, 2, 2})},
    {{3, 13, 2, 3, 4}, kLinear.with_scale_factor({1, 2, 2})},
    {{1, 20, 4, 3, 5}, kLinear.with_size({6, 7, 5})},  // non-integer factors given as a size
};

}  // namespace

TEST_CASE("cpu upsample3d forward and backward match the reference in every layout") {
  Generator gen(51);
  for (const auto& c : kFast) {
    CAPTURE(c.x.str());
    CAPTURE(c.opt.str());
    Tensor x = randn(c.x, gen);
    REQUIRE(cpu::upsample3d_supported(x, c.opt));
    Tensor y_ref = ref::upsample3d_forward(x, c.opt);
    Tensor dy = randn(y_ref.shape(), gen);
    Tensor dx_ref = ref::upsample3d_backward(dy, x.shape(), c.opt);
    for (const auto& l : kLayouts) {
      CAPTURE(l.name);
      Tensor xl = l.make(x), dyl = l.make(dy);
      Tensor y = cpu::upsample3d_forward(xl, c.opt);
      check_layout(y, xl);
      CHECK(rel_error(y, y_ref) < 1e-5);
      Tensor dx = cpu::upsample3d_backward(dyl, xl, c.opt);
      check_layout(dx, xl);
      CHECK(rel_error(dx, dx_ref) < 1e-5);
      CHECK(rel_error(cpu::upsample3d_backward(dy, xl, c.opt), dx_ref) < 1e-5);  // plain gradient accepted
    }
  }
}

TEST_CASE("cpu upsample3d leaves the cases where oneDNN's index math differs to the reference") {
  Tensor x = Tensor::zeros({1, 5, 3, 4, 5});
  CHECK_FALSE(cpu::upsample3d_supported(x, kLinear.with_scale_factor({2, 2, 2}).with_align_corners(true)));
  CHECK_FALSE(cpu::upsample3d_supported(x, kNearest.with_size({4, 6, 7})));            // non-integer factor
  CHECK_FALSE(cpu::upsample3d_supported(x, kNearest.with_scale_factor({1.5, 2, 2})));  // non-integer factor
  CHECK_FALSE(cpu::upsample3d_supported(x, kLinear.with_scale_factor({1.7, 2, 2})));   // 3 * 1.7 is not 5
  CHECK_FALSE(cpu::upsample3d_supported(x.to(DType::f64), kNearest.with_scale_factor({2, 2, 2})));
  CHECK(cpu::upsample3d_supported(x, kLinear.with_scale_factor({2, 2, 2})));
  CHECK_THROWS_WITH_AS(cpu::upsample3d_forward(x, kNearest.with_size({4, 6, 7})),
                       doctest::Contains("upsample3d: the fast path does not take"), Error);
  // The ops still give the reference result there.
  Generator gen(52);
  Tensor xr = randn({1, 5, 3, 4, 5}, gen);
  for (const auto& opt : {kLinear.with_size({5, 7, 6}).with_align_corners(true), kNearest.with_size({4, 6, 7})})
    CHECK(rel_error(ops::upsample3d(xr, opt), ref::upsample3d_forward(xr, opt)) == 0.0);
}

TEST_CASE("cpu upsample3d of a blocked input reorders nothing and builds its primitives once") {
  Generator gen(53);
  Tensor xb = randn({2, 20, 3, 4, 4}, gen).to(Layout::blocked);
  Tensor dy;
  auto run = [&] {
    Tensor xl = xb.detach().set_requires_grad();
    Tensor y = ops::upsample3d(ops::upsample3d(xl, kNearest.with_scale_factor({1, 2, 2})),
                               kLinear.with_scale_factor({2, 2, 2}));
    CHECK(y.layout() == Layout::blocked);
    if (!dy.defined()) dy = randn(y.shape(), gen).to(y.blocked_format());
    y.backward(dy);
    CHECK(xl.grad().layout() == Layout::blocked);
  };
  testing::check_steady_state(run);
}

TEST_CASE("upsample3d op: f32 (fast path) gradients match f64 (reference path) gradients") {
  Generator gen(54);
  Tensor x64 = randn({3, 5, 2, 3, 4}, gen, 0, 1, testing::f64());
  for (const auto& opt : {kNearest.with_scale_factor({2, 2, 2}), kLinear.with_scale_factor({1, 2, 2})}) {
    for (const auto& l : kLayouts) {
      CAPTURE(l.name);
      Tensor a = x64.detach().set_requires_grad(), b = l.make(x64.to(DType::f32)).set_requires_grad();
      Tensor ya = ops::upsample3d(a, opt), yb = ops::upsample3d(b, opt);
      CHECK(rel_error(yb, ya) < 1e-5);
      Tensor dy = randn(ya.shape(), gen, 0, 1, testing::f64());
      ya.backward(dy);
      yb.backward(dy.to(DType::f32));
      CHECK(rel_error(b.grad(), a.grad()) < 1e-5);
    }
  }
}
