// The UNet learns: it overfits a small synthetic volume with two shapes to a high Dice.
#include "test_util.h"
#include "tlk/nn/adam.h"
#include "tlk/nn/deep_supervision_loss.h"
#include "tlk/nn/unet.h"
#include "tlk/task/metrics.h"

using namespace tlk;

TEST_CASE("Dice: overlap, empty labels give NaN, shapes must match") {
  Tensor a = Tensor::from_vector(std::vector<std::int64_t>{0, 1, 1, 2, 0, 0}, {6});
  Tensor b = Tensor::from_vector(std::vector<std::int64_t>{0, 1, 0, 2, 2, 0}, {6});
  auto d = task::dice_per_label(a, b, {1, 2, 3});
  CHECK(d[0] == doctest::Approx(2.0 / 3.0));
  CHECK(d[1] == doctest::Approx(2.0 / 3.0));
  CHECK(std::isnan(d[2]));
  CHECK(task::dice(a, a, 1) == 1.0);
  CHECK_THROWS_WITH_AS(task::dice(a, Tensor::zeros({5}), 1), doctest::Contains("differs"), Error);
  Tensor logits = Tensor::from_vector(std::vector<double>{0, 5, 1, 2, 3, 0}, {1, 3, 2});  // [N=1, C=3, 2 voxels]
  CHECK(task::argmax_channels(logits).to_doubles() == std::vector<double>{2, 0});
}

TEST_SUITE("slow") {
  TEST_CASE("UNet overfits a 32^3 volume with a ball and a box to Dice > 0.95") {
    Generator gen(11);
    const std::int64_t S = 32;
    Tensor labels = Tensor::zeros({1, S, S, S}, TensorOptions{DType::i64});
    Tensor image = randn({1, 1, S, S, S}, gen, 0, 0.3);
    {
      std::int64_t* l = labels.data<std::int64_t>();
      float* x = image.data<float>();
      for (std::int64_t d = 0; d < S; ++d)
        for (std::int64_t h = 0; h < S; ++h)
          for (std::int64_t w = 0; w < S; ++w) {
            const std::int64_t i = (d * S + h) * S + w;
            const double r2 = (d - 10) * (d - 10) + (h - 12) * (h - 12) + (w - 10) * (w - 10);
            if (r2 < 36) l[i] = 1;                                                // ball
            if (d >= 18 && d < 28 && h >= 16 && h < 26 && w >= 18 && w < 30) l[i] = 2;  // box
            x[i] += l[i] == 1 ? 1.0f : l[i] == 2 ? -1.0f : 0.0f;                  // the shapes are visible
          }
    }
    nn::UNetConfig config = nn::UNetConfig::isotropic(4, 1, 3);
    config.base_features = 8;
    config.max_features = 32;
    nn::UNet net(config, gen);
    nn::Adam opt(nn::single_group(net), nn::AdamOptions{3e-3});
    double best = 0;
    int steps = 0;
    for (; steps < 150 && best <= 0.95; ++steps) {
      opt.zero_grad();
      Tensor loss = nn::deep_supervision_loss(net.forward(image), labels, net.deep_supervision_weights());
      loss.backward();
      opt.step();
      if (steps % 10 == 9) {
        NoGradGuard guard;
        auto d = task::dice_per_label(task::argmax_channels(net.forward(image)[0]), labels, {1, 2});
        best = std::min(d[0], d[1]);
      }
    }
    MESSAGE("steps: " << steps << ", lowest class Dice: " << best);
    CHECK(best > 0.95);
  }
}
