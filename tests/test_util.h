#pragma once
// Helpers shared by TLK's test suites.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "tlk/tlk.h"

namespace tlk::testing {

/// A random f64 leaf tensor with requires_grad set, for gradient checks.
Tensor random_leaf(const Shape& shape, Generator& gen, double low = -1.0, double high = 1.0);
/// Largest absolute elementwise difference (shapes must match).
double max_abs_diff(const Tensor& a, const Tensor& b);
/// ../shared beside the checkout, or an empty path when it is absent (tests that need it skip).
std::filesystem::path shared_dir();

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
