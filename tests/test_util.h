#pragma once
// Helpers shared by TLK's test suites.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "tlk/data/classification_dataset.h"
#include "tlk/tlk.h"

namespace tlk::testing {

/// A random f64 leaf tensor with requires_grad set, for gradient checks.
Tensor random_leaf(const Shape& shape, Generator& gen, double low = -1.0, double high = 1.0);
/// Largest absolute elementwise difference (shapes must match); a NaN on one side only is an infinite
/// difference, NaN on both sides none (Note [NaN in comparisons]).
double max_abs_diff(const Tensor& a, const Tensor& b);
/// ../shared beside the checkout, or an empty path when it is absent (tests that need it skip).
std::filesystem::path shared_dir();
/// Same shape, dtype and bytes (NaN payloads included): the check for "bit for bit".
bool bit_identical(const Tensor& a, const Tensor& b);
/// A u8 label map of `shape`, each voxel one of `values` drawn uniformly from `gen`.
Tensor random_labels(const Shape& shape, Generator& gen, const std::vector<std::uint8_t>& values);

}  // namespace tlk::testing

/// Runs gradcheck and reports its message on failure.
#define CHECK_GRADCHECK(fn, inputs, ...)                                                    \
  do {                                                                                      \
    auto tlk_gc_result = ::tlk::autograd::gradcheck(fn, inputs __VA_OPT__(, ) __VA_ARGS__); \
    CHECK_MESSAGE(tlk_gc_result.ok, tlk_gc_result.message);                                 \
  } while (0)

#include "tlk/autograd/function.h"
#include "tlk/kernels/ref/conv3d.h"
#include "tlk/kernels/ref/elementwise.h"

// ---- Helpers shared by the kernel tests (tests/kernels) ---------------------------------------------
#include <functional>
#include <vector>

namespace tlk::testing {

/// TensorOptions for f64, the dtype of gradient checks. Example: `randn({2, 3}, gen, 0, 1, f64())`.
TensorOptions f64();
/// A CPU tensor of `shape` holding `v` (row-major), converted to `dtype`.
Tensor values(const std::vector<double>& v, const Shape& shape, DType dtype = DType::f64);
/// Largest elementwise |a - b| / (1 + |b|) (shapes must match): a relative difference that stays
/// meaningful near zero.
double max_rel_diff(const Tensor& a, const Tensor& b);
/// Checks that fn on an f32 copy of a random normal f64 input of `shape` agrees with fn on the f64
/// input, element by element, within doctest::Approx(...).epsilon(rel).
void check_f32_matches_f64(const std::function<Tensor(const Tensor&)>& fn, const Shape& shape, Generator& gen,
                           double rel = 1e-5);

}  // namespace tlk::testing

// ---- Helpers shared by the CPU fast-path kernel tests (tests/kernels/*_cpu_test.cpp) ---------------
#include <cstddef>
#include <oneapi/dnnl/dnnl.hpp>

namespace tlk::testing {

/// max |got - expected| relative to the largest reference magnitude (fp32 sums over many values).
/// Example: `CHECK(rel_error(cpu::relu_forward(x), ref::unary(x, UnaryOp::relu)) < 1e-6);`
double rel_error(const Tensor& got, const Tensor& expected);
/// The oneDNN format `tag` (e.g. nCdhw8c) for an f32 tensor of `shape`.
BlockedFormat format_with_tag(const Shape& shape, dnnl::memory::format_tag tag);
/// The channel-blocked format nCdhw8c (block 8) or nCdhw16c (block 16) for an f32 tensor of `shape`.
BlockedFormat channel_blocked(const Shape& shape, int block);
/// `t` in oneDNN's format `tag`. Example: `Tensor x4 = blocked(x, dnnl::memory::format_tag::nCdhw4c);`
Tensor blocked(const Tensor& t, dnnl::memory::format_tag tag);
/// `t` in nCdhw8c (block 8) or nCdhw16c (block 16). Example: `Tensor xb = blocked(x, 16);`
Tensor blocked(const Tensor& t, int block);

/// One input layout the fast kernels must handle: plain, channels-last, nCdhw8c or nCdhw16c.
struct LayoutCase {
  const char* name;
  int block;  // 0: not blocked
  Layout layout;
  /// `t` in this layout.
  Tensor make(const Tensor& t) const;
};
/// Every layout the fast kernels take. Example: `for (const LayoutCase& lc : kLayouts) f(lc.make(x));`
inline constexpr LayoutCase kLayouts[] = {
    {"plain", 0, Layout::plain},
    {"channels_last", 0, Layout::channels_last},
    {"nCdhw8c", 8, Layout::blocked},
    {"nCdhw16c", 16, Layout::blocked},
};

/// True when `t` has the layout of `like` (for a blocked tensor: the same format).
bool same_layout(const Tensor& t, const Tensor& like);
/// True when every channel-padding lane of a blocked nC..Bc tensor holds exactly 0 (read from storage).
/// Note [Blocked layout]: the lanes past the last channel of an nCdhwBc tensor must hold zeros.
bool padding_is_zero(const Tensor& t);
/// Fills the allocator's cache with NaN blocks of `nbytes`, so that output a kernel leaves unwritten
/// (padding lanes included) shows up as NaN.
void poison_cache(std::size_t nbytes);
/// The bytes of `t`'s f32 storage (a blocked format's full size, padding included).
std::size_t storage_bytes(const Tensor& t);
/// Checks that `out` keeps the layout of `in` (for a blocked tensor: the same format, with zero channel
/// padding). With `one_voxel_may_be_plain`, a [N, C, 1, 1, 1] output of a channels-last input may
/// report plain (it is also row-major).
void check_layout(const Tensor& out, const Tensor& in, bool one_voxel_may_be_plain = false);

/// Runs `run` twice (the first a warm-up) and checks that the second run reorders no activation and
/// builds no oneDNN primitive. Example: `check_steady_state([&] { ops::max_pool3d(xb, opt); });`
void check_steady_state(const std::function<void()>& run);
/// Checks every tensor of `run(f32, layout)` against `run(f64, plain)` within rel_error < `tol`, for
/// the plain, channels-last and blocked layouts (`run` gives e.g. {y, x.grad(), w.grad()}).
void check_f32_layouts_match_f64(const std::function<std::vector<Tensor>(DType, Layout)>& run, double tol);

}  // namespace tlk::testing

// ---- A small synthetic nnUNet raw dataset for the pipeline tests (tests/task, tests/cli) ------------
#include <array>
#include <cstdint>
namespace tlk::testing {

/// Writes an nnUNet raw dataset to `dir` (dataset.json, imagesTr, labelsTr): `cases` CT-like volumes
/// of file shape `shape` ([dim3, dim2, dim1]) with a bright ellipsoid "kidney" (label 1) holding a
/// darker "tumor" (label 2), HU-like intensities with noise, 2.5 x 1.5 x 1.5 mm voxels stored in LPS
/// order (flipped x and y), so that orientation, cropping and resampling all have work to do.
void write_synthetic_raw_dataset(const std::filesystem::path& dir, int cases, const std::array<std::int64_t, 3>& shape,
                                 std::uint64_t seed);

/// A fresh empty temporary folder named after `name`, removed first if it exists.
std::filesystem::path fresh_temp_dir(const std::string& name);

/// Two preprocessed domains in fresh_temp_dir(name): `source` (3 labelled synthetic cases, raw data
/// in raw_source) and `target` (2 cases of another shape whose labelsTr was deleted before
/// preprocessing with the source's statistics and spacing, raw data in raw_target).
std::filesystem::path make_adaptation_domains(const std::string& name);

/// n images u8 [n, 1, 16, 16] of a bright bar on a noisy background: class 0 a horizontal bar,
/// class 1 a vertical one, class 2 (when classes = 3) a diagonal; `background` shifts the noise
/// level (a second "domain"). The classification tests' data.
data::ClassificationSplit bars(std::int64_t n, std::int64_t classes, std::uint64_t seed, int background = 0);
/// Writes the bars dataset `name`.h5 under dir; returns its path.
std::string write_bars(const std::filesystem::path& dir, const std::string& name, std::int64_t n, std::int64_t classes,
                       std::uint64_t seed, int background = 0);
/// A target-domain file of bars (background 70) with images only: no labels dataset at all.
std::string write_unlabelled(const std::filesystem::path& dir, std::int64_t n, std::uint64_t seed);

}  // namespace tlk::testing
