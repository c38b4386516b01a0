#pragma once
// The cuDNN graph-API building blocks of cudnn_engine.cpp: backend descriptors, the operation graph
// of one convolution pass, the engine configurations heuristics propose, and the cache key of a
// pass. Internal to kernels/cuda (cudnn_engine.cpp is its one user).
#include <cudnn.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tlk/kernels/conv_params.h"
#include "tlk/kernels/cuda/cudnn_engine.h"
#include "tlk/tensor/error.h"
#include "tlk/tensor/tensor.h"

namespace tlk::kernels::cuda::graph_api {

// The unique ids of the three operands in the graph and the variant pack.
constexpr std::int64_t kUidX = 1, kUidW = 2, kUidY = 3;

/// Throws tlk::Error "`op`: `call` (`what`) failed: <cudnnGetErrorString>" unless `s` is success.
void check_backend(cudnnStatus_t s, const char* op, const char* call, const char* what);

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

/// The strides cuDNN is given for `t`, in elements (canonical for dense plain and channels-last).
Dims strides_of(const Tensor& t);
/// CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT of `t`: 16 for a 16-byte aligned pointer, else the element size.
std::int64_t alignment_of(const Tensor& t);
/// "forward", "backward-data" or "backward-filter".
const char* pass_name(ConvPass pass);
/// The cache key of a pass: pass, dtype, TF32 switch, device, each operand's shape, strides and
/// alignment, and the geometry.
std::string key_of(ConvPass pass, const Tensor& x, const Tensor& w, const Tensor& y, const Conv3dOptions& opt);

// The operation graph of one convolution. The descriptors it was built from stay alive with it (and
// with every plan made from it), whatever cuDNN keeps by reference.
struct Graph {
  BackendDesc x, w, y, conv, operation, graph;
};

/// The finalized operation graph of `pass` on these operands (alpha 1, beta 0).
std::shared_ptr<const Graph> make_graph(cudnnHandle_t handle, ConvPass pass, const Tensor& x, const Tensor& w,
                                        const Tensor& y, const Conv3dOptions& opt, const char* op);

/// The engine configurations heuristics `mode` proposes for `graph`, best first.
std::vector<BackendDesc> engine_configs(const Graph& graph, cudnnBackendHeurMode_t mode, const char* op);

/// One configuration (default knobs) of every engine cuDNN has for `graph`, by global index; the
/// engines that refuse the graph are left out. For the exhaustive search (Note [Plan search]).
std::vector<BackendDesc> every_engine_config(const Graph& graph, const char* op);

// What an engine configuration is: its engine's global index and whether its numerical notes keep
// the requested precision (Note [TF32 switch]): never a down-conversion of the inputs or a reduced-
// precision reduction, and no tensor-core (TF32) math for f32 while TF32 is switched off.
struct EngineInfo {
  std::int64_t index = -1;
  bool precision_ok = false;
  std::string notes;  ///< the numerical notes, abbreviated ("tc", "rpr", "nd", ...), for reports
};

/// The engine of `config` and whether it keeps the requested precision; nullopt when cuDNN cannot say.
std::optional<EngineInfo> engine_info(const BackendDesc& config, DType dtype, const char* op);

}  // namespace tlk::kernels::cuda::graph_api
