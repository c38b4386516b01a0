#include "cuda_test_util.h"

namespace tlk::testing {

bool gpu_or_skip() {
  if (cuda::is_available()) {
    // Note [Poisoned GPU memory]: while tests run, fresh device blocks are filled with NaN, so an
    // output element a kernel forgets to write shows up as a mismatch instead of a stale value.
    cuda::set_poison_allocations(true);
    return true;
  }
  MESSAGE("skipped: no usable GPU (" << cuda::unavailable_reason() << ")");
  return false;
}

Tensor to_gpu(const Tensor& t) { return t.detach().to(Layout::plain).contiguous().to(Device::cuda(0)); }

Tensor to_cpu(const Tensor& t) { return t.detach().to(Device::cpu()).to(Layout::plain).contiguous(); }

}  // namespace tlk::testing
