#pragma once
#include <cstdint>
#include <memory>

#include "tlk/nn/conv.h"
#include "tlk/nn/module.h"
#include "tlk/tensor/random.h"
#include "tlk/tensor/tensor.h"

namespace tlk::transfer {

// Feature distillation: FitNets hints (Romero et al., ICLR 2015) through a 1x1x1 convolution regressor,
// and attention transfer (Zagoruyko & Komodakis, ICLR 2017). Features are [N, C, D, H, W] (5-D) for
// the hint, [N, C, ...spatial] (at least 3-D) for attention transfer; f32 or f64. As with the logit
// losses, the teacher's feature is a constant: it never gets a gradient.

/// How a student feature and a teacher feature of different spatial sizes are brought together.
enum class SpatialMatch {
  exact,            ///< the spatial sizes must be equal (else tlk::Error)
  pool_to_smaller,  ///< adaptive average pooling of either map to the per-axis smaller size (5-D only)
};

/// Normalisation after the hint regressor's convolution.
enum class HintNorm { none, instance, batch };

/// Options of HintRegressor. RepDistiller's ConvReg is conv + batch norm + ReLU; FitNets' regressor is
/// the bare convolution (the default: a linear map fits teacher features of either sign).
/// Example: `transfer::HintRegressorOptions{.norm = transfer::HintNorm::instance}`
struct HintRegressorOptions {
  HintNorm norm = HintNorm::none;
  bool relu = false;
  bool bias = true;
};

/// FitNets' regressor r: a 1x1x1 Conv3d student_channels -> teacher_channels (optionally followed by a
/// norm and a ReLU) that maps the student's feature onto the teacher's channels. Its parameters belong
/// to the student side: give them to the optimizer with the student's.
///
/// Note [Hint regressor initialisation]: without a ReLU after it, the convolution is initialised for a
/// linear layer (He-normal with slope 1, i.e. std = 1/sqrt(student_channels)), which keeps the
/// feature's scale; with a ReLU it uses nnUNet's slope 0.01 like every other TLK convolution.
///
/// Example:
/// ```
/// transfer::HintRegressor reg(32, 64, gen);
/// Tensor hint = transfer::hint_loss(student_skip, teacher_skip, reg);
/// ```
class HintRegressor : public nn::UnaryModule {
 public:
  HintRegressor(std::int64_t student_channels, std::int64_t teacher_channels, Generator& gen,
                const HintRegressorOptions& options = {});
  /// [N, student_channels, D, H, W] -> [N, teacher_channels, D, H, W].
  Tensor forward(const Tensor& student_feature) override;

  std::shared_ptr<nn::Conv3d> conv;
  std::shared_ptr<nn::UnaryModule> norm;  ///< null for HintNorm::none
  bool relu = false;
  std::int64_t student_channels, teacher_channels;
};

/// Options of hint_loss.
struct HintOptions {
  SpatialMatch spatial = SpatialMatch::exact;
};

/// The FitNets hint: mean((r(s) − t)²) over all elements, the MSE convention of RepDistiller (weight
/// 100 there). FitNets writes ½·‖r(s) − t‖² summed; the two differ by a constant factor that the loss
/// weight absorbs. Shapes: s [N, Cs, D, H, W], t [N, Ct, D, H, W] with Ct the regressor's output.
/// Example: `Tensor loss = transfer::hint_loss(s_feat, t_feat, reg);`
Tensor hint_loss(const Tensor& student_feature, const Tensor& teacher_feature, HintRegressor& regressor,
                 const HintOptions& options = {});

/// The hint without a regressor, for features of equal channel counts: mean((s − t)²).
/// Example: `Tensor loss = transfer::hint_loss(s_feat, t_feat);`
Tensor hint_loss(const Tensor& student_feature, const Tensor& teacher_feature, const HintOptions& options = {});

/// Options of attention transfer.
struct AttentionOptions {
  /// The exponent in Q = mean_c |A|^p (an integer >= 1; the paper and RepDistiller use 2).
  int p = 2;
  SpatialMatch spatial = SpatialMatch::exact;
};

/// The attention map of a feature A [N, C, ...spatial]: Q = mean_c |A|^p, flattened to [N, S] and
/// L2-normalised per sample as Q / sqrt(‖Q‖² + 1e-24) (F.normalize's eps 1e-12, made smooth).
/// Example: `Tensor q = transfer::attention_map(feature);  // [N, D*H*W], each row of norm 1`
Tensor attention_map(const Tensor& feature, int p = 2);

/// Attention transfer: mean over N and positions of (Q_s − Q_t)², the convention of the authors' code
/// and RepDistiller (`(at(s) − at(t)).pow(2).mean()`, weight 1000 there). Channel counts may differ;
/// spatial sizes must match (or SpatialMatch::pool_to_smaller).
/// Example: `Tensor loss = transfer::attention_transfer_loss(s_feat, t_feat);`
Tensor attention_transfer_loss(const Tensor& student_feature, const Tensor& teacher_feature,
                               const AttentionOptions& options = {});

}  // namespace tlk::transfer
