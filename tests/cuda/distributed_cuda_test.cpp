// Data-parallel training on the GPU: NCCL bootstrapped through MPI (a job of one rank here: the
// suite runs without mpirun), gradient buckets averaged on the GPU. One rank's mean is its own
// gradient, so the reduced gradients must equal plain backward's, bucket by bucket.
#include "compare_to_ref.h"
#include "cuda_test_util.h"
#include "tlk/dist/gradient_reducer.h"
#include "tlk/dist/nccl_communicator.h"
#include "tlk/nn/deep_supervision_loss.h"
#include "tlk/nn/unet.h"

using namespace tlk;
using testing::to_gpu;

namespace {

bool nccl_or_skip() {
  std::string why;
  if (dist::NcclCommunicator::available(&why)) return true;
  MESSAGE("skipped: " << why);
  return false;
}

}  // namespace

TEST_CASE("GPU data-parallel: NCCL averages a bucket and the reducer's gradients equal plain backward's") {
  TLK_REQUIRE_GPU();
  if (!nccl_or_skip()) return;
  auto& group = dist::ProcessGroup::init_world({.timeout_seconds = 60});
  REQUIRE(group.size() == 1);
  {
    dist::NcclCommunicator nccl(group, 0);
    Tensor t = to_gpu(Tensor::full({1000}, 3.5));
    nccl.all_reduce_mean_async(t, "a test tensor")->wait();
    CHECK(testing::to_cpu(t).data<float>()[999] == 3.5f);
    // Several in flight at once (Note [Non-blocking NCCL]: each is launched before the next starts).
    std::vector<Tensor> many;
    std::vector<std::shared_ptr<dist::Work>> works;
    for (int i = 0; i < 4; ++i) {
      many.push_back(to_gpu(Tensor::full({4096}, 1.0 + i)));
      works.push_back(nccl.all_reduce_mean_async(many.back(), "tensor " + std::to_string(i)));
    }
    for (auto& w : works) w->wait();
    for (int i = 0; i < 4; ++i) CHECK(testing::to_cpu(many[i]).data<float>()[4095] == 1.0f + i);
    CHECK_THROWS_WITH_AS(nccl.all_reduce_mean_async(Tensor::full({4}, 1.0), "a CPU tensor"),
                         doctest::Contains("expected a contiguous f32 tensor on cuda:0"), Error);
  }
  // Full fp32 convolutions: under TF32 two cuDNN algorithms (the search runs several during the first
  // pass) differ by about 1e-4 relative, which would hide a reducer error of that size.
  testing::Tf32Scope fp32(false);
  nn::UNetConfig config = nn::UNetConfig::isotropic(3, 1, 3);
  config.base_features = 4;
  Generator init(3), data(4);
  nn::UNet plain(config, init);
  Generator init_again(3);
  nn::UNet reduced(config, init_again);
  plain.to(Device::cuda(0));
  reduced.to(Device::cuda(0));
  const Tensor images = to_gpu(rand({2, 1, 8, 8, 8}, data, -1.0, 1.0));
  Tensor labels = Tensor::zeros({2, 8, 8, 8}, TensorOptions{}.with(DType::u8));
  for (std::int64_t i = 0; i < labels.numel(); ++i) labels.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(i % 3);
  labels = to_gpu(labels);
  {
  dist::GradientReducer reducer(group, reduced.parameters(), {.bucket_bytes = 4096});
  for (int pass = 0; pass < 2; ++pass) {
    plain.zero_grad();
    reduced.zero_grad();
    nn::deep_supervision_loss(plain.forward(images), labels, plain.deep_supervision_weights()).backward();
    nn::deep_supervision_loss(reduced.forward(images), labels, reduced.deep_supervision_weights()).backward();
    reducer.finish_backward();
    const auto a = plain.named_parameters(), b = reduced.named_parameters();
    for (std::size_t k = 0; k < a.size(); ++k) {
      INFO("pass " << pass << ", " << a[k].first);
      REQUIRE(a[k].second.grad().defined() == b[k].second.grad().defined());
      if (!a[k].second.grad().defined()) continue;
      // Relative: cuDNN's backward-filter algorithms may sum in another order from one pass to the next.
      const Tensor ga = testing::to_cpu(a[k].second.grad()), gb = testing::to_cpu(b[k].second.grad());
      const double scale = std::max(testing::max_abs_diff(ga, Tensor::zeros(ga.shape())), 1e-3);
      CHECK(testing::max_abs_diff(ga, gb) / scale <= 1e-5);
    }
  }
  CHECK(reducer.buckets_started_during_backward() > 0);
  }
  dist::ProcessGroup::finalize_world();  // the suite's only MPI user: leave the one-rank job in order
}
