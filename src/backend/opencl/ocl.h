/* The OpenCL compute backend: OpenCL C kernels for every op of the engine's
 * IR (src/engine/graph.h), built once per device and cached on disk, GEMM
 * through CLBlast (dlopen'ed) or a built-in tiled kernel. Internal to
 * src/backend/opencl and its tests; the engine reaches it through the
 * gg_backend "opencl" (backend-opencl.c).
 *
 * Tensors are (cl_mem, byte offset) pairs, so they can live anywhere inside
 * an arena buffer from the device's gg_pool; this module never creates a
 * buffer itself. Every OpenCL status goes through the failure taxonomy
 * (gg_err_from_cl) and comes back as a GG_E* code with the node and the
 * call named in err. Not thread-safe: one gg_ocl per session thread. */
#ifndef GG_BACKEND_OPENCL_OCL_H
#define GG_BACKEND_OPENCL_OCL_H

#include "backend/kernels/kx.h"
#include "engine/graph.h"
#include "gpuguard/device.h"

#include <stddef.h>
#include <stdint.h>

typedef struct gg_ocl gg_ocl;

typedef enum gg_ocl_gemm {
  GG_OCL_GEMM_AUTO = 0, /* CLBlast when loaded and the product is large enough, else own */
  GG_OCL_GEMM_OWN,      /* always the built-in tiled kernel */
  GG_OCL_GEMM_CLBLAST,  /* always CLBlast (GG_ENOTIMPL at run when it did not load) */
  GG_OCL_GEMM_COUNT
} gg_ocl_gemm;

typedef struct gg_ocl_params {
  /* Program cache folder. NULL: $GPUGUARD_CACHE/opencl, else
   * ~/.cache/gpuguard/opencl; "" disables the disk cache. */
  const char *cache_dir;
  gg_ocl_gemm gemm;
  /* AUTO uses CLBlast when M*N*K >= this (0: the default, GG_OCL_CLBLAST_MIN). */
  double clblast_min_mnk;
  /* 1: clFinish after every node, so an execution failure names its node
   * exactly (otherwise the last node enqueued before gg__ocl_finish). */
  int sync_each;
  /* Extra compiler options (tests build a mutated kernel with -DGG_MUTATE). */
  const char *build_options;
} gg_ocl_params;

/* Below this M*N*K a GEMM is too small for CLBlast's launch overhead on
 * PoCL to pay (see docs/opencl.md for the measurement). */
#define GG_OCL_CLBLAST_MIN (32.0 * 32 * 32)

/* Builds (or loads from the disk cache) the kernels for an opencl device.
 * dev is borrowed and must outlive the gg_ocl. Returns 0, GG_EINVAL (not an
 * opencl device), GG_ECOMPILE with the build log in the log and err, or
 * another classified OpenCL error. *out freed with gg__ocl_free. */
int gg__ocl_new(gg_device *dev, const gg_ocl_params *p, gg_ocl **out, char *err, size_t errlen);
/* Releases kernels and programs; NULL is a no-op. */
void gg__ocl_free(gg_ocl *o);

/* One input or output of a node: its value (shape, dtype; host data for the
 * parameter inputs gg__ocl_param_input names) and where it lives. */
typedef gg_kx_arg gg_ocl_arg; /* mem is a cl_mem */
typedef gg_kx_gemm_args gg_ocl_gemm_args;

/* The node-level questions are kx.h's (one dispatcher for every GPU
 * backend); these names stay for the OpenCL backend and its tests. */
#define gg__ocl_param_input gg__kx_param_input
#define gg__ocl_supports gg__kx_supports
#define gg__ocl_workspace_bytes gg__kx_workspace_bytes
#define GG_OCL_IM2COL_MAX GG_KX_IM2COL_MAX
/* Enqueues node n (in[n->n_in], out[n->n_out]). Returns 0 or a GG_E* code
 * with "node 'NAME' (OP): clCALL: CL_..." in err. */
int gg__ocl_run(gg_ocl *o, const gg_node *n, const gg_ocl_arg *in, const gg_ocl_arg *out,
                char *err, size_t errlen);
/* Waits for everything enqueued; an execution error names the last node. */
int gg__ocl_finish(gg_ocl *o, char *err, size_t errlen);

/* The im2col scratch (kx.h: gg__kx_workspace_bytes says what a node would
 * use; cl_mem + byte offset, borrowed) must stay valid while nodes run; the
 * engine backend takes it from the device's pool. */
void gg__ocl_set_workspace(gg_ocl *o, void *mem, uint64_t off, uint64_t bytes);

typedef struct gg_ocl_stats {
  int from_cache;          /* 1: the program came from the disk cache */
  int cache_rejected;      /* 1: a cache file existed but was refused (rebuilt) */
  char cache_path[512];    /* the program's cache file ("" when disabled) */
  double build_ms;         /* building or loading the program */
  const char *gemm;        /* "clblast" or "own" (what AUTO may use) */
  char clblast_error[160]; /* why CLBlast is off, "" when loaded */
  uint64_t launches, gemm_clblast, gemm_own, conv_im2col, conv_direct;
} gg_ocl_stats;
void gg__ocl_get_stats(const gg_ocl *o, gg_ocl_stats *out);

#endif
