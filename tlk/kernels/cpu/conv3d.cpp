#include "tlk/kernels/cpu/conv3d.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <oneapi/dnnl/dnnl.hpp>

#include "tlk/kernels/cpu/primitive_cache.h"
#include "tlk/kernels/cpu/same_layout.h"
#include "tlk/kernels/ref/common.h"
#include "tlk/kernels/ref/elementwise.h"
#include "tlk/tensor/blocked_format.h"

namespace tlk::kernels::cpu {

namespace {

using dnnl::memory;
using tag = memory::format_tag;

memory::dims dims_of(const Shape& s) { return memory::dims(s.begin(), s.end()); }

// oneDNN's geometry: dilation counts the holes (PyTorch's dilation - 1) and the right padding is
// whatever makes the output extent come out (it may be smaller than the left one).
struct DnnlGeometry {
  memory::dims strides, dilates, pad_l, pad_r;
};

DnnlGeometry dnnl_geometry(const Shape& in, const Shape& weight, const Shape& out, const Conv3dOptions& opt) {
  DnnlGeometry g;
  for (int i = 0; i < 3; ++i) {
    const std::int64_t span = (weight[2 + i] - 1) * opt.dilation[i] + 1;
    g.strides.push_back(opt.stride[i]);
    g.dilates.push_back(opt.dilation[i] - 1);
    g.pad_l.push_back(opt.padding[i]);
    g.pad_r.push_back((out[2 + i] - 1) * opt.stride[i] + span - in[2 + i] - opt.padding[i]);
  }
  return g;
}

// The primitives of one convolution geometry, built once (Note [Primitive cache]).
struct ConvPrimitives {
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
  dnnl::convolution_backward_data bwd_data;
};

std::shared_ptr<ConvPrimitives> conv_primitives(const Shape& in, const Shape& weight, const Shape& out,
                                                const Conv3dOptions& opt, bool with_bias, bool with_sum = false,
                                                std::optional<double> slope = std::nullopt) {
  const std::string key =
      fmt::format("conv3d {} {} {} {} {} {} bias={} sum={} relu={}", in.str(), weight.str(), out.str(), opt.stride,
                  opt.padding, opt.dilation, with_bias, with_sum, slope ? fmt::format("{}", *slope) : "none");
  return PrimitiveCache::instance().get<ConvPrimitives>(key, [&] {
    try {
      const DnnlGeometry g = dnnl_geometry(in, weight, out, opt);
      const auto f32 = memory::data_type::f32;
      const memory::desc src(dims_of(in), f32, tag::any), wei(dims_of(weight), f32, tag::any),
          dst(dims_of(out), f32, tag::any), bias({weight[0]}, f32, tag::x);
      auto algo = dnnl::algorithm::convolution_direct;
      auto fwd_desc = with_bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algo, src, wei,
                                                                  bias, dst, g.strides, g.dilates, g.pad_l, g.pad_r)
                                : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algo, src, wei,
                                                                  dst, g.strides, g.dilates, g.pad_l, g.pad_r);
      auto entry = std::make_shared<ConvPrimitives>();
      dnnl::post_ops post_ops;
      if (with_sum) post_ops.append_sum(1.0f);
      if (slope) post_ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, static_cast<float>(*slope), 0.0f);
      dnnl::primitive_attr attr;
      attr.set_post_ops(post_ops);
      entry->fwd_pd = dnnl::convolution_forward::primitive_desc(fwd_desc, attr, cpu_engine());
      entry->fwd = dnnl::convolution_forward(entry->fwd_pd);
      auto bwd_desc =
          dnnl::convolution_backward_data::desc(algo, src, wei, dst, g.strides, g.dilates, g.pad_l, g.pad_r);
      entry->bwd_data_pd = dnnl::convolution_backward_data::primitive_desc(bwd_desc, cpu_engine(), entry->fwd_pd);
      entry->bwd_data = dnnl::convolution_backward_data(entry->bwd_data_pd);
      return entry;
    } catch (const dnnl::error& e) {
      fail("conv3d: oneDNN could not build a primitive for input {}, weight {}, output {} ({}): {}", in.str(),
           weight.str(), out.str(), opt.str(), e.what());
    }
  });
}

// The plain user weight reordered into the primitive's weight format (counted as a weight reorder).
Tensor weights_in_format(const Tensor& weight, const memory::desc& desc) {
  Tensor w = weight.contiguous();
  const memory::desc current = memory_desc_of(w);
  if (current == desc) return w;
  Tensor out = empty_with_desc(w.shape(), desc);
  reorder(current, w.raw_data(), desc, out.layout() == Layout::blocked ? out.impl().storage->data() : out.raw_data(),
          true);
  return out;
}

}  // namespace

bool conv3d_supported(const Tensor& input, const Tensor& weight) {
  return input.dtype() == DType::f32 && weight.dtype() == DType::f32 && input.device().is_cpu() &&
         weight.device().is_cpu();
}

Tensor conv3d_forward(const Tensor& input_in, const Tensor& weight_in, const Tensor& bias_in, const Conv3dOptions& opt,
                      const Conv3dPostOps& post) {
  const Shape out_shape = conv3d_output_shape(input_in, weight_in, bias_in, opt);
  Tensor input = f32_cpu(input_in, "conv3d", "input"), weight = f32_cpu(weight_in, "conv3d", "weight");
  check(!post.leaky_relu_slope || (std::isfinite(*post.leaky_relu_slope) && *post.leaky_relu_slope >= 0),
        "conv3d: a fused leaky ReLU needs a finite slope >= 0 (Note [Training-safe fusion]), got {}",
        post.leaky_relu_slope.value_or(0.0));
  const bool with_sum = post.sum_with.defined();
  check(!with_sum || post.sum_with.shape() == out_shape, "conv3d: the tensor to add has shape {}, the output has {}",
        with_sum ? post.sum_with.shape().str() : "", out_shape.str());
  auto p = conv_primitives(input.shape(), weight.shape(), out_shape, opt, bias_in.defined(), with_sum,
                           post.leaky_relu_slope);
  Tensor src = in_format(input, p->fwd_pd.src_desc());
  Tensor wei = weights_in_format(weight, p->fwd_pd.weights_desc());
  Tensor dst;
  if (with_sum) {
    // The sum post-op accumulates into dst: start from a copy of the addend in dst's format.
    Tensor addend = in_format(f32_cpu(post.sum_with, "conv3d", "the tensor to add"), p->fwd_pd.dst_desc());
    dst = addend.is_same(post.sum_with) || addend.impl().storage == post.sum_with.impl().storage ? addend.clone()
                                                                                                 : addend;
  } else {
    dst = empty_with_desc(out_shape, p->fwd_pd.dst_desc());
  }
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(p->fwd_pd.src_desc(), cpu_engine(), data_of(src))},
                                       {DNNL_ARG_WEIGHTS, memory(p->fwd_pd.weights_desc(), cpu_engine(), data_of(wei))},
                                       {DNNL_ARG_DST, memory(p->fwd_pd.dst_desc(), cpu_engine(), data_of(dst))}};
  Tensor bias;
  if (bias_in.defined()) {
    bias = f32_cpu(bias_in, "conv3d", "bias").contiguous();
    args.emplace(DNNL_ARG_BIAS, memory(p->fwd_pd.bias_desc(), cpu_engine(), bias.raw_data()));
  }
  p->fwd.execute(cpu_stream(), args);
  cpu_stream().wait();
  return dst;
}

Tensor conv3d_backward_data(const Tensor& grad_in, const Tensor& weight_in, const Shape& input_shape,
                            const Conv3dOptions& opt) {
  Tensor grad = f32_cpu(grad_in, "conv3d backward data", "grad_output");
  Tensor weight = f32_cpu(weight_in, "conv3d backward data", "weight");
  check(input_shape.size() == 5 && grad.dim() == 5 && weight.dim() == 5 && grad.shape()[1] == weight.shape()[0] &&
            input_shape[1] == weight.shape()[1] && input_shape[0] == grad.shape()[0],
        "conv3d backward data: grad_output {} and weight {} do not fit input shape {}", grad.shape().str(),
        weight.shape().str(), input_shape.str());
  auto p = conv_primitives(input_shape, weight.shape(), grad.shape(), opt, false);
  Tensor diff_dst = in_format(grad, p->bwd_data_pd.diff_dst_desc());
  Tensor wei = weights_in_format(weight, p->bwd_data_pd.weights_desc());
  Tensor diff_src = empty_with_desc(input_shape, p->bwd_data_pd.diff_src_desc());
  p->bwd_data.execute(cpu_stream(),
                      {{DNNL_ARG_DIFF_DST, memory(p->bwd_data_pd.diff_dst_desc(), cpu_engine(), data_of(diff_dst))},
                       {DNNL_ARG_WEIGHTS, memory(p->bwd_data_pd.weights_desc(), cpu_engine(), data_of(wei))},
                       {DNNL_ARG_DIFF_SRC, memory(p->bwd_data_pd.diff_src_desc(), cpu_engine(), data_of(diff_src))}});
  cpu_stream().wait();
  return diff_src;
}

namespace {

struct ConvWeightsPrimitives {
  dnnl::convolution_backward_weights::primitive_desc pd;
  dnnl::convolution_backward_weights prim;
};

std::shared_ptr<ConvWeightsPrimitives> weights_primitives(const Shape& in, const Shape& weight, const Shape& out,
                                                          const Conv3dOptions& opt, OneDnnWeightsLayout layout) {
  const bool plain = layout == OneDnnWeightsLayout::plain;
  const std::string key = fmt::format("conv3d_bwd_weights {} {} {} {} {} {} plain={}", in.str(), weight.str(),
                                      out.str(), opt.stride, opt.padding, opt.dilation, plain);
  return PrimitiveCache::instance().get<ConvWeightsPrimitives>(key, [&] {
    try {
      const DnnlGeometry g = dnnl_geometry(in, weight, out, opt);
      const auto f32 = memory::data_type::f32;
      const memory::desc any_src(dims_of(in), f32, tag::any), any_wei(dims_of(weight), f32, tag::any),
          any_dst(dims_of(out), f32, tag::any);
      // Note [oneDNN backward-weights formats]: oneDNN 2.6 has a JIT 3D backward-weights on AVX-512
      // only; on AVX2 blocked formats get its reference code and plain formats its im2col + GEMM.
      const memory::desc src = plain ? memory::desc(dims_of(in), f32, tag::ncdhw) : any_src;
      const memory::desc wei = plain ? memory::desc(dims_of(weight), f32, tag::oidhw) : any_wei;
      const memory::desc dst = plain ? memory::desc(dims_of(out), f32, tag::ncdhw) : any_dst;
      auto algo = dnnl::algorithm::convolution_direct;
      auto fwd_pd = dnnl::convolution_forward::primitive_desc(
          dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algo, any_src, any_wei, any_dst, g.strides,
                                          g.dilates, g.pad_l, g.pad_r),
          cpu_engine());
      auto desc = dnnl::convolution_backward_weights::desc(algo, src, wei, dst, g.strides, g.dilates, g.pad_l, g.pad_r);
      auto entry = std::make_shared<ConvWeightsPrimitives>();
      entry->pd = dnnl::convolution_backward_weights::primitive_desc(desc, cpu_engine(), fwd_pd);
      entry->prim = dnnl::convolution_backward_weights(entry->pd);
      return entry;
    } catch (const dnnl::error& e) {
      fail("conv3d backward weights: oneDNN could not build a primitive for input {}, weight {}, output {} ({}): {}",
           in.str(), weight.str(), out.str(), opt.str(), e.what());
    }
  });
}

}  // namespace

std::string conv3d_backward_weights_onednn_impl(const Shape& input_shape, const Shape& weight_shape,
                                                const Shape& output_shape, const Conv3dOptions& opt,
                                                OneDnnWeightsLayout layout) {
  return weights_primitives(input_shape, weight_shape, output_shape, opt, layout)->pd.impl_info_str();
}

Tensor conv3d_backward_weights_onednn(const Tensor& grad_in, const Tensor& input_in, const Shape& weight_shape,
                                      const Conv3dOptions& opt, OneDnnWeightsLayout layout) {
  Tensor grad = f32_cpu(grad_in, "conv3d backward weights", "grad_output");
  Tensor input = f32_cpu(input_in, "conv3d backward weights", "input");
  auto p = weights_primitives(input.shape(), weight_shape, grad.shape(), opt, layout);
  Tensor src = in_format(input, p->pd.src_desc());
  Tensor diff_dst = in_format(grad, p->pd.diff_dst_desc());
  Tensor diff_wei = empty_with_desc(weight_shape, p->pd.diff_weights_desc());
  p->prim.execute(cpu_stream(),
                  {{DNNL_ARG_SRC, memory(p->pd.src_desc(), cpu_engine(), data_of(src))},
                   {DNNL_ARG_DIFF_DST, memory(p->pd.diff_dst_desc(), cpu_engine(), data_of(diff_dst))},
                   {DNNL_ARG_DIFF_WEIGHTS, memory(p->pd.diff_weights_desc(), cpu_engine(), data_of(diff_wei))}});
  cpu_stream().wait();
  if (diff_wei.layout() != Layout::blocked) return diff_wei;
  Tensor plain = Tensor::empty(weight_shape);
  reorder(p->pd.diff_weights_desc(), data_of(diff_wei), memory_desc_of(plain), plain.raw_data(), true);
  return plain;
}

Tensor conv3d_backward_bias(const Tensor& grad_in) {
  Tensor grad = f32_cpu(grad_in, "conv3d backward bias", "grad_output");
  check(grad.dim() == 5, "conv3d backward bias: expected a 5-D grad_output, got shape {}", grad.shape().str());
  const std::int64_t C = grad.shape()[1];
  const std::int64_t volume = grad.shape()[2] * grad.shape()[3] * grad.shape()[4];
  const std::int64_t block = channel_block(grad);
  if (block == 0) return ref::sum(grad.contiguous(), {0, 2, 3, 4}, false);
  // nCdhw8c / nCdhw16c: channel c of sample n at block c / block, lane c % block.
  const std::int64_t blocks = (C + block - 1) / block;
  const float* g = static_cast<const float*>(grad.impl().storage->data());
  std::vector<double> sums(static_cast<std::size_t>(blocks * block), 0.0);
#pragma omp parallel for
  for (std::int64_t b = 0; b < blocks; ++b)
    for (std::int64_t n = 0; n < grad.shape()[0]; ++n) {
      const float* p = g + (n * blocks + b) * volume * block;
      for (std::int64_t i = 0; i < volume; ++i)
        for (std::int64_t lane = 0; lane < block; ++lane)
          sums[static_cast<std::size_t>(b * block + lane)] += p[i * block + lane];
    }
  Tensor out = Tensor::empty({C});
  float* o = out.data<float>();
  for (std::int64_t c = 0; c < C; ++c) o[c] = static_cast<float>(sums[static_cast<std::size_t>(c)]);
  return out;
}

}  // namespace tlk::kernels::cpu
