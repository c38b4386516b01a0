// The CUDA elementwise kernels (kernels/cuda/elementwise.h) against kernels/ref on random inputs.
#include <cmath>
#include <vector>

#include "cuda_test_util.h"
#include "tlk/kernels/cuda/elementwise.h"
#include "tlk/kernels/ref/elementwise.h"

using namespace tlk;
namespace kc = kernels::cuda;
namespace ref = kernels::ref;
using ref::BinaryOp;
using ref::UnaryOp;
using testing::max_rel_diff;
using testing::rel_error;
using testing::to_cpu;
using testing::to_gpu;

namespace {

constexpr DType kDtypes[] = {DType::f64, DType::f32};
double tolerance(DType dtype) { return dtype == DType::f64 ? 1e-12 : 1e-6; }

// A GPU result against ref's: device, dtype, shape, and elementwise |got - expected| / (1 + |expected|).
void check_close(const Tensor& got, const Tensor& expected, double tol) {
  REQUIRE(got.defined());
  CHECK(got.device().is_cuda());
  CHECK(got.dtype() == expected.dtype());
  REQUIRE(got.shape() == expected.shape());
  CHECK(max_rel_diff(to_cpu(got), expected) < tol);
}

// A GPU result that must equal ref's exactly (copies and selections).
void check_exact(const Tensor& got, const Tensor& expected) {
  REQUIRE(got.defined());
  CHECK(got.device().is_cuda());
  CHECK(got.dtype() == expected.dtype());
  REQUIRE(got.shape() == expected.shape());
  CHECK(testing::max_abs_diff(to_cpu(got), expected) == 0.0);
}

Tensor normal(const Shape& shape, Generator& gen, DType dtype) {
  return randn(shape, gen, 0, 1, TensorOptions{DType::f64}).to(dtype);
}

Tensor uniform(const Shape& shape, Generator& gen, double low, double high, DType dtype) {
  return rand(shape, gen, low, high, TensorOptions{DType::f64}).to(dtype);
}

constexpr BinaryOp kBinaryOps[] = {BinaryOp::add, BinaryOp::sub, BinaryOp::mul, BinaryOp::div};
constexpr UnaryOp kUnaryOps[] = {UnaryOp::relu, UnaryOp::leaky_relu, UnaryOp::sigmoid, UnaryOp::tanh, UnaryOp::exp,
                                 UnaryOp::log,  UnaryOp::neg,        UnaryOp::abs,     UnaryOp::sqrt, UnaryOp::square};

}  // namespace

TEST_CASE("cuda binary ops broadcast like ref, on contiguous and strided inputs") {
  TLK_REQUIRE_GPU();
  Generator gen(711);
  struct Case {
    Shape a, b;
  };
  const Case cases[] = {
      {{2, 3, 1, 5}, {3, 4, 1}},  // broadcast both ways, b has fewer dimensions
      {{3, 4, 5}, {3, 4, 5}},     // same shape
      {{}, {3, 7}},               // 0-D operand
      {{1, 13, 1, 1, 1}, {3, 13, 4, 5, 6}},  // a bias
      {{3, 13, 4, 5, 6}, {1}},
  };
  for (DType dtype : kDtypes) {
    CAPTURE(dtype_name(dtype));
    for (const Case& c : cases) {
      CAPTURE(c.a.str());
      CAPTURE(c.b.str());
      Tensor a = normal(c.a, gen, dtype);
      Tensor b = uniform(c.b, gen, 0.5, 2.0, dtype);  // away from 0 for div
      Tensor ag = to_gpu(a), bg = to_gpu(b);
      for (BinaryOp op : kBinaryOps) {
        CAPTURE(ref::op_name(op));
        check_close(kc::binary(ag, bg, op), ref::binary(a, b, op), tolerance(dtype));
        check_close(kc::binary(bg, ag, op), ref::binary(b, a, op), tolerance(dtype));
      }
    }
    // Non-contiguous inputs: a transposed and a narrowed view.
    Tensor a = normal({5, 4, 6}, gen, dtype), b = uniform({4, 5, 8}, gen, 0.5, 2.0, dtype);
    Tensor av = a.permute({1, 0, 2}), bv = b.narrow(2, 1, 6);
    Tensor avg = to_gpu(a).permute({1, 0, 2}), bvg = to_gpu(b).narrow(2, 1, 6);
    for (BinaryOp op : kBinaryOps) check_close(kc::binary(avg, bvg, op), ref::binary(av, bv, op), tolerance(dtype));
    check_close(kc::add(avg, bvg), ref::add(av, bv), tolerance(dtype));
    check_close(kc::sub(avg, bvg), ref::sub(av, bv), tolerance(dtype));
    check_close(kc::mul(avg, bvg), ref::mul(av, bv), tolerance(dtype));
    check_close(kc::div(avg, bvg), ref::div(av, bv), tolerance(dtype));
  }
}

TEST_CASE("cuda binary_scalar, scalar first and last") {
  TLK_REQUIRE_GPU();
  Generator gen(712);
  for (DType dtype : kDtypes) {
    CAPTURE(dtype_name(dtype));
    Tensor a = uniform({3, 5, 7}, gen, 0.5, 2.0, dtype);
    Tensor ag = to_gpu(a);
    for (BinaryOp op : kBinaryOps)
      for (bool first : {false, true}) {
        CAPTURE(ref::op_name(op));
        CAPTURE(first);
        check_close(kc::binary_scalar(ag, 1.7, op, first), ref::binary_scalar(a, 1.7, op, first), tolerance(dtype));
        check_close(kc::binary_scalar(ag.permute({2, 0, 1}), -0.3, op, first),
                    ref::binary_scalar(a.permute({2, 0, 1}), -0.3, op, first), tolerance(dtype));
      }
  }
}

TEST_CASE("cuda unary ops and their backward match ref, reading only x or y as ref does") {
  TLK_REQUIRE_GPU();
  Generator gen(713);
  for (DType dtype : kDtypes) {
    CAPTURE(dtype_name(dtype));
    for (UnaryOp op : kUnaryOps) {
      CAPTURE(ref::op_name(op));
      const bool positive = op == UnaryOp::log || op == UnaryOp::sqrt;
      Tensor x = positive ? uniform({3, 7, 5, 4}, gen, 0.1, 3.0, dtype) : normal({3, 7, 5, 4}, gen, dtype);
      for (double alpha : {0.01, 0.2}) {
        CAPTURE(alpha);
        Tensor y = ref::unary(x, op, alpha);
        Tensor xg = to_gpu(x);
        Tensor yg = kc::unary(xg, op, alpha);
        check_close(yg, y, tolerance(dtype));
        check_close(kc::unary(xg.permute({0, 2, 1, 3}), op, alpha), ref::unary(x.permute({0, 2, 1, 3}), op, alpha),
                    tolerance(dtype));
        Tensor g = normal(x.shape(), gen, dtype);
        Tensor dx = ref::unary_backward(g, x, y, op, alpha);
        check_close(kc::unary_backward(to_gpu(g), xg, to_gpu(y), op, alpha), dx, tolerance(dtype));
        // Only the tensor ref reads is needed (neg needs neither).
        const bool reads_x = ref::unary_reads_input(op);
        Tensor only_x = reads_x && op != UnaryOp::neg ? xg : Tensor();
        Tensor only_y = !reads_x ? to_gpu(y) : Tensor();
        check_close(kc::unary_backward(to_gpu(g), only_x, only_y, op, alpha), dx, tolerance(dtype));
      }
    }
  }
}

TEST_CASE("cuda sum over all axes, some axes, keepdim on and off, matches ref") {
  TLK_REQUIRE_GPU();
  Generator gen(714);
  struct Case {
    Shape shape;
    std::vector<int> axes;
  };
  const Case cases[] = {
      {{2, 64, 64, 64}, {}},            // everything to a scalar: the split (two-pass) reduction
      {{3, 5, 7, 6, 9}, {0, 2, 3, 4}},  // a per-channel sum (bias gradient)
      {{3, 5, 7, 6, 9}, {}},
      {{3, 5, 7, 6, 9}, {1}},           // short reductions: one thread per output
      {{3, 5, 7, 6, 9}, {0, -1}},
      {{3, 1000}, {0}},
      {{5, 7, 10000}, {2}},             // one block per output
      {{2, 17, 300}, {1}},              // strided reduced axis
      {{2, 200, 30}, {1}},              // strided reduced axis, one block per output
      {{4, 3}, {0, 1}},
  };
  for (DType dtype : kDtypes) {
    CAPTURE(dtype_name(dtype));
    for (const Case& c : cases) {
      CAPTURE(c.shape.str());
      CAPTURE(c.axes.size());
      Tensor x = normal(c.shape, gen, dtype);
      Tensor xg = to_gpu(x);
      for (bool keepdim : {true, false}) {
        CAPTURE(keepdim);
        Tensor expected = ref::sum(x, c.axes, keepdim);
        Tensor got = kc::sum(xg, c.axes, keepdim);
        REQUIRE(got.shape() == expected.shape());
        CHECK(got.dtype() == dtype);
        CHECK(rel_error(to_cpu(got), expected) < tolerance(dtype));
      }
    }
    // A non-contiguous input.
    Tensor x = normal({6, 5, 40}, gen, dtype);
    CHECK(rel_error(to_cpu(kc::sum(to_gpu(x).permute({2, 0, 1}), {0, 2}, false)),
                    ref::sum(x.permute({2, 0, 1}), {0, 2}, false)) < tolerance(dtype));
  }
}

TEST_CASE("cuda sum_to and expand_to match ref") {
  TLK_REQUIRE_GPU();
  Generator gen(715);
  for (DType dtype : kDtypes) {
    CAPTURE(dtype_name(dtype));
    Tensor g = normal({2, 3, 4, 5}, gen, dtype);
    Tensor gg = to_gpu(g);
    for (const Shape& target : {Shape{3, 1, 5}, Shape{5}, Shape{1, 1, 1, 1}, Shape{2, 3, 1, 5}, Shape{}}) {
      CAPTURE(target.str());
      Tensor expected = ref::sum_to(g, target);
      Tensor got = kc::sum_to(gg, target);
      REQUIRE(got.shape() == target);
      CHECK(rel_error(to_cpu(got), expected) < tolerance(dtype));
    }
    CHECK(kc::sum_to(gg, g.shape()).is_same(gg));
    Tensor x = normal({3, 1, 5}, gen, dtype);
    check_exact(kc::expand_to(to_gpu(x), {2, 3, 4, 5}), ref::expand_to(x, {2, 3, 4, 5}));
    check_exact(kc::expand_to(to_gpu(x).permute({2, 1, 0}), {4, 5, 1, 3}),
                ref::expand_to(x.permute({2, 1, 0}), {4, 5, 1, 3}));
  }
}

TEST_CASE("cuda where with u8, f32 and i64 masks matches ref") {
  TLK_REQUIRE_GPU();
  Generator gen(716);
  for (DType dtype : kDtypes) {
    CAPTURE(dtype_name(dtype));
    const Shape shape{3, 4, 5, 6};
    Tensor a = normal(shape, gen, dtype), b = normal(shape, gen, dtype);
    // Mask values 0, 1 and fractional / negative ones (nonzero = true).
    Tensor raw = uniform(shape, gen, -1.0, 2.0, DType::f64);
    std::vector<double> mv = raw.to_doubles();
    for (double& v : mv) v = v < 0.0 ? 0.0 : (v < 1.0 ? v : 1.0);
    for (DType mask_dtype : {DType::u8, DType::f32, DType::f64, DType::i64}) {
      CAPTURE(dtype_name(mask_dtype));
      Tensor mask = Tensor::from_doubles(mv, shape, DType::f64).to(mask_dtype);
      check_exact(kc::where(to_gpu(mask), to_gpu(a), to_gpu(b)), ref::where(mask, a, b));
      const std::vector<int> rev{3, 2, 1, 0};
      check_exact(kc::where(to_gpu(mask).permute(rev), to_gpu(a).permute(rev), to_gpu(b).permute(rev)),
                  ref::where(mask.permute(rev), a.permute(rev), b.permute(rev)));
    }
  }
}

TEST_CASE("cuda elementwise kernels reject CPU and integer tensors with a message naming the op") {
  // Runs without a GPU: the checks come before any device call.
  Tensor a = Tensor::ones({2, 3});
  CHECK_THROWS_WITH_AS(kc::binary(a, a, BinaryOp::mul),
                       doctest::Contains("mul: left operand must be an f32, f64, bf16 or f16 CUDA tensor"), Error);
  CHECK_THROWS_WITH_AS(kc::unary(a, UnaryOp::relu), doctest::Contains("relu: input must be an f32, f64, bf16 or f16 CUDA tensor"),
                       Error);
  CHECK_THROWS_WITH_AS(kc::sum(a, {0}, false), doctest::Contains("sum: input must be an f32, f64, bf16 or f16 CUDA tensor"), Error);
  CHECK_THROWS_WITH_AS(kc::where(a, a, a), doctest::Contains("where: a must be an f32 or f64 CUDA tensor"), Error);
}

TEST_CASE("cuda binary with mixed dtypes is refused") {
  TLK_REQUIRE_GPU();
  Tensor a = to_gpu(Tensor::ones({2, 3})), b = to_gpu(Tensor::ones({2, 3}, TensorOptions{DType::f64}));
  CHECK_THROWS_WITH_AS(kc::binary(a, b, BinaryOp::add), doctest::Contains("add: right operand is f64"), Error);
  CHECK_THROWS_WITH_AS(kc::binary(a, to_gpu(Tensor::ones({4}, TensorOptions{})), BinaryOp::add),
                       doctest::Contains("do not broadcast"), Error);
}
