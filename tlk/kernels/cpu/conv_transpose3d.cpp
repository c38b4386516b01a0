#include "tlk/kernels/cpu/conv_transpose3d.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <oneapi/dnnl/dnnl.hpp>

#include "tlk/kernels/cpu/conv3d.h"
#include "tlk/kernels/cpu/conv3d_backward_weights.h"
#include "tlk/kernels/cpu/primitive_cache.h"
#include "tlk/kernels/cpu/same_layout.h"
#include "tlk/kernels/ref/conv3d.h"
#include "tlk/tensor/blocked_format.h"

namespace tlk::kernels::cpu {

namespace {

using dnnl::memory;
using tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

memory::dims dims_of(const Shape& s) { return memory::dims(s.begin(), s.end()); }

// Note [Deconvolution weights]: oneDNN describes a deconvolution's weights with dims {OC, IC, kD, kH,
// kW}, O being the deconvolution's own output channels, while TLK (as PyTorch) stores them as
// [Ci, Co, kD, kH, kW]. The same memory is oneDNN's format `iodhw` over dims {Co, Ci, k...}: the user
// weight is described that way, without a copy, and reordered (counted as a weight reorder, as for
// conv3d) into the primitive's blocked weight format; the weight gradient comes back through the
// same descriptor.
Shape dnnl_weight_shape(const Shape& weight) { return {weight[1], weight[0], weight[2], weight[3], weight[4]}; }
memory::desc user_weights_desc(const Shape& weight) {
  return memory::desc(dims_of(dnnl_weight_shape(weight)), kF32, tag::iodhw);
}

Shape output_shape_of(const Shape& in, const Shape& weight, const Conv3dOptions& opt) {
  Shape out{in[0], weight[1], 0, 0, 0};
  for (int i = 0; i < 3; ++i)
    out[2 + i] = (in[2 + i] - 1) * opt.stride[i] - 2 * opt.padding[i] + opt.dilation[i] * (weight[2 + i] - 1) +
                 opt.output_padding[i] + 1;
  return out;
}

// One deconvolution in oneDNN's terms.
//
// Note [Deconvolution geometry]: oneDNN's deconvolution output extent is
// (in - 1) * stride + (k - 1) * (holes + 1) + 1 - pad_l - pad_r, with holes = dilation - 1. TLK's
// output_padding has no parameter of its own there: pad_r is whatever makes the extent come out as
// conv_transpose3d_output_shape says, i.e. padding - output_padding. It may be negative, down to
// 1 - stride (Note [Output padding beyond oneDNN]): the extra rows get only the contributions that
// reach them, as in PyTorch.
struct Geometry {
  Shape in, weight, out;
  memory::dims strides, dilates, pad_l, pad_r;

  std::string key(const char* what, bool bias) const {
    return fmt::format("conv_transpose3d {} {} {} {} s{} d{} l{} r{} bias={}", what, in.str(), weight.str(), out.str(),
                       strides, dilates, pad_l, pad_r, bias);
  }
  memory::desc src() const { return memory::desc(dims_of(in), kF32, tag::any); }
  memory::desc wei() const { return memory::desc(dims_of(dnnl_weight_shape(weight)), kF32, tag::any); }
  memory::desc dst() const { return memory::desc(dims_of(out), kF32, tag::any); }
  memory::desc bias() const { return memory::desc({weight[1]}, kF32, tag::x); }
};

Geometry geometry(const Shape& in, const Shape& weight, const Conv3dOptions& opt) {
  Geometry g{in, weight, output_shape_of(in, weight, opt), {}, {}, {}, {}};
  for (int i = 0; i < 3; ++i) {
    g.strides.push_back(opt.stride[i]);
    g.dilates.push_back(opt.dilation[i] - 1);
    g.pad_l.push_back(opt.padding[i]);
    g.pad_r.push_back((in[2 + i] - 1) * opt.stride[i] + (weight[2 + i] - 1) * opt.dilation[i] + 1 - opt.padding[i] -
                      g.out[2 + i]);
  }
  return g;
}

// Note [Output padding beyond oneDNN]: oneDNN 2.6 accepts a deconvolution only when pad_r > -stride
// on every axis, i.e. output_padding < stride + padding. TLK (as PyTorch) allows output_padding up to
// max(stride, dilation) - 1, so with a dilation above the stride a few geometries lie outside what
// oneDNN can express; those run the reference kernels in f32 (plain layout): correct, slow, and never
// used by the UNet (whose upsampling has kernel == stride and no padding).
bool onednn_expresses(const Geometry& g) {
  for (std::size_t i = 0; i < 3; ++i)
    if (g.pad_r[i] + g.strides[i] <= 0) return false;
  return true;
}

Conv3dOptions as_convolution(Conv3dOptions opt) {
  opt.output_padding = {0, 0, 0};
  return opt;
}

// The input gradient as the convolution of grad_output, cut to the input's extent: an output_padding
// of at least the stride adds rows that no input reaches, whose convolution would be extra rows.
Tensor reference_backward_data(const Tensor& grad, const Tensor& weight, const Shape& input_shape,
                               const Conv3dOptions& opt) {
  Tensor full = ref::conv3d_forward(grad, weight, {}, as_convolution(opt));
  return full.shape() == input_shape ? full : make_view(full, input_shape, full.strides(), 0).contiguous();
}

constexpr auto kAlgo = dnnl::algorithm::deconvolution_direct;

[[noreturn]] void fail_build(const Geometry& g, const char* what, const dnnl::error& e) {
  fail("conv_transpose3d: oneDNN could not build the {} primitive for input {}, weight {}, output {}: {}", what,
       g.in.str(), g.weight.str(), g.out.str(), e.what());
}

dnnl::deconvolution_forward::primitive_desc forward_pd(const Geometry& g, bool with_bias) {
  auto desc = with_bias ? dnnl::deconvolution_forward::desc(dnnl::prop_kind::forward_training, kAlgo, g.src(), g.wei(),
                                                            g.bias(), g.dst(), g.strides, g.dilates, g.pad_l, g.pad_r)
                        : dnnl::deconvolution_forward::desc(dnnl::prop_kind::forward_training, kAlgo, g.src(), g.wei(),
                                                            g.dst(), g.strides, g.dilates, g.pad_l, g.pad_r);
  return dnnl::deconvolution_forward::primitive_desc(desc, cpu_engine());
}

// The primitives, each built once per geometry (Note [Primitive cache]); backward ones take the
// forward primitive descriptor as hint so that they agree with it on layouts.
struct ForwardPrimitive {
  dnnl::deconvolution_forward::primitive_desc pd;
  dnnl::deconvolution_forward prim;
};
struct BackwardDataPrimitive {
  dnnl::deconvolution_backward_data::primitive_desc pd;
  dnnl::deconvolution_backward_data prim;
};
struct BackwardWeightsPrimitive {
  dnnl::deconvolution_backward_weights::primitive_desc pd;
  dnnl::deconvolution_backward_weights prim;
};

std::shared_ptr<ForwardPrimitive> forward_primitive(const Geometry& g, bool with_bias) {
  return PrimitiveCache::instance().get<ForwardPrimitive>(g.key("forward", with_bias), [&] {
    try {
      auto entry = std::make_shared<ForwardPrimitive>();
      entry->pd = forward_pd(g, with_bias);
      entry->prim = dnnl::deconvolution_forward(entry->pd);
      return entry;
    } catch (const dnnl::error& e) {
      fail_build(g, "forward", e);
    }
  });
}

std::shared_ptr<BackwardDataPrimitive> backward_data_primitive(const Geometry& g) {
  return PrimitiveCache::instance().get<BackwardDataPrimitive>(g.key("backward_data", false), [&] {
    try {
      auto entry = std::make_shared<BackwardDataPrimitive>();
      auto desc = dnnl::deconvolution_backward_data::desc(kAlgo, g.src(), g.wei(), g.dst(), g.strides, g.dilates,
                                                          g.pad_l, g.pad_r);
      entry->pd = dnnl::deconvolution_backward_data::primitive_desc(desc, cpu_engine(), forward_pd(g, false));
      entry->prim = dnnl::deconvolution_backward_data(entry->pd);
      return entry;
    } catch (const dnnl::error& e) {
      fail_build(g, "backward data", e);
    }
  });
}

std::shared_ptr<BackwardWeightsPrimitive> backward_weights_primitive(const Geometry& g, bool with_bias) {
  return PrimitiveCache::instance().get<BackwardWeightsPrimitive>(g.key("backward_weights", with_bias), [&] {
    try {
      auto entry = std::make_shared<BackwardWeightsPrimitive>();
      auto desc = with_bias ? dnnl::deconvolution_backward_weights::desc(kAlgo, g.src(), g.wei(), g.bias(), g.dst(),
                                                                         g.strides, g.dilates, g.pad_l, g.pad_r)
                            : dnnl::deconvolution_backward_weights::desc(kAlgo, g.src(), g.wei(), g.dst(), g.strides,
                                                                         g.dilates, g.pad_l, g.pad_r);
      entry->pd = dnnl::deconvolution_backward_weights::primitive_desc(desc, cpu_engine(), forward_pd(g, with_bias));
      entry->prim = dnnl::deconvolution_backward_weights(entry->pd);
      return entry;
    } catch (const dnnl::error& e) {
      fail_build(g, "backward weights", e);
    }
  });
}

// The user weight [Ci, Co, k...] in the primitive's weight format (Note [Deconvolution weights]).
Tensor weights_in_format(const Tensor& weight, const memory::desc& desc) {
  Tensor w = weight.contiguous();
  const memory::desc user = user_weights_desc(w.shape());
  if (user == desc) return w;
  Tensor out = empty_with_desc(dnnl_weight_shape(w.shape()), desc);
  reorder(user, w.raw_data(), desc, data_of(out), true);
  return out;
}

// The backward kernels are given shapes, not tensors: check that they fit one transposed convolution.
void check_backward_shapes(const char* op, const Shape& grad, const Shape& input, const Shape& weight,
                           const Conv3dOptions& opt) {
  const bool ranks = grad.size() == 5 && input.size() == 5 && weight.size() == 5;
  check(ranks && input[1] == weight[0] && input[0] == grad[0] && grad == output_shape_of(input, weight, opt),
        "{}: grad_output {} does not fit input {} and weight {} ({}, output_padding {}); expected grad_output {}", op,
        grad.str(), input.str(), weight.str(), opt.str(), fmt::format("{}", opt.output_padding),
        ranks ? output_shape_of(input, weight, opt).str() : "of rank 5");
}

}  // namespace

bool conv_transpose3d_supported(const Tensor& input, const Tensor& weight) {
  return input.dtype() == DType::f32 && weight.dtype() == DType::f32 && input.device().is_cpu() &&
         weight.device().is_cpu();
}

Tensor conv_transpose3d_forward(const Tensor& input_in, const Tensor& weight_in, const Tensor& bias_in,
                                const Conv3dOptions& opt) {
  const Shape out_shape = conv_transpose3d_output_shape(input_in, weight_in, bias_in, opt);
  Tensor input = f32_cpu(input_in, "conv_transpose3d", "input");
  Tensor weight = f32_cpu(weight_in, "conv_transpose3d", "weight");
  const Geometry g = geometry(input.shape(), weight.shape(), opt);
  if (!onednn_expresses(g))
    return ref::conv_transpose3d_forward(input, weight, bias_in.defined() ? bias_in.detach() : Tensor(), opt);
  auto p = forward_primitive(g, bias_in.defined());
  Tensor src = in_format(input, p->pd.src_desc());
  Tensor wei = weights_in_format(weight, p->pd.weights_desc());
  Tensor dst = empty_with_desc(out_shape, p->pd.dst_desc());
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(p->pd.src_desc(), cpu_engine(), data_of(src))},
                                       {DNNL_ARG_WEIGHTS, memory(p->pd.weights_desc(), cpu_engine(), data_of(wei))},
                                       {DNNL_ARG_DST, memory(p->pd.dst_desc(), cpu_engine(), data_of(dst))}};
  Tensor bias;
  if (bias_in.defined()) {
    bias = f32_cpu(bias_in, "conv_transpose3d", "bias").contiguous();
    args.emplace(DNNL_ARG_BIAS, memory(p->pd.bias_desc(), cpu_engine(), bias.raw_data()));
  }
  p->prim.execute(cpu_stream(), args);
  cpu_stream().wait();
  return dst;
}

Tensor conv_transpose3d_backward_data(const Tensor& grad_in, const Tensor& weight_in, const Shape& input_shape,
                                      const Conv3dOptions& opt) {
  const char* op = "conv_transpose3d backward data";
  Tensor grad = f32_cpu(grad_in, op, "grad_output"), weight = f32_cpu(weight_in, op, "weight");
  check_backward_shapes(op, grad.shape(), input_shape, weight.shape(), opt);
  const Geometry g = geometry(input_shape, weight.shape(), opt);
  if (!onednn_expresses(g)) return reference_backward_data(grad, weight, input_shape, opt);
  auto p = backward_data_primitive(g);
  Tensor diff_dst = in_format(grad, p->pd.diff_dst_desc());
  Tensor wei = weights_in_format(weight, p->pd.weights_desc());
  Tensor diff_src = empty_with_desc(input_shape, p->pd.diff_src_desc());
  p->prim.execute(cpu_stream(), {{DNNL_ARG_DIFF_DST, memory(p->pd.diff_dst_desc(), cpu_engine(), data_of(diff_dst))},
                                 {DNNL_ARG_WEIGHTS, memory(p->pd.weights_desc(), cpu_engine(), data_of(wei))},
                                 {DNNL_ARG_DIFF_SRC, memory(p->pd.diff_src_desc(), cpu_engine(), data_of(diff_src))}});
  cpu_stream().wait();
  return diff_src;
}

// Note [Transposed-convolution weight gradient]: oneDNN 2.6 runs a deconvolution's backward-weights
// as a convolution's backward-weights with source and destination exchanged, so it inherits that
// primitive's coverage: JIT on AVX-512 (and on AVX2 for many shapes), its reference code for some
// layouts and ISAs (DESIGN §3). Where oneDNN answers with "ref:...", TLK computes the same gradient
// as kernels::cpu::conv3d_backward_weights with the transposed convolution's input in the role of
// the output gradient (Note [Transposed convolution as convolution] in kernels/ref/conv3d.h), which
// picks the fastest implementation this CPU has (TLK's own AVX2 kernel included).
ConvTranspose3dParamGrads conv_transpose3d_backward_weights(const Tensor& grad_in, const Tensor& input_in,
                                                            const Shape& weight_shape, const Conv3dOptions& opt,
                                                            bool with_bias, ConvTranspose3dWeightsMethod method) {
  const char* op = "conv_transpose3d backward weights";
  Tensor grad = f32_cpu(grad_in, op, "grad_output"), input = f32_cpu(input_in, op, "input");
  check_backward_shapes(op, grad.shape(), input.shape(), weight_shape, opt);
  ConvTranspose3dParamGrads out;
  const Geometry g = geometry(input.shape(), weight_shape, opt);
  if (!onednn_expresses(g)) {
    out.weight = ref::conv3d_backward_weights(input, grad, weight_shape, as_convolution(opt));
    if (with_bias) out.bias = ref::conv3d_backward_bias(grad);
    return out;
  }
  std::shared_ptr<BackwardWeightsPrimitive> p;
  if (method != ConvTranspose3dWeightsMethod::as_convolution) {
    p = backward_weights_primitive(g, with_bias);
    if (method == ConvTranspose3dWeightsMethod::automatic && std::string(p->pd.impl_info_str()).rfind("ref", 0) == 0)
      p.reset();
  }
  if (!p) {
    out.weight = conv3d_backward_weights(input, grad, weight_shape, as_convolution(opt));
    if (with_bias) out.bias = conv3d_backward_bias(grad);
    return out;
  }
  Tensor src = in_format(input, p->pd.src_desc());
  Tensor diff_dst = in_format(grad, p->pd.diff_dst_desc());
  const memory::desc user = user_weights_desc(weight_shape);
  out.weight = Tensor::empty(weight_shape);
  const bool direct = p->pd.diff_weights_desc() == user;
  Tensor diff_wei = direct ? out.weight : empty_with_desc(dnnl_weight_shape(weight_shape), p->pd.diff_weights_desc());
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, memory(p->pd.src_desc(), cpu_engine(), data_of(src))},
      {DNNL_ARG_DIFF_DST, memory(p->pd.diff_dst_desc(), cpu_engine(), data_of(diff_dst))},
      {DNNL_ARG_DIFF_WEIGHTS, memory(p->pd.diff_weights_desc(), cpu_engine(), data_of(diff_wei))}};
  if (with_bias) {
    out.bias = Tensor::empty({weight_shape[1]});
    args.emplace(DNNL_ARG_DIFF_BIAS, memory(p->pd.diff_bias_desc(), cpu_engine(), out.bias.raw_data()));
  }
  p->prim.execute(cpu_stream(), args);
  cpu_stream().wait();
  if (!direct) reorder(p->pd.diff_weights_desc(), data_of(diff_wei), user, out.weight.raw_data(), true);
  return out;
}

ConvTranspose3dImpls conv_transpose3d_impls(const Shape& input_shape, const Shape& weight_shape,
                                            const Conv3dOptions& opt) {
  check(input_shape.size() == 5 && weight_shape.size() == 5 && input_shape[1] == weight_shape[0],
        "conv_transpose3d: input {} does not fit weight {} ([in, out, kD, kH, kW])", input_shape.str(),
        weight_shape.str());
  const Geometry g = geometry(input_shape, weight_shape, opt);
  if (!onednn_expresses(g)) return {"tlk:ref", "tlk:ref", "tlk:ref"};  // Note [Output padding beyond oneDNN]
  return {forward_primitive(g, true)->pd.impl_info_str(), backward_data_primitive(g)->pd.impl_info_str(),
          backward_weights_primitive(g, true)->pd.impl_info_str()};
}

}  // namespace tlk::kernels::cpu
