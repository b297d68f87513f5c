/* OpenCL C on CUDA: the OpenCL built-ins src/backend/kernels/kernels.cl
 * uses, mapped onto CUDA C++, so nvcc compiles the same kernel source the
 * OpenCL backend runs (and the OpenCL tests check on PoCL). Only what
 * kernels.cl needs is here; a kernel using anything else fails to compile
 * at build time, which is the point.
 *
 * Work-item functions follow OpenCL's meaning for the launch the CUDA
 * backend makes (grid = ceil(global / local), block = local):
 * get_global_id(d) = blockIdx.d * blockDim.d + threadIdx.d. */
#ifndef GG_BACKEND_CUDA_CL_COMPAT_CUH
#define GG_BACKEND_CUDA_CL_COMPAT_CUH

#define __kernel extern "C" __global__
#define __global
#define __local __shared__
#define GG_FN static __device__ inline
#define GG_REQD_WG(x, y, z) __launch_bounds__((x) * (y) * (z))
#define GG_LOCAL_PARAM /* __shared__ applies to variables, not to pointers */
#define CLK_LOCAL_MEM_FENCE 0
#define barrier(flags) __syncthreads()

typedef unsigned int uint;   /* as glibc's sys/types.h */
typedef unsigned long ulong; /* 64-bit on LP64, as OpenCL's ulong */

#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

static __device__ inline unsigned gg_cl_dim(uint3 v, int d) {
  return d == 0 ? v.x : d == 1 ? v.y : v.z;
}
static __device__ inline unsigned gg_cl_dim(dim3 v, int d) {
  return d == 0 ? v.x : d == 1 ? v.y : v.z;
}
static __device__ inline size_t get_global_id(int d) {
  return (size_t)gg_cl_dim(blockIdx, d) * gg_cl_dim(blockDim, d) + gg_cl_dim(threadIdx, d);
}
static __device__ inline size_t get_local_id(int d) { return gg_cl_dim(threadIdx, d); }
static __device__ inline size_t get_group_id(int d) { return gg_cl_dim(blockIdx, d); }

static __device__ inline int clamp(int x, int lo, int hi) { return min(max(x, lo), hi); }

/* Reinterpretation of 4-byte values (OpenCL's as_type). */
static __device__ inline float as_float(unsigned u) { return __uint_as_float(u); }
static __device__ inline unsigned as_uint(float f) { return __float_as_uint(f); }

/* float4 with OpenCL's component names and arithmetic (CUDA's own float4
 * has neither operators nor .s0). Loads and stores go element by element:
 * vload4 needs only float alignment in OpenCL, unlike a CUDA float4 load. */
struct gg_cl_float4 {
  float s0, s1, s2, s3;
  __device__ gg_cl_float4() {}
  __device__ gg_cl_float4(float v) : s0(v), s1(v), s2(v), s3(v) {}
  __device__ gg_cl_float4(float a, float b, float c, float d) : s0(a), s1(b), s2(c), s3(d) {}
  __device__ gg_cl_float4 &operator+=(const gg_cl_float4 &o) {
    s0 += o.s0, s1 += o.s1, s2 += o.s2, s3 += o.s3;
    return *this;
  }
};
static __device__ inline gg_cl_float4 operator*(float a, const gg_cl_float4 &b) {
  return gg_cl_float4(a * b.s0, a * b.s1, a * b.s2, a * b.s3);
}
static __device__ inline gg_cl_float4 operator*(const gg_cl_float4 &a, const gg_cl_float4 &b) {
  return gg_cl_float4(a.s0 * b.s0, a.s1 * b.s1, a.s2 * b.s2, a.s3 * b.s3);
}
static __device__ inline gg_cl_float4 operator+(const gg_cl_float4 &a, const gg_cl_float4 &b) {
  return gg_cl_float4(a.s0 + b.s0, a.s1 + b.s1, a.s2 + b.s2, a.s3 + b.s3);
}
static __device__ inline gg_cl_float4 vload4(size_t off, const float *p) {
  p += off * 4;
  return gg_cl_float4(p[0], p[1], p[2], p[3]);
}
static __device__ inline void vstore4(gg_cl_float4 v, size_t off, float *p) {
  p += off * 4;
  p[0] = v.s0, p[1] = v.s1, p[2] = v.s2, p[3] = v.s3;
}
#define float4 gg_cl_float4

/* int8: 8 ints passed by value (the host passes 32 bytes, kx-ops.c). */
struct gg_cl_int8 {
  int s[8];
};
static __device__ inline void vstore8(gg_cl_int8 v, size_t off, int *p) {
  for (int i = 0; i < 8; i++) p[off * 8 + i] = v.s[i];
}
#define int8 gg_cl_int8

#endif
