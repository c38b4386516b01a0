// The CPU fast path of channel concatenation (oneDNN concat forward, TLK's blocked copy backward)
// against ops::cat on f64.
#include <fmt/ranges.h>

#include "test_util.h"
#include "tlk/kernels/cpu/concat.h"
#include "tlk/kernels/cpu/conv3d.h"
#include "tlk/kernels/cpu/conv_transpose3d.h"
#include "tlk/kernels/cpu/primitive_cache.h"
#include "tlk/tensor/blocked_format.h"

using namespace tlk;
namespace cpu = kernels::cpu;
using testing::channel_blocked;
using testing::padding_is_zero;
using testing::rel_error;

namespace {

// The layouts a tensor may come in: strided ones, the CPU's default blocking, and both channel blockings.
enum class Kind { plain, channels_last, blocked, blocked8, blocked16 };
constexpr Kind kKinds[] = {Kind::plain, Kind::channels_last, Kind::blocked, Kind::blocked8, Kind::blocked16};

Tensor in_kind(const Tensor& t, Kind kind) {
  switch (kind) {
    case Kind::plain:
      return t;
    case Kind::channels_last:
      return t.to(Layout::channels_last);
    case Kind::blocked:
      return t.to(Layout::blocked);
    case Kind::blocked8:
      return t.to(channel_blocked(t.shape(), 8));
    case Kind::blocked16:
      return t.to(channel_blocked(t.shape(), 16));
  }
  return t;
}

int block_of(Kind kind, const Shape& shape) {
  switch (kind) {
    case Kind::blocked:
      return BlockedFormat::default_for(shape) == channel_blocked(shape, 16) ? 16 : 8;
    case Kind::blocked8:
      return 8;
    case Kind::blocked16:
      return 16;
    default:
      return 0;
  }
}

std::vector<Tensor> to_f64(const std::vector<Tensor>& ts) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts) out.push_back(t.to(DType::f64));
  return out;
}

}  // namespace

TEST_CASE("cpu concat matches ops::cat in f64 for every mix of input layouts and channel counts") {
  Generator gen(51);
  const std::vector<std::vector<std::int64_t>> channel_sets = {{3, 5}, {13, 20}, {16, 16},
                                                               {8, 8}, {32, 13}, {3, 13, 20}};
  for (const auto& channels : channel_sets)
    for (std::int64_t batch : {1, 3}) {
      CAPTURE(fmt::format("{}", channels));
      CAPTURE(batch);
      std::vector<Tensor> xs;
      for (std::int64_t c : channels) xs.push_back(randn({batch, c, 3, 4, 5}, gen));
      const Tensor expected = ops::cat(to_f64(xs), 1);
      // Every pair of layouts for the first two inputs; a third input follows the first.
      for (Kind k0 : kKinds)
        for (Kind k1 : kKinds) {
          CAPTURE(static_cast<int>(k0));
          CAPTURE(static_cast<int>(k1));
          std::vector<Tensor> in;
          for (std::size_t i = 0; i < xs.size(); ++i) in.push_back(in_kind(xs[i], i == 1 ? k1 : k0));
          Tensor y = cpu::concat_channels(in);
          REQUIRE(y.layout() == Layout::blocked);
          // Note [Concat output layout]: the first channel blocking among the inputs, else the default.
          const int block = block_of(k0, xs[0].shape())   ? block_of(k0, xs[0].shape())
                            : block_of(k1, xs[1].shape()) ? block_of(k1, xs[1].shape())
                                                          : block_of(Kind::blocked, expected.shape());
          CHECK(y.blocked_format() == channel_blocked(y.shape(), block));
          CHECK(testing::max_abs_diff(y, expected) == 0.0);
          CHECK(padding_is_zero(y));
        }
    }
}

TEST_CASE("cpu concat backward splits the gradient in its own layout, block-aligned or not") {
  Generator gen(52);
  const std::vector<std::vector<std::int64_t>> channel_sets = {{3, 5}, {13, 20},    {16, 16},
                                                               {8, 8}, {16, 13, 3}, {5, 0, 3}};
  for (const auto& channels : channel_sets)
    for (std::int64_t batch : {1, 3}) {
      CAPTURE(fmt::format("{}", channels));
      CAPTURE(batch);
      std::int64_t total = 0;
      for (std::int64_t c : channels) total += c;
      Tensor dy = randn({batch, total, 2, 3, 5}, gen);
      for (Kind kind : kKinds) {
        CAPTURE(static_cast<int>(kind));
        const Tensor dyk = in_kind(dy, kind);
        const auto reorders = reorder_stats().activations;
        auto grads = cpu::concat_channels_backward(dyk, channels);
        CHECK(reorder_stats().activations == reorders);  // aligned or not, no reorder
        REQUIRE(grads.size() == channels.size());
        std::int64_t start = 0;
        for (std::size_t i = 0; i < channels.size(); ++i) {
          CAPTURE(i);
          CHECK(grads[i].shape() == Shape{batch, channels[i], 2, 3, 5});
          CHECK(testing::max_abs_diff(grads[i], dy.narrow(1, start, channels[i]).contiguous()) == 0.0);
          if (channels[i] > 0 && block_of(kind, dy.shape()) != 0)
            CHECK(grads[i].blocked_format() == channel_blocked(grads[i].shape(), block_of(kind, dy.shape())));
          else
            CHECK(grads[i].layout() == Layout::plain);
          CHECK(padding_is_zero(grads[i]));
          start += channels[i];
        }
      }
    }
}

TEST_CASE("cpu concat with a zero-channel input") {
  Generator gen(53);
  std::vector<Tensor> xs{randn({2, 5, 2, 3, 4}, gen), Tensor::zeros({2, 0, 2, 3, 4}), randn({2, 3, 2, 3, 4}, gen)};
  Tensor y = cpu::concat_channels({xs[0].to(Layout::blocked), xs[1], xs[2]});
  CHECK(testing::max_abs_diff(y, ops::cat(to_f64(xs), 1)) == 0.0);
}

TEST_CASE("steady state: concat builds no primitive twice, and a UNet decoder step stays blocked") {
  Generator gen(54);
  Tensor a = randn({2, 16, 4, 6, 6}, gen).to(Layout::blocked), b = randn({2, 16, 4, 6, 6}, gen).to(Layout::blocked);
  auto step = [&] {
    Tensor y = cpu::concat_channels({a, b});
    return cpu::concat_channels_backward(y, {16, 16});
  };
  step();
  auto builds = cpu::PrimitiveCache::instance().stats().builds;
  auto reorders = reorder_stats().activations;
  step();
  CHECK(cpu::PrimitiveCache::instance().stats().builds == builds);
  CHECK(reorder_stats().activations == reorders);
  CHECK(cpu::concat_channels_impl({a, b}) == "simple:any");  // block-aligned: a copy per input

  // up = conv_transpose3d(low), skip from the encoder, conv3d(cat(up, skip)): every tensor blocked.
  const auto up_opt = Conv3dOptions{}.with_stride({1, 2, 2}), conv_opt = Conv3dOptions{}.with_padding({1, 1, 1});
  Tensor low = randn({2, 32, 4, 3, 3}, gen), wt = randn({32, 16, 1, 2, 2}, gen, 0, 0.1);
  Tensor wc = randn({16, 32, 3, 3, 3}, gen, 0, 0.1),
         skip = cpu::conv3d_forward(b, randn({16, 16, 1, 1, 1}, gen), {}, {});
  if (cpu::conv_transpose3d_impls(low.shape(), wt.shape(), up_opt).forward.rfind("jit", 0) != 0) {
    MESSAGE("decoder chain not checked: oneDNN's transposed convolution here is not its JIT code");
    return;
  }
  low = cpu::conv_transpose3d_backward_data(cpu::conv_transpose3d_forward(low, wt, {}, up_opt), wt, low.shape(),
                                            up_opt);  // low in the primitive's own layout
  auto decoder = [&] {
    Tensor up = cpu::conv_transpose3d_forward(low, wt, {}, up_opt);
    Tensor y = cpu::conv3d_forward(cpu::concat_channels({up, skip}), wc, {}, conv_opt);
    auto grads = cpu::concat_channels_backward(cpu::conv3d_backward_data(y, wc, {2, 32, 4, 6, 6}, conv_opt), {16, 16});
    return cpu::conv_transpose3d_backward_data(grads[0], wt, low.shape(), up_opt);
  };
  decoder();
  builds = cpu::PrimitiveCache::instance().stats().builds;
  reorders = reorder_stats().activations;
  decoder();
  CHECK(cpu::PrimitiveCache::instance().stats().builds == builds);
  CHECK(reorder_stats().activations == reorders);
}

TEST_CASE("ops::cat of 5-D f32 tensors along channels takes the fast path; gradients match the f64 path") {
  Generator gen(55);
  Tensor a64 = randn({3, 13, 3, 4, 5}, gen, 0, 1, TensorOptions{DType::f64});
  Tensor b64 = randn({3, 20, 3, 4, 5}, gen, 0, 1, TensorOptions{DType::f64});
  Tensor c64 = randn({3, 5, 3, 4, 5}, gen, 0, 1, TensorOptions{DType::f64});
  auto run = [&](DType dtype) {
    Tensor a = a64.to(dtype).set_requires_grad(), c = c64.to(dtype).set_requires_grad();
    Tensor b = b64.to(dtype);
    if (dtype == DType::f32) b = b.to(Layout::blocked);
    b.set_requires_grad();
    Tensor y = ops::cat({a, b, c}, -4);
    ops::mean(ops::square(ops::leaky_relu(y, 0.01))).backward();
    return std::vector<Tensor>{y, a.grad(), b.grad(), c.grad()};
  };
  auto fast = run(DType::f32), reference = run(DType::f64);
  CHECK(fast[0].layout() == Layout::blocked);
  for (std::size_t i = 0; i < fast.size(); ++i) {
    CAPTURE(i);
    CHECK(rel_error(fast[i], reference[i]) < 1e-5);
  }
  // Other dimensions and ranks keep the strided path.
  Tensor x = randn({2, 3, 4, 5, 6}, gen);
  CHECK(ops::cat({x, x}, 2).layout() == Layout::plain);
  CHECK(ops::cat({x.flatten(3), x.flatten(3)}, 1).layout() == Layout::plain);
}

TEST_CASE("cpu concat bad input gives a clear error") {
  CHECK_THROWS_WITH_AS(cpu::concat_channels({Tensor::zeros({1, 2, 3, 3, 3}), Tensor::zeros({1, 2, 3, 4, 3})}),
                       doctest::Contains("differs from tensor 0's"), Error);
  CHECK_THROWS_WITH_AS(cpu::concat_channels({Tensor::zeros({1, 2, 3, 3})}), doctest::Contains("expected 5-D f32 CPU"),
                       Error);
  CHECK_THROWS_WITH_AS(cpu::concat_channels({Tensor::zeros({1, 2, 3, 3, 3}, TensorOptions{DType::f64})}),
                       doctest::Contains("expected 5-D f32 CPU"), Error);
  CHECK_THROWS_WITH_AS(cpu::concat_channels_backward(Tensor::zeros({1, 5, 3, 3, 3}), {2, 2}),
                       doctest::Contains("add up to 4"), Error);
  CHECK_THROWS_WITH_AS(cpu::concat_channels({}), doctest::Contains("no tensors"), Error);
}
