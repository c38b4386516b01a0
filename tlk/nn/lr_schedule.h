#pragma once
#include <cstdint>
#include <memory>

namespace tlk::nn {

/// A learning-rate schedule: the learning rate at step `step` (0-based). Set it with
/// `optimizer.set_lr(schedule.lr(step))` before each step (or each epoch, for nnUNet's per-epoch poly).
class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  virtual double lr(std::int64_t step) const = 0;
};

/// nnUNet's poly decay: lr0 · (1 − step / total)^exponent (exponent 0.9), 0 at and after `total`.
class PolySchedule : public LrSchedule {
 public:
  PolySchedule(double lr0, std::int64_t total, double exponent = 0.9);
  double lr(std::int64_t step) const override;

 private:
  double lr0_;
  std::int64_t total_;
  double exponent_;
};

/// Cosine annealing from lr0 to lr_min over `total` steps (lr_min after).
class CosineSchedule : public LrSchedule {
 public:
  CosineSchedule(double lr0, std::int64_t total, double lr_min = 0.0);
  double lr(std::int64_t step) const override;

 private:
  double lr0_;
  std::int64_t total_;
  double lr_min_;
};

/// lr0 · gamma^(step / step_size), integer division.
class StepSchedule : public LrSchedule {
 public:
  StepSchedule(double lr0, std::int64_t step_size, double gamma = 0.1);
  double lr(std::int64_t step) const override;

 private:
  double lr0_;
  std::int64_t step_size_;
  double gamma_;
};

/// DANN's annealing: mu0 / (1 + alpha · p)^beta with training progress p = step / total in [0, 1]
/// (Ganin & Lempitsky: mu0 = 0.01, alpha = 10, beta = 0.75).
class DannSchedule : public LrSchedule {
 public:
  DannSchedule(double mu0, std::int64_t total, double alpha = 10.0, double beta = 0.75);
  double lr(std::int64_t step) const override;

 private:
  double mu0_;
  std::int64_t total_;
  double alpha_, beta_;
};

/// Linear warm-up from 0 to the inner schedule's value over `warmup` steps, then the inner schedule
/// (which sees steps counted from the start).
class WarmupSchedule : public LrSchedule {
 public:
  WarmupSchedule(std::int64_t warmup, std::shared_ptr<const LrSchedule> inner);
  double lr(std::int64_t step) const override;

 private:
  std::int64_t warmup_;
  std::shared_ptr<const LrSchedule> inner_;
};

}  // namespace tlk::nn
