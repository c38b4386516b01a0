#include "tlk/kernels/cuda/loss_args.h"

#include <string>

#include "tlk/kernels/cuda/launch.h"
#include "tlk/kernels/ref/common.h"
#include "tlk/tensor/cuda_runtime.h"

namespace tlk::kernels::cuda::loss_detail {

launch::LossLayout layout_of(const Shape& shape) {
  const ref::ChannelView v = ref::ChannelView::of(shape);
  return {v.outer, v.channels, v.inner};
}

Tensor scratch(const Tensor& like, std::int64_t n) {
  return Tensor::empty(Shape{n < 1 ? 1 : n}, TensorOptions{DType::f64, like.device()});
}

Tensor grad_scalar(const Tensor& grad_output, const Tensor& like, const char* op) {
  tlk::check(grad_output.defined() && grad_output.numel() == 1,
             "{} backward: expected a one-element gradient of the scalar loss (shape [] or [1]), got {}", op,
             grad_output.defined() ? "shape " + grad_output.shape().str() : std::string("an undefined tensor"));
  require_same(grad_output, like, op, "grad_output");
  return contiguous(grad_output);
}

Tensor labels(const Tensor& target, const Tensor& like, const char* op, const char* what) {
  tlk::check(target.defined(), "{}: {} is undefined", op, what);
  const DType t = target.dtype();
  tlk::check(t == DType::i64 || t == DType::i32 || t == DType::u8,
             "{}: {} must hold integer class indices (i64, i32 or u8), got {} with shape {}", op, what, dtype_name(t),
             target.shape().str());
  tlk::check(target.device() == like.device(), "{}: {} is on {} but the logits are on {}", op, what,
             target.device().str(), like.device().str());
  return contiguous(target);
}

BadLabelFlag::BadLabelFlag(const Tensor& like)
    : flag_(Tensor::empty(Shape{1}, TensorOptions{DType::i64, like.device()})) {
  check_status(cudaMemsetAsync(flag_.raw_data(), 0xff, sizeof(unsigned long long), stream()), "loss label check",
               "cudaMemsetAsync");
}

unsigned long long* BadLabelFlag::get() const { return static_cast<unsigned long long*>(flag_.raw_data()); }

void BadLabelFlag::check(const Tensor& labels, std::int64_t classes, const char* op, bool has_ignore,
                         std::int64_t ignore) const {
  unsigned long long first = 0;
  tlk::cuda::copy_bytes(&first, Device::cpu(), flag_.raw_data(), flag_.device(), sizeof(first));
  if (first == ~0ull) return;
  const auto pos = static_cast<std::int64_t>(first);
  const std::int64_t value =
      static_cast<std::int64_t>(labels.to(Device::cpu()).to_doubles()[static_cast<std::size_t>(pos)]);
  if (has_ignore)
    fail("{}: target value {} (element {}) is out of range for {} classes (expected 0 <= t < {}, or ignore_index {})",
         op, value, pos, classes, classes, ignore);
  fail("{}: target label {} (element {}) is out of range for {} classes (expected 0 <= label < {})", op, value, pos,
       classes, classes);
}

}  // namespace tlk::kernels::cuda::loss_detail
