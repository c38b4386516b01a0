#include "tlk/kernels/cpu/pool3d.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <oneapi/dnnl/dnnl.hpp>

#include "tlk/kernels/cpu/primitive_cache.h"
#include "tlk/kernels/cpu/same_layout.h"
#include "tlk/tensor/blocked_format.h"
#include "tlk/tensor/error.h"

namespace tlk::kernels::cpu {

namespace {

using dnnl::memory;

memory::dims dims_of(const Shape& s) { return memory::dims(s.begin(), s.end()); }

// The window geometry oneDNN takes: kernel, strides, and the right padding that makes the output
// extent come out (PyTorch's floor mode may leave it below the left one).
struct PoolGeometry {
  memory::dims kernel, strides, pad_l, pad_r;
};

PoolGeometry geometry(const Shape& in, const Shape& out, const Int3& kernel, const Int3& stride, const Int3& pad) {
  PoolGeometry g;
  for (int i = 0; i < 3; ++i) {
    g.kernel.push_back(kernel[i]);
    g.strides.push_back(stride[i]);
    g.pad_l.push_back(pad[i]);
    g.pad_r.push_back((out[2 + i] - 1) * stride[i] + kernel[i] - in[2 + i] - pad[i]);
  }
  return g;
}

// The primitives of one pooling geometry in one input layout, built once (Note [Primitive cache]).
struct PoolPrimitives {
  dnnl::pooling_forward::primitive_desc fwd_pd;
  dnnl::pooling_forward fwd;
  dnnl::pooling_backward::primitive_desc bwd_pd;
  dnnl::pooling_backward bwd;
};

std::shared_ptr<PoolPrimitives> pool_primitives(const char* op, dnnl::algorithm algo, const Tensor& input,
                                                const Shape& out, const Int3& kernel, const Int3& stride,
                                                const Int3& pad) {
  const Shape& in = input.shape();
  const std::string key = fmt::format("pool3d {} {} {} {} k={} s={} p={}", static_cast<int>(algo), in.str(), out.str(),
                                      layout_key(input), kernel, stride, pad);
  return PrimitiveCache::instance().get<PoolPrimitives>(key, [&] {
    try {
      const PoolGeometry g = geometry(in, out, kernel, stride, pad);
      const memory::desc src = memory_desc_of(input);
      const memory::desc dst(dims_of(out), memory::data_type::f32, format_tag_of(input));
      auto entry = std::make_shared<PoolPrimitives>();
      entry->fwd_pd = dnnl::pooling_forward::primitive_desc(
          dnnl::pooling_forward::desc(dnnl::prop_kind::forward_training, algo, src, dst, g.strides, g.kernel, g.pad_l,
                                      g.pad_r),
          cpu_engine());
      entry->fwd = dnnl::pooling_forward(entry->fwd_pd);
      entry->bwd_pd = dnnl::pooling_backward::primitive_desc(
          dnnl::pooling_backward::desc(algo, src, entry->fwd_pd.dst_desc(), g.strides, g.kernel, g.pad_l, g.pad_r),
          cpu_engine(), entry->fwd_pd);
      entry->bwd = dnnl::pooling_backward(entry->bwd_pd);
      return entry;
    } catch (const dnnl::error& e) {
      fail("{}: oneDNN could not build a pooling primitive for input {} ({}), output {}: {}", op, in.str(),
           layout_key(input), out.str(), e.what());
    }
  });
}

struct Pooled {
  Tensor output, workspace;
};

Pooled run_forward(const PoolPrimitives& p, const Tensor& src, const Shape& out_shape) {
  Tensor dst = empty_in_layout(out_shape, src, p.fwd_pd.dst_desc());
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(p.fwd_pd.src_desc(), cpu_engine(), data_of(src))},
                                       {DNNL_ARG_DST, memory(p.fwd_pd.dst_desc(), cpu_engine(), data_of(dst))}};
  Tensor ws;
  const std::size_t ws_bytes = p.fwd_pd.workspace_desc().get_size();
  if (ws_bytes > 0) {
    ws = Tensor::empty({static_cast<std::int64_t>((ws_bytes + sizeof(float) - 1) / sizeof(float))});
    args.emplace(DNNL_ARG_WORKSPACE, memory(p.fwd_pd.workspace_desc(), cpu_engine(), ws.raw_data()));
  }
  p.fwd.execute(cpu_stream(), args);
  cpu_stream().wait();
  return {dst, ws};
}

Tensor run_backward(const PoolPrimitives& p, const Tensor& grad_in, const Tensor& x, const Tensor& workspace) {
  // A gradient from a plain-memory consumer (a loss) is converted once to the output's layout.
  Tensor diff_dst = in_format(dense(grad_in), p.bwd_pd.diff_dst_desc());
  Tensor diff_src = empty_in_layout(x.shape(), x, p.bwd_pd.diff_src_desc());
  std::unordered_map<int, memory> args{
      {DNNL_ARG_DIFF_DST, memory(p.bwd_pd.diff_dst_desc(), cpu_engine(), data_of(diff_dst))},
      {DNNL_ARG_DIFF_SRC, memory(p.bwd_pd.diff_src_desc(), cpu_engine(), data_of(diff_src))}};
  if (p.bwd_pd.workspace_desc().get_size() > 0) {
    check(workspace.defined() &&
              static_cast<std::size_t>(workspace.numel()) * sizeof(float) >= p.bwd_pd.workspace_desc().get_size(),
          "max_pool3d backward: the workspace does not come from the matching forward");
    args.emplace(DNNL_ARG_WORKSPACE, memory(p.bwd_pd.workspace_desc(), cpu_engine(), workspace.raw_data()));
  }
  p.bwd.execute(cpu_stream(), args);
  cpu_stream().wait();
  return diff_src;
}

void check_grad(const Tensor& grad, const Shape& expected, const Shape& in, const char* op) {
  check(grad.defined() && grad.shape() == expected, "{}: grad_output has shape {}, expected {} for input {}", op,
        grad.defined() ? grad.shape().str() : std::string("undefined"), expected.str(), in.str());
}

dnnl::algorithm avg_algorithm(const Pool3dOptions& opt) {
  return opt.count_include_pad ? dnnl::algorithm::pooling_avg_include_padding
                               : dnnl::algorithm::pooling_avg_exclude_padding;
}

}  // namespace

bool pool3d_supported(const Tensor& input) {
  return input.defined() && input.dtype() == DType::f32 && input.device().is_cpu();
}

MaxPool3dForward max_pool3d_forward(const Tensor& input_in, const Pool3dOptions& opt) {
  const char* op = "max_pool3d";
  check(input_in.defined(), "{}: input is undefined", op);
  const Shape out = pool3d_output_shape(input_in.shape(), opt, op);
  Tensor x = in_primitive_layout(f32_cpu(input_in, op, "input"));
  auto p = pool_primitives(op, dnnl::algorithm::pooling_max, x, out, opt.kernel, opt.effective_stride(), opt.padding);
  Pooled r = run_forward(*p, x, out);
  return {r.output, r.workspace};
}

Tensor max_pool3d_backward(const Tensor& grad_output, const Tensor& workspace, const Tensor& input_in,
                           const Pool3dOptions& opt) {
  const char* op = "max_pool3d backward";
  check(input_in.defined(), "{}: input is undefined", op);
  const Shape out = pool3d_output_shape(input_in.shape(), opt, op);
  check_grad(grad_output, out, input_in.shape(), op);
  Tensor x = in_primitive_layout(f32_cpu(input_in, op, "input"));
  auto p = pool_primitives(op, dnnl::algorithm::pooling_max, x, out, opt.kernel, opt.effective_stride(), opt.padding);
  return run_backward(*p, f32_cpu(grad_output, op, "grad_output"), x, workspace);
}

Tensor avg_pool3d_forward(const Tensor& input_in, const Pool3dOptions& opt) {
  const char* op = "avg_pool3d";
  check(input_in.defined(), "{}: input is undefined", op);
  const Shape out = pool3d_output_shape(input_in.shape(), opt, op);
  Tensor x = in_primitive_layout(f32_cpu(input_in, op, "input"));
  auto p = pool_primitives(op, avg_algorithm(opt), x, out, opt.kernel, opt.effective_stride(), opt.padding);
  return run_forward(*p, x, out).output;
}

Tensor avg_pool3d_backward(const Tensor& grad_output, const Tensor& input_in, const Pool3dOptions& opt) {
  const char* op = "avg_pool3d backward";
  check(input_in.defined(), "{}: input is undefined", op);
  const Shape out = pool3d_output_shape(input_in.shape(), opt, op);
  check_grad(grad_output, out, input_in.shape(), op);
  Tensor x = in_primitive_layout(f32_cpu(input_in, op, "input"));
  auto p = pool_primitives(op, avg_algorithm(opt), x, out, opt.kernel, opt.effective_stride(), opt.padding);
  return run_backward(*p, f32_cpu(grad_output, op, "grad_output"), x, Tensor());
}

namespace {

std::shared_ptr<PoolPrimitives> global_primitives(const char* op, const Tensor& x, Shape& out) {
  out = adaptive_pool3d_output_shape(x.shape(), {1, 1, 1}, op);
  const Shape& in = x.shape();
  const Int3 whole{in[2], in[3], in[4]};
  return pool_primitives(op, dnnl::algorithm::pooling_avg_include_padding, x, out, whole, whole, {0, 0, 0});
}

}  // namespace

Tensor global_avg_pool3d_forward(const Tensor& input_in) {
  const char* op = "adaptive_avg_pool3d";
  check(input_in.defined(), "{}: input is undefined", op);
  Tensor x = in_primitive_layout(f32_cpu(input_in, op, "input"));
  Shape out;
  auto p = global_primitives(op, x, out);
  return run_forward(*p, x, out).output;
}

Tensor global_avg_pool3d_backward(const Tensor& grad_output, const Tensor& input_in) {
  const char* op = "adaptive_avg_pool3d backward";
  check(input_in.defined(), "{}: input is undefined", op);
  Tensor x = in_primitive_layout(f32_cpu(input_in, op, "input"));
  Shape out;
  auto p = global_primitives(op, x, out);
  check_grad(grad_output, out, x.shape(), op);
  return run_backward(*p, f32_cpu(grad_output, op, "grad_output"), x, Tensor());
}

}  // namespace tlk::kernels::cpu
