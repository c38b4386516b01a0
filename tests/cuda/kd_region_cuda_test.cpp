// The voxel-KD region on the GPU (kernels/cuda/kd_region.h, Note [Distillation on the GPU]): the mask
// of 3-D logits on a GPU equals the CPU's for every region, background class and dilation, and the
// region-weighted voxel KD gives the CPU's loss and gradient.
#include <vector>

#include "compare_to_ref.h"
#include "cuda_test_util.h"
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
