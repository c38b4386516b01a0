#include "tlk/kernels/cpu/upsample3d.h"

#include <fmt/format.h>

#include <oneapi/dnnl/dnnl.hpp>

#include "tlk/kernels/cpu/primitive_cache.h"
#include "tlk/kernels/cpu/same_layout.h"
#include "tlk/tensor/blocked_format.h"
#include "tlk/tensor/error.h"

namespace tlk::kernels::cpu {

namespace {

using dnnl::memory;

struct ResamplePrimitives {
  dnnl::resampling_forward::primitive_desc fwd_pd;
  dnnl::resampling_forward fwd;
  dnnl::resampling_backward::primitive_desc bwd_pd;
  dnnl::resampling_backward bwd;
};

std::shared_ptr<ResamplePrimitives> resample_primitives(const char* op, const Tensor& input, const Shape& out,
                                                        UpsampleMode mode) {
  const Shape& in = input.shape();
  const std::string key =
      fmt::format("resample3d {} {} {} {}", upsample_mode_name(mode), in.str(), out.str(), layout_key(input));
  return PrimitiveCache::instance().get<ResamplePrimitives>(key, [&] {
    try {
      const auto algo =
          mode == UpsampleMode::nearest ? dnnl::algorithm::resampling_nearest : dnnl::algorithm::resampling_linear;
      const memory::desc src = memory_desc_of(input);
      const memory::desc dst(memory::dims(out.begin(), out.end()), memory::data_type::f32, format_tag_of(input));
      auto entry = std::make_shared<ResamplePrimitives>();
      entry->fwd_pd = dnnl::resampling_forward::primitive_desc(
          dnnl::resampling_forward::desc(dnnl::prop_kind::forward_training, algo, src, dst), cpu_engine());
      entry->fwd = dnnl::resampling_forward(entry->fwd_pd);
      entry->bwd_pd = dnnl::resampling_backward::primitive_desc(
          dnnl::resampling_backward::desc(algo, src, entry->fwd_pd.dst_desc()), cpu_engine(), entry->fwd_pd);
      entry->bwd = dnnl::resampling_backward(entry->bwd_pd);
      return entry;
    } catch (const dnnl::error& e) {
      fail("{}: oneDNN could not build a resampling primitive for input {} ({}), output {}: {}", op, in.str(),
           layout_key(input), out.str(), e.what());
    }
  });
}

}  // namespace

bool upsample3d_supported(const Tensor& input, const Upsample3dOptions& opt) {
  if (!input.defined() || input.dtype() != DType::f32 || !input.device().is_cpu() || input.dim() != 5) return false;
  Shape out;
  try {
    out = upsample3d_output_shape(input.shape(), opt, "upsample3d");
  } catch (const Error&) {
    return false;
  }
  if (opt.mode == UpsampleMode::trilinear && opt.align_corners) return false;
  for (int a = 0; a < 3; ++a) {
    const std::int64_t in = input.shape()[2 + a], o = out[2 + a];
    if (in <= 0 || o <= 0) return false;
    const bool integer = o % in == 0;
    if (opt.scale_factor) {
      const double s = (*opt.scale_factor)[a];
      if (static_cast<double>(in) * s != static_cast<double>(o)) return false;  // PyTorch's 1/s differs
    }
    if (opt.mode == UpsampleMode::nearest && !integer) return false;
  }
  return true;
}

Tensor upsample3d_forward(const Tensor& input_in, const Upsample3dOptions& opt) {
  const char* op = "upsample3d";
  check(upsample3d_supported(input_in, opt), "{}: the fast path does not take input {} with {} (use ref)", op,
        input_in.defined() ? input_in.shape().str() : std::string("undefined"), opt.str());
  const Shape out = upsample3d_output_shape(input_in.shape(), opt, op);
  Tensor x = in_primitive_layout(f32_cpu(input_in, op, "input"));
  auto p = resample_primitives(op, x, out, opt.mode);
  Tensor dst = empty_in_layout(out, x, p->fwd_pd.dst_desc());
  p->fwd.execute(cpu_stream(), {{DNNL_ARG_SRC, memory(p->fwd_pd.src_desc(), cpu_engine(), data_of(x))},
                                {DNNL_ARG_DST, memory(p->fwd_pd.dst_desc(), cpu_engine(), data_of(dst))}});
  cpu_stream().wait();
  return dst;
}

Tensor upsample3d_backward(const Tensor& grad_output, const Tensor& input_in, const Upsample3dOptions& opt) {
  const char* op = "upsample3d backward";
  check(upsample3d_supported(input_in, opt), "{}: the fast path does not take input {} with {} (use ref)", op,
        input_in.defined() ? input_in.shape().str() : std::string("undefined"), opt.str());
  const Shape out = upsample3d_output_shape(input_in.shape(), opt, op);
  check(grad_output.defined() && grad_output.shape() == out,
        "{}: grad_output has shape {}, expected {} for input {} ({})", op,
        grad_output.defined() ? grad_output.shape().str() : std::string("undefined"), out.str(), input_in.shape().str(),
        opt.str());
  Tensor x = in_primitive_layout(f32_cpu(input_in, op, "input"));
  auto p = resample_primitives(op, x, out, opt.mode);
  // A gradient from a plain-memory consumer (a loss) is converted once to the output's layout.
  Tensor diff_dst = in_format(dense(f32_cpu(grad_output, op, "grad_output")), p->bwd_pd.diff_dst_desc());
  Tensor diff_src = empty_in_layout(x.shape(), x, p->bwd_pd.diff_src_desc());
  p->bwd.execute(cpu_stream(),
                 {{DNNL_ARG_DIFF_DST, memory(p->bwd_pd.diff_dst_desc(), cpu_engine(), data_of(diff_dst))},
                  {DNNL_ARG_DIFF_SRC, memory(p->bwd_pd.diff_src_desc(), cpu_engine(), data_of(diff_src))}});
  cpu_stream().wait();
  return diff_src;
}

}  // namespace tlk::kernels::cpu
