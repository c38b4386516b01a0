// The CPU fast path of ReLU and leaky ReLU against the reference, in every layout.
#include <cmath>
#include <limits>

#include "test_util.h"
#include "tlk/kernels/cpu/eltwise.h"
#include "tlk/tensor/blocked_format.h"

using namespace tlk;
namespace cpu = kernels::cpu;
namespace ref = kernels::ref;
using ref::UnaryOp;
using testing::blocked;
using testing::kLayouts;
using testing::LayoutCase;
using testing::padding_is_zero;
using testing::poison_cache;
using testing::same_layout;
using testing::storage_bytes;

TEST_CASE("cpu relu and leaky_relu: hand-computed values") {
  Tensor x = Tensor::from_doubles({-2, -0.5, 0, 0.5, 2}, {5});
  CHECK(cpu::relu_forward(x).to_doubles() == std::vector<double>{0, 0, 0, 0.5, 2});
  CHECK(cpu::leaky_relu_forward(x, 0.25).to_doubles() == std::vector<double>{-0.5, -0.125, 0, 0.5, 2});
  Tensor g = Tensor::from_doubles({1, 2, 3, 4, 5}, {5});
  // At 0 the derivative is the slope, as in the reference.
  CHECK(cpu::leaky_relu_backward(g, x, 0.25).to_doubles() == std::vector<double>{0.25, 0.5, 0.75, 4, 5});
  CHECK(cpu::relu_backward(g, x).to_doubles() == std::vector<double>{0, 0, 0, 4, 5});
}

TEST_CASE("cpu relu and leaky_relu match the reference in every layout and keep the padding zero") {
  Generator gen(51);
  for (const Shape& shape : {Shape{1, 5, 3, 4, 5}, Shape{3, 13, 4, 3, 5}, Shape{3, 20, 9, 10, 11}}) {
    CAPTURE(shape.str());
    Tensor x = randn(shape, gen), dy = randn(shape, gen);
    for (double slope : {0.0, 0.01, 0.3, -0.5}) {
      CAPTURE(slope);
      const UnaryOp op = slope == 0.0 ? UnaryOp::relu : UnaryOp::leaky_relu;
      const Tensor y_ref = ref::unary(x, op, slope), dx_ref = ref::unary_backward(dy, x, {}, op, slope);
      for (const LayoutCase& lc : kLayouts) {
        CAPTURE(lc.name);
        const Tensor xl = lc.make(x), dyl = lc.make(dy);
        poison_cache(storage_bytes(xl));
        const Tensor y = cpu::leaky_relu_forward(xl, slope);
        CHECK(same_layout(y, xl));
        CHECK(padding_is_zero(y));
        CHECK(testing::max_abs_diff(y, y_ref) == 0.0);
        poison_cache(storage_bytes(xl));
        const Tensor dx = cpu::leaky_relu_backward(dyl, xl, slope);
        CHECK(same_layout(dx, xl));
        CHECK(padding_is_zero(dx));
        CHECK(testing::max_abs_diff(dx, dx_ref) == 0.0);
        // For slope >= 0 the output gives the same derivative (Note [Rectifier backward from the output]).
        if (slope >= 0.0) CHECK(testing::max_abs_diff(cpu::leaky_relu_backward(dyl, y, slope), dx_ref) == 0.0);
      }
    }
  }
}

TEST_CASE("cpu leaky_relu: a gradient in another layout, an unusual blocked format and a strided view") {
  Generator gen(52);
  Tensor x = randn({2, 13, 3, 4, 5}, gen), dy = randn(x.shape(), gen);
  const Tensor dx_ref = ref::unary_backward(dy, x, {}, UnaryOp::leaky_relu, 0.1);
  // A plain gradient for a blocked input: reordered once (counted); the result is blocked.
  Tensor xb = x.to(Layout::blocked);
  auto before = reorder_stats().activations;
  Tensor dx = cpu::leaky_relu_backward(dy, xb, 0.1);
  CHECK(reorder_stats().activations == before + 1);
  CHECK(same_layout(dx, xb));
  CHECK(testing::max_abs_diff(dx, dx_ref) == 0.0);
  // Any blocked format works on the raw buffer, without a reorder.
  Tensor x4 = blocked(x, dnnl::memory::format_tag::nCdhw4c);
  before = reorder_stats().activations;
  Tensor y4 = cpu::leaky_relu_forward(x4, 0.1);
  CHECK(reorder_stats().activations == before);
  CHECK(same_layout(y4, x4));
  CHECK(testing::max_abs_diff(y4, ref::unary(x, UnaryOp::leaky_relu, 0.1)) == 0.0);
  // A permuted view is read through a row-major copy.
  Tensor xt = x.permute({0, 1, 2, 4, 3});
  Tensor yt = cpu::leaky_relu_forward(xt, 0.1);
  CHECK(yt.is_contiguous());
  CHECK(testing::max_abs_diff(yt, ref::unary(xt, UnaryOp::leaky_relu, 0.1)) == 0.0);
}

TEST_CASE("ops::relu and ops::leaky_relu in f32 take the fast path, keep the layout and match f64") {
  Generator gen(53);
  Tensor x64 = randn({3, 5, 3, 4, 5}, gen, 0, 1, testing::f64()), dy64 = randn(x64.shape(), gen, 0, 1, testing::f64());
  for (double slope : {0.0, 0.01, -0.3}) {
    CAPTURE(slope);
    auto run = [&](DType dtype, Layout layout) {
      Tensor x = x64.to(dtype).to(layout).detach().set_requires_grad();
      Tensor y = slope == 0.0 ? ops::relu(x) : ops::leaky_relu(x, slope);
      if (dtype == DType::f32) CHECK(same_layout(y, x));
      ops::sum(y * dy64.to(dtype)).backward();
      return std::vector<Tensor>{y, x.grad()};
    };
    const auto expected = run(DType::f64, Layout::plain);
    for (Layout layout : {Layout::plain, Layout::channels_last, Layout::blocked}) {
      CAPTURE(layout_name(layout));
      const auto got = run(DType::f32, layout);
      CHECK(testing::max_rel_diff(got[0], expected[0]) < 1e-6);
      CHECK(testing::max_rel_diff(got[1], expected[1]) < 1e-6);
    }
  }
}

TEST_CASE("cpu relu and leaky_relu bad input gives a clear error") {
  Tensor x = Tensor::zeros({2, 3, 4});
  CHECK_THROWS_WITH_AS(cpu::leaky_relu_forward(x.to(DType::f64), 0.1),
                       doctest::Contains("leaky_relu: input must be an f32 CPU tensor, got f64"), Error);
  CHECK_THROWS_WITH_AS(cpu::leaky_relu_forward(x, std::nan("")), doctest::Contains("negative_slope must be finite"),
                       Error);
  CHECK_THROWS_WITH_AS(cpu::relu_backward(Tensor::zeros({2, 3, 5}), x),
                       doctest::Contains("relu backward: grad_output has shape [2, 3, 5], expected the saved tensor's "
                                         "shape [2, 3, 4]"),
                       Error);
  CHECK_FALSE(cpu::eltwise_supported(x.to(DType::f64)));
}
