// Synchronized batch norm (distributed.sync_batch_norm) on N ranks against one process with the
// whole batch: a ResNet3d's gradients, running statistics and SGD trajectory.
#include <doctest/doctest.h>

#include "test_util.h"
#include "tlk/autograd/ops/losses.h"
#include "tlk/dist/gradient_reducer.h"
#include "tlk/nn/resnet3d.h"
#include "tlk/nn/sgd.h"
#include "tlk/task/data_parallel.h"

using namespace tlk;
using namespace tlk::testing;

namespace {

dist::ProcessGroup& group() { return *dist::ProcessGroup::world(); }

nn::ResNet3d tiny_resnet() {
  Generator init(11);
  return nn::ResNet3d(nn::ResNet3dOptions{}.with_widths({4, 8}).with_blocks({1, 1}).with_strides({{1, 1, 1}, {2, 2, 2}})
                          .with_num_classes(3),
                      init);
}

/// The largest difference between two models' gradients, relative to the larger gradient.
double gradient_difference(const nn::Module& a, const nn::Module& b) {
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  double worst = 0.0;
  for (std::size_t k = 0; k < pa.size(); ++k) {
    const double size = max_abs_diff(pa[k].second.grad(), Tensor::zeros(pa[k].second.shape()));
    worst = std::max(worst, max_abs_diff(pa[k].second.grad(), pb[k].second.grad()) / (size + 1e-6));
  }
  return worst;
}

}  // namespace

TEST_CASE("dist: synchronized batch norm on N ranks gives one process's gradients and running statistics") {
  const int ranks = group().size(), rank = group().rank();
  const std::int64_t per_rank = 2, n = per_rank * ranks;
  nn::ResNet3d single = tiny_resnet(), synced = tiny_resnet(), unsynced = tiny_resnet();
  task::DataParallel parallel(&group());
  CHECK(parallel.synchronize_batch_norm({&synced}) == 6);  // the stem's, two per block, the projection's
  nn::Sgd single_sgd(single.parameters(), nn::SgdOptions{0.05, 0.9, true, 0.0});
  nn::Sgd synced_sgd(synced.parameters(), nn::SgdOptions{0.05, 0.9, true, 0.0});
  dist::GradientReducer synced_reducer(group(), synced.parameters(), {.bucket_bytes = 2048});
  dist::GradientReducer unsynced_reducer(group(), unsynced.parameters(), {.bucket_bytes = 2048});
  for (std::int64_t step = 0; step < 3; ++step) {
    Generator gen(300 + static_cast<std::uint64_t>(step));
    const Tensor images = randn({n, 1, 6, 6, 6}, gen, 0.5, 2.0);
    std::vector<double> y;
    for (std::int64_t i = 0; i < n; ++i) y.push_back(static_cast<double>(gen.below(3)));
    const Tensor labels = Tensor::from_doubles(y, Shape{n}, DType::i64);
    const Tensor mine = images.narrow(0, rank * per_rank, per_rank).contiguous();
    const Tensor my_labels = labels.narrow(0, rank * per_rank, per_rank).contiguous();

    single_sgd.zero_grad();
    ops::cross_entropy(single.forward(images), labels).backward();
    synced_sgd.zero_grad();
    ops::cross_entropy(synced.forward(mine), my_labels).backward();
    synced_reducer.finish_backward();
    INFO("step " << step);
    CHECK(gradient_difference(single, synced) < 1e-4);
    if (step == 0) {  // per-rank statistics (DDP's default) give other gradients: the check above can fail
      for (Tensor& p : unsynced.parameters()) p.set_grad(Tensor());
      ops::cross_entropy(unsynced.forward(mine), my_labels).backward();
      unsynced_reducer.finish_backward();
      CHECK(gradient_difference(single, unsynced) > 1e-2);
    }
    single_sgd.step();
    synced_sgd.step();
  }
  // Running statistics over the global batch: equal to one process's, on every rank, without averaging.
  const auto a = single.named_buffers(), b = synced.named_buffers();
  REQUIRE(a.size() == b.size());
  for (std::size_t k = 0; k < a.size(); ++k) {
    INFO("buffer " << a[k].first);
    CHECK(max_abs_diff(a[k].second, b[k].second) <= 1e-5);
  }
  const auto pa = single.named_parameters(), pb = synced.named_parameters();
  for (std::size_t k = 0; k < pa.size(); ++k) {
    INFO("parameter " << pa[k].first << " after 3 SGD steps");
    CHECK(max_abs_diff(pa[k].second, pb[k].second) <= 1e-5);
  }
}
