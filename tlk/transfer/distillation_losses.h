#pragma once
#include <cstdint>

#include "tlk/kernels/loss_params.h"
#include "tlk/tensor/tensor.h"

/// Transfer learning: backbones, fine-tuning, domain adaptation and distillation (the transfer layer).
namespace tlk::transfer {

// Logit distillation losses: Hinton's KD, decoupled KD (DKD), logit MSE and voxel-wise KD for
// segmentation. Logits are [N, K, ...spatial] ([N, K] for classification, [N, K, D, H, W] for 3D
// segmentation), f32 or f64, the class axis is dimension 1. Every loss returns a 0-D tensor of the
// logits' dtype that is differentiable with respect to the student only: the teacher is a constant and
// gets no gradient even when its tensor requires grad (a teacher that was run with a graph is fine,
// but running it under NoGradGuard saves the memory).
//
// Note [Distillation conventions]: "KL at temperature T" is KL(softmax(t/T) ‖ softmax(s/T)), summed
// over the classes and averaged over the positions (N times the spatial volume; "batchmean" for
// [N, K]), then multiplied by T². The T² keeps the gradient's magnitude roughly independent of T (the
// soft gradient (p − q)/T shrinks like 1/T² for large T, Hinton et al. 2015), so loss weights tuned at
// one temperature stay meaningful at another.

/// Options of kd_loss. TLK's configs (and RepDistiller's `-r 0.1 -a 0.9`) use 0.1·CE + 0.9·KD at T = 4.
/// Example: `transfer::KdOptions{.temperature = 4.0, .alpha = 0.1}`
struct KdOptions {
  double temperature = 4.0;
  /// Weight of the cross entropy against the labels; the KD term gets 1 − alpha. In [0, 1].
  double alpha = 0.1;
  /// Options of the cross entropy term (class weights, ignore_index).
  CrossEntropyOptions cross_entropy{};
};

/// Hinton's knowledge distillation: alpha·CE(student, labels) + (1 − alpha)·T²·KL(softmax(t/T) ‖
/// softmax(s/T)) (Note [Distillation conventions]). `labels` are class indices [N, ...spatial] (or
/// [N, 1, ...spatial]); they may be undefined when alpha == 0. Works for [N, K] and [N, K, D, H, W].
/// Example: `Tensor loss = transfer::kd_loss(student(x), teacher_logits, y, {.temperature = 4, .alpha = 0.1});`
Tensor kd_loss(const Tensor& student_logits, const Tensor& teacher_logits, const Tensor& labels,
               const KdOptions& options = {});

/// Options of decoupled knowledge distillation, with the defaults of Zhao et al. (CVPR 2022) and TLK.
/// Example: `transfer::DkdOptions{.beta = 8.0, .warmup_epochs = 20}`
struct DkdOptions {
  double alpha = 1.0;  ///< weight of TCKD (target vs non-target)
  double beta = 8.0;   ///< weight of NCKD (among the non-target classes)
  double temperature = 4.0;
  double warmup_epochs = 20;  ///< the loss ramps linearly from 0 to full weight over these epochs
};

/// The two DKD terms, each already multiplied by T² and averaged over the positions.
struct DkdTerms {
  Tensor tckd;  ///< KL between the binary (target, all non-target) distributions
  Tensor nckd;  ///< KL between the distributions over the non-target classes, renormalised
};

/// min(epoch / warmup_epochs, 1) (1 when warmup_epochs <= 0); `epoch` is 1-based as in mdistiller,
/// so the first epoch gets 1/warmup. A 0-based trainer passes epoch + 1.
/// Example: `CHECK(transfer::dkd_warmup_factor(5, 20) == 0.25);`
double dkd_warmup_factor(double epoch, double warmup_epochs);

/// TCKD and NCKD of DKD (Note [DKD in one pass] in the .cpp), T²-scaled and averaged over the
/// positions, differentiable w.r.t. the student. `labels` [N, ...spatial] hold the target class of each
/// position, in [0, K); K >= 2.
/// Example: `auto [tckd, nckd] = transfer::dkd_terms(s, t, y, 4.0);`
DkdTerms dkd_terms(const Tensor& student_logits, const Tensor& teacher_logits, const Tensor& labels,
                   double temperature);

/// Decoupled knowledge distillation: dkd_warmup_factor(epoch, warmup)·(alpha·TCKD + beta·NCKD), with
/// T² inside both terms. Only the distillation part: add the cross entropy on the labels yourself
/// (mdistiller weights it 1.0).
/// Example: `Tensor loss = ops::cross_entropy(s, y) + transfer::dkd_loss(s, t, y, epoch + 1);`
Tensor dkd_loss(const Tensor& student_logits, const Tensor& teacher_logits, const Tensor& labels, double epoch,
                const DkdOptions& options = {});

/// TLK's BasicDistiller: mean((student − teacher)²) over all elements; the teacher gets no gradient.
/// Example: `Tensor loss = transfer::logit_mse_loss(student(x), teacher_logits);`
Tensor logit_mse_loss(const Tensor& student_logits, const Tensor& teacher_logits);

/// Which voxels the voxel-wise KD averages over.
enum class KdRegion {
  all,                          ///< every voxel
  teacher_foreground,           ///< voxels whose teacher argmax is not the background class
  label_foreground,             ///< voxels whose label is not the background class
  teacher_or_label_foreground,  ///< the union of the two
};

/// Options of voxel_kd_loss.
/// Example: `transfer::VoxelKdOptions{.region = transfer::KdRegion::teacher_or_label_foreground, .dilation = 2}`
struct VoxelKdOptions {
  /// T = 1 is the usual choice for dense prediction (structured KD, most 3D medical KD); TLK's
  /// classification temperature 4 works too.
  double temperature = 1.0;
  KdRegion region = KdRegion::all;
  /// The foreground region grows by this many voxels along every spatial axis (a (2r+1)^d cube), so
  /// the organ boundary and a rim of background around it count.
  int dilation = 0;
  /// Weight of the voxels outside the region (0: left out entirely; 1: the same as KdRegion::all).
  double background_weight = 0.0;
  /// The class index that means background.
  std::int64_t background_class = 0;
};

/// The voxels voxel_kd_loss averages over: u8 [N, ...spatial], 1 inside the region (after dilation),
/// 0 outside. `labels` [N, ...spatial] or [N, 1, ...spatial] are needed for the label regions only.
/// Example: `Tensor m = transfer::kd_region_mask(t, y, {.region = KdRegion::label_foreground});`
Tensor kd_region_mask(const Tensor& teacher_logits, const Tensor& labels, const VoxelKdOptions& options);

/// Voxel-wise KD for segmentation: T²·Σ_v w_v·KL_v / Σ_v w_v, where KL_v is the KL at temperature T
/// over the classes at voxel v and w_v is 1 inside kd_region_mask and background_weight outside.
/// With KdRegion::all this equals ops::kl_div_with_temperature. When no voxel has weight (e.g. no
/// foreground in the batch) the loss is 0 with a zero gradient, not NaN.
/// Example:
/// ```
/// VoxelKdOptions o{.temperature = 1.0, .region = KdRegion::teacher_or_label_foreground, .dilation = 2};
/// Tensor loss = transfer::voxel_kd_loss(student(x), teacher_logits, o, labels);
/// ```
Tensor voxel_kd_loss(const Tensor& student_logits, const Tensor& teacher_logits, const VoxelKdOptions& options = {},
                     const Tensor& labels = {});

/// T²·Σ_v w_v·KL_v / Σ_v w_v with caller-given voxel weights `weights` ([N, ...spatial] or
/// [N, 1, ...spatial], any real or integer dtype, >= 0; a constant). 0 when Σ w = 0.
/// Example: `Tensor loss = transfer::weighted_kl_div_with_temperature(s, t, roi_mask, 1.0);`
Tensor weighted_kl_div_with_temperature(const Tensor& student_logits, const Tensor& teacher_logits,
                                        const Tensor& weights, double temperature);

}  // namespace tlk::transfer
