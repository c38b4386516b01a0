#pragma once
#include <memory>
#include <string>
#include <typeinfo>
#include <vector>

#include "tlk/kernels/conv_params.h"
#include "tlk/nn/classifier.h"
#include "tlk/nn/module.h"
#include "tlk/nn/registry.h"
#include "tlk/nn/unet.h"
#include "tlk/tensor/random.h"

/// Transfer learning: backbones, fine-tuning, domain adaptation and distillation (the transfer layer).
namespace tlk::transfer {

// Note [Backbones are registry modules]: a backbone is whatever nn::ModuleRegistry builds; this file
// adds no second registry. It adds what the transfer layer needs on top: a one-line description per
// name (for `tlk --help`-style listings), checked casts to the two backbone families the adapters and
// distillers know (nn::UNet for segmentation, nn::Classifier for classification), and the per-stage
// facts they size themselves from (skip channels and strides, the feature size, the head's name).

/// A registered backbone and what it takes, for listings.
struct BackboneInfo {
  std::string name;
  /// One line: what the network is and its options with defaults, e.g.
  /// "nnUNet-style 3D UNet (segmentation); options: levels (5), base_features (32), ...".
  std::string description;
};

/// Builds the backbone registered as `name` (nn::ModuleRegistry::instance()), drawing its initial
/// weights from `gen`. An unknown name or an option the backbone does not take is a tlk::Error.
///
/// Example:
/// ```
/// Generator gen(0);
/// auto net = transfer::create_backbone("unet3d", nn::ModuleOptions{}.with_num_classes(3).with("levels", 4), gen);
/// ```
std::shared_ptr<nn::Module> create_backbone(const std::string& name, const nn::ModuleOptions& options, Generator& gen);

/// create_backbone, then a checked cast to `M`: a tlk::Error names the backbone and the type asked for
/// when the network is something else.
/// Example: `auto unet = transfer::create_backbone_as<nn::UNet>("unet3d", nn::ModuleOptions{}, gen);`
template <class M>
std::shared_ptr<M> create_backbone_as(const std::string& name, const nn::ModuleOptions& options, Generator& gen);

/// Registers a user network under `name` (in nn::ModuleRegistry::instance(), so configs, checkpoints
/// and the CLI find it too) with a one-line `description` for list_backbones(). A name already taken
/// is a tlk::Error.
///
/// Example:
/// ```
/// transfer::register_backbone("tiny-mlp", [](const nn::ModuleOptions& o, Generator& gen) {
///   return std::make_shared<nn::Linear>(o.in_channels, o.num_classes, gen);
/// }, "one linear layer; no options");
/// ```
void register_backbone(const std::string& name, nn::ModuleFactory factory, const std::string& description);

/// Every registered backbone, sorted by name, with its description ("(no description)" for networks
/// added to nn::ModuleRegistry directly).
/// Example: `for (auto& b : transfer::list_backbones()) fmt::print("  {:16} {}\n", b.name, b.description);`
std::vector<BackboneInfo> list_backbones();

/// list_backbones() as indented text, one backbone per line, for help output.
/// Example: `fmt::print("backbones:\n{}", transfer::format_backbone_list());`
std::string format_backbone_list();

// ---- What adapters and distillers need to know about a backbone ------------------------------------

/// `module` as a UNet, or a tlk::Error naming `what` (the caller, e.g. "multi-scale discriminator").
/// Example: `const nn::UNet& unet = transfer::as_unet(*net, "MultiScaleDiscriminator");`
nn::UNet& as_unet(nn::Module& module, const std::string& what);
/// `module` as a Classifier (features / classify split), or a tlk::Error naming `what`.
/// Example: `nn::Classifier& cls = transfer::as_classifier(*net, "DANN");`
nn::Classifier& as_classifier(nn::Module& module, const std::string& what);

/// Channels of each encoder skip (UNet::encoder_features()), stage 0 (full resolution) first.
/// Example: isotropic(4) with base_features 32, max_features 320 -> {32, 64, 128, 256}.
std::vector<std::int64_t> unet_encoder_channels(const nn::UNet& unet);
/// Downsampling of each encoder stage relative to the previous stage's output, stage 0 first
/// ({1,1,1} for stage 0): what a discriminator block that goes from skip i-1 to skip i strides by.
/// Example: isotropic(3) -> {{1,1,1}, {2,2,2}, {2,2,2}}.
std::vector<Int3> unet_encoder_strides(const nn::UNet& unet);
/// Total downsampling of each encoder skip relative to the input (the running product of the strides).
/// Example: isotropic(3) -> {{1,1,1}, {2,2,2}, {4,4,4}}.
std::vector<Int3> unet_encoder_scales(const nn::UNet& unet);

/// Size of the representation a classifier's features() returns ([N, size]).
/// Example: lenet with hidden 500 -> 500; resnet3d-small with widths 16,32,64,128 -> 128.
std::int64_t classifier_feature_count(const nn::Module& module);

/// Name prefixes of the task head's parameters: the layers whose shape follows the class count and
/// that a fine-tune to another task replaces (FinetuneOptions::skip_prefixes). UNet:
/// "decoder.heads"; LeNet: "fc2"; ResNet3d: "fc"; another network: empty.
/// Example: `opts.skip_prefixes = transfer::head_parameter_prefixes(*net);`
std::vector<std::string> head_parameter_prefixes(const nn::Module& module);

// ---- Template definitions ----------------------------------------------------------------------------

namespace detail {
[[noreturn]] void fail_backbone_type(const std::string& name, const char* expected);
}

template <class M>
std::shared_ptr<M> create_backbone_as(const std::string& name, const nn::ModuleOptions& options, Generator& gen) {
  std::shared_ptr<nn::Module> module = create_backbone(name, options, gen);
  std::shared_ptr<M> typed = std::dynamic_pointer_cast<M>(module);
  if (!typed) detail::fail_backbone_type(name, typeid(M).name());
  return typed;
}

}  // namespace tlk::transfer
