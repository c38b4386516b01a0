# Decides TLK_HAVE_CUDA. AUTO switches CUDA on where nvcc and cudnn.h are found (the CUDA 13 install
# in /usr/local/cuda on TLK's machines); the code then compiles and links even on a machine without
# a GPU, and GPU tests skip at run time.
set(TLK_HAVE_CUDA OFF)
if(NOT TLK_WITH_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  find_package(CUDAToolkit QUIET)
  find_path(TLK_CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include)
  find_library(TLK_CUDNN_LIBRARY cudnn HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib64)
  if(CMAKE_CUDA_COMPILER AND CUDAToolkit_FOUND AND TLK_CUDNN_INCLUDE_DIR AND TLK_CUDNN_LIBRARY)
    set(TLK_HAVE_CUDA ON)
  elseif(TLK_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "TLK_WITH_CUDA=ON but nvcc, the CUDA toolkit or cuDNN (cudnn.h, libcudnn) was not found")
  endif()
endif()
message(STATUS "TLK CUDA backend: ${TLK_HAVE_CUDA}")

if(TLK_HAVE_CUDA)
  # Note [CUDA architectures]: Hopper (H100/H200) SASS plus compute_90 PTX, so newer GPUs JIT it.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 90-real 90-virtual)
  endif()
  enable_language(CUDA)
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
endif()

function(tlk_add_cuda_sources target)
  file(GLOB_RECURSE cu_sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tlk/*.cu)
  target_sources(${target} PRIVATE ${cu_sources})
  # Note [Kernel bodies on the host]: the augmentation kernels sum positions as the CPU does, without
  # fused multiply-adds, so that nearest-neighbour labels agree with the CPU's to the bit.
  set_source_files_properties(${PROJECT_SOURCE_DIR}/tlk/kernels/cuda/augment_launch.cu PROPERTIES COMPILE_OPTIONS
    "--fmad=false")
  target_include_directories(${target} PRIVATE ${TLK_CUDNN_INCLUDE_DIR})
  target_link_libraries(${target} PUBLIC CUDA::cudart PRIVATE ${TLK_CUDNN_LIBRARY} CUDA::cublas)
endfunction()
