// The CPU fast path of softmax and log-softmax over channels (oneDNN primitives) against the reference.
#include <cmath>
#include <limits>

#include "test_util.h"
#include "tlk/kernels/cpu/primitive_cache.h"
#include "tlk/kernels/cpu/softmax.h"
#include "tlk/kernels/ref/softmax.h"
#include "tlk/tensor/blocked_format.h"

using namespace tlk;
namespace cpu = kernels::cpu;
namespace ref = kernels::ref;
using testing::blocked;
using testing::f64;
using testing::kLayouts;
using testing::LayoutCase;
using testing::padding_is_zero;
using testing::poison_cache;
using testing::rel_error;
using testing::same_layout;

TEST_CASE("cpu softmax and log_softmax over channels match the reference in every layout") {
  Generator gen(71);
  for (const Shape& shape : {Shape{1, 5, 3, 4, 5}, Shape{3, 13, 2, 3, 4}, Shape{3, 20, 3, 2, 3}}) {
    CAPTURE(shape.str());
    Tensor x = randn(shape, gen, 0, 3), dy = randn(shape, gen);
    for (bool log : {false, true}) {
      CAPTURE(log);
      const Tensor y_ref = log ? ref::log_softmax_forward(x, 1) : ref::softmax_forward(x, 1);
      const Tensor dx_ref = log ? ref::log_softmax_backward(dy, y_ref, 1) : ref::softmax_backward(dy, y_ref, 1);
      for (const LayoutCase& lc : kLayouts) {
        CAPTURE(lc.name);
        const Tensor xl = lc.make(x), dyl = lc.make(dy);
        poison_cache(4 * static_cast<std::size_t>(xl.numel() * 2));
        const auto reorders = reorder_stats().activations;
        const Tensor y = log ? cpu::log_softmax_forward(xl) : cpu::softmax_forward(xl);
        const Tensor dx = log ? cpu::log_softmax_backward(dyl, y) : cpu::softmax_backward(dyl, y);
        CHECK(reorder_stats().activations == reorders);
        CHECK(same_layout(y, xl));
        CHECK(same_layout(dx, xl));
        CHECK(padding_is_zero(y));
        CHECK(padding_is_zero(dx));
        CHECK(rel_error(y, y_ref) < 1e-5);
        CHECK(rel_error(dx, dx_ref) < 1e-5);
      }
    }
  }
}

TEST_CASE("cpu softmax hand-computed case and a 2-D [N, C] input") {
  // softmax({0, ln 3}) = {1/4, 3/4}; log_softmax = {-ln 4, ln 3 - ln 4}.
  Tensor x = testing::values({0.0, std::log(3.0)}, {1, 2}, DType::f32);
  const auto p = cpu::softmax_forward(x).to_doubles(), lp = cpu::log_softmax_forward(x).to_doubles();
  CHECK(p[0] == doctest::Approx(0.25).epsilon(1e-6));
  CHECK(p[1] == doctest::Approx(0.75).epsilon(1e-6));
  CHECK(lp[0] == doctest::Approx(-std::log(4.0)).epsilon(1e-6));
  Generator gen(72);
  Tensor x2 = randn({3, 13}, gen), dy2 = randn({3, 13}, gen);
  const Tensor y = cpu::softmax_forward(x2);
  CHECK(rel_error(y, ref::softmax_forward(x2, 1)) < 1e-5);
  CHECK(rel_error(cpu::softmax_backward(dy2, y), ref::softmax_backward(dy2, ref::softmax_forward(x2, 1), 1)) < 1e-5);
}

TEST_CASE("steady state: cpu softmax builds its primitives once") {
  Generator gen(73);
  Tensor x = blocked(randn({2, 13, 4, 4, 4}, gen), 16);
  auto step = [&] {
    cpu::softmax_backward(x, cpu::softmax_forward(x));
    cpu::log_softmax_backward(x, cpu::log_softmax_forward(x));
  };
  step();
  const auto builds = cpu::PrimitiveCache::instance().stats().builds;
  const auto reorders = reorder_stats().activations;
  step();
  CHECK(cpu::PrimitiveCache::instance().stats().builds == builds);
  CHECK(reorder_stats().activations == reorders);
}

TEST_CASE("ops::softmax and log_softmax in f32 over channels take the fast path and match the f64 path") {
  Generator gen(74);
  const Shape shape{3, 5, 3, 4, 2};
  Tensor x64 = randn(shape, gen, 0, 2, f64()), dy64 = randn(shape, gen, 0, 1, f64());
  for (bool log : {false, true}) {
    for (int dim : {1, -4, 2}) {  // dim 2 stays on the reference
      CAPTURE(log);
      CAPTURE(dim);
      auto run = [&](DType dtype, Layout layout) {
        Tensor x = x64.to(dtype).to(layout).detach().set_requires_grad();
        Tensor y = log ? ops::log_softmax(x, dim) : ops::softmax(x, dim);
        if (dtype == DType::f32 && dim != 2) CHECK(same_layout(y, x));
        ops::sum(y * dy64.to(dtype)).backward();
        return std::vector<Tensor>{y, x.grad()};
      };
      const auto expected = run(DType::f64, Layout::plain);
      for (Layout layout : {Layout::plain, Layout::channels_last, Layout::blocked}) {
        CAPTURE(layout_name(layout));
        const auto got = run(DType::f32, layout);
        CHECK(rel_error(got[0], expected[0]) < 2e-5);
        CHECK(rel_error(got[1], expected[1]) < 2e-5);
      }
    }
  }
}

TEST_CASE("cpu softmax: unsupported arguments go to the reference, bad calls give clear errors") {
  Tensor x = Tensor::zeros({2, 5, 2, 2, 2});
  CHECK(cpu::softmax_supported(x, 1));
  CHECK(cpu::softmax_supported(x, -4));
  CHECK_FALSE(cpu::softmax_supported(x, 2));
  CHECK_FALSE(cpu::softmax_supported(x.to(DType::f64), 1));
  CHECK_FALSE(cpu::softmax_supported(Tensor::zeros({5}), 0));
  CHECK_THROWS_WITH_AS(cpu::softmax_forward(x.to(DType::f64)), doctest::Contains("input must be an f32 CPU tensor"),
                       Error);
  CHECK_THROWS_WITH_AS(cpu::softmax_forward(Tensor::zeros({5})), doctest::Contains("rank 2 to 12"), Error);
  CHECK_THROWS_WITH_AS(cpu::log_softmax_backward(Tensor::zeros({2, 5, 2, 2}), x),
                       doctest::Contains("grad_output has shape"), Error);
}
