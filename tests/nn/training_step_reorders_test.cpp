// How many layout reorders one UNet training step performs on the CPU fast path (Note [Stay blocked]).
#include <oneapi/dnnl/dnnl.hpp>

#include "test_util.h"
#include "tlk/kernels/cpu/primitive_cache.h"
#include "tlk/nn/deep_supervision_loss.h"
#include "tlk/nn/sgd.h"
#include "tlk/nn/unet.h"

using namespace tlk;

namespace {
struct StepReorders {
  std::uint64_t forward, loss, backward, primitives_built;
};
}  // namespace

TEST_CASE("a UNet training step reorders activations only where the losses need plain memory") {
  Generator gen(8);
  nn::UNetConfig config = nn::UNetConfig::isotropic(4, 1, 2);
  config.base_features = 16;
  config.max_features = 64;
  nn::UNet net(config, gen);
  nn::Sgd sgd(nn::single_group(net), nn::SgdOptions{0.01, 0.99, true, 3e-5});
  const Tensor x = randn({2, 1, 32, 32, 32}, gen);
  const Tensor labels = rand({2, 32, 32, 32}, gen, 0, 2).to(DType::i64);
  auto step = [&] {
    const auto builds = kernels::cpu::PrimitiveCache::instance().stats().builds;
    const auto r0 = reorder_stats().activations;
    auto outputs = net.forward(x);
    const auto r1 = reorder_stats().activations;
    Tensor loss = nn::deep_supervision_loss(outputs, labels, net.deep_supervision_weights());
    const auto r2 = reorder_stats().activations;
    loss.backward();
    const auto r3 = reorder_stats().activations;
    sgd.step();
    sgd.zero_grad();
    return StepReorders{r1 - r0, r2 - r1, r3 - r2, kernels::cpu::PrimitiveCache::instance().stats().builds - builds};
  };
  step();  // warm-up: builds the primitives
  const StepReorders second = step(), third = step();
  CHECK(second.primitives_built == 0);
  CHECK(third.primitives_built == 0);
  CHECK(second.forward == third.forward);
  CHECK(second.backward == third.backward);
  // Supervised outputs: every decoder level but the lowest, whose weight is 0 (nnUNet).
  const std::uint64_t supervised = static_cast<std::uint64_t>(config.levels() - 2);
  MESSAGE("activation reorders per step: forward " << second.forward << ", loss " << second.loss << ", backward "
                                                   << second.backward);
  // The losses read plain memory: one reorder of each supervised output's logits to plain, and one of
  // its gradient back into the head convolution's layout.
  CHECK(second.loss == supervised);
  if (dnnl::get_effective_cpu_isa() >= dnnl::cpu_isa::avx512_core) {
    // With AVX-512 every convolution, deconvolution, norm and activation works in nCdhw16c.
    CHECK(second.forward == 0);
    CHECK(second.backward == supervised);
  } else {
    // With AVX2, oneDNN 2.6 runs the 2x2x2 deconvolution's forward as a GEMM on plain layouts, which
    // adds reorders around each upsampling (measured with DNNL_MAX_CPU_ISA=AVX2: 3 forward, 9 backward).
    CHECK(second.forward <= static_cast<std::uint64_t>(config.levels()));
    CHECK(second.backward <= 3 * static_cast<std::uint64_t>(config.levels()));
  }
}
