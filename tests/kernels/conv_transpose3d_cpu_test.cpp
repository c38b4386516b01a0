// The CPU fast path of conv_transpose3d (oneDNN deconvolution) against the reference.
#include "test_util.h"
#include "tlk/kernels/cpu/conv_transpose3d.h"
#include "tlk/kernels/cpu/primitive_cache.h"
#include "tlk/tensor/blocked_format.h"

using namespace tlk;
namespace cpu = kernels::cpu;
namespace ref = kernels::ref;
using testing::padding_is_zero;
using testing::rel_error;

namespace {

struct Case {
  Shape x, w;  // w is [Ci, Co, kD, kH, kW]
  Conv3dOptions opt;
};

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {{2, 16, 3, 4, 5}, {16, 8, 2, 2, 2}, Conv3dOptions{}.with_stride({2, 2, 2})},   // the UNet's upsampling
      {{1, 3, 3, 4, 5}, {3, 5, 2, 2, 2}, Conv3dOptions{}.with_stride({2, 2, 2})},     // odd channel counts
      {{3, 13, 3, 4, 4}, {13, 20, 1, 2, 2}, Conv3dOptions{}.with_stride({1, 2, 2})},  // anisotropic, batch 3
      {{1, 20, 2, 3, 3},
       {20, 13, 2, 2, 2},
       Conv3dOptions{}.with_stride({2, 2, 2}).with_output_padding({1, 0, 1})},  // output_padding > padding
      {{2, 5, 3, 4, 3},
       {5, 13, 3, 3, 3},
       Conv3dOptions{}.with_stride({2, 2, 2}).with_padding({1, 1, 1}).with_output_padding({1, 0, 1})},
      {{1, 5, 3, 4, 4},
       {5, 3, 2, 3, 2},
       Conv3dOptions{}.with_stride({2, 1, 2}).with_padding({0, 1, 0}).with_dilation({1, 2, 1}).with_output_padding(
           {0, 1, 0})},  // dilation
      {{1, 5, 3, 4, 4},
       {5, 3, 2, 3, 2},
       Conv3dOptions{}.with_stride({2, 1, 2}).with_dilation({1, 2, 1}).with_output_padding(
           {0, 1, 0})},  // output_padding >= stride + padding: Note [Output padding beyond oneDNN]
  };
  return all;
}

Conv3dOptions as_convolution(Conv3dOptions opt) {
  opt.output_padding = {0, 0, 0};
  return opt;
}

// The reference input gradient: the convolution of dy, cut to the input's extent (an output_padding
// of at least the stride, allowed below the dilation, adds rows that match no input).
Tensor input_gradient(const Tensor& dy, const Tensor& w, const Shape& input_shape, const Conv3dOptions& opt) {
  Tensor full = ref::conv3d_forward(dy, w, {}, as_convolution(opt));
  return make_view(full, input_shape, full.strides(), 0).contiguous();
}

}  // namespace

TEST_CASE("cpu conv_transpose3d forward and backward match the reference in every layout, with and without bias") {
  Generator gen(41);
  using Method = cpu::ConvTranspose3dWeightsMethod;
  for (const auto& c : cases()) {
    CAPTURE(c.x.str());
    CAPTURE(c.w.str());
    CAPTURE(c.opt.str());
    Tensor x = randn(c.x, gen), w = randn(c.w, gen, 0, 0.2), b = randn({c.w[1]}, gen);
    for (bool with_bias : {true, false}) {
      CAPTURE(with_bias);
      Tensor bias = with_bias ? b : Tensor();
      Tensor y_ref = ref::conv_transpose3d_forward(x, w, bias, c.opt);
      Tensor dy = randn(y_ref.shape(), gen);
      Tensor dx_ref = input_gradient(dy, w, x.shape(), c.opt);
      Tensor dw_ref = ref::conv3d_backward_weights(x, dy, w.shape(), as_convolution(c.opt));
      Tensor db_ref = ref::conv3d_backward_bias(dy);
      for (Layout layout : {Layout::plain, Layout::channels_last, Layout::blocked}) {
        CAPTURE(layout_name(layout));
        Tensor xl = x.to(layout), dyl = dy.to(layout);
        Tensor y = cpu::conv_transpose3d_forward(xl, w, bias, c.opt);
        CHECK(y.shape() == y_ref.shape());
        CHECK(rel_error(y, y_ref) < 1e-5);
        CHECK(padding_is_zero(y));
        Tensor dx = cpu::conv_transpose3d_backward_data(dyl, w, x.shape(), c.opt);
        CHECK(rel_error(dx, dx_ref) < 1e-5);
        CHECK(padding_is_zero(dx));
        for (Method method : {Method::automatic, Method::onednn, Method::as_convolution}) {
          CAPTURE(static_cast<int>(method));
          auto grads = cpu::conv_transpose3d_backward_weights(dyl, xl, w.shape(), c.opt, with_bias, method);
          CHECK(grads.weight.layout() == Layout::plain);
          CHECK(rel_error(grads.weight, dw_ref) < 1e-5);
          CHECK(grads.bias.defined() == with_bias);
          if (with_bias) CHECK(rel_error(grads.bias, db_ref) < 1e-5);
        }
      }
    }
  }
}

TEST_CASE("cpu conv_transpose3d's output is blocked where oneDNN's kernel is its JIT code") {
  Generator gen(42);
  const auto opt = Conv3dOptions{}.with_stride({2, 2, 2});
  Tensor x = randn({2, 32, 4, 4, 4}, gen), w = randn({32, 16, 2, 2, 2}, gen, 0, 0.1);
  const auto impls = cpu::conv_transpose3d_impls(x.shape(), w.shape(), opt);
  Tensor y = cpu::conv_transpose3d_forward(x, w, {}, opt);
  if (impls.forward.rfind("jit", 0) != 0) {
    MESSAGE("output layout not checked: oneDNN's forward here is " << impls.forward);
    return;
  }
  REQUIRE(y.layout() == Layout::blocked);
  CHECK(y.blocked_format() == BlockedFormat::default_for(y.shape()));
}

TEST_CASE("steady state: conv_transpose3d builds no primitive twice and reorders no blocked activation") {
  Generator gen(43);
  const auto opt = Conv3dOptions{}.with_stride({1, 2, 2});
  // Channel counts as the UNet's (multiples of 16): with others, oneDNN's backward primitives on
  // AVX-512 ask for layouts of their own (plain, nCdhw8c), and the reorders are counted.
  Tensor x = randn({2, 32, 3, 4, 4}, gen), w = randn({32, 16, 1, 2, 2}, gen, 0, 0.2), b = randn({16}, gen);
  auto step = [&] {
    Tensor y = cpu::conv_transpose3d_forward(x, w, b, opt);
    Tensor dx = cpu::conv_transpose3d_backward_data(y, w, x.shape(), opt);
    cpu::conv_transpose3d_backward_weights(y, x, w.shape(), opt, true);
    return dx;
  };
  x = step();  // warm-up: builds the primitives; dx comes back in the layout the input should have
  const auto builds = cpu::PrimitiveCache::instance().stats().builds;
  const auto reorders = reorder_stats();
  step();
  CHECK(cpu::PrimitiveCache::instance().stats().builds == builds);
  CHECK(reorder_stats().activations == reorders.activations);

  // Odd channel counts: still no primitive built twice.
  x = randn({3, 13, 3, 4, 4}, gen), w = randn({13, 5, 1, 2, 2}, gen, 0, 0.2), b = randn({5}, gen);
  step();
  const auto odd_builds = cpu::PrimitiveCache::instance().stats().builds;
  step();
  CHECK(cpu::PrimitiveCache::instance().stats().builds == odd_builds);
}

TEST_CASE("cpu conv_transpose3d bad input gives a clear error") {
  Tensor w = Tensor::zeros({3, 4, 2, 2, 2});
  const auto opt = Conv3dOptions{}.with_stride({2, 2, 2});
  CHECK_THROWS_WITH_AS(cpu::conv_transpose3d_forward(Tensor::zeros({1, 2, 3, 3, 3}), w, {}, opt),
                       doctest::Contains("input has 2 channels but weight expects 3"), Error);
  CHECK_THROWS_WITH_AS(cpu::conv_transpose3d_backward_data(Tensor::zeros({1, 4, 5, 6, 6}), w, {1, 3, 3, 3, 3}, opt),
                       doctest::Contains("does not fit input"), Error);
  CHECK_THROWS_WITH_AS(cpu::conv_transpose3d_backward_weights(
                           Tensor::zeros({1, 4, 6, 6, 6}), Tensor::zeros({1, 3, 3, 3, 3}), {3, 5, 2, 2, 2}, opt, true),
                       doctest::Contains("does not fit input"), Error);
  CHECK_THROWS_WITH_AS(cpu::conv_transpose3d_backward_data(Tensor::zeros({1, 4, 6, 6, 6}, TensorOptions{DType::f64}), w,
                                                           {1, 3, 3, 3, 3}, opt),
                       doctest::Contains("must be an f32 CPU tensor"), Error);
}

TEST_CASE("ops::conv_transpose3d in f32 takes the fast path and its gradients match the f64 reference path") {
  Generator gen(44);
  const std::vector<std::pair<Conv3dOptions, Shape>> geometries = {
      {Conv3dOptions{}.with_stride({1, 2, 2}), {5, 13, 1, 2, 2}},
      {Conv3dOptions{}.with_stride({2, 2, 2}).with_padding({1, 0, 1}).with_output_padding({1, 1, 0}), {5, 13, 3, 2, 3}},
      // Note [Output padding beyond oneDNN]: the reference kernels run, in the plain layout.
      {Conv3dOptions{}.with_stride({2, 1, 2}).with_dilation({1, 2, 1}).with_output_padding({0, 1, 0}),
       {5, 13, 2, 3, 2}},
  };
  for (const auto& [opt, ws] : geometries) {
    CAPTURE(opt.str());
    Tensor x64 = randn({3, 5, 3, 4, 5}, gen, 0, 1, TensorOptions{DType::f64});
    Tensor w64 = randn(ws, gen, 0, 0.2, TensorOptions{DType::f64});
    Tensor b64 = randn({13}, gen, 0, 0.1, TensorOptions{DType::f64});
    auto run = [&](DType dtype) {
      Tensor x = x64.to(dtype).set_requires_grad(), w = w64.to(dtype).set_requires_grad(),
             b = b64.to(dtype).set_requires_grad();
      Tensor y = ops::conv_transpose3d(x, w, b, opt);
      ops::mean(ops::square(ops::leaky_relu(y, 0.01))).backward();
      return std::vector<Tensor>{y, x.grad(), w.grad(), b.grad()};
    };
    auto fast = run(DType::f32), reference = run(DType::f64);
    // The fast path's own layout where oneDNN runs JIT code (on AVX2 some geometries get its plain GEMM).
    const bool jit = cpu::conv_transpose3d_impls(x64.shape(), ws, opt).forward.rfind("jit", 0) == 0;
    CHECK((fast[0].layout() == Layout::blocked) == jit);
    for (std::size_t i = 0; i < fast.size(); ++i) {
      CAPTURE(i);
      CHECK(rel_error(fast[i], reference[i]) < 2e-5);
    }
  }
}

TEST_CASE("f64 ops::conv_transpose3d gradients with output_padding beyond the stride (dilation above it)") {
  // The reference path's input gradient is a convolution cut to the input's extent.
  Generator gen(45);
  Tensor x = testing::random_leaf({1, 2, 3, 3, 2}, gen), w = testing::random_leaf({2, 3, 2, 3, 1}, gen),
         b = testing::random_leaf({3}, gen);
  const auto opt = Conv3dOptions{}.with_stride({2, 1, 1}).with_dilation({1, 2, 1}).with_output_padding({0, 1, 0});
  CHECK(ops::conv_transpose3d(x, w, b, opt).shape() == Shape{1, 3, 6, 8, 2});
  CHECK_GRADCHECK([&](const auto& t) { return std::vector<Tensor>{ops::conv_transpose3d(t[0], t[1], t[2], opt)}; },
                  (std::vector<Tensor>{x, w, b}));
}
