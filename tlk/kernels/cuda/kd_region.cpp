#include "tlk/kernels/cuda/kd_region.h"

#include "tlk/kernels/cuda/kd_region_launch.h"
#include "tlk/kernels/cuda/launch.h"
#include "tlk/kernels/cuda/pool3d.h"

namespace tlk::kernels::cuda {

Tensor kd_region_mask(const Tensor& teacher_logits, const Tensor& labels_in, bool use_teacher, std::int64_t background,
                      int dilation) {
  const char* op = "kd_region_mask";
  require_cuda_float(teacher_logits, op, "teacher logits");
  const Shape& shape = teacher_logits.shape();
  check(shape.size() == 5, "{}: expected teacher logits [N, C, D, H, W] on the GPU, got {}", op, shape.str());
  check(dilation >= 0, "{}: dilation must be >= 0 voxels, got {}", op, dilation);
  const Shape seed_shape{shape[0], 1, shape[2], shape[3], shape[4]};
  Tensor labels;
  if (labels_in.defined()) {
    check(labels_in.device() == teacher_logits.device(), "{}: labels are on {}, the teacher logits on {}", op,
          labels_in.device().str(), teacher_logits.device().str());
    check(labels_in.numel() == seed_shape.numel() && labels_in.size(0) == shape[0],
          "{}: labels of shape {} do not fit logits {} (expected [N, D, H, W] or [N, 1, D, H, W])", op,
          labels_in.shape().str(), shape.str());
    labels = labels_in.detach().to(DType::i64).contiguous();
  }
  const Tensor x = contiguous(teacher_logits);
  Tensor seed = Tensor::empty(seed_shape, TensorOptions{DType::f32, x.device()});
  const std::int64_t inner = shape[2] * shape[3] * shape[4];
  const std::int64_t* label_ptr = labels.defined() ? static_cast<const std::int64_t*>(labels.raw_data()) : nullptr;
  visit_floating(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    check_status(launch::kd_region_seed<T>(static_cast<const T*>(x.raw_data()), shape[0], shape[1], inner, label_ptr,
                                           use_teacher, background, static_cast<float*>(seed.raw_data()), stream()),
                 op, "kernel launch");
  });
  // The (2r+1)^3 dilation is a max pooling of stride 1 padded by r (padding never wins: it is -inf).
  if (dilation > 0) {
    const std::int64_t k = 2 * dilation + 1, r = dilation;
    seed = max_pool3d_forward(seed, Pool3dOptions({k, k, k}, {1, 1, 1}, {r, r, r})).output;
  }
  return seed.reshape({shape[0], shape[2], shape[3], shape[4]}).to(DType::u8);
}

}  // namespace tlk::kernels::cuda
