#include "tlk/transfer/distiller.h"

#include "tlk/autograd/grad_mode.h"
#include "tlk/autograd/ops/losses.h"
#include "tlk/tensor/error.h"

namespace tlk::transfer {

namespace {

const char* loss_name(DistillLoss l) {
  switch (l) {
    case DistillLoss::kd:
      return "kd";
    case DistillLoss::dkd:
      return "dkd";
    case DistillLoss::mse:
      return "mse";
    case DistillLoss::voxel_kd:
      return "voxel_kd";
  }
  return "?";
}

double loss_temperature(const DistillerOptions& o) {
  switch (o.loss) {
    case DistillLoss::kd:
      return o.temperature;
    case DistillLoss::dkd:
      return o.dkd.temperature;
    case DistillLoss::voxel_kd:
      return o.voxel.temperature;
    case DistillLoss::mse:
      break;
  }
  return 0.0;
}

}  // namespace

Distiller::Distiller(std::shared_ptr<nn::UnaryModule> teacher, const DistillerOptions& options,
                     std::shared_ptr<TeacherCache> cache)
    : teacher_(std::move(teacher)), options_(options), cache_(std::move(cache)) {
  check(teacher_ != nullptr, "Distiller: the teacher module is null");
  for (Tensor& p : teacher_->parameters()) p.set_requires_grad(false);
  teacher_->eval();
  if (cache_ && cache_->options().format != CacheFormat::logits) {
    check(options_.loss != DistillLoss::mse,
          "Distiller: the mse loss compares logits, but the teacher cache {} stores probabilities (use "
          "CacheFormat::logits)",
          cache_->directory().string());
    check(loss_temperature(options_) == cache_->options().temperature,
          "Distiller: the {} loss runs at temperature {} but the teacher cache {} stores probabilities at "
          "temperature {}",
          loss_name(options_.loss), loss_temperature(options_), cache_->directory().string(),
          cache_->options().temperature);
  }
}

namespace {
// A cached (CPU, f32) teacher output in the batch's dtype on the batch's device.
Tensor on_batch_device(const Tensor& cached, const Tensor& batch) {
  const Tensor typed = batch.dtype() == DType::f32 ? cached : cached.to(batch.dtype());
  return typed.device() == batch.device() ? typed : typed.to(batch.device());
}
}  // namespace

Tensor Distiller::teacher_outputs(const Tensor& batch, const std::optional<TeacherCacheKey>& key) {
  if (cache_ && key && cache_->has(*key)) {
    Tensor cached = cache_->get_teacher_logits(*key);
    check(cached.size(0) == batch.size(0),
          "Distiller: the cached teacher output for sample {}, seed {} has batch size {} but the batch has {} "
          "(shape {})",
          key->sample, key->seed, cached.size(0), batch.size(0), batch.shape().str());
    return on_batch_device(cached, batch);
  }
  Tensor out;
  {
    NoGradGuard guard;
    out = teacher_->forward(batch).detach();
  }
  if (cache_ && key) {
    cache_->put(*key, out.to(DType::f32).to(Device::cpu()));  // the cache lives on the CPU (HDF5)
    // Replay what the cache holds, so that the first epoch and the replayed ones see the same teacher.
    return on_batch_device(cache_->get_teacher_logits(*key), batch);
  }
  return out;
}

Tensor Distiller::loss(const Tensor& student_logits, const Tensor& teacher_logits, const Tensor& labels,
                       double epoch) const {
  const Tensor t = teacher_logits.detach();
  switch (options_.loss) {
    case DistillLoss::kd:
      return ops::kl_div_with_temperature(student_logits, t, options_.temperature);
    case DistillLoss::dkd:
      return dkd_loss(student_logits, t, labels, epoch, options_.dkd);
    case DistillLoss::mse:
      return logit_mse_loss(student_logits, t);
    case DistillLoss::voxel_kd:
      return voxel_kd_loss(student_logits, t, options_.voxel, labels);
  }
  fail("Distiller: unknown loss {}", static_cast<int>(options_.loss));
}

}  // namespace tlk::transfer
