// Device-side fill, the first of TLK's own CUDA kernels (the GPU backend issue adds the rest).
#include <cuda_runtime.h>

#include <cstdint>

#include "tlk/tensor/cuda_runtime.h"
#include "tlk/tensor/error.h"

namespace tlk::cuda {

namespace {
template <class T>
__global__ void fill_kernel(T* dst, std::size_t count, T value) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    dst[i] = value;
}
}  // namespace

void fill(void* dst, DType dtype, std::size_t count, double value, int device_index) {
  if (count == 0) return;
  cudaSetDevice(device_index);
  const unsigned threads = 256;
  const unsigned blocks = static_cast<unsigned>(std::min<std::size_t>((count + threads - 1) / threads, 65535));
  if (dtype == DType::f32)
    fill_kernel<<<blocks, threads>>>(static_cast<float*>(dst), count, static_cast<float>(value));
  else if (dtype == DType::f64)
    fill_kernel<<<blocks, threads>>>(static_cast<double*>(dst), count, value);
  else
    fail("CUDA fill: dtype {} is not supported yet (expected f32 or f64)", dtype_name(dtype));
  cudaError_t status = cudaDeviceSynchronize();
  if (status != cudaSuccess) fail("CUDA fill: kernel failed: {}", cudaGetErrorString(status));
}

}  // namespace tlk::cuda
