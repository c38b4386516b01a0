#include "tlk/kernels/ref/losses.h"

#include <cmath>
#include <limits>

#include "test_util.h"
#include "tlk/kernels/ref/soft_dice.h"

using namespace tlk;
using testing::f64;
using testing::random_leaf;

namespace {

// Integer labels in [0, classes), i64.
Tensor random_labels(const Shape& shape, std::int64_t classes, Generator& gen) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(shape.numel()));
  for (auto& t : v) t = static_cast<std::int64_t>(gen.below(static_cast<std::uint64_t>(classes)));
  return Tensor::from_vector(v, shape);
}

std::vector<std::int64_t> label_values(const Tensor& t) {
  std::vector<std::int64_t> out;
  for (double v : t.to_doubles()) out.push_back(static_cast<std::int64_t>(v));
  return out;
}

// ---- Independent references: naive formulas on [N, C, S] flattened doubles (no shared code) --------

struct Dims3 {
  std::int64_t n, c, s;
  std::size_t at(std::int64_t ni, std::int64_t ci, std::int64_t si) const {
    return static_cast<std::size_t>((ni * c + ci) * s + si);
  }
};

Dims3 dims3(const Shape& shape) {
  std::int64_t s = 1;
  for (int i = 2; i < shape.size(); ++i) s *= shape[i];
  return {shape[0], shape[1], s};
}

// softmax(x / temperature) over channels at (n, s), computed naively.
std::vector<double> naive_softmax(const std::vector<double>& x, const Dims3& d, std::int64_t n, std::int64_t s,
                                  double temperature = 1.0) {
  std::vector<double> p(static_cast<std::size_t>(d.c));
  double z = 0.0;
  for (std::int64_t c = 0; c < d.c; ++c) z += std::exp(x[d.at(n, c, s)] / temperature);
  for (std::int64_t c = 0; c < d.c; ++c) p[static_cast<std::size_t>(c)] = std::exp(x[d.at(n, c, s)] / temperature) / z;
  return p;
}

double naive_cross_entropy(const Tensor& logits, const Tensor& target, const std::vector<double>& w,
                           std::int64_t ignore) {
  const Dims3 d = dims3(logits.shape());
  const auto x = logits.to_doubles();
  const auto t = label_values(target);
  double num = 0.0, den = 0.0;
  for (std::int64_t n = 0; n < d.n; ++n)
    for (std::int64_t s = 0; s < d.s; ++s) {
      const std::int64_t cls = t[static_cast<std::size_t>(n * d.s + s)];
      if (cls == ignore) continue;
      const double wt = w.empty() ? 1.0 : w[static_cast<std::size_t>(cls)];
      num += wt * -std::log(naive_softmax(x, d, n, s)[static_cast<std::size_t>(cls)]);
      den += wt;
    }
  return num / den;
}

// nnUNet SoftDiceLoss, written out from its definition.
double naive_dice(const Tensor& logits, const std::vector<double>& onehot, const SoftDiceOptions& opt) {
  const Dims3 d = dims3(logits.shape());
  const auto x = logits.to_doubles();
  const std::int64_t groups = opt.batch_dice ? 1 : d.n;
  std::vector<double> tp(static_cast<std::size_t>(groups * d.c)), fp(tp.size()), fn(tp.size());
  for (std::int64_t n = 0; n < d.n; ++n)
    for (std::int64_t s = 0; s < d.s; ++s) {
      const auto p = naive_softmax(x, d, n, s);
      for (std::int64_t c = 0; c < d.c; ++c) {
        const std::size_t g = static_cast<std::size_t>((opt.batch_dice ? 0 : n) * d.c + c);
        const double pc = opt.apply_softmax ? p[static_cast<std::size_t>(c)] : x[d.at(n, c, s)];
        const double y = onehot[d.at(n, c, s)];
        tp[g] += pc * y;
        fp[g] += pc * (1 - y);
        fn[g] += (1 - pc) * y;
      }
    }
  double sum = 0.0;
  int count = 0;
  for (std::int64_t g = 0; g < groups; ++g)
    for (std::int64_t c = opt.do_background ? 0 : 1; c < d.c; ++c, ++count) {
      const std::size_t i = static_cast<std::size_t>(g * d.c + c);
      sum += (2 * tp[i] + opt.smooth) / std::max(2 * tp[i] + fp[i] + fn[i] + opt.smooth, 1e-8);
    }
  return -sum / count;
}

std::vector<double> one_hot(const Tensor& labels, const Shape& logits_shape) {
  const Dims3 d = dims3(logits_shape);
  const auto t = label_values(labels);
  std::vector<double> out(static_cast<std::size_t>(logits_shape.numel()), 0.0);
  for (std::int64_t n = 0; n < d.n; ++n)
    for (std::int64_t s = 0; s < d.s; ++s) out[d.at(n, t[static_cast<std::size_t>(n * d.s + s)], s)] = 1.0;
  return out;
}

double naive_kl(const Tensor& student, const Tensor& teacher, double temperature) {
  const Dims3 d = dims3(student.shape());
  const auto xs = student.to_doubles(), xt = teacher.to_doubles();
  double sum = 0.0;
  for (std::int64_t n = 0; n < d.n; ++n)
    for (std::int64_t s = 0; s < d.s; ++s) {
      const auto p = naive_softmax(xs, d, n, s, temperature), q = naive_softmax(xt, d, n, s, temperature);
      for (std::size_t c = 0; c < p.size(); ++c) sum += q[c] * std::log(q[c] / p[c]);
    }
  return temperature * temperature * sum / static_cast<double>(d.n * d.s);
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace

// ---- cross entropy ----------------------------------------------------------------------------------

TEST_CASE("cross_entropy forward: hand-computed values") {
  // softmax([0, ln 3]) = [1/4, 3/4], so the loss for class 1 is −ln(3/4) = ln(4/3), for class 0 ln 4.
  Tensor x = Tensor::from_doubles({0.0, std::log(3.0), 0.0, std::log(3.0)}, {2, 2}, DType::f64);
  Tensor t = Tensor::from_vector<std::int64_t>({1, 1}, {2});
  CHECK(ops::cross_entropy(x, t).item() == doctest::Approx(std::log(4.0 / 3.0)).epsilon(1e-14));
  Tensor t01 = Tensor::from_vector<std::int64_t>({0, 1}, {2});
  CHECK(ops::cross_entropy(x, t01).item() == doctest::Approx((std::log(4.0) + std::log(4.0 / 3.0)) / 2).epsilon(1e-14));

  // Stable for huge logits: [1000, 1000 + ln 3] gives the same numbers.
  Tensor big = Tensor::from_doubles({1000.0, 1000.0 + std::log(3.0)}, {1, 2}, DType::f64);
  CHECK(ops::cross_entropy(big, Tensor::from_vector<std::int64_t>({1}, {1})).item() ==
        doctest::Approx(std::log(4.0 / 3.0)).epsilon(1e-12));

  // A random segmentation case against the naive formula; i32, u8 and [N, 1, ...] targets agree.
  Generator gen(41);
  Tensor logits = randn({2, 3, 4, 5}, gen, 0, 2, f64());
  Tensor labels = random_labels({2, 4, 5}, 3, gen);
  const double expected = naive_cross_entropy(logits, labels, {}, -100);
  CHECK(ops::cross_entropy(logits, labels).item() == doctest::Approx(expected).epsilon(1e-13));
  CHECK(ops::cross_entropy(logits, labels.to(DType::i32)).item() == doctest::Approx(expected).epsilon(1e-13));
  CHECK(ops::cross_entropy(logits, labels.to(DType::u8)).item() == doctest::Approx(expected).epsilon(1e-13));
  CHECK(ops::cross_entropy(logits, labels.reshape({2, 1, 4, 5})).item() == doctest::Approx(expected).epsilon(1e-13));
}

TEST_CASE("cross_entropy: class weights and ignore_index follow Σ w[t]·nll / Σ w[t]") {
  // Hand case: logits [0, ln 3] for both samples, targets {0, 1}: nll = {ln 4, ln 4/3}.
  Tensor x = Tensor::from_doubles({0.0, std::log(3.0), 0.0, std::log(3.0)}, {2, 2}, DType::f64);
  Tensor t = Tensor::from_vector<std::int64_t>({0, 1}, {2});
  Tensor w = Tensor::from_doubles({2.0, 0.5}, {2}, DType::f64);
  const double weighted = (2.0 * std::log(4.0) + 0.5 * std::log(4.0 / 3.0)) / 2.5;
  CHECK(ops::cross_entropy(x, t, CrossEntropyOptions{}.with_weight(w)).item() ==
        doctest::Approx(weighted).epsilon(1e-14));
  // Ignoring class 0 leaves only the second sample (the denominator drops its weight too).
  CHECK(ops::cross_entropy(x, t, CrossEntropyOptions{}.with_weight(w).with_ignore_index(0)).item() ==
        doctest::Approx(std::log(4.0 / 3.0)).epsilon(1e-14));

  // Random case with both, including ignore_index = 255 entries in a u8 target.
  Generator gen(42);
  Tensor logits = randn({3, 4, 2, 3}, gen, 0, 2, f64());
  auto v = label_values(random_labels({3, 2, 3}, 4, gen));
  v[1] = v[7] = v[12] = 255;
  Tensor labels = Tensor::from_vector(v, {3, 2, 3});
  const std::vector<double> wv{0.3, 1.0, 2.5, 0.7};
  Tensor weight = Tensor::from_doubles(wv, {4}, DType::f64);
  const auto opt = CrossEntropyOptions{}.with_weight(weight).with_ignore_index(255);
  const double got = ops::cross_entropy(logits, labels.to(DType::u8), opt).item();
  CHECK(got == doctest::Approx(naive_cross_entropy(logits, labels, wv, 255)).epsilon(1e-13));
  CHECK(got != doctest::Approx(naive_cross_entropy(logits, labels, {}, 255)).epsilon(1e-6));
}

TEST_CASE("cross_entropy: every element ignored gives NaN with a zero gradient (as PyTorch)") {
  Generator gen(43);
  Tensor x = random_leaf({2, 3, 2}, gen);
  Tensor t = Tensor::full({2, 2}, -100, TensorOptions{DType::i64});
  Tensor loss = ops::cross_entropy(x, t);
  CHECK(std::isnan(loss.item()));
  loss.backward();
  for (double g : x.grad().to_doubles()) CHECK(g == 0.0);
}

TEST_CASE("cross_entropy gradients: segmentation and classification shapes, weights, ignore_index") {
  Generator gen(44);
  {
    Tensor x = random_leaf({3, 5, 2, 3, 4}, gen, -2, 2);
    auto v = label_values(random_labels({3, 2, 3, 4}, 5, gen));
    v[0] = v[5] = v[33] = -100;
    Tensor t = Tensor::from_vector(v, {3, 2, 3, 4});
    CHECK_GRADCHECK([&](const auto& in) { return std::vector<Tensor>{ops::cross_entropy(in[0], t)}; },
                    (std::vector<Tensor>{x}));
    const auto opt = CrossEntropyOptions{}.with_weight(Tensor::from_doubles({0.2, 1, 3, 0.5, 1.5}, {5}, DType::f64));
    CHECK_GRADCHECK([&](const auto& in) { return std::vector<Tensor>{ops::cross_entropy(in[0], t, opt)}; },
                    (std::vector<Tensor>{x}));
  }
  {
    Tensor x = random_leaf({4, 7}, gen, -3, 3);
    Tensor t = Tensor::from_vector<std::int64_t>({6, 0, 3, 2}, {4});
    const auto opt = CrossEntropyOptions{}.with_ignore_index(3);
    CHECK_GRADCHECK([&](const auto& in) { return std::vector<Tensor>{ops::cross_entropy(in[0], t, opt)}; },
                    (std::vector<Tensor>{x}));
  }
}

// ---- soft Dice -------------------------------------------------------------------------------------------

TEST_CASE("soft_dice_loss: a perfect prediction gives -1, for labels and one-hot targets") {
  Generator gen(45);
  const Shape shape{2, 3, 4, 5, 3};
  Tensor labels = random_labels({2, 4, 5, 3}, 3, gen);
  const auto onehot = one_hot(labels, shape);
  std::vector<double> huge(onehot.size());
  for (std::size_t i = 0; i < huge.size(); ++i) huge[i] = 30.0 * onehot[i];
  Tensor logits = Tensor::from_doubles(huge, shape, DType::f64);
  Tensor target = Tensor::from_doubles(onehot, shape, DType::f64);
  for (bool batch : {false, true})
    for (bool bg : {false, true}) {
      const auto opt = SoftDiceOptions{}.with_batch_dice(batch).with_do_background(bg);
      const double from_labels = ops::soft_dice_loss(logits, labels, opt).item();
      CHECK(from_labels == doctest::Approx(-1.0).epsilon(1e-8));
      CHECK(ops::soft_dice_loss(logits, target, opt).item() == from_labels);
      CHECK(ops::soft_dice_loss(logits, labels.reshape({2, 1, 4, 5, 3}).to(DType::u8), opt).item() == from_labels);
    }
}

TEST_CASE("soft_dice_loss: batch dice differs from per-sample dice on a crafted case") {
  // N=2, C=2, 4 voxels. Sample 0: labels [1, 1, 0, 0], predicted with logits ±50 (p = 1 − e).
  // Sample 1: no foreground; voxel 0 has logits (0, 0) so p = 1/2, the rest are confident background.
  const double L = 50.0, e = 1.0 / (1.0 + std::exp(2 * L));
  Tensor logits = Tensor::from_doubles({-L, -L, L, L, /* fg */ L, L, -L, -L,  // sample 0: bg, fg channels
                                        0, L, L, L, /* fg */ 0, -L, -L, -L},  // sample 1
                                       {2, 2, 4}, DType::f64);
  Tensor labels = Tensor::from_vector<std::int64_t>({1, 1, 0, 0, 0, 0, 0, 0}, {2, 4});
  const double s = 1e-5;
  // Foreground class only (do_background = false).
  const double tp0 = 2 * (1 - e), fp0 = 2 * e, fn0 = 2 * e;
  const double tp1 = 0, fp1 = 0.5 + 3 * e, fn1 = 0;
  const double dc0 = (2 * tp0 + s) / (2 * tp0 + fp0 + fn0 + s), dc1 = (2 * tp1 + s) / (2 * tp1 + fp1 + fn1 + s);
  const double batch = (2 * (tp0 + tp1) + s) / (2 * (tp0 + tp1) + fp0 + fp1 + fn0 + fn1 + s);
  const double per_sample_loss = ops::soft_dice_loss(logits, labels).item();
  const double batch_loss = ops::soft_dice_loss(logits, labels, SoftDiceOptions{}.with_batch_dice(true)).item();
  CHECK(per_sample_loss == doctest::Approx(-(dc0 + dc1) / 2).epsilon(1e-12));
  CHECK(batch_loss == doctest::Approx(-batch).epsilon(1e-12));
  CHECK(per_sample_loss == doctest::Approx(-0.5).epsilon(1e-4));
  CHECK(batch_loss == doctest::Approx(-4.0 / 4.5).epsilon(1e-4));
}

TEST_CASE("soft_dice_loss forward matches the nnUNet formula on random inputs") {
  Generator gen(46);
  const Shape shape{3, 4, 3, 2, 5};
  Tensor logits = randn(shape, gen, 0, 2, f64());
  Tensor labels = random_labels({3, 3, 2, 5}, 4, gen);
  const auto onehot = one_hot(labels, shape);
  for (bool batch : {false, true})
    for (bool bg : {false, true}) {
      CAPTURE(batch);
      CAPTURE(bg);
      const auto opt = SoftDiceOptions{}.with_batch_dice(batch).with_do_background(bg).with_smooth(0.3);
      CHECK(ops::soft_dice_loss(logits, labels, opt).item() ==
            doctest::Approx(naive_dice(logits, onehot, opt)).epsilon(1e-13));
    }
  // apply_softmax = false takes probabilities as given; a soft (non one-hot) target is accepted.
  Tensor probs = rand(shape, gen, 0.05, 1.0, f64());
  Tensor soft = rand(shape, gen, 0.0, 1.0, f64());
  const auto opt = SoftDiceOptions{}.with_apply_softmax(false);
  CHECK(ops::soft_dice_loss(probs, soft, opt).item() ==
        doctest::Approx(naive_dice(probs, soft.to_doubles(), opt)).epsilon(1e-13));
}

TEST_CASE("soft_dice_loss gradients: per-sample and batch, with and without background, labels and one-hot") {
  Generator gen(47);
  const Shape shape{3, 5, 2, 3, 4};
  Tensor x = random_leaf(shape, gen, -2, 2);
  Tensor labels = random_labels({3, 2, 3, 4}, 5, gen);
  Tensor onehot = Tensor::from_doubles(one_hot(labels, shape), shape, DType::f64);
  for (bool batch : {false, true})
    for (bool bg : {false, true}) {
      CAPTURE(batch);
      CAPTURE(bg);
      const auto opt = SoftDiceOptions{}.with_batch_dice(batch).with_do_background(bg);
      const Tensor& target = bg ? onehot : labels;
      CHECK_GRADCHECK([&](const auto& in) { return std::vector<Tensor>{ops::soft_dice_loss(in[0], target, opt)}; },
                      (std::vector<Tensor>{x}));
    }
  Tensor probs = random_leaf({1, 3, 2, 5}, gen, 0.05, 1.0);
  Tensor soft = rand({1, 3, 2, 5}, gen, 0.0, 1.0, f64());
  const auto opt = SoftDiceOptions{}.with_apply_softmax(false).with_smooth(0.1);
  CHECK_GRADCHECK([&](const auto& in) { return std::vector<Tensor>{ops::soft_dice_loss(in[0], soft, opt)}; },
                  (std::vector<Tensor>{probs}));
}

// ---- binary cross entropy on logits -------------------------------------------------------------

TEST_CASE("bce_with_logits forward: hand-computed values, pos_weight, stability") {
  const std::vector<double> xs{-2.0, 0.5, 3.0, 0.0}, ys{0.0, 1.0, 0.3, 0.5};
  Tensor x = Tensor::from_doubles(xs, {2, 2}, DType::f64), y = Tensor::from_doubles(ys, {2, 2}, DType::f64);
  double plain = 0.0, weighted = 0.0;
  const double pw[2] = {3.0, 0.5};  // per class along dimension 1
  for (std::size_t i = 0; i < 4; ++i) {
    const double p = sigmoid(xs[i]);
    plain += -(ys[i] * std::log(p) + (1 - ys[i]) * std::log(1 - p)) / 4;
    weighted += -(pw[i % 2] * ys[i] * std::log(p) + (1 - ys[i]) * std::log(1 - p)) / 4;
  }
  CHECK(ops::bce_with_logits(x, y).item() == doctest::Approx(plain).epsilon(1e-14));
  const auto opt = BceOptions{}.with_pos_weight(Tensor::from_doubles({3.0, 0.5}, {2}, DType::f64));
  CHECK(ops::bce_with_logits(x, y, opt).item() == doctest::Approx(weighted).epsilon(1e-14));
  // A one-element pos_weight of 1 changes nothing.
  CHECK(ops::bce_with_logits(x, y, BceOptions{}.with_pos_weight(Tensor::scalar(1.0, f64()))).item() ==
        doctest::Approx(plain).epsilon(1e-14));

  // Stable at ±1000: loss(x=1000, y=0) = 1000, loss(x=−1000, y=0) = 0.
  Tensor big = Tensor::from_doubles({1000.0, -1000.0}, {2}, DType::f64);
  Tensor zeros = Tensor::zeros({2}, f64());
  CHECK(ops::bce_with_logits(big, zeros).item() == doctest::Approx(500.0).epsilon(1e-14));
  CHECK(ops::bce_with_logits(big, zeros, BceOptions{}.with_pos_weight(Tensor::scalar(2.0, f64()))).item() ==
        doctest::Approx(500.0).epsilon(1e-14));
}

TEST_CASE("bce_with_logits gradients w.r.t. logits and target") {
  Generator gen(48);
  {
    Tensor x = random_leaf({3, 5, 2, 3, 4}, gen, -3, 3), y = random_leaf({3, 5, 2, 3, 4}, gen, 0, 1);
    CHECK_GRADCHECK([](const auto& in) { return std::vector<Tensor>{ops::bce_with_logits(in[0], in[1])}; },
                    (std::vector<Tensor>{x, y}));
    const auto opt = BceOptions{}.with_pos_weight(Tensor::from_doubles({0.5, 1, 2, 3, 4}, {5}, DType::f64));
    CHECK_GRADCHECK([&](const auto& in) { return std::vector<Tensor>{ops::bce_with_logits(in[0], in[1], opt)}; },
                    (std::vector<Tensor>{x, y}));
  }
  {
    Tensor x = random_leaf({4, 7}, gen, -3, 3), y = random_leaf({4, 7}, gen, 0, 1);
    const auto opt = BceOptions{}.with_pos_weight(Tensor::scalar(2.5, f64()));
    CHECK_GRADCHECK([&](const auto& in) { return std::vector<Tensor>{ops::bce_with_logits(in[0], in[1], opt)}; },
                    (std::vector<Tensor>{x, y}));
  }
}

// ---- distillation KL --------------------------------------------------------------------------------

TEST_CASE("kl_div_with_temperature forward: hand-computed values and T² scaling") {
  // Two classes, one sample: q = softmax([0, ln 3] / T), p = softmax([0, 0] / T) = [1/2, 1/2].
  // With T = 1: q = [1/4, 3/4], KL = 1/4·ln(1/2) + 3/4·ln(3/2).
  Tensor s = Tensor::from_doubles({0.0, 0.0}, {1, 2}, DType::f64);
  Tensor t = Tensor::from_doubles({0.0, std::log(3.0)}, {1, 2}, DType::f64);
  CHECK(ops::kl_div_with_temperature(s, t, 1.0).item() ==
        doctest::Approx(0.25 * std::log(0.5) + 0.75 * std::log(1.5)).epsilon(1e-14));
  // With T = 2: q ∝ [1, √3]; the KL is multiplied by T² = 4.
  const double q1 = std::sqrt(3.0) / (1 + std::sqrt(3.0)), q0 = 1 - q1;
  CHECK(ops::kl_div_with_temperature(s, t, 2.0).item() ==
        doctest::Approx(4 * (q0 * std::log(2 * q0) + q1 * std::log(2 * q1))).epsilon(1e-14));
  // Identical logits: zero.
  CHECK(ops::kl_div_with_temperature(t, t, 3.0).item() == doctest::Approx(0.0));

  // Segmentation shape: mean over N and voxels of the channel-summed KL.
  Generator gen(49);
  Tensor xs = randn({2, 3, 4, 3}, gen, 0, 2, f64()), xt = randn({2, 3, 4, 3}, gen, 0, 2, f64());
  for (double temp : {1.0, 4.0})
    CHECK(ops::kl_div_with_temperature(xs, xt, temp).item() == doctest::Approx(naive_kl(xs, xt, temp)).epsilon(1e-12));
}

TEST_CASE("kl_div_with_temperature with position weights: a weighted mean of the positions' KL") {
  Generator gen(51);
  const Tensor s = randn({2, 3, 4, 5}, gen, 0, 2, f64()), t = randn({2, 3, 4, 5}, gen, 0, 2, f64());
  // Weights of 1 give the plain mean exactly.
  CHECK(ops::kl_div_with_temperature(s, t, 2.0, Tensor::ones({2, 4, 5})).item() ==
        ops::kl_div_with_temperature(s, t, 2.0).item());
  // 0/1 weights: the mean over the chosen positions only, here one sample's (the [N, 1, ...] shape).
  Tensor first = Tensor::zeros({2, 1, 4, 5});
  first.narrow(0, 0, 1).fill_(1.0);
  CHECK(ops::kl_div_with_temperature(s, t, 2.0, first).item() ==
        doctest::Approx(ops::kl_div_with_temperature(s.narrow(0, 0, 1).contiguous(), t.narrow(0, 0, 1).contiguous(),
                                                     2.0)
                            .item())
            .epsilon(1e-13));
  // Scaling every weight changes nothing; all-zero weights give 0 and a zero gradient.
  CHECK(ops::kl_div_with_temperature(s, t, 2.0, Tensor::full({2, 4, 5}, 3.5)).item() ==
        doctest::Approx(ops::kl_div_with_temperature(s, t, 2.0).item()).epsilon(1e-13));
  Tensor leaf = s.clone().set_requires_grad();
  Tensor zero = ops::kl_div_with_temperature(leaf, t, 2.0, Tensor::zeros({2, 4, 5}));
  CHECK(zero.item() == 0.0);
  zero.backward();
  for (double v : leaf.grad().to_doubles()) REQUIRE(v == 0.0);
  // Gradients with uneven weights.
  const Tensor w = tlk::rand({2, 4, 5}, gen, 0.0, 2.0, f64());
  Tensor x = random_leaf({2, 3, 4, 5}, gen, -2, 2);
  CHECK_GRADCHECK([&](const auto& in) { return std::vector<Tensor>{ops::kl_div_with_temperature(in[0], t, 1.5, w)}; },
                  (std::vector<Tensor>{x}));
  // Bad weights are named.
  CHECK_THROWS_WITH_AS(ops::kl_div_with_temperature(s, t, 2.0, Tensor::ones({2, 4, 4})),
                       doctest::Contains("position weights of shape [2, 4, 4] do not fit logits"), Error);
  CHECK_THROWS_WITH_AS(ops::kl_div_with_temperature(s, t, 2.0, Tensor::full({2, 4, 5}, -1.0)),
                       doctest::Contains("must be finite and >= 0"), Error);
}

TEST_CASE("kl_div_with_temperature: gradient to the student only") {
  Generator gen(50);
  for (const Shape& shape : {Shape{3, 5, 2, 3, 4}, Shape{4, 7}})
    for (double temp : {1.0, 3.0}) {
      CAPTURE(shape.str());
      CAPTURE(temp);
      Tensor s = random_leaf(shape, gen, -2, 2);
      Tensor t = randn(shape, gen, 0, 2, f64());
      CHECK_GRADCHECK([&](const auto& in) { return std::vector<Tensor>{ops::kl_div_with_temperature(in[0], t, temp)}; },
                      (std::vector<Tensor>{s}));
    }
  // The teacher is a constant even when it requires grad.
  Tensor s = random_leaf({2, 3}, gen), t = random_leaf({2, 3}, gen);
  ops::kl_div_with_temperature(s, t, 2.0).backward();
  CHECK(s.grad().defined());
  CHECK_FALSE(t.grad().defined());
  Tensor only_teacher = ops::kl_div_with_temperature(s.detach(), t, 2.0);
  CHECK_FALSE(only_teacher.requires_grad());
}

// ---- mean squared error ----------------------------------------------------------------------------------

TEST_CASE("mse_loss: hand-computed value and gradients to both inputs") {
  Tensor a = Tensor::from_doubles({1.0, -2.0, 0.5}, {3}, DType::f64);
  Tensor b = Tensor::from_doubles({0.0, 1.0, 0.5}, {3}, DType::f64);
  CHECK(ops::mse_loss(a, b).item() == doctest::Approx((1.0 + 9.0 + 0.0) / 3).epsilon(1e-15));
  Generator gen(51);
  for (const Shape& shape : {Shape{3, 5, 2, 3, 4}, Shape{4, 7}}) {
    CAPTURE(shape.str());
    Tensor x = random_leaf(shape, gen), y = random_leaf(shape, gen);
    CHECK_GRADCHECK([](const auto& in) { return std::vector<Tensor>{ops::mse_loss(in[0], in[1])}; },
                    (std::vector<Tensor>{x, y}));
  }
}

// ---- f32 against f64 ---------------------------------------------------------------------------------

TEST_CASE("losses: f32 forward agrees with f64") {
  Generator gen(52);
  const Shape shape{2, 3, 4, 5, 3};
  Tensor x = randn(shape, gen, 0, 2, f64()), z = randn(shape, gen, 0, 2, f64());
  Tensor y = rand(shape, gen, 0, 1, f64());
  Tensor labels = random_labels({2, 4, 5, 3}, 3, gen);
  Tensor w = Tensor::from_doubles({0.5, 1.0, 2.0}, {3}, DType::f64);
  auto close = [](const Tensor& lo, const Tensor& hi) {
    CHECK(lo.dtype() == DType::f32);
    CHECK(std::abs(lo.item() - hi.item()) <= 1e-5 * std::abs(hi.item()) + 1e-7);
  };
  Tensor xf = x.to(DType::f32), zf = z.to(DType::f32), yf = y.to(DType::f32);
  close(ops::cross_entropy(xf, labels, CrossEntropyOptions{}.with_weight(w.to(DType::f32))),
        ops::cross_entropy(x, labels, CrossEntropyOptions{}.with_weight(w)));
  close(ops::soft_dice_loss(xf, labels), ops::soft_dice_loss(x, labels));
  close(ops::soft_dice_loss(xf, labels, SoftDiceOptions{}.with_batch_dice(true)),
        ops::soft_dice_loss(x, labels, SoftDiceOptions{}.with_batch_dice(true)));
  close(ops::bce_with_logits(xf, yf), ops::bce_with_logits(x, y));
  close(ops::kl_div_with_temperature(xf, zf, 2.0), ops::kl_div_with_temperature(x, z, 2.0));
  close(ops::mse_loss(xf, zf), ops::mse_loss(x, z));
}

// ---- bad input -------------------------------------------------------------------------------------

TEST_CASE("losses: bad input gives a clear error") {
  Tensor x = Tensor::zeros({2, 5, 4}), labels = Tensor::zeros({2, 4}, TensorOptions{DType::i64});
  // cross_entropy
  CHECK_THROWS_WITH_AS(ops::cross_entropy(x, Tensor::zeros({2, 3}, TensorOptions{DType::i64})),
                       doctest::Contains("target has shape [2, 3], expected [2, 4]"), Error);
  CHECK_THROWS_WITH_AS(ops::cross_entropy(x, Tensor::from_vector<std::int64_t>({0, 1, 7, 2, 0, 0, 0, 0}, {2, 4})),
                       doctest::Contains("target value 7 (element 2) is out of range for 5 classes"), Error);
  CHECK_THROWS_WITH_AS(ops::cross_entropy(x, Tensor::full({2, 4}, -1, TensorOptions{DType::i32})),
                       doctest::Contains("target value -1"), Error);
  CHECK_THROWS_WITH_AS(ops::cross_entropy(x, Tensor::zeros({2, 4})),
                       doctest::Contains("must hold integer class indices (i64, i32 or u8), got f32"), Error);
  CHECK_THROWS_WITH_AS(ops::cross_entropy(Tensor::zeros({2, 5, 4}, TensorOptions{DType::i64}), labels),
                       doctest::Contains("logits must be f32 or f64, got i64"), Error);
  CHECK_THROWS_WITH_AS(ops::cross_entropy(Tensor::zeros({5}), Tensor::scalar(0, TensorOptions{DType::i64})),
                       doctest::Contains("at least 2-D"), Error);
  CHECK_THROWS_WITH_AS(ops::cross_entropy(x, labels, CrossEntropyOptions{}.with_weight(Tensor::ones({4}))),
                       doctest::Contains("weight has shape [4], expected [5]"), Error);
  CHECK_THROWS_WITH_AS(ops::cross_entropy(x, labels, CrossEntropyOptions{}.with_weight(Tensor::ones({5}, f64()))),
                       doctest::Contains("mixed dtypes"), Error);
  // soft_dice_loss
  CHECK_THROWS_WITH_AS(ops::soft_dice_loss(Tensor::zeros({2, 1, 4}), labels),
                       doctest::Contains("at least 2 are needed"), Error);
  CHECK_THROWS_WITH_AS(ops::soft_dice_loss(x, Tensor::full({2, 4}, 5, TensorOptions{DType::u8})),
                       doctest::Contains("target label 5 (element 0) is out of range for 5 classes"), Error);
  CHECK_THROWS_WITH_AS(ops::soft_dice_loss(x, Tensor::zeros({2, 4, 4})), doctest::Contains("floating target has shape"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::soft_dice_loss(x, Tensor::zeros({2, 5, 4}, f64())), doctest::Contains("mixed dtypes"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::soft_dice_loss(x, Tensor::zeros({2, 5}, TensorOptions{DType::i64})),
                       doctest::Contains("target labels have shape [2, 5], expected [2, 4]"), Error);
  CHECK_THROWS_WITH_AS(ops::soft_dice_loss(x, labels, SoftDiceOptions{}.with_smooth(-1)),
                       doctest::Contains("smooth must be"), Error);
  // bce_with_logits
  CHECK_THROWS_WITH_AS(ops::bce_with_logits(x, Tensor::zeros({2, 5})),
                       doctest::Contains("target has shape [2, 5], expected the logits' shape [2, 5, 4]"), Error);
  CHECK_THROWS_WITH_AS(ops::bce_with_logits(x, Tensor::zeros({2, 5, 4}, TensorOptions{DType::i64})),
                       doctest::Contains("floating probabilities"), Error);
  CHECK_THROWS_WITH_AS(ops::bce_with_logits(x, Tensor::zeros({2, 5, 4}, f64())), doctest::Contains("mixed dtypes"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::bce_with_logits(x, x, BceOptions{}.with_pos_weight(Tensor::ones({4}))),
                       doctest::Contains("pos_weight has shape [4]"), Error);
  // kl_div_with_temperature
  CHECK_THROWS_WITH_AS(ops::kl_div_with_temperature(x, Tensor::zeros({2, 4, 4}), 1.0),
                       doctest::Contains("differ in shape"), Error);
  CHECK_THROWS_WITH_AS(ops::kl_div_with_temperature(x, x, 0.0), doctest::Contains("temperature must be"), Error);
  CHECK_THROWS_WITH_AS(ops::kl_div_with_temperature(x, x.to(DType::f64), 1.0), doctest::Contains("mixed dtypes"),
                       Error);
  // mse_loss
  CHECK_THROWS_WITH_AS(ops::mse_loss(x, Tensor::zeros({2, 5, 1})), doctest::Contains("differ in shape"), Error);
  CHECK_THROWS_WITH_AS(ops::mse_loss(x, x.to(DType::f64)), doctest::Contains("mixed dtypes"), Error);
  // The backward kernels check the gradient they are given.
  namespace k = kernels::ref;
  CHECK_THROWS_WITH_AS(k::cross_entropy_backward(Tensor::scalar(1.0, f64()), x, labels, {}),
                       doctest::Contains("cross_entropy backward: mixed dtypes f32 and f64"), Error);
  CHECK_THROWS_WITH_AS(k::mse_loss_backward(Tensor::ones({2}), x, x),
                       doctest::Contains("mse_loss backward: expected a one-element gradient of the scalar loss (shape "
                                         "[] or [1]), got shape [2]"),
                       Error);
  CHECK_THROWS_WITH_AS(k::soft_dice_backward(Tensor::ones({2}), x, labels, {}),
                       doctest::Contains("soft_dice_loss backward: expected a one-element gradient of the scalar "
                                         "loss (shape [] or [1]), got shape [2]"),
                       Error);
  CHECK_THROWS_WITH_AS(k::kl_div_with_temperature_backward(Tensor::scalar(1.0), x, x.to(DType::f64), 1.0),
                       doctest::Contains("kl_div_with_temperature backward: mixed dtypes"), Error);
}
