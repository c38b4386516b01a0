#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "tlk/kernels/conv_params.h"
#include "tlk/nn/unet.h"
#include "tlk/tensor/random.h"
#include "tlk/transfer/domain_discriminator.h"

namespace tlk::transfer {

/// Options of the multi-scale discriminator; defaults as TLK's medical setup (SegDiscriminator).
struct MultiScaleDiscriminatorOptions {
  /// Output channels of each scale's block, one per used stage; empty: base_width · (k + 1) for the
  /// k-th used stage, capped at max_width (50, 100, 150, 200, 250 for five stages).
  std::vector<std::int64_t> widths;
  std::int64_t base_width = 50;
  std::int64_t max_width = 250;
  /// The encoder stages whose features are used, first_stage..last_stage; a negative last_stage counts
  /// from the end, and the default −2 uses every skip but the bottleneck, as TLK's medical setup
  /// (whose last block still strides down to the bottleneck's resolution). Starting later
  /// (first_stage 1 or 2) skips the full-resolution blocks, which cost the most (Note [Discriminator cost]).
  int first_stage = 0;
  int last_stage = -2;
  /// How the last block's features become domain logits (Note [Discriminator head]).
  enum class Head { voxel_logits, pooled_channels };
  Head head = Head::pooled_channels;
  /// Normalization inside the blocks (Note [Discriminator norm]).
  enum class Norm { none, instance };
  Norm norm = Norm::none;
  Int3 kernel{3, 3, 3};
  double negative_slope = 0.01;
  double norm_eps = 1e-5;
};

/// TLK's medical multi-scale domain discriminator (SegDiscriminator), fed by the UNet's encoder
/// features. Per used stage s (first..last), block s is nnUNet's stage: conv(kernel, stride t_s) →
/// InstanceNorm → LeakyReLU → conv(kernel) → InstanceNorm → LeakyReLU, where
///   x_first = block_first(skip_first),   x_s = block_s(cat(x_{s−1}, skip_s)) along channels,
/// then global average pooling, giving logits [N, C_last]: every pooled channel is a separate domain
/// logit (the original reshapes them to [N · C_last, 1]; the loss and accuracy are the same means).
///
/// Note [Multi-scale wiring]: block s's first convolution strides by t_s = strides[s + 1], the
/// downsampling between encoder stage s and s + 1, so x_s arrives at stage s + 1's resolution, where
/// the next skip is concatenated. This holds for anisotropic strides (1x2x2) since the discriminator
/// downsamples exactly as the encoder did (kernel 3, padding 1: ceil(n / t)). The last used block
/// strides by strides[last + 1] when that stage exists (the bottleneck, with the default stage range),
/// else by 1. Feature s must be [N, skip_channels[s], ...] at the resolution the strides give.
///
/// Note [Discriminator cost]: per sample, block s costs k³·(c_in·w_s + w_s²)·V_{s+1} multiply-adds
/// (V_{s+1}: voxels at the next stage's resolution); forward_macs() gives the total. With the default
/// widths it is about 12% of a 32..320 UNet's forward (5 or 6 stages, any patch), about half of it in
/// the full-resolution block (about as much as the UNet's stage 0). Measured here (2 threads, 5-stage
/// UNet, 48³ patches, batch 2 source + 2 target, forward and backward of the whole step): the default
/// widths add about 25% to a training step (≈ 0.7 s forward and 1.7 s backward on ≈ 9 s), base_width
/// 16 / max_width 64 about 5%. first_stage = 1 skips the full-resolution block (forward_macs about 6x
/// lower, as the widths then start at 50 on stage 1), at the price of not aligning the finest features.
///
/// Example:
/// ```
/// transfer::MultiScaleDiscriminator disc(net.config(), {}, gen);
/// net.forward(x);
/// Tensor logits = disc.forward(net.encoder_features());   // [N, 250] for a 6-stage UNet (5 skips used)
/// ```
class MultiScaleDiscriminator : public Discriminator {
 public:
  /// skip_channels[s] and strides[s] (stage 0: 1x1x1) per encoder stage, as nn::UNetConfig's
  /// features(s) and strides; the stages used come from options.first_stage / last_stage.
  MultiScaleDiscriminator(const std::vector<std::int64_t>& skip_channels, const std::vector<Int3>& strides,
                          const MultiScaleDiscriminatorOptions& options, Generator& gen);
  /// For a UNet's encoder features: channels config.features(s) and config.strides.
  MultiScaleDiscriminator(const nn::UNetConfig& config, const MultiScaleDiscriminatorOptions& options, Generator& gen);

  /// features: every encoder stage's output (UNet::encoder_features()); those outside the used range
  /// may be undefined. Returns [N, out_channels()].
  Tensor forward(const std::vector<Tensor>& features) override;
  bool samples_independent() const override { return true; }
  bool uses_feature(std::size_t i) const override;

  int first_stage() const { return first_; }
  int last_stage() const { return last_; }
  /// The last block's width (the logits per sample with Head::pooled_channels).
  std::int64_t out_channels() const { return widths_.back(); }
  const std::vector<std::int64_t>& widths() const { return widths_; }
  /// The stride of each used block's first convolution, first_stage first.
  const std::vector<Int3>& block_strides() const { return block_strides_; }
  /// Convolution multiply-adds of one sample's forward pass when encoder stage 0 is `input_size`
  /// (D, H, W); Note [Discriminator cost]. Example: `disc.forward_macs({80, 160, 160})`.
  double forward_macs(Int3 input_size) const;

 private:
  std::vector<std::int64_t> skip_channels_;
  std::vector<Int3> strides_;
  MultiScaleDiscriminatorOptions options_;
  int first_ = 0, last_ = 0;
  std::vector<std::int64_t> widths_;
  std::vector<Int3> block_strides_;
  std::vector<std::shared_ptr<nn::UnaryModule>> blocks_;
  std::shared_ptr<nn::Conv3d> head_;  ///< Head::voxel_logits only
};

}  // namespace tlk::transfer
