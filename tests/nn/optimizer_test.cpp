#include "test_util.h"
#include "tlk/nn/adam.h"
#include "tlk/nn/lr_schedule.h"
#include "tlk/nn/sgd.h"

using namespace tlk;

namespace {
// The gradient sequence every optimizer test feeds: step t gives (0.5, 0.25 (t + 1), -1).
Tensor gradient(int t) { return Tensor::from_vector(std::vector<double>{0.5, 0.25 * (t + 1), -1.0}, {3}); }
Tensor start() { return Tensor::from_vector(std::vector<double>{1.0, -2.0, 0.5}, {3}).set_requires_grad(); }
}  // namespace

TEST_CASE("Adam and AdamW follow torch.optim's formulas") {
  for (bool decoupled : {false, true}) {
    CAPTURE(decoupled);
    Tensor p = start();
    nn::AdamOptions o{0.1, 0.9, 0.999, 1e-8, 0.01, decoupled};
    nn::Adam opt({p}, o);
    std::vector<double> w{1.0, -2.0, 0.5}, m(3, 0), v(3, 0);
    for (int t = 0; t < 4; ++t) {
      p.set_grad(gradient(t));
      opt.step();
      const auto g = gradient(t).to_doubles();
      for (int j = 0; j < 3; ++j) {  // written out independently of the kernel
        double d = g[j];
        if (decoupled)
          w[j] -= 0.1 * 0.01 * w[j];
        else
          d += 0.01 * w[j];
        m[j] = 0.9 * m[j] + 0.1 * d;
        v[j] = 0.999 * v[j] + 0.001 * d * d;
        const double mh = m[j] / (1 - std::pow(0.9, t + 1)), vh = v[j] / (1 - std::pow(0.999, t + 1));
        w[j] -= 0.1 * mh / (std::sqrt(vh) + 1e-8);
      }
    }
    auto got = p.to_doubles();
    for (int j = 0; j < 3; ++j) CHECK(got[j] == doctest::Approx(w[j]).epsilon(1e-12));
  }
}

TEST_CASE("parameter groups: lr multipliers and their own weight decay") {
  Tensor body = start(), head = start();
  nn::Sgd opt({nn::ParamGroup{{body}, 0.2, -1, "body"}, nn::ParamGroup{{head}, 1.0, 0.0, "head"}},
              nn::SgdOptions{0.1, 0.0, false, 0.5});
  body.set_grad(gradient(0));
  head.set_grad(gradient(0));
  opt.step();
  CHECK(body.to_doubles()[0] == doctest::Approx(1.0 - 0.02 * (0.5 + 0.5 * 1.0)));  // lr 0.1 x 0.2, wd 0.5
  CHECK(head.to_doubles()[0] == doctest::Approx(1.0 - 0.1 * 0.5));                 // lr 0.1, no wd
  opt.set_lr(0.0);
  opt.step();
  CHECK(head.to_doubles()[0] == doctest::Approx(1.0 - 0.1 * 0.5));
  CHECK_THROWS_WITH_AS(opt.set_lr(-1), doctest::Contains("must be finite and >= 0"), Error);
}

TEST_CASE("optimizer state round-trips: a restored optimizer continues exactly") {
  Tensor a = start(), b = start();
  nn::Sgd first({a}, nn::SgdOptions{0.1, 0.9, true, 0.0});
  for (int t = 0; t < 2; ++t) {
    a.set_grad(gradient(t));
    first.step();
  }
  {
    NoGradGuard guard;
    b.copy_(a);
  }
  nn::Sgd second({b}, nn::SgdOptions{0.1, 0.9, true, 0.0});
  second.load_state(first.state());
  CHECK(second.steps() == 2);
  a.set_grad(gradient(2));
  b.set_grad(gradient(2));
  first.step();
  second.step();
  CHECK(testing::max_abs_diff(a, b) == 0.0);
  auto state = first.state();
  state.back().second = Tensor::zeros({4}, TensorOptions{DType::f64});
  CHECK_THROWS_WITH_AS(second.load_state(state), doctest::Contains("has shape [4], the parameter has [3]"), Error);
}

TEST_CASE("Adam's state (moments and its per-parameter step counter) round-trips exactly") {
  Tensor a = start(), b = start();
  nn::Adam first({a}, nn::AdamOptions{0.01});
  for (int t = 0; t < 3; ++t) {
    a.set_grad(gradient(t));
    first.step();
  }
  {
    NoGradGuard guard;
    b.copy_(a);
  }
  nn::Adam second({b}, nn::AdamOptions{0.01});
  second.load_state(first.state());  // the 0-D f64 step counters included
  for (int t = 3; t < 5; ++t) {
    a.set_grad(gradient(t));
    b.set_grad(gradient(t));
    first.step();
    second.step();
  }
  CHECK(testing::max_abs_diff(a, b) == 0.0);
}

TEST_CASE("clip_grad_norm scales the global norm down to the limit and reports the norm before") {
  Tensor a = start(), b = start();
  a.set_grad(Tensor::from_vector(std::vector<double>{3, 0, 0}, {3}));
  b.set_grad(Tensor::from_vector(std::vector<double>{0, 4, 0}, {3}));
  CHECK(nn::clip_grad_norm({a, b}, 10.0) == doctest::Approx(5.0));
  CHECK(a.grad().to_doubles()[0] == 3.0);  // under the limit: unchanged
  CHECK(nn::clip_grad_norm({a, b}, 1.0) == doctest::Approx(5.0));
  CHECK(a.grad().to_doubles()[0] == doctest::Approx(0.6).epsilon(1e-5));
  CHECK(b.grad().to_doubles()[1] == doctest::Approx(0.8).epsilon(1e-5));
}

TEST_CASE("learning-rate schedules") {
  nn::PolySchedule poly(0.01, 1000);
  CHECK(poly.lr(0) == 0.01);
  CHECK(poly.lr(500) == doctest::Approx(0.01 * std::pow(0.5, 0.9)));
  CHECK(poly.lr(1000) == 0.0);
  nn::CosineSchedule cosine(1.0, 100, 0.1);
  CHECK(cosine.lr(0) == doctest::Approx(1.0));
  CHECK(cosine.lr(50) == doctest::Approx(0.55));
  CHECK(cosine.lr(100) == doctest::Approx(0.1));
  nn::StepSchedule step(1.0, 10, 0.5);
  CHECK(step.lr(9) == 1.0);
  CHECK(step.lr(10) == 0.5);
  CHECK(step.lr(25) == 0.25);
  nn::DannSchedule dann(0.01, 100);
  CHECK(dann.lr(0) == 0.01);
  CHECK(dann.lr(100) == doctest::Approx(0.01 / std::pow(11.0, 0.75)));
  nn::WarmupSchedule warm(4, std::make_shared<nn::PolySchedule>(0.01, 100));
  CHECK(warm.lr(0) == doctest::Approx(0.01 * 1.0 / 5.0));
  CHECK(warm.lr(3) == doctest::Approx(0.01 * std::pow(0.97, 0.9) * 4.0 / 5.0));
  CHECK(warm.lr(4) == nn::PolySchedule(0.01, 100).lr(4));  // warm-up over: the inner schedule
  CHECK_THROWS_WITH_AS(nn::PolySchedule(0.01, 0), doctest::Contains("total steps must be >= 1"), Error);
}
