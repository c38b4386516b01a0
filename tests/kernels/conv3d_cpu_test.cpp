// The CPU fast path of conv3d (oneDNN + TLK's backward-weights kernel) against the reference.
#include <algorithm>

#include "test_util.h"
#include "tlk/kernels/cpu/conv3d.h"
#include "tlk/kernels/cpu/conv3d_backward_weights.h"
#include "tlk/kernels/cpu/conv3d_backward_weights_gemm.h"
#include "tlk/kernels/cpu/conv3d_backward_weights_pointwise.h"
#include "tlk/kernels/cpu/primitive_cache.h"
#include "tlk/tensor/blocked_format.h"

using namespace tlk;
namespace cpu = kernels::cpu;
namespace ref = kernels::ref;
using testing::rel_error;

namespace {

struct Case {
  Shape x, w;
  Conv3dOptions opt;
};

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {{2, 8, 6, 7, 5}, {16, 8, 3, 3, 3}, Conv3dOptions{}.with_padding({1, 1, 1})},
      {{1, 3, 5, 6, 7}, {5, 3, 3, 3, 3}, Conv3dOptions{}.with_padding({1, 1, 1})},  // channels not a multiple of 8
      {{3, 13, 4, 9, 8}, {11, 13, 1, 3, 3}, Conv3dOptions{}.with_stride({1, 2, 2}).with_padding({0, 1, 1})},
      {{2, 16, 7, 6, 6}, {24, 16, 3, 3, 3}, Conv3dOptions{}.with_stride({2, 2, 2}).with_padding({1, 1, 1})},
      {{1, 1, 6, 6, 6}, {8, 1, 3, 3, 3}, Conv3dOptions{}.with_padding({1, 1, 1})},  // the UNet's first layer
      {{1, 9, 7, 7, 7}, {6, 9, 3, 2, 3}, Conv3dOptions{}.with_dilation({2, 1, 2}).with_padding({2, 0, 1})},
      {{2, 16, 4, 5, 6}, {2, 16, 1, 1, 1}, Conv3dOptions{}},  // a 2-class segmentation head
  };
  return all;
}

using BackwardWeightsKernel = Tensor (*)(const Tensor&, const Tensor&, const Shape&, const Conv3dOptions&);

struct KernelCase {
  std::string what;
  Shape x, w;
  Conv3dOptions opt;
};

// `kernel` against the reference on random inputs, plain and blocked, for every case.
void check_kernel_cases(BackwardWeightsKernel kernel, const std::vector<KernelCase>& cases, std::uint64_t seed) {
  Generator gen(seed);
  for (const auto& c : cases) {
    CAPTURE(c.what);
    Tensor x = randn(c.x, gen);
    Tensor dy = randn(ref::conv3d_forward(x, randn(c.w, gen), {}, c.opt).shape(), gen);
    Tensor expected = ref::conv3d_backward_weights(dy, x, c.w, c.opt);
    for (Layout layout : {Layout::plain, Layout::blocked}) {
      CAPTURE(layout_name(layout));
      CHECK(rel_error(kernel(dy.to(layout), x.to(layout), c.w, c.opt), expected) < 1e-5);
    }
  }
}

}  // namespace

TEST_CASE("cpu conv3d forward, backward-data, backward-weights and bias match the reference in every layout") {
  Generator gen(31);
  for (const auto& c : cases()) {
    CAPTURE(c.x.str());
    CAPTURE(c.w.str());
    Tensor x = randn(c.x, gen), w = randn(c.w, gen, 0, 0.2), b = randn({c.w[0]}, gen);
    Tensor y_ref = ref::conv3d_forward(x, w, b, c.opt);
    Tensor dy = randn(y_ref.shape(), gen);
    Tensor dx_ref = ref::conv3d_backward_data(dy, w, x.shape(), c.opt);
    Tensor dw_ref = ref::conv3d_backward_weights(dy, x, w.shape(), c.opt);
    Tensor db_ref = ref::conv3d_backward_bias(dy);
    for (Layout layout : {Layout::plain, Layout::channels_last, Layout::blocked}) {
      CAPTURE(layout_name(layout));
      Tensor xl = x.to(layout), dyl = dy.to(layout);
      CHECK(rel_error(cpu::conv3d_forward(xl, w, b, c.opt), y_ref) < 1e-5);
      CHECK(rel_error(cpu::conv3d_backward_data(dyl, w, x.shape(), c.opt), dx_ref) < 1e-5);
      CHECK(rel_error(cpu::conv3d_backward_weights(dyl, xl, w.shape(), c.opt), dw_ref) < 1e-5);
      CHECK(rel_error(cpu::conv3d_backward_weights_onednn(dyl, xl, w.shape(), c.opt), dw_ref) < 1e-5);
      CHECK(rel_error(cpu::conv3d_backward_weights_onednn(dyl, xl, w.shape(), c.opt, cpu::OneDnnWeightsLayout::chosen),
                      dw_ref) < 1e-5);
      if (cpu::conv3d_backward_weights_has_avx2())
        CHECK(rel_error(cpu::conv3d_backward_weights_avx2(dyl, xl, w.shape(), c.opt), dw_ref) < 1e-5);
      CHECK(rel_error(cpu::conv3d_backward_bias(dyl), db_ref) < 1e-5);
    }
    // The primitive's own output layout feeds backward without a reorder.
    Tensor y = cpu::conv3d_forward(x, w, b, c.opt);
    CHECK(rel_error(cpu::conv3d_backward_bias(y), ref::conv3d_backward_bias(y_ref)) < 1e-5);
  }
}

TEST_CASE("TLK's AVX2 backward-weights kernel: every pass width, lane choice, unit split and plane chunking") {
  if (!cpu::conv3d_backward_weights_has_avx2()) {
    MESSAGE("skipped: this CPU lacks AVX2/FMA");
    return;
  }
  const std::vector<KernelCase> all = {
      // Kernel widths 5 (a pass of 3 columns, then 2) and 1 (passes of one column).
      {"kw 5", {2, 8, 5, 6, 9}, {8, 8, 2, 3, 5}, Conv3dOptions{}.with_padding({0, 1, 2})},
      {"kw 1", {1, 16, 4, 5, 6}, {12, 16, 3, 3, 1}, Conv3dOptions{}.with_padding({1, 1, 0}).with_stride({1, 2, 1})},
      // Planes wider than 8 positions ("kw 5" and the next two) walk row by row, with checked edge columns,
      // strided and dilated too; narrower ones walk a zero-bordered copy of x (Note [Small planes]).
      {"rows, stride 2",
       {1, 8, 3, 7, 20},
       {8, 8, 3, 3, 3},
       Conv3dOptions{}.with_stride({1, 2, 2}).with_padding({1, 1, 1})},
      {"rows, dilation 2",
       {1, 8, 5, 5, 22},
       {8, 8, 3, 2, 3},
       Conv3dOptions{}.with_dilation({2, 1, 2}).with_padding({2, 0, 1})},
      // 256 output x 16 input channels: enough channel groups (128) that a unit takes every kernel row with
      // up to 16 threads.
      {"all rows per unit", {1, 16, 4, 5, 5}, {256, 16, 3, 3, 3}, Conv3dOptions{}.with_padding({1, 1, 1})},
      // Output channels in the lanes: 2 input channels, 40 output channels (a group of 4 tiles, then 1).
      {"output-channel lanes", {2, 2, 4, 5, 6}, {40, 2, 3, 3, 3}, Conv3dOptions{}.with_padding({1, 1, 1})},
      // One tap and one tile: the pass's sums are a single register (Note [No lone vector by value]).
      {"1x1x1, output-channel lanes", {2, 3, 4, 5, 6}, {8, 3, 1, 1, 1}, Conv3dOptions{}},
      // Planes of 96x96 positions do not fit L2 together: one plane per chunk, sums carried between chunks.
      {"plane chunks", {1, 8, 3, 96, 96}, {8, 8, 3, 3, 3}, Conv3dOptions{}.with_padding({1, 1, 1})},
  };
  check_kernel_cases(cpu::conv3d_backward_weights_avx2, all, 34);
}

TEST_CASE("TLK's packed-GEMM backward-weights kernel: edge tiles, strides, dilation, blocks of positions") {
  if (!cpu::conv3d_backward_weights_has_avx2()) {
    MESSAGE("skipped: this CPU lacks AVX2/FMA");
    return;
  }
  const std::vector<KernelCase> all = {
      // 8 input channels (one tile), 27 taps (9 tap groups): 9 whole panels; 16 output channels: whole
      // micro-tiles.
      {"whole tiles", {2, 8, 5, 6, 7}, {16, 8, 3, 3, 3}, Conv3dOptions{}.with_padding({1, 1, 1})},
      // 13 input channels (a partial second tile), 11 output channels (a partial last micro-tile).
      {"edge tiles",
       {1, 13, 4, 9, 8},
       {11, 13, 2, 3, 3},
       Conv3dOptions{}.with_stride({1, 2, 2}).with_padding({0, 1, 1})},
      // 8 taps: the last tap group has 2 real taps and a padding one.
      {"taps not a multiple of 3", {1, 8, 4, 5, 6}, {16, 8, 2, 2, 2}, Conv3dOptions{}.with_padding({1, 0, 1})},
      {"stride 2", {2, 16, 7, 6, 6}, {24, 16, 3, 3, 3}, Conv3dOptions{}.with_stride({2, 2, 2}).with_padding({1, 1, 1})},
      {"dilation", {1, 9, 7, 7, 7}, {6, 9, 3, 2, 3}, Conv3dOptions{}.with_dilation({2, 1, 2}).with_padding({2, 0, 1})},
      {"no padding", {1, 8, 4, 5, 6}, {8, 8, 3, 3, 3}, Conv3dOptions{}},
      // 9 x 10 x 10 = 900 positions per sample: blocks of 128 positions summed into the weights, a partial
      // last block, and two samples.
      {"blocks of positions", {2, 8, 9, 10, 10}, {12, 8, 3, 3, 3}, Conv3dOptions{}.with_padding({1, 1, 1})},
      // 1x1x1 with 40 input channels: 5 tiles of one tap group, one real tap and two padding ones.
      {"1x1x1", {2, 40, 3, 4, 5}, {8, 40, 1, 1, 1}, Conv3dOptions{}},
  };
  check_kernel_cases(cpu::conv3d_backward_weights_gemm, all, 36);
  Generator gen(38);
  CHECK_THROWS_WITH_AS(
      cpu::conv3d_backward_weights_gemm(randn({1, 8, 4, 4, 4}, gen), randn({1, 3, 4, 4, 4}, gen), {8, 3, 1, 1, 1}, {}),
      doctest::Contains("at least 8"), Error);
}

TEST_CASE("TLK's pointwise backward-weights kernel: 1x1x1 heads with 1 to 3 classes, partial tile groups") {
  if (!cpu::conv3d_backward_weights_has_avx2()) {
    MESSAGE("skipped: this CPU lacks AVX2/FMA");
    return;
  }
  Generator gen(37);
  // 8 to 44 input channels: one tile, a whole group of 4, a group of 4 and a partial one (44 = 5.5 tiles);
  // 2 x 5 x 43 x 41 positions span several units of work, the last one partial.
  for (std::int64_t ci : {8, 32, 44})
    for (std::int64_t co : {1, 2, 3}) {
      CAPTURE(ci);
      CAPTURE(co);
      Tensor x = randn({2, ci, 5, 43, 41}, gen), dy = randn({2, co, 5, 43, 41}, gen);
      const Shape ws{co, ci, 1, 1, 1};
      Tensor expected = ref::conv3d_backward_weights(dy, x, ws, {});
      CHECK(cpu::conv3d_backward_weights_pointwise_fits(dy.shape(), x.shape(), ws, {}));
      for (Layout layout : {Layout::plain, Layout::blocked}) {
        CAPTURE(layout_name(layout));
        Tensor first = cpu::conv3d_backward_weights_pointwise(dy.to(layout), x.to(layout), ws, {});
        CHECK(rel_error(first, expected) < 1e-5);
        // The same bits on a second call: no sum depends on thread timing.
        Tensor second = cpu::conv3d_backward_weights_pointwise(dy.to(layout), x.to(layout), ws, {});
        CHECK(std::equal(first.data<float>(), first.data<float>() + first.numel(), second.data<float>()));
      }
    }
  // What it does not take: 4 classes, a 3x3x3 kernel, a stride, fewer than 8 input channels.
  CHECK_FALSE(cpu::conv3d_backward_weights_pointwise_fits({1, 4, 4, 4, 4}, {1, 8, 4, 4, 4}, {4, 8, 1, 1, 1}, {}));
  CHECK_FALSE(cpu::conv3d_backward_weights_pointwise_fits({1, 2, 4, 4, 4}, {1, 8, 4, 4, 4}, {2, 8, 3, 3, 3},
                                                          Conv3dOptions{}.with_padding({1, 1, 1})));
  CHECK_FALSE(cpu::conv3d_backward_weights_pointwise_fits({1, 2, 2, 2, 2}, {1, 8, 4, 4, 4}, {2, 8, 1, 1, 1},
                                                          Conv3dOptions{}.with_stride({2, 2, 2})));
  CHECK_FALSE(cpu::conv3d_backward_weights_pointwise_fits({1, 2, 4, 4, 4}, {1, 4, 4, 4, 4}, {2, 4, 1, 1, 1}, {}));
  CHECK_THROWS_WITH_AS(cpu::conv3d_backward_weights_pointwise(randn({1, 4, 4, 4, 4}, gen), randn({1, 8, 4, 4, 4}, gen),
                                                              {4, 8, 1, 1, 1}, {}),
                       doctest::Contains("not a 1x1x1 convolution"), Error);
}

TEST_CASE("TLK's AVX2 backward-weights kernel reads a plain network input as it is") {
  if (!cpu::conv3d_backward_weights_has_avx2()) {
    MESSAGE("skipped: this CPU lacks AVX2/FMA");
    return;
  }
  Generator gen(35);
  const auto opt = Conv3dOptions{}.with_padding({1, 1, 1});
  Tensor x = randn({2, 1, 6, 5, 7}, gen), dy = randn({2, 32, 6, 5, 7}, gen).to(Layout::blocked);
  const Shape ws{32, 1, 3, 3, 3};
  const auto reorders = reorder_stats().activations;
  Tensor dw = cpu::conv3d_backward_weights_avx2(dy, x, ws, opt);
  CHECK(reorder_stats().activations == reorders);
  CHECK(rel_error(dw, ref::conv3d_backward_weights(dy, x, ws, opt)) < 1e-5);
}

TEST_CASE("TLK's AVX2 backward-weights kernels read 8- and 16-channel blocks alike") {
  if (!cpu::conv3d_backward_weights_has_avx2()) {
    MESSAGE("skipped: this CPU lacks AVX2/FMA");
    return;
  }
  Generator gen(33);
  const auto opt = Conv3dOptions{}.with_stride({1, 2, 1}).with_padding({1, 1, 0});
  Tensor x = randn({2, 20, 5, 6, 4}, gen), dy = randn({2, 12, 5, 3, 2}, gen);
  const Shape ws{12, 20, 3, 3, 3};
  Tensor expected = ref::conv3d_backward_weights(dy, x, ws, opt);
  for (int block : {8, 16}) {
    CAPTURE(block);
    auto tag = block == 8 ? dnnl::memory::format_tag::nCdhw8c : dnnl::memory::format_tag::nCdhw16c;
    auto fmt_of = [&](const Tensor& t) {
      return BlockedFormat(dnnl::memory::desc({t.shape().begin(), t.shape().end()}, dnnl::memory::data_type::f32, tag));
    };
    Tensor xb = x.to(fmt_of(x)), dyb = dy.to(fmt_of(dy));
    const auto reorders = reorder_stats().activations;
    CHECK(rel_error(cpu::conv3d_backward_weights_avx2(dyb, xb, ws, opt), expected) < 1e-5);
    CHECK(rel_error(cpu::conv3d_backward_weights_gemm(dyb, xb, ws, opt), expected) < 1e-5);
    CHECK(reorder_stats().activations == reorders);  // read in place
  }
}

TEST_CASE("steady state: no primitive is built twice and a conv chain in the blocked layout needs no reorder") {
  Generator gen(32);
  Tensor x = randn({2, 16, 8, 8, 8}, gen), w1 = randn({16, 16, 3, 3, 3}, gen, 0, 0.1),
         w2 = randn({16, 16, 3, 3, 3}, gen, 0, 0.1);
  const auto opt = Conv3dOptions{}.with_padding({1, 1, 1});
  auto step = [&] {
    Tensor h = cpu::conv3d_forward(x, w1, {}, opt);
    Tensor y = cpu::conv3d_forward(h, w2, {}, opt);
    Tensor dh = cpu::conv3d_backward_data(y, w2, h.shape(), opt);
    cpu::conv3d_backward_weights(y, h, w2.shape(), opt);
    return dh;
  };
  Tensor x_blocked = step();  // warm-up: builds the primitives; x arrives plain and is reordered once
  const auto builds = cpu::PrimitiveCache::instance().stats().builds;
  const auto reorders = reorder_stats();
  x = x_blocked;  // now the input is already in the convolution's layout
  step();
  CHECK(cpu::PrimitiveCache::instance().stats().builds == builds);
  CHECK(cpu::PrimitiveCache::instance().stats().hits > 0);
  CHECK(reorder_stats().activations == reorders.activations);
  CHECK(reorder_stats().weights > reorders.weights);  // user weights are plain: reordered each step
}

TEST_CASE("cpu conv3d bad input gives a clear error") {
  Tensor w = Tensor::zeros({4, 3, 3, 3, 3});
  CHECK_THROWS_WITH_AS(cpu::conv3d_forward(Tensor::zeros({1, 2, 5, 5, 5}), w, {}, {}),
                       doctest::Contains("input has 2 channels but weight expects 3"), Error);
  CHECK_THROWS_WITH_AS(
      cpu::conv3d_backward_weights(Tensor::zeros({1, 4, 3, 3, 3}), Tensor::zeros({2, 3, 5, 5, 5}), w.shape(), {}),
      doctest::Contains("do not fit weight"), Error);
  CHECK_THROWS_WITH_AS(
      cpu::conv3d_backward_weights(Tensor::zeros({1, 4, 4, 3, 3}), Tensor::zeros({1, 3, 5, 5, 5}), w.shape(), {}),
      doctest::Contains("has extent 4 along spatial axis 0, but input [1, 3, 5, 5, 5]"), Error);
  CHECK_THROWS_WITH_AS(
      cpu::conv3d_backward_data(Tensor::zeros({1, 4, 3, 3, 3}, TensorOptions{DType::f64}), w, {1, 3, 5, 5, 5}, {}),
      doctest::Contains("must be an f32 CPU tensor"), Error);
}

TEST_CASE("ops::conv3d in f32 takes the fast path and its gradients match the f64 reference path") {
  Generator gen(34);
  const auto opt = Conv3dOptions{}.with_stride({1, 2, 2}).with_padding({1, 1, 1});
  Tensor x64 = randn({2, 5, 6, 8, 7}, gen, 0, 1, TensorOptions{DType::f64});
  Tensor w64 = randn({7, 5, 3, 3, 3}, gen, 0, 0.2, TensorOptions{DType::f64});
  Tensor b64 = randn({7}, gen, 0, 0.1, TensorOptions{DType::f64});
  auto run = [&](DType dtype) {
    Tensor x = x64.to(dtype).set_requires_grad(), w = w64.to(dtype).set_requires_grad(),
           b = b64.to(dtype).set_requires_grad();
    Tensor y = ops::conv3d(x, w, b, opt);
    ops::mean(ops::square(ops::leaky_relu(y, 0.01))).backward();
    return std::vector<Tensor>{y, x.grad(), w.grad(), b.grad()};
  };
  auto fast = run(DType::f32), reference = run(DType::f64);
  CHECK(fast[0].layout() == Layout::blocked);  // the fast path's own layout
  for (std::size_t i = 0; i < fast.size(); ++i) {
    CAPTURE(i);
    CHECK(rel_error(fast[i], reference[i]) < 2e-5);
  }
}

TEST_CASE("fused conv3d + leaky ReLU and conv3d + sum agree with the unfused ops, forward and backward") {
  Generator gen(35);
  const auto opt = Conv3dOptions{}.with_padding({1, 1, 1});
  const Tensor x0 = randn({2, 16, 6, 7, 5}, gen), w0 = randn({16, 16, 3, 3, 3}, gen, 0, 0.1),
               b0 = randn({16}, gen, 0, 0.1), r0 = randn({2, 16, 6, 7, 5}, gen);
  for (double slope : {0.0, 0.01}) {
    CAPTURE(slope);
    auto run = [&](bool fused) {
      Tensor x = x0.clone().set_requires_grad(), w = w0.clone().set_requires_grad(), b = b0.clone().set_requires_grad();
      Tensor y =
          fused ? ops::conv3d_leaky_relu(x, w, b, opt, slope) : ops::leaky_relu(ops::conv3d(x, w, b, opt), slope);
      ops::sum(ops::square(y)).backward();
      return std::vector<Tensor>{y, x.grad(), w.grad(), b.grad()};
    };
    auto fused = run(true), unfused = run(false);
    for (std::size_t i = 0; i < fused.size(); ++i) {
      CAPTURE(i);
      CHECK(rel_error(fused[i], unfused[i]) < 1e-5);
    }
  }
  {
    auto run = [&](bool fused) {
      Tensor x = x0.clone().set_requires_grad(), w = w0.clone().set_requires_grad(),
             r = r0.to(Layout::blocked).set_requires_grad();
      Tensor y = fused ? ops::conv3d_add(x, w, {}, r, opt) : ops::conv3d(x, w, {}, opt) + r;
      ops::sum(ops::square(y)).backward();
      return std::vector<Tensor>{y, x.grad(), w.grad(), r.grad()};
    };
    auto fused = run(true), unfused = run(false);
    for (std::size_t i = 0; i < fused.size(); ++i) {
      CAPTURE(i);
      CHECK(rel_error(fused[i], unfused[i]) < 1e-5);
    }
    // The addend is not modified by the fused sum.
    Tensor r = r0.to(Layout::blocked);
    const auto before = r.to_doubles();
    ops::conv3d_add(x0, w0, {}, r, opt);
    CHECK(r.to_doubles() == before);
  }
  // A second identical call builds no primitive; a negative slope is refused.
  ops::conv3d_leaky_relu(x0, w0, b0, opt, 0.01);
  const auto builds = cpu::PrimitiveCache::instance().stats().builds;
  ops::conv3d_leaky_relu(x0, w0, b0, opt, 0.01);
  CHECK(cpu::PrimitiveCache::instance().stats().builds == builds);
  CHECK_THROWS_WITH_AS(ops::conv3d_leaky_relu(x0, w0, b0, opt, -0.1), doctest::Contains("must be finite and >= 0"),
                       Error);
  // f64 composes the unfused ops, which gradcheck.
  Tensor xd = testing::random_leaf({1, 2, 3, 4, 3}, gen), wd = testing::random_leaf({3, 2, 3, 3, 3}, gen);
  CHECK_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{ops::conv3d_leaky_relu(in[0], in[1], {}, opt, 0.1)};
      },
      (std::vector<Tensor>{xd, wd}));
}
