// Feature distillation: FitNets hints and attention transfer (tlk/transfer/feature_distillation.h).
#include <cmath>
#include <vector>

#include "test_util.h"
#include "tlk/transfer/feature_distillation.h"

using namespace tlk;
using tlk::testing::random_leaf;

namespace {

/// A regressor whose weights are replaced by f64 leaves (for values and gradchecks).
struct F64Regressor {
  Generator gen{11};
  transfer::HintRegressor reg;
  F64Regressor(std::int64_t cs, std::int64_t ct) : reg(cs, ct, gen) {
    reg.conv->weight = random_leaf({ct, cs, 1, 1, 1}, gen, -1, 1);
    reg.conv->bias = random_leaf({ct}, gen, -1, 1);
  }
};

/// Q = mean_c |A|^p per voxel, L2-normalised per sample, in f64 loops.
std::vector<std::vector<double>> attention_ref(const Tensor& a, int p) {
  const auto v = a.to_doubles();
  const std::int64_t n = a.size(0), c = a.size(1), s = a.numel() / (n * c);
  std::vector<std::vector<double>> q(n, std::vector<double>(s, 0.0));
  for (std::int64_t i = 0; i < n; ++i) {
    double norm = 0;
    for (std::int64_t x = 0; x < s; ++x) {
      for (std::int64_t k = 0; k < c; ++k) q[i][x] += std::pow(std::abs(v[(i * c + k) * s + x]), p) / c;
      norm += q[i][x] * q[i][x];
    }
    for (double& e : q[i]) e /= std::sqrt(norm);
  }
  return q;
}

}  // namespace

TEST_CASE("distill hint_loss: mean((r(s) − t)²) through a 1x1x1 regressor, against f64 loops; gradcheck") {
  Generator gen(1);
  F64Regressor r(3, 5);
  Tensor s = random_leaf({2, 3, 3, 1, 2}, gen), t = random_leaf({2, 5, 3, 1, 2}, gen);
  const auto sv = s.to_doubles(), tv = t.to_doubles(), w = r.reg.conv->weight.to_doubles(),
             b = r.reg.conv->bias.to_doubles();
  double ref = 0;
  for (int n = 0; n < 2; ++n)
    for (int o = 0; o < 5; ++o)
      for (int x = 0; x < 6; ++x) {
        double y = b[o];
        for (int i = 0; i < 3; ++i) y += w[o * 3 + i] * sv[(n * 3 + i) * 6 + x];
        const double d = y - tv[(n * 5 + o) * 6 + x];
        ref += d * d / 60.0;
      }
  CHECK(transfer::hint_loss(s, t, r.reg).item() == doctest::Approx(ref).epsilon(1e-12));
  CHECK_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        r.reg.conv->weight = in[1];
        r.reg.conv->bias = in[2];
        return std::vector<Tensor>{transfer::hint_loss(in[0], t, r.reg)};
      },
      {s, r.reg.conv->weight, r.reg.conv->bias});
  // The teacher's feature gets no gradient.
  s.set_grad({});
  transfer::hint_loss(s, t, r.reg).backward();
  CHECK(s.grad().defined());
  CHECK_FALSE(t.grad().defined());
}

TEST_CASE("distill hint_loss: shape checks and pooling to the smaller size") {
  Generator gen(2);
  F64Regressor r(3, 4);
  Tensor s = random_leaf({2, 3, 4, 2, 6}, gen), t = random_leaf({2, 4, 2, 2, 3}, gen);
  CHECK_THROWS_WITH_AS(transfer::hint_loss(s, t, r.reg), doctest::Contains("spatial sizes differ"), Error);
  const Tensor pooled = transfer::hint_loss(s, t, r.reg, {.spatial = transfer::SpatialMatch::pool_to_smaller});
  const Tensor manual = ops::mse_loss(r.reg(ops::adaptive_avg_pool3d(s, {2, 2, 3})), t);
  CHECK(pooled.item() == doctest::Approx(manual.item()).epsilon(1e-12));
  // Wrong teacher channels, wrong student channels, batch mismatch.
  CHECK_THROWS_AS(transfer::hint_loss(s, random_leaf({2, 5, 4, 2, 6}, gen), r.reg), Error);
  CHECK_THROWS_AS(transfer::hint_loss(random_leaf({2, 2, 4, 2, 6}, gen), random_leaf({2, 4, 4, 2, 6}, gen), r.reg),
                  Error);
  CHECK_THROWS_AS(transfer::hint_loss(s, random_leaf({1, 4, 4, 2, 6}, gen), r.reg), Error);
  // Without a regressor the channels must agree.
  Tensor a = random_leaf({2, 3, 2, 2, 1}, gen), b = random_leaf({2, 3, 2, 2, 1}, gen);
  CHECK(transfer::hint_loss(a, b).item() == doctest::Approx(ops::mse_loss(a, b).item()).epsilon(1e-12));
  CHECK_THROWS_WITH_AS(transfer::hint_loss(a, random_leaf({2, 4, 2, 2, 1}, gen)), doctest::Contains("HintRegressor"),
                       Error);
}

TEST_CASE("distill HintRegressor: 1x1x1 conv, optional norm and ReLU, linear initialisation") {
  Generator gen(3);
  transfer::HintRegressor plain(16, 8, gen);
  CHECK(plain.conv->weight.shape() == Shape{8, 16, 1, 1, 1});
  CHECK(plain.named_parameters().size() == 2);
  // Note [Hint regressor initialisation]: std = 1/sqrt(16) without a ReLU.
  double ss = 0;
  for (double v : plain.conv->weight.to_doubles()) ss += v * v;
  CHECK(std::sqrt(ss / 128.0) == doctest::Approx(0.25).epsilon(0.2));
  transfer::HintRegressor normed(4, 6, gen, {.norm = transfer::HintNorm::instance, .relu = true});
  CHECK(normed.named_parameters().size() == 4);
  const Tensor y = normed(randn({2, 4, 3, 3, 3}, gen));
  CHECK(y.shape() == Shape{2, 6, 3, 3, 3});
  for (double v : y.to_doubles()) CHECK(v >= 0.0);
  transfer::HintRegressor batch(4, 6, gen, {.norm = transfer::HintNorm::batch, .bias = false});
  CHECK(batch.named_buffers().size() == 2);
  CHECK_THROWS_AS(normed(randn({2, 5, 3, 3, 3}, gen)), Error);
}

TEST_CASE("distill attention_map: mean_c |A|^p, unit L2 norm per sample, against f64 loops") {
  Generator gen(4);
  Tensor a = random_leaf({2, 3, 3, 1, 2}, gen, -2, 2);
  for (int p : {1, 2, 3, 4}) {
    const Tensor q = transfer::attention_map(a, p);
    REQUIRE(q.shape() == Shape{2, 6});
    const auto ref = attention_ref(a, p);
    const auto qv = q.to_doubles();
    for (int n = 0; n < 2; ++n) {
      double norm = 0;
      for (int x = 0; x < 6; ++x) {
        CHECK(qv[n * 6 + x] == doctest::Approx(ref[n][x]).epsilon(1e-12));
        norm += qv[n * 6 + x] * qv[n * 6 + x];
      }
      CHECK(norm == doctest::Approx(1.0).epsilon(1e-12));
    }
  }
  // 2-D spatial input ([N, C, H, W]) works too.
  CHECK(transfer::attention_map(random_leaf({2, 4, 3, 5}, gen)).shape() == Shape{2, 15});
  CHECK_THROWS_AS(transfer::attention_map(random_leaf({2, 4}, gen)), Error);
  CHECK_THROWS_AS(transfer::attention_map(a, 0), Error);
}

TEST_CASE("distill attention_transfer_loss: (Q_s − Q_t)² averaged; scale invariant; gradcheck") {
  Generator gen(5);
  Tensor s = random_leaf({2, 3, 3, 1, 2}, gen, -2, 2), t = random_leaf({2, 5, 3, 1, 2}, gen, -2, 2);
  const auto qs = attention_ref(s, 2), qt = attention_ref(t, 2);
  double ref = 0;
  for (int n = 0; n < 2; ++n)
    for (int x = 0; x < 6; ++x) ref += (qs[n][x] - qt[n][x]) * (qs[n][x] - qt[n][x]) / 12.0;
  CHECK(transfer::attention_transfer_loss(s, t).item() == doctest::Approx(ref).epsilon(1e-12));
  // The normalisation makes the loss blind to the feature's scale.
  CHECK(transfer::attention_transfer_loss(s * 7.5, t).item() == doctest::Approx(ref).epsilon(1e-10));
  CHECK(std::abs(transfer::attention_transfer_loss(s, s.detach() * 0.1).item()) < 1e-15);
  CHECK_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{transfer::attention_transfer_loss(in[0], t), transfer::attention_map(in[0], 3)};
      },
      {s});
  s.set_grad({});
  transfer::attention_transfer_loss(s, t).backward();
  CHECK(s.grad().defined());
  CHECK_FALSE(t.grad().defined());
  CHECK_THROWS_AS(transfer::attention_transfer_loss(s, random_leaf({2, 5, 3, 2, 2}, gen)), Error);
  const Tensor pooled =
      transfer::attention_transfer_loss(random_leaf({2, 3, 4, 2, 2}, gen), random_leaf({2, 5, 2, 2, 2}, gen),
                                        {.spatial = transfer::SpatialMatch::pool_to_smaller});
  CHECK(std::isfinite(pooled.item()));
}
