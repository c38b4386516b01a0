#include "tlk/task/predictor.h"

#include "tlk/autograd/autocast.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <regex>

#include "tlk/data/preprocess.h"
#include "tlk/tensor/cuda_runtime.h"
#include "tlk/tensor/error.h"

namespace tlk::task {

namespace fs = std::filesystem;

Predictor::Predictor(const Checkpoint& checkpoint, PredictOptions options) {
  auto plan_text = checkpoint.metadata.find("preprocessing");
  auto patch_text = checkpoint.metadata.find("train.patch");
  check(plan_text != checkpoint.metadata.end() && patch_text != checkpoint.metadata.end(),
        "predict: the checkpoint has no preprocessing plan or patch size (was it written by tlk train?)");
  plan_ = data::PreprocessingPlan::from_json(plan_text->second, "checkpoint metadata 'preprocessing'");
  net_ = std::dynamic_pointer_cast<nn::UNet>(rebuild_model(checkpoint));
  check(net_ != nullptr, "predict: the checkpoint's model ('{}') is not a segmentation UNet",
        checkpoint.metadata.count("model") ? checkpoint.metadata.at("model") : "?");
  net_->eval();
  check(options.precision == DType::f32 || options.device.is_cuda(),
        "predict: precision {} needs a CUDA device (16-bit tensors live on the GPU); got {}",
        dtype_name(options.precision), options.device.str());
  check(options.precision == DType::f32 || options.precision == DType::bf16 || options.precision == DType::f16,
        "predict: precision must be f32, bf16 or f16, got {}", dtype_name(options.precision));
  check(options.layout == Layout::plain || options.device.is_cuda(),
        "predict: layout channels_last needs a CUDA device (the CPU picks oneDNN's blocked layouts itself); got {}",
        options.device.str());
  if (options.device.is_cuda()) cuda::require_device(options.device.index, "predict");
  net_->to(options.device);
  long long d = 0, h = 0, w = 0;
  check(std::sscanf(patch_text->second.c_str(), "%lld,%lld,%lld", &d, &h, &w) == 3 && d > 0 && h > 0 && w > 0,
        "predict: the checkpoint's patch size '{}' is not 'D,H,W'", patch_text->second);
  window_.patch = {d, h, w};
  window_.step = options.step;
  window_.mirror = options.mirror;
  window_.batch = options.batch;
  window_.progress = !options.quiet;
  window_.layout = options.layout;
  class_map_ = options.class_map;
  precision_ = options.precision;
  for (const auto& group : class_map_)
    for (int c : group)
      check(c >= 0 && c < plan_.num_classes(), "predict: the class map names model class {}, but the model has {} "
            "classes", c, plan_.num_classes());
}

io::NiftiImage Predictor::predict(const data::RawCase& input) const {
  check(input.images.size() == plan_.channel_names.size(), "predict: case {} has {} channel file(s), the model takes {}",
        input.id, input.images.size(), plan_.channel_names.size());
  data::LoadedCase loaded = data::load_raw_case(input, "", /*with_labels=*/false);
  io::NiftiImage header = loaded.header;
  Generator unused(0);
  const data::PreprocessedCase c = data::finish_case(std::move(loaded), plan_, unused);
  SlidingWindowOptions window = window_;
  window.progress_label = input.id;
  const Tensor probabilities = [&] {
    autograd::AutocastGuard amp(precision_);  // f32: autocast off
    return map_classes(predict_sliding_window(*net_, c.image, window), class_map_);
  }();
  io::NiftiImage out = header;
  out.data = data::labels_in_file_geometry(probabilities, c.geometry);
  out.dims = {out.data.size(2), out.data.size(1), out.data.size(0)};
  out.stored_type = io::NiftiType::u8;
  out.scl_slope = 0.0;
  out.scl_inter = 0.0;
  out.description = "tlk prediction";
  return out;
}

std::vector<std::vector<int>> parse_class_map(const std::string& text) {
  std::vector<std::vector<int>> groups;
  if (text.empty()) return groups;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    int target = 0, consumed = 0;
    check(std::sscanf(item.c_str(), "%d=%n", &target, &consumed) == 1 && consumed > 0 && target >= 1 && target < 256,
          "class map '{}': expected items like 1=2+3 (output class = model classes), got '{}'", text, item);
    if (groups.size() < static_cast<std::size_t>(target)) groups.resize(static_cast<std::size_t>(target));
    auto& group = groups[static_cast<std::size_t>(target - 1)];
    check(group.empty(), "class map '{}': output class {} is given twice", text, target);
    std::size_t pos = static_cast<std::size_t>(consumed);
    while (pos <= item.size()) {
      const std::size_t plus = std::min(item.find('+', pos), item.size());
      const std::string number = item.substr(pos, plus - pos);
      char* end = nullptr;
      const long c = std::strtol(number.c_str(), &end, 10);
      check(!number.empty() && *end == '\0' && c >= 0, "class map '{}': '{}' is not a class number", text, number);
      group.push_back(static_cast<int>(c));
      pos = plus + 1;
    }
    start = comma + 1;
  }
  for (std::size_t k = 0; k < groups.size(); ++k)
    check(!groups[k].empty(), "class map '{}': output class {} is missing (classes must be 1..K)", text, k + 1);
  return groups;
}

Tensor map_classes(const Tensor& probabilities, const std::vector<std::vector<int>>& class_map) {
  if (class_map.empty()) return probabilities;
  const Tensor p = probabilities.contiguous();
  const std::int64_t K = p.size(0), voxels = p.numel() / K;
  std::vector<bool> listed(static_cast<std::size_t>(K), false);
  for (const auto& group : class_map)
    for (int c : group) {
      check(c < K, "map_classes: class {} is not among the {} predicted classes", c, K);
      listed[static_cast<std::size_t>(c)] = true;
    }
  std::vector<std::vector<int>> groups{{}};
  for (std::int64_t c = 0; c < K; ++c)
    if (!listed[static_cast<std::size_t>(c)]) groups[0].push_back(static_cast<int>(c));
  groups.insert(groups.end(), class_map.begin(), class_map.end());
  Tensor out = Tensor::zeros({static_cast<std::int64_t>(groups.size()), p.size(1), p.size(2), p.size(3)});
  const float* x = p.data<float>();
  float* y = out.data<float>();
  for (std::size_t k = 0; k < groups.size(); ++k)
    for (int c : groups[k])
#pragma omp parallel for schedule(static)
      for (std::int64_t v = 0; v < voxels; ++v) y[k * voxels + v] = std::max(y[k * voxels + v], x[c * voxels + v]);
  return out;
}

std::vector<data::RawCase> list_prediction_inputs(const fs::path& input, std::size_t channels) {
  static const std::regex nifti_name(R"((.+?)(_(\d{4}))?\.nii(\.gz)?)");
  std::error_code ec;
  std::vector<fs::path> files;
  if (fs::is_directory(input, ec)) {
    for (const auto& entry : fs::directory_iterator(input))
      if (entry.is_regular_file() && std::regex_match(entry.path().filename().string(), nifti_name))
        files.push_back(entry.path());
    check(!files.empty(), "predict: {} holds no .nii or .nii.gz files", input.string());
  } else {
    check(fs::is_regular_file(input, ec), "predict: {}: no such file or folder", input.string());
    std::smatch m;
    const std::string name = input.filename().string();
    check(std::regex_match(name, m, nifti_name), "predict: {}: expected a .nii or .nii.gz file", input.string());
    if (m[3].matched && channels > 1) {  // the other channels of the case lie beside it
      for (std::size_t c = 0; c < channels; ++c)
        files.push_back(input.parent_path() / fmt::format("{}_{:04}.nii{}", m[1].str(), c, m[4].matched ? ".gz" : ""));
    } else {
      files.push_back(input);
    }
  }
  std::map<std::string, std::vector<fs::path>> cases;
  for (const auto& f : files) {
    std::smatch m;
    const std::string name = f.filename().string();
    std::regex_match(name, m, nifti_name);
    const std::string id = m[3].matched ? m[1].str() : m[1].str() + m[2].str();
    const std::size_t channel = m[3].matched ? std::stoul(m[3].str()) : 0;
    auto& list = cases[id];
    if (list.size() <= channel) list.resize(channel + 1);
    list[channel] = f;
  }
  std::vector<data::RawCase> out;
  for (auto& [id, list] : cases) {
    check(list.size() == channels, "predict: case {} has {} channel file(s) ({}_0000 ... ), the model takes {}", id,
          list.size(), id, channels);
    for (std::size_t c = 0; c < channels; ++c)
      check(!list[c].empty() && fs::exists(list[c]), "predict: case {} has no file for channel {} (expected {}_{:04}.nii.gz)",
            id, c, id, c);
    out.push_back({id, list, std::nullopt});
  }
  return out;
}

}  // namespace tlk::task
