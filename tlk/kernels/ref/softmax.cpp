#include "tlk/kernels/ref/softmax.h"

#include <cmath>
#include <limits>

#include "tlk/kernels/ref/common.h"

namespace tlk::kernels::ref {

namespace {

// A contiguous tensor seen as [outer, channels, inner] around the reduced axis `dim`: the
// `outer * inner` lines along it start at index(o, 0, i) and step by `inner`.
ChannelView lines_along(const Tensor& t, int dim, const char* op) {
  check(t.dim() >= 2, "{}: expected an input of at least 2 dimensions ([N, C, ...]), got {}-D with shape {}", op,
        t.dim(), t.shape().str());
  return ChannelView::of(t.shape(), normalize_axis(dim, t.dim(), op));
}

// Calls line(start) for the first element of every line of `l`, in parallel when `numel` is large.
template <class Fn>
void for_each_line(const ChannelView& l, std::int64_t numel, Fn&& line) {
#pragma omp parallel for collapse(2) if (l.outer * l.inner > 16 && numel > 32768)
  for (std::int64_t o = 0; o < l.outer; ++o)
    for (std::int64_t i = 0; i < l.inner; ++i) line(l.index(o, 0, i));
}

// Note [Stable softmax]: the largest value of each line is subtracted before exp, so exp never
// overflows and the largest term is exactly 1 (the sum is >= 1, its log well defined); log_softmax
// is computed as (x - max) - log Σ exp(x - max) instead of log(softmax), which would underflow to
// -inf for very negative inputs.
Tensor softmax_impl(const Tensor& input, int dim, bool log, const char* op) {
  Tensor x = cpu_input(input, op, "input");
  const ChannelView l = lines_along(x, dim, op);
  x = x.contiguous();
  Tensor out = empty_like(x);
  visit_floating(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* py = out.data<T>();
    for_each_line(l, x.numel(), [&](std::int64_t s) {
      double max = -std::numeric_limits<double>::infinity();
      for (std::int64_t j = 0; j < l.channels; ++j) max = std::max(max, static_cast<double>(px[s + j * l.inner]));
      double sum = 0.0;
      for (std::int64_t j = 0; j < l.channels; ++j) sum += std::exp(static_cast<double>(px[s + j * l.inner]) - max);
      const double log_sum = std::log(sum);
      for (std::int64_t j = 0; j < l.channels; ++j) {
        const double shifted = static_cast<double>(px[s + j * l.inner]) - max;
        py[s + j * l.inner] = static_cast<T>(log ? shifted - log_sum : std::exp(shifted) / sum);
      }
    });
  });
  return out;
}

Tensor softmax_backward_impl(const Tensor& grad_in, const Tensor& output_in, int dim, bool log, const char* op) {
  Tensor g = cpu_input(grad_in, op, "grad_output"), y = cpu_input(output_in, op, "output");
  check_same_dtype(op, {&g, &y});
  check(g.shape() == y.shape(), "{}: grad_output has shape {}, expected the output's shape {}", op, g.shape().str(),
        y.shape().str());
  const ChannelView l = lines_along(y, dim, op);
  g = g.contiguous();
  y = y.contiguous();
  Tensor out = empty_like(y);
  visit_floating(y.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T *pg = g.data<T>(), *py = y.data<T>();
    T* dx = out.data<T>();
    for_each_line(l, y.numel(), [&](std::int64_t s) {
      double acc = 0.0;  // Σ g y for softmax, Σ g for log_softmax
      for (std::int64_t j = 0; j < l.channels; ++j) {
        const std::int64_t i = s + j * l.inner;
        acc += log ? static_cast<double>(pg[i]) : static_cast<double>(pg[i]) * static_cast<double>(py[i]);
      }
      for (std::int64_t j = 0; j < l.channels; ++j) {
        const std::int64_t i = s + j * l.inner;
        const double gi = pg[i], yi = py[i];
        dx[i] = static_cast<T>(log ? gi - std::exp(yi) * acc : yi * (gi - acc));
      }
    });
  });
  return out;
}

}  // namespace

Tensor softmax_forward(const Tensor& input, int dim) { return softmax_impl(input, dim, false, "softmax"); }
Tensor log_softmax_forward(const Tensor& input, int dim) { return softmax_impl(input, dim, true, "log_softmax"); }
Tensor softmax_backward(const Tensor& grad_output, const Tensor& output, int dim) {
  return softmax_backward_impl(grad_output, output, dim, false, "softmax backward");
}
Tensor log_softmax_backward(const Tensor& grad_output, const Tensor& output, int dim) {
  return softmax_backward_impl(grad_output, output, dim, true, "log_softmax backward");
}

}  // namespace tlk::kernels::ref
