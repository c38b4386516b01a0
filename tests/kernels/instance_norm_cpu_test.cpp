// The CPU fast path of instance norm (and its fused leaky ReLU) against the reference, in every layout.
#include <cmath>
#include <limits>

#include "test_util.h"
#include "tlk/kernels/cpu/instance_norm.h"
#include "tlk/kernels/ref/norm.h"
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
using testing::storage_bytes;

namespace {

// The reference forward and backward of instance norm, then leaky_relu(slope) when `fused`.
struct Expected {
  ref::NormForward f;
  Tensor y;
};
Expected reference_forward(const Tensor& x, const Tensor& w, const Tensor& b, bool fused, double slope) {
  Expected e{ref::instance_norm_forward(x, w, b, 1e-5), Tensor()};
  e.y = fused ? kernels::ref::unary(e.f.output, kernels::ref::UnaryOp::leaky_relu, slope) : e.f.output;
  return e;
}
// The activation's derivative is taken from `y` (the fast forward's output, plain), so that values of z
// within rounding of 0 cannot flip the mask between the two paths (Note [Instance norm + leaky ReLU fusion]).
ref::NormGrads reference_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Expected& e, bool fused,
                                  double slope, const Tensor& y) {
  Tensor dz = fused ? kernels::ref::unary_backward(dy, y, {}, kernels::ref::UnaryOp::leaky_relu, slope) : dy;
  return ref::instance_norm_backward(dz, x, w, e.f.mean, e.f.inv_std);
}

}  // namespace

TEST_CASE("cpu instance_norm: hand-computed values, plain and fused with a leaky ReLU") {
  // [1, 2, 3, 4]: mean 2.5, biased variance 1.25.
  Tensor x = Tensor::from_doubles({1, 2, 3, 4}, {1, 1, 4});
  const double r = 1.0 / std::sqrt(1.25);
  auto f = cpu::instance_norm_forward(x, {}, {}, cpu::InstanceNormOptions{}.with_eps(0.0));
  auto v = f.output.to_doubles();
  CHECK(v[0] == doctest::Approx(-1.5 * r).epsilon(1e-6));
  CHECK(v[1] == doctest::Approx(-0.5 * r).epsilon(1e-6));
  CHECK(v[3] == doctest::Approx(1.5 * r).epsilon(1e-6));
  CHECK(f.mean.item() == doctest::Approx(2.5).epsilon(1e-7));
  CHECK(f.inv_std.item() == doctest::Approx(r).epsilon(1e-6));
  auto fused = cpu::instance_norm_forward(x, {}, {}, cpu::InstanceNormOptions{}.with_eps(0.0).with_leaky_relu(0.1));
  v = fused.output.to_doubles();
  CHECK(v[0] == doctest::Approx(-0.15 * r).epsilon(1e-6));
  CHECK(v[2] == doctest::Approx(0.5 * r).epsilon(1e-6));
  // Backward of sum(y) without affine: the normalisation's gradient of a constant is 0.
  auto grads = cpu::instance_norm_backward(Tensor::ones({1, 1, 4}), x, {}, f.mean, f.inv_std);
  for (double d : grads.input.to_doubles()) CHECK(std::abs(d) < 1e-6);
  CHECK(grads.bias.item() == doctest::Approx(4.0));
}

TEST_CASE("cpu instance_norm forward and backward match the reference in every layout, fused and unfused") {
  Generator gen(41);
  const std::vector<Shape> shapes = {
      {1, 5, 3, 4, 5},     // batch 1, one partial channel block
      {3, 13, 4, 3, 5},    // batch 3
      {3, 20, 2, 5, 3},    // more than one block, the last one partial
      {3, 5, 1, 2, 5},     // a volume smaller than 16 (the plain kernel's tail only)
      {2, 13, 16, 17, 18}  // several chunks per channel in every layout, with partial last chunks
  };
  for (const Shape& shape : shapes) {
    CAPTURE(shape.str());
    const std::int64_t C = shape[1];
    Tensor x = randn(shape, gen, 0.5, 2.0);
    Tensor w = randn({C}, gen), b = randn({C}, gen);
    Tensor dy = randn(shape, gen);
    for (bool affine : {false, true}) {
      const Tensor wa = affine ? w : Tensor(), ba = affine ? b : Tensor();
      for (double slope : {-1.0, 0.0, 0.01}) {  // -1: not fused
        const bool fused = slope >= 0.0;
        CAPTURE(affine);
        CAPTURE(slope);
        const auto opt = fused ? cpu::InstanceNormOptions{}.with_leaky_relu(slope) : cpu::InstanceNormOptions{};
        const Expected e = reference_forward(x, wa, ba, fused, slope);
        for (const LayoutCase& lc : kLayouts) {
          CAPTURE(lc.name);
          const Tensor xl = lc.make(x), dyl = lc.make(dy);
          poison_cache(storage_bytes(xl));
          const ref::NormForward f = cpu::instance_norm_forward(xl, wa, ba, opt);
          CHECK(same_layout(f.output, xl));
          CHECK(padding_is_zero(f.output));
          CHECK(rel_error(f.output, e.y) < 1e-5);
          CHECK(rel_error(f.mean, e.f.mean) < 1e-6);
          CHECK(rel_error(f.inv_std, e.f.inv_std) < 1e-6);

          const Tensor y_plain = f.output.to(Layout::plain);
          const ref::NormGrads expected = reference_backward(dy, x, wa, e, fused, slope, y_plain);
          poison_cache(storage_bytes(xl));
          const ref::NormGrads got = cpu::instance_norm_backward(dyl, xl, wa, f.mean, f.inv_std, opt, f.output);
          CHECK(same_layout(got.input, xl));
          CHECK(padding_is_zero(got.input));
          CHECK(rel_error(got.input, expected.input) < 1e-5);
          CHECK(rel_error(got.weight, expected.weight) < 1e-5);
          CHECK(rel_error(got.bias, expected.bias) < 1e-5);
        }
      }
    }
  }
}

TEST_CASE("cpu instance_norm: a gradient in another layout than the input, and a blocked format it does not read") {
  Generator gen(42);
  Tensor x = randn({2, 13, 3, 4, 5}, gen), dy = randn(x.shape(), gen), w = randn({13}, gen);
  const ref::NormForward e = ref::instance_norm_forward(x, w, {}, 1e-5);
  const ref::NormGrads eg = ref::instance_norm_backward(dy, x, w, e.mean, e.inv_std);
  // Blocked input, plain gradient: the gradient is reordered once (counted); dx comes back blocked.
  Tensor xb = blocked(x, 16);
  auto before = reorder_stats().activations;
  auto g = cpu::instance_norm_backward(dy, xb, w, e.mean, e.inv_std);
  CHECK(reorder_stats().activations == before + 1);
  CHECK(same_layout(g.input, xb));
  CHECK(rel_error(g.input, eg.input) < 1e-5);
  // nCdhw4c is read through plain memory and the output reordered back to nCdhw4c.
  Tensor x4 = x.to(BlockedFormat(
      dnnl::memory::desc({2, 13, 3, 4, 5}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::nCdhw4c)));
  before = reorder_stats().activations;
  auto f4 = cpu::instance_norm_forward(x4, w, {});
  CHECK(reorder_stats().activations == before + 2);
  CHECK(same_layout(f4.output, x4));
  CHECK(rel_error(f4.output, e.output) < 1e-5);
  auto g4 = cpu::instance_norm_backward(dy.to(Layout::channels_last), x4, w, e.mean, e.inv_std);
  CHECK(same_layout(g4.input, x4));
  CHECK(rel_error(g4.input, eg.input) < 1e-5);
  // A strided view that is neither plain nor channels-last is read through a row-major copy.
  Tensor xt = x.permute({0, 1, 2, 4, 3}), xt_plain = xt.contiguous();
  auto ft = cpu::instance_norm_forward(xt, w, {});
  CHECK(ft.output.is_contiguous());
  CHECK(rel_error(ft.output, ref::instance_norm_forward(xt_plain, w, {}, 1e-5).output) < 1e-5);
}

TEST_CASE("cpu instance_norm statistics stay accurate for inputs with a large offset") {
  // Note [Instance norm statistics]: mean 1000, standard deviation 0.5; E[x²] - E[x]² in f32 would lose
  // every digit of the variance, and x * scale + shift would lose three digits of the output.
  Generator gen(43);
  Tensor x = randn({2, 5, 16, 16, 16}, gen, 1000.0, 0.5);
  const ref::NormForward e = ref::instance_norm_forward(x, {}, {}, 1e-5);
  for (const LayoutCase& lc : kLayouts) {
    CAPTURE(lc.name);
    const ref::NormForward f = cpu::instance_norm_forward(lc.make(x), {}, {});
    CHECK(rel_error(f.inv_std, e.inv_std) < 1e-6);
    CHECK(rel_error(f.output, e.output) < 1e-5);
  }
}

TEST_CASE("ops::instance_norm and instance_norm_leaky_relu in f32 take the fast path and match the f64 path") {
  Generator gen(44);
  Tensor x64 = randn({3, 5, 3, 4, 5}, gen, 0, 1, f64()), w64 = randn({5}, gen, 1, 0.5, f64()),
         b64 = randn({5}, gen, 0, 0.5, f64()), dy64 = randn({3, 5, 3, 4, 5}, gen, 0, 1, f64());
  for (bool fused : {false, true}) {
    CAPTURE(fused);
    auto run = [&](DType dtype, Layout layout) {
      Tensor x = x64.to(dtype).to(layout).detach().set_requires_grad(), w = w64.to(dtype).detach().set_requires_grad(),
             b = b64.to(dtype).detach().set_requires_grad();
      Tensor y = fused ? ops::instance_norm_leaky_relu(x, w, b, 0.1) : ops::instance_norm(x, w, b);
      if (dtype == DType::f32) CHECK(same_layout(y, x));
      ops::sum(y * dy64.to(dtype)).backward();
      return std::vector<Tensor>{y, x.grad(), w.grad(), b.grad()};
    };
    testing::check_f32_layouts_match_f64(run, 2e-5);
  }
}

TEST_CASE("instance_norm_leaky_relu gradients (f64, the composed reference path)") {
  Generator gen(45);
  for (const Shape& shape : {Shape{1, 3, 2, 3, 4}, Shape{3, 5, 2, 2, 3}}) {
    CAPTURE(shape.str());
    Tensor x = testing::random_leaf(shape, gen), w = testing::random_leaf({shape[1]}, gen, 0.5, 1.5),
           b = testing::random_leaf({shape[1]}, gen);
    CHECK_GRADCHECK(
        [](const auto& t) { return std::vector<Tensor>{ops::instance_norm_leaky_relu(t[0], t[1], t[2], 0.2)}; },
        (std::vector<Tensor>{x, w, b}));
  }
}

TEST_CASE("steady state: conv3d -> instance_norm -> leaky_relu -> conv3d through the ops reorders nothing") {
  Generator gen(46);
  const auto pad = Conv3dOptions{}.with_padding({1, 1, 1});
  Tensor x = randn({2, 16, 6, 7, 5}, gen).to(Layout::blocked);
  // 20 channels between the convolutions: the last block is partly padding. (Fewer than 16 input channels
  // make oneDNN's convolution ask for another source format, a reorder of the convolution's own.)
  Tensor w1 = randn({20, 16, 3, 3, 3}, gen, 0, 0.1).set_requires_grad();
  Tensor w2 = randn({13, 20, 3, 3, 3}, gen, 0, 0.1).set_requires_grad();
  Tensor gamma = randn({20}, gen, 1, 0.1).set_requires_grad(), beta = randn({20}, gen, 0, 0.1).set_requires_grad();
  for (bool fused : {false, true}) {
    CAPTURE(fused);
    Tensor dy;
    auto step = [&] {
      Tensor h = ops::conv3d(x, w1, {}, pad);
      Tensor a = fused ? ops::instance_norm_leaky_relu(h, gamma, beta, 0.01)
                       : ops::leaky_relu(ops::instance_norm(h, gamma, beta), 0.01);
      CHECK(same_layout(a, h));
      CHECK(padding_is_zero(a));
      Tensor y = ops::conv3d(a, w2, {}, pad);
      if (!dy.defined()) dy = randn(y.shape(), gen).to(y.blocked_format());
      const auto forward_done = reorder_stats().activations;
      y.backward(dy);
      return forward_done;
    };
    step();  // warm-up: builds the primitives, makes dy in the output's format
    const auto start = reorder_stats().activations;
    const auto after_forward = step();
    CHECK(after_forward == start);                        // forward
    CHECK(reorder_stats().activations == after_forward);  // backward, gradient accumulation included
  }
}

TEST_CASE("cpu instance_norm bad input gives a clear error") {
  Tensor x = Tensor::zeros({2, 5, 3, 3, 3});
  const auto stats = Tensor::zeros({2, 5});
  CHECK_THROWS_WITH_AS(cpu::instance_norm_forward(Tensor::zeros({2, 5}), {}, {}),
                       doctest::Contains("instance_norm: expected an input [N, C, D, H, W] (at least 3-D), got 2-D"),
                       Error);
  CHECK_THROWS_WITH_AS(cpu::instance_norm_forward(x.to(DType::f64), {}, {}),
                       doctest::Contains("input must be an f32 CPU tensor, got f64"), Error);
  CHECK_THROWS_WITH_AS(cpu::instance_norm_forward(x, Tensor::ones({4}), {}),
                       doctest::Contains("weight has shape [4], expected [5]"), Error);
  CHECK_THROWS_WITH_AS(cpu::instance_norm_forward(x, {}, {}, cpu::InstanceNormOptions{}.with_eps(-1.0)),
                       doctest::Contains("eps must be a finite value >= 0"), Error);
  CHECK_THROWS_WITH_AS(cpu::instance_norm_forward(x, {}, {}, cpu::InstanceNormOptions{}.with_leaky_relu(-0.1)),
                       doctest::Contains("needs a finite negative_slope >= 0"), Error);
  CHECK_THROWS_WITH_AS(cpu::instance_norm_backward(Tensor::zeros({2, 5, 3, 3, 2}), x, {}, stats, stats),
                       doctest::Contains("grad_output has shape [2, 5, 3, 3, 2], expected the input's shape"), Error);
  CHECK_THROWS_WITH_AS(cpu::instance_norm_backward(x, x, {}, Tensor::zeros({5}), stats),
                       doctest::Contains("expected 10 saved statistics ([2, 5]), got mean of shape [5]"), Error);
  CHECK_THROWS_WITH_AS(
      cpu::instance_norm_backward(x, x, {}, stats, stats, cpu::InstanceNormOptions{}.with_leaky_relu(0.01)),
      doctest::Contains("output (the fused forward's"), Error);
  CHECK_FALSE(cpu::instance_norm_supported(x, Tensor::ones({5}, f64()), {}));
  CHECK_FALSE(cpu::instance_norm_supported(x, {}, Tensor::ones({4})));
  CHECK(cpu::instance_norm_supported(x.to(Layout::blocked), Tensor::ones({5}), {}));
}
