#pragma once
// 3D convolution passes through cuDNN 9's backend (graph) API: one operation graph per shape key,
// engine configurations from cuDNN's heuristics, execution plans timed on the real operands, the
// fastest kept per key. kernels/cuda/conv3d.cpp tries this path first and falls back to the legacy
// cudnnConvolution* path for keys it cannot serve.
//
// Note [Why the backend API]: cuDNN 9 keeps the legacy convolution API (cudnnFind*AlgorithmEx and
// the fixed cudnnConvolution*Algo_t list) only as a thin layer over a few of its engines. The
// engines that are fast for 3D volumes, above all for the weight gradient, are reachable only
// through the backend API's heuristics (CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR), which is what PyTorch
// uses. Measured on an H100 for a UNet step (128^3, batch 2): the legacy backward-filter took 933 ms
// against PyTorch's whole 106 ms step.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tlk/kernels/conv_params.h"
#include "tlk/tensor/tensor.h"

namespace tlk::kernels::cuda {

/// The three passes of a convolution. With x the convolution's input, w its filter [K, C, kD, kH, kW]
/// and y its output: forward writes y, backward_data writes x (from w and y, the output gradient),
/// backward_filter writes w (from x and y).
enum class ConvPass { forward, backward_data, backward_filter };

/// The workspace any convolution may use, on either path (algorithms or plans asking for more are
/// skipped unless conv_workspace_limit allows them).
inline constexpr std::size_t kMaxConvWorkspace = std::size_t{1} << 30;

/// The largest workspace a plan of the backend path may use for these operands: kMaxConvWorkspace
/// plus the bytes of x, w and y. Note [Workspace limit]: the fast implicit-GEMM engines for NCDHW
/// operands transpose them to NDHWC in their workspace, so on large volumes (2 x 32 x 128^3 f32 is
/// 512 MiB an operand) a fixed 1 GiB cap left only slow engines: measured on an H100, the weight
/// gradient of a 32->32 layer at 128^3 took 36 ms against 3 ms for the engine needing ~1.1 GB.
/// A plan whose workspace cannot be allocated at run time falls back to the legacy path.
std::size_t conv_workspace_limit(const Tensor& x, const Tensor& w, const Tensor& y);

/// Switches the backend-API path on (the default) or off; off, every convolution takes the legacy
/// path. Example: `cuda::set_conv_engine_api(false);  // compare with the legacy algorithms`
void set_conv_engine_api(bool on);
/// Whether the backend-API path is tried first (Note [Why the backend API]).
bool conv_engine_api();

/// How widely a new key's plans are searched (Note [Plan search] in cudnn_engine.cpp): `heuristic`
/// (the default) times up to 10 plans from cuDNN's heuristics and its fallback list, as PyTorch's
/// cudnn.benchmark does; `exhaustive` also times one plan of every other engine that accepts the
/// key (up to 64), for benchmarks and for finding what the heuristics miss. Applies to keys searched
/// after the call. Example: `set_conv_engine_search(ConvEngineSearch::exhaustive);`
enum class ConvEngineSearch { heuristic, exhaustive };
void set_conv_engine_search(ConvEngineSearch search);
ConvEngineSearch conv_engine_search();

/// Runs `pass` on the operands through a cached (or newly built and timed) execution plan, with
/// alpha 1 and beta 0 (the written operand is overwritten). `x`, `w`, `y` are 5-D f32 or f64 tensors
/// on one GPU, dense in any strides cuDNN accepts (plain and channels-last both work). Returns false,
/// without writing anything, when cuDNN has no usable engine for the key (remembered: later calls
/// return false at once) or the plan's workspace cannot be allocated now; throws tlk::Error naming
/// `op` when a chosen plan fails to run. `searched`, when given, is set to whether this call built
/// and timed plans (a cache miss).
/// Example: `if (!engine_convolve(ConvPass::forward, x, w, y, opt, "conv3d")) legacy(...);`
bool engine_convolve(ConvPass pass, const Tensor& x, const Tensor& w, const Tensor& y, const Conv3dOptions& opt,
                     const char* op, bool* searched = nullptr);

/// How many keys the backend path has searched (built and timed plans for), whether or not it found
/// a plan. Example: `auto n = conv_engine_searches(); run(); CHECK(conv_engine_searches() == n);`
std::int64_t conv_engine_searches();
/// How many of those searches found no usable engine (those keys run on the legacy path).
std::int64_t conv_engine_fallbacks();
/// Forgets every cached plan and fallback decision (the next call of each key searches again).
void clear_conv_engine_cache();
/// One line per cached key: the key, then the chosen engine (global index, time of the timing run,
/// workspace) and every timed plan with its notes, or why the key falls back to the legacy path.
/// For benchmarks and debugging.
std::vector<std::string> conv_engine_choices();

}  // namespace tlk::kernels::cuda
