#include "tlk/kernels/cuda/cudnn_engine.h"

#include <cudnn.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include "tlk/kernels/cuda/cudnn_context.h"
#include "tlk/kernels/cuda/launch.h"

namespace tlk::kernels::cuda {

namespace {

std::atomic<bool> g_engine_api{true};
std::atomic<std::int64_t> g_searches{0};
std::atomic<std::int64_t> g_fallbacks{0};

// Note [Plan search budget]: heuristics list engine configurations best-first. At most
// kMaxCandidates usable plans are timed, and at most kMaxFinalizeTries plans are finalized per key
// (finalizing can compile kernels at run time), so a first call stays bounded.
constexpr int kMaxCandidates = 8;
constexpr int kMaxFinalizeTries = 32;
constexpr int kTimedRuns = 2;

// The unique ids of the three operands in the graph and the variant pack.
constexpr std::int64_t kUidX = 1, kUidW = 2, kUidY = 3;

/// Throws tlk::Error "`op`: `call` (`what`) failed: <cudnnGetErrorString>" unless `s` is success.
void check_backend(cudnnStatus_t s, const char* op, const char* call, const char* what) {
  if (s == CUDNN_STATUS_SUCCESS) return;
  fail("{}: {} ({}) failed: {} (cuDNN status {})", op, call, what, cudnnGetErrorString(s), static_cast<int>(s));
}

// One backend descriptor, destroyed with the object (cudnnBackendDestroyDescriptor).
class BackendDesc {
 public:
  BackendDesc(cudnnBackendDescriptorType_t type, const char* op, const char* what) {
    check_backend(cudnnBackendCreateDescriptor(type, &desc_), op, "cudnnBackendCreateDescriptor", what);
  }
  ~BackendDesc() {
    if (desc_) cudnnBackendDestroyDescriptor(desc_);
  }
  BackendDesc(BackendDesc&& other) noexcept : desc_(std::exchange(other.desc_, nullptr)) {}
  BackendDesc& operator=(BackendDesc&& other) noexcept {
    if (this != &other) {
      if (desc_) cudnnBackendDestroyDescriptor(desc_);
      desc_ = std::exchange(other.desc_, nullptr);
    }
    return *this;
  }
  BackendDesc(const BackendDesc&) = delete;
  BackendDesc& operator=(const BackendDesc&) = delete;
  cudnnBackendDescriptor_t get() const { return desc_; }

  /// Sets one attribute; `what` names it in the error message.
  void set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, std::int64_t count, const void* values,
           const char* op, const char* what) const {
    check_backend(cudnnBackendSetAttribute(desc_, name, type, count, values), op, "cudnnBackendSetAttribute", what);
  }
  /// Sets a descriptor-valued attribute.
  void set(cudnnBackendAttributeName_t name, const BackendDesc& value, const char* op, const char* what) const {
    cudnnBackendDescriptor_t d = value.get();
    set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &d, op, what);
  }
  void finalize(const char* op, const char* what) const {
    check_backend(cudnnBackendFinalize(desc_), op, "cudnnBackendFinalize", what);
  }

 private:
  cudnnBackendDescriptor_t desc_ = nullptr;
};

// The strides cuDNN is given for `t`, in elements: the canonical ones of a dense plain or
// channels-last tensor (TLK leaves strides of extent-1 axes arbitrary), else the real ones.
Dims strides_of(const Tensor& t) {
  if (is_plain(t)) return contiguous_strides(t.shape());
  if (is_channels_last(t)) return channels_last_strides(t.shape());
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

std::string operand_key(const Tensor& t) {
  return fmt::format("{}{}@{}", t.shape().str(), strides_of(t).str(), alignment_of(t));
}

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
  const cudnnDataType_t compute = cudnn_dtype(dtype, op);  // FLOAT for f32, DOUBLE for f64
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

// The operation graph of one convolution. The descriptors it was built from stay alive with it (and
// with every plan made from it), whatever cuDNN keeps by reference.
struct Graph {
  BackendDesc x, w, y, conv, operation, graph;
};

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

// The engine configurations heuristics `mode` proposes for `graph`, best first.
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

// What an engine configuration is: its engine's global index and whether its numerical notes keep
// the requested precision (Note [TF32 switch]): never a down-conversion of the inputs or a reduced-
// precision reduction, and no tensor-core (TF32) math for f32 while TF32 is switched off.
struct EngineInfo {
  std::int64_t index = -1;
  bool precision_ok = false;
};

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
  EngineInfo info;
  info.precision_ok = true;
  for (std::int64_t i = 0; i < std::min<std::int64_t>(count, CUDNN_NUMERICAL_NOTE_TYPE_COUNT); ++i) {
    const cudnnBackendNumericalNote_t note = notes[i];
    if (note == CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS || note == CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION)
      info.precision_ok = false;
    if (note == CUDNN_NUMERICAL_NOTE_TENSOR_CORE && dtype == DType::f32 && !allow_tf32()) info.precision_ok = false;
  }
  if (cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &info.index) !=
      CUDNN_STATUS_SUCCESS)
    info.index = -1;
  return info;
}

// A finalized execution plan with what it was made from.
struct Plan {
  std::shared_ptr<const Graph> graph;
  BackendDesc config;
  BackendDesc plan;
  std::size_t workspace = 0;
  std::int64_t engine = -1;
  float ms = 0.0f;  // the timing run's mean time
};

// The cache entry of one key: a plan, or null with the reason the key runs on the legacy path.
struct Entry {
  std::shared_ptr<const Plan> plan;
  std::string why_not;
};

struct PlanCache {
  std::mutex mutex;
  std::unordered_map<std::string, Entry> entries;
};
PlanCache& plan_cache() {
  static auto* cache = new PlanCache();  // leaked on purpose, like the handles (Note [Library handles])
  return *cache;
}

// Runs `plan` once on `pointers` (uids kUidX, kUidW, kUidY) with the workspace `ws`.
cudnnStatus_t execute(cudnnHandle_t handle, const BackendDesc& plan, void* x, void* w, void* y, void* ws,
                      const char* op) {
  const std::int64_t uids[3] = {kUidX, kUidW, kUidY};
  void* pointers[3] = {x, w, y};
  BackendDesc pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, op, "variant pack");
  pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uids, op, "CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS");
  pack.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, pointers, op,
           "CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS");
  pack.set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws, op, "CUDNN_ATTR_VARIANT_PACK_WORKSPACE");
  pack.finalize(op, "variant pack");
  return cudnnBackendExecute(handle, plan.get(), pack.get());
}

// Two CUDA events on stream(), destroyed with the object.
class EventPair {
 public:
  explicit EventPair(const char* op) : op_(op) {
    check_status(cudaEventCreate(&start_), op, "cudaEventCreate");
    const cudaError_t s = cudaEventCreate(&stop_);
    if (s != cudaSuccess) cudaEventDestroy(start_);
    check_status(s, op, "cudaEventCreate");
  }
  ~EventPair() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  EventPair(const EventPair&) = delete;
  EventPair& operator=(const EventPair&) = delete;
  void start() { check_status(cudaEventRecord(start_, stream()), op_, "cudaEventRecord"); }
  /// Milliseconds since start(), after waiting for the stream to get there.
  float stop() {
    check_status(cudaEventRecord(stop_, stream()), op_, "cudaEventRecord");
    check_status(cudaEventSynchronize(stop_), op_, "cudaEventSynchronize (timing a cuDNN plan)");
    float ms = 0.0f;
    check_status(cudaEventElapsedTime(&ms, start_, stop_), op_, "cudaEventElapsedTime");
    return ms;
  }

 private:
  const char* op_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

// The mean time of kTimedRuns runs of `plan` after one warm-up run (which also loads its kernels),
// or nullopt when cuDNN refuses to run it. A plan whose warm-up is 10x slower than `best` is not
// timed further.
std::optional<float> time_plan(cudnnHandle_t handle, int device, const Plan& plan, void* x, void* w, void* y,
                               float best, const char* op) {
  Tensor ws;
  try {
    ws = workspace(plan.workspace, device);
  } catch (const Error&) {  // out of memory: skip this plan
    return std::nullopt;
  }
  EventPair events(op);
  events.start();
  if (execute(handle, plan.plan, x, w, y, workspace_ptr(ws), op) != CUDNN_STATUS_SUCCESS) return std::nullopt;
  const float warm = events.stop();
  if (warm > 10.0f * best) return warm;
  events.start();
  for (int i = 0; i < kTimedRuns; ++i)
    if (execute(handle, plan.plan, x, w, y, workspace_ptr(ws), op) != CUDNN_STATUS_SUCCESS) return std::nullopt;
  return events.stop() / kTimedRuns;
}

// An execution plan for `config`, or nullopt (with cuDNN's status in `failure`) when cuDNN cannot
// build one for this graph: finalize failing is how engines say "not for these operands".
std::optional<BackendDesc> make_plan(cudnnHandle_t handle, const BackendDesc& config, std::size_t* workspace_bytes,
                                     cudnnStatus_t* failure, const char* op) {
  BackendDesc plan(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, op, "execution plan");
  cudnnBackendDescriptor_t c = config.get();
  cudnnStatus_t s = cudnnBackendSetAttribute(plan.get(), CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                             CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &c);
  // Deprecated since cuDNN 9.8 (device properties replace it) but required by earlier 9.x releases.
  if (s == CUDNN_STATUS_SUCCESS)
    s = cudnnBackendSetAttribute(plan.get(), CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
  if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendFinalize(plan.get());
  std::int64_t bytes = 0, n = 0;
  if (s == CUDNN_STATUS_SUCCESS)
    s = cudnnBackendGetAttribute(plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n, &bytes);
  if (s == CUDNN_STATUS_SUCCESS && bytes < 0) s = CUDNN_STATUS_INTERNAL_ERROR;
  if (s != CUDNN_STATUS_SUCCESS) {
    *failure = s;
    return std::nullopt;
  }
  *workspace_bytes = static_cast<std::size_t>(bytes);
  return plan;
}

// A tensor like the written operand `out` (same shape, dtype, strides, at least its alignment) for
// the timing runs, so the real output is written only by the final run; `out` itself when no such
// copy can be made (an odd arrangement, or no memory left).
Tensor scratch_like(const Tensor& out) {
  if (!is_plain(out) && !is_channels_last(out)) return out;
  try {
    Tensor t = Tensor::empty(out.shape(), TensorOptions{out.dtype(), out.device()});
    if (is_channels_last(out)) t.impl().strides = channels_last_strides(out.shape());
    if (strides_of(t) == strides_of(out) && alignment_of(t) >= alignment_of(out)) return t;
  } catch (const Error&) {  // out of memory: time on the real output (the final run overwrites it)
  }
  return out;
}

// Note [Plan search]: builds the key's operation graph, takes engine configurations from heuristics
// mode A (mode FALLBACK when A yields nothing usable), drops those whose numerical notes break the
// precision contract, finalizes plans (Note [Plan search budget]), drops those needing more than
// kMaxConvWorkspace, and times the rest on the real inputs, keeping the fastest. Returns the entry
// to cache: a plan, or why there is none. Throws tlk::Error when building the graph fails.
Entry search(ConvPass pass, const Tensor& x, const Tensor& w, const Tensor& y, const Conv3dOptions& opt,
             const char* op) {
  const int device = x.device().index;
  cudnnHandle_t handle = cudnn_handle(device);
  const std::shared_ptr<const Graph> graph = make_graph(handle, pass, x, w, y, opt, op);
  std::vector<Plan> candidates;
  int offered = 0, rejected = 0, tries = 0, unbuilt = 0, too_big = 0;
  cudnnStatus_t last_failure = CUDNN_STATUS_SUCCESS;
  std::string heuristics_errors;
  for (const cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    std::vector<BackendDesc> configs;
    try {
      configs = engine_configs(*graph, mode, op);
    } catch (const Error& e) {
      heuristics_errors += fmt::format("; heuristics mode {}: {}", static_cast<int>(mode), e.what());
      continue;
    }
    offered += static_cast<int>(configs.size());
    for (BackendDesc& config : configs) {
      if (static_cast<int>(candidates.size()) >= kMaxCandidates || tries >= kMaxFinalizeTries) break;
      const std::optional<EngineInfo> info = engine_info(config, x.dtype(), op);
      if (!info || !info->precision_ok) {
        ++rejected;
        continue;
      }
      ++tries;
      std::size_t bytes = 0;
      std::optional<BackendDesc> plan = make_plan(handle, config, &bytes, &last_failure, op);
      if (!plan) {
        ++unbuilt;
        continue;
      }
      if (bytes > kMaxConvWorkspace) {
        ++too_big;
        continue;
      }
      candidates.push_back(Plan{graph, std::move(config), std::move(*plan), bytes, info->index, 0.0f});
    }
    if (!candidates.empty()) break;
  }
  if (candidates.empty())
    return Entry{nullptr,
                 fmt::format("no usable engine: heuristics offered {} configs, {} rejected by numerical notes, {} "
                             "failed to finalize (last: {}), {} need more than {} bytes of workspace{}",
                             offered, rejected, unbuilt, unbuilt ? cudnnGetErrorString(last_failure) : "none", too_big,
                             kMaxConvWorkspace, heuristics_errors)};
  // Time on the real inputs, writing into a scratch output.
  const Tensor sx = pass == ConvPass::backward_data ? scratch_like(x) : x;
  const Tensor sw = pass == ConvPass::backward_filter ? scratch_like(w) : w;
  const Tensor sy = pass == ConvPass::forward ? scratch_like(y) : y;
  float best = std::numeric_limits<float>::infinity();
  int best_index = -1;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const std::optional<float> ms =
        time_plan(handle, device, candidates[i], sx.raw_data(), sw.raw_data(), sy.raw_data(), best, op);
    if (ms && *ms < best) {
      best = *ms;
      best_index = static_cast<int>(i);
    }
  }
  if (best_index < 0)
    return Entry{nullptr,
                 fmt::format("none of the {} usable plans ran (cudnnBackendExecute refused them)", candidates.size())};
  Plan& chosen = candidates[static_cast<std::size_t>(best_index)];
  chosen.ms = best;
  return Entry{std::make_shared<const Plan>(std::move(chosen)), ""};
}

}  // namespace

void set_conv_engine_api(bool on) { g_engine_api.store(on); }
bool conv_engine_api() { return g_engine_api.load(); }

bool engine_convolve(ConvPass pass, const Tensor& x, const Tensor& w, const Tensor& y, const Conv3dOptions& opt,
                     const char* op, bool* searched) {
  if (searched) *searched = false;
  require_cuda_float(x, op, "convolution input");
  require_same(w, x, op, "convolution filter");
  require_same(y, x, op, "convolution output");
  check(x.dim() == 5 && w.dim() == 5 && y.dim() == 5, "{}: the cuDNN engine path takes 5-D x, w, y, got {}, {}, {}", op,
        x.shape().str(), w.shape().str(), y.shape().str());
  if (x.numel() == 0 || w.numel() == 0 || y.numel() == 0) return false;
  const std::string key = key_of(pass, x, w, y, opt);
  PlanCache& cache = plan_cache();
  std::optional<std::shared_ptr<const Plan>> found;
  {
    std::lock_guard<std::mutex> lock(cache.mutex);
    auto it = cache.entries.find(key);
    if (it != cache.entries.end()) found = it->second.plan;
  }
  if (!found) {
    Entry entry;
    try {
      entry = search(pass, x, w, y, opt, op);
    } catch (const Error& e) {  // building the graph failed: the legacy path serves this key
      entry = Entry{nullptr, e.what()};
    }
    g_searches.fetch_add(1);
    if (!entry.plan) g_fallbacks.fetch_add(1);
    if (searched) *searched = true;
    found = entry.plan;
    std::lock_guard<std::mutex> lock(cache.mutex);
    cache.entries[key] = std::move(entry);
  }
  const std::shared_ptr<const Plan>& plan = *found;
  if (!plan) return false;
  const int device = x.device().index;
  cudnnHandle_t handle = cudnn_handle(device);
  Tensor ws;
  try {
    ws = workspace(plan->workspace, device);
  } catch (const Error&) {  // no memory for this plan's workspace now: the legacy path may need less
    return false;
  }
  const cudnnStatus_t status =
      execute(handle, plan->plan, x.raw_data(), w.raw_data(), y.raw_data(), workspace_ptr(ws), op);
  if (status != CUDNN_STATUS_SUCCESS)
    fail("{}: cudnnBackendExecute ({} pass, engine {}) failed: {} (cuDNN status {}); key {}", op, pass_name(pass),
         plan->engine, cudnnGetErrorString(status), static_cast<int>(status), key);
  return true;
}

std::int64_t conv_engine_searches() { return g_searches.load(); }
std::int64_t conv_engine_fallbacks() { return g_fallbacks.load(); }

void clear_conv_engine_cache() {
  PlanCache& cache = plan_cache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  cache.entries.clear();
}

std::vector<std::string> conv_engine_choices() {
  PlanCache& cache = plan_cache();
  std::vector<std::string> lines;
  {
    std::lock_guard<std::mutex> lock(cache.mutex);
    for (const auto& [key, entry] : cache.entries) {
      if (entry.plan)
        lines.push_back(fmt::format("{} -> engine {} ({:.3f} ms, workspace {} bytes)", key, entry.plan->engine,
                                    entry.plan->ms, entry.plan->workspace));
      else
        lines.push_back(fmt::format("{} -> legacy ({})", key, entry.why_not));
    }
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

}  // namespace tlk::kernels::cuda
