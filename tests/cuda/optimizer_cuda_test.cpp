// nn::Sgd and nn::Adam on CUDA parameters: the same trajectory as on the CPU from the same start and
// the same gradients, state that lives on the GPU, and checkpoints (state / load_state) that move
// through the CPU.
#include <memory>
#include <string>
#include <vector>

#include "compare_to_ref.h"
#include "cuda_test_util.h"
#include "tlk/nn/adam.h"
#include "tlk/nn/sgd.h"

using namespace tlk;
using testing::check_matches;
using testing::to_gpu;

namespace {

const std::vector<Shape> kParamShapes = {{3, 5}, {7}, {2, 3, 4, 1, 5}};

// Fresh leaf parameters of `dtype` on the CPU, and copies of them on the GPU.
struct Params {
  std::vector<Tensor> cpu, gpu;
};

Params make_params(Generator& gen, DType dtype) {
  Params p;
  for (const Shape& s : kParamShapes) {
    Tensor t = randn(s, gen, 0.0, 1.0, TensorOptions{DType::f64}).to(dtype);
    Tensor g = to_gpu(t);
    t.set_requires_grad(true);
    g.set_requires_grad(true);
    p.cpu.push_back(t);
    p.gpu.push_back(g);
  }
  return p;
}

// Gives every parameter the same fresh random gradient on both devices.
void set_random_grads(const Params& p, Generator& gen, DType dtype) {
  for (std::size_t i = 0; i < p.cpu.size(); ++i) {
    const Tensor g = randn(p.cpu[i].shape(), gen, 0.0, 1.0, TensorOptions{DType::f64}).to(dtype);
    p.cpu[i].set_grad(g);
    p.gpu[i].set_grad(to_gpu(g));
  }
}

void check_params(const Params& p, double tol, const std::string& what) {
  for (std::size_t i = 0; i < p.cpu.size(); ++i)
    check_matches(p.gpu[i], p.cpu[i], tol, fmt::format("{} param {}", what, i));
}

// Runs `steps` steps of the optimizer `make` builds on both devices and compares the parameters.
template <class Make>
void check_trajectory(Make&& make, DType dtype, int steps, double tol, const std::string& what) {
  Generator gen(dtype == DType::f64 ? 7 : 8);
  const Params p = make_params(gen, dtype);
  const Tensor start = p.cpu[0].detach().clone();
  std::unique_ptr<nn::Optimizer> cpu = make(p.cpu), gpu = make(p.gpu);
  for (int s = 0; s < steps; ++s) {
    set_random_grads(p, gen, dtype);
    cpu->step();
    gpu->step();
  }
  check_params(p, tol, what);
  // The parameters moved (a trajectory test on frozen parameters would prove nothing).
  CHECK(testing::gpu_rel_error(p.gpu[0], start) > 1e-3);
}

std::unique_ptr<nn::Optimizer> nesterov_sgd(const std::vector<Tensor>& params) {
  return std::make_unique<nn::Sgd>(params,
                                   nn::SgdOptions{.lr = 0.05, .momentum = 0.9, .nesterov = true, .weight_decay = 1e-2});
}

std::unique_ptr<nn::Optimizer> adam(const std::vector<Tensor>& params, bool decoupled) {
  return std::make_unique<nn::Adam>(
      params, nn::AdamOptions{.lr = 1e-2, .weight_decay = 1e-2, .decoupled_weight_decay = decoupled});
}

}  // namespace

TEST_CASE("cuda Sgd (Nesterov, weight decay) and Adam / AdamW follow the CPU trajectory") {
  TLK_REQUIRE_GPU();
  for (DType dtype : {DType::f64, DType::f32}) {
    // Both devices run the same arithmetic in the parameter's dtype; only FMA contraction may differ.
    const double tol = dtype == DType::f64 ? 1e-12 : 1e-5;
    check_trajectory(nesterov_sgd, dtype, 5, tol, fmt::format("Sgd nesterov {}", dtype_name(dtype)));
    check_trajectory([](const auto& p) { return adam(p, false); }, dtype, 5, tol,
                     fmt::format("Adam {}", dtype_name(dtype)));
    check_trajectory([](const auto& p) { return adam(p, true); }, dtype, 5, tol,
                     fmt::format("AdamW {}", dtype_name(dtype)));
    check_trajectory(
        [](const auto& p) { return std::make_unique<nn::Sgd>(p, nn::SgdOptions{.lr = 0.1, .weight_decay = 1e-3}); },
        dtype, 3, tol, fmt::format("Sgd plain {}", dtype_name(dtype)));
  }
}

TEST_CASE("cuda optimizer state lives on the GPU, is saved as CPU tensors and loads back onto the GPU") {
  TLK_REQUIRE_GPU();
  Generator gen(9);
  for (bool use_adam : {false, true}) {
    INFO("optimizer " << (use_adam ? "Adam" : "Sgd"));
    auto make = [&](const std::vector<Tensor>& p) { return use_adam ? adam(p, false) : nesterov_sgd(p); };
    const Params p = make_params(gen, DType::f64);
    std::unique_ptr<nn::Optimizer> cpu = make(p.cpu), gpu = make(p.gpu);
    for (int s = 0; s < 2; ++s) {
      set_random_grads(p, gen, DType::f64);
      cpu->step();
      gpu->step();
    }
    const std::vector<nn::NamedTensor> saved = gpu->state();
    for (const auto& [name, t] : saved) {
      INFO(name);
      CHECK(t.device().is_cpu());
    }
    // A fresh GPU optimizer on copies of the parameters, restored from the saved (CPU) state, and
    // another restored from the CPU optimizer's state, continue exactly like the original.
    Params q{p.cpu, {}}, r{p.cpu, {}};
    // clone(): to_gpu of a GPU tensor would share its storage, and three optimizers would then update
    // one set of numbers.
    for (const Tensor& t : p.gpu) {
      q.gpu.push_back(t.detach().clone().set_requires_grad(true));
      r.gpu.push_back(t.detach().clone().set_requires_grad(true));
    }
    std::unique_ptr<nn::Optimizer> restored = make(q.gpu), from_cpu = make(r.gpu);
    restored->load_state(saved);
    from_cpu->load_state(cpu->state());
    CHECK(restored->steps() == 2);
    set_random_grads(p, gen, DType::f64);
    for (std::size_t i = 0; i < p.gpu.size(); ++i) {
      q.gpu[i].set_grad(p.gpu[i].grad());
      r.gpu[i].set_grad(p.gpu[i].grad());
    }
    gpu->step();
    restored->step();
    from_cpu->step();
    cpu->step();
    for (std::size_t i = 0; i < p.gpu.size(); ++i) {
      check_matches(q.gpu[i], testing::to_cpu(p.gpu[i]), 1e-15, fmt::format("restored param {}", i));
      check_matches(r.gpu[i], p.cpu[i], 1e-12, fmt::format("restored from CPU state, param {}", i));
    }
    check_params(p, 1e-12, "after restore");
  }
}
