// Channels-last (NDHWC) activations on the GPU (Note [Channels-last on the GPU] in
// kernels/cuda/launch.h): every kernel that keeps the layout gives the reference's values and a
// channels-last result, and a UNet fed a channels-last batch trains in NDHWC end to end with the
// losses and gradients of the plain run.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "compare_to_ref.h"
#include "cuda_test_util.h"
#include "tlk/autograd/autocast.h"
#include "tlk/autograd/ops/arith.h"
#include "tlk/autograd/ops/reduce.h"
#include "tlk/autograd/ops/view.h"
#include "tlk/kernels/cuda/elementwise.h"
#include "tlk/kernels/cuda/norm.h"
#include "tlk/kernels/ref/elementwise.h"
#include "tlk/kernels/ref/norm.h"
#include "tlk/nn/deep_supervision_loss.h"
#include "tlk/nn/unet.h"

using namespace tlk;
namespace kc = kernels::cuda;
namespace ref = kernels::ref;
using testing::gpu_error;
using testing::to_cpu;
using testing::to_gpu;
using testing::to_gpu_channels_last;

namespace {

constexpr Layout kChannelsLast = Layout::channels_last;

Tensor random(const Shape& shape, Generator& gen, DType dtype, double mean = 0.0, double stddev = 1.0) {
  return randn(shape, gen, mean, stddev, TensorOptions{DType::f64}).to(dtype);
}

double tolerance(DType dtype) { return dtype == DType::f64 ? 1e-10 : 1e-5; }

// A normalisation's gradients against the reference's: the input's channels-last, the parameters' plain.
void check_norm_grads(const kc::NormGrads& got, const ref::NormGrads& expected, double tol) {
  CHECK(gpu_error(got.input, expected.input, Layout::channels_last) < tol);
  CHECK(gpu_error(got.weight, expected.weight) < tol);
  CHECK(gpu_error(got.bias, expected.bias) < tol);
}

// C not a multiple of the 32-channel tile, two tiles, one channel, one voxel per group, and groups
// long enough to be split into many parts (Note [Channels-last normalisation]).
const std::vector<Shape> kShapes = {
    {2, 5, 3, 4, 6}, {2, 40, 4, 5, 3}, {1, 1, 6, 7, 5}, {3, 16, 1, 1, 1}, {2, 33, 24, 24, 24}};

}  // namespace

TEST_CASE("cuda instance norm (plain and fused with leaky ReLU) on channels-last inputs") {
  TLK_REQUIRE_GPU();
  Generator gen(1201);
  const double slope = 0.01;
  for (DType dtype : {DType::f64, DType::f32}) {
    for (const Shape& shape : kShapes) {
      CAPTURE(dtype_name(dtype));
      CAPTURE(shape.str());
      const std::int64_t c = shape[1];
      const double tol = tolerance(dtype);
      const Tensor x = random(shape, gen, dtype, 3.0, 0.7), dy = random(shape, gen, dtype);
      const Tensor w = random({c}, gen, dtype, 1.0, 0.5), b = random({c}, gen, dtype);
      const Tensor gx = to_gpu_channels_last(x), gdy = to_gpu_channels_last(dy);

      const ref::NormForward e = ref::instance_norm_forward(x, w, b, 1e-5);
      const kc::NormForward f = kc::instance_norm_forward(gx, to_gpu(w), to_gpu(b), 1e-5);
      CHECK(gpu_error(f.output, e.output, kChannelsLast) < tol);
      CHECK(gpu_error(f.mean, e.mean) < tol);
      CHECK(gpu_error(f.inv_std, e.inv_std) < tol);
      const ref::NormGrads eg = ref::instance_norm_backward(dy, x, w, e.mean, e.inv_std);
      const kc::NormGrads g = kc::instance_norm_backward(gdy, gx, to_gpu(w), to_gpu(e.mean), to_gpu(e.inv_std));
      check_norm_grads(g, eg, tol);
      // A plain output gradient for a channels-last input is read in place of a channels-last one.
      const kc::NormGrads g_plain =
          kc::instance_norm_backward(to_gpu(dy), gx, to_gpu(w), to_gpu(e.mean), to_gpu(e.inv_std));
      CHECK(gpu_error(g_plain.input, eg.input, kChannelsLast) < tol);

      const Tensor ey = ref::unary(e.output, ref::UnaryOp::leaky_relu, slope);
      const kc::NormForward fused = kc::instance_norm_leaky_relu_forward(gx, to_gpu(w), to_gpu(b), 1e-5, slope);
      CHECK(gpu_error(fused.output, ey, kChannelsLast) < tol);
      const Tensor g_pre = ref::unary_backward(dy, e.output, Tensor(), ref::UnaryOp::leaky_relu, slope);
      const ref::NormGrads efg = ref::instance_norm_backward(g_pre, x, w, e.mean, e.inv_std);
      const kc::NormGrads fg =
          kc::instance_norm_leaky_relu_backward(gdy, gx, to_gpu(w), fused.mean, fused.inv_std, fused.output, slope);
      check_norm_grads(fg, efg, tol);
    }
  }
}

TEST_CASE("cuda batch norm on channels-last inputs, in training and evaluation") {
  TLK_REQUIRE_GPU();
  Generator gen(1202);
  for (DType dtype : {DType::f64, DType::f32}) {
    for (const Shape& shape : kShapes) {
      for (bool training : {true, false}) {
        CAPTURE(dtype_name(dtype));
        CAPTURE(shape.str());
        CAPTURE(training);
        const std::int64_t c = shape[1];
        const double tol = tolerance(dtype);
        const Tensor x = random(shape, gen, dtype, -2.0, 1.5), dy = random(shape, gen, dtype);
        const Tensor w = random({c}, gen, dtype, 1.0, 0.5), b = random({c}, gen, dtype);
        const Tensor rm0 = random({c}, gen, dtype), rv0 = rand({c}, gen, 0.5, 2.0, TensorOptions{DType::f64}).to(dtype);
        const BatchNormOptions opt = BatchNormOptions{}.with_training(training).with_momentum(0.3).with_eps(1e-4);
        Tensor rm_ref = rm0.clone(), rv_ref = rv0.clone(), rm_gpu = to_gpu(rm0), rv_gpu = to_gpu(rv0);
        const ref::NormForward e = ref::batch_norm_forward(x, w, b, rm_ref, rv_ref, opt);
        const Tensor gx = to_gpu_channels_last(x);
        const kc::NormForward f = kc::batch_norm_forward(gx, to_gpu(w), to_gpu(b), rm_gpu, rv_gpu, opt);
        CHECK(gpu_error(f.output, e.output, kChannelsLast) < tol);
        CHECK(gpu_error(rm_gpu, rm_ref) < tol);
        CHECK(gpu_error(rv_gpu, rv_ref) < tol);
        const ref::NormGrads eg = ref::batch_norm_backward(dy, x, w, e.mean, e.inv_std, training);
        const kc::NormGrads g = kc::batch_norm_backward(to_gpu_channels_last(dy), gx, to_gpu(w), to_gpu(e.mean),
                                                        to_gpu(e.inv_std), training);
        check_norm_grads(g, eg, tol);
      }
    }
  }
}

TEST_CASE("cuda channel sums, bias adds, elementwise ops and sums keep channels-last operands so") {
  TLK_REQUIRE_GPU();
  Generator gen(1203);
  for (DType dtype : {DType::f64, DType::f32}) {
    for (const Shape& shape : kShapes) {
      CAPTURE(dtype_name(dtype));
      CAPTURE(shape.str());
      const double tol = tolerance(dtype);
      const std::int64_t c = shape[1];
      const Tensor a = random(shape, gen, dtype), b = random(shape, gen, dtype), bias = random({c}, gen, dtype);
      const Tensor ga = to_gpu_channels_last(a), gb = to_gpu_channels_last(b);
      // The bias gradient of a convolution (Note [Channels-last channel sums]) and the bias add.
      CHECK(gpu_error(kc::channel_sum(ga, "test"), ref::sum(a, {0, 2, 3, 4}, false)) < tol);
      Tensor biased = ga.clone();
      kc::add_channel_bias(biased, to_gpu(bias), "test");
      const Tensor bias_view = bias.reshape({1, c, 1, 1, 1});
      CHECK(gpu_error(biased, ref::binary(a, bias_view, ref::BinaryOp::add), kChannelsLast) < tol);
      // Binary ops: both channels-last, one plain, one broadcast [1, C, 1, 1, 1].
      CHECK(gpu_error(kc::binary(ga, gb, kc::BinaryOp::mul), ref::binary(a, b, ref::BinaryOp::mul), kChannelsLast) <
            tol);
      CHECK(gpu_error(kc::binary(to_gpu(a), gb, kc::BinaryOp::sub), ref::binary(a, b, ref::BinaryOp::sub),
                      kChannelsLast) < tol);
      CHECK(gpu_error(kc::binary(ga, to_gpu(bias_view), kc::BinaryOp::div),
                      ref::binary(a, bias_view, ref::BinaryOp::div), kChannelsLast) < tol);
      Tensor accumulated = ga.clone();
      kc::add_inplace(accumulated, to_gpu(b));
      CHECK(gpu_error(accumulated, ref::binary(a, b, ref::BinaryOp::add), kChannelsLast) < tol);
      // Unary ops, their backward and ops with a scalar walk the storage and keep the strides.
      const Tensor ey = ref::unary(a, ref::UnaryOp::leaky_relu, 0.1);
      const Tensor gy = kc::unary(ga, kc::UnaryOp::leaky_relu, 0.1);
      CHECK(gpu_error(gy, ey, kChannelsLast) < tol);
      CHECK(gpu_error(kc::unary_backward(gb, ga, Tensor(), kc::UnaryOp::leaky_relu, 0.1),
                      ref::unary_backward(b, a, Tensor(), ref::UnaryOp::leaky_relu, 0.1), kChannelsLast) < tol);
      CHECK(gpu_error(kc::unary_backward(to_gpu(b), ga, Tensor(), kc::UnaryOp::leaky_relu, 0.1),
                      ref::unary_backward(b, a, Tensor(), ref::UnaryOp::leaky_relu, 0.1)) < tol);
      CHECK(gpu_error(kc::binary_scalar(ga, 2.5, kc::BinaryOp::mul, false),
                      ref::binary_scalar(a, 2.5, ref::BinaryOp::mul, false), kChannelsLast) < tol);
      // Sums read the input through its strides.
      CHECK(gpu_error(kc::sum(ga, {1}, true), ref::sum(a, {1}, true)) < tol);
      CHECK(gpu_error(kc::sum(ga, {}, false), ref::sum(a, {}, false)) < tol);
      // Casts on the GPU keep the layout (autocast sits between channels-last layers).
      CHECK(kc::is_channels_last(ga.to(DType::f32 == dtype ? DType::f64 : DType::f32)));
    }
  }
}

TEST_CASE("cuda concatenation of channels-last tensors is channels-last, and so are its gradients") {
  TLK_REQUIRE_GPU();
  Generator gen(1204);
  const Tensor a = random({2, 3, 4, 5, 6}, gen, DType::f32), b = random({2, 5, 4, 5, 6}, gen, DType::f32);
  Tensor ga = to_gpu_channels_last(a), gb = to_gpu_channels_last(b);
  ga.set_requires_grad(true);
  gb.set_requires_grad(true);
  const Tensor y = ops::cat({ga, gb}, 1);
  CHECK(kc::is_channels_last(y));
  CHECK(testing::max_abs_diff(to_cpu(y), ops::cat({a, b}, 1)) == 0.0);
  const Tensor dy = random(y.shape(), gen, DType::f32);
  ops::sum(y * to_gpu_channels_last(dy)).backward();
  CHECK(kc::is_channels_last(ga.grad()));
  CHECK(kc::is_channels_last(gb.grad()));
  CHECK(testing::max_abs_diff(to_cpu(ga.grad()), dy.narrow(1, 0, 3).contiguous()) == 0.0);
  CHECK(testing::max_abs_diff(to_cpu(gb.grad()), dy.narrow(1, 3, 5).contiguous()) == 0.0);
}

TEST_CASE("a UNet fed a channels-last batch trains channels-last end to end, with the plain run's losses") {
  TLK_REQUIRE_GPU();
  testing::Tf32Scope fp32(false);  // full fp32, so that only the layouts differ between the runs
  nn::UNetConfig config = nn::UNetConfig::isotropic(4, 1, 3);
  config.base_features = 8;
  Generator data(12);
  const Tensor images = rand({2, 1, 16, 16, 16}, data, -1.0, 1.0);
  Tensor labels = Tensor::zeros({2, 16, 16, 16}, TensorOptions{}.with(DType::u8));
  for (std::int64_t i = 0; i < labels.numel(); ++i)
    labels.data<std::uint8_t>()[i] = static_cast<std::uint8_t>((i / 7) % 3);
  const Tensor gpu_labels = to_gpu(labels);
  for (DType precision : {DType::f32, DType::bf16}) {
    CAPTURE(dtype_name(precision));
    std::vector<std::vector<Tensor>> grads;
    std::vector<double> losses;
    for (Layout layout : {Layout::plain, Layout::channels_last}) {
      Generator init(5);
      nn::UNet net(config, init);
      net.to(Device::cuda(0));
      const Tensor x = to_gpu(images).to(layout);
      Tensor loss;
      std::vector<Tensor> outputs;
      {
        autograd::AutocastGuard amp(precision);
        outputs = net.forward(x);
        loss = nn::deep_supervision_loss(outputs, gpu_labels, net.deep_supervision_weights());
      }
      loss.backward();
      // No layer fell back to plain memory: every output head is channels-last.
      for (const Tensor& out : outputs) CHECK(kc::is_channels_last(out) == (layout == Layout::channels_last));
      losses.push_back(loss.item());
      std::vector<Tensor> g;
      for (const auto& [name, p] : net.named_parameters()) {
        INFO(name);
        if (!p.grad().defined()) {  // a deep-supervision head whose weight is 0
          g.push_back(Tensor());
          continue;
        }
        CHECK(p.grad().is_contiguous());  // parameters and their gradients stay plain
        g.push_back(to_cpu(p.grad()));
      }
      grads.push_back(g);
    }
    // f32: each parameter's gradient to fp32 rounding. bf16: both runs round at the same points, but a
    // convolution's or a norm's sum in another order can flip a rounding, and the gradient of a layer
    // before an instance norm is a sum whose terms nearly cancel (Note [Gradient cancellation] in
    // unet_cuda_test.cpp), so the whole gradient is compared in L2.
    CHECK(losses[1] == doctest::Approx(losses[0]).epsilon(precision == DType::f32 ? 1e-5 : 1e-2));
    REQUIRE(grads[0].size() == grads[1].size());
    double diff2 = 0.0, norm2 = 0.0;
    for (std::size_t k = 0; k < grads[0].size(); ++k) {
      REQUIRE(grads[0][k].defined() == grads[1][k].defined());
      if (!grads[0][k].defined()) continue;
      const std::vector<double> a = grads[0][k].to_doubles(), b = grads[1][k].to_doubles();
      double scale = 1e-3;
      for (double v : a) scale = std::max(scale, std::abs(v));
      for (std::size_t i = 0; i < a.size(); ++i) {
        diff2 += (a[i] - b[i]) * (a[i] - b[i]);
        norm2 += a[i] * a[i];
      }
      if (precision == DType::f32) CHECK(testing::max_abs_diff(grads[0][k], grads[1][k]) / scale <= 1e-4);
    }
    const double l2 = std::sqrt(diff2 / std::max(norm2, 1e-30));
    MESSAGE(dtype_name(precision) << ": whole-gradient L2 difference, channels-last against plain: " << l2);
    CHECK(l2 <= (precision == DType::f32 ? 1e-4 : 0.1));
  }
}
