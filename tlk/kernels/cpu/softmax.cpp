#include "tlk/kernels/cpu/softmax.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <oneapi/dnnl/dnnl.hpp>
#include <type_traits>
#include <vector>

#include "tlk/kernels/cpu/primitive_cache.h"
#include "tlk/kernels/cpu/same_layout.h"
#include "tlk/kernels/ref/softmax.h"
#include "tlk/tensor/blocked_format.h"
#include "tlk/tensor/error.h"

namespace tlk::kernels::cpu {

namespace {

using dnnl::memory;

// Note [Softmax primitives]: the data descriptor is the input's own (memory_desc_of), never `any`, so
// the output and the gradient keep the input's layout. Softmax and log-softmax are separate primitive
// kinds in oneDNN 2.6 (softmax_v2 with an algorithm came later); one template serves both.
template <class Fwd, class Bwd>
struct SoftmaxPrimitives {
  typename Fwd::primitive_desc fwd_pd;
  Fwd fwd;
  typename Bwd::primitive_desc bwd_pd;
  Bwd bwd;
};

template <class Fwd, class Bwd>
std::shared_ptr<SoftmaxPrimitives<Fwd, Bwd>> primitives(const char* op, const memory::desc& data) {
  using Entry = SoftmaxPrimitives<Fwd, Bwd>;
  const std::string key = fmt::format("{} axis=1 {}", op, memory_desc_key(data));
  return PrimitiveCache::instance().get<Entry>(key, [&] {
    try {
      auto entry = std::make_shared<Entry>();
      entry->fwd_pd =
          typename Fwd::primitive_desc(typename Fwd::desc(dnnl::prop_kind::forward_training, data, 1), cpu_engine());
      entry->fwd = Fwd(entry->fwd_pd);
      entry->bwd_pd = typename Bwd::primitive_desc(typename Bwd::desc(data, data, 1), cpu_engine(), entry->fwd_pd);
      entry->bwd = Bwd(entry->bwd_pd);
      return entry;
    } catch (const dnnl::error& err) {
      fail("{}: oneDNN could not build a primitive for layout {}: {}", op, memory_desc_key(data), err.what());
    }
  });
}

// Note [Plain softmax]: oneDNN 2.6 has no JIT softmax over a non-innermost axis, and its reference
// code over axis 1 of a plain [N, C, D, H, W] tensor is several times slower than TLK's reference
// loops (measured: 3.9 s vs 0.6 s forward on [2, 32, 64, 64, 64]), so a plain input of rank > 2 takes
// those loops; channels-last (axis 1 innermost) and blocked inputs take oneDNN's JIT kernels.
bool use_reference(const Tensor& t) { return t.layout() == Layout::plain && t.dim() > 2; }

memory mem(const memory::desc& d, const Tensor& t) { return memory(d, cpu_engine(), data_of(t)); }

void check_rank(const char* op, const Tensor& x) {
  check(x.dim() >= 2 && x.dim() <= 12 && x.numel() > 0,
        "{}: expected a non-empty input [N, C, ...] of rank 2 to 12, got shape {}", op, x.shape().str());
}

template <class Fwd>
constexpr bool is_log() {
  return std::is_same_v<Fwd, dnnl::logsoftmax_forward>;
}

template <class Fwd, class Bwd>
Tensor forward(const char* op, const Tensor& input) {
  const Tensor x = dense(f32_cpu(input, op, "input"));
  check_rank(op, x);
  if (use_reference(x)) return is_log<Fwd>() ? ref::log_softmax_forward(x, 1) : ref::softmax_forward(x, 1);
  const memory::desc data = memory_desc_of(x);
  auto p = primitives<Fwd, Bwd>(op, data);
  Tensor y = empty_in_layout_of(x);
  p->fwd.execute(cpu_stream(), {{DNNL_ARG_SRC, mem(data, x)}, {DNNL_ARG_DST, mem(data, y)}});
  cpu_stream().wait();
  return y;
}

template <class Fwd, class Bwd>
Tensor backward(const char* op, const Tensor& grad_output, const Tensor& output) {
  const Tensor y = dense(f32_cpu(output, op, "output"));
  const Tensor grad = f32_cpu(grad_output, op, "grad_output");
  check_rank(op, y);
  check(grad.shape() == y.shape(), "{}: grad_output has shape {}, expected the output's shape {}", op,
        grad.shape().str(), y.shape().str());
  if (use_reference(y))
    return is_log<Fwd>() ? ref::log_softmax_backward(grad, y, 1) : ref::softmax_backward(grad, y, 1);
  const memory::desc data = memory_desc_of(y);
  auto p = primitives<Fwd, Bwd>(op, data);
  const Tensor g = in_format(grad, data);
  Tensor dx = empty_in_layout_of(y);
  p->bwd.execute(cpu_stream(),
                 {{DNNL_ARG_DST, mem(data, y)}, {DNNL_ARG_DIFF_DST, mem(data, g)}, {DNNL_ARG_DIFF_SRC, mem(data, dx)}});
  cpu_stream().wait();
  return dx;
}

}  // namespace

bool softmax_supported(const Tensor& x, int dim) {
  if (!x.defined() || x.dtype() != DType::f32 || !x.device().is_cpu() || x.dim() < 2 || x.dim() > 12 || x.numel() == 0)
    return false;
  return dim == 1 || dim + x.dim() == 1;
}

Tensor softmax_forward(const Tensor& input) {
  return forward<dnnl::softmax_forward, dnnl::softmax_backward>("softmax", input);
}
Tensor log_softmax_forward(const Tensor& input) {
  return forward<dnnl::logsoftmax_forward, dnnl::logsoftmax_backward>("log_softmax", input);
}
Tensor softmax_backward(const Tensor& grad_output, const Tensor& output) {
  return backward<dnnl::softmax_forward, dnnl::softmax_backward>("softmax", grad_output, output);
}
Tensor log_softmax_backward(const Tensor& grad_output, const Tensor& output) {
  return backward<dnnl::logsoftmax_forward, dnnl::logsoftmax_backward>("log_softmax", grad_output, output);
}

}  // namespace tlk::kernels::cpu
