// The cuDNN backend-API convolution path (kernels/cuda/cudnn_engine.h) against the reference kernels,
// with the path switched on and off, in f64, f32 with full fp32 math and f32 with TF32; plus its plan
// cache's steady state and the switch itself.
#include <string>
#include <vector>

#include "compare_to_ref.h"
#include "cuda_test_util.h"
#include "tlk/kernels/cuda/conv3d.h"
#include "tlk/kernels/cuda/cudnn_context.h"
#include "tlk/kernels/cuda/cudnn_engine.h"
#include "tlk/kernels/ref/conv3d.h"

using namespace tlk;
namespace kc = kernels::cuda;
namespace ref = kernels::ref;
using testing::gpu_rel_error;
using testing::to_cpu;
using testing::to_gpu;
using testing::to_gpu_channels_last;

using testing::Tf32Scope;
using Mode = testing::PrecisionMode;
static constexpr const auto& kModes = testing::kPrecisionModes;

namespace {

// Sets the backend-API switch for a scope and restores it afterwards.
struct EngineScope {
  bool saved;
  explicit EngineScope(bool on) : saved(kc::conv_engine_api()) { kc::set_conv_engine_api(on); }
  ~EngineScope() { kc::set_conv_engine_api(saved); }
};

// A random CPU tensor of `dtype` (drawn in f64, then rounded).
Tensor random(const Shape& shape, Generator& gen, DType dtype, double stddev = 1.0) {
  return randn(shape, gen, 0.0, stddev, TensorOptions{DType::f64}).to(dtype);
}

// The error of a GPU result against an f64 reference, after checking it is a GPU tensor of the
// reference's shape and of `dtype`, dense in `layout`.
double error_of(const Tensor& got, const Tensor& expected, DType dtype, Layout layout = Layout::plain) {
  CHECK(got.dtype() == dtype);
  return testing::gpu_error(got, expected, layout);
}

struct ConvCase {
  const char* name;
  Shape x, w;
  Conv3dOptions opt;
  bool channels_last;    // x and the output gradient go to the GPU channels-last
  bool engine_expected;  // plain f32 with many channels: the backend path must serve all three passes
};

const std::vector<ConvCase>& conv_cases() {
  const Conv3dOptions pad1 = Conv3dOptions{}.with_padding({1, 1, 1});
  const Conv3dOptions anisotropic = Conv3dOptions{}.with_stride({1, 2, 2}).with_padding({0, 1, 1});
  static const std::vector<ConvCase> all = {
      {"1->32, 3x3x3", {1, 1, 9, 10, 11}, {32, 1, 3, 3, 3}, pad1, false, false},
      {"32->32, 3x3x3, batch 2", {2, 32, 6, 7, 8}, {32, 32, 3, 3, 3}, pad1, false, true},
      {"64->32, 3x3x3, stride 2", {2, 64, 8, 9, 10}, {32, 64, 3, 3, 3}, pad1.with_stride({2, 2, 2}), false, true},
      {"32->32, 1x1x1", {1, 32, 5, 6, 7}, {32, 32, 1, 1, 1}, Conv3dOptions{}, false, true},
      {"5->17, 1x3x3, stride (1,2,2), batch 3", {3, 5, 5, 10, 11}, {17, 5, 1, 3, 3}, anisotropic, false, false},
      {"32->32, 3x3x3, channels-last input", {2, 32, 6, 6, 7}, {32, 32, 3, 3, 3}, pad1, true, false},
  };
  return all;
}

// Human-readable cache state for failure messages.
std::string choices_text() {
  std::string text;
  for (const std::string& line : kc::conv_engine_choices()) text += line + "\n";
  return text;
}

}  // namespace

TEST_CASE("cuda conv engine: the three passes match the reference with the backend path on and off") {
  TLK_REQUIRE_GPU();
  for (const bool engine : {true, false}) {
    CAPTURE(engine);
    EngineScope engine_scope(engine);
    Generator gen(811);
    for (const Mode& mode : kModes) {
      CAPTURE(mode.name);
      Tf32Scope tf32(mode.tf32);
      for (const ConvCase& c : conv_cases()) {
        CAPTURE(c.name);
        // Inputs rounded to the mode's dtype; the reference runs in f64 on the same values.
        const Tensor x = random(c.x, gen, mode.dtype), w = random(c.w, gen, mode.dtype, 0.2);
        const Tensor x64 = x.to(DType::f64), w64 = w.to(DType::f64);
        const Tensor y_ref = ref::conv3d_forward(x64, w64, Tensor(), c.opt);
        const Tensor dy = random(y_ref.shape(), gen, mode.dtype);
        const Tensor dy64 = dy.to(DType::f64);
        const Tensor gx = c.channels_last ? to_gpu_channels_last(x) : to_gpu(x);
        const Tensor gdy = c.channels_last ? to_gpu_channels_last(dy) : to_gpu(dy);
        const Tensor gw = to_gpu(w);
        const std::int64_t fallbacks = kc::conv_engine_fallbacks();
        const Layout layout = c.channels_last ? Layout::channels_last : Layout::plain;
        CHECK(error_of(kc::conv3d_forward(gx, gw, Tensor(), c.opt), y_ref, mode.dtype, layout) < mode.tol);
        CHECK(error_of(kc::conv3d_backward_data(gdy, gw, c.x, c.opt), ref::conv3d_backward_data(dy64, w64, c.x, c.opt),
                       mode.dtype, layout) < mode.tol);
        CHECK(error_of(kc::conv3d_backward_weights(gdy, gx, c.w, c.opt),
                       ref::conv3d_backward_weights(dy64, x64, c.w, c.opt), mode.dtype) < mode.tol);
        // The UNet's plain f32 shapes must be served by an engine; the others may fall back (reported).
        if (engine && mode.dtype == DType::f32 && c.engine_expected)
          CHECK_MESSAGE(kc::conv_engine_fallbacks() == fallbacks, "engine choices:\n" << choices_text());
        else if (kc::conv_engine_fallbacks() != fallbacks)
          MESSAGE("fell back to the legacy path; engine choices:\n" << choices_text());
      }
    }
  }
}

TEST_CASE("cuda conv engine: transposed convolution (through backward-data) matches the reference") {
  TLK_REQUIRE_GPU();
  EngineScope engine_scope(true);
  Generator gen(812);
  // The UNet's upsampling: weight [Ci, Co, 2, 2, 2], stride 2.
  const Shape xs{2, 64, 3, 4, 5}, ws{64, 32, 2, 2, 2};
  const Conv3dOptions opt = Conv3dOptions{}.with_stride({2, 2, 2});
  for (const Mode& mode : kModes) {
    CAPTURE(mode.name);
    Tf32Scope tf32(mode.tf32);
    const Tensor x = random(xs, gen, mode.dtype), w = random(ws, gen, mode.dtype, 0.2),
                 b = random({32}, gen, mode.dtype);
    const Tensor y_ref = ref::conv_transpose3d_forward(x.to(DType::f64), w.to(DType::f64), b.to(DType::f64), opt);
    CHECK(error_of(kc::conv_transpose3d_forward(to_gpu(x), to_gpu(w), to_gpu(b), opt), y_ref, mode.dtype) < mode.tol);
  }
}

TEST_CASE("cuda conv engine: the second call with the same shapes searches nothing") {
  TLK_REQUIRE_GPU();
  EngineScope engine_scope(true);
  Tf32Scope tf32(true);
  Generator gen(813);
  kc::clear_conv_algorithm_cache();  // clears the plan cache too
  const Conv3dOptions opt = Conv3dOptions{}.with_padding({1, 1, 1});
  const Tensor x = to_gpu(random({2, 8, 6, 7, 5}, gen, DType::f32));
  const Tensor w = to_gpu(random({12, 8, 3, 3, 3}, gen, DType::f32, 0.2));
  const Tensor dy = to_gpu(random({2, 12, 6, 7, 5}, gen, DType::f32));
  auto run_all = [&] {
    return std::vector<Tensor>{kc::conv3d_forward(x, w, Tensor(), opt), kc::conv3d_backward_data(dy, w, x.shape(), opt),
                               kc::conv3d_backward_weights(dy, x, w.shape(), opt)};
  };
  const std::int64_t searches = kc::conv_algorithm_searches(), engine_searches = kc::conv_engine_searches();
  const std::int64_t fallbacks = kc::conv_engine_fallbacks();
  const std::vector<Tensor> first = run_all();
  CHECK(kc::conv_engine_searches() == engine_searches + 3);  // one plan search per pass
  CHECK(kc::conv_algorithm_searches() == searches + 3);      // counted once per call, whichever path
  CHECK_MESSAGE(kc::conv_engine_fallbacks() == fallbacks, "engine choices:\n" << choices_text());
  CHECK(kc::conv_engine_choices().size() == 3);
  const std::vector<Tensor> second = run_all();
  CHECK(kc::conv_engine_searches() == engine_searches + 3);  // steady state: nothing searched
  CHECK(kc::conv_algorithm_searches() == searches + 3);
  for (std::size_t i = 0; i < first.size(); ++i) CHECK(gpu_rel_error(second[i], to_cpu(first[i])) < 1e-5);
  {
    // The TF32 switch is part of the key: a new search, then none.
    Tf32Scope fp32(false);
    kc::conv3d_forward(x, w, Tensor(), opt);
    CHECK(kc::conv_engine_searches() == engine_searches + 4);
    kc::conv3d_forward(x, w, Tensor(), opt);
    CHECK(kc::conv_engine_searches() == engine_searches + 4);
  }
  {
    // Switched off, the backend path is not consulted (the legacy path searches its own algorithms).
    EngineScope off(false);
    const std::int64_t before = kc::conv_algorithm_searches();
    const Tensor y = kc::conv3d_forward(x, w, Tensor(), opt);
    CHECK(kc::conv_engine_searches() == engine_searches + 4);
    CHECK(kc::conv_algorithm_searches() == before + 1);
    CHECK(gpu_rel_error(y, to_cpu(first[0])) < 5e-3);
  }
}

TEST_CASE("cuda conv engine: the switch, and CPU operands are errors naming the op") {
  // Runs without a GPU: the checks come before any device work.
  const bool saved = kc::conv_engine_api();
  kc::set_conv_engine_api(!saved);
  CHECK(kc::conv_engine_api() == !saved);
  kc::set_conv_engine_api(saved);
  CHECK(kc::conv_engine_api() == saved);
  const Tensor x = Tensor::zeros({1, 3, 4, 4, 4}), w = Tensor::zeros({5, 3, 3, 3, 3}),
               y = Tensor::zeros({1, 5, 2, 2, 2});
  CHECK_THROWS_WITH_AS(kc::engine_convolve(kc::ConvPass::forward, x, w, y, Conv3dOptions{}, "conv3d (engine test)"),
                       doctest::Contains("conv3d (engine test)"), Error);
}
