#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace tlk::task {

/// What `tlk demo` runs: TLK's AMOS → KiTS experiment on generated phantoms, small enough for a
/// laptop CPU by default; every count scales up with flags.
struct AdaptationDemoOptions {
  std::filesystem::path out_dir = "tlk_demo";
  int source_cases = 8;         ///< labelled AMOS-like cases
  int target_cases = 8;         ///< KiTS-like training cases (labels used by the oracle only)
  int target_test_cases = 4;    ///< KiTS-like cases every method is scored on
  double scale = 0.5;           ///< phantom resolution (data::amos_like_source's scale)
  std::int64_t pretrain_epochs = 8, adapt_epochs = 2, oracle_epochs = 8;
  std::int64_t iterations_per_epoch = 12;
  std::int64_t base_features = 16, levels = 4;
  std::uint64_t seed = 1;
  bool quiet = false;
  // The adaptation stage (Note [Demo λ schedule] in adaptation_demo.cpp); the control shares the
  // learning-rate settings, so the comparison stays fair.
  double adapt_weight = 1.0;          ///< adapt.weight
  double adapt_lr = 1e-3;             ///< adapt.lr: the discriminator's Adam
  double grl_alpha = 10.0;            ///< adapt.grl_alpha (N is the stage's steps)
  std::int64_t grl_delay = 0;         ///< adapt.grl_delay: discriminator-only steps first
  double pretrained_lr_scale = 1.0;   ///< transfer.pretrained_lr_scale of the adapt and control stages
};

/// One row of the demo's result table.
struct AdaptationDemoRow {
  std::string method;           ///< "source only", "adapted (no target labels)", the control, "oracle (target labels)"
  double kidney_dice = 0.0;     ///< mean over the target test cases of the kidney (∪ tumour) Dice
  double train_seconds = 0.0;   ///< training time of this method's own stage
  std::string checkpoint;
};

/// The demo's results: the table, the oracle's Dice after each epoch, and the derived figures.
struct AdaptationDemoResult {
  std::vector<AdaptationDemoRow> rows;  ///< source only, adapted, control, oracle
  std::vector<std::pair<double, double>> oracle_curve;  ///< (cumulative training seconds, Dice) per epoch
  /// Oracle time to first reach the adapted Dice / adaptation time; NaN when the oracle never gets there
  /// within its epochs (then `speedup_lower_bound` is its whole time / adaptation time).
  double speedup = 0.0, speedup_lower_bound = 0.0;
  double performance_ratio = 0.0;  ///< adapted Dice / oracle Dice
  double total_seconds = 0.0;
};

/// Runs the experiment end to end through the same library calls as the CLI commands:
///  1. writes an AMOS-like source (15 organs) and a KiTS-like target (kidney + tumour, another
///     contrast phase, noise, resolution, spacing and file orientation) as nnUNet raw datasets;
///  2. preprocesses both (`tlk preprocess`): the source with its two kidneys as classes 1 and 2, the
///     target with tumour merged into kidney, at the source's spacing and with the source's CT
///     statistics (TLK's recipe);
///  3. trains a UNet on the source (`tlk train`, supervised) and scores it on the target test cases
///     (`tlk predict --class-map 1=1+2`, kidney = either source kidney; `tlk evaluate`);
///  4. adapts it without target labels (finetune+adapt: the multi-scale discriminator on the encoder
///     skips) and scores it;
///  5. as a control, continues the source model for the same epochs without the target (what more
///     source training alone gives);
///  6. trains the oracle on the labelled target from scratch, scoring it after every epoch;
///  7. writes results.csv / results.json, predictions as NIfTI and PNG slices (image, truth and each
///     method's prediction side by side) under out_dir, and prints the table.
AdaptationDemoResult run_adaptation_demo(const AdaptationDemoOptions& options);

/// The result table as text (what `tlk demo` prints).
std::string format_adaptation_demo(const AdaptationDemoResult& result);

}  // namespace tlk::task
