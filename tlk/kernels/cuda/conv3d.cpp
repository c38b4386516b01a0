#include "tlk/kernels/cuda/conv3d.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "tlk/kernels/cuda/cudnn_context.h"
#include "tlk/kernels/cuda/cudnn_engine.h"
#include "tlk/kernels/cuda/launch.h"
#include "tlk/tensor/cuda_runtime.h"

namespace tlk::kernels::cuda {

namespace {

using Pass = ConvPass;

// What the search settled on for one key; `supported` false when cuDNN offered nothing at all.
struct Choice {
  bool supported = false;
  int algo = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  std::size_t workspace = 0;
};

struct AlgorithmCache {
  std::mutex mutex;
  std::unordered_map<std::string, Choice> choices;
};
AlgorithmCache& algorithm_cache() {
  static auto* cache = new AlgorithmCache();  // leaked on purpose, like the handles
  return *cache;
}
std::atomic<std::int64_t> g_searches{0};

// The largest workspace an algorithm may use (the search skips the ones asking for more).
constexpr std::size_t kMaxWorkspace = kMaxConvWorkspace;

// The operands of one cuDNN call: x the convolution's input, w its filter, y its output. The pass
// decides which of them is written; outputs are always fresh tensors, in the layout of the pass's
// activation operand (Note [Channels-last convolutions]).
struct Operands {
  Tensor x, w, y;
};

std::string operand_key(const Tensor& t) {
  const char* layout = is_plain(t) ? "p" : (is_channels_last(t) ? "c" : "s");
  const bool aligned = reinterpret_cast<std::uintptr_t>(t.raw_data()) % 16 == 0;
  return fmt::format("{}{}{}", t.shape().str(), layout, aligned ? "a" : "u");
}

std::string key_of(Pass pass, const Operands& o, const Conv3dOptions& opt) {
  const Int3 &s = opt.stride, &p = opt.padding, &d = opt.dilation;
  return fmt::format("{}|{}|tf32 {}|dev {}|x{}|w{}|y{}|s{},{},{}|p{},{},{}|d{},{},{}", static_cast<int>(pass),
                     dtype_name(o.x.dtype()), allow_tf32(), o.x.device().index, operand_key(o.x), operand_key(o.w),
                     operand_key(o.y), s[0], s[1], s[2], p[0], p[1], p[2], d[0], d[1], d[2]);
}

// Whether a search result's math type keeps the requested precision (Note [TF32 switch]): never a
// down-conversion to fp16, and no tensor-op (TF32) math for f32 while TF32 is switched off.
bool usable_math(cudnnMathType_t math, DType dtype) {
  if (math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return false;
  if (dtype == DType::f32 && !allow_tf32()) return math != CUDNN_TENSOR_OP_MATH;
  return true;
}

// Note [Convolution algorithm cache] in conv3d.h. `ws_size(algo, &bytes)`, `find_ex(ws, bytes, n,
// &returned, perfs)` and `get_v7(n, &returned, perfs)` wrap one pass's cuDNN functions.
template <class Perf, class WsSize, class FindEx, class GetV7>
Choice search(int algo_count, DType dtype, int device, ConvDesc& conv, WsSize ws_size, FindEx find_ex, GetV7 get_v7,
              const char* op) {
  // The timing run gets the largest workspace any algorithm asks for, up to kMaxWorkspace.
  std::size_t limit = 0;
  for (int a = 0; a < algo_count; ++a) {
    std::size_t bytes = 0;
    if (ws_size(a, &bytes) == CUDNN_STATUS_SUCCESS && bytes <= kMaxWorkspace) limit = std::max(limit, bytes);
  }
  Tensor ws;
  try {
    ws = workspace(limit, device);
  } catch (const Error&) {  // out of memory: time the algorithms that need no workspace
    limit = 0;
  }
  std::vector<Perf> perfs(static_cast<std::size_t>(algo_count));
  auto pick = [&](int returned) -> std::optional<Choice> {
    for (int i = 0; i < returned && i < algo_count; ++i) {
      const Perf& p = perfs[static_cast<std::size_t>(i)];
      if (p.status != CUDNN_STATUS_SUCCESS || p.memory > limit || !usable_math(p.mathType, dtype)) continue;
      const cudnnMathType_t math = (dtype == DType::f32 && !allow_tf32()) ? CUDNN_FMA_MATH : p.mathType;
      return Choice{true, static_cast<int>(p.algo), math, p.memory};
    }
    return std::nullopt;
  };
  std::optional<Choice> choice;
  int returned = 0;
  if (find_ex(workspace_ptr(ws), limit, algo_count, &returned, perfs.data()) == CUDNN_STATUS_SUCCESS)
    choice = pick(returned);
  ws = Tensor();  // back to the cache before the run allocates its own
  if (!choice) {
    returned = 0;
    if (get_v7(algo_count, &returned, perfs.data()) == CUDNN_STATUS_SUCCESS) choice = pick(returned);
  }
  if (!choice) {
    conv.set_math(conv_math_type(dtype), op);
    std::size_t bytes = 0;
    if (ws_size(0, &bytes) == CUDNN_STATUS_SUCCESS) choice = Choice{true, 0, conv_math_type(dtype), bytes};
  }
  if (!choice) return Choice{};
  // The workspace the chosen algorithm needs under its math type (the timing's figure may differ).
  conv.set_math(choice->math, op);
  std::size_t bytes = 0;
  if (ws_size(choice->algo, &bytes) == CUDNN_STATUS_SUCCESS) choice->workspace = std::max(choice->workspace, bytes);
  return *choice;
}

struct Descriptors {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
};

Choice search_pass(Pass pass, cudnnHandle_t h, Descriptors& d, const Operands& o, const char* op) {
  const DType dtype = o.x.dtype();
  const int device = o.x.device().index;
  void *x = o.x.raw_data(), *w = o.w.raw_data(), *y = o.y.raw_data();
  switch (pass) {
    case Pass::forward:
      return search<cudnnConvolutionFwdAlgoPerf_t>(
          CUDNN_CONVOLUTION_FWD_ALGO_COUNT, dtype, device, d.conv,
          [&](int a, std::size_t* bytes) {
            return cudnnGetConvolutionForwardWorkspaceSize(h, d.x.get(), d.w.get(), d.conv.get(), d.y.get(),
                                                           static_cast<cudnnConvolutionFwdAlgo_t>(a), bytes);
          },
          [&](void* ws, std::size_t bytes, int n, int* returned, cudnnConvolutionFwdAlgoPerf_t* perfs) {
            return cudnnFindConvolutionForwardAlgorithmEx(h, d.x.get(), x, d.w.get(), w, d.conv.get(), d.y.get(), y,
                                                          n, returned, perfs, ws, bytes);
          },
          [&](int n, int* returned, cudnnConvolutionFwdAlgoPerf_t* perfs) {
            return cudnnGetConvolutionForwardAlgorithm_v7(h, d.x.get(), d.w.get(), d.conv.get(), d.y.get(), n,
                                                          returned, perfs);
          },
          op);
    case Pass::backward_data:
      return search<cudnnConvolutionBwdDataAlgoPerf_t>(
          CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, dtype, device, d.conv,
          [&](int a, std::size_t* bytes) {
            return cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w.get(), d.y.get(), d.conv.get(), d.x.get(),
                                                                static_cast<cudnnConvolutionBwdDataAlgo_t>(a), bytes);
          },
          [&](void* ws, std::size_t bytes, int n, int* returned, cudnnConvolutionBwdDataAlgoPerf_t* perfs) {
            return cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.w.get(), w, d.y.get(), y, d.conv.get(), d.x.get(),
                                                               x, n, returned, perfs, ws, bytes);
          },
          [&](int n, int* returned, cudnnConvolutionBwdDataAlgoPerf_t* perfs) {
            return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w.get(), d.y.get(), d.conv.get(), d.x.get(), n,
                                                               returned, perfs);
          },
          op);
    case Pass::backward_filter:
      return search<cudnnConvolutionBwdFilterAlgoPerf_t>(
          CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, dtype, device, d.conv,
          [&](int a, std::size_t* bytes) {
            return cudnnGetConvolutionBackwardFilterWorkspaceSize(
                h, d.x.get(), d.y.get(), d.conv.get(), d.w.get(), static_cast<cudnnConvolutionBwdFilterAlgo_t>(a),
                bytes);
          },
          [&](void* ws, std::size_t bytes, int n, int* returned, cudnnConvolutionBwdFilterAlgoPerf_t* perfs) {
            return cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.x.get(), x, d.y.get(), y, d.conv.get(),
                                                                 d.w.get(), w, n, returned, perfs, ws, bytes);
          },
          [&](int n, int* returned, cudnnConvolutionBwdFilterAlgoPerf_t* perfs) {
            return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x.get(), d.y.get(), d.conv.get(), d.w.get(), n,
                                                                 returned, perfs);
          },
          op);
  }
  return Choice{};
}

// Runs one pass with the cached (or newly searched) algorithm; false when cuDNN supports nothing for
// these operands. Note [Backend path first]: the backend API's plan (cudnn_engine.h, Note [Why the
// backend API]) is tried first; a key it cannot serve is remembered there and runs on the legacy
// algorithms below. g_searches counts the calls that searched on either path, once each.
bool run(Pass pass, const Operands& o, const Conv3dOptions& opt, const char* op) {
  bool engine_searched = false;
  if (conv_engine_api() && engine_convolve(pass, o.x, o.w, o.y, opt, op, &engine_searched)) {
    if (engine_searched) g_searches.fetch_add(1);
    return true;
  }
  const DType dtype = o.x.dtype();
  const int device = o.x.device().index;
  cudnnHandle_t h = cudnn_handle(device);
  Descriptors d{TensorDesc(o.x, op), TensorDesc(o.y, op), FilterDesc(o.w, op),
                ConvDesc(opt.stride, opt.padding, opt.dilation, dtype, conv_math_type(dtype), op)};
  const std::string key = key_of(pass, o, opt);
  AlgorithmCache& cache = algorithm_cache();
  std::optional<Choice> choice;
  {
    std::lock_guard<std::mutex> lock(cache.mutex);
    auto it = cache.choices.find(key);
    if (it != cache.choices.end()) choice = it->second;
  }
  if (engine_searched || !choice) g_searches.fetch_add(1);
  if (!choice) {
    choice = search_pass(pass, h, d, o, op);
    std::lock_guard<std::mutex> lock(cache.mutex);
    cache.choices[key] = *choice;
  }
  if (!choice->supported) return false;
  d.conv.set_math(choice->math, op);
  const Tensor ws = workspace(choice->workspace, device);
  const Scale one = scale(1.0), zero = scale(0.0);
  const void *a = one.of(dtype), *b = zero.of(dtype);
  switch (pass) {
    case Pass::forward:
      check_cudnn(cudnnConvolutionForward(h, a, d.x.get(), o.x.raw_data(), d.w.get(), o.w.raw_data(), d.conv.get(),
                                          static_cast<cudnnConvolutionFwdAlgo_t>(choice->algo), workspace_ptr(ws),
                                          choice->workspace, b, d.y.get(), o.y.raw_data()),
                  op, "cudnnConvolutionForward");
      break;
    case Pass::backward_data:
      check_cudnn(cudnnConvolutionBackwardData(h, a, d.w.get(), o.w.raw_data(), d.y.get(), o.y.raw_data(),
                                               d.conv.get(), static_cast<cudnnConvolutionBwdDataAlgo_t>(choice->algo),
                                               workspace_ptr(ws), choice->workspace, b, d.x.get(), o.x.raw_data()),
                  op, "cudnnConvolutionBackwardData");
      break;
    case Pass::backward_filter:
      // beta = 0: the weight gradient overwrites the (uninitialised) output, it never accumulates.
      check_cudnn(cudnnConvolutionBackwardFilter(h, a, d.x.get(), o.x.raw_data(), d.y.get(), o.y.raw_data(),
                                                 d.conv.get(),
                                                 static_cast<cudnnConvolutionBwdFilterAlgo_t>(choice->algo),
                                                 workspace_ptr(ws), choice->workspace, b, d.w.get(), o.w.raw_data()),
                  op, "cudnnConvolutionBackwardFilter");
      break;
  }
  return true;
}

// Note [Channels-last convolutions]: a convolution works in the layout of its activation operand. A
// channels-last input (forward, weight gradient) or output gradient (data gradient, and so the
// transposed convolution's forward) makes every operand channels-last: the result is allocated so,
// the filter is arranged so for the call (a copy of at most a few MB, small next to the
// activations), and the weight gradient, computed channels-last, is returned plain like its
// parameter. cuDNN then gets all-NDHWC operands, the arrangement of its tensor-core engines, which
// otherwise transpose NCDHW operands in their workspace.
//
// Note [Mixed layouts]: operands go to cuDNN in the layouts they come in (a channels-last input with a
// plain output, say). Where cuDNN offers no algorithm for such a mix, the inputs are copied to plain
// and the pass runs again; the outcome is cached per key like any choice, so the retry costs one
// extra search per shape.
void convolve(Pass pass, const Operands& o, const Conv3dOptions& opt, const char* op) {
  if (run(pass, o, opt, op)) return;
  const bool all_plain = is_plain(o.x) && is_plain(o.w) && is_plain(o.y);
  check(!all_plain, "{}: cuDNN offers no algorithm for x {}, w {}, y {} ({}, {})", op, o.x.shape().str(),
        o.w.shape().str(), o.y.shape().str(), opt.str(), dtype_name(o.x.dtype()));
  const Operands plain{dense_as(o.x, Layout::plain, op), dense_as(o.w, Layout::plain, op),
                       dense_as(o.y, Layout::plain, op)};
  check(run(pass, plain, opt, op), "{}: cuDNN offers no algorithm for x {}, w {}, y {} ({}, {}), plain or not", op,
        o.x.shape().str(), o.w.shape().str(), o.y.shape().str(), opt.str(), dtype_name(o.x.dtype()));
  // The pass wrote a plain copy of its output operand where that operand is channels-last.
  const Tensor& written = pass == Pass::forward ? o.y : (pass == Pass::backward_data ? o.x : o.w);
  const Tensor& result = pass == Pass::forward ? plain.y : (pass == Pass::backward_data ? plain.x : plain.w);
  if (written.impl().storage != result.impl().storage) written.detach().copy_(result);
}

bool any_empty(std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    if (t->numel() == 0) return true;
  return false;
}

// The forward output shape a convolution of an input of `in` with a filter of `w` has, as cuDNN
// computes it; checks the geometry.
Shape forward_shape(const Shape& in, const Shape& w, const Conv3dOptions& opt, const char* op) {
  Shape out{in[0], w[0], 0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    check(opt.stride[i] >= 1 && opt.dilation[i] >= 1 && opt.padding[i] >= 0 && w[2 + i] >= 1,
          "{}: invalid geometry ({}, kernel {}); strides and dilations must be >= 1, paddings >= 0", op, opt.str(),
          w.str());
    const std::int64_t padded = in[2 + i] + 2 * opt.padding[i];
    const std::int64_t span = opt.dilation[i] * (w[2 + i] - 1) + 1;
    check(padded >= span, "{}: kernel {} (dilated extent {}) is larger than the padded input {} along axis {}", op,
          w.str(), span, in.str(), i);
    out[2 + i] = (padded - span) / opt.stride[i] + 1;
  }
  return out;
}

// The output gradient as cuDNN needs it: of the forward shape `full`. Note [Output rows past the last
// window]: a transposed convolution's output_padding of at least the stride (allowed below the
// dilation) makes the convolution's input longer than its natural forward output; those extra output
// positions exist in no forward, so their gradient is zero and the gradient is padded with zeros.
// It is dense in `layout`.
Tensor grad_of_shape(const Tensor& grad, const Shape& full, Layout layout, const char* op) {
  if (grad.shape() == full) return dense_as(grad, layout, op);
  for (int i = 0; i < 5; ++i)
    check(grad.shape()[i] <= full[i] && (i >= 2 || grad.shape()[i] == full[i]),
          "{}: grad_output {} does not fit the convolution, whose output is {}", op, grad.shape().str(), full.str());
  Tensor out = empty_in_layout(grad, full, layout);
  out.zero_();
  tlk::cuda::copy_strided({out.raw_data(), out.dtype(), out.strides().begin()},
                          {grad.raw_data(), grad.dtype(), grad.strides().begin()}, grad.shape().begin(), grad.dim(),
                          grad.device().index);
  return out;
}

Tensor backward_data(const Tensor& grad, const Tensor& weight, const Shape& input_shape, const Conv3dOptions& opt,
                     const char* op) {
  require_cuda_floating(grad, op, "grad_output");
  require_same(weight, grad, op, "weight");
  check(input_shape.size() == 5 && grad.dim() == 5 && weight.dim() == 5 && grad.shape()[1] == weight.shape()[0] &&
            input_shape[1] == weight.shape()[1] && input_shape[0] == grad.shape()[0],
        "{}: grad_output {} and weight {} do not fit input shape {}", op, grad.shape().str(), weight.shape().str(),
        input_shape.str());
  const Layout layout = layout_of(grad);
  Tensor dx = empty_in_layout(grad, input_shape, layout);
  if (dx.numel() == 0) return dx;
  const Shape full = forward_shape(input_shape, weight.shape(), opt, op);
  if (any_empty({&grad, &weight})) return dx.zero_();
  convolve(Pass::backward_data,
           Operands{dx, dense_as(weight, layout, op), grad_of_shape(grad, full, layout, op)}, opt, op);
  return dx;
}

}  // namespace

Tensor conv3d_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv3dOptions& opt) {
  const char* op = "conv3d";
  require_cuda_floating(input, op, "input");
  require_same(weight, input, op, "weight");
  if (bias.defined()) require_same(bias, input, op, "bias");
  const Shape out_shape = conv3d_output_shape(input, weight, bias, opt, op);
  const Layout layout = layout_of(input);
  Tensor y = empty_in_layout(input, out_shape, layout);
  if (y.numel() == 0) return y;
  if (any_empty({&input, &weight}))
    y.zero_();
  else
    convolve(Pass::forward, Operands{dense(input, op), dense_as(weight, layout, op), y}, opt, op);
  if (bias.defined()) add_channel_bias(y, bias, op);
  return y;
}

Tensor conv3d_backward_data(const Tensor& grad_output, const Tensor& weight, const Shape& input_shape,
                            const Conv3dOptions& opt) {
  return backward_data(grad_output, weight, input_shape, opt, "conv3d backward data");
}

Tensor conv3d_backward_weights(const Tensor& grad_output, const Tensor& input, const Shape& weight_shape,
                               const Conv3dOptions& opt) {
  const char* op = "conv3d backward weights";
  require_cuda_floating(grad_output, op, "grad_output");
  require_same(input, grad_output, op, "input");
  check(weight_shape.size() == 5 && grad_output.dim() == 5 && input.dim() == 5 &&
            grad_output.shape()[1] == weight_shape[0] && input.shape()[1] == weight_shape[1] &&
            input.shape()[0] == grad_output.shape()[0],
        "{}: grad_output {} and input {} do not fit weight {}", op, grad_output.shape().str(), input.shape().str(),
        weight_shape.str());
  const Layout layout = layout_of(input);
  Tensor dw = empty_in_layout(grad_output, weight_shape, layout);
  if (dw.numel() == 0) return dw;
  const Shape full = forward_shape(input.shape(), weight_shape, opt, op);
  if (any_empty({&grad_output, &input})) return dense_as(dw.zero_(), Layout::plain, op);
  convolve(Pass::backward_filter,
           Operands{dense(input, op), dw, grad_of_shape(grad_output, full, layout, op)}, opt, op);
  return dense_as(dw, Layout::plain, op);  // the parameter's layout
}

Tensor conv3d_backward_bias(const Tensor& grad_output) {
  const char* op = "conv3d backward bias";
  require_cuda_floating(grad_output, op, "grad_output");
  check(grad_output.dim() == 5, "{}: expected a 5-D grad_output [N, C, D, H, W], got {}", op,
        grad_output.shape().str());
  return channel_sum(grad_output, op);
}

Tensor conv_transpose3d_forward(const Tensor& input, const Tensor& weight, const Tensor& bias,
                                const Conv3dOptions& opt) {
  const char* op = "conv_transpose3d";
  require_cuda_floating(input, op, "input");
  require_same(weight, input, op, "weight");
  if (bias.defined()) require_same(bias, input, op, "bias");
  const Shape out_shape = conv_transpose3d_output_shape(input, weight, bias, opt, op);
  Tensor y = backward_data(input, weight, out_shape, opt, op);
  if (bias.defined()) add_channel_bias(y, bias, op);
  return y;
}

std::int64_t conv_algorithm_searches() { return g_searches.load(); }

void clear_conv_algorithm_cache() {
  clear_conv_engine_cache();
  AlgorithmCache& cache = algorithm_cache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  cache.choices.clear();
}

}  // namespace tlk::kernels::cuda
