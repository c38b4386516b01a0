#include "tlk/transfer/backbone_factory.h"

#include <cxxabi.h>
#include <fmt/format.h>

#include <cstdlib>
#include <map>
#include <mutex>

#include "tlk/nn/lenet.h"
#include "tlk/nn/resnet3d.h"
#include "tlk/tensor/error.h"

namespace tlk::transfer {

namespace {

// Descriptions by backbone name; the built-ins are described here because nn::ModuleRegistry keeps
// only factories.
struct Descriptions {
  std::mutex mutex;
  std::map<std::string, std::string> by_name{
      {"unet3d",
       "nnUNet-style 3D UNet (segmentation); options: levels (5), base_features (32), max_features (320), "
       "deep_supervision (true), upsample_bias (false), head_bias (false), kernel_sizes and strides "
       "(\"1x3x3,3x3x3,...\" per stage; default 3x3x3, stride 2 after stage 0)"},
      {"lenet",
       "LeNet CNN for 2-D images as one-slice volumes (classification); options: image_size (28), "
       "conv1_channels (20), conv2_channels (50), hidden (500), padding (0)"},
      {"resnet3d-small",
       "small 3D ResNet with basic blocks (classification); options: widths (\"16,32,64,128\"), "
       "blocks (1 per stage)"},
  };
};

Descriptions& descriptions() {
  static Descriptions d;
  return d;
}

}  // namespace

namespace detail {
void fail_backbone_type(const std::string& name, const char* expected) {
  int status = 0;
  char* readable = abi::__cxa_demangle(expected, nullptr, nullptr, &status);
  const std::string type = status == 0 && readable ? readable : expected;
  std::free(readable);
  fail("create_backbone: backbone '{}' is not a {}", name, type);
}
}  // namespace detail

std::shared_ptr<nn::Module> create_backbone(const std::string& name, const nn::ModuleOptions& options, Generator& gen) {
  return nn::ModuleRegistry::instance().create(name, options, gen);
}

void register_backbone(const std::string& name, nn::ModuleFactory factory, const std::string& description) {
  nn::ModuleRegistry::instance().add(name, std::move(factory));  // throws on a taken or empty name
  auto& d = descriptions();
  std::lock_guard<std::mutex> lock(d.mutex);
  d.by_name[name] = description;
}

std::vector<BackboneInfo> list_backbones() {
  const std::vector<std::string> names = nn::ModuleRegistry::instance().names();  // sorted
  auto& d = descriptions();
  std::lock_guard<std::mutex> lock(d.mutex);
  std::vector<BackboneInfo> out;
  for (const auto& name : names) {
    auto it = d.by_name.find(name);
    out.push_back({name, it != d.by_name.end() && !it->second.empty() ? it->second : "(no description)"});
  }
  return out;
}

std::string format_backbone_list() {
  std::string out;
  for (const auto& b : list_backbones()) out += fmt::format("  {:<16} {}\n", b.name, b.description);
  return out;
}

nn::UNet& as_unet(nn::Module& module, const std::string& what) {
  auto* unet = dynamic_cast<nn::UNet*>(&module);
  check(unet != nullptr, "{}: needs a UNet backbone (unet3d), got another network", what);
  return *unet;
}

nn::Classifier& as_classifier(nn::Module& module, const std::string& what) {
  auto* classifier = dynamic_cast<nn::Classifier*>(&module);
  check(classifier != nullptr,
        "{}: needs a classifier backbone with features()/classify() (lenet, resnet3d-small), got another network",
        what);
  return *classifier;
}

std::vector<std::int64_t> unet_encoder_channels(const nn::UNet& unet) {
  std::vector<std::int64_t> out;
  for (int i = 0; i < unet.config().levels(); ++i) out.push_back(unet.config().features(i));
  return out;
}

std::vector<Int3> unet_encoder_strides(const nn::UNet& unet) { return unet.config().strides; }

std::vector<Int3> unet_encoder_scales(const nn::UNet& unet) {
  std::vector<Int3> out;
  Int3 scale{1, 1, 1};
  for (const Int3& s : unet.config().strides) {
    for (int a = 0; a < 3; ++a) scale[a] *= s[a];
    out.push_back(scale);
  }
  return out;
}

std::int64_t classifier_feature_count(const nn::Module& module) {
  const auto* classifier = dynamic_cast<const nn::Classifier*>(&module);
  check(classifier != nullptr,
        "classifier_feature_count: the network is not a classifier (no features()/classify() split)");
  return classifier->feature_count();
}

std::vector<std::string> head_parameter_prefixes(const nn::Module& module) {
  if (dynamic_cast<const nn::UNet*>(&module)) return {"decoder.heads"};
  if (dynamic_cast<const nn::LeNet*>(&module)) return {"fc2"};
  if (dynamic_cast<const nn::ResNet3d*>(&module)) return {"fc"};
  return {};
}

}  // namespace tlk::transfer
