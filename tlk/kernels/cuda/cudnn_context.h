#pragma once
// What the cuDNN- and cuBLAS-backed kernel families (conv3d, linear) share: one library handle per
// GPU, checked calls, dtype mapping, RAII descriptors built from a tensor's real strides, the TF32
// switch, and cuDNN workspaces.
#include <cublas_v2.h>
#include <cudnn.h>

#include <cstddef>
#include <cstdint>

#include "tlk/kernels/conv_params.h"
#include "tlk/kernels/cuda/launch.h"
#include "tlk/tensor/tensor.h"

namespace tlk::kernels::cuda {

// ---- TF32 switch ------------------------------------------------------------------------------------
// Note [TF32 switch]: like PyTorch's torch.backends.cudnn.allow_tf32 (default true), f32 convolutions
// and matrix products may round their inputs to TF32 (10-bit mantissa) and run on tensor cores:
// true selects CUDNN_DEFAULT_MATH and CUBLAS_COMPUTE_32F_FAST_TF32, false CUDNN_FMA_MATH and
// CUBLAS_COMPUTE_32F (full fp32 FMA, results within ~1e-5 of an f64 reference). f64 is never affected.
// The flag is part of every algorithm cache key, so flipping it never reuses a choice made for the
// other mode.

/// Allows (true, the default) or forbids TF32 tensor-core math for f32 convolutions and matmuls.
/// Example: `cuda::set_allow_tf32(false);  // bit-for-bit fp32 FMA, e.g. for a gradient test`
void set_allow_tf32(bool allow);
/// The current TF32 switch (Note [TF32 switch]).
bool allow_tf32();

// ---- Handles and checked calls ------------------------------------------------------------------------

/// The cuDNN handle of GPU `device_index` (created on first use, kept for the process), bound to
/// kernels::cuda::stream(). Makes that device current.
cudnnHandle_t cudnn_handle(int device_index);
/// The cuBLAS handle of GPU `device_index`, likewise bound to stream().
cublasHandle_t cublas_handle(int device_index);

/// Throws tlk::Error "`op`: `what` failed: <cudnnGetErrorString>" unless `status` is success.
void check_cudnn(cudnnStatus_t status, const char* op, const char* what);
/// Throws tlk::Error "`op`: `what` failed: <cublasGetStatusString>" unless `status` is success.
void check_cublas(cublasStatus_t status, const char* op, const char* what);

/// CUDNN_DATA_FLOAT for f32, CUDNN_DATA_DOUBLE for f64, CUDNN_DATA_BFLOAT16 / CUDNN_DATA_HALF for
/// bf16 / f16; any other dtype is a tlk::Error naming `op`.
cudnnDataType_t cudnn_dtype(DType dtype, const char* op);
/// The compute type of a convolution on `dtype` operands: float for f32 and the 16-bit types (which
/// accumulate in f32), double for f64.
cudnnDataType_t conv_compute_dtype(DType dtype, const char* op);
/// The math type a convolution of `dtype` uses under the TF32 switch (Note [TF32 switch]).
cudnnMathType_t conv_math_type(DType dtype);
/// The cuBLAS compute type for a matrix product of `dtype` under the TF32 switch.
cublasComputeType_t gemm_compute_type(DType dtype);

/// Host-side scalars of the right type for cuDNN's alpha/beta arguments (double for f64, else float).
struct Scale {
  float f;
  double d;
  const void* of(DType dtype) const { return dtype == DType::f64 ? static_cast<const void*>(&d) : &f; }
};
inline Scale scale(double v) { return {static_cast<float>(v), v}; }

// ---- Descriptors -----------------------------------------------------------------------------------------

/// A cudnnTensorDescriptor_t, destroyed with the object. Built from a shape and strides in elements
/// (padded to at least 4 dimensions with trailing extent-1 axes, since cuDNN refuses fewer).
class TensorDesc {
 public:
  /// Describes `t` with its real strides: plain NCDHW and channels-last (NDHWC) both work.
  TensorDesc(const Tensor& t, const char* op);
  TensorDesc(const Shape& shape, const Dims& strides, DType dtype, const char* op);
  ~TensorDesc();
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
  cudnnTensorDescriptor_t get() const { return desc_; }

 private:
  cudnnTensorDescriptor_t desc_ = nullptr;
};

/// A cudnnFilterDescriptor_t for a 5-D weight [K, C, kD, kH, kW]: format NCHW for a plain weight,
/// NHWC for a channels-last one (the only two arrangements cuDNN filters have).
class FilterDesc {
 public:
  FilterDesc(const Tensor& weight, const char* op);
  FilterDesc(const Shape& shape, DType dtype, cudnnTensorFormat_t format, const char* op);
  ~FilterDesc();
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
  cudnnFilterDescriptor_t get() const { return desc_; }

 private:
  cudnnFilterDescriptor_t desc_ = nullptr;
};

/// A 3-D cross-correlation descriptor (stride, padding, dilation of `opt`; output_padding is not a
/// property of the convolution) with compute type `dtype` and math type `math`.
class ConvDesc {
 public:
  ConvDesc(const Int3& stride, const Int3& padding, const Int3& dilation, DType dtype, cudnnMathType_t math,
           const char* op);
  ~ConvDesc();
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
  cudnnConvolutionDescriptor_t get() const { return desc_; }
  /// Changes the math type (an algorithm search may report that the chosen algorithm wants another).
  void set_math(cudnnMathType_t math, const char* op);

 private:
  cudnnConvolutionDescriptor_t desc_ = nullptr;
};

// ---- Workspaces -------------------------------------------------------------------------------------------

/// An uninitialised byte buffer of `nbytes` on GPU `device_index` from the caching allocator (an
/// undefined tensor for 0 bytes), for a cuDNN workspace. Example: `Tensor ws = workspace(bytes, 0);`
Tensor workspace(std::size_t nbytes, int device_index);
/// The device pointer of a workspace tensor (null when undefined).
void* workspace_ptr(const Tensor& ws);

// ---- Per-channel bias --------------------------------------------------------------------------------------

/// y[:, c, ...] += bias[c] in place on `y` ([N, C, ...], 2 to 5 dimensions, plain or channels-last).
void add_channel_bias(const Tensor& y, const Tensor& bias, const char* op);
/// The sum of `t` ([N, C, ...], 2 to 5 dimensions) over every axis but 1: a new [C] tensor (the bias
/// gradient of a convolution or a linear layer), by TLK's deterministic reductions (Note [Channels-last
/// channel sums] in norm_launch.cu for a channels-last `t`).
Tensor channel_sum(const Tensor& t, const char* op);

}  // namespace tlk::kernels::cuda
