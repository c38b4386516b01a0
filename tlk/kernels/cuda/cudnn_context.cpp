#include "tlk/kernels/cuda/cudnn_context.h"

#include <atomic>
#include <climits>
#include <mutex>
#include <vector>

#include "tlk/kernels/cuda/elementwise.h"
#include "tlk/kernels/cuda/launch.h"
#include "tlk/kernels/cuda/norm.h"
#include "tlk/tensor/cuda_runtime.h"
#include "tlk/tensor/error.h"

namespace tlk::kernels::cuda {

namespace {

std::atomic<bool> g_allow_tf32{true};

// Note [Library handles]: one cuDNN and one cuBLAS handle per GPU, made on first use and never
// destroyed (like the allocators, Note [Allocator lifetime]): destroying them from a static destructor
// could run after the CUDA runtime has shut down. Creation is guarded; the kernels themselves run on
// the one stream (Note [One stream]), so the handles are rebound to it at every fetch.
struct Handles {
  std::mutex mutex;
  std::vector<cudnnHandle_t> cudnn;
  std::vector<cublasHandle_t> cublas;
};
Handles& handles() {
  static auto* h = new Handles();
  return *h;
}

int checked_int(std::int64_t v, const char* op, const char* what) {
  check(v >= INT_MIN && v <= INT_MAX, "{}: {} {} does not fit the 32-bit range cuDNN descriptors take", op, what, v);
  return static_cast<int>(v);
}

// Strides cuDNN is given for `t`: the canonical dense strides of its layout (so extent-1 axes, whose
// strides TLK leaves arbitrary, never confuse cuDNN's layout detection), else its real strides.
Dims descriptor_strides(const Tensor& t) {
  if (is_channels_last(t)) return channels_last_strides(t.shape());  // first: it may be plain too
  if (is_plain(t)) return contiguous_strides(t.shape());
  return t.strides();
}

}  // namespace

void set_allow_tf32(bool allow) { g_allow_tf32.store(allow); }
bool allow_tf32() { return g_allow_tf32.load(); }

void check_cudnn(cudnnStatus_t status, const char* op, const char* what) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  fail("{}: {} failed: {} (cuDNN status {})", op, what, cudnnGetErrorString(status), static_cast<int>(status));
}

void check_cublas(cublasStatus_t status, const char* op, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  fail("{}: {} failed: {} (cuBLAS status {})", op, what, cublasGetStatusString(status), static_cast<int>(status));
}

cudnnHandle_t cudnn_handle(int device_index) {
  check_status(cudaSetDevice(device_index), "cuDNN", "cudaSetDevice");
  Handles& h = handles();
  cudnnHandle_t handle = nullptr;
  {
    std::lock_guard<std::mutex> lock(h.mutex);
    if (h.cudnn.size() <= static_cast<std::size_t>(device_index)) h.cudnn.resize(device_index + 1, nullptr);
    if (!h.cudnn[device_index]) check_cudnn(cudnnCreate(&h.cudnn[device_index]), "cuDNN", "cudnnCreate");
    handle = h.cudnn[device_index];
  }
  check_cudnn(cudnnSetStream(handle, stream()), "cuDNN", "cudnnSetStream");
  return handle;
}

cublasHandle_t cublas_handle(int device_index) {
  check_status(cudaSetDevice(device_index), "cuBLAS", "cudaSetDevice");
  Handles& h = handles();
  cublasHandle_t handle = nullptr;
  {
    std::lock_guard<std::mutex> lock(h.mutex);
    if (h.cublas.size() <= static_cast<std::size_t>(device_index)) h.cublas.resize(device_index + 1, nullptr);
    if (!h.cublas[device_index]) check_cublas(cublasCreate(&h.cublas[device_index]), "cuBLAS", "cublasCreate");
    handle = h.cublas[device_index];
  }
  check_cublas(cublasSetStream(handle, stream()), "cuBLAS", "cublasSetStream");
  return handle;
}

cudnnDataType_t cudnn_dtype(DType dtype, const char* op) {
  switch (dtype) {
    case DType::f32:
      return CUDNN_DATA_FLOAT;
    case DType::f64:
      return CUDNN_DATA_DOUBLE;
    case DType::bf16:
      return CUDNN_DATA_BFLOAT16;
    case DType::f16:
      return CUDNN_DATA_HALF;
    default:
      fail("{}: dtype {} is not supported by the cuDNN kernels (expected f32, f64, bf16 or f16)", op,
           dtype_name(dtype));
  }
}

cudnnMathType_t conv_math_type(DType dtype) {
  if (dtype == DType::f32) return allow_tf32() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  if (dtype == DType::bf16 || dtype == DType::f16) return CUDNN_TENSOR_OP_MATH;
  return CUDNN_DEFAULT_MATH;
}

cudnnDataType_t conv_compute_dtype(DType dtype, const char* op) {
  return dtype == DType::bf16 || dtype == DType::f16 ? CUDNN_DATA_FLOAT : cudnn_dtype(dtype, op);
}

cublasComputeType_t gemm_compute_type(DType dtype) {
  if (dtype == DType::f64) return CUBLAS_COMPUTE_64F;
  return allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

// ---- Descriptors -----------------------------------------------------------------------------------------

TensorDesc::TensorDesc(const Tensor& t, const char* op)
    : TensorDesc(t.shape(), descriptor_strides(t), t.dtype(), op) {}

TensorDesc::TensorDesc(const Shape& shape, const Dims& strides, DType dtype, const char* op) {
  check(shape.size() == strides.size() && shape.size() >= 1 && shape.size() <= 5,
        "{}: cannot describe shape {} with strides {} to cuDNN (1 to 5 dimensions)", op, shape.str(), strides.str());
  int dims[8], str[8];
  int n = 0;
  for (int i = 0; i < shape.size(); ++i, ++n) {
    check(shape[i] >= 1, "{}: cuDNN cannot describe the empty shape {}", op, shape.str());
    dims[n] = checked_int(shape[i], op, "extent");
    str[n] = checked_int(shape[i] == 1 && strides[i] == 0 ? 1 : strides[i], op, "stride");
  }
  for (; n < 4; ++n) dims[n] = str[n] = 1;
  const cudnnDataType_t type = cudnn_dtype(dtype, op);
  check_cudnn(cudnnCreateTensorDescriptor(&desc_), op, "cudnnCreateTensorDescriptor");
  const cudnnStatus_t status = cudnnSetTensorNdDescriptor(desc_, type, n, dims, str);
  if (status != CUDNN_STATUS_SUCCESS) {
    cudnnDestroyTensorDescriptor(desc_);
    desc_ = nullptr;
    fail("{}: cudnnSetTensorNdDescriptor for shape {} strides {} failed: {}", op, shape.str(), strides.str(),
         cudnnGetErrorString(status));
  }
}

TensorDesc::~TensorDesc() {
  if (desc_) cudnnDestroyTensorDescriptor(desc_);
}

FilterDesc::FilterDesc(const Tensor& weight, const char* op)
    : FilterDesc(weight.shape(), weight.dtype(), is_channels_last(weight) ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
                 op) {
  check(is_plain(weight) || is_channels_last(weight),
        "{}: the weight {} (strides {}) must be dense plain or channels-last for cuDNN", op, weight.shape().str(),
        weight.strides().str());
}

FilterDesc::FilterDesc(const Shape& shape, DType dtype, cudnnTensorFormat_t format, const char* op) {
  check(shape.size() == 5, "{}: expected a 5-D filter [K, C, kD, kH, kW], got {}", op, shape.str());
  int dims[5];
  for (int i = 0; i < 5; ++i) {
    check(shape[i] >= 1, "{}: cuDNN cannot describe the empty filter {}", op, shape.str());
    dims[i] = checked_int(shape[i], op, "filter extent");
  }
  const cudnnDataType_t type = cudnn_dtype(dtype, op);
  check_cudnn(cudnnCreateFilterDescriptor(&desc_), op, "cudnnCreateFilterDescriptor");
  const cudnnStatus_t status = cudnnSetFilterNdDescriptor(desc_, type, format, 5, dims);
  if (status != CUDNN_STATUS_SUCCESS) {
    cudnnDestroyFilterDescriptor(desc_);
    desc_ = nullptr;
    fail("{}: cudnnSetFilterNdDescriptor for {} failed: {}", op, shape.str(), cudnnGetErrorString(status));
  }
}

FilterDesc::~FilterDesc() {
  if (desc_) cudnnDestroyFilterDescriptor(desc_);
}

ConvDesc::ConvDesc(const Int3& stride, const Int3& padding, const Int3& dilation, DType dtype, cudnnMathType_t math,
                   const char* op) {
  int s[3], p[3], d[3];
  for (int i = 0; i < 3; ++i) {
    s[i] = checked_int(stride[i], op, "stride");
    p[i] = checked_int(padding[i], op, "padding");
    d[i] = checked_int(dilation[i], op, "dilation");
  }
  const cudnnDataType_t type = conv_compute_dtype(dtype, op);
  check_cudnn(cudnnCreateConvolutionDescriptor(&desc_), op, "cudnnCreateConvolutionDescriptor");
  cudnnStatus_t status = cudnnSetConvolutionNdDescriptor(desc_, 3, p, s, d, CUDNN_CROSS_CORRELATION, type);
  if (status == CUDNN_STATUS_SUCCESS) status = cudnnSetConvolutionMathType(desc_, math);
  if (status != CUDNN_STATUS_SUCCESS) {
    cudnnDestroyConvolutionDescriptor(desc_);
    desc_ = nullptr;
    fail("{}: setting up the convolution descriptor (stride [{}, {}, {}], padding [{}, {}, {}], dilation [{}, {}, "
         "{}]) failed: {}",
         op, s[0], s[1], s[2], p[0], p[1], p[2], d[0], d[1], d[2], cudnnGetErrorString(status));
  }
}

ConvDesc::~ConvDesc() {
  if (desc_) cudnnDestroyConvolutionDescriptor(desc_);
}

void ConvDesc::set_math(cudnnMathType_t math, const char* op) {
  check_cudnn(cudnnSetConvolutionMathType(desc_, math), op, "cudnnSetConvolutionMathType");
}

// ---- Workspaces -------------------------------------------------------------------------------------------

Tensor workspace(std::size_t nbytes, int device_index) {
  if (nbytes == 0) return Tensor();
  return Tensor::empty(Shape{static_cast<std::int64_t>(nbytes)}, TensorOptions{DType::u8, Device::cuda(device_index)});
}

void* workspace_ptr(const Tensor& ws) { return ws.defined() ? ws.raw_data() : nullptr; }

// ---- Per-channel bias --------------------------------------------------------------------------------------

namespace {
// The descriptor of a [C] vector broadcast along axis 1 of a `ndim`-D tensor: [1, C, 1, ...].
Shape channel_shape(std::int64_t channels, int ndim) {
  Shape s;
  for (int i = 0; i < ndim; ++i) s.push_back(i == 1 ? channels : 1);
  return s;
}
}  // namespace

void add_channel_bias(const Tensor& y, const Tensor& bias_in, const char* op) {
  require_cuda_floating(y, op, "output");
  require_same(bias_in, y, op, "bias");
  check(y.dim() >= 2 && y.dim() <= 5 && (is_plain(y) || is_channels_last(y)),
        "{}: bias add expects a plain 2-D to 5-D or a channels-last 5-D output, got {} (strides {})", op,
        y.shape().str(), y.strides().str());
  check(bias_in.dim() == 1 && bias_in.size(0) == y.size(1), "{}: bias has shape {}, expected [{}]", op,
        bias_in.shape().str(), y.size(1));
  if (y.numel() == 0) return;
  const Tensor bias = dense_as(bias_in, Layout::plain, op);
  add_inplace(y, make_view(bias, channel_shape(bias.size(0), y.dim()),
                           contiguous_strides(channel_shape(bias.size(0), y.dim())), bias.offset()));
}

Tensor channel_sum(const Tensor& t, const char* op) {
  require_cuda_floating(t, op, "grad_output");
  check(t.dim() >= 2 && t.dim() <= 5, "{}: expected a 2-D to 5-D grad_output [N, C, ...], got {}", op,
        t.shape().str());
  // Note [Channel sums]: TLK's own deterministic reduction (kernels/cuda/elementwise); cuDNN's
  // cudnnConvolutionBackwardBias took 16 ms per UNet step on an H100 where PyTorch's sums took 1.5.
  if (is_channels_last(t)) return channels_last_channel_sum(t, op);
  std::vector<int> axes;
  for (int a = 0; a < t.dim(); ++a)
    if (a != 1) axes.push_back(a);
  return sum(t, axes, false);
}

}  // namespace tlk::kernels::cuda
