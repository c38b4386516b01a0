// The CUDA instance and batch normalisation kernels against the reference, forward and backward, in
// f64 and f32, on odd shapes (C = 2, 3, 16; batch 1 and 3; groups split over many blocks).
#include <string>
#include <vector>

#include "compare_to_ref.h"
#include "cuda_test_util.h"
#include "tlk/kernels/cuda/norm.h"
#include "tlk/kernels/ref/norm.h"

using namespace tlk;
namespace cuda_k = kernels::cuda;
namespace ref = kernels::ref;
using testing::check_matches;
using testing::to_gpu;
using testing::tolerance;

namespace {

const DType kDtypes[] = {DType::f64, DType::f32};

// A random CPU tensor of `dtype`: normal with `mean` and `stddev` (drawn in f64, then converted).
Tensor random(const Shape& shape, Generator& gen, DType dtype, double mean = 0.0, double stddev = 1.0) {
  return randn(shape, gen, mean, stddev, TensorOptions{DType::f64}).to(dtype);
}

std::string label(const char* what, const Shape& shape, DType dtype) {
  return fmt::format("{} {} {}", what, shape.str(), dtype_name(dtype));
}

// Instance-norm shapes: odd spatial extents, C = 2, 3, 16, batch 1 and 3, a 3-D [N, C, L] input, and
// one with 40^3 voxels per group, so that each group's statistics are split over many blocks.
const std::vector<Shape> kInstanceShapes = {{1, 3, 5, 7, 6}, {3, 2, 4, 9, 5},    {3, 16, 3, 5, 7},
                                            {3, 3, 33},      {1, 2, 40, 40, 40}, {2, 3, 1, 1, 1}};

}  // namespace

TEST_CASE("cuda instance_norm matches the reference, forward and backward") {
  TLK_REQUIRE_GPU();
  Generator gen(101);
  for (DType dtype : kDtypes) {
    for (const Shape& shape : kInstanceShapes) {
      for (bool affine : {true, false}) {
        const std::int64_t c = shape[1];
        // A mean far from 0 relative to the spread exercises the shifted sums of the statistics.
        const Tensor x = random(shape, gen, dtype, 3.0, 0.7);
        const Tensor w = affine ? random({c}, gen, dtype, 1.0, 0.5) : Tensor();
        const Tensor b = affine ? random({c}, gen, dtype) : Tensor();
        const Tensor dy = random(shape, gen, dtype);
        const std::string what = label(affine ? "instance_norm affine" : "instance_norm", shape, dtype);
        const double tol = tolerance(dtype);

        const ref::NormForward e = ref::instance_norm_forward(x, w, b, 1e-5);
        const cuda_k::NormForward f = cuda_k::instance_norm_forward(to_gpu(x), affine ? to_gpu(w) : Tensor(),
                                                                    affine ? to_gpu(b) : Tensor(), 1e-5);
        check_matches(f.output, e.output, tol, what + " output");
        check_matches(f.mean, e.mean, tol, what + " mean");
        check_matches(f.inv_std, e.inv_std, tol, what + " inv_std");

        // The backward takes the reference's saved statistics, so it is compared on its own.
        const ref::NormGrads eg = ref::instance_norm_backward(dy, x, w, e.mean, e.inv_std);
        const cuda_k::NormGrads g = cuda_k::instance_norm_backward(to_gpu(dy), to_gpu(x), affine ? to_gpu(w) : Tensor(),
                                                                   to_gpu(e.mean), to_gpu(e.inv_std));
        check_matches(g.input, eg.input, tol, what + " grad input");
        check_matches(g.weight, eg.weight, tol, what + " grad weight");
        check_matches(g.bias, eg.bias, tol, what + " grad bias");
      }
    }
  }
}

TEST_CASE("cuda batch_norm matches the reference in training and evaluation, with running statistics") {
  TLK_REQUIRE_GPU();
  Generator gen(202);
  const std::vector<Shape> shapes = {{7, 3}, {1, 2, 5, 3, 7}, {3, 16, 3, 4, 5}, {3, 3, 9, 1, 11}, {2, 2, 30, 30, 30}};
  for (DType dtype : kDtypes) {
    for (const Shape& shape : shapes) {
      for (bool training : {true, false}) {
        const std::int64_t c = shape[1];
        const Tensor x = random(shape, gen, dtype, -2.0, 1.5);
        const Tensor w = random({c}, gen, dtype, 1.0, 0.5), b = random({c}, gen, dtype);
        const Tensor dy = random(shape, gen, dtype);
        const Tensor rm0 = random({c}, gen, dtype), rv0 = rand({c}, gen, 0.5, 2.0, TensorOptions{DType::f64}).to(dtype);
        const BatchNormOptions opt = BatchNormOptions{}.with_training(training).with_momentum(0.3).with_eps(1e-4);
        const std::string what = label(training ? "batch_norm training" : "batch_norm eval", shape, dtype);
        const double tol = tolerance(dtype);

        Tensor rm_ref = rm0.clone(), rv_ref = rv0.clone();
        Tensor rm_gpu = to_gpu(rm0), rv_gpu = to_gpu(rv0);
        const ref::NormForward e = ref::batch_norm_forward(x, w, b, rm_ref, rv_ref, opt);
        const cuda_k::NormForward f = cuda_k::batch_norm_forward(to_gpu(x), to_gpu(w), to_gpu(b), rm_gpu, rv_gpu, opt);
        check_matches(f.output, e.output, tol, what + " output");
        check_matches(f.mean, e.mean, tol, what + " mean");
        check_matches(f.inv_std, e.inv_std, tol, what + " inv_std");
        check_matches(rm_gpu, rm_ref, tol, what + " running_mean");
        check_matches(rv_gpu, rv_ref, tol, what + " running_var");
        if (training) CHECK(testing::gpu_rel_error(rm_gpu, rm0) > 1e-3);  // the update happened in place

        const ref::NormGrads eg = ref::batch_norm_backward(dy, x, w, e.mean, e.inv_std, training);
        const cuda_k::NormGrads g =
            cuda_k::batch_norm_backward(to_gpu(dy), to_gpu(x), to_gpu(w), to_gpu(e.mean), to_gpu(e.inv_std), training);
        check_matches(g.input, eg.input, tol, what + " grad input");
        check_matches(g.weight, eg.weight, tol, what + " grad weight");
        check_matches(g.bias, eg.bias, tol, what + " grad bias");
      }
    }
  }
}

TEST_CASE("cuda batch_norm without running statistics and without affine transform") {
  TLK_REQUIRE_GPU();
  Generator gen(303);
  const Shape shape{3, 3, 5, 4, 3};
  const Tensor x = random(shape, gen, DType::f64);
  const BatchNormOptions opt = BatchNormOptions{}.with_training(true);
  const ref::NormForward e = ref::batch_norm_forward(x, Tensor(), Tensor(), Tensor(), Tensor(), opt);
  const cuda_k::NormForward f = cuda_k::batch_norm_forward(to_gpu(x), Tensor(), Tensor(), Tensor(), Tensor(), opt);
  check_matches(f.output, e.output, 1e-10, "batch_norm plain output");
  check_matches(f.inv_std, e.inv_std, 1e-10, "batch_norm plain inv_std");
}

TEST_CASE("cuda normalisation rejects what the reference rejects") {
  TLK_REQUIRE_GPU();
  Generator gen(404);
  const Tensor x = to_gpu(random({2, 3, 4, 4, 4}, gen, DType::f64));
  // A weight of the wrong length, a CPU weight, a dtype mismatch, a too-small rank.
  CHECK_THROWS_AS(cuda_k::instance_norm_forward(x, to_gpu(random({4}, gen, DType::f64)), Tensor(), 1e-5), Error);
  CHECK_THROWS_AS(cuda_k::instance_norm_forward(x, random({3}, gen, DType::f64), Tensor(), 1e-5), Error);
  CHECK_THROWS_AS(cuda_k::instance_norm_forward(x, to_gpu(random({3}, gen, DType::f32)), Tensor(), 1e-5), Error);
  CHECK_THROWS_AS(cuda_k::instance_norm_forward(to_gpu(random({2, 3}, gen, DType::f64)), Tensor(), Tensor(), 1e-5),
                  Error);
  // Evaluation needs running statistics; training needs more than one value per channel.
  CHECK_THROWS_AS(cuda_k::batch_norm_forward(x, Tensor(), Tensor(), Tensor(), Tensor(), BatchNormOptions{}), Error);
  CHECK_THROWS_AS(cuda_k::batch_norm_forward(to_gpu(random({1, 3}, gen, DType::f64)), Tensor(), Tensor(), Tensor(),
                                             Tensor(), BatchNormOptions{}.with_training(true)),
                  Error);
}

TEST_CASE("cuda instance_norm_leaky_relu (fused) equals instance_norm then leaky_relu, forward and backward") {
  TLK_REQUIRE_GPU();
  Generator gen(107);
  const double slope = 0.01;
  for (DType dtype : {DType::f64, DType::f32, DType::bf16}) {
    const bool half = dtype == DType::bf16;
    const DType params = half ? DType::f32 : dtype;
    const double tol = half ? 1.6e-2 : tolerance(dtype);
    for (const Shape& shape : {Shape{2, 3, 5, 7, 6}, Shape{1, 2, 40, 40, 40}}) {
      const std::int64_t c = shape[1];
      const std::string what = label("instance_norm_leaky_relu", shape, dtype);
      // The inputs as the GPU sees them (rounded to bf16 there) and their exact f64 values.
      const Tensor x = to_gpu(random(shape, gen, DType::f64, 0.2, 1.0)).to(dtype);
      const Tensor dy = to_gpu(random(shape, gen, DType::f64)).to(dtype);
      const Tensor w = to_gpu(random({c}, gen, params, 1.0, 0.5)), b = to_gpu(random({c}, gen, params));
      const Tensor x64 = testing::to_cpu(x.to(DType::f64)), dy64 = testing::to_cpu(dy.to(DType::f64));
      const Tensor w64 = testing::to_cpu(w.to(DType::f64)), b64 = testing::to_cpu(b.to(DType::f64));

      const ref::NormForward e = ref::instance_norm_forward(x64, w64, b64, 1e-5);
      const Tensor ey = ref::unary(e.output, ref::UnaryOp::leaky_relu, slope);
      const cuda_k::NormForward f = cuda_k::instance_norm_leaky_relu_forward(x, w, b, 1e-5, slope);
      CHECK(f.output.dtype() == dtype);
      const double out_err = testing::gpu_rel_error(f.output.to(DType::f64), ey);
      CHECK_MESSAGE(out_err < tol, what << " output: relative error " << out_err);

      const Tensor g_pre = ref::unary_backward(dy64, e.output, Tensor(), ref::UnaryOp::leaky_relu, slope);
      const ref::NormGrads eg = ref::instance_norm_backward(g_pre, x64, w64, e.mean, e.inv_std);
      const cuda_k::NormGrads g =
          cuda_k::instance_norm_leaky_relu_backward(dy, x, w, f.mean, f.inv_std, f.output, slope);
      const double dx_err = testing::gpu_rel_error(g.input.to(DType::f64), eg.input);
      CHECK_MESSAGE(dx_err < tol, what << " grad input: relative error " << dx_err);
      // Half inputs: the derivative is read from the rounded output, so a value within a rounding of 0
      // may take the other branch; the parameter gradients are sums over the group and stay close.
      const double param_tol = half ? 2e-2 : tol;
      CHECK(testing::gpu_rel_error(g.weight, eg.weight) < param_tol);
      CHECK(testing::gpu_rel_error(g.bias, eg.bias) < param_tol);
    }
  }
  CHECK_THROWS_WITH_AS(cuda_k::instance_norm_leaky_relu_forward(to_gpu(Tensor::ones({1, 2, 2, 2, 2})), Tensor(),
                                                                Tensor(), 1e-5, -0.1),
                       doctest::Contains("negative_slope must be finite and >= 0"), Error);
}
