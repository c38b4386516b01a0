#include "tlk/kernels/ref/norm.h"

#include <cmath>

#include "test_util.h"

using namespace tlk;
using testing::f64;
using testing::max_rel_diff;
using testing::random_leaf;

namespace {

// Per-channel statistics of x [N, C, ...] over N and the spatial axes, computed directly.
struct ChannelStats {
  std::vector<double> mean, biased_var, unbiased_var;
};
ChannelStats channel_stats(const Tensor& x) {
  const auto v = x.to_doubles();
  const std::int64_t n = x.size(0), c = x.size(1), s = x.numel() / (n * c);
  ChannelStats st;
  for (std::int64_t ch = 0; ch < c; ++ch) {
    double sum = 0.0;
    for (std::int64_t b = 0; b < n; ++b)
      for (std::int64_t i = 0; i < s; ++i) sum += v[static_cast<std::size_t>((b * c + ch) * s + i)];
    const double m = static_cast<double>(n * s), mean = sum / m;
    double sq = 0.0;
    for (std::int64_t b = 0; b < n; ++b)
      for (std::int64_t i = 0; i < s; ++i) sq += std::pow(v[static_cast<std::size_t>((b * c + ch) * s + i)] - mean, 2);
    st.mean.push_back(mean);
    st.biased_var.push_back(sq / m);
    st.unbiased_var.push_back(sq / (m - 1.0));
  }
  return st;
}

}  // namespace

TEST_CASE("instance_norm forward: hand-computed values and zero mean, unit variance per (n, c)") {
  // [1, 2, 3, 4]: mean 2.5, biased variance 1.25.
  Tensor y = ops::instance_norm(Tensor::from_doubles({1, 2, 3, 4}, {1, 1, 4}, DType::f64), {}, {}, 0.0);
  const auto v = y.to_doubles();
  const double r = 1.0 / std::sqrt(1.25);
  CHECK(v[0] == doctest::Approx(-1.5 * r).epsilon(1e-14));
  CHECK(v[1] == doctest::Approx(-0.5 * r).epsilon(1e-14));
  CHECK(v[3] == doctest::Approx(1.5 * r).epsilon(1e-14));

  Generator gen(21);
  Tensor x = randn({3, 5, 2, 3, 4}, gen, 2.0, 3.0, f64());
  Tensor z = ops::instance_norm(x, {}, {}, 0.0);
  const auto zv = z.to_doubles();
  for (std::int64_t g = 0; g < 15; ++g) {
    double sum = 0.0, sq = 0.0;
    for (std::int64_t i = 0; i < 24; ++i) sum += zv[static_cast<std::size_t>(g * 24 + i)];
    for (std::int64_t i = 0; i < 24; ++i) sq += std::pow(zv[static_cast<std::size_t>(g * 24 + i)] - sum / 24, 2);
    CHECK(std::abs(sum / 24) < 1e-12);
    CHECK(sq / 24 == doctest::Approx(1.0).epsilon(1e-12));
  }

  // The affine form is weight[c] * z + bias[c].
  Tensor w = randn({5}, gen, 0, 1, f64()), b = randn({5}, gen, 0, 1, f64());
  const auto ya = ops::instance_norm(x, w, b, 0.0).to_doubles(), wv = w.to_doubles(), bv = b.to_doubles();
  for (std::size_t i = 0; i < ya.size(); ++i) {
    const std::size_t c = (i / 24) % 5;
    CHECK(ya[i] == doctest::Approx(wv[c] * zv[i] + bv[c]).epsilon(1e-12));
  }
}

TEST_CASE("instance_norm gradients, with and without affine") {
  Generator gen(22);
  {
    Tensor x = random_leaf({3, 5, 2, 3, 4}, gen), w = random_leaf({5}, gen, 0.5, 1.5), b = random_leaf({5}, gen);
    CHECK_GRADCHECK([](const auto& t) { return std::vector<Tensor>{ops::instance_norm(t[0], t[1], t[2])}; },
                    (std::vector<Tensor>{x, w, b}));
    CHECK_GRADCHECK([](const auto& t) { return std::vector<Tensor>{ops::instance_norm(t[0])}; },
                    (std::vector<Tensor>{x}));
  }
  {
    Tensor x = random_leaf({1, 3, 3, 1, 5}, gen), w = random_leaf({3}, gen);
    CHECK_GRADCHECK([](const auto& t) { return std::vector<Tensor>{ops::instance_norm(t[0], t[1])}; },
                    (std::vector<Tensor>{x, w}));
  }
}

TEST_CASE("batch_norm training: output statistics and running statistics after one step") {
  Generator gen(23);
  for (const Shape& shape : {Shape{3, 4, 2, 2, 3}, Shape{6, 4}}) {
    CAPTURE(shape.str());
    Tensor x = randn(shape, gen, 1.0, 2.0, f64());
    Tensor rm = rand({4}, gen, -1, 1, f64()), rv = rand({4}, gen, 0.5, 2, f64());
    const auto old_m = rm.to_doubles(), old_v = rv.to_doubles();
    const auto version = rm.version();
    Tensor y =
        ops::batch_norm(x, {}, {}, rm, rv, BatchNormOptions{}.with_training(true).with_momentum(0.3).with_eps(0));
    const ChannelStats batch = channel_stats(x), out = channel_stats(y);
    const auto new_m = rm.to_doubles(), new_v = rv.to_doubles();
    CHECK(rm.version() > version);
    for (std::size_t c = 0; c < 4; ++c) {
      CHECK(new_m[c] == doctest::Approx(0.7 * old_m[c] + 0.3 * batch.mean[c]).epsilon(1e-12));
      CHECK(new_v[c] == doctest::Approx(0.7 * old_v[c] + 0.3 * batch.unbiased_var[c]).epsilon(1e-12));
      CHECK(std::abs(out.mean[c]) < 1e-12);
      CHECK(out.biased_var[c] == doctest::Approx(1.0).epsilon(1e-12));
    }
  }
}

TEST_CASE("batch_norm evaluation uses the running statistics and leaves them unchanged") {
  Generator gen(24);
  Tensor x = randn({2, 3, 2, 1, 3}, gen, 0, 1, f64());
  Tensor rm = rand({3}, gen, -1, 1, f64()), rv = rand({3}, gen, 0.5, 2, f64());
  Tensor w = randn({3}, gen, 0, 1, f64()), b = randn({3}, gen, 0, 1, f64());
  const auto m = rm.to_doubles(), v = rv.to_doubles(), wv = w.to_doubles(), bv = b.to_doubles(), xv = x.to_doubles();
  const auto y = ops::batch_norm(x, w, b, rm, rv, BatchNormOptions{}.with_eps(1e-3)).to_doubles();
  for (std::size_t i = 0; i < y.size(); ++i) {
    const std::size_t c = (i / 6) % 3;
    CHECK(y[i] == doctest::Approx((xv[i] - m[c]) / std::sqrt(v[c] + 1e-3) * wv[c] + bv[c]).epsilon(1e-12));
  }
  CHECK(rm.to_doubles() == m);
  CHECK(rv.to_doubles() == v);
}

TEST_CASE("batch_norm gradients: training and evaluation, 5-D and 2-D") {
  Generator gen(25);
  for (bool training : {true, false}) {
    for (const Shape& shape : {Shape{3, 5, 2, 3, 2}, Shape{1, 3, 3, 1, 4}, Shape{4, 5}}) {
      CAPTURE(training);
      CAPTURE(shape.str());
      const std::int64_t c = shape[1];
      Tensor rm = rand({c}, gen, -1, 1, f64()), rv = rand({c}, gen, 0.5, 2, f64());
      const auto opt = BatchNormOptions{}.with_training(training);
      Tensor x = random_leaf(shape, gen), w = random_leaf({c}, gen, 0.5, 1.5), b = random_leaf({c}, gen);
      CHECK_GRADCHECK(
          [&](const auto& t) { return std::vector<Tensor>{ops::batch_norm(t[0], t[1], t[2], rm, rv, opt)}; },
          (std::vector<Tensor>{x, w, b}));
      CHECK_GRADCHECK([&](const auto& t) { return std::vector<Tensor>{ops::batch_norm(t[0], {}, {}, rm, rv, opt)}; },
                      (std::vector<Tensor>{x}));
    }
  }
  // Training without running statistics.
  Tensor x = random_leaf({3, 2, 3}, gen);
  CHECK_GRADCHECK(
      [](const auto& t) {
        return std::vector<Tensor>{ops::batch_norm(t[0], {}, {}, {}, {}, BatchNormOptions{}.with_training(true))};
      },
      (std::vector<Tensor>{x}));
}

TEST_CASE("normalisation f32 forward agrees with f64") {
  Generator gen(26);
  Tensor x = randn({2, 3, 3, 4, 5}, gen, 1, 2, f64()), w = randn({3}, gen, 0, 1, f64()),
         b = randn({3}, gen, 0, 1, f64());
  CHECK(max_rel_diff(ops::instance_norm(x.to(DType::f32), w.to(DType::f32), b.to(DType::f32)),
                     ops::instance_norm(x, w, b)) < 1e-5);
  Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3}), rm64 = Tensor::zeros({3}, f64()),
         rv64 = Tensor::ones({3}, f64());
  const auto opt = BatchNormOptions{}.with_training(true);
  CHECK(max_rel_diff(ops::batch_norm(x.to(DType::f32), w.to(DType::f32), b.to(DType::f32), rm, rv, opt),
                     ops::batch_norm(x, w, b, rm64, rv64, opt)) < 1e-5);
  CHECK(max_rel_diff(rv, rv64) < 1e-5);
}

TEST_CASE("normalisation bad input gives a clear error") {
  Tensor x = Tensor::zeros({2, 5, 3, 3, 3});
  CHECK_THROWS_WITH_AS(ops::instance_norm(Tensor::zeros({2, 5})),
                       doctest::Contains("instance_norm: expected an input [N, C, D, H, W] (at least 3-D), got 2-D"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::instance_norm(x, Tensor::ones({4})),
                       doctest::Contains("weight has shape [4], expected [5]"), Error);
  CHECK_THROWS_WITH_AS(ops::instance_norm(x, Tensor::ones({5}, f64())), doctest::Contains("mixed dtypes"), Error);
  CHECK_THROWS_WITH_AS(ops::instance_norm(x, {}, {}, -1.0), doctest::Contains("eps must be a finite value >= 0"),
                       Error);

  Tensor rm = Tensor::zeros({5}), rv = Tensor::ones({5});
  const auto train = BatchNormOptions{}.with_training(true);
  CHECK_THROWS_WITH_AS(
      ops::batch_norm(Tensor::zeros({5}), {}, {}, rm, rv),
      doctest::Contains("batch_norm: expected an input [N, C] or [N, C, D, H, W] (at least 2-D), got 1-D"), Error);
  CHECK_THROWS_WITH_AS(ops::batch_norm(x, Tensor::ones({3}), {}, rm, rv),
                       doctest::Contains("weight has shape [3], expected [5]"), Error);
  CHECK_THROWS_WITH_AS(ops::batch_norm(x, {}, {}, Tensor::zeros({4}), Tensor::ones({4})),
                       doctest::Contains("running_mean has shape [4], expected [5]"), Error);
  CHECK_THROWS_WITH_AS(ops::batch_norm(x, {}, {}, rm, {}), doctest::Contains("both defined or both undefined"), Error);
  CHECK_THROWS_WITH_AS(ops::batch_norm(x, {}, {}, rm.to(DType::f64), rv.to(DType::f64)),
                       doctest::Contains("mixed dtypes"), Error);
  CHECK_THROWS_WITH_AS(ops::batch_norm(x, {}, {}, rm, rv, train.with_momentum(1.5)),
                       doctest::Contains("momentum must be in [0, 1], got 1.5"), Error);
  CHECK_THROWS_WITH_AS(ops::batch_norm(Tensor::zeros({1, 5}), {}, {}, rm, rv, train),
                       doctest::Contains("more than 1 value per channel when training"), Error);
  CHECK_THROWS_WITH_AS(ops::batch_norm(x, {}, {}, {}, {}),
                       doctest::Contains("evaluation mode normalises with running_mean and running_var"), Error);
  Tensor leaf = Tensor::zeros({5});
  leaf.set_requires_grad();
  CHECK_THROWS_WITH_AS(ops::batch_norm(x, {}, {}, leaf, rv, train),
                       doctest::Contains("running_mean is a buffer and must not require grad"), Error);

  // The backward kernels check what they are given.
  namespace k = kernels::ref;
  Tensor xs = Tensor::zeros({2, 5, 3}), stats = Tensor::zeros({2, 5});
  CHECK_THROWS_WITH_AS(k::instance_norm_backward(xs, Tensor::zeros({2, 5}), {}, stats, stats),
                       doctest::Contains("instance_norm backward: expected the saved input [N, C, D, H, W] (at least "
                                         "3-D), got 2-D with shape [2, 5]"),
                       Error);
  CHECK_THROWS_WITH_AS(k::batch_norm_backward(xs, Tensor::zeros({5}), {}, stats, stats, true),
                       doctest::Contains("batch_norm backward: expected the saved input [N, C] or [N, C, D, H, W] (at "
                                         "least 2-D), got 1-D with shape [5]"),
                       Error);
  CHECK_THROWS_WITH_AS(k::instance_norm_backward(xs, xs, Tensor::ones({4}), stats, stats),
                       doctest::Contains("instance_norm backward: weight has shape [4], expected [5]"), Error);
  CHECK_THROWS_WITH_AS(k::instance_norm_backward(xs, xs.to(DType::f64), {}, stats, stats),
                       doctest::Contains("instance_norm backward: mixed dtypes"), Error);
  CHECK_THROWS_WITH_AS(k::instance_norm_backward(Tensor::zeros({2, 5, 4}), xs, {}, stats, stats),
                       doctest::Contains("grad_output has shape [2, 5, 4], expected the input's shape [2, 5, 3]"),
                       Error);
  CHECK_THROWS_WITH_AS(k::batch_norm_backward(xs, xs, {}, stats, stats, true),
                       doctest::Contains("batch_norm backward: expected 5 saved statistics for input [2, 5, 3], got "
                                         "mean [2, 5]"),
                       Error);
}

TEST_CASE("sync_batch_norm with one process is batch_norm: values, running statistics, gradients") {
  Generator gen(26);
  const ops::CrossProcessSum alone = [](const Tensor& t) { return t.clone(); };
  for (const Shape& shape : {Shape{3, 4, 2, 3, 2}, Shape{5, 4}}) {
    CAPTURE(shape.str());
    const auto opt = BatchNormOptions{}.with_training(true).with_momentum(0.3);
    Tensor x = random_leaf(shape, gen), w = random_leaf({4}, gen, 0.5, 1.5), b = random_leaf({4}, gen);
    Tensor rm_a = rand({4}, gen, -1, 1, f64()), rv_a = rand({4}, gen, 0.5, 2, f64());
    Tensor rm_b = rm_a.clone(), rv_b = rv_a.clone();
    Tensor r = randn(shape, gen, 0, 1, f64());
    const Tensor y_a = ops::batch_norm(x, w, b, rm_a, rv_a, opt);
    ops::sum(ops::mul(y_a, r)).backward();
    const Tensor gx = x.grad().clone(), gw = w.grad().clone(), gb = b.grad().clone();
    for (const Tensor* t : {&x, &w, &b}) t->set_grad(Tensor());
    const Tensor y_b = ops::sync_batch_norm(x, w, b, rm_b, rv_b, opt, alone);
    ops::sum(ops::mul(y_b, r)).backward();
    CHECK(max_rel_diff(y_a, y_b) < 1e-12);
    CHECK(max_rel_diff(rm_a, rm_b) < 1e-12);
    CHECK(max_rel_diff(rv_a, rv_b) < 1e-12);
    CHECK(max_rel_diff(gx, x.grad()) < 1e-10);
    CHECK(max_rel_diff(gw, w.grad()) < 1e-10);
    CHECK(max_rel_diff(gb, b.grad()) < 1e-10);
    CHECK_GRADCHECK(
        [&](const auto& t) { return std::vector<Tensor>{ops::sync_batch_norm(t[0], t[1], t[2], {}, {}, opt, alone)}; },
        (std::vector<Tensor>{x, w, b}));
  }
  // Evaluation is plain batch norm; bad input names the op.
  Tensor rm = Tensor::zeros({2}, TensorOptions{DType::f64}), rv = Tensor::ones({2}, TensorOptions{DType::f64});
  Tensor x = randn({2, 2, 1, 1, 2}, gen, 0, 1, f64());
  CHECK(max_rel_diff(ops::sync_batch_norm(x, {}, {}, rm, rv, {}, alone), ops::batch_norm(x, {}, {}, rm, rv, {})) == 0);
  CHECK_THROWS_WITH_AS(ops::sync_batch_norm(randn({2, 3, 2}, gen), {}, {}, {}, {},
                                            BatchNormOptions{}.with_training(true), alone),
                       doctest::Contains("sync_batch_norm: expected an input [N, C] or [N, C, D, H, W]"), Error);
  CHECK_THROWS_WITH_AS(ops::sync_batch_norm(randn({1, 3}, gen), {}, {}, {}, {}, BatchNormOptions{}.with_training(true),
                                            alone),
                       doctest::Contains("more than 1 value per channel"), Error);
}
