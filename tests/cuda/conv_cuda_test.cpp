// The cuDNN convolutions (kernels/cuda/conv3d.h) against the reference kernels, in f64, in f32 with
// full fp32 math and in f32 with TF32, plus the algorithm cache's steady state.
#include <cmath>
#include <limits>
#include <vector>

#include "compare_to_ref.h"
#include "cuda_test_util.h"
#include "tlk/kernels/cuda/conv3d.h"
#include "tlk/kernels/cuda/cudnn_context.h"
#include "tlk/kernels/ref/conv3d.h"

using namespace tlk;
namespace kc = kernels::cuda;
namespace ref = kernels::ref;
using testing::to_cpu;
using testing::to_gpu;
using testing::to_gpu_channels_last;

using testing::gpu_error;
using testing::Tf32Scope;
using Mode = testing::PrecisionMode;
static constexpr const auto& kModes = testing::kPrecisionModes;

namespace {

// A random CPU tensor of `dtype` (drawn in f64, then converted).
Tensor random(const Shape& shape, Generator& gen, DType dtype, double stddev = 1.0) {
  return randn(shape, gen, 0.0, stddev, TensorOptions{DType::f64}).to(dtype);
}

struct ConvCase {
  Shape x, w;
  Conv3dOptions opt;
};

const std::vector<ConvCase>& conv_cases() {
  static const std::vector<ConvCase> all = {
      {{1, 3, 7, 9, 8}, {5, 3, 3, 3, 3}, Conv3dOptions{}.with_padding({1, 1, 1})},
      {{3, 5, 5, 10, 11}, {17, 5, 1, 3, 3}, Conv3dOptions{}.with_stride({1, 2, 2}).with_padding({0, 1, 1})},
      {{3, 17, 6, 7, 5}, {3, 17, 3, 3, 3},
       Conv3dOptions{}.with_stride({2, 2, 2}).with_padding({1, 0, 1}).with_dilation({1, 2, 1})},
      {{1, 3, 4, 6, 6}, {5, 3, 1, 3, 3}, Conv3dOptions{}},
  };
  return all;
}

}  // namespace

TEST_CASE("cuda conv3d: forward, backward-data, backward-weights and bias match the reference") {
  TLK_REQUIRE_GPU();
  Generator gen(701);
  for (const Mode& mode : kModes) {
    CAPTURE(mode.name);
    Tf32Scope tf32(mode.tf32);
    for (const ConvCase& c : conv_cases()) {
      CAPTURE(c.x.str());
      CAPTURE(c.w.str());
      CAPTURE(c.opt.str());
      const Tensor x = random(c.x, gen, mode.dtype), w = random(c.w, gen, mode.dtype, 0.2),
                   b = random({c.w[0]}, gen, mode.dtype);
      const Tensor y_ref = ref::conv3d_forward(x, w, b, c.opt);
      const Tensor dy = random(y_ref.shape(), gen, mode.dtype);
      const Tensor gx = to_gpu(x), gw = to_gpu(w), gb = to_gpu(b), gdy = to_gpu(dy);
      CHECK(gpu_error(kc::conv3d_forward(gx, gw, gb, c.opt), y_ref) < mode.tol);
      CHECK(gpu_error(kc::conv3d_forward(gx, gw, Tensor(), c.opt), ref::conv3d_forward(x, w, Tensor(), c.opt)) <
            mode.tol);
      CHECK(gpu_error(kc::conv3d_backward_data(gdy, gw, c.x, c.opt), ref::conv3d_backward_data(dy, w, c.x, c.opt)) <
            mode.tol);
      CHECK(gpu_error(kc::conv3d_backward_weights(gdy, gx, c.w, c.opt),
                      ref::conv3d_backward_weights(dy, x, c.w, c.opt)) < mode.tol);
      CHECK(gpu_error(kc::conv3d_backward_bias(gdy), ref::conv3d_backward_bias(dy)) <
            (mode.dtype == DType::f64 ? 1e-10 : 1e-5));
    }
  }
}

TEST_CASE("cuda conv3d: channels-last operands give the reference results, channels-last") {
  TLK_REQUIRE_GPU();
  Generator gen(702);
  for (const Mode& mode : kModes) {
    CAPTURE(mode.name);
    Tf32Scope tf32(mode.tf32);
    for (const ConvCase& c : {conv_cases()[0], conv_cases()[1]}) {
      CAPTURE(c.x.str());
      const Tensor x = random(c.x, gen, mode.dtype), w = random(c.w, gen, mode.dtype, 0.2),
                   b = random({c.w[0]}, gen, mode.dtype);
      const Tensor y_ref = ref::conv3d_forward(x, w, b, c.opt);
      const Tensor dy = random(y_ref.shape(), gen, mode.dtype);
      const Tensor gx = to_gpu_channels_last(x), gdy = to_gpu_channels_last(dy);
      // Note [Channels-last convolutions]: activations come out channels-last, the weight gradient plain.
      const Layout cl = Layout::channels_last;
      CHECK(gpu_error(kc::conv3d_forward(gx, to_gpu(w), to_gpu(b), c.opt), y_ref, cl) < mode.tol);
      CHECK(gpu_error(kc::conv3d_forward(gx, to_gpu_channels_last(w), to_gpu(b), c.opt), y_ref, cl) < mode.tol);
      CHECK(gpu_error(kc::conv3d_backward_data(gdy, to_gpu(w), c.x, c.opt),
                      ref::conv3d_backward_data(dy, w, c.x, c.opt), cl) < mode.tol);
      CHECK(gpu_error(kc::conv3d_backward_weights(gdy, gx, c.w, c.opt),
                      ref::conv3d_backward_weights(dy, x, c.w, c.opt)) < mode.tol);
      // A channels-last input with a plain output gradient (from a loss): the weight gradient is right.
      CHECK(gpu_error(kc::conv3d_backward_weights(to_gpu(dy), gx, c.w, c.opt),
                      ref::conv3d_backward_weights(dy, x, c.w, c.opt)) < mode.tol);
      CHECK(gpu_error(kc::conv3d_backward_bias(gdy), ref::conv3d_backward_bias(dy)) <
            (mode.dtype == DType::f64 ? 1e-10 : 1e-5));
      // A one-channel input (a CT batch) made channels-last keeps the convolution channels-last.
      const Tensor x1 = random({c.x[0], 1, c.x[2], c.x[3], c.x[4]}, gen, mode.dtype);
      const Tensor w1 = random({c.w[0], 1, c.w[2], c.w[3], c.w[4]}, gen, mode.dtype, 0.2);
      CHECK(gpu_error(kc::conv3d_forward(to_gpu_channels_last(x1), to_gpu(w1), to_gpu(b), c.opt),
                      ref::conv3d_forward(x1, w1, b, c.opt), cl) < mode.tol);
    }
  }
}

TEST_CASE("cuda conv_transpose3d: forward and the convolutions its backward uses match the reference") {
  TLK_REQUIRE_GPU();
  Generator gen(703);
  // weight [Ci, Co, kD, kH, kW]; the last case has output_padding >= stride (allowed below the dilation),
  // whose gradients need the zero-padded output gradient (Note [Output rows past the last window]).
  const std::vector<ConvCase> cases = {
      {{1, 17, 3, 4, 5}, {17, 5, 2, 2, 2}, Conv3dOptions{}.with_stride({2, 2, 2})},  // the UNet's upsampling
      {{3, 5, 2, 3, 4}, {5, 3, 2, 2, 2}, Conv3dOptions{}.with_stride({2, 2, 2})},
      {{2, 3, 3, 4, 4}, {3, 5, 3, 3, 3},
       Conv3dOptions{}.with_stride({2, 2, 2}).with_padding({1, 1, 1}).with_output_padding({1, 1, 1})},
      {{1, 3, 3, 4, 4}, {3, 5, 3, 3, 3},
       Conv3dOptions{}.with_padding({1, 1, 1}).with_dilation({2, 2, 2}).with_output_padding({1, 0, 1})},
  };
  for (const Mode& mode : kModes) {
    CAPTURE(mode.name);
    Tf32Scope tf32(mode.tf32);
    for (const ConvCase& c : cases) {
      CAPTURE(c.x.str());
      CAPTURE(c.w.str());
      const Tensor x = random(c.x, gen, mode.dtype), w = random(c.w, gen, mode.dtype, 0.2),
                   b = random({c.w[1]}, gen, mode.dtype);
      const Tensor y_ref = ref::conv_transpose3d_forward(x, w, b, c.opt);
      const Tensor gx = to_gpu(x), gw = to_gpu(w);
      CHECK(gpu_error(kc::conv_transpose3d_forward(gx, gw, to_gpu(b), c.opt), y_ref) < mode.tol);
      CHECK(gpu_error(kc::conv_transpose3d_forward(gx, gw, Tensor(), c.opt),
                      ref::conv_transpose3d_forward(x, w, Tensor(), c.opt)) < mode.tol);
      // The gradients as autograd's conv_transpose3d computes them (Note [Transposed convolution as
      // convolution]): a forward convolution of dy, and backward-weights with input and dy exchanged.
      Conv3dOptions plain = c.opt;
      plain.output_padding = {0, 0, 0};
      const Tensor dy = random(y_ref.shape(), gen, mode.dtype);
      const Tensor gdy = to_gpu(dy);
      CHECK(gpu_error(kc::conv3d_forward(gdy, gw, Tensor(), plain), ref::conv3d_forward(dy, w, Tensor(), plain)) <
            mode.tol);
      CHECK(gpu_error(kc::conv3d_backward_weights(gx, gdy, c.w, plain),
                      ref::conv3d_backward_weights(x, dy, c.w, plain)) < mode.tol);
    }
  }
}

TEST_CASE("cuda conv3d: the second call with the same shapes searches no algorithm") {
  TLK_REQUIRE_GPU();
  Generator gen(704);
  Tf32Scope tf32(true);
  kc::clear_conv_algorithm_cache();
  const Conv3dOptions opt = Conv3dOptions{}.with_padding({0, 1, 1});
  const Tensor x = to_gpu(random({2, 6, 5, 7, 6}, gen, DType::f32)), w = to_gpu(random({4, 6, 1, 3, 3}, gen, DType::f32));
  const Tensor dy = to_gpu(random({2, 4, 5, 7, 6}, gen, DType::f32));
  auto run_all = [&] {
    return std::vector<Tensor>{kc::conv3d_forward(x, w, Tensor(), opt),
                               kc::conv3d_backward_data(dy, w, x.shape(), opt),
                               kc::conv3d_backward_weights(dy, x, w.shape(), opt)};
  };
  const std::int64_t before = kc::conv_algorithm_searches();
  const std::vector<Tensor> first = run_all();
  CHECK(kc::conv_algorithm_searches() == before + 3);  // one search per pass
  const std::vector<Tensor> second = run_all();
  CHECK(kc::conv_algorithm_searches() == before + 3);  // steady state: nothing searched
  for (std::size_t i = 0; i < first.size(); ++i) CHECK(gpu_error(second[i], to_cpu(first[i])) < 1e-5);
  {
    Tf32Scope fp32(false);  // the TF32 switch is part of the key
    kc::conv3d_forward(x, w, Tensor(), opt);
    CHECK(kc::conv_algorithm_searches() == before + 4);
  }
  kc::conv3d_forward(x, w, Tensor(), opt);
  CHECK(kc::conv_algorithm_searches() == before + 4);
}

TEST_CASE("cuda conv3d: CPU operands and mismatched shapes are errors naming the op") {
  // Runs without a GPU: the checks come before any device work.
  const Tensor x = Tensor::zeros({1, 3, 4, 4, 4}), w = Tensor::zeros({5, 3, 3, 3, 3});
  CHECK_THROWS_WITH_AS(kc::conv3d_forward(x, w, Tensor(), Conv3dOptions{}), doctest::Contains("conv3d"), Error);
  CHECK_THROWS_WITH_AS(kc::conv3d_backward_bias(x), doctest::Contains("conv3d backward bias"), Error);
  CHECK_THROWS_WITH_AS(kc::conv_transpose3d_forward(x, w, Tensor(), Conv3dOptions{}),
                       doctest::Contains("conv_transpose3d"), Error);
  const bool saved = kc::allow_tf32();
  kc::set_allow_tf32(!saved);
  CHECK(kc::allow_tf32() == !saved);
  kc::set_allow_tf32(saved);
  if (!cuda::is_available()) return;
  const Tensor gx = to_gpu(x), gw = to_gpu(Tensor::zeros({5, 4, 3, 3, 3}));
  CHECK_THROWS_WITH_AS(kc::conv3d_forward(gx, gw, Tensor(), Conv3dOptions{}), doctest::Contains("channels"), Error);
}
