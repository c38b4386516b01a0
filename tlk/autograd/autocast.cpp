#include "tlk/autograd/autocast.h"

#include "tlk/tensor/error.h"

namespace tlk::autograd {

namespace {
thread_local DType t_autocast = DType::f32;
}

AutocastGuard::AutocastGuard(DType dtype) : previous_(t_autocast) {
  check(dtype == DType::bf16 || dtype == DType::f16 || dtype == DType::f32,
        "AutocastGuard: dtype must be bf16, f16 or f32 (off), got {}", dtype_name(dtype));
  t_autocast = dtype;
}

AutocastGuard::~AutocastGuard() { t_autocast = previous_; }

DType autocast_dtype() { return t_autocast; }

DType parse_precision(const std::string& text, const std::string& what) {
  if (text == "f32") return DType::f32;
  if (text == "bf16") return DType::bf16;
  if (text == "f16") return DType::f16;
  fail("{} must be f32, bf16 or f16, got '{}'", what, text);
}

bool autocast_lowers(std::initializer_list<const Tensor*> ts) {
  if (t_autocast == DType::f32) return false;
  for (const Tensor* t : ts)
    if (t->defined() && t->device().is_cuda() && t->dtype() == DType::f32) return true;
  return false;
}

Tensor autocast_lower(const Tensor& t) { return autocast_lowers({&t}) ? t.to(t_autocast) : t; }

Tensor widen_half(const Tensor& t) {
  return t.defined() && (t.dtype() == DType::bf16 || t.dtype() == DType::f16) ? t.to(DType::f32) : t;
}

}  // namespace tlk::autograd
