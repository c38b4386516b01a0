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
#include "tlk/kernels/cuda/cudnn_graph.h"
#include "tlk/kernels/cuda/launch.h"

namespace tlk::kernels::cuda {

namespace {

using namespace graph_api;  // NOLINT: the building blocks of this file

std::atomic<bool> g_engine_api{true};
std::atomic<bool> g_exhaustive{false};
std::atomic<std::int64_t> g_searches{0};
std::atomic<std::int64_t> g_fallbacks{0};

// Note [Plan search budget]: heuristics list engine configurations best-first. At most
// kMaxCandidates usable plans are timed, and at most kMaxFinalizeTries plans are finalized per key
// (finalizing can compile kernels at run time), so a first call stays bounded.
// The exhaustive search (set_conv_engine_search) times up to kMaxExhaustiveCandidates plans.
constexpr int kMaxCandidates = 10;
constexpr int kMaxFinalizeTries = 32;
constexpr int kMaxExhaustiveCandidates = 64;
constexpr int kTimedRuns = 2;

// A finalized execution plan with what it was made from.
struct Plan {
  std::shared_ptr<const Graph> graph;
  BackendDesc config;
  BackendDesc plan;
  std::size_t workspace = 0;
  std::int64_t engine = -1;
  float ms = 0.0f;  // the timing run's mean time
  std::string notes;  // the engine's numerical notes, for reports
};

// The cache entry of one key: a plan, or null with the reason the key runs on the legacy path.
struct Entry {
  std::shared_ptr<const Plan> plan;
  std::string why_not;
  std::string report;  // what the search considered and timed (Note [Plan search])
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

// Note [Plan search]: builds the key's operation graph and gathers engine configurations from
// heuristics mode A (best first, every knob setting it proposes), then from mode FALLBACK, then (in
// the exhaustive search) one default configuration of every engine cuDNN has; the later sources add
// only engines not seen yet. Configurations whose numerical notes break the precision contract are
// dropped, plans are finalized within the budget (Note [Plan search budget]), those needing more
// than conv_workspace_limit are dropped, and the rest are timed on the real inputs, keeping the
// fastest. Returns the entry to cache: a plan, or why there is none, with a report of what was
// considered and timed. Throws tlk::Error when building the graph fails.
Entry search(ConvPass pass, const Tensor& x, const Tensor& w, const Tensor& y, const Conv3dOptions& opt,
             const char* op) {
  const int device = x.device().index;
  cudnnHandle_t handle = cudnn_handle(device);
  const std::shared_ptr<const Graph> graph = make_graph(handle, pass, x, w, y, opt, op);
  const bool exhaustive = g_exhaustive.load();
  const std::size_t workspace_limit = conv_workspace_limit(x, w, y);
  const int max_candidates = exhaustive ? kMaxExhaustiveCandidates : kMaxCandidates;
  const int max_tries = exhaustive ? 4 * kMaxExhaustiveCandidates : kMaxFinalizeTries;
  std::vector<Plan> candidates;
  std::vector<std::int64_t> seen;
  int offered = 0, rejected = 0, tries = 0, unbuilt = 0, too_big = 0;
  cudnnStatus_t last_failure = CUDNN_STATUS_SUCCESS;
  std::string heuristics_errors;
  enum class Source { mode_a, fallback, every_engine };
  for (const Source source : {Source::mode_a, Source::fallback, Source::every_engine}) {
    if (source == Source::every_engine && !exhaustive) break;
    std::vector<BackendDesc> configs;
    try {
      configs = source == Source::mode_a     ? engine_configs(*graph, CUDNN_HEUR_MODE_A, op)
                : source == Source::fallback ? engine_configs(*graph, CUDNN_HEUR_MODE_FALLBACK, op)
                                             : every_engine_config(*graph, op);
    } catch (const Error& e) {
      heuristics_errors += fmt::format("; source {}: {}", static_cast<int>(source), e.what());
      continue;
    }
    offered += static_cast<int>(configs.size());
    for (BackendDesc& config : configs) {
      if (static_cast<int>(candidates.size()) >= max_candidates || tries >= max_tries) break;
      const std::optional<EngineInfo> info = engine_info(config, x.dtype(), op);
      if (!info || !info->precision_ok) {
        ++rejected;
        continue;
      }
      const bool known = std::find(seen.begin(), seen.end(), info->index) != seen.end();
      if (source != Source::mode_a && known) continue;
      seen.push_back(info->index);
      ++tries;
      std::size_t bytes = 0;
      std::optional<BackendDesc> plan = make_plan(handle, config, &bytes, &last_failure, op);
      if (!plan) {
        ++unbuilt;
        continue;
      }
      if (bytes > workspace_limit) {
        ++too_big;
        continue;
      }
      candidates.push_back(Plan{graph, std::move(config), std::move(*plan), bytes, info->index, 0.0f, info->notes});
    }
  }
  const std::string counts =
      fmt::format("{} configs offered, {} rejected by numerical notes, {} failed to finalize (last: {}), {} need more "
                  "than {} bytes of workspace{}",
                  offered, rejected, unbuilt, unbuilt ? cudnnGetErrorString(last_failure) : "none", too_big,
                  workspace_limit, heuristics_errors);
  if (candidates.empty()) return Entry{nullptr, "no usable engine: " + counts, ""};
  // Time on the real inputs, writing into a scratch output.
  const Tensor sx = pass == ConvPass::backward_data ? scratch_like(x) : x;
  const Tensor sw = pass == ConvPass::backward_filter ? scratch_like(w) : w;
  const Tensor sy = pass == ConvPass::forward ? scratch_like(y) : y;
  float best = std::numeric_limits<float>::infinity();
  int best_index = -1;
  std::vector<std::pair<float, std::string>> timed;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const std::optional<float> ms =
        time_plan(handle, device, candidates[i], sx.raw_data(), sw.raw_data(), sy.raw_data(), best, op);
    if (!ms) continue;
    timed.emplace_back(*ms, fmt::format("e{}{} {:.3f}", candidates[i].engine,
                                        candidates[i].notes.empty() ? "" : "[" + candidates[i].notes + "]", *ms));
    if (*ms < best) {
      best = *ms;
      best_index = static_cast<int>(i);
    }
  }
  if (best_index < 0)
    return Entry{nullptr,
                 fmt::format("none of the {} usable plans ran (cudnnBackendExecute refused them); {}",
                             candidates.size(), counts),
                 ""};
  std::sort(timed.begin(), timed.end());
  std::string report = counts + "; timed (ms):";
  for (const auto& [ms, line] : timed) report += " " + line;
  Plan& chosen = candidates[static_cast<std::size_t>(best_index)];
  chosen.ms = best;
  return Entry{std::make_shared<const Plan>(std::move(chosen)), "", report};
}

}  // namespace

std::size_t conv_workspace_limit(const Tensor& x, const Tensor& w, const Tensor& y) {
  const auto bytes = [](const Tensor& t) { return static_cast<std::size_t>(t.numel()) * element_size(t.dtype()); };
  return kMaxConvWorkspace + bytes(x) + bytes(w) + bytes(y);
}

void set_conv_engine_api(bool on) { g_engine_api.store(on); }
void set_conv_engine_search(ConvEngineSearch search) { g_exhaustive.store(search == ConvEngineSearch::exhaustive); }
ConvEngineSearch conv_engine_search() {
  return g_exhaustive.load() ? ConvEngineSearch::exhaustive : ConvEngineSearch::heuristic;
}
bool conv_engine_api() { return g_engine_api.load(); }

bool engine_convolve(ConvPass pass, const Tensor& x, const Tensor& w, const Tensor& y, const Conv3dOptions& opt,
                     const char* op, bool* searched) {
  if (searched) *searched = false;
  require_cuda_floating(x, op, "convolution input");
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
      entry = Entry{nullptr, e.what(), ""};
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
        lines.push_back(fmt::format("{} -> engine {} ({:.3f} ms, workspace {} bytes); {}", key, entry.plan->engine,
                                    entry.plan->ms, entry.plan->workspace, entry.report));
      else
        lines.push_back(fmt::format("{} -> legacy ({})", key, entry.why_not));
    }
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

}  // namespace tlk::kernels::cuda
