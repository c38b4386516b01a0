#include "tlk/kernels/cuda/cudnn_graph.h"

#include <fmt/format.h>

#include <algorithm>

#include "tlk/kernels/cuda/cudnn_context.h"

namespace tlk::kernels::cuda::graph_api {

void check_backend(cudnnStatus_t s, const char* op, const char* call, const char* what) {
  if (s == CUDNN_STATUS_SUCCESS) return;
  fail("{}: {} ({}) failed: {} (cuDNN status {})", op, call, what, cudnnGetErrorString(s), static_cast<int>(s));
}

// The strides cuDNN is given for `t`, in elements: the canonical ones of a dense plain or
// channels-last tensor (TLK leaves strides of extent-1 axes arbitrary), else the real ones.
Dims strides_of(const Tensor& t) {
  if (is_channels_last(t)) return channels_last_strides(t.shape());  // first: it may be plain too
  if (is_plain(t)) return contiguous_strides(t.shape());
  Dims s = t.strides();
  for (int i = 0; i < t.dim(); ++i)
    if (t.shape()[i] == 1) s[i] = 1;
  return s;
}

// CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT: 16 for a 16-byte aligned pointer, else the element size.
std::int64_t alignment_of(const Tensor& t) {
  return reinterpret_cast<std::uintptr_t>(t.raw_data()) % 16 == 0 ? 16
                                                                  : static_cast<std::int64_t>(element_size(t.dtype()));
}

namespace {

std::string operand_key(const Tensor& t) {
  return fmt::format("{}{}@{}", t.shape().str(), strides_of(t).str(), alignment_of(t));
}

BackendDesc make_tensor(const Tensor& t, std::int64_t uid, const char* op) {
  BackendDesc desc(CUDNN_BACKEND_TENSOR_DESCRIPTOR, op, "tensor");
  const Dims strides = strides_of(t);
  const std::int64_t alignment = alignment_of(t);
  const cudnnDataType_t type = cudnn_dtype(t.dtype(), op);
  desc.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type, op, "CUDNN_ATTR_TENSOR_DATA_TYPE");
  desc.set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, t.dim(), t.shape().begin(), op,
           "CUDNN_ATTR_TENSOR_DIMENSIONS");
  desc.set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, t.dim(), strides.begin(), op, "CUDNN_ATTR_TENSOR_STRIDES");
  desc.set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, op, "CUDNN_ATTR_TENSOR_UNIQUE_ID");
  desc.set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment, op, "CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT");
  desc.finalize(op, "tensor descriptor");
  return desc;
}

BackendDesc make_convolution(const Conv3dOptions& opt, DType dtype, const char* op) {
  BackendDesc desc(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, op, "convolution");
  const cudnnDataType_t compute = conv_compute_dtype(dtype, op);  // DOUBLE for f64, else FLOAT
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  const std::int64_t dims = 3;
  desc.set(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute, op, "CUDNN_ATTR_CONVOLUTION_COMP_TYPE");
  desc.set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode, op,
           "CUDNN_ATTR_CONVOLUTION_CONV_MODE");
  desc.set(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &dims, op, "CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS");
  desc.set(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 3, opt.padding.data(), op,
           "CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS");
  desc.set(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 3, opt.padding.data(), op,
           "CUDNN_ATTR_CONVOLUTION_POST_PADDINGS");
  desc.set(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 3, opt.stride.data(), op,
           "CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES");
  desc.set(CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 3, opt.dilation.data(), op,
           "CUDNN_ATTR_CONVOLUTION_DILATIONS");
  desc.finalize(op, "convolution descriptor");
  return desc;
}

// The operation descriptor type and attribute names of one pass (x, w, y in the roles of
// cudnn_engine.h's ConvPass).
struct PassAttributes {
  cudnnBackendDescriptorType_t type;
  cudnnBackendAttributeName_t x, w, y, conv, alpha, beta;
};

PassAttributes attributes_of(ConvPass pass) {
  switch (pass) {
    case ConvPass::forward:
      return {CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR,
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W,
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA};
    case ConvPass::backward_data:
      return {CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA};
    case ConvPass::backward_filter:
      return {CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA};
  }
  fail("cuDNN engine: unknown convolution pass {}", static_cast<int>(pass));
}

}  // namespace

const char* pass_name(ConvPass pass) {
  switch (pass) {
    case ConvPass::forward:
      return "forward";
    case ConvPass::backward_data:
      return "backward-data";
    case ConvPass::backward_filter:
      return "backward-filter";
  }
  return "?";
}

std::string key_of(ConvPass pass, const Tensor& x, const Tensor& w, const Tensor& y, const Conv3dOptions& opt) {
  const Int3 &s = opt.stride, &p = opt.padding, &d = opt.dilation;
  return fmt::format("{}|{}|tf32 {}|dev {}|x{}|w{}|y{}|s{},{},{}|p{},{},{}|d{},{},{}", pass_name(pass),
                     dtype_name(x.dtype()), allow_tf32(), x.device().index, operand_key(x), operand_key(w),
                     operand_key(y), s[0], s[1], s[2], p[0], p[1], p[2], d[0], d[1], d[2]);
}

std::shared_ptr<const Graph> make_graph(cudnnHandle_t handle, ConvPass pass, const Tensor& x, const Tensor& w,
                                        const Tensor& y, const Conv3dOptions& opt, const char* op) {
  const PassAttributes a = attributes_of(pass);
  BackendDesc xd = make_tensor(x, kUidX, op), wd = make_tensor(w, kUidW, op), yd = make_tensor(y, kUidY, op);
  BackendDesc conv = make_convolution(opt, x.dtype(), op);
  BackendDesc operation(a.type, op, "convolution operation");
  operation.set(a.x, xd, op, "operation x");
  operation.set(a.w, wd, op, "operation w");
  operation.set(a.y, yd, op, "operation y");
  operation.set(a.conv, conv, op, "operation convolution descriptor");
  // alpha 1, beta 0: the written operand is overwritten. Scalars in the compute type's precision.
  const float onef = 1.0f, zerof = 0.0f;
  const double oned = 1.0, zerod = 0.0;
  const bool f64 = x.dtype() == DType::f64;
  operation.set(a.alpha, f64 ? CUDNN_TYPE_DOUBLE : CUDNN_TYPE_FLOAT, 1, f64 ? static_cast<const void*>(&oned) : &onef,
                op, "operation alpha");
  operation.set(a.beta, f64 ? CUDNN_TYPE_DOUBLE : CUDNN_TYPE_FLOAT, 1, f64 ? static_cast<const void*>(&zerod) : &zerof,
                op, "operation beta");
  operation.finalize(op, "convolution operation");
  BackendDesc graph(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, op, "operation graph");
  graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, operation, op, "CUDNN_ATTR_OPERATIONGRAPH_OPS");
  // Deprecated since cuDNN 9.8 (device properties replace it) but required by earlier 9.x releases.
  graph.set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle, op, "CUDNN_ATTR_OPERATIONGRAPH_HANDLE");
  graph.finalize(op, "operation graph");
  return std::make_shared<const Graph>(
      Graph{std::move(xd), std::move(wd), std::move(yd), std::move(conv), std::move(operation), std::move(graph)});
}

std::vector<BackendDesc> engine_configs(const Graph& graph, cudnnBackendHeurMode_t mode, const char* op) {
  BackendDesc heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, op, "engine heuristics");
  heur.set(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph.graph, op, "CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH");
  heur.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, op, "CUDNN_ATTR_ENGINEHEUR_MODE");
  heur.finalize(op, "engine heuristics");
  std::int64_t count = 0;
  check_backend(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0,
                                         &count, nullptr),
                op, "cudnnBackendGetAttribute", "CUDNN_ATTR_ENGINEHEUR_RESULTS count");
  std::vector<BackendDesc> configs;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (std::int64_t i = 0; i < count; ++i) {
    configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, op, "engine config");
    raw.push_back(configs.back().get());
  }
  if (count == 0) return configs;
  std::int64_t returned = 0;
  check_backend(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                         count, &returned, raw.data()),
                op, "cudnnBackendGetAttribute", "CUDNN_ATTR_ENGINEHEUR_RESULTS");
  configs.erase(configs.begin() + std::clamp<std::int64_t>(returned, 0, count), configs.end());
  return configs;
}

std::vector<BackendDesc> every_engine_config(const Graph& graph, const char* op) {
  std::int64_t count = 0, n = 0;
  check_backend(cudnnBackendGetAttribute(graph.graph.get(), CUDNN_ATTR_OPERATIONGRAPH_ENGINE_GLOBAL_COUNT,
                                         CUDNN_TYPE_INT64, 1, &n, &count),
                op, "cudnnBackendGetAttribute", "CUDNN_ATTR_OPERATIONGRAPH_ENGINE_GLOBAL_COUNT");
  std::vector<BackendDesc> configs;
  for (std::int64_t index = 0; index < count; ++index) {
    BackendDesc engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR, op, "engine");
    cudnnBackendDescriptor_t g = graph.graph.get();
    // An engine that does not support the graph says so when it is finalized.
    if (cudnnBackendSetAttribute(engine.get(), CUDNN_ATTR_ENGINE_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                 &g) != CUDNN_STATUS_SUCCESS ||
        cudnnBackendSetAttribute(engine.get(), CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &index) !=
            CUDNN_STATUS_SUCCESS ||
        cudnnBackendFinalize(engine.get()) != CUDNN_STATUS_SUCCESS)
      continue;
    BackendDesc config(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, op, "engine config");
    cudnnBackendDescriptor_t e = engine.get();
    if (cudnnBackendSetAttribute(config.get(), CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &e) !=
            CUDNN_STATUS_SUCCESS ||
        cudnnBackendFinalize(config.get()) != CUDNN_STATUS_SUCCESS)
      continue;
    configs.push_back(std::move(config));
  }
  return configs;
}

std::optional<EngineInfo> engine_info(const BackendDesc& config, DType dtype, const char* op) {
  BackendDesc engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR, op, "engine");
  cudnnBackendDescriptor_t e = engine.get();
  std::int64_t n = 0;
  if (cudnnBackendGetAttribute(config.get(), CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &e) !=
          CUDNN_STATUS_SUCCESS ||
      n != 1)
    return std::nullopt;
  cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
  std::int64_t count = 0;
  if (cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                               CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &count, notes) != CUDNN_STATUS_SUCCESS)
    return std::nullopt;
  static constexpr const char* kNames[] = {"tc", "down-convert", "rpr", "fft", "nd", "wino", "wino4", "wino6", "wino13",
                                           "nan"};
  EngineInfo info;
  info.precision_ok = true;
  // The 16-bit types accumulate in f32: an engine that reduces in lower precision is refused.
  const bool strict = dtype != DType::f32 || !allow_tf32();
  for (std::int64_t i = 0; i < std::min<std::int64_t>(count, CUDNN_NUMERICAL_NOTE_TYPE_COUNT); ++i) {
    const cudnnBackendNumericalNote_t note = notes[i];
    if (note >= 0 && note < CUDNN_NUMERICAL_NOTE_TYPE_COUNT)
      info.notes += fmt::format("{}{}", info.notes.empty() ? "" : ",", kNames[note]);
    if (note == CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS) info.precision_ok = false;
    // A reduced-precision reduction (TF32-class accumulation of partial sums) is what a user who
    // allows TF32 has accepted; strict f32 and f64 refuse it, as they refuse tensor-core math.
    if (note == CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION && strict) info.precision_ok = false;
    if (note == CUDNN_NUMERICAL_NOTE_TENSOR_CORE && dtype == DType::f32 && !allow_tf32()) info.precision_ok = false;
  }
  if (cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &info.index) !=
      CUDNN_STATUS_SUCCESS)
    info.index = -1;
  return info;
}

}  // namespace tlk::kernels::cuda::graph_api
