// Teacher output cache and the Distiller (tlk/transfer/teacher_cache.h, distiller.h).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "test_util.h"
#include "tlk/nn/linear.h"
#include "tlk/transfer/distiller.h"
#include "tlk/transfer/teacher_cache.h"

using namespace tlk;
using transfer::CacheFormat;
using transfer::TeacherCache;
using transfer::TeacherCacheKey;

namespace {

/// softmax(x / T) along axis 1 of [N, K, ...], in f64.
std::vector<double> softmax_ref(const Tensor& x, double temp) {
  const auto v = x.to_doubles();
  const std::int64_t n = x.size(0), k = x.size(1), s = x.numel() / (n * k);
  std::vector<double> out(v.size());
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < s; ++j) {
      double m = -1e300, sum = 0;
      for (std::int64_t c = 0; c < k; ++c) m = std::max(m, v[(i * k + c) * s + j] / temp);
      for (std::int64_t c = 0; c < k; ++c) sum += std::exp(v[(i * k + c) * s + j] / temp - m);
      for (std::int64_t c = 0; c < k; ++c) out[(i * k + c) * s + j] = std::exp(v[(i * k + c) * s + j] / temp - m) / sum;
    }
  return out;
}

/// Checks top-k replay for classification logits [N, K]: the k largest come back, the rest share the
/// leftover mass equally.
void check_top_k_replay(const Tensor& logits, const Tensor& replay, std::int64_t k, double temp) {
  const std::int64_t n = logits.size(0), classes = logits.size(1);
  REQUIRE(replay.shape() == logits.shape());
  const auto p = softmax_ref(logits, temp), r = replay.to_doubles();
  for (std::int64_t i = 0; i < n; ++i) {
    std::vector<std::int64_t> order(classes);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](auto a, auto b) { return p[i * classes + a] > p[i * classes + b]; });
    double kept = 0, total = 0;
    for (std::int64_t j = 0; j < k; ++j) {
      CHECK(r[i * classes + order[j]] == doctest::Approx(p[i * classes + order[j]]).epsilon(1e-6));
      kept += p[i * classes + order[j]];
    }
    for (std::int64_t j = k; j < classes; ++j)
      CHECK(r[i * classes + order[j]] == doctest::Approx((1 - kept) / static_cast<double>(classes - k)).epsilon(1e-5));
    for (std::int64_t c = 0; c < classes; ++c) total += r[i * classes + c];
    CHECK(total == doctest::Approx(1.0).epsilon(1e-5));
  }
}

/// A teacher that counts its forward calls.
class CountingTeacher : public nn::UnaryModule {
 public:
  CountingTeacher(std::int64_t in, std::int64_t out, Generator& gen) {
    linear = register_module("linear", std::make_shared<nn::Linear>(in, out, gen));
  }
  Tensor forward(const Tensor& x) override {
    ++calls;
    return (*linear)(x);
  }
  std::shared_ptr<nn::Linear> linear;
  int calls = 0;
};

}  // namespace

TEST_CASE("distill cache top-k: replay gives the stored top-k and a uniform remainder, before and after reopening") {
  const auto dir = testing::fresh_temp_dir("distill_cache_topk");
  Generator gen(1);
  const Tensor a = randn({3, 9}, gen, 0, 3), b = randn({2, 9}, gen, 0, 3);
  const transfer::TeacherCacheOptions opt{.format = CacheFormat::top_k, .top_k = 4, .num_classes = 9, .temperature = 2};
  {
    TeacherCache cache(dir, opt);
    CHECK_FALSE(cache.has({.sample = 0, .seed = 17}));
    cache.put({.sample = 0, .seed = 17}, a);
    cache.put({.sample = 1, .seed = 17}, b.to(DType::f64));
    CHECK(cache.has({.sample = 0, .seed = 17}));
    CHECK_FALSE(cache.has({.sample = 0, .seed = 18}));
    check_top_k_replay(a, cache.get_logits_or_probabilities({0, 17}), 4, 2.0);  // pending, not yet on disk
    cache.flush();
    CHECK(std::filesystem::exists(dir / "teacher_cache_000000.h5"));
    check_top_k_replay(a, cache.get_logits_or_probabilities({0, 17}), 4, 2.0);
  }
  TeacherCache reopened(dir, {.format = CacheFormat::top_k, .top_k = 4, .temperature = 2});
  CHECK(reopened.options().num_classes == 9);
  CHECK(reopened.size() == 2);
  check_top_k_replay(a, reopened.get_logits_or_probabilities({0, 17}), 4, 2.0);
  check_top_k_replay(b, reopened.get_logits_or_probabilities({1, 17}, Shape{2, 9}), 4, 2.0);
  // get_teacher_logits: softmax(x / T) gives back the replayed probabilities.
  const Tensor x = reopened.get_teacher_logits({0, 17});
  const auto px = softmax_ref(x, 2.0), pr = reopened.get_logits_or_probabilities({0, 17}).to_doubles();
  for (std::size_t i = 0; i < px.size(); ++i) CHECK(px[i] == doctest::Approx(pr[i]).epsilon(1e-5));
  // A new put goes into a second shard; the directory now holds both.
  reopened.put({.sample = 2, .seed = 5}, a);
  reopened.flush();
  CHECK(std::filesystem::exists(dir / "teacher_cache_000001.h5"));
  CHECK(TeacherCache(dir, opt).size() == 3);
}

TEST_CASE("distill cache top-k on segmentation logits; k >= K keeps everything") {
  const auto dir = testing::fresh_temp_dir("distill_cache_topk_seg");
  Generator gen(2);
  const Tensor logits = randn({2, 3, 2, 1, 3}, gen);
  TeacherCache cache(dir, {.format = CacheFormat::top_k, .top_k = 5, .temperature = 1});
  cache.put({3, 4}, logits);
  cache.flush();
  const Tensor back = TeacherCache(dir, {.format = CacheFormat::top_k, .top_k = 5, .temperature = 1})
                          .get_logits_or_probabilities({3, 4});
  REQUIRE(back.shape() == logits.shape());
  const auto p = softmax_ref(logits, 1.0), r = back.to_doubles();
  for (std::size_t i = 0; i < p.size(); ++i) CHECK(r[i] == doctest::Approx(p[i]).epsilon(1e-6));
}

TEST_CASE("distill cache full logits: exact round trip; u8 probabilities within quantisation") {
  const auto dir = testing::fresh_temp_dir("distill_cache_logits");
  Generator gen(3);
  const Tensor logits = randn({2, 4, 3, 2, 3}, gen, 0, 5);
  {
    TeacherCache cache(dir, {.format = CacheFormat::logits});
    cache.put({-1, 9}, logits);
  }  // the destructor flushes
  TeacherCache cache(dir, {.format = CacheFormat::logits, .num_classes = 4});
  const Tensor back = cache.get_teacher_logits({-1, 9});
  CHECK(back.dtype() == DType::f32);
  CHECK(back.shape() == logits.shape());
  CHECK(testing::max_abs_diff(back, logits) == 0.0);

  const auto dir8 = testing::fresh_temp_dir("distill_cache_u8");
  TeacherCache q(dir8, {.format = CacheFormat::probabilities_u8, .temperature = 3});
  q.put({0, 0}, logits);
  q.flush();
  const Tensor probs = TeacherCache(dir8, {.format = CacheFormat::probabilities_u8, .temperature = 3})
                           .get_logits_or_probabilities({0, 0});
  const auto p = softmax_ref(logits, 3.0), r = probs.to_doubles();
  double worst = 0;
  for (std::size_t i = 0; i < p.size(); ++i) worst = std::max(worst, std::abs(p[i] - r[i]));
  CHECK(worst < 4.0 / 255.0);
}

TEST_CASE("distill cache errors: missing key, other classes, other options, wrong shape") {
  const auto dir = testing::fresh_temp_dir("distill_cache_errors");
  Generator gen(4);
  {
    TeacherCache cache(dir, {.top_k = 3, .num_classes = 7});
    CHECK_THROWS_WITH_AS(cache.get_logits_or_probabilities({1, 2}), doctest::Contains("no entry for sample 1"), Error);
    CHECK_THROWS_WITH_AS(cache.put({0, 0}, randn({2, 5}, gen)), doctest::Contains("5 classes"), Error);
    CHECK_THROWS_AS(cache.put({0, 0}, randn({5}, gen)), Error);
    cache.put({0, 0}, randn({2, 7}, gen));
    CHECK_THROWS_WITH_AS(cache.get_logits_or_probabilities({0, 0}, Shape{3, 7}), doctest::Contains("shape"), Error);
    // Putting a key again replaces it.
    cache.put({0, 0}, randn({4, 7}, gen));
    CHECK(cache.get_logits_or_probabilities({0, 0}).shape() == Shape{4, 7});
    CHECK(cache.size() == 1);
  }
  CHECK_THROWS_WITH_AS(TeacherCache(dir, {.top_k = 3, .num_classes = 5}), doctest::Contains("classes"), Error);
  CHECK_THROWS_WITH_AS(TeacherCache(dir, {.top_k = 2}), doctest::Contains("top_k"), Error);
  CHECK_THROWS_WITH_AS(TeacherCache(dir, {.format = CacheFormat::logits}), doctest::Contains("format"), Error);
  CHECK_THROWS_WITH_AS(TeacherCache(dir, {.top_k = 3, .temperature = 1}), doctest::Contains("temperature"), Error);
  CHECK_THROWS_AS(TeacherCache(dir, {.top_k = 0}), Error);
  CHECK(TeacherCache(dir, {.top_k = 3}).has({0, 0}));
}

TEST_CASE("distill Distiller: frozen teacher, no graph, cache replay instead of a second teacher run") {
  Generator gen(5);
  auto teacher = std::make_shared<CountingTeacher>(6, 5, gen);
  const auto dir = testing::fresh_temp_dir("distill_distiller");
  auto cache = std::make_shared<TeacherCache>(dir, transfer::TeacherCacheOptions{.format = CacheFormat::logits});
  transfer::Distiller distiller(teacher, {.loss = transfer::DistillLoss::kd, .temperature = 4.0}, cache);
  for (const auto& [name, p] : teacher->named_parameters()) CHECK_FALSE(p.requires_grad());
  CHECK_FALSE(teacher->is_training());

  const Tensor x = randn({3, 6}, gen);
  const Tensor t1 = distiller.teacher_outputs(x, TeacherCacheKey{7, 1});
  CHECK(teacher->calls == 1);
  CHECK_FALSE(t1.requires_grad());
  const Tensor t2 = distiller.teacher_outputs(x, TeacherCacheKey{7, 1});
  CHECK(teacher->calls == 1);  // replayed
  CHECK(testing::max_abs_diff(t1, t2) == 0.0);
  distiller.teacher_outputs(x);
  CHECK(teacher->calls == 2);  // no key: the teacher runs

  Tensor s = randn({3, 5}, gen);
  s.set_requires_grad();
  const Tensor y = Tensor::from_vector(std::vector<std::int64_t>{0, 4, 2}, {3});
  Tensor loss = distiller.loss(s, t2, y);
  CHECK(loss.item() == doctest::Approx(ops::kl_div_with_temperature(s, t2, 4.0).item()));
  loss.backward();
  CHECK(s.grad().defined());
  for (const auto& [name, p] : teacher->named_parameters()) CHECK_FALSE(p.grad().defined());

  // Other losses.
  transfer::Distiller dkd(teacher, {.loss = transfer::DistillLoss::dkd});
  CHECK(dkd.loss(s, t2, y, 10).item() == doctest::Approx(transfer::dkd_loss(s, t2, y, 10).item()));
  transfer::Distiller mse(teacher, {.loss = transfer::DistillLoss::mse});
  CHECK(mse.loss(s, t2).item() == doctest::Approx(transfer::logit_mse_loss(s, t2).item()));

  // A probability cache must match the loss's temperature, and cannot serve the MSE.
  auto probs = std::make_shared<TeacherCache>(testing::fresh_temp_dir("distill_distiller_p"),
                                              transfer::TeacherCacheOptions{.top_k = 2, .temperature = 2.0});
  CHECK_THROWS_WITH_AS(transfer::Distiller(teacher, {.temperature = 4.0}, probs), doctest::Contains("temperature"),
                       Error);
  CHECK_THROWS_AS(transfer::Distiller(teacher, {.loss = transfer::DistillLoss::mse}, probs), Error);
  transfer::Distiller kd2(teacher, {.temperature = 2.0}, probs);
  const Tensor tp = kd2.teacher_outputs(x, TeacherCacheKey{1, 1});
  // The replayed logits reproduce the top-2 probabilities at T = 2.
  check_top_k_replay(teacher->forward(x).detach(), probs->get_logits_or_probabilities({1, 1}), 2, 2.0);
  CHECK(tp.shape() == Shape{3, 5});
}
