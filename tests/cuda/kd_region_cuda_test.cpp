// Distillation losses on the GPU (Note [Distillation on the GPU]): the voxel-KD region mask of 3-D
// logits (kernels/cuda/kd_region.h) equals the CPU's for every region, background class and dilation,
// the region-weighted voxel KD gives the CPU's loss and gradient, and so does DKD
// (kernels/cuda/dkd.h) on classification and voxel logits.
#include <vector>

#include "compare_to_ref.h"
#include "cuda_test_util.h"
#include "tlk/autograd/ops/arith.h"
#include "tlk/transfer/distillation_losses.h"

using namespace tlk;
using testing::to_cpu;
using testing::to_gpu;
using transfer::KdRegion;

namespace {

// Teacher logits [2, 3, 5, 6, 7] with exact ties between classes at some voxels (the first maximum
// wins on both devices) and labels [2, 5, 6, 7] with a few foreground voxels.
struct RegionCase {
  Tensor logits, labels;
};

RegionCase region_case(DType dtype) {
  Generator gen(1301);
  Tensor logits = randn({2, 3, 5, 6, 7}, gen, 0.0, 1.0, TensorOptions{DType::f64});
  double* x = logits.data<double>();
  const std::int64_t inner = 5 * 6 * 7;
  for (std::int64_t p = 0; p < inner; p += 11) x[inner + p] = x[p];  // class 1 ties class 0 (sample 0)
  Tensor labels = Tensor::zeros({2, 5, 6, 7}, TensorOptions{}.with(DType::u8));
  for (std::int64_t i = 0; i < labels.numel(); i += 37) labels.data<std::uint8_t>()[i] = 2;
  return {logits.to(dtype), labels};
}

}  // namespace

TEST_CASE("cuda kd_region_mask equals the CPU's for every region, background class and dilation") {
  TLK_REQUIRE_GPU();
  for (DType dtype : {DType::f32, DType::f64}) {
    const RegionCase c = region_case(dtype);
    const Tensor gpu_logits = to_gpu(c.logits), gpu_labels = to_gpu(c.labels);
    for (KdRegion region : {KdRegion::teacher_foreground, KdRegion::label_foreground,
                            KdRegion::teacher_or_label_foreground}) {
      for (std::int64_t background : {0, 1}) {
        for (int dilation : {0, 1, 2}) {
          CAPTURE(dtype_name(dtype));
          CAPTURE(static_cast<int>(region));
          CAPTURE(background);
          CAPTURE(dilation);
          const transfer::VoxelKdOptions o{.region = region, .dilation = dilation, .background_class = background};
          const Tensor expected = transfer::kd_region_mask(c.logits, c.labels, o);
          const Tensor got = transfer::kd_region_mask(gpu_logits, gpu_labels, o);
          CHECK(got.device().is_cuda());
          CHECK(got.dtype() == DType::u8);
          REQUIRE(got.shape() == expected.shape());
          CHECK(testing::max_abs_diff(to_cpu(got), expected) == 0.0);
        }
      }
    }
  }
  CHECK_THROWS_WITH_AS(transfer::kd_region_mask(to_gpu(region_case(DType::f32).logits), Tensor(),
                                                {.region = KdRegion::label_foreground}),
                       doctest::Contains("labels are required"), Error);
}

TEST_CASE("cuda voxel KD over a region, with a background weight, gives the CPU's loss and gradient") {
  TLK_REQUIRE_GPU();
  const RegionCase c = region_case(DType::f64);
  Generator gen(1302);
  const Tensor student = randn(c.logits.shape(), gen, 0.0, 1.0, TensorOptions{DType::f64});
  for (double background_weight : {0.0, 0.25}) {
    CAPTURE(background_weight);
    const transfer::VoxelKdOptions o{.temperature = 2.0,
                                     .region = KdRegion::teacher_or_label_foreground,
                                     .dilation = 1,
                                     .background_weight = background_weight};
    Tensor s_cpu = student.clone().set_requires_grad(true);
    Tensor s_gpu = to_gpu(student).set_requires_grad(true);
    const Tensor l_cpu = transfer::voxel_kd_loss(s_cpu, c.logits, o, c.labels);
    const Tensor l_gpu = transfer::voxel_kd_loss(s_gpu, to_gpu(c.logits), o, to_gpu(c.labels));
    CHECK(l_gpu.device().is_cuda());
    CHECK(l_gpu.item() == doctest::Approx(l_cpu.item()).epsilon(1e-10));
    l_cpu.backward();
    l_gpu.backward();
    CHECK(testing::gpu_rel_error(s_gpu.grad(), s_cpu.grad()) < 1e-10);
  }
}

TEST_CASE("cuda DKD gives the CPU's two terms and gradient, for class and voxel logits") {
  TLK_REQUIRE_GPU();
  Generator gen(1303);
  for (DType dtype : {DType::f64, DType::f32, DType::bf16}) {
    for (const Shape& shape : {Shape{5, 7}, Shape{2, 4, 3, 5, 6}}) {
      CAPTURE(dtype_name(dtype));
      CAPTURE(shape.str());
      // The CPU runs in f64 on the values the GPU sees (rounded to the dtype there).
      const Tensor s_dev = to_gpu(randn(shape, gen, 0.0, 2.0, TensorOptions{DType::f64})).to(dtype);
      const Tensor t_dev = to_gpu(randn(shape, gen, 0.0, 2.0, TensorOptions{DType::f64})).to(dtype);
      Shape label_shape{shape[0]};
      for (int d = 2; d < shape.size(); ++d) label_shape.push_back(shape[d]);
      Tensor labels = Tensor::zeros(label_shape, TensorOptions{}.with(DType::i64));
      for (std::int64_t i = 0; i < labels.numel(); ++i) labels.data<std::int64_t>()[i] = (i * 5) % shape[1];
      Tensor s_cpu = to_cpu(s_dev.to(DType::f64)).set_requires_grad(true);
      Tensor s_gpu = s_dev.clone().set_requires_grad(true);
      const transfer::DkdTerms e = transfer::dkd_terms(s_cpu, to_cpu(t_dev.to(DType::f64)), labels, 4.0);
      const transfer::DkdTerms g = transfer::dkd_terms(s_gpu, t_dev, to_gpu(labels), 4.0);
      CHECK(g.tckd.device().is_cuda());
      const double tol = dtype == DType::f64 ? 1e-10 : 1e-5;
      CHECK(g.tckd.item() == doctest::Approx(e.tckd.item()).epsilon(tol));
      CHECK(g.nckd.item() == doctest::Approx(e.nckd.item()).epsilon(tol));
      (e.tckd * 0.7 + e.nckd * 1.3).backward();
      (g.tckd * 0.7 + g.nckd * 1.3).backward();
      REQUIRE(s_gpu.grad().defined());
      CHECK(s_gpu.grad().dtype() == s_gpu.dtype());
      CHECK(testing::gpu_rel_error(s_gpu.grad().to(DType::f64), s_cpu.grad()) < (dtype == DType::bf16 ? 1e-2 : tol));
    }
  }
  // Targets out of range are refused before they reach the GPU.
  const Tensor logits = to_gpu(Tensor::zeros({2, 3}));
  CHECK_THROWS_AS(transfer::dkd_terms(logits, logits, to_gpu(Tensor::full({2}, 3.0, TensorOptions{}.with(DType::i64))),
                                      1.0),
                  Error);
}
