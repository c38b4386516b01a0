#include "tlk/task/mixed_precision.h"

#include <fmt/format.h>

#include "tlk/autograd/autocast.h"
#include "tlk/tensor/device.h"
#include "tlk/tensor/error.h"

namespace tlk::task {

DType read_train_precision(const io::Config& config, const std::string& device) {
  const DType precision = autograd::parse_precision(config.get_string("train.precision", "f32"),
                                                    fmt::format("{}: train.precision", config.source()));
  check(precision == DType::f32 || parse_device(device, "train.device").is_cuda(),
        "{}: train.precision {} needs train.device cuda (16-bit tensors live on the GPU); got train.device {}",
        config.source(), dtype_name(precision), device);
  return precision;
}

MixedPrecision::MixedPrecision(DType precision) : precision_(precision) {
  check(precision == DType::f32 || precision == DType::bf16 || precision == DType::f16,
        "train.precision must be f32, bf16 or f16, got {}", dtype_name(precision));
}

void MixedPrecision::backward(const Tensor& loss) {
  if (precision_ == DType::f16)
    scaler_.scale(loss).backward();
  else
    loss.backward();
}

bool MixedPrecision::gradients_finite(const std::vector<Tensor>& trained) {
  if (precision_ != DType::f16) return true;
  last_finite_ = scaler_.unscale(trained);
  scaler_.update(!last_finite_);
  return last_finite_;
}

void MixedPrecision::log(LogRow& row) const {
  if (precision_ != DType::f16) return;  // the scale after this step's update; skipped steps show as a drop
  row.emplace_back("loss_scale", scaler_.current_scale());
  row.emplace_back("step_skipped", last_finite_ ? 0.0 : 1.0);
}

void MixedPrecision::save(std::map<std::string, std::string>& metadata) const {
  if (precision_ != DType::f16) return;
  metadata["train.loss_scale"] = fmt::format("{}", scaler_.current_scale());
  metadata["train.loss_scale_growth"] = fmt::format("{}", scaler_.growth_tracker());
}

void MixedPrecision::load(const std::map<std::string, std::string>& metadata) {
  if (precision_ != DType::f16 || !metadata.count("train.loss_scale")) return;
  const auto growth = metadata.find("train.loss_scale_growth");
  scaler_.load(std::stod(metadata.at("train.loss_scale")), growth == metadata.end() ? 0 : std::stoll(growth->second));
}

}  // namespace tlk::task
