/* The kernel dispatcher shared by the GPU backends (OpenCL, CUDA).
 *
 * One kernel source, src/backend/kernels/kernels.cl, is compiled twice: as
 * OpenCL C by the OpenCL backend at run time, and as CUDA C++ by nvcc at
 * build time (src/backend/cuda/kernels.cu includes it after cl-compat.cuh,
 * which maps the OpenCL built-ins onto CUDA's). The host code that maps a
 * node of the engine IR onto those kernels (geometry, scalar arguments,
 * broadcasting strides: kx-ops.c) is written once against this interface,
 * so what the OpenCL tests prove on PoCL about a kernel and its arguments
 * holds for the CUDA build of the same kernel.
 *
 * A backend fills a gg_kx: a launch function (clEnqueueNDRangeKernel or
 * cuLaunchKernel), a GEMM function (CLBlast / built-in kernel, cuBLAS) and
 * an optional im2col scratch. Memory handles are opaque 8-byte values
 * (cl_mem, or a CUdeviceptr to the start of a pool block) with byte
 * offsets; kernels take (handle, element offset) pairs.
 *
 * Launch geometry: `global` is the number of work items per dimension;
 * a launcher rounds it up to its work-group (block) shape, and every kernel
 * ignores the work items past its bounds in dims 0 and 1. Dim 2 is never
 * rounded (work-group depth 1), so kernels may rely on it being exact. */
#ifndef GG_BACKEND_KERNELS_KX_H
#define GG_BACKEND_KERNELS_KX_H

#include "engine/graph.h"

#include <stddef.h>
#include <stdint.h>

/* Kernels of kernels.cl, in the order of gg__kx_kernel_name. */
typedef enum gg_kx_kernel {
  K_CONV2D = 0,
  K_DEPTHWISE,
  K_GEMM,
  K_BIAS_ACT,
  K_BINARY,
  K_UNARY,
  K_SOFTMAX,
  K_REDUCE,
  K_MAXPOOL,
  K_PAD,
  K_TRANSPOSE,
  K_COPY2D,
  K_RESIZE,
  K_IM2COL,
  K_TRANSPOSE2D,
  K_COMPARE,
  K_WHERE,
  K_UNARY_BITS,
  K_GATHER,
  K_AVGPOOL,
  K_CONV_TRANSPOSE,
  K_BMM,
  K_LAYER_NORM,
  K_RESIZE_ONNX,
  K_LOG_SOFTMAX,
  K_TILE,
  K_GROUP_NORM,
  K_DEPTH_TO_SPACE,
  K_RESIZE_NEAREST,
  K_QUANT,
  K_COUNT
} gg_kx_kernel;

/* The kernel's entry point name ("gg_conv2d"); NULL for k out of range. */
const char *gg__kx_kernel_name(int k);

/* Work-group (block) shape of a launch with `dims` dimensions and no local
 * size of its own: (64), (16,4), (8,4,1). Both launchers use it. */
extern const size_t gg__kx_local[3][3];

/* One input or output of a node: its value (shape, dtype; host data for the
 * parameter inputs gg__kx_param_input names) and where it lives. */
typedef struct gg_kx_arg {
  const gg_tval *v;
  void *mem;    /* cl_mem or CUdeviceptr; unused for parameter inputs */
  uint64_t off; /* byte offset in mem, a multiple of 4 */
} gg_kx_arg;

/* One kernel argument: size and address of its value (clSetKernelArg's
 * pair; cuLaunchKernel takes the addresses). */
typedef struct gg_karg {
  size_t size;
  const void *p;
} gg_karg;
#define KA(x) ((gg_karg){sizeof(x), &(x)})

/* GEMM C[M,N] (ldc = N) = op(A) op(B) + bias, activation; element offsets. */
typedef struct gg_kx_gemm_args {
  void *a, *b, *c, *bias, *prelu;
  uint64_t ao, bo, co, biaso, preluo;
  int lda, ldb, ta, tb, M, N, K, has_bias, prelu_n, act;
  float alpha;
} gg_kx_gemm_args;

typedef struct gg_kx gg_kx;
struct gg_kx {
  /* Launches kernel k over `global` work items (dims 1..3) with an
   * optional local shape (NULL: gg__kx_local). Returns 0 or a classified
   * GG_E* code with "node 'NAME' (OP): CALL: STATUS" in err. */
  int (*launch)(gg_kx *x, const gg_node *n, gg_kx_kernel k, int dims, const size_t *global,
                const size_t *local, const gg_karg *args, int nargs, char *err, size_t errlen);
  /* C = op(A) op(B) + bias, activation (the backend's BLAS, or the K_GEMM
   * kernel, and K_BIAS_ACT for the epilogue). */
  int (*gemm)(gg_kx *x, const gg_node *n, const gg_kx_gemm_args *g, char *err, size_t errlen);
  /* im2col scratch (borrowed; NULL: direct convolutions only). */
  void *ws;
  uint64_t ws_off, ws_bytes;
  /* counters */
  uint64_t conv_im2col, conv_direct;
};

/* 1 when input k of n is a small constant read on the host (axes, perm,
 * paddings, shape, sizes, pad value): its v->data must be host memory. */
int gg__kx_param_input(const gg_node *n, int k);
/* Host copies of node n's parameter inputs (gg__kx_param_input) into
 * params[0..n_in): params[k] = vals[n->in[k]] with .data a malloc'd copy of
 * its bytes (from .data, else downloaded from .buf), for the k that are
 * parameters; the others stay zeroed. Returns 0, GG_ENOMEM, GG_ESTATE (a
 * parameter with neither host data nor a buffer) or the download's error;
 * on error the copies made so far stay in params for the caller to free. */
int gg__kx_copy_params(const gg_node *n, const gg_tval *vals, gg_tval *params);

/* 1 when these kernels run node n with these shapes, else 0 and the reason
 * (may be NULL) says why. Cheap, no device calls. */
int gg__kx_supports(const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out, const char **why);
/* Runs node n (in[n->n_in], out[n->n_out]) through x. `who` names the
 * backend in the "not supported" message. Returns 0 or a GG_E* code. */
int gg__kx_run(gg_kx *x, const char *who, const gg_node *n, const gg_kx_arg *in,
               const gg_kx_arg *out, char *err, size_t errlen);

/* The GEMM kernels, for a backend's gemm function: the epilogue alone over
 * C (bias, activation, PReLU; after a BLAS call), and the whole product on
 * the built-in tiled kernel with the epilogue fused (no BLAS). */
int gg__kx_bias_act(gg_kx *x, const gg_node *n, const gg_kx_gemm_args *g, char *err, size_t errlen);
int gg__kx_gemm_kernel(gg_kx *x, const gg_node *n, const gg_kx_gemm_args *g, char *err,
                       size_t errlen);

/* Convolutions (groups 1, not 1x1) run as im2col + GEMM through x->ws, in
 * chunks of output pixels when it is smaller than the whole im2col matrix;
 * without one they run the direct kernel. The bytes node n would use for a
 * single chunk, capped at GG_KX_IM2COL_MAX (0: n never uses it). */
#define GG_KX_IM2COL_MAX ((uint64_t)8 << 20)
uint64_t gg__kx_workspace_bytes(const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out);

/* Leading (top, left) padding of a Conv2D / depthwise / pool node as TF
 * computes it (SAME puts the odd pixel after), for dim 0 (H) or 1 (W). */
int gg__kx_pad_before(const gg_node *n, int dim, int64_t in, int k, int s, int d);

#endif
