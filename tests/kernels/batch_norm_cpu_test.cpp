// The CPU fast path of batch norm (oneDNN primitives) against the reference, in every layout.
#include <cmath>
#include <limits>

#include "test_util.h"
#include "tlk/kernels/cpu/batch_norm.h"
#include "tlk/kernels/cpu/primitive_cache.h"
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

TEST_CASE("cpu batch_norm forward, running statistics and backward match the reference in every layout") {
  Generator gen(61);
  for (const Shape& shape : {Shape{1, 5, 3, 4, 5}, Shape{3, 13, 2, 3, 4}, Shape{3, 20, 3, 2, 3}}) {
    CAPTURE(shape.str());
    const std::int64_t c = shape[1];
    Tensor x = randn(shape, gen, 0.5, 2), dy = randn(shape, gen), w = randn({c}, gen, 1, 0.5),
           b = randn({c}, gen, 0, 0.5), rm0 = randn({c}, gen, 0, 0.3), rv0 = rand({c}, gen, 0.5, 1.5);
    for (bool training : {true, false}) {
      CAPTURE(training);
      const auto opt = BatchNormOptions{}.with_training(training).with_momentum(0.3);
      for (bool affine : {true, false}) {
        CAPTURE(affine);
        const Tensor wa = affine ? w : Tensor(), ba = affine ? b : Tensor();
        Tensor rm_ref = rm0.clone(), rv_ref = rv0.clone();
        const ref::NormForward e = ref::batch_norm_forward(x, wa, ba, rm_ref, rv_ref, opt);
        const ref::NormGrads eg = ref::batch_norm_backward(dy, x, wa, e.mean, e.inv_std, training);
        for (const LayoutCase& lc : kLayouts) {
          CAPTURE(lc.name);
          const Tensor xl = lc.make(x), dyl = lc.make(dy);
          Tensor rm = rm0.clone(), rv = rv0.clone();
          REQUIRE(cpu::batch_norm_supported(xl, wa, ba, rm, rv, opt));
          poison_cache(4 * static_cast<std::size_t>(xl.numel() * 2));
          const auto reorders = reorder_stats().activations;
          const ref::NormForward f = cpu::batch_norm_forward(xl, wa, ba, rm, rv, opt);
          const ref::NormGrads g = cpu::batch_norm_backward(dyl, xl, wa, f.mean, f.inv_std, opt);
          CHECK(reorder_stats().activations == reorders);  // every layout is used as it comes
          CHECK(same_layout(f.output, xl));
          CHECK(same_layout(g.input, xl));
          CHECK(padding_is_zero(f.output));
          CHECK(padding_is_zero(g.input));
          CHECK(rel_error(f.output, e.output) < 1e-5);
          CHECK(rel_error(f.mean, e.mean) < 1e-5);
          CHECK(rel_error(f.inv_std, e.inv_std) < 1e-5);
          CHECK(rel_error(rm, rm_ref) < 1e-6);
          CHECK(rel_error(rv, rv_ref) < 1e-6);
          CHECK(rel_error(g.input, eg.input) < 1e-5);
          CHECK(rel_error(g.weight, eg.weight) < 1e-5);
          CHECK(rel_error(g.bias, eg.bias) < 1e-5);
        }
      }
    }
  }
}

TEST_CASE("cpu batch_norm on [N, C] inputs (a classifier head) matches the reference") {
  Generator gen(62);
  for (const Shape& shape : {Shape{3, 13}, Shape{4, 5}, Shape{5, 20}}) {  // (N = 2 would make dx vanish: x̂ = ±1)
    CAPTURE(shape.str());
    const std::int64_t c = shape[1];
    Tensor x = randn(shape, gen), dy = randn(shape, gen), w = randn({c}, gen, 1, 0.5), b = randn({c}, gen);
    for (bool training : {true, false}) {
      CAPTURE(training);
      const auto opt = BatchNormOptions{}.with_training(training);
      Tensor rm_ref = Tensor::zeros({c}), rv_ref = Tensor::ones({c}), rm = rm_ref.clone(), rv = rv_ref.clone();
      const ref::NormForward e = ref::batch_norm_forward(x, w, b, rm_ref, rv_ref, opt);
      const ref::NormGrads eg = ref::batch_norm_backward(dy, x, w, e.mean, e.inv_std, training);
      const ref::NormForward f = cpu::batch_norm_forward(x, w, b, rm, rv, opt);
      const ref::NormGrads g = cpu::batch_norm_backward(dy, x, w, f.mean, f.inv_std, opt);
      CHECK(rel_error(f.output, e.output) < 1e-5);
      CHECK(rel_error(rm, rm_ref) < 1e-6);
      CHECK(rel_error(rv, rv_ref) < 1e-6);
      CHECK(rel_error(g.input, eg.input) < 1e-5);
      CHECK(rel_error(g.weight, eg.weight) < 1e-5);
      CHECK(rel_error(g.bias, eg.bias) < 1e-5);
    }
  }
}

TEST_CASE("cpu batch_norm hand-computed case: two values per channel normalise to -1 and +1") {
  // Channel 0 holds {1, 3}: mean 2, biased variance 1; eps 0 gives (x - 2) / 1 = {-1, 1}, then
  // y = 2 x̂ + 1 = {-1, 3}. Running mean moves by momentum 0.5 to 1, running var to 0.5 * 1 + 0.5 * 2 = 1.5.
  Tensor x = testing::values({1, 3}, {2, 1}, DType::f32), w = Tensor::full({1}, 2.0), b = Tensor::full({1}, 1.0);
  Tensor rm = Tensor::zeros({1}), rv = Tensor::ones({1});
  const auto f =
      cpu::batch_norm_forward(x, w, b, rm, rv, BatchNormOptions{}.with_training(true).with_momentum(0.5).with_eps(0));
  CHECK(f.output.to_doubles() == std::vector<double>{-1.0, 3.0});
  CHECK(rm.to_doubles() == std::vector<double>{1.0});
  CHECK(rv.to_doubles() == std::vector<double>{1.5});
}

TEST_CASE("steady state: cpu batch_norm builds its primitives once") {
  Generator gen(63);
  Tensor x = blocked(randn({2, 13, 4, 4, 4}, gen), 16), w = Tensor::ones({13}), b = Tensor::zeros({13});
  Tensor rm = Tensor::zeros({13}), rv = Tensor::ones({13});
  const auto opt = BatchNormOptions{}.with_training(true);
  auto step = [&] {
    auto f = cpu::batch_norm_forward(x, w, b, rm, rv, opt);
    cpu::batch_norm_backward(f.output, x, w, f.mean, f.inv_std, opt);
  };
  step();
  const auto builds = cpu::PrimitiveCache::instance().stats().builds;
  const auto reorders = reorder_stats().activations;
  step();
  CHECK(cpu::PrimitiveCache::instance().stats().builds == builds);
  CHECK(reorder_stats().activations == reorders);
}

TEST_CASE("ops::batch_norm in f32 takes the fast path and matches the f64 path") {
  Generator gen(64);
  const Shape shape{3, 5, 3, 4, 2};
  Tensor x64 = randn(shape, gen, 0, 1, f64()), w64 = randn({5}, gen, 1, 0.5, f64()),
         b64 = randn({5}, gen, 0, 0.5, f64()), dy64 = randn(shape, gen, 0, 1, f64());
  Tensor rm64 = randn({5}, gen, 0, 0.2, f64()), rv64 = rand({5}, gen, 0.5, 1.5, f64());
  for (bool training : {true, false}) {
    CAPTURE(training);
    const auto opt = BatchNormOptions{}.with_training(training);
    auto run = [&](DType dtype, Layout layout) {
      Tensor x = x64.to(dtype).to(layout).detach().set_requires_grad(), w = w64.to(dtype).detach().set_requires_grad(),
             b = b64.to(dtype).detach().set_requires_grad();
      Tensor rm = rm64.to(dtype).clone(), rv = rv64.to(dtype).clone();
      Tensor y = ops::batch_norm(x, w, b, rm, rv, opt);
      if (dtype == DType::f32) CHECK(same_layout(y, x));
      ops::sum(y * dy64.to(dtype)).backward();
      return std::vector<Tensor>{y, x.grad(), w.grad(), b.grad(), rm, rv};
    };
    testing::check_f32_layouts_match_f64(run, 2e-5);
  }
}

TEST_CASE("cpu batch_norm: unsupported arguments go to the reference, bad calls give clear errors") {
  Tensor x = Tensor::zeros({2, 5, 2, 2, 2});
  const auto train = BatchNormOptions{}.with_training(true);
  CHECK(cpu::batch_norm_supported(x, {}, {}, {}, {}, train));
  CHECK_FALSE(cpu::batch_norm_supported(x.to(DType::f64), {}, {}, {}, {}, train));
  CHECK_FALSE(cpu::batch_norm_supported(x, Tensor::ones({4}), {}, {}, {}, train));
  CHECK_FALSE(cpu::batch_norm_supported(x, {}, {}, Tensor::zeros({5}), {}, train));
  CHECK_FALSE(cpu::batch_norm_supported(x, {}, {}, {}, {}, BatchNormOptions{}));         // eval without statistics
  CHECK_FALSE(cpu::batch_norm_supported(Tensor::zeros({1, 5}), {}, {}, {}, {}, train));  // one value per channel
  CHECK_THROWS_WITH_AS(cpu::batch_norm_forward(x, Tensor::ones({4}), {}, {}, {}, train),
                       doctest::Contains("fast path does not take input"), Error);
  CHECK_THROWS_WITH_AS(
      cpu::batch_norm_backward(Tensor::zeros({2, 5, 2, 2}), x, {}, Tensor::zeros({5}), Tensor::ones({5}), train),
      doctest::Contains("grad_output has shape"), Error);
  // Through the op, the reference gives its messages.
  CHECK_THROWS_WITH_AS(ops::batch_norm(x, Tensor::ones({4}), {}, {}, {}, train),
                       doctest::Contains("weight has shape [4], expected [5]"), Error);
}
