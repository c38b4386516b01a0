// The bf16 and f16 kernels (Note [Half precision on the GPU]) against the f64 reference evaluated on
// the same rounded inputs: elementwise ops and their backward, sums, the bias add, instance and
// batch norm (16-bit activations, f32 parameters and statistics) and the three convolution passes.
// Each result is rounded to its 16-bit type once, so the tolerance is a few units of that type's
// rounding (2^-8 for bf16, 2^-11 for f16) relative to the largest expected magnitude.
#include <string>
#include <vector>

#include "compare_to_ref.h"
#include "cuda_test_util.h"
#include "tlk/kernels/cuda/conv3d.h"
#include "tlk/kernels/cuda/cudnn_context.h"
#include "tlk/kernels/cuda/elementwise.h"
#include "tlk/kernels/cuda/norm.h"
#include "tlk/kernels/ref/conv3d.h"
#include "tlk/kernels/ref/elementwise.h"
#include "tlk/kernels/ref/norm.h"

using namespace tlk;
namespace cuda_k = kernels::cuda;
namespace ref = kernels::ref;
using testing::to_gpu;

namespace {

struct HalfMode {
  DType dtype;
  double tol;       // one rounding of the result, with margin
  double conv_tol;  // convolutions: cuDNN's engines may keep partial sums in the 16-bit type
};
const HalfMode kModes[] = {{DType::bf16, 1.6e-2, 3e-2}, {DType::f16, 2e-3, 5e-3}};

// A GPU tensor of `dtype` (normal values, drawn in f64) and the f64 CPU tensor of exactly its values.
struct Rounded {
  Tensor gpu, exact;
};
Rounded random_rounded(const Shape& shape, Generator& gen, DType dtype, double mean = 0.0, double stddev = 1.0) {
  const Tensor drawn = randn(shape, gen, mean, stddev, TensorOptions{DType::f64});
  Tensor gpu = to_gpu(drawn).to(dtype);
  return {gpu, testing::to_cpu(gpu.to(DType::f64))};
}

// The error of a 16-bit GPU result against the f64 reference (relative to the largest magnitude),
// after checking its dtype and shape.
double half_error(const Tensor& got, DType dtype, const Tensor& expected) {
  REQUIRE(got.defined());
  CHECK(got.device().is_cuda());
  CHECK(got.dtype() == dtype);
  REQUIRE(got.shape() == expected.shape());
  return testing::gpu_rel_error(got.to(DType::f64), expected);
}

#define CHECK_HALF(got, dtype, expected, tol, what)                                           \
  do {                                                                                        \
    const double err_ = half_error(got, dtype, expected);                                     \
    CHECK_MESSAGE(err_ < (tol), what << ": relative error " << err_ << " (tolerance " << (tol) << ")"); \
  } while (0)

}  // namespace

TEST_CASE("cuda elementwise ops and sums in bf16 and f16 match the reference on the rounded inputs") {
  TLK_REQUIRE_GPU();
  Generator gen(41);
  for (const HalfMode& m : kModes) {
    const std::string t(dtype_name(m.dtype));
    const Rounded a = random_rounded({2, 3, 4, 5}, gen, m.dtype), b = random_rounded({3, 1, 5}, gen, m.dtype);
    for (auto op : {ref::BinaryOp::add, ref::BinaryOp::sub, ref::BinaryOp::mul, ref::BinaryOp::div}) {
      const Tensor denominator = op == ref::BinaryOp::div ? cuda_k::binary_scalar(b.gpu, 3.0, ref::BinaryOp::add) : b.gpu;
      const Tensor exact_den = op == ref::BinaryOp::div ? testing::to_cpu(denominator.to(DType::f64)) : b.exact;
      CHECK_HALF(cuda_k::binary(a.gpu, denominator, op), m.dtype, ref::binary(a.exact, exact_den, op), m.tol,
                 t << " " << ref::op_name(op) << " with broadcasting");
    }
    CHECK_HALF(cuda_k::binary_scalar(a.gpu, -0.7, ref::BinaryOp::mul), m.dtype,
               ref::binary_scalar(a.exact, -0.7, ref::BinaryOp::mul), m.tol, t << " mul by a scalar");
    CHECK_HALF(cuda_k::binary_scalar(a.gpu, 1.5, ref::BinaryOp::sub, true), m.dtype,
               ref::binary_scalar(a.exact, 1.5, ref::BinaryOp::sub, true), m.tol, t << " scalar minus tensor");
    for (auto op : {ref::UnaryOp::leaky_relu, ref::UnaryOp::relu, ref::UnaryOp::sigmoid, ref::UnaryOp::tanh}) {
      const Tensor y = cuda_k::unary(a.gpu, op, 0.01);
      CHECK_HALF(y, m.dtype, ref::unary(a.exact, op, 0.01), m.tol, t << " " << ref::op_name(op));
      const Rounded g = random_rounded(a.exact.shape(), gen, m.dtype);
      const Tensor y_exact = testing::to_cpu(y.to(DType::f64));
      CHECK_HALF(cuda_k::unary_backward(g.gpu, a.gpu, y, op, 0.01), m.dtype,
                 ref::unary_backward(g.exact, a.exact, y_exact, op, 0.01), m.tol, t << " " << ref::op_name(op) << " backward");
    }
    // Sums accumulate in double and round once; a mean away from zero makes f32 accumulation show.
    // (The full sum, about 18000, stays below f16's largest finite value, 65504.)
    const Rounded big = random_rounded({3, 4, 50, 60}, gen, m.dtype, 0.5, 1.0);
    for (const std::vector<int>& axes : {std::vector<int>{0, 2, 3}, std::vector<int>{}, std::vector<int>{1}})
      CHECK_HALF(cuda_k::sum(big.gpu, axes, false), m.dtype, ref::sum(big.exact, axes, false), m.tol,
                 t << " sum over " << axes.size() << " axes");
    CHECK_HALF(cuda_k::channel_sum(big.gpu, "test"), m.dtype, ref::sum(big.exact, {0, 2, 3}, false), m.tol,
               t << " channel_sum");
    // In-place broadcast add (the convolution bias).
    const Rounded y = random_rounded({2, 3, 4, 5}, gen, m.dtype), bias = random_rounded({1, 3, 1, 1}, gen, m.dtype);
    Tensor out = y.gpu.clone();
    cuda_k::add_inplace(out, bias.gpu);
    CHECK_HALF(out, m.dtype, ref::binary(y.exact, bias.exact, ref::BinaryOp::add), m.tol, t << " add_inplace");
  }
}

TEST_CASE("cuda instance and batch norm take bf16 and f16 inputs with f32 parameters and statistics") {
  TLK_REQUIRE_GPU();
  Generator gen(43);
  for (const HalfMode& m : kModes) {
    const std::string t(dtype_name(m.dtype));
    for (const Shape& shape : {Shape{2, 3, 5, 7, 6}, Shape{1, 2, 40, 40, 40}}) {
      const std::int64_t c = shape[1];
      const Rounded x = random_rounded(shape, gen, m.dtype, 3.0, 0.7), dy = random_rounded(shape, gen, m.dtype);
      const Tensor w = randn({c}, gen, 1.0, 0.5), b = randn({c}, gen);  // f32 parameters
      const Tensor w64 = w.to(DType::f64), b64 = b.to(DType::f64);
      const std::string what = t + " instance_norm " + shape.str();

      const ref::NormForward e = ref::instance_norm_forward(x.exact, w64, b64, 1e-5);
      const cuda_k::NormForward f = cuda_k::instance_norm_forward(x.gpu, to_gpu(w), to_gpu(b), 1e-5);
      CHECK_HALF(f.output, m.dtype, e.output, m.tol, what << " output");
      CHECK(f.mean.dtype() == DType::f32);
      CHECK(testing::gpu_rel_error(f.mean, e.mean) < 1e-5);
      CHECK(testing::gpu_rel_error(f.inv_std, e.inv_std) < 1e-5);

      const ref::NormGrads eg = ref::instance_norm_backward(dy.exact, x.exact, w64, e.mean, e.inv_std);
      const cuda_k::NormGrads g = cuda_k::instance_norm_backward(dy.gpu, x.gpu, to_gpu(w), f.mean, f.inv_std);
      CHECK_HALF(g.input, m.dtype, eg.input, m.tol, what << " grad input");
      CHECK(g.weight.dtype() == DType::f32);
      CHECK(g.bias.dtype() == DType::f32);
      CHECK(testing::gpu_rel_error(g.weight, eg.weight) < 1e-4);
      CHECK(testing::gpu_rel_error(g.bias, eg.bias) < 1e-4);

      // Batch norm in training: the running statistics are f32 buffers updated in place.
      Tensor rm = to_gpu(Tensor::zeros({c})), rv = to_gpu(Tensor::ones({c}));
      Tensor rm64 = Tensor::zeros({c}, TensorOptions{DType::f64}), rv64 = Tensor::ones({c}, TensorOptions{DType::f64});
      const auto opt = BatchNormOptions{}.with_training(true);
      const ref::NormForward eb = ref::batch_norm_forward(x.exact, w64, b64, rm64, rv64, opt);
      const cuda_k::NormForward fb = cuda_k::batch_norm_forward(x.gpu, to_gpu(w), to_gpu(b), rm, rv, opt);
      CHECK_HALF(fb.output, m.dtype, eb.output, m.tol, t << " batch_norm output " << shape.str());
      CHECK(testing::gpu_rel_error(rm, rm64) < 1e-5);
      CHECK(testing::gpu_rel_error(rv, rv64) < 1e-5);
    }
    // Parameters must be f32 for a 16-bit input: anything else is refused with a message.
    const Rounded x = random_rounded({1, 2, 3, 3, 3}, gen, m.dtype);
    CHECK_THROWS_WITH_AS(cuda_k::instance_norm_forward(x.gpu, to_gpu(Tensor::ones({2}, TensorOptions{DType::f64})),
                                                       Tensor(), 1e-5),
                         doctest::Contains("expected f32"), Error);
  }
}

TEST_CASE("cuda conv3d forward, backward and transposed conv in bf16 and f16 match the reference") {
  TLK_REQUIRE_GPU();
  Generator gen(47);
  struct Case {
    Shape x, w;
    Conv3dOptions opt;
  };
  const std::vector<Case> cases = {
      {{2, 3, 6, 7, 5}, {4, 3, 3, 3, 3}, Conv3dOptions{}.with_padding({1, 1, 1})},
      {{1, 8, 9, 8, 10}, {16, 8, 3, 3, 3}, Conv3dOptions{}.with_stride({2, 2, 2}).with_padding({1, 1, 1})},
      {{2, 16, 8, 8, 8}, {8, 16, 1, 1, 1}, Conv3dOptions{}}};
  for (const HalfMode& m : kModes) {
    for (const Case& c : cases) {
      const std::string what = fmt::format("{} conv3d x{} w{} {}", dtype_name(m.dtype), c.x.str(), c.w.str(), c.opt.str());
      const Rounded x = random_rounded(c.x, gen, m.dtype), w = random_rounded(c.w, gen, m.dtype, 0.0, 0.3);
      const Rounded bias = random_rounded({c.w[0]}, gen, m.dtype);
      const Tensor y = cuda_k::conv3d_forward(x.gpu, w.gpu, bias.gpu, c.opt);
      const Tensor ey = ref::conv3d_forward(x.exact, w.exact, bias.exact, c.opt);
      CHECK_HALF(y, m.dtype, ey, m.conv_tol, what << " forward");
      const Rounded dy = random_rounded(ey.shape(), gen, m.dtype);
      CHECK_HALF(cuda_k::conv3d_backward_data(dy.gpu, w.gpu, c.x, c.opt), m.dtype,
                 ref::conv3d_backward_data(dy.exact, w.exact, c.x, c.opt), m.conv_tol, what << " backward data");
      CHECK_HALF(cuda_k::conv3d_backward_weights(dy.gpu, x.gpu, c.w, c.opt), m.dtype,
                 ref::conv3d_backward_weights(dy.exact, x.exact, c.w, c.opt), m.conv_tol, what << " backward weights");
      CHECK_HALF(cuda_k::conv3d_backward_bias(dy.gpu), m.dtype, ref::conv3d_backward_bias(dy.exact), m.tol,
                 what << " backward bias");
    }
    // The UNet's upsampling: a transposed convolution with kernel = stride = 2.
    const Rounded x = random_rounded({2, 8, 4, 5, 3}, gen, m.dtype), w = random_rounded({8, 4, 2, 2, 2}, gen, m.dtype);
    const auto opt = Conv3dOptions{}.with_stride({2, 2, 2});
    CHECK_HALF(cuda_k::conv_transpose3d_forward(x.gpu, w.gpu, Tensor(), opt), m.dtype,
               ref::conv_transpose3d_forward(x.exact, w.exact, Tensor(), opt), m.conv_tol,
               dtype_name(m.dtype) << " conv_transpose3d");
  }
}
