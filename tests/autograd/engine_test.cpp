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
  CHECK(second[0] == doctest::Approx(2 * first[0]));
  CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("freed by an earlier backward"), Error);
}

TEST_CASE("a saved tensor modified in place is reported, not silently used") {
  Tensor x = Tensor::from_vector(std::vector<double>{0.5, -1}, {2}).set_requires_grad();
  Tensor y = ops::sigmoid(x);  // saves its output
  Tensor loss = ops::sum(y * 2.0);
  y.fill_(0.0);
  CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("modified in place"), Error);
  // In-place writes to a leaf that requires grad are refused while recording.
  CHECK_THROWS_WITH_AS(x.fill_(1.0), doctest::Contains("cannot be modified in place"), Error);
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
  ops::sum(h * h).backward();
  CHECK(seen == std::vector<double>{6, 12});
  CHECK(h.grad().to_doubles() == std::vector<double>{6, 12});
  CHECK(x.grad().to_doubles() == std::vector<double>{180, 360});  // 3 * (6, 12), times 10 by the hook
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
    autograd::attach("wrong_square", {in[0]}, {y}, [s = autograd::SavedTensor(in[0], "wrong")](const auto& g, const autograd::Node&) {
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
