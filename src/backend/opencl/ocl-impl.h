/* Internals of the OpenCL backend shared by its files: the OpenCL entry
 * points it uses (looked up in the ICD loader the device layer dlopen'ed, so
 * there is no header or link dependency), the kernel table and the launch
 * helper. */
#ifndef GG_BACKEND_OPENCL_OCL_IMPL_H
#define GG_BACKEND_OPENCL_OCL_IMPL_H

#include "backend/opencl/ocl.h"

#include <stddef.h>
#include <stdint.h>

typedef int cl_int;
typedef unsigned int cl_uint;
typedef void *cl_mem, *cl_program, *cl_kernel, *cl_event, *cl_device_id, *cl_context,
    *cl_command_queue;

enum {
  CLX_DEVICE_NAME = 0x102B,
  CLX_DRIVER_VERSION = 0x102D,
  CLX_DEVICE_VERSION = 0x102F,
  CLX_PROGRAM_BUILD_LOG = 0x1183,
  CLX_PROGRAM_BINARY_SIZES = 0x1165,
  CLX_PROGRAM_BINARIES = 0x1166,
};

typedef struct gg_clfn {
  cl_int (*GetDeviceInfo)(cl_device_id, cl_uint, size_t, void *, size_t *);
  cl_program (*CreateProgramWithSource)(cl_context, cl_uint, const char **, const size_t *,
                                        cl_int *);
  cl_program (*CreateProgramWithBinary)(cl_context, cl_uint, const cl_device_id *,
                                        const size_t *, const unsigned char **, cl_int *,
                                        cl_int *);
  cl_int (*BuildProgram)(cl_program, cl_uint, const cl_device_id *, const char *, void *, void *);
  cl_int (*GetProgramBuildInfo)(cl_program, cl_device_id, cl_uint, size_t, void *, size_t *);
  cl_int (*GetProgramInfo)(cl_program, cl_uint, size_t, void *, size_t *);
  cl_kernel (*CreateKernel)(cl_program, const char *, cl_int *);
  cl_int (*ReleaseKernel)(cl_kernel);
  cl_int (*ReleaseProgram)(cl_program);
  cl_int (*SetKernelArg)(cl_kernel, cl_uint, size_t, const void *);
  cl_int (*EnqueueNDRangeKernel)(cl_command_queue, cl_kernel, cl_uint, const size_t *,
                                 const size_t *, const size_t *, cl_uint, const cl_event *,
                                 cl_event *);
  cl_int (*Finish)(cl_command_queue);
} gg_clfn;

/* CLBlast's C entry point we use (clblast_c.h), loaded with dlopen. */
typedef int (*gg_clblast_sgemm_fn)(int layout, int ta, int tb, size_t m, size_t n, size_t k,
                                   float alpha, cl_mem a, size_t ao, size_t lda, cl_mem b,
                                   size_t bo, size_t ldb, float beta, cl_mem c, size_t co,
                                   size_t ldc, cl_command_queue *queue, cl_event *event);

struct gg_ocl {
  gg_kx kx; /* first: kx-ops.c's view (launch, gemm, im2col scratch, counters) */
  gg_device *dev;
  gg_clfn fn;
  cl_device_id device;
  cl_context context;
  cl_command_queue queue;
  cl_program program;
  cl_kernel k[K_COUNT];
  gg_ocl_params p;
  char cache_dir[384];
  gg_clblast_sgemm_fn clblast_sgemm; /* NULL: CLBlast absent */
  gg_ocl_stats st;
  const gg_node *last; /* last node enqueued, named by gg__ocl_finish */
};

/* Sets args and enqueues kernel k over a grid of dims (1..3) with optional
 * local size; errors are classified and name node n. */
int gg__ocl_launch(gg_ocl *o, const gg_node *n, gg_kx_kernel k, int dims, const size_t *global,
                   const size_t *local, const gg_karg *args, int nargs, char *err,
                   size_t errlen);
/* Classifies an OpenCL status from `call` while running node n (may be
 * NULL), writes the message into err, logs it, returns the GG_E* code. */
int gg__ocl_fail(gg_ocl *o, const gg_node *n, int cl_status, const char *call, char *err,
                 size_t errlen);

/* GEMM through CLBlast or the built-in kernel (ocl-gemm.c): kx.h's gemm. */
int gg__ocl_gemm(gg_ocl *o, const gg_node *n, const gg_ocl_gemm_args *g, char *err,
                 size_t errlen);
/* Loads libclblast.so.1 (GPUGUARD_LIBCLBLAST overrides); fills o->clblast_sgemm
 * or o->st.clblast_error. */
void gg__ocl_clblast_load(gg_ocl *o);

#endif
