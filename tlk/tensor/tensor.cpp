#include "tlk/tensor/tensor.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "tlk/tensor/blocked_format.h"
#include "tlk/tensor/cuda_runtime.h"
#include "tlk/tensor/error.h"
#include "tlk/tensor/pinned_allocator.h"
#include "tlk/tensor/strided_copy.h"

namespace tlk {

namespace {

/// A contiguous tensor's state; its storage comes from `allocator` (default: the device's own).
std::shared_ptr<TensorImpl> new_impl(const Shape& shape, TensorOptions options, Allocator* allocator = nullptr) {
  for (auto e : shape) check(e >= 0, "tensor: negative extent in shape {}", shape.str());
  check(options.device.is_cpu() || options.device.is_cuda(), "tensor: unknown device type {}",
        static_cast<int>(options.device.type));
  auto impl = std::make_shared<TensorImpl>();
  const auto nbytes = static_cast<std::size_t>(shape.numel()) * element_size(options.dtype);
  impl->storage = std::make_shared<Storage>(nbytes, options.device,
                                            allocator ? *allocator : allocator_for(options.device));
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = options.dtype;
  return impl;
}

bool strides_match(const Tensor& t, const Dims& expected) {
  for (int i = 0; i < t.dim(); ++i)
    if (t.shape()[i] != 1 && t.strides()[i] != expected[i]) return false;
  return true;
}

dnnl::memory::desc strided_desc(const Tensor& t) {
  dnnl::memory::dims dims(t.shape().begin(), t.shape().end());
  dnnl::memory::dims strides(t.strides().begin(), t.strides().end());
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, strides);
}

bool is_plain_row_major(const dnnl::memory::desc& desc, const Shape& shape) {
  const auto& d = desc.data;
  if (d.format_kind != dnnl_blocked || d.format_desc.blocking.inner_nblks != 0 || d.offset0 != 0) return false;
  const Dims expected = contiguous_strides(shape);
  for (int i = 0; i < shape.size(); ++i)
    if (shape[i] != 1 && d.format_desc.blocking.strides[i] != expected[i]) return false;
  return true;
}

}  // namespace

// ---- Factories --------------------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, TensorOptions options) { return Tensor(new_impl(shape, options)); }

Tensor Tensor::zeros(const Shape& shape, TensorOptions options) { return full(shape, 0.0, options); }

Tensor Tensor::ones(const Shape& shape, TensorOptions options) { return full(shape, 1.0, options); }

Tensor Tensor::full(const Shape& shape, double value, TensorOptions options) {
  Tensor t = empty(shape, options);
  t.fill_(value);
  return t;
}

Tensor Tensor::scalar(double value, TensorOptions options) { return full(Shape{}, value, options); }

Tensor Tensor::pinned_empty(const Shape& shape, DType dtype, Device for_device) {
  check(for_device.is_cuda(), "pinned memory: the data is bound for {}, expected a CUDA device", for_device.str());
  // A loader thread's first CUDA call would otherwise open a context on GPU 0 in every process.
  cuda::set_current_device(for_device.index, "pinned memory");
  cuda::release_finished_copies();  // their blocks can serve this one
  return Tensor(new_impl(shape, TensorOptions{dtype, Device::cpu()}, &cuda::PinnedHostAllocator::instance()));
}

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  check(static_cast<std::int64_t>(values.size()) == shape.numel(),
        "from_vector: {} values do not fill shape {} ({} elements)", values.size(), shape.str(), shape.numel());
  Tensor t = empty(shape, TensorOptions{dtype_of<T>(), Device::cpu()});
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  return t;
}

template Tensor Tensor::from_vector<float>(const std::vector<float>&, const Shape&);
template Tensor Tensor::from_vector<double>(const std::vector<double>&, const Shape&);
template Tensor Tensor::from_vector<std::int64_t>(const std::vector<std::int64_t>&, const Shape&);
template Tensor Tensor::from_vector<std::int32_t>(const std::vector<std::int32_t>&, const Shape&);
template Tensor Tensor::from_vector<std::uint8_t>(const std::vector<std::uint8_t>&, const Shape&);

Tensor Tensor::from_doubles(const std::vector<double>& values, const Shape& shape, DType dtype) {
  return from_vector(values, shape).to(dtype);
}

// ---- Properties -------------------------------------------------------------------------------------

TensorImpl& Tensor::impl() const {
  check(impl_ != nullptr,
        "tensor: use of an undefined tensor (a default-constructed Tensor, e.g. a missing "
        "gradient or an optional argument left empty)");
  return *impl_;
}

std::int64_t Tensor::size(int d) const { return shape()[normalize_axis(d, dim(), "size")]; }

Layout Tensor::layout() const {
  if (impl().blocked) return Layout::blocked;
  if (dim() >= 3 && !is_contiguous() && strides_match(*this, channels_last_strides(shape())))
    return Layout::channels_last;
  return Layout::plain;
}

bool Tensor::is_pinned() const { return impl().storage->pinned(); }

bool Tensor::is_contiguous() const { return !impl().blocked && strides_match(*this, contiguous_strides(shape())); }

const BlockedFormat& Tensor::blocked_format() const {
  check(impl().blocked != nullptr, "blocked_format: tensor {} is not in a blocked layout", shape().str());
  return *impl().blocked;
}

template <class T>
T* Tensor::data() const {
  check(dtype() == dtype_of<T>(), "data<{}>: tensor {} has dtype {}", dtype_name(dtype_of<T>()), shape().str(),
        dtype_name(dtype()));
  check(device().is_cpu(), "data: tensor {} is on {}; copy it to the CPU first", shape().str(), device().str());
  check(!impl().blocked, "data: tensor {} is blocked (opaque); convert with to(Layout::plain) first", shape().str());
  return static_cast<T*>(impl().storage->data()) + offset();
}

template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template std::int64_t* Tensor::data<std::int64_t>() const;
template std::int32_t* Tensor::data<std::int32_t>() const;
template std::uint8_t* Tensor::data<std::uint8_t>() const;

void* Tensor::raw_data() const {
  return static_cast<char*>(impl().storage->data()) + offset() * static_cast<std::int64_t>(element_size(dtype()));
}

double Tensor::item() const {
  check(numel() == 1, "item: tensor {} has {} elements, expected exactly 1", shape().str(), numel());
  return to_doubles()[0];
}

std::vector<double> Tensor::to_doubles() const {
  Tensor t = detach();
  if (t.device().is_cuda()) t = t.to(DType::f64);  // on the GPU: bf16 and f16 have no CPU conversion
  t = t.to(Device::cpu()).to(Layout::plain).to(DType::f64).contiguous();
  const double* p = t.data<double>();
  return std::vector<double>(p, p + t.numel());
}

// ---- Conversions ------------------------------------------------------------------------------------
// Note [Differentiable conversions]: each conversion below computes on a detached handle (so the
// copies it makes internally record nothing), then, when the result is a new tensor, lets autograd
// connect it to the source (detail::record_conversion), so gradients flow through contiguous(),
// to(...) and clone() as through any op.

namespace {

// Note [CUDA strided copies]: on a GPU every strided copy (contiguous(), to(DType), clone(),
// to(Layout::channels_last), copy_() and fill_() of views) is one kernel of cuda::copy_strided /
// cuda::fill_strided, queued on the legacy default stream like every other GPU op (Note [One stream]
// in kernels/cuda/launch.h). Copies between devices move contiguous bytes; whatever the destination's
// strides or dtype, the conversion then runs on the GPU side from a contiguous staging tensor.
cuda::StridedDeviceArray device_array(const Tensor& t) { return {t.raw_data(), t.dtype(), t.strides().begin()}; }

// dst <- src, both on one GPU (any strides and dtypes, same shape).
void gpu_copy(const Tensor& dst, const Tensor& src) {
  check(dst.device() == src.device(), "copy: tensors on {} and {} (a GPU copy needs both on one device)",
        dst.device().str(), src.device().str());
  cuda::copy_strided(device_array(dst), device_array(src), dst.shape().begin(), dst.dim(), dst.device().index);
}

// dst <- src (same shape, neither blocked) where at least one of them is on a GPU.
void copy_with_gpu(const Tensor& dst, Tensor src) {
  const std::size_t bytes = static_cast<std::size_t>(dst.numel()) * element_size(dst.dtype());
  if (dst.device().is_cuda() && src.device() == dst.device()) {
    // A source that shares the destination's storage is read in full before anything is written.
    const bool same_view = src.offset() == dst.offset() && src.strides() == dst.strides() && src.dtype() == dst.dtype();
    if (src.impl().storage == dst.impl().storage && !same_view) {
      Tensor staged = Tensor::empty(src.shape(), TensorOptions{src.dtype(), src.device()});
      gpu_copy(staged, src);
      src = staged;
    }
    gpu_copy(dst, src);
    return;
  }
  if (dst.device().is_cuda()) {  // from the CPU or another GPU
    src = src.contiguous();
    if (dst.is_contiguous() && dst.dtype() == src.dtype()) {
      cuda::copy_bytes(dst.raw_data(), dst.device(), src.raw_data(), src.device(), bytes);
      return;
    }
    Tensor staged = Tensor::empty(src.shape(), TensorOptions{src.dtype(), dst.device()});
    cuda::copy_bytes(staged.raw_data(), staged.device(),
                     src.raw_data(), src.device(), static_cast<std::size_t>(src.numel()) * element_size(src.dtype()));
    gpu_copy(dst, staged);
    return;
  }
  // From a GPU to the CPU: convert and make dense on the GPU, then move the bytes.
  Tensor dense = src;
  if (!src.is_contiguous() || src.dtype() != dst.dtype()) {
    dense = Tensor::empty(src.shape(), TensorOptions{dst.dtype(), src.device()});
    gpu_copy(dense, src);
  }
  if (dst.is_contiguous()) {
    cuda::copy_bytes(dst.raw_data(), dst.device(), dense.raw_data(), dense.device(), bytes);
    return;
  }
  Tensor host = Tensor::empty(src.shape(), TensorOptions{dst.dtype(), dst.device()});
  cuda::copy_bytes(host.raw_data(), host.device(), dense.raw_data(), dense.device(), bytes);
  detail::copy_strided(dst, host);
}

Tensor plain_from_blocked(const Tensor& src) {
  Tensor out = Tensor::empty(src.shape(), TensorOptions{src.dtype(), src.device()});
  reorder(src.blocked_format().desc(), src.impl().storage->data(), strided_desc(out), out.raw_data());
  return out;
}

Tensor contiguous_copy(const Tensor& src) {
  if (src.layout() == Layout::blocked) return plain_from_blocked(src);
  Tensor out = Tensor::empty(src.shape(), TensorOptions{src.dtype(), src.device()});
  if (src.device().is_cuda())
    gpu_copy(out, src);
  else
    detail::copy_strided(out, src);
  return out;
}

Tensor channels_last_copy(const Tensor& src_in) {
  check(src_in.dim() >= 3, "to(channels_last): needs a tensor with N, C and spatial dimensions, got shape {}",
        src_in.shape().str());
  Tensor src = src_in.layout() == Layout::blocked ? plain_from_blocked(src_in) : src_in;
  Tensor out = Tensor::empty(src.shape(), TensorOptions{src.dtype(), src.device()});
  out.impl().strides = channels_last_strides(src.shape());
  if (src.device().is_cuda())
    gpu_copy(out, src);
  else
    detail::copy_strided(out, src);
  return out;
}

Tensor blocked_copy(const Tensor& src, const BlockedFormat& format) {
  // Reorders straight from the source's format, blocked or strided, into the target format.
  Tensor out = empty_with_desc(src.shape(), format.desc());
  if (!out.impl().blocked) out.impl().blocked = std::make_shared<BlockedFormat>(format);
  reorder(memory_desc_of(src), src.layout() == Layout::blocked ? src.impl().storage->data() : src.raw_data(),
          format.desc(), out.impl().storage->data());
  return out;
}

}  // namespace

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  Tensor out = contiguous_copy(detach());
  detail::record_conversion(*this, out, "contiguous");
  return out;
}

Tensor Tensor::to(Layout target) const {
  const Layout current = layout();
  // Already there (for channels-last, also a one-channel tensor with channels-last strides).
  if (target == Layout::blocked ? current == Layout::blocked
                                : target == Layout::channels_last && has_channels_last_strides(*this))
    return *this;
  Tensor out;
  switch (target) {
    case Layout::plain:
      if (current != Layout::blocked) return contiguous();
      out = plain_from_blocked(detach());
      break;
    case Layout::channels_last:
      out = channels_last_copy(detach());
      break;
    case Layout::blocked:
      return to(BlockedFormat::default_for(shape()));
  }
  detail::record_conversion(*this, out, "to(layout)");
  return out;
}

Tensor Tensor::to(const BlockedFormat& format) const {
  check(dtype() == DType::f32, "to(blocked): oneDNN blocked layouts hold f32 here, got {}", dtype_name(dtype()));
  check(device().is_cpu(), "to(blocked): blocked layouts are CPU-only, tensor is on {}", device().str());
  const auto& dims = format.desc().data.dims;
  check(format.desc().data.ndims == dim() && std::equal(shape().begin(), shape().end(), dims),
        "to(blocked): format dims {} do not match tensor shape {}",
        Dims(std::vector<std::int64_t>(dims, dims + format.desc().data.ndims)).str(), shape().str());
  if (impl().blocked && *impl().blocked == format) return *this;
  Tensor out = blocked_copy(detach(), format);
  detail::record_conversion(*this, out, "to(blocked)");
  return out;
}

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  Tensor src = detach();
  if (src.layout() == Layout::blocked) src = plain_from_blocked(src);
  Tensor out = empty(shape(), TensorOptions{target, device()});
  // A GPU cast keeps a channels-last tensor channels-last (Note [Channels-last on the GPU] in
  // kernels/cuda/launch.h): autocast's casts sit between channels-last convolutions.
  if (device().is_cuda() && has_channels_last_strides(src)) out.impl().strides = channels_last_strides(shape());
  if (device().is_cuda())
    gpu_copy(out, src);
  else
    detail::copy_strided(out, src);
  detail::record_conversion(*this, out, "to(dtype)");
  return out;
}

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  check(!impl().blocked, "to({}): convert the blocked tensor {} to a plain layout first", target.str(), shape().str());
  Tensor src = detach().contiguous();
  check(src.is_contiguous(), "to({}): only contiguous tensors can move between devices (shape {}, strides {})",
        target.str(), shape().str(), strides().str());
  Tensor out = empty(shape(), TensorOptions{dtype(), target});
  const auto nbytes = static_cast<std::size_t>(numel()) * element_size(dtype());
  if (src.is_pinned() && target.is_cuda())  // Note [Pinned staging]
    cuda::copy_from_pinned(out.raw_data(), target, src.raw_data(), nbytes, src.impl().storage);
  else
    cuda::copy_bytes(out.raw_data(), target, src.raw_data(), device(), nbytes);
  detail::record_conversion(*this, out, "to(device)");
  return out;
}

bool has_channels_last_strides(const Tensor& t) {
  return t.layout() == Layout::channels_last || (t.dim() == 5 && t.strides() == channels_last_strides(t.shape()));
}

Tensor Tensor::clone() const {
  Tensor out;
  if (impl().blocked) {
    auto copy = std::make_shared<TensorImpl>(*impl_);
    copy->autograd.reset();
    copy->storage = std::make_shared<Storage>(impl_->storage->nbytes(), device());
    std::memcpy(copy->storage->data(), impl_->storage->data(), impl_->storage->nbytes());
    out = Tensor(copy);
  } else {
    out = empty(shape(), TensorOptions{dtype(), device()});
    if (has_channels_last_strides(*this)) out.impl().strides = channels_last_strides(shape());
    if (device().is_cuda())
      gpu_copy(out, detach());
    else
      detail::copy_strided(out, detach());
  }
  detail::record_conversion(*this, out, "clone");
  return out;
}

// ---- In-place writes ----------------------------------------------------------------------------------

Tensor& Tensor::fill_(double value) {
  detail::check_inplace_allowed(*this, "fill_");
  impl().storage->bump_version();
  if (device().is_cuda()) {  // any strides and dtype, asynchronous (Note [CUDA strided copies])
    cuda::fill_strided(device_array(*this), shape().begin(), dim(), value, device().index);
    return *this;
  }
  if (impl().blocked) {
    // Fill through a plain copy so the channel padding stays zero.
    Tensor plain = full(shape(), value);
    copy_(plain);
    return *this;
  }
  visit_cpu_dtype(dtype(), "fill_", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T v = static_cast<T>(value);
    if (is_contiguous()) {
      T* p = data<T>();
      const std::int64_t n = numel();
#pragma omp parallel for if (n > 65536)
      for (std::int64_t i = 0; i < n; ++i) p[i] = v;
    } else {
      Tensor src = Tensor::scalar(value, TensorOptions{dtype()});
      Tensor expanded = make_view(src, shape(), Dims(std::vector<std::int64_t>(static_cast<std::size_t>(dim()), 0)), 0);
      detail::copy_strided(*this, expanded);
    }
  });
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check(shape() == src.shape(), "copy_: source shape {} differs from destination shape {}", src.shape().str(),
        shape().str());
  detail::check_inplace_allowed(*this, "copy_");
  impl().storage->bump_version();
  if (impl().blocked) {
    Tensor converted = src.detach().to(device()).to(Layout::plain).to(dtype()).to(blocked_format());
    std::memcpy(impl().storage->data(), converted.impl().storage->data(), impl().storage->nbytes());
    return *this;
  }
  if (device().is_cuda() || src.device().is_cuda()) {
    Tensor s = src.detach();
    copy_with_gpu(*this, s.layout() == Layout::blocked ? plain_from_blocked(s) : s);
    return *this;
  }
  Tensor s = src.detach().to(Layout::plain);
  detail::copy_strided(*this, s);
  return *this;
}

// ---- Misc -------------------------------------------------------------------------------------------

std::string Tensor::str(int max_values) const {
  if (!defined()) return "Tensor(undefined)";
  std::string layout_text = layout_name(layout());
  if (layout() == Layout::blocked) layout_text = fmt::format("blocked:{}", blocked_format().name());
  std::string out = fmt::format("Tensor{} {} {} {}", shape().str(), dtype_name(dtype()), device().str(), layout_text);
  if (requires_grad()) out += " requires_grad";
  if (dtype() == DType::bf16 || dtype() == DType::f16 || (device().is_cuda() && !cuda::is_available())) return out;
  std::vector<double> values = to_doubles();
  out += " {";
  const std::size_t shown = std::min<std::size_t>(values.size(), static_cast<std::size_t>(std::max(max_values, 0)));
  for (std::size_t i = 0; i < shown; ++i) out += fmt::format("{}{:.6g}", i ? ", " : "", values[i]);
  if (shown < values.size()) out += fmt::format(", ... ({} more)", values.size() - shown);
  return out + "}";
}

dnnl::memory::desc memory_desc_of(const Tensor& t) {
  check(t.dtype() == DType::f32 && t.device().is_cpu(), "oneDNN: expected an f32 CPU tensor, got {} on {}",
        dtype_name(t.dtype()), t.device().str());
  return t.layout() == Layout::blocked ? t.blocked_format().desc() : strided_desc(t);
}

Tensor empty_with_desc(const Shape& shape, const dnnl::memory::desc& desc) {
  if (is_plain_row_major(desc, shape)) return Tensor::empty(shape);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(desc.get_size(), Device::cpu());
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = DType::f32;
  impl->blocked = std::make_shared<BlockedFormat>(desc);
  // Note [Blocked layout]: zeroed so the channel padding is zero.
  if (desc.get_size() > 0) std::memset(impl->storage->data(), 0, desc.get_size());
  return Tensor(impl);
}

Tensor make_view(const Tensor& base, const Shape& shape, const Dims& strides, std::int64_t offset) {
  check(!base.impl().blocked, "view: a blocked tensor {} has no strided views; convert it first", base.shape().str());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl().storage;
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(impl);
}

Tensor empty_like(const Tensor& t) { return Tensor::empty(t.shape(), TensorOptions{t.dtype(), t.device()}); }

Tensor zeros_like(const Tensor& t) { return Tensor::zeros(t.shape(), TensorOptions{t.dtype(), t.device()}); }

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const int n = std::max(a.size(), b.size());
  Shape out;
  for (int i = 0; i < n; ++i) {
    const int ia = i - (n - a.size()), ib = i - (n - b.size());
    const std::int64_t ea = ia >= 0 ? a[ia] : 1, eb = ib >= 0 ? b[ib] : 1;
    check(ea == eb || ea == 1 || eb == 1, "{}: shapes {} and {} do not broadcast (dimension {}: {} vs {})", op, a.str(),
          b.str(), i, ea, eb);
    out.push_back(ea == 1 ? eb : ea);
  }
  return out;
}

}  // namespace tlk
