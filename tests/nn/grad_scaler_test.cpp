// nn::GradScaler (Note [Loss scaling]) on CPU gradients: the scaled loss, unscaling, the inf/NaN
// check, and the scale's backoff and growth, as torch.cuda.amp.GradScaler does them.
#include <cmath>
#include <limits>

#include "test_util.h"
#include "tlk/autograd/ops/arith.h"
#include "tlk/autograd/ops/reduce.h"
#include "tlk/nn/grad_scaler.h"

using namespace tlk;

TEST_CASE("GradScaler scales the loss and unscales the gradients exactly") {
  nn::GradScaler scaler(nn::GradScalerOptions{.init_scale = 1024.0});
  Tensor w = Tensor::from_vector(std::vector<double>{1.0, -2.0, 3.0}, {3}).set_requires_grad();
  Tensor loss = ops::sum(w * w);  // d loss / d w = 2 w
  Tensor scaled = scaler.scale(loss);
  CHECK(scaled.item() == doctest::Approx(1024.0 * 14.0));
  scaled.backward();
  CHECK(w.grad().to_doubles() == std::vector<double>{2048.0, -4096.0, 6144.0});
  CHECK(scaler.unscale({w}));
  CHECK(w.grad().to_doubles() == std::vector<double>{2.0, -4.0, 6.0});
  CHECK(w.grad().dtype() == DType::f64);
}

TEST_CASE("GradScaler finds an inf or NaN gradient and backs off; grows after finite steps") {
  nn::GradScaler scaler(nn::GradScalerOptions{.init_scale = 8.0, .growth_interval = 3});
  Tensor a = Tensor::from_vector(std::vector<double>{1.0, 2.0}, {2}).set_requires_grad();
  Tensor b = Tensor::from_vector(std::vector<double>{1.0}, {1}).set_requires_grad();
  Tensor untouched = Tensor::from_vector(std::vector<double>{5.0}, {1}).set_requires_grad();  // no gradient

  for (double bad : {std::numeric_limits<double>::infinity(), std::nan("")}) {
    CAPTURE(bad);
    a.set_grad(Tensor::from_vector(std::vector<double>{1.0, 2.0}, {2}));
    b.set_grad(Tensor::from_vector(std::vector<double>{bad}, {1}));
    CHECK_FALSE(scaler.unscale({a, b, untouched}));
    CHECK_FALSE(untouched.grad().defined());
    const double before = scaler.current_scale();
    scaler.update(true);
    CHECK(scaler.current_scale() == before / 2);
    CHECK(scaler.growth_tracker() == 0);
  }
  // +inf and -inf in different tensors still count (their sum is NaN).
  a.set_grad(Tensor::from_vector(std::vector<double>{std::numeric_limits<double>::infinity(), 0.0}, {2}));
  b.set_grad(Tensor::from_vector(std::vector<double>{-std::numeric_limits<double>::infinity()}, {1}));
  CHECK_FALSE(scaler.unscale({a, b}));

  // Finite steps: the scale doubles after growth_interval of them, then the count restarts.
  const double s = scaler.current_scale();
  for (int step = 1; step <= 3; ++step) {
    a.set_grad(Tensor::from_vector(std::vector<double>{1.0, 2.0}, {2}));
    CHECK(scaler.unscale({a}));
    scaler.update(false);
    CHECK(scaler.current_scale() == (step < 3 ? s : 2 * s));
  }
  CHECK(scaler.growth_tracker() == 0);

  scaler.load(4096.0, 2);
  CHECK(scaler.current_scale() == 4096.0);
  CHECK(scaler.growth_tracker() == 2);
  CHECK_THROWS_WITH_AS(scaler.load(0.0, 0), doctest::Contains("finite and > 0"), Error);
  CHECK_THROWS_WITH_AS(nn::GradScaler(nn::GradScalerOptions{.backoff_factor = 1.5}),
                       doctest::Contains("backoff_factor must be in (0, 1)"), Error);
}
