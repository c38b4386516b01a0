#include "tlk/kernels/cpu/batch_norm.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "tlk/kernels/cpu/primitive_cache.h"
#include "tlk/kernels/cpu/same_layout.h"
#include "tlk/tensor/blocked_format.h"
#include "tlk/tensor/error.h"

namespace tlk::kernels::cpu {

namespace {

using dnnl::memory;

// Note [Batch norm primitives]: the data descriptor is the input's own (memory_desc_of), never `any`,
// so the primitive works in whatever layout the input arrives in and the output has that layout too.
// Scale and shift are always passed (ones and zeros without an affine transform), so the backward
// always gives diff_scale and diff_shift, which NormGrads carries. Evaluation uses the running
// statistics as oneDNN's global statistics; its forward is still built as forward_training so that it
// can be the backward's hint.
struct BatchNormPrimitives {
  dnnl::batch_normalization_forward::primitive_desc fwd_pd;
  dnnl::batch_normalization_forward fwd;
  dnnl::batch_normalization_backward::primitive_desc bwd_pd;
  dnnl::batch_normalization_backward bwd;
};

std::shared_ptr<BatchNormPrimitives> bn_primitives(const memory::desc& data, bool training, double eps) {
  const std::string key = fmt::format("batch_norm {} training={} eps={}", memory_desc_key(data), training, eps);
  return PrimitiveCache::instance().get<BatchNormPrimitives>(key, [&] {
    try {
      auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
      if (!training) flags = flags | dnnl::normalization_flags::use_global_stats;
      const auto e = static_cast<float>(eps);
      auto entry = std::make_shared<BatchNormPrimitives>();
      entry->fwd_pd = dnnl::batch_normalization_forward::primitive_desc(
          dnnl::batch_normalization_forward::desc(dnnl::prop_kind::forward_training, data, e, flags), cpu_engine());
      entry->fwd = dnnl::batch_normalization_forward(entry->fwd_pd);
      entry->bwd_pd = dnnl::batch_normalization_backward::primitive_desc(
          dnnl::batch_normalization_backward::desc(dnnl::prop_kind::backward, data, data, e, flags), cpu_engine(),
          entry->fwd_pd);
      entry->bwd = dnnl::batch_normalization_backward(entry->bwd_pd);
      return entry;
    } catch (const dnnl::error& err) {
      fail("batch_norm: oneDNN could not build a primitive for layout {}: {}", memory_desc_key(data), err.what());
    }
  });
}

bool per_channel_or_undefined(const Tensor& t, std::int64_t c) {
  return !t.defined() || (t.dtype() == DType::f32 && t.device().is_cpu() && t.shape() == Shape{c});
}

// A plain f32 [C] tensor: `t` itself (contiguous), or `fill` everywhere when `t` is undefined.
Tensor channel_vector(const Tensor& t, std::int64_t c, double fill) {
  return t.defined() ? t.detach().contiguous() : Tensor::full({c}, fill);
}

memory mem(const memory::desc& d, const Tensor& t) { return memory(d, cpu_engine(), data_of(t)); }

}  // namespace

bool batch_norm_supported(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                          const Tensor& running_var, const BatchNormOptions& opt) {
  if (!x.defined() || x.dtype() != DType::f32 || !x.device().is_cpu() || x.dim() < 2 || x.dim() > 5 || x.numel() == 0)
    return false;
  const std::int64_t c = x.shape()[1];
  for (const Tensor* t : {&weight, &bias, &running_mean, &running_var})
    if (!per_channel_or_undefined(*t, c)) return false;
  if (running_mean.defined() != running_var.defined()) return false;
  if (!(std::isfinite(opt.eps) && opt.eps >= 0.0)) return false;
  if (!(std::isfinite(opt.momentum) && opt.momentum >= 0.0 && opt.momentum <= 1.0)) return false;
  if (opt.training) return x.numel() / c > 1;
  return running_mean.defined();
}

ref::NormForward batch_norm_forward(const Tensor& input, const Tensor& weight, const Tensor& bias,
                                    const Tensor& running_mean, const Tensor& running_var,
                                    const BatchNormOptions& opt) {
  const char* op = "batch_norm";
  check(batch_norm_supported(input, weight, bias, running_mean, running_var, opt),
        "{}: the CPU fast path does not take input {} with these arguments (see batch_norm_supported)", op,
        input.defined() ? input.shape().str() : std::string("undefined"));
  const Tensor x = dense(f32_cpu(input, op, "input"));
  const std::int64_t c = x.shape()[1];
  const memory::desc data = memory_desc_of(x);
  auto p = bn_primitives(data, opt.training, opt.eps);
  const Tensor scale = channel_vector(weight, c, 1.0), shift = channel_vector(bias, c, 0.0);
  Tensor mean, var;
  if (opt.training) {
    mean = Tensor::empty({c});
    var = Tensor::empty({c});
  } else {
    mean = running_mean.detach().contiguous();
    var = running_var.detach().contiguous();
  }
  Tensor y = empty_in_layout_of(x);
  const memory::desc stat = p->fwd_pd.mean_desc();
  p->fwd.execute(cpu_stream(), {{DNNL_ARG_SRC, mem(data, x)},
                                {DNNL_ARG_DST, mem(data, y)},
                                {DNNL_ARG_SCALE, mem(p->fwd_pd.weights_desc(), scale)},
                                {DNNL_ARG_SHIFT, mem(p->fwd_pd.weights_desc(), shift)},
                                {DNNL_ARG_MEAN, mem(stat, mean)},
                                {DNNL_ARG_VARIANCE, mem(p->fwd_pd.variance_desc(), var)}});
  cpu_stream().wait();

  ref::NormForward out{y, mean.clone(), Tensor::empty({c})};
  const float* pv = var.data<float>();
  float* pr = out.inv_std.data<float>();
  for (std::int64_t i = 0; i < c; ++i)
    pr[i] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(pv[i]) + opt.eps));

  if (opt.training && running_mean.defined())  // Note [Running statistics] in kernels/ref/norm.h
    ref::update_running_statistics(running_mean, running_var, mean.to_doubles(), var.to_doubles(),
                                   static_cast<double>(x.numel() / c), opt.momentum);
  return out;
}

ref::NormGrads batch_norm_backward(const Tensor& grad_output, const Tensor& input, const Tensor& weight,
                                   const Tensor& mean_in, const Tensor& inv_std_in, const BatchNormOptions& opt) {
  const char* op = "batch_norm backward";
  const Tensor x = dense(f32_cpu(input, op, "input"));
  const Tensor grad = f32_cpu(grad_output, op, "grad_output");
  check(x.dim() >= 2 && x.dim() <= 5, "{}: expected the saved input [N, C] or [N, C, D, H, W], got shape {}", op,
        x.shape().str());
  check(grad.shape() == x.shape(), "{}: grad_output has shape {}, expected the input's shape {}", op,
        grad.shape().str(), x.shape().str());
  const std::int64_t c = x.shape()[1];
  const Tensor mean = f32_cpu(mean_in, op, "mean").contiguous(), inv_std = f32_cpu(inv_std_in, op, "inv_std");
  check(mean.shape() == Shape{c} && inv_std.shape() == Shape{c} && per_channel_or_undefined(weight, c),
        "{}: expected mean, inv_std and weight [{}] for input {}, got {}, {} and {}", op, c, x.shape().str(),
        mean.shape().str(), inv_std.shape().str(), weight.defined() ? weight.shape().str() : std::string("none"));
  const memory::desc data = memory_desc_of(x);
  auto p = bn_primitives(data, opt.training, opt.eps);
  // Note [Variance from inv_std]: the forward saved 1/sqrt(var + eps) (what the reference saves);
  // oneDNN wants the variance, recovered as 1/r² - eps in double, which it turns back into r.
  Tensor var = Tensor::empty({c});
  {
    const std::vector<double> r = inv_std.to_doubles();
    float* pv = var.data<float>();
    for (std::int64_t i = 0; i < c; ++i) pv[i] = static_cast<float>(1.0 / (r[i] * r[i]) - opt.eps);
  }
  const Tensor scale = channel_vector(weight, c, 1.0), shift = Tensor::zeros({c});
  const Tensor g = in_format(grad, data);
  ref::NormGrads out{empty_in_layout_of(x), Tensor::empty({c}), Tensor::empty({c})};
  const memory::desc wd = p->bwd_pd.weights_desc();
  p->bwd.execute(cpu_stream(), {{DNNL_ARG_SRC, mem(data, x)},
                                {DNNL_ARG_DIFF_DST, mem(data, g)},
                                {DNNL_ARG_DIFF_SRC, mem(data, out.input)},
                                {DNNL_ARG_MEAN, mem(p->bwd_pd.mean_desc(), mean)},
                                {DNNL_ARG_VARIANCE, mem(p->bwd_pd.variance_desc(), var)},
                                {DNNL_ARG_SCALE, mem(wd, scale)},
                                {DNNL_ARG_SHIFT, mem(wd, shift)},
                                {DNNL_ARG_DIFF_SCALE, mem(p->bwd_pd.diff_weights_desc(), out.weight)},
                                {DNNL_ARG_DIFF_SHIFT, mem(p->bwd_pd.diff_weights_desc(), out.bias)}});
  cpu_stream().wait();
  return out;
}

}  // namespace tlk::kernels::cpu
