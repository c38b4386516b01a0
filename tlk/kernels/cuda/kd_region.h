#pragma once
// The voxel-KD region mask on the GPU (transfer::kd_region_mask, Note [Distillation on the GPU] in
// transfer/distillation_losses.cpp): its seed from the teacher's argmax and the labels, grown by a
// max pooling.
#include "tlk/tensor/tensor.h"

namespace tlk::kernels::cuda {

/// u8 [N, D, H, W]: 1 where the labels (i64-convertible [N, D, H, W] or [N, 1, D, H, W] on the
/// logits' GPU, or undefined) are not `background`, or, with `use_teacher`, where the argmax of the
/// teacher's logits [N, C, D, H, W] (f32 or f64) is not `background`; then grown by `dilation` voxels
/// along every axis (a (2r+1)^3 cube). Example:
/// `Tensor m = cuda::kd_region_mask(teacher, labels, true, 0, 1);`
Tensor kd_region_mask(const Tensor& teacher_logits, const Tensor& labels, bool use_teacher, std::int64_t background,
                      int dilation);

}  // namespace tlk::kernels::cuda
