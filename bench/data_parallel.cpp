// Data-parallel training throughput: one UNet training step per rank per iteration, gradients
// averaged over the ranks by dist::GradientReducer (as `tlk train --distributed` does).
//
//   mpirun -np 2 build/bench/data_parallel --batch 1 --patch 48,48,48 --threads 1 --iters 5
//   bench/data_parallel.sh      # 1 and 2 ranks interleaved, medians and the scaling efficiency
//
// Prints on rank 0 one line: `ranks=<N> threads=<T> patches_per_s=<median> step_ms=<median>
// reduce_wait_ms=<median>`. reduce_wait_ms is the time finish_backward() waited for gradients
// after backward ended: the part of the communication that backward did not hide.
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <string>
#include <vector>

#include "timing.h"
#include "tlk/dist/gradient_reducer.h"
#include "tlk/nn/deep_supervision_loss.h"
#include "tlk/nn/sgd.h"
#include "tlk/nn/unet.h"
#include "tlk/tensor/error.h"

using namespace tlk;

namespace {

const char* kHelp = R"(usage: mpirun -np N data_parallel [options]
Times data-parallel UNet training steps (forward, Dice+CE, backward with bucketed gradient
all-reduce, SGD) on every rank of an MPI job and prints the throughput on rank 0.

Options (defaults in brackets):
  --batch N          patches per rank per step [1]
  --patch D,H,W      patch size [48,48,48]
  --base N           features of the first stage [16]
  --levels N         UNet stages [4]
  --threads N        OpenMP threads per rank [1]
  --bucket-mb X      gradient bucket size in MiB [25]
  --iters N          timed steps; medians are printed [5]

Example:
  mpirun -np 2 build/bench/data_parallel --batch 1 --threads 1 --iters 5
)";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::int64_t batch = 1, base = 16, levels = 4, iters = 5;
  int threads = 1;
  double bucket_mb = 25;
  std::array<std::int64_t, 3> patch{48, 48, 48};
  try {
    for (std::size_t i = 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a == "--help") {
        fmt::print("{}", kHelp);
        return 0;
      }
      check(i + 1 < args.size(), "data_parallel: {} needs a value (see --help)", a);
      const std::string v = args[++i];
      if (a == "--batch") batch = std::stoll(v);
      else if (a == "--base") base = std::stoll(v);
      else if (a == "--levels") levels = std::stoll(v);
      else if (a == "--threads") threads = std::stoi(v);
      else if (a == "--bucket-mb") bucket_mb = std::stod(v);
      else if (a == "--iters") iters = std::stoll(v);
      else if (a == "--patch") {
        check(std::sscanf(v.c_str(), "%ld,%ld,%ld", &patch[0], &patch[1], &patch[2]) == 3,
              "data_parallel: --patch expects D,H,W, got '{}'", v);
      } else {
        throw Error(fmt::format("data_parallel: unknown option '{}' (see --help)", a));
      }
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "data_parallel: {}\n", e.what());
    return 2;
  }
  omp_set_num_threads(threads);
  auto& group = dist::ProcessGroup::init_world();
  nn::UNetConfig config = nn::UNetConfig::isotropic(static_cast<int>(levels), 1, 2);
  config.base_features = base;
  Generator init(1);
  nn::UNet net(config, init);
  nn::Sgd sgd(net.parameters(), nn::SgdOptions{0.01, 0.99, true, 3e-5});
  std::unique_ptr<dist::GradientReducer> reducer;
  if (group.size() > 1)
    reducer = std::make_unique<dist::GradientReducer>(
        group, net.parameters(), dist::GradientReducerOptions{static_cast<std::int64_t>(bucket_mb * (1 << 20))});
  Generator gen(10 + static_cast<std::uint64_t>(group.rank()));
  const Tensor images = rand({batch, 1, patch[0], patch[1], patch[2]}, gen);
  Tensor labels = Tensor::zeros({batch, patch[0], patch[1], patch[2]}, TensorOptions{}.with(DType::u8));
  for (std::int64_t i = 0; i < labels.numel(); ++i) labels.data<std::uint8_t>()[i] = gen.uniform() < 0.3;

  std::vector<double> step_ms, wait_ms;
  for (std::int64_t it = 0; it <= iters; ++it) {  // step 0 builds the primitives: untimed
    group.barrier("step start");
    double wait = 0;
    const double ms = bench::time_ms([&] {
      sgd.zero_grad();
      nn::deep_supervision_loss(net.forward(images), labels, net.deep_supervision_weights()).backward();
      if (reducer) wait = bench::time_ms([&] { reducer->finish_backward(); });
      sgd.step();
    });
    if (it > 0) {
      step_ms.push_back(ms);
      wait_ms.push_back(wait);
    }
  }
  // Rank 0's medians: the barrier starts the ranks together and the gradient all-reduce makes rank 0
  // wait for the slowest, so rank 0's step is the job's.
  std::sort(step_ms.begin(), step_ms.end());
  std::sort(wait_ms.begin(), wait_ms.end());
  const double step = step_ms[step_ms.size() / 2], wait = wait_ms[wait_ms.size() / 2];
  if (group.rank() == 0)
    fmt::print("ranks={} threads={} patches_per_s={:.3f} step_ms={:.1f} reduce_wait_ms={:.1f}\n", group.size(),
               threads, 1000.0 * static_cast<double>(batch * group.size()) / step, step, wait);
  dist::ProcessGroup::finalize_world();
  return 0;
}
