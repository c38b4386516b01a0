// AutocastGuard (Note [Autocast]) on the CPU: the guard's scope and nesting, that CPU tensors are
// never cast, and that a loss widens nothing that is already f32. The GPU side (16-bit convolutions,
// the UNet under autocast) is in tests/cuda.
#include "test_util.h"
#include "tlk/autograd/autocast.h"
#include "tlk/autograd/ops/conv3d.h"
#include "tlk/autograd/ops/losses.h"

using namespace tlk;

TEST_CASE("AutocastGuard sets the thread's autocast dtype for its scope and nests") {
  CHECK(autograd::autocast_dtype() == DType::f32);
  {
    AutocastGuard outer(DType::bf16);
    CHECK(autograd::autocast_dtype() == DType::bf16);
    {
      AutocastGuard inner(DType::f32);  // off inside
      CHECK(autograd::autocast_dtype() == DType::f32);
    }
    CHECK(autograd::autocast_dtype() == DType::bf16);
  }
  CHECK(autograd::autocast_dtype() == DType::f32);
  CHECK_THROWS_WITH_AS(AutocastGuard(DType::f64), doctest::Contains("must be bf16, f16 or f32"), Error);
}

TEST_CASE("autocast leaves CPU tensors in f32, and widen_half leaves f32 and f64 alone") {
  Generator gen(3);
  const Tensor x = randn({1, 2, 4, 4, 4}, gen), w = randn({3, 2, 3, 3, 3}, gen).set_requires_grad();
  AutocastGuard amp(DType::bf16);
  CHECK_FALSE(autograd::autocast_lowers({&x, &w}));
  const Tensor y = ops::conv3d(x, w, Tensor(), Conv3dOptions{}.with_padding({1, 1, 1}));
  CHECK(y.dtype() == DType::f32);
  CHECK(autograd::autocast_lower(x).is_same(x));
  CHECK(autograd::widen_half(y).is_same(y));
  const Tensor x64 = x.to(DType::f64);
  CHECK(autograd::widen_half(x64).dtype() == DType::f64);
  // A loss under the guard computes as without it.
  Tensor labels = Tensor::zeros({1, 4, 4, 4}, TensorOptions{DType::i64});
  const double inside = ops::cross_entropy(y, labels).item();
  AutocastGuard off(DType::f32);
  CHECK(ops::cross_entropy(y, labels).item() == inside);
}
