#include "test_util.h"

using namespace tlk;
using testing::random_leaf;

TEST_CASE("backward accumulates through a diamond and into leaves") {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}).set_requires_grad();
  Tensor a = x * 2.0;
  Tensor b = x * x;
  Tensor loss = ops::sum(a + b);  // d/dx = 2 + 2x
  loss.backward();
  CHECK(x.grad().to_doubles() == std::vector<double>{4, 6, 8});
  // A second graph accumulates into the same gradient.
  ops::sum(x * 3.0).backward();
  CHECK(x.grad().to_doubles() == std::vector<double>{7, 9, 11});
  CHECK(x.is_leaf());
  CHECK_FALSE(loss.is_leaf());
  CHECK(std::string(loss.grad_fn()->name()) == "sum");
}

TEST_CASE("requires_grad, detach and NoGradGuard") {
  Tensor x = Tensor::ones({2}).set_requires_grad();
  Tensor c = Tensor::ones({2});
  CHECK((x + c).requires_grad());
  CHECK_FALSE((c + c).requires_grad());
  CHECK_FALSE(x.detach().requires_grad());
  {
    NoGradGuard guard;
    Tensor y = x * 2.0;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
  }
  CHECK((x * 2.0).requires_grad());
  CHECK_THROWS_WITH_AS(ops::sum(c).backward(), doctest::Contains("does not require grad"), Error);
  CHECK_THROWS_WITH_AS((x * 2.0).backward(), doctest::Contains("only one-element roots"), Error);
  CHECK_THROWS_WITH_AS((x * 2.0).set_requires_grad(), doctest::Contains("only leaf"), Error);
  CHECK_THROWS_WITH_AS(Tensor::zeros({2}, TensorOptions{DType::i64}).set_requires_grad(),
                       doctest::Contains("floating-point"), Error);
}

TEST_CASE("retain_graph allows a second backward; without it the graph is freed") {
  Tensor x = Tensor::from_vector(std::vector<double>{0.5, -1}, {2}).set_requires_grad();
  Tensor loss = ops::sum(ops::sigmoid(x) * x);
  loss.backward({}, true);
  auto first = x.grad().to_doubles();
  loss.backward();
  auto second = x.grad().to_doubles();
  REQUIRE(second.size() == first.size());
  for (std::size_t i = 0; i < first.size(); ++i) CHECK(second[i] == doctest::Approx(2 * first[i]));
  CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("freed by an earlier backward"), Error);
}

TEST_CASE("a saved tensor modified in place is reported, not silently used") {
  Tensor x = Tensor::from_vector(std::vector<double>{0.5, -1}, {2}).set_requires_grad();
  Tensor y = ops::sigmoid(x);  // saves its output
  Tensor loss = ops::sum(y * 2.0);
  {
    NoGradGuard guard;  // in-place writes to graph tensors are only possible outside recording
    y.fill_(0.0);
  }
  CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("modified in place"), Error);
  // A view shares the version counter: writing through a detached alias is caught too.
  Tensor z = ops::tanh(x);
  Tensor loss2 = ops::sum(z);
  z.detach().narrow(0, 1, 1).fill_(5.0);
  CHECK_THROWS_WITH_AS(loss2.backward(), doctest::Contains("tanh backward"), Error);
}

TEST_CASE("in-place writes to tensors in a recorded graph are refused") {
  Tensor x = Tensor::from_vector(std::vector<double>{0.5, -1}, {2}).set_requires_grad();
  CHECK_THROWS_WITH_AS(x.fill_(1.0), doctest::Contains("leaf tensor of shape [2] that requires grad"), Error);
  CHECK_THROWS_WITH_AS(x.narrow(0, 0, 1).fill_(1.0), doctest::Contains("made by narrow"), Error);
  CHECK_THROWS_WITH_AS(ops::relu(x).copy_(x), doctest::Contains("made by relu"), Error);
  NoGradGuard guard;
  x.fill_(1.0);
  CHECK(x.to_doubles() == std::vector<double>{1, 1});
}

TEST_CASE("hooks see and may replace gradients; retain_grad keeps non-leaf gradients") {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2}, {2}).set_requires_grad();
  std::vector<double> seen;
  Tensor h = x * 3.0;
  h.retain_grad();
  h.register_hook([&](const Tensor& g) {
    seen = g.to_doubles();
    return Tensor();  // keep
  });
  x.register_hook([](const Tensor& g) { return g * 10.0; });  // replaces the leaf's gradient
  h.retain_grad();                                            // a second call changes nothing
  ops::sum(h * h).backward();
  CHECK(seen == std::vector<double>{6, 12});
  CHECK(h.grad().to_doubles() == std::vector<double>{6, 12});
  CHECK(x.grad().to_doubles() == std::vector<double>{180, 360});  // 3 * (6, 12), times 10 by the hook
}

TEST_CASE("a post-accumulate hook runs once per pass, after every use of the leaf was summed") {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2}, {2}).set_requires_grad();
  std::vector<std::vector<double>> seen;
  x.register_post_accumulate_grad_hook([&](const Tensor& leaf) { seen.push_back(leaf.grad().to_doubles()); });
  ops::sum(x * 3.0 + x * x).backward();  // x reached along two paths: one call with 3 + 2x
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == std::vector<double>{5, 7});
  ops::sum(x).backward();  // a second pass without zeroing: the hook sees the accumulated gradient
  REQUIRE(seen.size() == 2);
  CHECK(seen[1] == std::vector<double>{6, 8});
  Tensor h = x * 2.0;
  CHECK_THROWS_WITH_AS(h.register_post_accumulate_grad_hook([](const Tensor&) {}),
                       doctest::Contains("not a leaf that requires grad"), Error);
}

TEST_CASE("a hook that returns a gradient of the wrong shape is an error") {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2}, {2}).set_requires_grad();
  Tensor h = x * 3.0;
  h.register_hook([](const Tensor&) { return Tensor::zeros({3}, TensorOptions{DType::f64}); });
  CHECK_THROWS_WITH_AS(ops::sum(h).backward(), doctest::Contains("returned a gradient of shape [3]"), Error);
  Tensor w = Tensor::from_vector(std::vector<double>{1, 2}, {2}).set_requires_grad();
  w.register_hook([](const Tensor&) { return Tensor::zeros({2, 1}, TensorOptions{DType::f64}); });
  CHECK_THROWS_WITH_AS(ops::sum(w).backward(), doctest::Contains("expected shape [2]"), Error);
}

TEST_CASE("backward from several roots at once, with given gradients") {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2}, {2}).set_requires_grad();
  Tensor a = x * 2.0, s = ops::sum(x * x);
  autograd::backward({a, s}, {Tensor::from_vector(std::vector<double>{1, 10}, {2}), Tensor()});
  CHECK(x.grad().to_doubles() == std::vector<double>{2 + 2, 20 + 4});  // 2 * (1, 10) + 2 * x
  Tensor b = x * x;
  CHECK_THROWS_WITH_AS(autograd::backward({b, s}, {}), doctest::Contains("a gradient must be given"), Error);
}

TEST_CASE("gradients are owned, never aliased") {
  Tensor a = Tensor::from_vector(std::vector<double>{1, 2}, {2}).set_requires_grad();
  Tensor b = Tensor::from_vector(std::vector<double>{3, 4}, {2}).set_requires_grad();
  Tensor seed = Tensor::from_vector(std::vector<double>{1, 1}, {2});
  (a + b).backward(seed);
  CHECK(a.grad().impl().storage != b.grad().impl().storage);
  CHECK(a.grad().impl().storage != seed.impl().storage);
  {
    NoGradGuard guard;
    a.grad().fill_(0.0);
  }
  CHECK(b.grad().to_doubles() == std::vector<double>{1, 1});
  CHECK(seed.to_doubles() == std::vector<double>{1, 1});
}

TEST_CASE("conversions inside a graph pass gradients through") {
  Generator gen(6);
  Tensor x = random_leaf({2, 3, 2, 3, 2}, gen);
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{in[0].permute({0, 2, 1, 3, 4}).contiguous()};
      },
      std::vector<Tensor>{x});
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) { return std::vector<Tensor>{in[0].to(Layout::channels_last) * 2.0}; },
      std::vector<Tensor>{x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return std::vector<Tensor>{ops::square(in[0].clone())}; },
                  std::vector<Tensor>{x});
  // f32 through the blocked layout and back: the gradient of sum(w * x) is w.
  Tensor xf = randn({1, 5, 2, 2, 2}, gen).set_requires_grad();
  Tensor w = randn({1, 5, 2, 2, 2}, gen);
  ops::sum(xf.to(Layout::blocked).to(Layout::plain) * w).backward();
  CHECK(testing::max_abs_diff(xf.grad(), w) == 0.0);
  // dtype conversion: the gradient comes back in the source dtype.
  Tensor xd = Tensor::from_vector(std::vector<double>{1, 2}, {2}).set_requires_grad();
  ops::sum(xd.to(DType::f32) * 3.0).backward();
  CHECK(xd.grad().dtype() == DType::f64);
  CHECK(xd.grad().to_doubles() == std::vector<double>{3, 3});
}

TEST_CASE("kaiming_normal_ initialises a parameter that already requires grad") {
  Generator gen(7);
  Tensor w = Tensor::zeros({4, 3, 3, 3, 3}).set_requires_grad();
  const auto before = w.version();
  kaiming_normal_(w, gen, 0.01);
  CHECK(w.version() > before);
  CHECK(w.requires_grad());
  double sq = 0;
  for (double v : w.to_doubles()) sq += v * v;
  CHECK(sq > 0.0);
}

TEST_CASE("several outputs per op: split's node gathers gradients from each output") {
  Generator gen(1);
  Tensor x = random_leaf({2, 5, 3}, gen);
  std::vector<Tensor> parts = ops::split(x, {2, 1, 2}, 1);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].grad_fn() == parts[2].grad_fn());
  CHECK(parts[1].shape() == Shape{2, 1, 3});
  // Output 1 gets no gradient at all: the engine fills zeros for it.
  Tensor loss = ops::sum(parts[0] * 2.0) + ops::sum(parts[2] * 5.0);
  loss.backward();
  auto g = x.grad().to_doubles();
  for (std::size_t i = 0; i < g.size(); ++i) {
    const auto channel = (i / 3) % 5;
    CHECK(g[i] == (channel < 2 ? 2.0 : channel == 2 ? 0.0 : 5.0));
  }
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return ops::split(in[0], {1, 4}, -2); }, std::vector<Tensor>{x});
  CHECK_THROWS_WITH_AS(ops::split(x, {2, 2}, 1), doctest::Contains("sizes add up to 4"), Error);
}

TEST_CASE("tensors print through fmt") {
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2}, {2}).set_requires_grad();
  CHECK(fmt::format("{}", t) == "Tensor[2] f32 cpu plain requires_grad {1, 2}");
}

TEST_CASE("gradient reversal: identity forward, -lambda * grad backward") {
  Tensor x = Tensor::from_vector(std::vector<double>{1, -2}, {2}).set_requires_grad();
  autograd::GradientReversal grl(0.5);
  Tensor y = grl(x);
  CHECK(y.to_doubles() == x.to_doubles());
  ops::sum(y * 4.0).backward();
  CHECK(x.grad().to_doubles() == std::vector<double>{-2, -2});
  grl.set_lambda(2.0);
  x.set_grad({});
  ops::sum(grl(x)).backward();
  CHECK(x.grad().to_doubles() == std::vector<double>{-2, -2});
}

TEST_CASE("sum and mean backward read the right rows of a gradient that is a view with an offset") {
  // cat along dim 0 hands each input a contiguous narrow of the gradient starting past element 0.
  Tensor a = Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {1, 4}).set_requires_grad();
  Tensor b = Tensor::from_vector(std::vector<double>{5, 6, 7, 8}, {1, 4}).set_requires_grad();
  Tensor y = ops::cat({ops::mean(a, {1}, true), ops::sum(b, {1}, true)}, 0);  // [2, 1]
  ops::sum(y * Tensor::from_vector(std::vector<double>{10, 100}, {2, 1})).backward();
  CHECK(a.grad().to_doubles() == std::vector<double>{2.5, 2.5, 2.5, 2.5});
  CHECK(b.grad().to_doubles() == std::vector<double>{100, 100, 100, 100});
}

TEST_CASE("after backward the graph's memory returns to the allocator") {
  auto& alloc = CpuAllocator::instance();
  Generator gen(2);
  Tensor w = randn({8, 4, 3, 3, 3}, gen).set_requires_grad();
  Tensor x = randn({2, 4, 12, 12, 12}, gen);
  // Warm up once so the gradient exists, then measure a whole step.
  ops::mean(ops::square(ops::leaky_relu(ops::conv3d(x, w, {}, Conv3dOptions{}.with_padding({1, 1, 1}))))).backward();
  const auto baseline = alloc.stats().current_bytes;
  {
    Tensor h = ops::leaky_relu(ops::conv3d(x, w, {}, Conv3dOptions{}.with_padding({1, 1, 1})));
    Tensor loss = ops::mean(ops::square(h));
    CHECK(alloc.stats().current_bytes > baseline + 2 * h.numel() * sizeof(float));  // activations alive
    loss.backward();
  }
  // The old gradient was replaced by an accumulated one of the same size: nothing else is held.
  CHECK(alloc.stats().current_bytes == baseline);
}

TEST_CASE("gradcheck catches a wrong backward") {
  Generator gen(4);
  Tensor x = random_leaf({3}, gen);
  // A deliberately wrong op: forward x^2, backward pretends the derivative is x.
  auto wrong = [](const std::vector<Tensor>& in) {
    Tensor y = kernels::ref::unary(in[0], kernels::ref::UnaryOp::square);
    autograd::attach("wrong_square", {in[0]}, {y},
                     [s = autograd::SavedTensor(in[0], "wrong")](const auto& g, const autograd::Node&) {
                       return std::vector<Tensor>{kernels::ref::mul(g[0], s.unpack())};
                     });
    return std::vector<Tensor>{y};
  };
  auto result = autograd::gradcheck(wrong, {x});
  CHECK_FALSE(result.ok);
  CHECK(result.message.find("wrong") == std::string::npos);  // names the input, not the op
  CHECK(result.message.find("analytic") != std::string::npos);
  auto right = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{ops::square(in[0])}; };
  CHECK_GRADCHECK(right, {x});
}
