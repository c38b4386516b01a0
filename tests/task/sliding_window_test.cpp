#include "tlk/task/sliding_window.h"

#include <cmath>

#include "test_util.h"

using namespace tlk;
using task::SlidingWindowOptions;
using testing::max_abs_diff;

namespace {

using Int3 = std::array<std::int64_t, 3>;

// A plain f32 copy of a 5-D tensor [N, C, D, H, W] flipped along the spatial axes marked in `flip`.
Tensor flipped(const Tensor& t, std::array<bool, 3> flip) {
  const Tensor x = t.to(Layout::plain).to(DType::f32).contiguous();
  const Shape& s = x.shape();
  Tensor out = Tensor::empty(s);
  const float* in = x.data<float>();
  float* o = out.data<float>();
  const std::int64_t D = s[2], H = s[3], W = s[4];
  for (std::int64_t nc = 0; nc < s[0] * s[1]; ++nc)
    for (std::int64_t z = 0; z < D; ++z)
      for (std::int64_t y = 0; y < H; ++y)
        for (std::int64_t w = 0; w < W; ++w) {
          const std::int64_t sz = flip[0] ? D - 1 - z : z, sy = flip[1] ? H - 1 - y : y, sw = flip[2] ? W - 1 - w : w;
          o[((nc * D + z) * H + y) * W + w] = in[((nc * D + sz) * H + sy) * W + sw];
        }
  return out;
}

// Softmax probabilities [K, D, H, W] of running `net` on the whole image [C, D, H, W] at once.
Tensor whole_volume(const task::SegmentationNetwork& net, const Tensor& image) {
  NoGradGuard no_grad;
  const Shape& s = image.shape();
  Tensor logits = net(image.reshape({1, s[0], s[1], s[2], s[3]}));
  Tensor probs = ops::softmax(logits.to(Layout::plain), 1);
  return probs.reshape({probs.size(1), s[1], s[2], s[3]}).contiguous();
}

// A convolution with random (so asymmetric) weights and biases as a SegmentationNetwork.
struct ConvNet {
  std::shared_ptr<nn::Conv3d> conv;
  ConvNet(std::int64_t in, std::int64_t classes, std::int64_t kernel, Generator& gen) {
    conv = std::make_shared<nn::Conv3d>(in, classes, nn::ConvOptions{}.with_kernel({kernel, kernel, kernel}), gen);
    NoGradGuard no_grad;
    conv->bias.copy_(randn(conv->bias.shape(), gen));
  }
  task::SegmentationNetwork fn() const {
    auto c = conv;
    return [c](const Tensor& x) { return c->forward(x); };
  }
};

SlidingWindowOptions options(Int3 patch, bool mirror, int batch = 1) {
  SlidingWindowOptions o;
  o.patch = patch;
  o.mirror = mirror;
  o.batch = batch;
  return o;
}

// The message of the tlk::Error that `f` throws ("" when it throws none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("sliding_window_starts: nnUNet's evenly spread steps") {
  using V = std::vector<std::int64_t>;
  auto starts = task::sliding_window_starts({100, 64, 40}, {64, 64, 64}, 0.5);
  REQUIRE(starts.size() == 3);
  CHECK(starts[0] == V{0, 18, 36});  // ceil(36 / 32) + 1 = 3 steps of 18
  CHECK(starts[1] == V{0});          // equal to the patch
  CHECK(starts[2] == V{0});          // smaller than the patch: padded to it
  starts = task::sliding_window_starts({65, 128, 129}, {64, 64, 64}, 1.0);
  CHECK(starts[0] == V{0, 1});
  CHECK(starts[1] == V{0, 64});
  CHECK(starts[2] == V{0, 32, 65});  // 32.5 rounds half to even, as numpy's round
  starts = task::sliding_window_starts({200, 10, 11}, {128, 3, 5}, 0.5);
  CHECK(starts[0] == V{0, 36, 72});
  CHECK(starts[1] == V{0, 1, 3, 4, 6, 7});  // ceil(7 / 1.5) + 1 = 6 steps of 1.4, rounded
  CHECK(starts[2] == V{0, 2, 4, 6});
  CHECK_THROWS_AS(task::sliding_window_starts({10, 10, 10}, {4, 4, 4}, 1.5), Error);
}

TEST_CASE("gaussian_importance_map: peak 1, symmetric, positive, narrower with smaller sigma") {
  const Int3 patch{9, 8, 6};
  const Tensor g = task::gaussian_importance_map(patch);
  REQUIRE(g.shape() == Shape{9, 8, 6});
  auto at = [&](const Tensor& m, std::int64_t z, std::int64_t y, std::int64_t x) {
    return m.data<float>()[(z * patch[1] + y) * patch[2] + x];
  };
  float top = 0.0f, low = 1.0f;
  for (std::int64_t z = 0; z < 9; ++z)
    for (std::int64_t y = 0; y < 8; ++y)
      for (std::int64_t x = 0; x < 6; ++x) {
        const float v = at(g, z, y, x);
        top = std::max(top, v);
        low = std::min(low, v);
        CHECK(v == at(g, 8 - z, y, x));
        CHECK(v == at(g, z, 7 - y, x));
        CHECK(v == at(g, z, y, 5 - x));
      }
  CHECK(top == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(low > 0.0f);
  // σ = 9/8 along D: one voxel off the centre weighs exp(-1 / (2 σ²)) of it.
  CHECK(at(g, 3, 3, 2) / at(g, 4, 3, 2) == doctest::Approx(std::exp(-1.0 / (2.0 * 1.125 * 1.125))).epsilon(1e-5));
  // A smaller σ concentrates the weight in the middle.
  const Tensor narrow = task::gaussian_importance_map(patch, 1.0 / 16.0);
  CHECK(at(narrow, 2, 3, 2) < 0.5f * at(g, 2, 3, 2));
  CHECK(at(narrow, 4, 3, 2) == doctest::Approx(at(g, 4, 3, 2)));
  // σ = 0.64 on a 64 patch cuts off past 3 voxels: the zeros become the smallest nonzero value.
  const Tensor cut = task::gaussian_importance_map({64, 1, 1}, 0.01);
  const float* c = cut.data<float>();
  CHECK(c[0] > 0.0f);
  CHECK(c[0] == c[20]);
  CHECK(c[0] == c[63]);
  CHECK(c[0] == *std::min_element(c + 28, c + 36));
  CHECK(c[28] == c[35]);  // the smallest value the Gaussian itself gives, 3.5 voxels out
  CHECK(error_of([] { task::gaussian_importance_map({4, 4, 0}); }).find("patch") != std::string::npos);
}

TEST_CASE("a pointwise network tiled with Gaussian weights equals one run on the whole volume") {
  Generator gen(3);
  ConvNet net(2, 3, 1, gen);  // 1x1x1: every voxel's logits depend on that voxel only
  const Tensor image = randn({2, 13, 10, 17}, gen);
  const Tensor expected = whole_volume(net.fn(), image);
  for (bool mirror : {false, true}) {
    CAPTURE(mirror);
    const Tensor probs = task::predict_sliding_window(net.fn(), image, 3, options({8, 6, 8}, mirror));
    REQUIRE(probs.shape() == Shape{3, 13, 10, 17});
    CHECK(max_abs_diff(probs, expected) < 1e-5);  // f32 sums over up to 8 windows x 8 mirrorings
  }
}

TEST_CASE("stitching matches a direct weighted sum over the windows (3x3x3 conv, zero-padded windows)") {
  Generator gen(4);
  ConvNet net(1, 2, 3, gen);
  const Tensor image = randn({1, 11, 7, 10}, gen);
  const Int3 patch{6, 7, 4};
  const Tensor g = task::gaussian_importance_map(patch);
  const auto starts = task::sliding_window_starts({11, 7, 10}, patch, 0.5);
  CHECK(starts[0].size() == 3);
  CHECK(starts[2].size() == 4);
  std::vector<double> sum(2 * 11 * 7 * 10, 0.0), weight(11 * 7 * 10, 0.0);
  for (std::int64_t z0 : starts[0])
    for (std::int64_t y0 : starts[1])
      for (std::int64_t x0 : starts[2]) {
        Tensor window = image.narrow(1, z0, patch[0]).narrow(2, y0, patch[1]).narrow(3, x0, patch[2]).contiguous();
        const std::vector<double> p = whole_volume(net.fn(), window).to_doubles();
        const std::vector<double> w = g.to_doubles();
        for (std::int64_t z = 0; z < patch[0]; ++z)
          for (std::int64_t y = 0; y < patch[1]; ++y)
            for (std::int64_t x = 0; x < patch[2]; ++x) {
              const std::int64_t v = ((z0 + z) * 7 + (y0 + y)) * 10 + (x0 + x), u = (z * patch[1] + y) * patch[2] + x;
              weight[v] += w[u];
              for (int k = 0; k < 2; ++k) sum[k * 770 + v] += w[u] * p[k * 168 + u];
            }
      }
  for (std::size_t i = 0; i < sum.size(); ++i) sum[i] /= weight[i % 770];
  const Tensor probs = task::predict_sliding_window(net.fn(), image, 2, options(patch, false));
  CHECK(max_abs_diff(probs, Tensor::from_doubles(sum, {2, 11, 7, 10})) < 1e-5);
  // Uniform weights are a plain average, which differs from the Gaussian one where windows overlap.
  SlidingWindowOptions uniform = options(patch, false);
  uniform.gaussian = false;
  CHECK(max_abs_diff(task::predict_sliding_window(net.fn(), image, 2, uniform), probs) > 1e-4);
}

TEST_CASE("mirroring averages the softmax of all flipped runs, flipped back") {
  Generator gen(5);
  ConvNet net(1, 2, 3, gen);  // random 3x3x3 kernel: not symmetric under any flip
  const Tensor image = randn({1, 8, 8, 8}, gen);
  const Tensor x = image.reshape({1, 1, 8, 8, 8});
  auto average = [&](const std::vector<int>& axes) {
    Tensor total = Tensor::zeros({1, 2, 8, 8, 8});
    const int n = 1 << axes.size();
    for (int m = 0; m < n; ++m) {
      std::array<bool, 3> flip{false, false, false};
      for (std::size_t j = 0; j < axes.size(); ++j) flip[axes[j]] = (m >> j) & 1;
      NoGradGuard no_grad;
      Tensor p = flipped(ops::softmax(net.conv->forward(flipped(x, flip)).to(Layout::plain), 1), flip);
      total = ops::add(total, p);
    }
    return ops::mul(total, Tensor::scalar(1.0 / n)).reshape({2, 8, 8, 8});
  };
  const Tensor all = task::predict_sliding_window(net.fn(), image, 2, options({8, 8, 8}, true));
  CHECK(max_abs_diff(all, average({0, 1, 2})) < 1e-6);
  SlidingWindowOptions only_h = options({8, 8, 8}, true);
  only_h.mirror_axes = {1};
  CHECK(max_abs_diff(task::predict_sliding_window(net.fn(), image, 2, only_h), average({1})) < 1e-6);
  // The flips matter for this network, so the test above can fail.
  CHECK(max_abs_diff(all, average({})) > 1e-3);
}

TEST_CASE("probabilities sum to 1 per voxel; batches of windows give the batch-1 result") {
  Generator gen(6);
  ConvNet net(1, 4, 3, gen);
  const Tensor image = randn({1, 11, 9, 14}, gen);
  const Tensor one = task::predict_sliding_window(net.fn(), image, 4, options({6, 6, 8}, true, 1));
  const std::vector<double> p = one.to_doubles();
  const std::int64_t voxels = 11 * 9 * 14;
  double worst = 0.0;
  for (std::int64_t v = 0; v < voxels; ++v) {
    double s = 0.0;
    for (int k = 0; k < 4; ++k) s += p[k * voxels + v];
    worst = std::max(worst, std::abs(s - 1.0));
  }
  CHECK(worst < 1e-5);
  for (int batch : {3, 64}) {
    CAPTURE(batch);
    CHECK(max_abs_diff(task::predict_sliding_window(net.fn(), image, 4, options({6, 6, 8}, true, batch)), one) < 1e-6);
  }
}

TEST_CASE("an image smaller than the patch is padded symmetrically with zeros and cropped back") {
  Generator gen(7);
  ConvNet net(1, 2, 3, gen);
  // Logits that also depend on the position in the window, so where the image sits in it matters.
  const Tensor ramp = randn({1, 2, 8, 8, 8}, gen);
  task::SegmentationNetwork positional = [&](const Tensor& x) {
    return ops::add(net.conv->forward(x).to(Layout::plain), ramp);
  };
  const Tensor image = randn({1, 5, 8, 3}, gen);
  // nnUNet's pad_nd_image: below = diff / 2, above = the rest -> D (1, 2), H (0, 0), W (2, 3).
  Tensor padded = Tensor::zeros({1, 8, 8, 8});
  padded.narrow(1, 1, 5).narrow(3, 2, 3).copy_(image);
  const Tensor expected = whole_volume(positional, padded).narrow(1, 1, 5).narrow(3, 2, 3);
  const Tensor probs = task::predict_sliding_window(positional, image, 2, options({8, 8, 8}, false));
  REQUIRE(probs.shape() == Shape{2, 5, 8, 3});
  CHECK(max_abs_diff(probs, expected) < 1e-6);
  // Larger than the patch along one axis, smaller along the others.
  const Tensor wide = randn({1, 20, 4, 5}, gen);
  ConvNet point(1, 2, 1, gen);
  CHECK(max_abs_diff(task::predict_sliding_window(point.fn(), wide, 2, options({8, 8, 8}, true)),
                     whole_volume(point.fn(), wide)) < 1e-6);
}

TEST_CASE("predict_sliding_window with a UNet; deep supervision is restored") {
  Generator gen(8);
  nn::UNetConfig config = nn::UNetConfig::isotropic(2, 1, 3);
  config.base_features = 4;
  nn::UNet net(config, gen);
  net.eval();
  const Tensor image = randn({1, 12, 10, 9}, gen);
  SlidingWindowOptions opt = options({8, 8, 8}, false, 2);
  const Tensor probs = task::predict_sliding_window(net, image, opt);
  REQUIRE(probs.shape() == Shape{3, 12, 10, 9});
  CHECK(net.config().deep_supervision);
  CHECK(max_abs_diff(probs, task::predict_sliding_window(task::unet_logits(net), image, 3, opt)) == 0.0);
  const std::vector<double> p = probs.to_doubles();
  for (std::int64_t v = 0; v < 12 * 10 * 9; v += 37)
    CHECK(p[v] + p[v + 1080] + p[v + 2160] == doctest::Approx(1.0).epsilon(1e-5));
  opt.patch = {7, 8, 8};
  CHECK(error_of([&] { task::predict_sliding_window(net, image, opt); }).find("total stride [2, 2, 2]") !=
        std::string::npos);
  CHECK(error_of([&] {
          task::predict_sliding_window(net, randn({2, 8, 8, 8}, gen), options({8, 8, 8}, false));
        }).find("[1, D, H, W]") != std::string::npos);
}

TEST_CASE("bad network outputs and options are clear errors") {
  Generator gen(9);
  const Tensor image = randn({1, 8, 8, 8}, gen);
  ConvNet net(1, 2, 1, gen);
  const std::string wrong_classes = error_of([&] {
    task::predict_sliding_window(net.fn(), image, 3, options({4, 4, 4}, false));
  });
  CHECK(wrong_classes.find("predict_sliding_window") != std::string::npos);
  CHECK(wrong_classes.find("[1, 2, 4, 4, 4], expected logits [1, 3, 4, 4, 4]") != std::string::npos);
  auto shrink = [&](const Tensor& x) { return net.conv->forward(x).narrow(2, 0, 2); };
  CHECK(error_of([&] {
          task::predict_sliding_window(shrink, image, 2, options({4, 4, 4}, false));
        }).find("expected logits [1, 2, 4, 4, 4]") != std::string::npos);
  SlidingWindowOptions bad = options({4, 4, 4}, false);
  bad.step = 0.0;
  CHECK(error_of([&] { task::predict_sliding_window(net.fn(), image, 2, bad); }).find("step") != std::string::npos);
  bad = options({4, 4, 4}, false, 0);
  CHECK(error_of([&] { task::predict_sliding_window(net.fn(), image, 2, bad); }).find("batch") != std::string::npos);
  bad = options({4, 4, 4}, true);
  bad.mirror_axes = {0, 3};
  CHECK(error_of([&] { task::predict_sliding_window(net.fn(), image, 2, bad); }).find("mirror") != std::string::npos);
  CHECK(error_of([&] {
          task::predict_sliding_window(net.fn(), randn({8, 8, 8}, gen), 2, options({4, 4, 4}, false));
        }).find("[C, D, H, W]") != std::string::npos);
}
