/* The CUDA build of the GPU kernels: src/backend/kernels/kernels.cl
 * compiled as CUDA C++ through cl-compat.cuh. nvcc turns this file into a
 * fatbin (SASS for sm_75 and sm_90, PTX for newer GPUs) that
 * cmake/cuda-backend.cmake embeds in the binary; the CUDA backend loads it
 * with cuModuleLoadData. No host code. */
#include "backend/cuda/cl-compat.cuh"

#include "backend/kernels/kernels.cl"
