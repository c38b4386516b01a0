// GPU strided copies and conversions (Note [CUDA strided copies] in tensor.cpp) against the CPU path:
// contiguous(), to(DType), copy_(), clone(), to(Layout::channels_last) and fill_() on CUDA views.
#include <cmath>
#include <cstdint>
#include <vector>

#include "cuda_test_util.h"
#include "tlk/tensor/pinned_allocator.h"

using namespace tlk;
using testing::max_abs_diff;
using testing::to_cpu;
using testing::to_gpu;

namespace {

// Exact agreement of a GPU result with the CPU's, including dtype and shape.
void check_same(const Tensor& gpu, const Tensor& cpu) {
  REQUIRE(gpu.device().is_cuda());
  CHECK(gpu.dtype() == cpu.dtype());
  REQUIRE(gpu.shape() == cpu.shape());
  CHECK(max_abs_diff(to_cpu(gpu), cpu.contiguous()) == 0.0);
}

Tensor random_f64(const Shape& shape, Generator& gen) { return randn(shape, gen, 0, 1, TensorOptions{DType::f64}); }

// A broadcast (stride 0) view of `t` along a new leading axis of extent `n`.
Tensor broadcast_leading(const Tensor& t, std::int64_t n) {
  Shape shape{n};
  Dims strides{0};
  for (int i = 0; i < t.dim(); ++i) {
    shape.push_back(t.shape()[i]);
    strides.push_back(t.strides()[i]);
  }
  return make_view(t, shape, strides, t.offset());
}

}  // namespace

TEST_CASE("cuda contiguous() of permuted, narrowed and broadcast views matches the CPU") {
  TLK_REQUIRE_GPU();
  Generator gen(701);
  for (DType dtype : {DType::f64, DType::f32, DType::i64, DType::u8}) {
    CAPTURE(dtype_name(dtype));
    Tensor x = rand({3, 5, 4, 7}, gen, 0.0, 200.0, TensorOptions{DType::f64}).to(dtype);
    Tensor xg = to_gpu(x);
    // Transposed (permuted) view.
    Tensor p = xg.permute({0, 3, 1, 2});
    REQUIRE_FALSE(p.is_contiguous());
    check_same(p.contiguous(), x.permute({0, 3, 1, 2}).contiguous());
    // Narrowed view with an offset.
    Tensor n = xg.narrow(1, 2, 3).narrow(3, 1, 5);
    CHECK(n.offset() > 0);
    check_same(n.contiguous(), x.narrow(1, 2, 3).narrow(3, 1, 5).contiguous());
    // Broadcast (stride 0) source.
    check_same(broadcast_leading(xg, 3).contiguous(), broadcast_leading(x, 3).contiguous());
  }
  // Six dimensions, permuted and narrowed; large enough for a grid-stride loop over many blocks.
  Tensor big = random_f64({2, 3, 4, 5, 6, 7}, gen);
  Tensor bg = to_gpu(big);
  check_same(bg.permute({5, 3, 1, 0, 2, 4}).narrow(0, 1, 5).contiguous(),
             big.permute({5, 3, 1, 0, 2, 4}).narrow(0, 1, 5).contiguous());
  Tensor large = random_f64({64, 65, 66}, gen).to(DType::f32);
  check_same(to_gpu(large).permute({2, 0, 1}).contiguous(), large.permute({2, 0, 1}).contiguous());
}

TEST_CASE("cuda to(DType) converts between every pair of CPU dtypes like static_cast") {
  TLK_REQUIRE_GPU();
  Generator gen(702);
  // Values in [0, 200) with fractions: exact in u8 after truncation, no overflow anywhere.
  Tensor base = rand({4, 3, 5}, gen, 0.0, 200.0, TensorOptions{DType::f64});
  const DType dtypes[] = {DType::f32, DType::f64, DType::i64, DType::i32, DType::u8};
  for (DType from : dtypes)
    for (DType to : dtypes) {
      CAPTURE(dtype_name(from));
      CAPTURE(dtype_name(to));
      Tensor x = base.to(from);
      Tensor xg = to_gpu(x);
      check_same(xg.to(to), x.to(to));
      check_same(xg.permute({2, 0, 1}).to(to), x.permute({2, 0, 1}).to(to));  // strided source
    }
  // i64 -> f32 rounds to nearest (values above 2^24 are not all representable).
  std::vector<std::int64_t> ints;
  for (int i = 0; i < 200; ++i)
    ints.push_back(static_cast<std::int64_t>(gen.below(std::uint64_t{1} << 40)) - (std::int64_t{1} << 39));
  Tensor li = Tensor::from_vector(ints, {10, 20});
  check_same(to_gpu(li).to(DType::f32), li.to(DType::f32));
  check_same(to_gpu(li).permute({1, 0}).to(DType::f32), li.permute({1, 0}).to(DType::f32));
  // f64 -> f32 rounding and negative floats truncated towards zero in i32.
  Tensor r = random_f64({7, 9}, gen).to(DType::f64);
  check_same(to_gpu(r).to(DType::f32), r.to(DType::f32));
  Tensor s = Tensor::from_doubles({-2.7, -0.5, 0.5, 2.7, -100.25, 99.99}, {2, 3}, DType::f64);
  check_same(to_gpu(s).to(DType::i32), s.to(DType::i32));
  check_same(to_gpu(s).to(DType::i64), s.to(DType::i64));
}

TEST_CASE("cuda bf16 and f16 round trips") {
  TLK_REQUIRE_GPU();
  Generator gen(703);
  // Multiples of 1/8 below 16 are exact in both half formats.
  std::vector<double> exact;
  for (int i = -100; i < 100; ++i) exact.push_back(i / 8.0);
  Tensor e = Tensor::from_doubles(exact, {8, 25}, DType::f32);
  for (DType half : {DType::bf16, DType::f16}) {
    CAPTURE(dtype_name(half));
    Tensor h = to_gpu(e).to(half);
    CHECK(h.dtype() == half);
    check_same(h.to(DType::f32), e);
    CHECK(h.to_doubles() == e.to_doubles());  // read back through a GPU-side conversion
    check_same(to_gpu(e.to(DType::f64)).to(half).to(DType::f64), e.to(DType::f64));
    check_same(h.to(DType::i32), e.to(DType::i32));
    // Rounding of random values: relative error within half an ulp (2^-8 bf16, 2^-11 f16).
    Tensor x = rand({1000}, gen, 0.5, 4.0, TensorOptions{DType::f32});
    Tensor back = to_cpu(to_gpu(x).to(half).to(DType::f32));
    const double tol = half == DType::bf16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
    auto vb = back.to_doubles(), vx = x.to_doubles();
    double worst = 0.0;
    for (std::size_t i = 0; i < vx.size(); ++i) worst = std::max(worst, std::abs(vb[i] - vx[i]) / vx[i]);
    CHECK(worst <= tol);
    CHECK(worst > 0.0);  // random floats are not all representable: the conversion did round
  }
}

TEST_CASE("cuda copy_ between any strides, dtypes and devices matches the CPU") {
  TLK_REQUIRE_GPU();
  Generator gen(704);
  Tensor src = random_f64({4, 5, 6}, gen);
  // Expected: the CPU path on the same views.
  auto expected = [&](DType dst_dtype, const Tensor& s) {
    Tensor base = Tensor::full({5, 4, 8}, -3.0, TensorOptions{dst_dtype});
    base.permute({1, 0, 2}).narrow(2, 1, 6).copy_(s);
    return base;
  };
  for (DType dst_dtype : {DType::f32, DType::f64, DType::i64}) {
    CAPTURE(dtype_name(dst_dtype));
    // CUDA -> CUDA, transposed and narrowed destination, strided f64 source.
    {
      Tensor base = to_gpu(Tensor::full({5, 4, 8}, -3.0, TensorOptions{dst_dtype}));
      Tensor sg = to_gpu(random_f64({6, 4, 5}, gen));
      Tensor s_view = sg.permute({1, 2, 0});
      base.permute({1, 0, 2}).narrow(2, 1, 6).copy_(s_view);
      check_same(base, expected(dst_dtype, to_cpu(s_view)));
    }
    // CPU -> CUDA into a non-contiguous destination (staged through a contiguous GPU temporary).
    {
      Tensor base = to_gpu(Tensor::full({5, 4, 8}, -3.0, TensorOptions{dst_dtype}));
      base.permute({1, 0, 2}).narrow(2, 1, 6).copy_(src);
      check_same(base, expected(dst_dtype, src));
      Tensor dense = Tensor::empty({4, 5, 6}, TensorOptions{dst_dtype, Device::cuda(0)});
      dense.copy_(src.permute({0, 1, 2}));
      check_same(dense, src.to(dst_dtype));
    }
    // CUDA -> CPU into a non-contiguous destination, converting the dtype.
    {
      Tensor base = Tensor::full({5, 4, 8}, -3.0, TensorOptions{dst_dtype});
      base.permute({1, 0, 2}).narrow(2, 1, 6).copy_(to_gpu(src));
      CHECK(max_abs_diff(base, expected(dst_dtype, src)) == 0.0);
    }
  }
  // A broadcast source.
  Tensor row = random_f64({6}, gen);
  Tensor dst = Tensor::zeros({4, 6}, TensorOptions{DType::f32, Device::cuda(0)});
  dst.copy_(make_view(to_gpu(row), {4, 6}, Dims{0, 1}, 0));
  check_same(dst, make_view(row, {4, 6}, Dims{0, 1}, 0).to(DType::f32));
  // Overlapping source and destination in one storage: the source is read before anything is written.
  Tensor line = random_f64({10}, gen);
  std::vector<double> shifted = line.to_doubles();
  shifted.erase(shifted.begin());
  shifted.push_back(shifted.back());  // the last element stays
  Tensor lg = to_gpu(line);
  lg.narrow(0, 0, 9).copy_(lg.narrow(0, 1, 9));
  check_same(lg, Tensor::from_doubles(shifted, {10}, DType::f64));
  // The reverse shift, through a transposed view.
  Tensor grid = random_f64({4, 4}, gen);
  Tensor gg = to_gpu(grid);
  gg.copy_(gg.permute({1, 0}));
  check_same(gg, grid.permute({1, 0}).contiguous());
}

TEST_CASE("cuda clone, channels-last and fill_ on views match the CPU") {
  TLK_REQUIRE_GPU();
  Generator gen(705);
  Tensor x = random_f64({2, 3, 4, 5, 6}, gen);
  Tensor xg = to_gpu(x);
  // clone shares nothing.
  Tensor c = xg.narrow(2, 1, 2).clone();
  check_same(c, x.narrow(2, 1, 2).contiguous());
  xg.fill_(0.0);
  check_same(c, x.narrow(2, 1, 2).contiguous());
  xg = to_gpu(x);
  // channels-last layout on the GPU.
  Tensor cl = xg.to(Layout::channels_last);
  CHECK(cl.layout() == Layout::channels_last);
  CHECK(cl.strides() == channels_last_strides(x.shape()));
  CHECK(max_abs_diff(to_cpu(cl), x) == 0.0);
  Tensor clc = cl.clone();
  CHECK(clc.layout() == Layout::channels_last);
  CHECK(max_abs_diff(to_cpu(clc), x) == 0.0);
  CHECK(max_abs_diff(to_cpu(cl.contiguous()), x) == 0.0);
  check_same(xg.permute({0, 2, 1, 3, 4}).to(Layout::channels_last).contiguous(), x.permute({0, 2, 1, 3, 4}).contiguous());
  // fill_ on a non-contiguous view, in several dtypes.
  for (DType dtype : {DType::f32, DType::f64, DType::i64, DType::i32, DType::u8}) {
    CAPTURE(dtype_name(dtype));
    Tensor base = rand({4, 6, 5}, gen, 0.0, 100.0, TensorOptions{DType::f64}).to(dtype);
    Tensor bg = to_gpu(base);
    bg.permute({2, 0, 1}).narrow(2, 1, 3).fill_(7.0);
    base.permute({2, 0, 1}).narrow(2, 1, 3).fill_(7.0);
    check_same(bg, base);
    check_same(Tensor::full({3, 5}, 42.0, TensorOptions{dtype, Device::cuda(0)}), Tensor::full({3, 5}, 42.0, TensorOptions{dtype}));
  }
  // A CUDA tensor prints (through a GPU-side conversion to the CPU).
  CHECK(to_gpu(Tensor::from_doubles({1, 2, 3}, {3})).permute({0}).str().find("{1, 2, 3}") != std::string::npos);
}

TEST_CASE("cuda pinned memory: to(cuda) is queued, keeps its source alive and reuses blocks after the copy") {
  TLK_REQUIRE_GPU();
  Generator gen(31);
  const Tensor values = tlk::rand({3, 40, 50, 60}, gen);
  Tensor pinned = Tensor::pinned_empty(values.shape());
  CHECK(pinned.is_pinned());
  CHECK(pinned.device().is_cpu());
  pinned.copy_(values);
  const Tensor on_gpu = pinned.to(Device::cuda());
  CHECK(max_abs_diff(to_cpu(on_gpu), values) == 0.0);
  // The source dropped right after the queued copy: the copy still reads it, and the block is
  // reused only after the copy (many rounds, each checked).
  auto& pinned_pool = cuda::PinnedHostAllocator::instance();
  const auto hits_before = pinned_pool.stats().cache_hits;
  std::vector<Tensor> copies;
  for (int round = 0; round < 12; ++round) {
    Tensor source = Tensor::pinned_empty(values.shape());
    source.copy_(values);
    source.narrow(0, 0, 1).fill_(static_cast<double>(round));
    copies.push_back(source.to(Device::cuda()));
  }
  for (int round = 0; round < 12; ++round) {
    CAPTURE(round);
    const Tensor got = to_cpu(copies[static_cast<std::size_t>(round)]);
    CHECK(max_abs_diff(got.narrow(0, 1, 2), values.narrow(0, 1, 2)) == 0.0);
    for (double v : got.narrow(0, 0, 1).to_doubles()) REQUIRE(v == static_cast<double>(round));
  }
  CHECK(pinned_pool.stats().cache_hits > hits_before);
  // u8 labels, and the copy back to the host.
  Tensor labels = Tensor::pinned_empty({5, 6}, DType::u8);
  labels.fill_(7.0);
  CHECK(to_cpu(labels.to(Device::cuda())).to_doubles() == std::vector<double>(30, 7.0));
}
