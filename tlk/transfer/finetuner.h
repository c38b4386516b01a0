#pragma once
#include <string>
#include <vector>

#include "tlk/nn/module.h"
#include "tlk/nn/optimizer.h"
#include "tlk/tensor/shape.h"

namespace tlk::transfer {

/// Which parameters a fine-tune freezes (requires_grad off: no gradient, no optimizer update).
enum class Freeze {
  none,      ///< train everything
  copied,    ///< every parameter copied from the checkpoint (the original kit's `is_frozen`)
  prefixes,  ///< the parameters named by FinetuneOptions::freeze_prefixes, copied or not
};

// Note [Prefixes match whole name components]: a prefix selects a module and everything below it:
// "fc2" matches "fc2.weight" and "fc2" itself but not "fc21.weight", and "decoder.heads" matches
// "decoder.heads.0.weight". A prefix that ends in '.' ("encoder.") is read the same way. Plain
// starts-with matching would let "fc" (ResNet3d's head) catch LeNet's "fc1" as well. A prefix that
// matches no tensor of the model is a tlk::Error: a misspelt prefix would otherwise silently freeze or
// skip nothing.

/// How to load a pretrained model into a model of the same or similar structure.
///
/// Example (TLK's medical setup: all of a 15-organ UNet but its heads, body trained at 0.2x):
/// ```
/// transfer::FinetuneOptions o;
/// o.copied_lr_scale = 0.2;
/// o.skip_prefixes = {"decoder.heads"};
/// ```
struct FinetuneOptions {
  Freeze freeze = Freeze::none;
  /// Parameter name prefixes to freeze (Freeze::prefixes only); Note [Prefixes match whole name components].
  std::vector<std::string> freeze_prefixes;
  /// Learning-rate multiplier of the copied, unfrozen parameters in finetune_param_groups
  /// (TLK's medical setup: 0.2 on a 100-epoch poly schedule; 1 = one learning rate for all).
  double copied_lr_scale = 1.0;
  /// Tensors never copied even when name and shape match (e.g. the task head, see
  /// head_parameter_prefixes in backbone_factory.h); they keep the model's own initialisation.
  std::vector<std::string> skip_prefixes;

  /// The options of the config keys transfer.freeze ("none", "copied" or comma-separated name
  /// prefixes), transfer.skip (comma-separated prefixes) and transfer.pretrained_lr_scale.
  /// Example: `auto o = FinetuneOptions::from_config("encoder., decoder.stages.0", "decoder.heads", 0.2);`
  static FinetuneOptions from_config(const std::string& freeze, const std::string& skip, double copied_lr_scale);
};

/// What finetune_from did, tensor by tensor (parameters and buffers by their dotted names).
struct FinetuneReport {
  /// A tensor whose name is in both but whose shape differs; the model keeps its own (fresh) values.
  struct Mismatch {
    std::string name;
    Shape pretrained, model;
  };
  std::string source;                   ///< where the weights came from (a path, or "state")
  std::vector<std::string> copied;      ///< name and shape matched: values copied
  std::vector<std::string> missing;     ///< in the model, not in the checkpoint: left as initialised
  std::vector<std::string> unexpected;  ///< in the checkpoint only: ignored
  std::vector<Mismatch> mismatched;     ///< e.g. a head with another class count: left as initialised
  std::vector<std::string> skipped;     ///< model tensors under skip_prefixes: left as initialised
  std::vector<std::string> frozen;      ///< parameters whose requires_grad finetune_from turned off

  /// True when every model tensor was copied and the checkpoint had nothing else.
  bool complete() const { return missing.empty() && unexpected.empty() && mismatched.empty() && skipped.empty(); }
  /// A readable summary: one line of counts, then one line per non-empty category with the names
  /// (mismatches with both shapes); long lists end in "... and N more".
  /// Example: `fmt::print("{}\n", transfer::finetune_from(*net, pretrained->state_dict()).str());`
  std::string str() const;
};

/// Loads `pretrained` (name -> tensor, as Module::state_dict or a checkpoint's model) into `model`:
/// every parameter and buffer whose name and shape match is copied by value (the model never aliases
/// the pretrained tensors; dtypes are converted), the rest is reported and keeps the model's own
/// initialisation, then parameters are frozen as `options.freeze` says. Duplicate names in
/// `pretrained`, a negative lr scale or a prefix that matches nothing are a tlk::Error, raised before
/// anything is copied.
///
/// Note [Freezing]: a frozen parameter gets requires_grad(false) and its gradient cleared, so backward
/// accumulates nothing into it and Optimizer::step (which skips parameters without a gradient) never
/// moves it, whichever group it is in. Buffers (batch-norm running statistics) are not parameters:
/// they still update in training mode; call eval() on frozen submodules to keep them fixed.
///
/// Example:
/// ```
/// Generator gen(0);
/// auto net = transfer::create_backbone("unet3d", nn::ModuleOptions{}.with_num_classes(2), gen);
/// auto report = transfer::finetune_from(*net, pretrained_net->state_dict(), {.freeze = transfer::Freeze::copied});
/// ```
FinetuneReport finetune_from(nn::Module& model, const std::vector<nn::NamedTensor>& pretrained,
                             const FinetuneOptions& options = {});

/// The optimizer groups of a fine-tune: "pretrained" (copied and not frozen, lr_scale =
/// options.copied_lr_scale) and "new" (every other parameter that is not frozen, lr_scale 1), both
/// with `weight_decay` (negative: the optimizer's default). Frozen parameters (report.frozen, or any
/// parameter with requires_grad off) are in no group. Both groups are always returned, possibly
/// empty, so that optimizer state indices stay the same between runs.
///
/// Example:
/// ```
/// auto report = task::finetune_from_checkpoint(*net, "pretrained.h5", {.copied_lr_scale = 0.2});
/// nn::Sgd sgd(transfer::finetune_param_groups(*net, report, {.copied_lr_scale = 0.2}, 3e-5),
///             {.lr = 1e-2, .momentum = 0.99, .nesterov = true, .weight_decay = 3e-5});
/// ```
std::vector<nn::ParamGroup> finetune_param_groups(nn::Module& model, const FinetuneReport& report,
                                                  const FinetuneOptions& options, double weight_decay = -1);

/// True when `name` lies under one of `prefixes` (Note [Prefixes match whole name components]).
/// Example: `transfer::matches_prefix("fc2.weight", {"fc2"})` is true, `("fc21.weight", {"fc2"})` false.
bool matches_prefix(const std::string& name, const std::vector<std::string>& prefixes);

}  // namespace tlk::transfer
