// `tlk selfcheck`: proves on the user's machine that the engine computes and differentiates.
#include <fmt/format.h>

#include <chrono>
#include <string>

#include "cli.h"
#include "tlk/tlk.h"

namespace tlk::cli {

namespace {
const char* kHelp = R"(tlk selfcheck - run a small 3D conv net forward and backward and check its gradients

Usage:
  tlk selfcheck [--seed N]

Builds conv3d -> leaky ReLU -> conv3d on a random 1x2x6x6x6 volume in f64, runs backward and
compares every gradient with central finite differences. Exits 0 when all agree.

Options:
  --seed N     random seed (default 1)
  --help       this text

Examples:
  tlk selfcheck
  tlk selfcheck --seed 7
)";
}  // namespace

int selfcheck(const std::vector<std::string>& args) {
  std::uint64_t seed = 1;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      fmt::print("{}", kHelp);
      return 0;
    }
    if (args[i] == "--seed") {
      check(i + 1 < args.size(), "selfcheck: --seed needs a value");
      try {
        seed = std::stoull(args[++i]);
      } catch (const std::exception&) {
        fail("selfcheck: --seed expects a non-negative integer, got '{}'", args[i]);
      }
      continue;
    }
    fail("selfcheck: unknown option '{}' (see tlk selfcheck --help)", args[i]);
  }

  const auto start = std::chrono::steady_clock::now();
  Generator gen(seed);
  const TensorOptions f64{DType::f64};
  Tensor x = randn({1, 2, 6, 6, 6}, gen, 0, 1, f64);
  Tensor w1 = randn({3, 2, 3, 3, 3}, gen, 0, 0.3, f64).set_requires_grad();
  Tensor b1 = randn({3}, gen, 0, 0.1, f64).set_requires_grad();
  Tensor w2 = randn({2, 3, 1, 3, 3}, gen, 0, 0.3, f64).set_requires_grad();
  const auto net = [](const std::vector<Tensor>& in) {
    Tensor h = ops::leaky_relu(ops::conv3d(in[0], in[1], in[2], Conv3dOptions{}.with_padding({1, 1, 1})), 0.01);
    Tensor y = ops::conv3d(h, in[3], {}, Conv3dOptions{}.with_stride({1, 2, 2}).with_padding({0, 1, 1}));
    return std::vector<Tensor>{ops::mean(ops::square(y))};
  };
  Tensor loss = net({x, w1, b1, w2})[0];
  fmt::print("tlk {} selfcheck: forward loss {:.6f}\n", TLK_VERSION_STRING, loss.item());
  auto result = autograd::gradcheck(net, {x, w1, b1, w2});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  check(result.ok, "selfcheck failed: {}", result.message);
  fmt::print("tlk selfcheck: gradients match finite differences (max abs error {:.2e}) in {:.2f} s\n",
             result.max_abs_error, seconds);
  fmt::print("tlk selfcheck: CUDA {}\n", cuda::is_available() ? "available" : cuda::unavailable_reason());
  return 0;
}

}  // namespace tlk::cli
