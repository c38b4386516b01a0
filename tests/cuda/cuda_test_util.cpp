#include "cuda_test_util.h"

#include <fstream>
#include <sstream>

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

Tensor to_gpu_channels_last(const Tensor& t) {
  Tensor g = to_gpu(t).to(Layout::channels_last);
  REQUIRE(g.strides() == channels_last_strides(t.shape()));
  return g;
}

Tensor to_cpu(const Tensor& t) { return t.detach().to(Device::cpu()).to(Layout::plain).contiguous(); }

std::vector<double> first_step(const std::filesystem::path& steps_csv) {
  std::ifstream in(steps_csv);
  std::string header, row;
  std::getline(in, header);
  std::getline(in, row);
  std::vector<double> values;
  std::stringstream cells(row);
  for (std::string cell; std::getline(cells, cell, ',');) values.push_back(std::stod(cell));
  return values;
}

}  // namespace tlk::testing
