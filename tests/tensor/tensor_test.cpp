#include "test_util.h"
#include "tlk/tensor/cuda_runtime.h"

using namespace tlk;

TEST_CASE("factories, shape and printing") {
  Tensor t = Tensor::zeros({2, 3, 4});
  CHECK(t.dim() == 3);
  CHECK(t.numel() == 24);
  CHECK(t.dtype() == DType::f32);
  CHECK(t.device() == Device::cpu());
  CHECK(t.layout() == Layout::plain);
  CHECK(t.is_contiguous());
  CHECK(t.size(-1) == 4);
  CHECK(t.strides() == Dims{12, 4, 1});
  Tensor f = Tensor::full({2, 2}, 3.5, TensorOptions{DType::f64});
  CHECK(f.to_doubles() == std::vector<double>{3.5, 3.5, 3.5, 3.5});
  CHECK(Tensor::scalar(2.0).item() == 2.0);
  Tensor v = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(v.str() == "Tensor[2, 3] f32 cpu plain {1, 2, 3, 4, 5, 6}");
  CHECK(v.str(2) == "Tensor[2, 3] f32 cpu plain {1, 2, ... (4 more)}");
  CHECK_THROWS_AS(Tensor::from_vector(std::vector<float>{1, 2}, {3}), Error);
  CHECK_THROWS_WITH_AS(v.size(2), doctest::Contains("out of range"), Error);
}

TEST_CASE("views share storage; contiguous copies") {
  Tensor v = Tensor::from_vector(std::vector<double>{0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor p = v.permute({1, 0});
  CHECK(p.shape() == Shape{3, 2});
  CHECK_FALSE(p.is_contiguous());
  CHECK(p.impl().storage == v.impl().storage);
  CHECK(p.contiguous().to_doubles() == std::vector<double>{0, 3, 1, 4, 2, 5});
  Tensor n = v.narrow(1, 1, 2);
  CHECK(n.to_doubles() == std::vector<double>{1, 2, 4, 5});
  CHECK(n.impl().storage == v.impl().storage);
  Tensor r = v.reshape({3, -1});
  CHECK(r.shape() == Shape{3, 2});
  CHECK(r.impl().storage == v.impl().storage);
  CHECK_THROWS_WITH_AS(v.reshape({4, -1}), doctest::Contains("cannot reshape"), Error);
  CHECK(v.flatten(0).shape() == Shape{6});
  // Writing through a view changes the base and bumps the shared version counter.
  const auto before = v.version();
  n.fill_(9);
  CHECK(v.to_doubles() == std::vector<double>{0, 9, 9, 3, 9, 9});
  CHECK(v.version() > before);
}

TEST_CASE("dtype conversion") {
  Tensor v = Tensor::from_vector(std::vector<double>{1.5, -2.25, 3}, {3});
  CHECK(v.to(DType::f32).dtype() == DType::f32);
  CHECK(v.to(DType::f32).to_doubles() == std::vector<double>{1.5, -2.25, 3});
  CHECK(v.to(DType::i64).to_doubles() == std::vector<double>{1, -2, 3});
  Tensor u = Tensor::from_vector(std::vector<std::uint8_t>{0, 200, 255}, {3});
  CHECK(u.to(DType::f32).to_doubles() == std::vector<double>{0, 200, 255});
  CHECK_THROWS_WITH_AS(v.data<float>(), doctest::Contains("dtype f64"), Error);
}

TEST_CASE("layouts: channels-last and oneDNN blocked round trips") {
  Generator gen(3);
  // 13 channels: not a multiple of the block, so the blocked layout pads.
  Tensor x = randn({2, 13, 3, 4, 5}, gen);
  Tensor cl = x.to(Layout::channels_last);
  CHECK(cl.layout() == Layout::channels_last);
  CHECK(cl.strides() == channels_last_strides(x.shape()));
  CHECK(testing::max_abs_diff(cl, x) == 0.0);
  Tensor blocked = x.to(Layout::blocked);
  CHECK(blocked.layout() == Layout::blocked);
  CHECK(blocked.blocked_format().name().rfind("nCdhw", 0) == 0);
  CHECK(blocked.impl().storage->nbytes() > x.numel() * sizeof(float));  // channel padding
  CHECK(testing::max_abs_diff(blocked.to(Layout::plain), x) == 0.0);
  CHECK(testing::max_abs_diff(cl.to(Layout::blocked), x) == 0.0);
  CHECK_THROWS_WITH_AS(blocked.data<float>(), doctest::Contains("blocked"), Error);
  CHECK_THROWS_WITH_AS(x.to(DType::f64).to(Layout::blocked), doctest::Contains("f32"), Error);
  // fill_ on a blocked tensor keeps the padding zero and the values right.
  blocked.fill_(2.0);
  for (double v : blocked.to_doubles()) CHECK(v == 2.0);
}

TEST_CASE("layouts: a one-channel tensor made channels-last keeps its channels-last strides") {
  Generator gen(4);
  const Tensor x = randn({2, 1, 3, 4, 5}, gen);
  CHECK_FALSE(has_channels_last_strides(x));
  // Its memory is plain and channels-last at once: layout() says plain, the strides say which.
  const Tensor cl = x.to(Layout::channels_last);
  CHECK(cl.layout() == Layout::plain);
  CHECK(cl.strides() == channels_last_strides(x.shape()));
  CHECK(has_channels_last_strides(cl));
  CHECK(cl.to(Layout::channels_last).raw_data() == cl.raw_data());  // already so: no copy
  CHECK(has_channels_last_strides(randn({2, 3, 4, 5, 6}, gen).to(Layout::channels_last)));
  const Tensor copy = cl.clone();
  CHECK(copy.strides() == channels_last_strides(x.shape()));
  CHECK(testing::max_abs_diff(copy, x) == 0.0);
  CHECK(parse_activation_layout("auto", Device::cpu(), "--layout") == Layout::plain);
  CHECK(parse_activation_layout("auto", Device::cuda(1), "--layout") == Layout::channels_last);
  CHECK(parse_activation_layout("plain", Device::cuda(), "--layout") == Layout::plain);
  CHECK_THROWS_WITH_AS(parse_activation_layout("channels_last", Device::cpu(), "--layout"),
                       doctest::Contains("--layout: channels_last needs a CUDA device"), Error);
  CHECK_THROWS_WITH_AS(parse_activation_layout("ndhwc", Device::cuda(), "--layout"),
                       doctest::Contains("unknown layout 'ndhwc'"), Error);
}

TEST_CASE("caching allocator: alignment, reuse and statistics") {
  auto& alloc = CpuAllocator::instance();
  CHECK(CpuAllocator::round_size(1) == 64);
  CHECK(CpuAllocator::round_size(4097) == 4608);
  const auto before = alloc.stats();
  {
    Tensor a = Tensor::empty({1000, 1000});
    CHECK(reinterpret_cast<std::uintptr_t>(a.raw_data()) % 64 == 0);
    CHECK(alloc.stats().current_bytes >= before.current_bytes + 4'000'000);
  }
  CHECK(alloc.stats().current_bytes == before.current_bytes);
  const auto hits_before = alloc.stats().cache_hits;
  { Tensor b = Tensor::empty({1000, 1000}); }
  CHECK(alloc.stats().cache_hits == hits_before + 1);
  CHECK(alloc.stats().peak_bytes >= before.current_bytes + 4'000'000);
  alloc.empty_cache();
  CHECK(alloc.stats().cached_bytes == 0);
}

TEST_CASE("pinned memory: refused with the reason where no GPU is usable") {
  if (cuda::is_available()) return;  // tests/cuda/tensor_cuda_test.cpp covers it on a GPU
  CHECK_THROWS_WITH_AS(Tensor::pinned_empty({4, 4}), doctest::Contains("pinned memory: "), Error);
  CHECK_FALSE(Tensor::empty({4}).is_pinned());
}

TEST_CASE("seeded generator is reproducible and well distributed") {
  Generator a(42), b(42), c(43);
  for (int i = 0; i < 5; ++i) CHECK(a.next_u64() == b.next_u64());
  CHECK(Generator(42).next_u64() != c.next_u64());
  // Fixed values: the same on every machine (Note [Reproducible randomness]).
  Generator g(0);
  CHECK(g.next_u64() == 0x99ec5f36cb75f2b4ull);
  Generator n(7);
  double sum = 0, sq = 0;
  const int count = 20000;
  for (int i = 0; i < count; ++i) {
    const double v = n.normal();
    sum += v;
    sq += v * v;
  }
  CHECK(std::abs(sum / count) < 0.03);
  CHECK(std::abs(sq / count - 1.0) < 0.05);
  auto state = n.state();
  const double next = n.normal();
  n.set_state(state);
  CHECK(n.normal() == next);
}

TEST_CASE("kaiming normal init has the He standard deviation") {
  Generator gen(5);
  Tensor w = Tensor::empty({64, 32, 3, 3, 3});
  kaiming_normal_(w, gen, 0.01);
  auto v = w.to_doubles();
  double sq = 0;
  for (double x : v) sq += x * x;
  const double expected = std::sqrt(2.0 / (1.0 + 1e-4)) / std::sqrt(32.0 * 27.0);
  CHECK(std::sqrt(sq / v.size()) == doctest::Approx(expected).epsilon(0.02));
}

TEST_CASE("CUDA device: tensors move to the GPU and back, or the test skips") {
  if (!cuda::is_available()) {
    MESSAGE("skipped: " << cuda::unavailable_reason());
    CHECK_THROWS_AS(Tensor::zeros({2}).to(Device::cuda()), Error);
    return;
  }
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3}, {3});
  Tensor g = x.to(Device::cuda());
  CHECK(g.device() == Device::cuda(0));
  g.fill_(4.0);
  CHECK(g.to(Device::cpu()).to_doubles() == std::vector<double>{4, 4, 4});
  CHECK(cuda::device_allocator(0).stats().current_bytes >= 12);
  // Mixing devices in one op is an error naming both devices.
  Tensor w = Tensor::zeros({1, 1, 1, 1, 1});
  CHECK_THROWS_WITH_AS(ops::conv3d(Tensor::zeros({1, 1, 2, 2, 2}).to(Device::cuda()), w),
                       doctest::Contains("different devices"), Error);
}
