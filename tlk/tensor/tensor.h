#pragma once
#include <fmt/format.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tlk/tensor/device.h"
#include "tlk/tensor/dtype.h"
#include "tlk/tensor/shape.h"
#include "tlk/tensor/storage.h"

namespace dnnl {
struct memory;
}

namespace tlk {

namespace autograd {
struct AutogradMeta;
class Node;
}  // namespace autograd

class BlockedFormat;

/// How a new tensor is made: its element type and device.
/// Example: `Tensor::zeros({2, 3}, TensorOptions{}.with(DType::f64))`.
struct TensorOptions {
  DType dtype = DType::f32;
  Device device = Device::cpu();
  TensorOptions with(DType d) const { return {d, device}; }
  TensorOptions with(Device d) const { return {dtype, d}; }
};

/// The state behind a Tensor handle. Views share `storage`.
struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Dims strides;             ///< in elements; unused for blocked tensors
  std::int64_t offset = 0;  ///< in elements from storage->data()
  DType dtype = DType::f32;
  std::shared_ptr<const BlockedFormat> blocked;  ///< set iff the layout is blocked
  std::shared_ptr<autograd::AutogradMeta> autograd;
};

/// A gradient hook: receives the gradient flowing into a tensor and returns it, possibly changed
/// (return an undefined Tensor to keep the gradient as it is).
using GradHook = std::function<class Tensor(const class Tensor&)>;
/// A hook run on a leaf after its gradient was accumulated; it receives the leaf itself (read
/// `leaf.grad()`), once per backward pass, when no more gradient will reach the leaf in that pass.
using PostAccumulateHook = std::function<void(const class Tensor&)>;

/// An n-dimensional array (up to 6-D; TLK's networks use N, C, D, H, W) of one dtype on one device,
/// with reference semantics: copying a Tensor shares its data, as in PyTorch.
///
/// Note [Tensor and autograd]: the autograd state (requires_grad, grad, grad_fn, hooks) rides on the
/// tensor so that users write `loss.backward()` and `w.grad()`; those members are declared here and
/// defined in autograd/ (tensor_autograd.cpp), which keeps this layer free of the graph machinery.
/// Differentiable reshaping (reshape, narrow, permute, flatten) likewise lives in autograd/ops/view.cpp.
///
/// Example:
/// ```
/// Generator gen(42);
/// Tensor x = randn({2, 1, 8, 8, 8}, gen);
/// fmt::print("{}\n", x.str());   // Tensor[2, 1, 8, 8, 8] f32 cpu plain {0.12, -1.3, ...}
/// ```
class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- Factories ----------------------------------------------------------------------------------
  /// Uninitialised contiguous tensor.
  static Tensor empty(const Shape& shape, TensorOptions options = {});
  static Tensor zeros(const Shape& shape, TensorOptions options = {});
  static Tensor ones(const Shape& shape, TensorOptions options = {});
  static Tensor full(const Shape& shape, double value, TensorOptions options = {});
  /// A 0-D tensor holding `value`.
  static Tensor scalar(double value, TensorOptions options = {});
  /// Uninitialised contiguous CPU tensor in page-locked memory, for data bound for GPU `for_device`:
  /// its to(cuda) is queued asynchronously (Note [Pinned staging]). The calling thread's current
  /// device becomes `for_device`. Throws tlk::Error saying why when that GPU is not usable.
  /// Example: `Tensor batch = Tensor::pinned_empty({2, 1, 128, 128, 128}, DType::f32, Device::cuda(1));`
  static Tensor pinned_empty(const Shape& shape, DType dtype = DType::f32, Device for_device = Device::cuda());
  /// Copies `values` (row-major) into a new CPU tensor of `shape`; T's dtype unless `dtype` is given.
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  /// Like `from_vector` but converted to `dtype`.
  static Tensor from_doubles(const std::vector<double>& values, const Shape& shape, DType dtype = DType::f32);

  // ---- Properties ---------------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  /// Extent of dimension `dim` (negative counts from the end).
  std::int64_t size(int dim) const;
  int dim() const { return impl().shape.size(); }
  std::int64_t numel() const { return impl().shape.numel(); }
  const Dims& strides() const { return impl().strides; }
  std::int64_t offset() const { return impl().offset; }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  Layout layout() const;
  /// Row-major dense (the plain NCDHW arrangement).
  bool is_contiguous() const;
  /// True when the storage is page-locked host memory (pinned_empty).
  bool is_pinned() const;
  /// The oneDNN format of a blocked tensor (throws for any other layout).
  const BlockedFormat& blocked_format() const;

  // ---- Data access (CPU, strided layouts) ---------------------------------------------------------
  /// Typed pointer to the first element; checks dtype, device and layout.
  template <class T>
  T* data() const;
  /// Untyped pointer to the first element (any device, strided layouts).
  void* raw_data() const;
  /// The value of a one-element tensor, converted to double.
  double item() const;
  /// All elements in row-major order, converted to double (any layout/device: converts first).
  std::vector<double> to_doubles() const;

  // ---- Conversions (each returns *this when nothing changes) --------------------------------------
  /// Plain row-major copy, or *this when already so.
  Tensor contiguous() const;
  /// Reorders to another layout; `Layout::blocked` picks oneDNN's default for this CPU (nCdhw8c).
  Tensor to(Layout layout) const;
  /// Reorders a plain or channels-last tensor into the oneDNN format `format`.
  Tensor to(const BlockedFormat& format) const;
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;
  /// A copy that shares nothing with *this (same layout).
  Tensor clone() const;

  // ---- In-place writes (bump the version counter) -------------------------------------------------
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }
  /// Copies `src` (same shape; any dtype, layout or device) into *this.
  Tensor& copy_(const Tensor& src);

  // ---- Views (differentiable; defined in autograd/ops/view.cpp) -----------------------------------
  /// Same data, new shape (one extent may be -1); copies when the strides do not allow a view.
  Tensor reshape(const Shape& shape) const;
  /// Collapses dimensions `start..end` (inclusive) into one.
  Tensor flatten(int start = 1, int end = -1) const;
  /// The slice [start, start + length) along `dim`, without a copy.
  Tensor narrow(int dim, std::int64_t start, std::int64_t length) const;
  /// Reorders dimensions without a copy: `permute({0, 2, 3, 4, 1})`.
  Tensor permute(const std::vector<int>& order) const;

  // ---- Autograd (defined in autograd/tensor_autograd.cpp) -----------------------------------------
  bool requires_grad() const;
  /// Marks a leaf tensor as a parameter whose gradient backward() accumulates.
  Tensor& set_requires_grad(bool value = true);
  /// The accumulated gradient of a leaf (undefined before the first backward).
  Tensor grad() const;
  /// Replaces the accumulated gradient (undefined clears it).
  void set_grad(const Tensor& grad) const;
  /// The node that produced this tensor, null for leaves and tensors made without grad.
  std::shared_ptr<autograd::Node> grad_fn() const;
  bool is_leaf() const;
  /// Runs reverse-mode differentiation from this tensor. `gradient` defaults to 1 for a one-element
  /// tensor; `retain_graph` keeps the graph (and its saved tensors) for another backward.
  void backward(const Tensor& gradient = {}, bool retain_graph = false) const;
  /// Same data, no graph history, requires_grad false.
  Tensor detach() const;
  /// Adds a hook called with this tensor's gradient during backward.
  void register_hook(GradHook hook) const;
  /// Adds a hook run after this leaf's gradient was accumulated in a backward pass (as PyTorch's
  /// register_post_accumulate_grad_hook); data-parallel training starts gradient all-reduces from it.
  void register_post_accumulate_grad_hook(PostAccumulateHook hook) const;
  /// Keeps the gradient of a non-leaf tensor in grad() after backward.
  void retain_grad() const;

  // ---- Misc ---------------------------------------------------------------------------------------
  /// "Tensor[2, 3] f32 cpu plain {1, 2, 3, 4, 5, 6}" with at most `max_values` values.
  std::string str(int max_values = 8) const;
  /// The storage version counter (how many in-place writes the data has seen).
  std::uint64_t version() const { return impl().storage->version(); }
  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  /// True when both handles refer to the same TensorImpl.
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

/// A new tensor viewing `base`'s storage with another shape, strides and offset (no autograd).
Tensor make_view(const Tensor& base, const Shape& shape, const Dims& strides, std::int64_t offset);
/// An empty tensor shaped like `t` (same dtype and device, plain contiguous).
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
/// True when `t` is dense channels-last: layout() is channels_last, or `t` is 5-D with strides exactly
/// channels_last_strides(shape). The second case is a tensor whose memory is plain as well (one
/// channel, like a CT batch, or one voxel), made by to(Layout::channels_last): clone() and GPU casts
/// keep its strides, and the GPU kernels treat it as channels-last (Note [Channels-last on the GPU]
/// in kernels/cuda/launch.h).
bool has_channels_last_strides(const Tensor& t);

namespace detail {
/// Throws when `t` requires grad while grad mode is on: in-place writes are not recorded in the graph
/// (defined in autograd/).
void check_inplace_allowed(const Tensor& t, const char* op);
/// Makes `out`, a converted copy of `src`, differentiable: gradients flow back converted to src's dtype
/// and device (Note [Differentiable conversions]; defined in autograd/).
void record_conversion(const Tensor& src, const Tensor& out, const char* op);
}  // namespace detail

/// The size-1 broadcast of two shapes (NumPy rules); throws naming `op` when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace tlk

/// `fmt::print("{}", tensor)` prints Tensor::str().
template <>
struct fmt::formatter<tlk::Tensor> : fmt::formatter<std::string> {
  template <class Context>
  auto format(const tlk::Tensor& t, Context& ctx) const {
    return fmt::formatter<std::string>::format(t.str(), ctx);
  }
};
