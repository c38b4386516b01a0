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
#define CHECK_GRADCHECK(fn, inputs, ...)                                                \
  do {                                                                                  \
    auto tlk_gc_result = ::tlk::autograd::gradcheck(fn, inputs __VA_OPT__(, ) __VA_ARGS__); \
    CHECK_MESSAGE(tlk_gc_result.ok, tlk_gc_result.message);                             \
  } while (0)

#include "tlk/autograd/function.h"
#include "tlk/kernels/ref/elementwise.h"
