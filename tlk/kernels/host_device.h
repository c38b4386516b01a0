#pragma once
// TLK_HOST_DEVICE marks the plain C++ functions that nvcc compiles for the device as well as the host
// (Note [Kernel bodies on the host] in kernels/augment_voxel.h).
#if defined(__CUDACC__)
#define TLK_HOST_DEVICE __host__ __device__
#else
#define TLK_HOST_DEVICE
#endif
