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

namespace {

double rel_error(const Tensor& got, const Tensor& expected) {
  double scale = 1e-12;
  for (double v : expected.to_doubles()) scale = std::max(scale, std::abs(v));
  return testing::max_abs_diff(got, expected) / scale;
}

Tensor blocked(const Tensor& t, int block) {
  using tag = dnnl::memory::format_tag;
  return t.to(BlockedFormat(dnnl::memory::desc({t.shape().begin(), t.shape().end()}, dnnl::memory::data_type::f32,
                                               block == 8 ? tag::nCdhw8c : tag::nCdhw16c)));
}

struct LayoutCase {
  const char* name;
  int block;  // 0: not blocked
  Layout layout;
  Tensor make(const Tensor& t) const { return block ? blocked(t, block) : t.to(layout); }
};
const LayoutCase kLayouts[] = {{"plain", 0, Layout::plain},
                               {"channels_last", 0, Layout::channels_last},
                               {"nCdhw8c", 8, Layout::blocked},
                               {"nCdhw16c", 16, Layout::blocked}};

void check_layout(const Tensor& out, const Tensor& in) {
  CHECK(out.layout() == in.layout());
  if (in.layout() != Layout::blocked) return;
  CHECK(out.blocked_format().name() == in.blocked_format().name());
  double raw = 0, logical = 0;  // the channel padding stays zero
  const float* p = cpu::raw_f32(out);
  for (std::int64_t i = 0; i < cpu::raw_size(out); ++i) raw += std::abs(p[i]);
  for (double v : out.to_doubles()) logical += std::abs(v);
  CHECK(raw == doctest::Approx(logical).epsilon(1e-6));
}

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
  run();  // warm-up
  const auto reorders = reorder_stats().activations;
  const auto builds = cpu::PrimitiveCache::instance().stats().builds;
  run();
  CHECK(reorder_stats().activations == reorders);
  CHECK(cpu::PrimitiveCache::instance().stats().builds == builds);
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
