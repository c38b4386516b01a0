// The CUDA softmax and loss kernels (cross entropy, BCE on logits, distillation KL, MSE, soft Dice)
// against the reference, forward and backward, in f64 and f32, on odd shapes with C = 2, 3, 16 and
// batch 1 and 3, and every target form the reference takes.
#include <cmath>
#include <string>
#include <vector>

#include "compare_to_ref.h"
#include "cuda_test_util.h"
#include "tlk/kernels/cuda/losses.h"
#include "tlk/kernels/cuda/softmax.h"
#include "tlk/kernels/ref/losses.h"
#include "tlk/kernels/ref/soft_dice.h"
#include "tlk/kernels/ref/softmax.h"

using namespace tlk;
namespace cuda_k = kernels::cuda;
namespace ref = kernels::ref;
using testing::check_matches;
using testing::to_gpu;
using testing::tolerance;

namespace {

const DType kDtypes[] = {DType::f64, DType::f32};

Tensor random(const Shape& shape, Generator& gen, DType dtype, double stddev = 1.0) {
  return randn(shape, gen, 0.0, stddev, TensorOptions{DType::f64}).to(dtype);
}

Tensor uniform(const Shape& shape, Generator& gen, DType dtype, double low, double high) {
  return rand(shape, gen, low, high, TensorOptions{DType::f64}).to(dtype);
}

// Random class indices in [0, classes) of `dtype`; about `ignored` of them replaced by `ignore`.
Tensor random_labels(const Shape& shape, std::int64_t classes, Generator& gen, DType dtype, double ignored = 0.0,
                     std::int64_t ignore = -100) {
  const std::vector<double> u = rand(shape, gen, 0.0, 1.0, TensorOptions{DType::f64}).to_doubles();
  const std::vector<double> v = rand(shape, gen, 0.0, 1.0, TensorOptions{DType::f64}).to_doubles();
  std::vector<double> out(u.size());
  for (std::size_t i = 0; i < u.size(); ++i)
    out[i] = v[i] < ignored
                 ? static_cast<double>(ignore)
                 : std::min(static_cast<double>(classes - 1), std::floor(u[i] * static_cast<double>(classes)));
  return Tensor::from_doubles(out, shape, dtype);
}

// The one-hot [N, C, ...] encoding of labels [N, ...] in `dtype`.
Tensor one_hot(const Tensor& labels, const Shape& logits_shape, DType dtype) {
  const std::vector<double> l = labels.to_doubles();
  const std::int64_t n = logits_shape[0], c = logits_shape[1], s = logits_shape.numel() / (n * c);
  std::vector<double> out(static_cast<std::size_t>(logits_shape.numel()), 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t k = 0; k < s; ++k)
      out[static_cast<std::size_t>((i * c + static_cast<std::int64_t>(l[static_cast<std::size_t>(i * s + k)])) * s +
                                   k)] = 1.0;
  return Tensor::from_doubles(out, logits_shape, dtype);
}

// [N, ...spatial] of logits [N, C, ...spatial]; with `keep_channel`, [N, 1, ...spatial].
Shape label_shape(const Shape& logits, bool keep_channel) {
  Shape out{logits[0]};
  if (keep_channel) out.push_back(1);
  for (int i = 2; i < logits.size(); ++i) out.push_back(logits[i]);
  return out;
}

Tensor grad_scalar(double v, DType dtype) { return Tensor::scalar(v, TensorOptions{dtype}); }

std::string label(const std::string& what, const Shape& shape, DType dtype) {
  return fmt::format("{} {} {}", what, shape.str(), dtype_name(dtype));
}

}  // namespace

TEST_CASE("cuda softmax and log_softmax match the reference along any axis") {
  TLK_REQUIRE_GPU();
  Generator gen(11);
  struct Case {
    Shape shape;
    int dim;
  };
  // dim 1 of [N, C, D, H, W] with C = 2, 3, 16 (the UNet's case), the last axis of [N, classes] with
  // few and many classes (the warp-per-line kernel), and inner axes.
  const std::vector<Case> cases = {{{3, 3, 4, 5, 6}, 1}, {{1, 2, 7, 3, 5}, 1}, {{3, 16, 3, 5, 7}, 1}, {{5, 10}, 1},
                                   {{5, 100}, -1},       {{2, 3, 4, 5}, 2},    {{3, 4, 70}, -1},      {{1, 1000}, 1}};
  for (DType dtype : kDtypes) {
    for (const Case& c : cases) {
      for (bool log : {false, true}) {
        const Tensor x = random(c.shape, gen, dtype, 3.0), dy = random(c.shape, gen, dtype);
        const std::string what = label(log ? "log_softmax" : "softmax", c.shape, dtype) + fmt::format(" dim {}", c.dim);
        const Tensor y = log ? ref::log_softmax_forward(x, c.dim) : ref::softmax_forward(x, c.dim);
        const Tensor yg =
            log ? cuda_k::log_softmax_forward(to_gpu(x), c.dim) : cuda_k::softmax_forward(to_gpu(x), c.dim);
        check_matches(yg, y, tolerance(dtype), what + " forward");
        const Tensor dx = log ? ref::log_softmax_backward(dy, y, c.dim) : ref::softmax_backward(dy, y, c.dim);
        const Tensor dxg = log ? cuda_k::log_softmax_backward(to_gpu(dy), to_gpu(y), c.dim)
                               : cuda_k::softmax_backward(to_gpu(dy), to_gpu(y), c.dim);
        check_matches(dxg, dx, tolerance(dtype), what + " backward");
      }
    }
  }
}

TEST_CASE("cuda cross_entropy matches the reference for every target form and option") {
  TLK_REQUIRE_GPU();
  Generator gen(22);
  struct Case {
    Shape logits;
    DType label_dtype;
    bool keep_channel;  // target [N, 1, ...] instead of [N, ...]
  };
  const std::vector<Case> cases = {{{3, 3, 4, 5, 6}, DType::i64, false},
                                   {{1, 2, 7, 3, 5}, DType::i32, true},
                                   {{3, 16, 5, 3, 3}, DType::u8, false},
                                   {{5, 4}, DType::i64, false},
                                   {{2, 3, 9}, DType::u8, true}};
  for (DType dtype : kDtypes) {
    for (const Case& c : cases) {
      for (int variant = 0; variant < 3; ++variant) {  // plain, class weights, weights + ignore_index 255
        const std::int64_t classes = c.logits[1];
        CrossEntropyOptions opt;
        if (variant >= 1) opt = opt.with_weight(uniform({classes}, gen, dtype, 0.2, 3.0));
        if (variant == 2) opt = opt.with_ignore_index(255);
        const Tensor x = random(c.logits, gen, dtype, 2.0);
        const Tensor t = random_labels(label_shape(c.logits, c.keep_channel), classes, gen, c.label_dtype,
                                       variant == 2 ? 0.2 : 0.0, 255);
        CrossEntropyOptions gpu_opt = opt;
        if (opt.weight.defined()) gpu_opt.weight = to_gpu(opt.weight);
        const std::string what = label(
            fmt::format("cross_entropy variant {} labels {}", variant, dtype_name(c.label_dtype)), c.logits, dtype);
        check_matches(cuda_k::cross_entropy_forward(to_gpu(x), to_gpu(t), gpu_opt),
                      ref::cross_entropy_forward(x, t, opt), tolerance(dtype), what + " forward");
        const Tensor g = grad_scalar(0.7, dtype);
        check_matches(cuda_k::cross_entropy_backward(to_gpu(g), to_gpu(x), to_gpu(t), gpu_opt),
                      ref::cross_entropy_backward(g, x, t, opt), tolerance(dtype), what + " backward");
      }
    }
  }
}

TEST_CASE("cuda cross_entropy: all targets ignored gives NaN and a zero gradient; bad labels throw") {
  TLK_REQUIRE_GPU();
  Generator gen(33);
  const Tensor x = to_gpu(random({2, 3, 4, 5}, gen, DType::f64));
  const Tensor ignored = to_gpu(Tensor::full({2, 4, 5}, 7.0, TensorOptions{DType::i64}));
  const CrossEntropyOptions opt = CrossEntropyOptions{}.with_ignore_index(7);
  CHECK(std::isnan(cuda_k::cross_entropy_forward(x, ignored, opt).item()));
  const Tensor dx = cuda_k::cross_entropy_backward(to_gpu(grad_scalar(1.0, DType::f64)), x, ignored, opt);
  for (double v : dx.to_doubles()) REQUIRE(v == 0.0);

  std::vector<double> labels(40, 1.0);
  labels[13] = 3.0;  // out of range for 3 classes
  const Tensor bad = to_gpu(Tensor::from_doubles(labels, {2, 4, 5}, DType::i64));
  CHECK_THROWS_WITH_AS(cuda_k::cross_entropy_forward(x, bad, {}),
                       doctest::Contains("target value 3 (element 13) is out of range"), Error);
  CHECK_THROWS_AS(cuda_k::cross_entropy_backward(to_gpu(grad_scalar(1.0, DType::f64)), x, bad, {}), Error);
  labels[13] = -1.0;
  CHECK_THROWS_AS(cuda_k::cross_entropy_forward(x, to_gpu(Tensor::from_doubles(labels, {2, 4, 5}, DType::i32)), {}),
                  Error);
  // Floating labels, a CPU target and a wrongly shaped target are rejected before any kernel runs.
  CHECK_THROWS_AS(cuda_k::cross_entropy_forward(x, to_gpu(Tensor::zeros({2, 4, 5}, TensorOptions{DType::f64})), {}),
                  Error);
  CHECK_THROWS_AS(cuda_k::cross_entropy_forward(x, Tensor::zeros({2, 4, 5}, TensorOptions{DType::i64}), {}), Error);
  CHECK_THROWS_AS(cuda_k::cross_entropy_forward(x, to_gpu(Tensor::zeros({2, 5, 4}, TensorOptions{DType::i64})), {}),
                  Error);
}

TEST_CASE("cuda bce_with_logits matches the reference with and without pos_weight") {
  TLK_REQUIRE_GPU();
  Generator gen(44);
  for (DType dtype : kDtypes) {
    for (const Shape& shape : {Shape{3, 3, 4, 5, 6}, Shape{1, 2, 7}, Shape{5, 16}}) {
      for (int variant = 0; variant < 3; ++variant) {  // none, one-element pos_weight, per-class [C]
        BceOptions opt;
        if (variant == 1) opt = opt.with_pos_weight(uniform({}, gen, dtype, 0.5, 4.0));
        if (variant == 2) opt = opt.with_pos_weight(uniform({shape[1]}, gen, dtype, 0.5, 4.0));
        BceOptions gpu_opt = opt;
        if (opt.pos_weight.defined()) gpu_opt.pos_weight = to_gpu(opt.pos_weight);
        const Tensor x = random(shape, gen, dtype, 3.0), y = uniform(shape, gen, dtype, 0.0, 1.0);
        const std::string what = label(fmt::format("bce_with_logits variant {}", variant), shape, dtype);
        check_matches(cuda_k::bce_with_logits_forward(to_gpu(x), to_gpu(y), gpu_opt),
                      ref::bce_with_logits_forward(x, y, opt), tolerance(dtype), what + " forward");
        const Tensor g = grad_scalar(-1.3, dtype);
        const auto e = ref::bce_with_logits_backward(g, x, y, opt, true, true);
        const auto got = cuda_k::bce_with_logits_backward(to_gpu(g), to_gpu(x), to_gpu(y), gpu_opt, true, true);
        check_matches(got[0], e[0], tolerance(dtype), what + " grad logits");
        check_matches(got[1], e[1], tolerance(dtype), what + " grad target");
        const auto only_logits = cuda_k::bce_with_logits_backward(to_gpu(g), to_gpu(x), to_gpu(y), gpu_opt);
        CHECK_FALSE(only_logits[1].defined());
        check_matches(only_logits[0], e[0], tolerance(dtype), what + " grad logits only");
      }
    }
  }
}

TEST_CASE("cuda kl_div_with_temperature and mse_loss match the reference") {
  TLK_REQUIRE_GPU();
  Generator gen(55);
  for (DType dtype : kDtypes) {
    for (const Shape& shape : {Shape{3, 3, 4, 5}, Shape{1, 16, 7}, Shape{3, 2, 3, 5, 3}}) {
      for (double temperature : {1.0, 2.5}) {
        const Tensor s = random(shape, gen, dtype, 2.0), t = random(shape, gen, dtype, 2.0);
        const std::string what = label(fmt::format("kl_div T={}", temperature), shape, dtype);
        check_matches(cuda_k::kl_div_with_temperature_forward(to_gpu(s), to_gpu(t), temperature),
                      ref::kl_div_with_temperature_forward(s, t, temperature), tolerance(dtype), what + " forward");
        const Tensor g = grad_scalar(0.9, dtype);
        check_matches(cuda_k::kl_div_with_temperature_backward(to_gpu(g), to_gpu(s), to_gpu(t), temperature),
                      ref::kl_div_with_temperature_backward(g, s, t, temperature), tolerance(dtype),
                      what + " backward");
        // With position weights (voxel KD over a region): some zero, some not.
        Shape weight_shape{shape[0]};
        for (int i = 2; i < shape.size(); ++i) weight_shape.push_back(shape[i]);
        Tensor w = tlk::rand(weight_shape, gen, 0.0, 2.0, TensorOptions{}.with(DType::f64));
        w.narrow(0, 0, 1).fill_(0.0);
        check_matches(cuda_k::kl_div_with_temperature_forward(to_gpu(s), to_gpu(t), temperature, w),
                      ref::kl_div_with_temperature_forward(s, t, temperature, w), tolerance(dtype),
                      what + " weighted forward");
        check_matches(cuda_k::kl_div_with_temperature_backward(to_gpu(g), to_gpu(s), to_gpu(t), temperature, w),
                      ref::kl_div_with_temperature_backward(g, s, t, temperature, w), tolerance(dtype),
                      what + " weighted backward");
      }
      const Tensor a = random(shape, gen, dtype), b = random(shape, gen, dtype);
      const std::string what = label("mse_loss", shape, dtype);
      check_matches(cuda_k::mse_loss_forward(to_gpu(a), to_gpu(b)), ref::mse_loss_forward(a, b), tolerance(dtype),
                    what + " forward");
      const Tensor g = grad_scalar(1.7, dtype);
      check_matches(cuda_k::mse_loss_backward(to_gpu(g), to_gpu(a), to_gpu(b)), ref::mse_loss_backward(g, a, b),
                    tolerance(dtype), what + " backward");
    }
  }
}

TEST_CASE("cuda soft_dice matches the reference: labels and one-hot targets, batch_dice, background, softmax") {
  TLK_REQUIRE_GPU();
  Generator gen(66);
  struct Case {
    Shape logits;
    DType label_dtype;
    bool keep_channel;
  };
  // The 40^3 case splits every (n, c) row over several blocks.
  const std::vector<Case> cases = {{{3, 3, 5, 6, 7}, DType::i64, false},
                                   {{1, 2, 40, 40, 40}, DType::u8, false},
                                   {{3, 16, 3, 4, 5}, DType::i32, true},
                                   {{3, 2, 9}, DType::i64, true}};
  for (DType dtype : kDtypes) {
    for (const Case& c : cases) {
      const Tensor labels = random_labels(label_shape(c.logits, c.keep_channel), c.logits[1], gen, c.label_dtype);
      const Tensor onehot = one_hot(labels, c.logits, dtype);
      const Tensor soft = uniform(c.logits, gen, dtype, 0.0, 1.0);
      for (int target_kind = 0; target_kind < 3; ++target_kind) {  // integer labels, one-hot, soft target
        const Tensor t = target_kind == 0 ? labels : target_kind == 1 ? onehot : soft;
        for (int flags = 0; flags < 8; ++flags) {
          const SoftDiceOptions opt = SoftDiceOptions{}
                                          .with_batch_dice(flags & 1)
                                          .with_do_background(flags & 2)
                                          .with_apply_softmax(!(flags & 4))
                                          .with_smooth(flags & 1 ? 1e-5 : 1.0);
          // Without the softmax the input is taken as probabilities: give it softmax outputs.
          const Tensor raw = random(c.logits, gen, dtype, 2.0);
          const Tensor x = opt.apply_softmax ? raw : ref::softmax_forward(raw, 1);
          const std::string what = label(fmt::format("soft_dice target {} batch_dice {} do_background {} softmax {}",
                                                     target_kind, opt.batch_dice, opt.do_background, opt.apply_softmax),
                                         c.logits, dtype);
          check_matches(cuda_k::soft_dice_forward(to_gpu(x), to_gpu(t), opt), ref::soft_dice_forward(x, t, opt),
                        tolerance(dtype), what + " forward");
          const Tensor g = grad_scalar(0.8, dtype);
          check_matches(cuda_k::soft_dice_backward(to_gpu(g), to_gpu(x), to_gpu(t), opt),
                        ref::soft_dice_backward(g, x, t, opt), tolerance(dtype), what + " backward");
        }
      }
    }
  }
}

TEST_CASE("cuda soft_dice rejects out-of-range labels and a single channel without background") {
  TLK_REQUIRE_GPU();
  Generator gen(77);
  const Tensor x = to_gpu(random({2, 3, 4, 5}, gen, DType::f64));
  std::vector<double> labels(40, 2.0);
  labels[31] = 5.0;
  CHECK_THROWS_WITH_AS(cuda_k::soft_dice_forward(x, to_gpu(Tensor::from_doubles(labels, {2, 4, 5}, DType::u8)), {}),
                       doctest::Contains("target label 5 (element 31) is out of range"), Error);
  const Tensor one = to_gpu(random({2, 1, 4, 5}, gen, DType::f64));
  CHECK_THROWS_AS(cuda_k::soft_dice_forward(one, to_gpu(Tensor::zeros({2, 4, 5}, TensorOptions{DType::i64})), {}),
                  Error);
}
