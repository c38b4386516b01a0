// Logit distillation losses: KD, DKD, logit MSE, voxel-wise KD (tlk/transfer/distillation_losses.h).
#include <cmath>
#include <vector>

#include "test_util.h"
#include "tlk/transfer/distillation_losses.h"

using namespace tlk;
using tlk::testing::random_leaf;

namespace {

// ---- f64 references, written out position by position -------------------------------------------

/// Element (n, c, i) of a contiguous [N, C, S] tensor's values.
struct View {
  std::vector<double> v;
  std::int64_t n, c, s;
  explicit View(const Tensor& t)
      : v(t.to_doubles()), n(t.size(0)), c(t.size(1)), s(t.numel() / (t.size(0) * t.size(1))) {}
  std::vector<double> logits(std::int64_t pos) const {  // pos = sample * s + voxel
    std::vector<double> out(c);
    for (std::int64_t k = 0; k < c; ++k) out[k] = v[(pos / s * c + k) * s + pos % s];
    return out;
  }
  std::int64_t positions() const { return n * s; }
};

std::vector<double> log_softmax_ref(std::vector<double> z, double inv_t) {
  double m = -1e300;
  for (double& x : z) m = std::max(m, x *= inv_t);
  double s = 0;
  for (double x : z) s += std::exp(x - m);
  for (double& x : z) x -= m + std::log(s);
  return z;
}

double kl_ref(const std::vector<double>& t, const std::vector<double>& s, double temp) {
  const auto lq = log_softmax_ref(t, 1 / temp), lp = log_softmax_ref(s, 1 / temp);
  double kl = 0;
  for (std::size_t k = 0; k < t.size(); ++k) kl += std::exp(lq[k]) * (lq[k] - lp[k]);
  return kl;
}

/// mdistiller's DKD, literally: cat_mask of the softmax for TCKD, the masking trick (−1000 at the
/// target of the scaled logits) for NCKD; T²·sum / N.
std::pair<double, double> dkd_ref(const Tensor& s, const Tensor& t, const std::vector<std::int64_t>& y, double temp) {
  View vs(s), vt(t);
  double tckd = 0, nckd = 0;
  for (std::int64_t p = 0; p < vs.positions(); ++p) {
    auto zs = vs.logits(p), zt = vt.logits(p);
    const std::int64_t target = y[p];
    auto ps = log_softmax_ref(zs, 1 / temp), pt = log_softmax_ref(zt, 1 / temp);
    double bs_t = std::exp(ps[target]), bt_t = std::exp(pt[target]), bs_o = 0, bt_o = 0;
    for (std::int64_t k = 0; k < vs.c; ++k)
      if (k != target) bs_o += std::exp(ps[k]), bt_o += std::exp(pt[k]);
    tckd += bt_t * std::log(bt_t / bs_t) + bt_o * std::log(bt_o / bs_o);
    for (auto* z : {&zs, &zt})
      for (std::int64_t k = 0; k < vs.c; ++k) (*z)[k] = (*z)[k] / temp - (k == target ? 1000.0 : 0.0);
    auto ls2 = log_softmax_ref(zs, 1), lt2 = log_softmax_ref(zt, 1);
    for (std::int64_t k = 0; k < vs.c; ++k) {
      const double q = std::exp(lt2[k]);
      if (q > 0) nckd += q * (lt2[k] - ls2[k]);
    }
  }
  const double scale = temp * temp / static_cast<double>(vs.positions());
  return {tckd * scale, nckd * scale};
}

Tensor labels_of(const std::vector<std::int64_t>& y, const Shape& shape) { return Tensor::from_vector(y, shape); }

std::vector<std::int64_t> random_labels(std::int64_t n, std::int64_t classes, Generator& gen) {
  std::vector<std::int64_t> y(n);
  for (auto& v : y) v = static_cast<std::int64_t>(gen.below(classes));
  return y;
}

double grad_norm(const Tensor& g) {
  double s = 0;
  for (double v : g.to_doubles()) s += v * v;
  return std::sqrt(s);
}

}  // namespace

TEST_CASE("distill kd_loss: alpha·CE + (1 − alpha)·T²·KL against an f64 reference, and its gradient") {
  Generator gen(1);
  Tensor s = random_leaf({3, 5}, gen, -3, 3), t = random_leaf({3, 5}, gen, -3, 3);
  const auto y = std::vector<std::int64_t>{4, 0, 2};
  const Tensor labels = labels_of(y, {3});
  View vs(s), vt(t);
  double ce = 0, kl = 0;
  for (std::int64_t p = 0; p < 3; ++p) {
    ce -= log_softmax_ref(vs.logits(p), 1.0)[y[p]];
    kl += kl_ref(vt.logits(p), vs.logits(p), 4.0);
  }
  ce /= 3, kl = kl * 16.0 / 3;
  const Tensor loss = transfer::kd_loss(s, t, labels, {.temperature = 4.0, .alpha = 0.1});
  CHECK(loss.dim() == 0);
  CHECK(loss.item() == doctest::Approx(0.1 * ce + 0.9 * kl).epsilon(1e-12));
  CHECK(transfer::kd_loss(s, t, {}, {.temperature = 4.0, .alpha = 0.0}).item() == doctest::Approx(kl).epsilon(1e-12));
  CHECK(transfer::kd_loss(s, t, labels, {.alpha = 1.0}).item() == doctest::Approx(ce).epsilon(1e-12));
  CHECK_THROWS_AS(transfer::kd_loss(s, t, {}, {.alpha = 0.1}), Error);
  CHECK_THROWS_AS(transfer::kd_loss(s, t, labels, {.alpha = 1.5}), Error);

  // Segmentation logits [N, K, D, H, W] with odd extents.
  Tensor s5 = random_leaf({2, 3, 3, 1, 2}, gen, -2, 2), t5 = random_leaf({2, 3, 3, 1, 2}, gen, -2, 2);
  const Tensor y5 = labels_of(random_labels(12, 3, gen), {2, 3, 1, 2});
  CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return std::vector<Tensor>{transfer::kd_loss(in[0], t5, y5)}; },
                  {s5});
  CHECK_GRADCHECK(
      [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{transfer::kd_loss(in[0], t, labels)}; }, {s});
}

TEST_CASE("distill kd T² scaling: the gradient's size barely depends on T for large T") {
  Generator gen(2);
  Tensor s = random_leaf({4, 6}, gen, -2, 2), t = random_leaf({4, 6}, gen, -2, 2);
  const auto grad_at = [&](double temp, bool scaled) {
    s.set_grad({});
    Tensor loss = transfer::kd_loss(s, t, {}, {.temperature = temp, .alpha = 0.0});
    if (!scaled) loss = loss * (1.0 / (temp * temp));
    loss.backward();
    return grad_norm(s.grad());
  };
  const double g20 = grad_at(20, true), g40 = grad_at(40, true);
  CHECK(g40 / g20 == doctest::Approx(1.0).epsilon(0.02));
  // Without the T² the soft gradient falls like 1/T².
  CHECK(grad_at(20, false) / grad_at(40, false) == doctest::Approx(4.0).epsilon(0.02));
}

TEST_CASE("distill dkd_terms: TCKD and NCKD match mdistiller's formulas (masking trick) in f64") {
  Generator gen(3);
  for (double temp : {1.0, 4.0}) {
    Tensor s = random_leaf({5, 7}, gen, -4, 4), t = random_leaf({5, 7}, gen, -4, 4);
    const auto y = random_labels(5, 7, gen);
    const auto [tckd_ref, nckd_ref] = dkd_ref(s, t, y, temp);
    const auto terms = transfer::dkd_terms(s, t, labels_of(y, {5}), temp);
    CHECK(terms.tckd.item() == doctest::Approx(tckd_ref).epsilon(1e-10));
    CHECK(terms.nckd.item() == doctest::Approx(nckd_ref).epsilon(1e-10));
    CHECK(tckd_ref > 0);
    CHECK(nckd_ref > 0);
  }
  // Identical logits: both terms vanish.
  Tensor s = random_leaf({2, 4}, gen);
  const auto same = transfer::dkd_terms(s, s.detach(), labels_of({1, 3}, {2}), 4.0);
  CHECK(std::abs(same.tckd.item()) < 1e-14);
  CHECK(std::abs(same.nckd.item()) < 1e-14);
  // Segmentation shape, labels with the size-1 channel axis.
  Tensor s5 = random_leaf({2, 4, 3, 1, 1}, gen, -3, 3), t5 = random_leaf({2, 4, 3, 1, 1}, gen, -3, 3);
  const auto y5 = random_labels(6, 4, gen);
  const auto [t_ref, n_ref] = dkd_ref(s5, t5, y5, 2.0);
  const auto terms5 = transfer::dkd_terms(s5, t5, labels_of(y5, {2, 1, 3, 1, 1}), 2.0);
  CHECK(terms5.tckd.item() == doctest::Approx(t_ref).epsilon(1e-10));
  CHECK(terms5.nckd.item() == doctest::Approx(n_ref).epsilon(1e-10));
  // Errors: labels out of range, one class only.
  CHECK_THROWS_AS(transfer::dkd_terms(s, s.detach(), labels_of({1, 4}, {2}), 4.0), Error);
  Tensor one = random_leaf({2, 1}, gen);
  CHECK_THROWS_AS(transfer::dkd_terms(one, one.detach(), labels_of({0, 0}, {2}), 4.0), Error);
}

TEST_CASE("distill dkd gradcheck (both terms, classification and segmentation shapes)") {
  Generator gen(4);
  Tensor s = random_leaf({3, 5}, gen, -3, 3), t = random_leaf({3, 5}, gen, -3, 3);
  const Tensor y = labels_of(random_labels(3, 5, gen), {3});
  CHECK_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        auto d = transfer::dkd_terms(in[0], t, y, 4.0);
        return std::vector<Tensor>{d.tckd, d.nckd};
      },
      {s});
  CHECK_GRADCHECK(
      [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{transfer::dkd_loss(in[0], t, y, 7.0)}; }, {s});
  Tensor s5 = random_leaf({1, 3, 3, 1, 5}, gen, -2, 2), t5 = random_leaf({1, 3, 3, 1, 5}, gen, -2, 2);
  const Tensor y5 = labels_of(random_labels(15, 3, gen), {1, 3, 1, 5});
  CHECK_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        auto d = transfer::dkd_terms(in[0], t5, y5, 1.5);
        return std::vector<Tensor>{d.tckd, d.nckd};
      },
      {s5});
}

TEST_CASE("distill dkd warm-up: min(epoch / warmup, 1) times alpha·TCKD + beta·NCKD") {
  CHECK(transfer::dkd_warmup_factor(5, 20) == 0.25);
  CHECK(transfer::dkd_warmup_factor(0, 20) == 0.0);
  CHECK(transfer::dkd_warmup_factor(20, 20) == 1.0);
  CHECK(transfer::dkd_warmup_factor(35, 20) == 1.0);
  CHECK(transfer::dkd_warmup_factor(3, 0) == 1.0);
  Generator gen(5);
  Tensor s = random_leaf({4, 6}, gen, -3, 3), t = random_leaf({4, 6}, gen, -3, 3);
  const Tensor y = labels_of(random_labels(4, 6, gen), {4});
  const auto terms = transfer::dkd_terms(s, t, y, 4.0);
  const double full = 1.0 * terms.tckd.item() + 8.0 * terms.nckd.item();
  CHECK(transfer::dkd_loss(s, t, y, 20).item() == doctest::Approx(full).epsilon(1e-12));
  CHECK(transfer::dkd_loss(s, t, y, 100).item() == doctest::Approx(full).epsilon(1e-12));
  CHECK(transfer::dkd_loss(s, t, y, 5).item() == doctest::Approx(0.25 * full).epsilon(1e-12));
  const transfer::DkdOptions o{.alpha = 2.0, .beta = 0.5, .temperature = 4.0, .warmup_epochs = 10};
  CHECK(transfer::dkd_loss(s, t, y, 4, o).item() ==
        doctest::Approx(0.4 * (2.0 * terms.tckd.item() + 0.5 * terms.nckd.item())).epsilon(1e-12));
}

TEST_CASE("distill logit_mse_loss: mean squared difference; gradcheck") {
  Generator gen(6);
  Tensor s = random_leaf({3, 5}, gen), t = random_leaf({3, 5}, gen);
  double ref = 0;
  const auto vs = s.to_doubles(), vt = t.to_doubles();
  for (std::size_t i = 0; i < vs.size(); ++i) ref += (vs[i] - vt[i]) * (vs[i] - vt[i]) / 15.0;
  CHECK(transfer::logit_mse_loss(s, t).item() == doctest::Approx(ref).epsilon(1e-12));
  CHECK_GRADCHECK(
      [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{transfer::logit_mse_loss(in[0], t)}; }, {s});
}

TEST_CASE("distill: the teacher gets no gradient from any loss, even when its logits require grad") {
  Generator gen(7);
  Tensor s = random_leaf({2, 3, 3, 2, 1}, gen, -2, 2), t = random_leaf({2, 3, 3, 2, 1}, gen, -2, 2);
  const Tensor y = labels_of(random_labels(12, 3, gen), {2, 3, 2, 1});
  const std::vector<Tensor> losses = {
      transfer::kd_loss(s, t, y),
      transfer::dkd_loss(s, t, y, 30),
      transfer::logit_mse_loss(s, t),
      transfer::voxel_kd_loss(s, t, {.region = transfer::KdRegion::teacher_or_label_foreground}, y),
      transfer::voxel_kd_loss(s, t, {.region = transfer::KdRegion::all}),
  };
  for (const Tensor& loss : losses) {
    s.set_grad({});
    t.set_grad({});
    loss.backward();
    CHECK(s.grad().defined());
    CHECK(grad_norm(s.grad()) > 0);
    CHECK_FALSE(t.grad().defined());
  }
}

TEST_CASE("distill kd_region_mask: teacher argmax, labels, union and dilation") {
  // Logits [1, 3, 3, 4, 5]: the teacher's argmax is class 2 at voxel (1, 1, 1) only; label 1 at (2, 3, 4).
  const Shape shape{1, 3, 3, 4, 5};
  std::vector<double> t(shape.numel(), 0.0);
  const std::int64_t S = 60;
  for (std::int64_t v = 0; v < S; ++v) t[v] = 1.0;  // background wins everywhere ...
  t[2 * S + (1 * 4 + 1) * 5 + 1] = 3.0;             // ... except here
  const Tensor teacher = Tensor::from_doubles(t, shape, DType::f64);
  std::vector<std::int64_t> y(S, 0);
  y[(2 * 4 + 3) * 5 + 4] = 1;
  const Tensor labels = labels_of(y, {1, 3, 4, 5});
  const auto count = [](const Tensor& m) {
    double n = 0;
    for (double v : m.to_doubles()) n += v;
    return n;
  };
  using transfer::KdRegion;
  const Tensor all = transfer::kd_region_mask(teacher, {}, {.region = KdRegion::all});
  CHECK(all.dtype() == DType::u8);
  CHECK(all.shape() == Shape{1, 3, 4, 5});
  CHECK(count(all) == 60);
  const Tensor tm = transfer::kd_region_mask(teacher, {}, {.region = KdRegion::teacher_foreground});
  CHECK(count(tm) == 1);
  CHECK(tm.to_doubles()[(1 * 4 + 1) * 5 + 1] == 1);
  const Tensor lm = transfer::kd_region_mask(teacher, labels, {.region = KdRegion::label_foreground});
  CHECK(count(lm) == 1);
  CHECK(lm.to_doubles()[(2 * 4 + 3) * 5 + 4] == 1);
  CHECK(count(transfer::kd_region_mask(teacher, labels, {.region = KdRegion::teacher_or_label_foreground})) == 2);
  // Dilation by 1: a 3x3x3 cube around (1, 1, 1) (interior), 2x2x2 at the corner (2, 3, 4); their x
  // ranges (0..2 and 3..4) are disjoint.
  const Tensor dm =
      transfer::kd_region_mask(teacher, labels, {.region = KdRegion::teacher_or_label_foreground, .dilation = 1});
  CHECK(count(dm) == 27 + 8);
  const auto dv = dm.to_doubles();
  CHECK(dv[(0 * 4 + 0) * 5 + 0] == 1);
  CHECK(dv[(0 * 4 + 0) * 5 + 3] == 0);
  CHECK(dv[(1 * 4 + 2) * 5 + 3] == 1);  // corner of the label's dilation
  // Background class other than 0: with background_class 2 the teacher's foreground is every voxel but one.
  CHECK(count(transfer::kd_region_mask(teacher, {}, {.region = KdRegion::teacher_foreground, .background_class = 2})) ==
        59);
  CHECK_THROWS_AS(transfer::kd_region_mask(teacher, {}, {.region = KdRegion::label_foreground}), Error);
}

TEST_CASE("distill voxel_kd_loss: masked mean of the per-voxel KL; all voxels = kl_div_with_temperature") {
  Generator gen(8);
  const Shape shape{2, 3, 3, 2, 3};
  Tensor s = random_leaf(shape, gen, -2, 2), t = random_leaf(shape, gen, -2, 2);
  const auto y = random_labels(36, 3, gen);
  const Tensor labels = labels_of(y, {2, 3, 2, 3});
  using transfer::KdRegion;
  for (double temp : {1.0, 3.0}) {
    const transfer::VoxelKdOptions all{.temperature = temp};
    CHECK(transfer::voxel_kd_loss(s, t, all).item() ==
          doctest::Approx(ops::kl_div_with_temperature(s, t, temp).item()).epsilon(1e-12));
    for (double bg : {0.0, 0.25}) {
      const transfer::VoxelKdOptions o{
          .temperature = temp, .region = KdRegion::label_foreground, .background_weight = bg};
      View vs(s), vt(t);
      double num = 0, den = 0;
      for (std::int64_t p = 0; p < 36; ++p) {
        const double w = y[p] != 0 ? 1.0 : bg;
        num += w * kl_ref(vt.logits(p), vs.logits(p), temp);
        den += w;
      }
      CHECK(transfer::voxel_kd_loss(s, t, o, labels).item() == doctest::Approx(temp * temp * num / den).epsilon(1e-12));
      CHECK_GRADCHECK(
          [&](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{transfer::voxel_kd_loss(in[0], t, o, labels)};
          },
          {s});
    }
  }
  // No foreground anywhere: 0, and a zero gradient (not NaN).
  const Tensor background = labels_of(std::vector<std::int64_t>(36, 0), {2, 3, 2, 3});
  s.set_grad({});
  Tensor none = transfer::voxel_kd_loss(s, t, {.region = KdRegion::label_foreground}, background);
  CHECK(none.item() == 0.0);
  none.backward();
  CHECK(grad_norm(s.grad()) == 0.0);
  // Caller-given weights.
  std::vector<double> w(36);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<double>(i % 4);
  const Tensor weights = Tensor::from_doubles(w, {2, 1, 3, 2, 3}, DType::f32);
  CHECK_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{transfer::weighted_kl_div_with_temperature(in[0], t, weights, 2.0)};
      },
      {s});
  CHECK_THROWS_AS(transfer::weighted_kl_div_with_temperature(s, t, Tensor::ones({2, 3, 2}), 2.0), Error);
  CHECK_THROWS_AS(transfer::weighted_kl_div_with_temperature(s, t, Tensor::full({2, 3, 2, 3}, -1.0), 2.0), Error);
}

TEST_CASE("distill losses run on f32 and agree with f64") {
  Generator gen(9);
  Tensor s = random_leaf({2, 4, 3, 2, 2}, gen, -3, 3), t = random_leaf({2, 4, 3, 2, 2}, gen, -3, 3);
  const Tensor y = labels_of(random_labels(24, 4, gen), {2, 3, 2, 2});
  const Tensor s32 = s.detach().to(DType::f32), t32 = t.detach().to(DType::f32);
  const transfer::VoxelKdOptions vo{
      .region = transfer::KdRegion::teacher_or_label_foreground, .dilation = 1, .background_weight = 0.1};
  CHECK(transfer::dkd_loss(s32, t32, y, 10).item() ==
        doctest::Approx(transfer::dkd_loss(s, t, y, 10).item()).epsilon(1e-5));
  CHECK(transfer::voxel_kd_loss(s32, t32, vo, y).item() ==
        doctest::Approx(transfer::voxel_kd_loss(s, t, vo, y).item()).epsilon(1e-5));
  CHECK(transfer::dkd_loss(s32, t32, y, 10).dtype() == DType::f32);
}
