#pragma once
// Helpers shared by the CUDA kernel tests (tests/cuda). Every test case starts with
// TLK_REQUIRE_GPU(): without a usable GPU (always so on TLK's CI machines) it reports why and returns,
// so the suite still builds and runs everywhere; on a GPU machine the case runs in full.
#include "test_util.h"
#include "tlk/tensor/cuda_runtime.h"

namespace tlk::testing {

/// True when a GPU is usable; otherwise prints the reason once per test case and returns false.
bool gpu_or_skip();
/// `t` copied to cuda:0 (plain, contiguous).
Tensor to_gpu(const Tensor& t);
/// `t` copied to cuda:0 in the channels-last (NDHWC) arrangement (exactly channels_last_strides,
/// also for one channel).
Tensor to_gpu_channels_last(const Tensor& t);
/// `t` copied to the CPU (plain, contiguous).
Tensor to_cpu(const Tensor& t);
/// The first data row of a training log (steps.csv), as numbers (NaN cells included).
std::vector<double> first_step(const std::filesystem::path& steps_csv);

}  // namespace tlk::testing

/// Skips the rest of the test case, with a message naming the reason, when no GPU is usable.
#define TLK_REQUIRE_GPU()                    \
  do {                                       \
    if (!::tlk::testing::gpu_or_skip()) return; \
  } while (0)
