// The CPU fast path of pooling (oneDNN) against the reference kernels, in every input layout.
#include <cmath>

#include "test_util.h"
#include "tlk/autograd/ops/pool3d.h"
#include "tlk/kernels/cpu/pool3d.h"
#include "tlk/kernels/cpu/primitive_cache.h"
#include "tlk/kernels/cpu/same_layout.h"
#include "tlk/kernels/ref/pool3d.h"
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
  Pool3dOptions opt;
};
const Case kCases[] = {
    {{1, 5, 4, 6, 6}, Pool3dOptions{{2, 2, 2}}},
    {{3, 13, 3, 7, 8}, Pool3dOptions{{1, 2, 2}}},  // anisotropic, odd H
    {{1, 20, 5, 6, 7}, Pool3dOptions{{3, 3, 3}, {2, 2, 2}, {1, 1, 1}}},
    {{3, 5, 4, 5, 6}, Pool3dOptions{{1, 3, 3}, {1, 2, 2}, {0, 1, 1}}.with_count_include_pad(false)},
    {{1, 13, 6, 5, 4}, Pool3dOptions{{2, 3, 2}, {2, 1, 2}, {1, 1, 0}}.with_count_include_pad(false)},
};

}  // namespace

TEST_CASE("cpu max/avg/global pooling forward and backward match the reference in every layout") {
  Generator gen(41);
  for (const auto& c : kCases) {
    CAPTURE(c.x.str());
    CAPTURE(c.opt.str());
    Tensor x = randn(c.x, gen);
    auto [y_ref, idx] = ref::max_pool3d_forward(x, c.opt);
    Tensor dy = randn(y_ref.shape(), gen);
    Tensor dx_ref = ref::max_pool3d_backward(dy, idx, x.shape());
    Tensor ya_ref = ref::avg_pool3d_forward(x, c.opt), dxa_ref = ref::avg_pool3d_backward(dy, x.shape(), c.opt);
    Tensor yg_ref = ref::adaptive_avg_pool3d_forward(x, {1, 1, 1});
    Tensor dyg = randn(yg_ref.shape(), gen);
    Tensor dxg_ref = ref::adaptive_avg_pool3d_backward(dyg, x.shape());
    for (const auto& l : kLayouts) {
      CAPTURE(l.name);
      Tensor xl = l.make(x), dyl = l.make(dy), dygl = l.make(dyg);
      auto [y, ws] = cpu::max_pool3d_forward(xl, c.opt);
      check_layout(y, xl, true);
      CHECK(rel_error(y, y_ref) == 0.0);
      Tensor dx = cpu::max_pool3d_backward(dyl, ws, xl, c.opt);
      check_layout(dx, xl, true);
      CHECK(rel_error(dx, dx_ref) < 1e-6);
      Tensor ya = cpu::avg_pool3d_forward(xl, c.opt);
      check_layout(ya, xl, true);
      CHECK(rel_error(ya, ya_ref) < 1e-5);
      Tensor dxa = cpu::avg_pool3d_backward(dyl, xl, c.opt);
      check_layout(dxa, xl, true);
      CHECK(rel_error(dxa, dxa_ref) < 1e-5);
      Tensor yg = cpu::global_avg_pool3d_forward(xl);
      check_layout(yg, xl, true);
      CHECK(rel_error(yg, yg_ref) < 1e-5);
      Tensor dxg = cpu::global_avg_pool3d_backward(dygl, xl);
      check_layout(dxg, xl, true);
      CHECK(rel_error(dxg, dxg_ref) < 1e-5);
      // A plain gradient for a blocked output is accepted (converted once).
      CHECK(rel_error(cpu::avg_pool3d_backward(dy, xl, c.opt), dxa_ref) < 1e-5);
    }
  }
}

TEST_CASE("cpu pooling of a blocked input reorders nothing and builds its primitives once") {
  Generator gen(42);
  const auto opt = Pool3dOptions{{1, 2, 2}};
  Tensor x = randn({2, 20, 4, 6, 6}, gen);
  Tensor xb = x.to(BlockedFormat::default_for(x.shape()));
  Tensor ones;
  auto run = [&] {
    Tensor xl = xb.detach().set_requires_grad();
    Tensor y = ops::max_pool3d(xl, opt);
    Tensor z = ops::avg_pool3d(y, opt.with_count_include_pad(false));
    Tensor g = ops::global_avg_pool3d(z);
    CHECK(g.layout() == Layout::blocked);
    if (!ones.defined()) ones = Tensor::ones(g.shape()).to(g.blocked_format());
    g.backward(ones);
    CHECK(xl.grad().layout() == Layout::blocked);
  };
  testing::check_steady_state(run);
}

// Plain f32 takes the reference path too (Note [Pool3d dispatch]); the other layouts take the fast path.
TEST_CASE("pooling ops: f32 (fast path) gradients match f64 (reference path) gradients") {
  Generator gen(43);
  Tensor x64 = randn({3, 5, 4, 6, 5}, gen, 0, 1, testing::f64());
  using Op = Tensor (*)(const Tensor&);
  const Op kOps[] = {
      [](const Tensor& x) {
        return ops::max_pool3d(x, Pool3dOptions{{1, 3, 3}, {1, 2, 2}, {0, 1, 1}});
      },
      [](const Tensor& x) {
        return ops::avg_pool3d(x, Pool3dOptions{{1, 3, 3}, {1, 2, 2}, {0, 1, 1}});
      },
      [](const Tensor& x) {
        return ops::avg_pool3d(x, Pool3dOptions{{2, 3, 3}, {1, 2, 2}, {1, 1, 1}}.with_count_include_pad(false));
      },
      [](const Tensor& x) { return ops::global_avg_pool3d(x); },
  };
  for (Op op : kOps) {
    for (const auto& l : kLayouts) {
      CAPTURE(l.name);
      Tensor a = x64.detach().set_requires_grad(), b = l.make(x64.to(DType::f32)).set_requires_grad();
      Tensor ya = op(a), yb = op(b);
      CHECK(rel_error(yb, ya) < 1e-5);
      Tensor dy = randn(ya.shape(), gen, 0, 1, testing::f64());
      ya.backward(dy);
      yb.backward(dy.to(DType::f32));
      CHECK(rel_error(b.grad(), a.grad()) < 1e-5);
    }
  }
}

TEST_CASE("cpu pooling bad input gives a clear error") {
  Tensor x = Tensor::zeros({2, 5, 4, 4, 4});
  CHECK_THROWS_WITH_AS(cpu::max_pool3d_forward(Tensor::zeros({2, 5, 4}), Pool3dOptions{}),
                       doctest::Contains("max_pool3d: expected"), Error);
  CHECK_THROWS_WITH_AS(cpu::avg_pool3d_forward(x.to(DType::f64), Pool3dOptions{}), doctest::Contains("f32 CPU tensor"),
                       Error);
  CHECK_THROWS_WITH_AS(cpu::avg_pool3d_backward(Tensor::zeros({2, 5, 3, 2, 2}), x, Pool3dOptions{}),
                       doctest::Contains("grad_output has shape [2, 5, 3, 2, 2], expected [2, 5, 2, 2, 2]"), Error);
}
