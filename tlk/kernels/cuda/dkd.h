#pragma once
// Decoupled KD on the GPU (transfer::dkd_terms, Note [DKD in one pass] in
// transfer/distillation_losses.cpp): the two terms and the student's gradient, with the reference's
// per-position math (kernels/dkd_position.h).
#include <array>

#include "tlk/tensor/tensor.h"

namespace tlk::kernels::cuda {

/// TCKD and NCKD (scalars of the logits' dtype on their GPU) of student and teacher logits [N, C, ...]
/// (f32 or f64, C >= 2) with targets (i64, [N, ...] on the same GPU, each in [0, C)), each summed
/// over positions and scaled by T²/positions. Example: `auto [tckd, nckd] = cuda::dkd_forward(s, t, y, 4.0);`
std::array<Tensor, 2> dkd_forward(const Tensor& student, const Tensor& teacher, const Tensor& targets,
                                  double temperature);
/// The gradient w.r.t. the student logits for upstream gradients g_tckd and g_nckd of the two terms.
Tensor dkd_backward(double g_tckd, double g_nckd, const Tensor& student, const Tensor& teacher, const Tensor& targets,
                    double temperature);

}  // namespace tlk::kernels::cuda
