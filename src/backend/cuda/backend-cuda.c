/* The "cuda" engine backend (src/engine/backend.h): nodes run on one CUDA
 * stream per backend (a session, so a worker) on tensors that live in the
 * device's gg_pool (the arena and the weights buffer the scheduler plans).
 *
 *   Conv2D, depthwise  cuDNN (NHWC float, FMA math: no TF32), filters
 *                      repacked at prepare into cuDNN's K,R,S,C/groups layout
 *                      in their own pool block; fused bias / activation /
 *                      PReLU as one K_BIAS_ACT launch after it. TF SAME
 *                      padding with the odd pixel after (pad_before !=
 *                      pad_after) runs the kx direct kernel instead (see
 *                      conv_geometry).
 *   MatMul             cublasSgemm_v2 (row-major through the swapped
 *                      column-major call, pedantic math) + K_BIAS_ACT
 *   MaxPool            cudnnPoolingForward when the padding is symmetric
 *   Softmax            cudnnSoftmaxForward (rows x C as NCHW [rows,C,1,1])
 *   everything else    the shared kernels (src/backend/kernels, gg__kx_run),
 *                      built by nvcc into the embedded fatbin
 *
 * Memory: every device byte from the pool. One scratch block, shared by all
 * nodes (cuDNN workspaces and the cuBLAS workspace), grows at prepare to the
 * largest need of the chosen algorithms (memory-aware plans: algos() lists
 * cuDNN's algorithms for each convolution with their workspace). Uploads and
 * downloads go through pinned staging buffers (cuMemHostAlloc) and
 * cuMemcpy*Async on the stream.
 *
 * CUDA graphs: a session's first run is eager and timed with events; the
 * second is captured once, one graph per segment (the runs of this
 * backend's nodes between uploads and downloads: a capture cannot hold a
 * copy that waits for the stream), and the third replays the graphs, timed;
 * the faster way serves the later runs. GPUGUARD_CUDA_GRAPH=0 never
 * captures, =1 always replays. See "CUDA graphs" below.
 *
 * Registered at load time (a constructor; the link option in
 * cmake/cuda-backend.cmake keeps this object in every executable). */
#include "backend/cuda/cu-impl.h"
#include "backend/kernels/kx.h"
#include "device/device-impl.h"
#include "engine/backend.h"
#include "engine/engine-impl.h"
#include "gpuguard/classify.h"
#include "gpuguard/device.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "gpuguard/memory.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_include)
#if __has_include("backend/cuda/kernels-fatbin.h")
#include "backend/cuda/kernels-fatbin.h"
#define GG_CU_HAVE_FATBIN 1
#endif
#endif
#ifndef GG_CU_HAVE_FATBIN
#define GG_CU_HAVE_FATBIN 0
#endif

#define STAGING_CHUNK ((size_t)8 << 20) /* bytes per pinned staging copy */

/* Graph states (gg__cuda_stats.graph_mode). */
enum { G_FIRST = 0, G_CAPTURE, G_REPLAY, G_EAGER, G_OFF, G_TRIAL };

/* Node paths. */
enum { P_KX = 0, P_CONV, P_POOL, P_SOFTMAX, P_GEMM };

typedef struct algo_cache {
  const gg_node *n;
  int na;
  gg_backend_algo a[GG_BACKEND_MAX_ALGOS];
  int id[GG_BACKEND_MAX_ALGOS];     /* cudnnConvolutionFwdAlgo_t */
  size_t mem[GG_BACKEND_MAX_ALGOS]; /* cuDNN's workspace bytes */
  int lean;                         /* index of the zero-workspace algorithm, -1: none */
  int listed;                       /* cuDNN listed at least one algorithm */
} algo_cache;

typedef struct cu_node cu_node;

typedef struct cu_be {
  gg_device *dev;
  gg_pool *pool;
  const gg__cu_api *a;
  CUcontext ctx;
  unsigned reset_gen;
  CUstream stream;
  cudnnHandle_t dnn;
  cublasHandle_t blas;
  CUmodule module;
  CUfunction fn[K_COUNT];
  int kernels_ok;
  gg_kx kx;
  gg_staging *staging;
  gg_block *ws;        /* the shared scratch */
  uint64_t ws_need;    /* bytes of it in use */
  uint64_t ws_refused; /* smallest size the pool refused (0: none) */
  void *blas_ws;       /* what cublasSetWorkspace was last given */
  size_t blas_ws_size;
  int blas_ws_set;
  algo_cache *cache;
  int n_cache, cap_cache;
  /* graphs: the run's node sequence, cut into segments at every upload or
   * download between nodes; one CUDA graph per segment */
  int gforce; /* -1 auto, 0 never, 1 always */
  int gstate;
  const gg_node **seq;
  unsigned char *segstart; /* seq[i] opens a segment */
  cu_node **sstate;        /* seq[i]'s prepared state */
  gg_tval *gvals;          /* the view the run's nodes read (one per session) */
  int seg_first;           /* position of the segment being captured */
  CUgraphExec *execs;      /* one per segment */
  int nseq, capseq, pos, nseg, seg;
  int in_run, io_since_node, capturing;
  int run_state; /* gstate when the current run began */
  CUevent ev0, ev1;
  float eager_ms, graph_ms;
} cu_be;

struct cu_node {
  int path;
  int nt;
  gg_kx_arg *args;
  gg_tval *params; /* host copies of parameter inputs (kx) */
  /* cuDNN */
  cudnnTensorDescriptor_t xd, yd;
  cudnnFilterDescriptor_t wd;
  cudnnConvolutionDescriptor_t cd;
  cudnnPoolingDescriptor_t pd;
  gg_block *wpack; /* repacked filter */
  int algo_id, lean_id;
  size_t algo_mem;
  int fell_back;
  int co, rows; /* epilogue: channels, pixels */
};

/* ---- counters ------------------------------------------------------------ */

static _Atomic uint64_t g_st[13];
static _Atomic int g_last_mode;
enum {
  S_EAGER,
  S_CAPT,
  S_GRAPH,
  S_ABORT,
  S_FALLBACK,
  S_PFALLBACK,
  S_CONV,
  S_POOL,
  S_SOFTMAX,
  S_GEMM,
  S_KX,
  S_EPI,
  S_OWN_GEMM
};

void gg__cuda_get_stats(gg__cuda_stats *o) {
  memset(o, 0, sizeof *o);
  o->eager_runs = g_st[S_EAGER], o->captures = g_st[S_CAPT], o->graph_runs = g_st[S_GRAPH];
  o->graph_aborts = g_st[S_ABORT], o->algo_fallbacks = g_st[S_FALLBACK];
  o->prepare_fallbacks = g_st[S_PFALLBACK], o->cudnn_convs = g_st[S_CONV];
  o->cudnn_pools = g_st[S_POOL], o->cudnn_softmax = g_st[S_SOFTMAX];
  o->cublas_gemms = g_st[S_GEMM], o->kx_nodes = g_st[S_KX], o->epilogues = g_st[S_EPI];
  o->own_gemms = g_st[S_OWN_GEMM];
  o->graph_mode = g_last_mode;
}

void gg__cuda_reset_stats(void) {
  for (int i = 0; i < (int)(sizeof g_st / sizeof *g_st); i++)
    g_st[i] = 0;
}

/* ---- errors ---------------------------------------------------------------- */

static const char *nname(const gg_node *n) {
  return n ? n->name : "-";
}
static const char *nop(const gg_node *n) {
  return n ? n->src_op : "-";
}

static int cu_fail(const gg_node *n, CUresult r, const char *call, char *err, size_t errlen) {
  int rc = gg_errf(err, errlen, gg_err_from_cuda(r), "node '%s' (%s): %s: %s", nname(n), nop(n),
                   call, gg__cu_error_name(r));
  GG_ERROR("GPU", "%s (%s)", err, gg_fail_class_name(gg_classify_cuda(r)));
  return rc;
}

static int dnn_fail(const gg_node *n, cudnnStatus_t s, const char *call, char *err, size_t errlen) {
  /* out of memory is device memory here: the workspace or cuDNN's own */
  int code = gg_classify_cudnn(s) == GG_FAIL_OOM ? GG_EDEV_OOM : gg_err_from_cudnn(s);
  int rc = gg_errf(err, errlen, code, "node '%s' (%s): %s: %s", nname(n), nop(n), call,
                   gg_cudnn_status_name(s));
  GG_ERROR("GPU", "%s (%s)", err, gg_fail_class_name(gg_classify_cudnn(s)));
  return rc;
}

static int blas_fail(const gg_node *n, cublasStatus_t s, const char *call, char *err,
                     size_t errlen) {
  int code = gg_classify_cublas(s) == GG_FAIL_OOM ? GG_EDEV_OOM : gg_err_from_cublas(s);
  int rc = gg_errf(err, errlen, code, "node '%s' (%s): %s: %s", nname(n), nop(n), call,
                   gg_cublas_status_name(s));
  GG_ERROR("GPU", "%s (%s)", err, gg_fail_class_name(gg_classify_cublas(s)));
  return rc;
}

static int push(cu_be *c, const gg_node *n, char *err, size_t errlen) {
  CUresult r = c->a->cuCtxPushCurrent(c->ctx);
  return r ? cu_fail(n, r, "cuCtxPushCurrent", err, errlen) : 0;
}

static void pop(cu_be *c) {
  CUcontext dummy;
  c->a->cuCtxPopCurrent(&dummy);
}

/* GG_EDEVICE_LOST when the device was reset after this backend was made:
 * the reset freed every allocation, the stream and the handles with it. */
static int same_context(cu_be *c) {
  gg__cu_handles h;
  return !gg__cuda_handles(c->dev, &h) && h.reset_gen == c->reset_gen && h.context == c->ctx;
}

static int check_reset(cu_be *c, const gg_node *n) {
  if (same_context(c)) return 0;
  GG_ERROR("GPU",
           "node '%s' (%s): %s was reset after this session was prepared; prepare the "
           "session again",
           nname(n), nop(n), gg_device_name(c->dev));
  return GG_EDEVICE_LOST;
}

/* ---- where tensors live ---------------------------------------------------- */

static int locate(const gg_tval *t, void **mem, uint64_t *off) {
  if (!t->buf || !t->buf->block || !gg_block_devmem(t->buf->block)) return GG_ESTATE;
  *mem = gg_block_devmem(t->buf->block)->handle;
  *off = gg_block_offset(t->buf->block) + t->offs;
  return 0;
}

static void *dptr(const gg_tval *t) {
  void *m = NULL;
  uint64_t off = 0;
  if (locate(t, &m, &off)) return NULL;
  return (char *)m + off;
}

/* ---- geometry: which nodes cuDNN takes -------------------------------------- */

typedef struct geo {
  int B, H, W, C, OH, OW, K, KH, KW, sh, sw, dh, dw, ph, pw, groups, cg;
} geo;

/* 1 when cuDNN's symmetric padding reproduces TF's window: leading pad p on
 * both sides gives the same output size (the trailing pad TF adds is then
 * never read). TF SAME with an odd total pad puts the extra pixel after; for
 * those nodes the kx direct kernel runs instead (it takes both pads, needs
 * no scratch and fuses the epilogue); padding the input into the scratch
 * first would cost a copy and a larger workspace for the same result. */
static int sym_dim(const gg_node *n, int dim, int64_t in, int k, int s, int d, int64_t out,
                   int *pad) {
  int pb = gg__kx_pad_before(n, dim, in, k, s, d);
  int64_t eff = (int64_t)(k - 1) * d + 1;
  *pad = pb;
  return in + 2 * pb >= eff && (in + 2 * pb - eff) / s + 1 == out;
}

static int conv_geometry(const gg_node *n, const gg_tval *vals, geo *g) {
  memset(g, 0, sizeof *g);
  if (n->op != GG_OP_CONV2D && n->op != GG_OP_DEPTHWISE) return 0;
  const gg_tval *x = &vals[n->in[0]], *w = &vals[n->in[1]], *y = &vals[n->out[0]];
  if (x->ndim != 4 || w->ndim != 4 || y->ndim != 4 || x->dtype != GG_DT_F32 ||
      w->dtype != GG_DT_F32 || !w->data || !w->is_const)
    return 0;
  g->B = (int)x->shape[0], g->H = (int)x->shape[1], g->W = (int)x->shape[2];
  g->C = (int)x->shape[3], g->OH = (int)y->shape[1], g->OW = (int)y->shape[2];
  g->K = (int)y->shape[3], g->KH = (int)w->shape[0], g->KW = (int)w->shape[1];
  g->sh = n->a.strides[0], g->sw = n->a.strides[1];
  g->dh = n->a.dilations[0], g->dw = n->a.dilations[1];
  if (n->op == GG_OP_CONV2D) {
    if (w->shape[2] < 1 || g->C % w->shape[2]) return 0;
    g->cg = (int)w->shape[2], g->groups = g->C / g->cg;
  } else {
    g->cg = 1, g->groups = g->C;
    if ((int64_t)g->C * w->shape[3] != g->K) return 0;
  }
  if (g->sh < 1 || g->sw < 1 || g->dh < 1 || g->dw < 1) return 0;
  return sym_dim(n, 0, g->H, g->KH, g->sh, g->dh, g->OH, &g->ph) &&
         sym_dim(n, 1, g->W, g->KW, g->sw, g->dw, g->OW, &g->pw);
}

static int pool_geometry(const gg_node *n, const gg_tval *vals, geo *g) {
  memset(g, 0, sizeof *g);
  const gg_tval *x = &vals[n->in[0]], *y = &vals[n->out[0]];
  if (n->op != GG_OP_MAXPOOL || x->ndim != 4 || x->dtype != GG_DT_F32) return 0;
  g->B = (int)x->shape[0], g->H = (int)x->shape[1], g->W = (int)x->shape[2];
  g->C = (int)x->shape[3], g->OH = (int)y->shape[1], g->OW = (int)y->shape[2];
  g->KH = n->a.ksize[0], g->KW = n->a.ksize[1], g->sh = n->a.strides[0], g->sw = n->a.strides[1];
  if (g->KH < 1 || g->KW < 1 || g->sh < 1 || g->sw < 1) return 0;
  return sym_dim(n, 0, g->H, g->KH, g->sh, 1, g->OH, &g->ph) &&
         sym_dim(n, 1, g->W, g->KW, g->sw, 1, g->OW, &g->pw) && g->ph < g->KH && g->pw < g->KW;
}

static int epilogue(const gg_node *n) {
  return n->a.has_bias || n->a.act != GG_ACT_NONE;
}

static algo_cache *conv_algos(cu_be *c, const gg_node *n, const gg_tval *vals);

/* The path node n takes (P_KX when only the shared kernels can run it;
 * -1 when nothing here can). */
static int node_path(cu_be *c, const gg_node *n, const gg_tval *vals) {
  geo g;
  int need_k = epilogue(n) && !c->kernels_ok;
  switch (n->op) {
  case GG_OP_CONV2D:
  case GG_OP_DEPTHWISE:
    /* cuDNN when it has an algorithm for these descriptors (it does not
     * take every grouped NHWC float case), else the direct kernel */
    if (c->dnn && conv_geometry(n, vals, &g) && !need_k) {
      algo_cache *e = conv_algos(c, n, vals);
      if ((e && e->listed) || !c->kernels_ok) return P_CONV;
    }
    break;
  case GG_OP_MAXPOOL:
    if (c->dnn && pool_geometry(n, vals, &g)) return P_POOL;
    break;
  case GG_OP_SOFTMAX:
    if (c->dnn && vals[n->in[0]].dtype == GG_DT_F32 && vals[n->in[0]].ndim >= 1) return P_SOFTMAX;
    break;
  case GG_OP_MATMUL:
    if (c->blas && vals[n->in[0]].dtype == GG_DT_F32 && vals[n->in[0]].ndim == 2 &&
        vals[n->in[1]].ndim == 2 && !need_k)
      return P_GEMM;
    break;
  default: break;
  }
  if (!c->kernels_ok) return -1;
  gg_kx_arg stack[16], *a = stack;
  int nt = n->n_in + n->n_out, ok;
  if (nt > 16 && !(a = calloc((size_t)nt, sizeof *a))) return -1;
  for (int k = 0; k < nt; k++)
    a[k] = (gg_kx_arg){&vals[k < n->n_in ? n->in[k] : n->out[k - n->n_in]], NULL, 0};
  ok = gg__kx_supports(n, a, a + n->n_in, NULL);
  for (int k = 0; ok && k < n->n_in; k++)
    if (gg__kx_param_input(n, k) && !a[k].v->data) ok = 0;
  if (a != stack) free(a);
  return ok ? P_KX : -1;
}

static int cu_supports(gg_backend *be, const gg_node *n, const gg_tval *vals) {
  return node_path(be->ctx, n, vals) >= 0;
}

/* ---- buffers: pool blocks, copies through pinned staging ------------------ */

static int pinned_alloc(void *ctx, size_t size, void **out) {
  cu_be *c = ctx;
  char err[256];
  int rc = push(c, NULL, err, sizeof err);
  if (rc) return rc;
  CUresult r = c->a->cuMemHostAlloc(out, size, 0);
  pop(c);
  return r ? cu_fail(NULL, r, "cuMemHostAlloc (pinned staging)", err, sizeof err) : 0;
}

static void pinned_free(void *ctx, void *p) {
  cu_be *c = ctx;
  char err[64];
  if (push(c, NULL, err, sizeof err)) return;
  c->a->cuMemFreeHost(p);
  pop(c);
}

static const gg_pinned_i k_pinned = {pinned_alloc, pinned_free, NULL};

static void graph_io(cu_be *c);

static void buf_free(gg_backend_buffer *b) {
  gg_block_free(b->block);
  free(b);
}

/* dir 0: n bytes from host to device address d; 1: back. Through pinned
 * staging, on the backend's stream, so a copy is ordered with the kernels
 * (a synchronous cuMemcpy would run on the legacy stream, which a
 * non-blocking stream does not wait for). Returns when it is done. */
static int dev_copy(cu_be *c, CUdeviceptr d, void *host, size_t n, int dir) {
  char err[512];
  int rc = 0;
  while (!rc && n) {
    size_t k = n < STAGING_CHUNK ? n : STAGING_CHUNK;
    void *pin = NULL;
    if ((rc = gg_staging_acquire(c->staging, k, &pin))) break;
    if (dir == 0) memcpy(pin, host, k);
    if (!(rc = push(c, NULL, err, sizeof err))) {
      CUresult r = dir == 0 ? c->a->cuMemcpyHtoDAsync(d, pin, k, c->stream)
                            : c->a->cuMemcpyDtoHAsync(pin, d, k, c->stream);
      /* the stream runs the copy after the work queued before it; waiting
       * here frees the staging buffer (and, downloading, fills host) */
      if (!r) r = c->a->cuStreamSynchronize(c->stream);
      pop(c);
      if (r)
        rc =
            cu_fail(NULL, r, dir == 0 ? "cuMemcpyHtoDAsync" : "cuMemcpyDtoHAsync", err, sizeof err);
    }
    if (!rc && dir == 1) memcpy(host, pin, k);
    gg_staging_release(c->staging, pin);
    host = (char *)host + k, d += k, n -= k;
  }
  return rc;
}

/* dir 0: upload host to the buffer at off; 1: download. */
static int buf_copy(gg_backend_buffer *b, uint64_t off, void *host, size_t n, int dir) {
  cu_be *c = b->backend->ctx;
  if (off > b->size || n > b->size - off) return GG_ERANGE;
  int rc = check_reset(c, NULL);
  if (rc) return rc;
  graph_io(c);
  return dev_copy(c,
                  (CUdeviceptr)(uintptr_t)gg_block_devmem(b->block)->handle +
                      gg_block_offset(b->block) + off,
                  host, n, dir);
}

static int buf_set(gg_backend_buffer *b, uint64_t off, const void *src, size_t n) {
  return buf_copy(b, off, (void *)(uintptr_t)src, n, 0);
}

static int buf_get(gg_backend_buffer *b, uint64_t off, void *dst, size_t n) {
  return buf_copy(b, off, dst, n, 1);
}

static const gg_backend_buffer_i k_buf = {buf_free, NULL, buf_set, buf_get};

static int cu_buffer_alloc(gg_backend *be, uint64_t size, const char *owner,
                           gg_backend_buffer **out) {
  cu_be *c = be->ctx;
  *out = NULL;
  gg_backend_buffer *b = calloc(1, sizeof *b);
  if (!b) return GG_ENOMEM;
  int rc = gg_pool_alloc(c->pool, (size_t)(size ? size : 1), owner, &b->block);
  if (rc) {
    free(b);
    return rc;
  }
  b->iface = &k_buf, b->backend = be, b->size = size;
  *out = b;
  return 0;
}

static uint64_t cu_alloc_bytes(gg_backend *be, uint64_t size) {
  (void)be;
  return gg_backend_pool_bytes(size);
}

/* ---- the shared scratch ------------------------------------------------------ */

/* Grows the scratch to `need` bytes as the OpenCL backend's grow_workspace
 * does: the old block is given back before the larger one is taken, so the
 * pool never holds both; *workspace gets the bytes the pool counts more than
 * before (modulo 2^64), so a session's prediction sums to the block it ends
 * with. Returns 0 (grown or large enough), GG_EDEV_OOM / GG_EBUDGET when
 * the pool refused (the old size is taken back), or another pool error. */
static int grow_scratch(cu_be *c, const gg_node *n, uint64_t need, uint64_t *workspace) {
  uint64_t have = c->ws ? c->ws_need : 0;
  if (need <= have) return 0;
  if (c->ws_refused && need >= c->ws_refused) return GG_EDEV_OOM;
  uint64_t before = c->ws ? gg_block_capacity(c->ws) : 0;
  gg_block *b = NULL;
  gg_block_free(c->ws);
  c->ws = NULL, c->ws_need = 0;
  int rc = gg_pool_alloc(c->pool, (size_t)need, "engine/cuda-workspace", &b), refused = 0;
  if (rc == GG_EDEV_OOM || rc == GG_EBUDGET) {
    refused = rc;
    c->ws_refused = need;
    GG_INFO("GPU", "node '%s' (%s): no room for a %llu-byte workspace on %s; it keeps %llu bytes",
            nname(n), nop(n), (unsigned long long)need, gg_device_name(c->dev),
            (unsigned long long)have);
    need = have;
    rc = have ? gg_pool_alloc(c->pool, (size_t)have, "engine/cuda-workspace", &b) : 0;
  }
  if (rc) return rc;
  if (workspace) *workspace += (b ? gg_block_capacity(b) : 0) - before;
  c->ws = b, c->ws_need = b ? need : 0;
  return refused;
}

static void *scratch_ptr(cu_be *c) {
  if (!c->ws) return NULL;
  return (char *)gg_block_devmem(c->ws)->handle + gg_block_offset(c->ws);
}

/* ---- cuDNN descriptors ----------------------------------------------------- */

static void node_free(cu_be *c, cu_node *s) {
  if (!s) return;
  if (c && c->a) {
    if (s->xd) c->a->cudnnDestroyTensorDescriptor(s->xd);
    if (s->yd) c->a->cudnnDestroyTensorDescriptor(s->yd);
    if (s->wd) c->a->cudnnDestroyFilterDescriptor(s->wd);
    if (s->cd) c->a->cudnnDestroyConvolutionDescriptor(s->cd);
    if (s->pd) c->a->cudnnDestroyPoolingDescriptor(s->pd);
  }
  gg_block_free(s->wpack);
  for (int k = 0; s->params && k < s->nt; k++)
    free(s->params[k].data);
  free(s->params);
  free(s->args);
  free(s);
}

#define DNN_CALL(x)                                                                                \
  do {                                                                                             \
    if (!st) {                                                                                     \
      call = #x;                                                                                   \
      st = c->a->x;                                                                                \
    }                                                                                              \
  } while (0)

/* Descriptors of a cuDNN convolution (s->xd, wd, cd, yd). */
static int conv_descs(cu_be *c, const gg_node *n, const geo *g, cu_node *s, char *err,
                      size_t errlen) {
  cudnnStatus_t st = 0;
  const char *call = "";
  DNN_CALL(cudnnCreateTensorDescriptor(&s->xd));
  DNN_CALL(cudnnCreateTensorDescriptor(&s->yd));
  DNN_CALL(cudnnCreateFilterDescriptor(&s->wd));
  DNN_CALL(cudnnCreateConvolutionDescriptor(&s->cd));
  DNN_CALL(cudnnSetTensor4dDescriptor(s->xd, GGDNN_TENSOR_NHWC, GGDNN_DATA_FLOAT, g->B, g->C, g->H,
                                      g->W));
  DNN_CALL(cudnnSetTensor4dDescriptor(s->yd, GGDNN_TENSOR_NHWC, GGDNN_DATA_FLOAT, g->B, g->K, g->OH,
                                      g->OW));
  DNN_CALL(cudnnSetFilter4dDescriptor(s->wd, GGDNN_DATA_FLOAT, GGDNN_TENSOR_NHWC, g->K, g->cg,
                                      g->KH, g->KW));
  DNN_CALL(cudnnSetConvolution2dDescriptor(s->cd, g->ph, g->pw, g->sh, g->sw, g->dh, g->dw,
                                           GGDNN_CROSS_CORRELATION, GGDNN_DATA_FLOAT));
  DNN_CALL(cudnnSetConvolutionGroupCount(s->cd, g->groups));
  /* FMA: no TF32 (results must match the CPU within 1e-3 of the range) */
  DNN_CALL(cudnnSetConvolutionMathType(s->cd, GGDNN_FMA_MATH));
  return st ? dnn_fail(n, st, call, err, errlen) : 0;
}

static const char *algo_name(int id) {
  static const char *const k[] = {
      "implicit_gemm", "implicit_precomp_gemm", "gemm", "direct", "fft", "fft_tiling",
      "winograd",      "winograd_nonfused"};
  return id >= 0 && id < 8 ? k[id] : "cudnn";
}

/* cuDNN's algorithms for a convolution, cached per node (the planner asks
 * several times). NULL when cuDNN has none (then the node has one algorithm,
 * IMPLICIT_GEMM, as prepare finds out). */
static algo_cache *conv_algos(cu_be *c, const gg_node *n, const gg_tval *vals) {
  for (int i = 0; i < c->n_cache; i++)
    if (c->cache[i].n == n) return &c->cache[i];
  geo g;
  if (!conv_geometry(n, vals, &g)) return NULL;
  if (c->n_cache == c->cap_cache) {
    int cap = c->cap_cache ? 2 * c->cap_cache : 32;
    algo_cache *p = realloc(c->cache, (size_t)cap * sizeof *p);
    if (!p) return NULL;
    c->cache = p, c->cap_cache = cap;
  }
  algo_cache *e = &c->cache[c->n_cache];
  memset(e, 0, sizeof *e);
  e->n = n, e->lean = -1;
  cu_node s;
  memset(&s, 0, sizeof s);
  char err[512];
  ggdnn_algo_perf perf[GGDNN_FWD_ALGO_COUNT];
  int np = 0;
  int rc = push(c, n, err, sizeof err);
  if (!rc) {
    rc = conv_descs(c, n, &g, &s, err, sizeof err);
    cudnnStatus_t st = rc ? 0
                          : c->a->cudnnGetConvolutionForwardAlgorithm_v7(
                                c->dnn, s.xd, s.wd, s.cd, s.yd, GGDNN_FWD_ALGO_COUNT, &np, perf);
    if (st) rc = dnn_fail(n, st, "cudnnGetConvolutionForwardAlgorithm_v7", err, sizeof err);
    /* the heuristics' memory is an estimate: the workspace an algorithm
     * needs is what cudnnGetConvolutionForwardWorkspaceSize says */
    for (int i = 0; !rc && i < np && i < GGDNN_FWD_ALGO_COUNT; i++) {
      size_t need = 0;
      if (perf[i].status) continue;
      cudnnStatus_t ws = c->a->cudnnGetConvolutionForwardWorkspaceSize(c->dnn, s.xd, s.wd, s.cd,
                                                                       s.yd, perf[i].algo, &need);
      if (ws)
        perf[i].status = ws;
      else if (need > perf[i].memory)
        perf[i].memory = need;
    }
    if (s.xd) c->a->cudnnDestroyTensorDescriptor(s.xd);
    if (s.yd) c->a->cudnnDestroyTensorDescriptor(s.yd);
    if (s.wd) c->a->cudnnDestroyFilterDescriptor(s.wd);
    if (s.cd) c->a->cudnnDestroyConvolutionDescriptor(s.cd);
    pop(c);
  }
  if (rc) np = 0;
  /* fastest first (cuDNN's order), at most GG_BACKEND_MAX_ALGOS, and the
   * first zero-workspace one always, so that a lean plan exists */
  int zero = -1;
  for (int i = 0; i < np && i < GGDNN_FWD_ALGO_COUNT; i++)
    if (!perf[i].status && perf[i].memory == 0 && zero < 0) zero = i;
  for (int i = 0; i < np && i < GGDNN_FWD_ALGO_COUNT && e->na < GG_BACKEND_MAX_ALGOS; i++) {
    if (perf[i].status) continue;
    if (e->na == GG_BACKEND_MAX_ALGOS - 1 && zero > i && e->lean < 0) i = zero;
    e->id[e->na] = perf[i].algo, e->mem[e->na] = perf[i].memory;
    e->a[e->na] = (gg_backend_algo){algo_name(perf[i].algo),
                                    perf[i].memory ? gg_backend_pool_bytes(perf[i].memory) : 0,
                                    (uint32_t)(e->na + 1)};
    if (!perf[i].memory && e->lean < 0) e->lean = e->na;
    e->na++;
    if (i == zero && e->na == GG_BACKEND_MAX_ALGOS) break;
  }
  e->listed = e->na > 0;
  if (!e->na) { /* nothing listed: IMPLICIT_GEMM, which needs no workspace */
    e->id[0] = GGDNN_FWD_ALGO_IMPLICIT_GEMM, e->mem[0] = 0, e->lean = 0, e->na = 1;
    e->a[0] = (gg_backend_algo){"implicit_gemm", 0, 1};
  }
  c->n_cache++;
  return e;
}

static int cu_algos(gg_backend *be, const gg_node *n, const gg_tval *vals,
                    gg_backend_algo out[GG_BACKEND_MAX_ALGOS]) {
  cu_be *c = be->ctx;
  if (node_path(c, n, vals) != P_CONV) return 0;
  algo_cache *e = conv_algos(c, n, vals);
  if (!e || e->na < 2) return 0;
  memcpy(out, e->a, (size_t)e->na * sizeof *out);
  return e->na;
}

/* ---- prepare -------------------------------------------------------------- */

/* TF's filter (HWIO, or [KH,KW,C,MULT] for depthwise) in cuDNN's NHWC
 * filter layout K,KH,KW,C/groups, uploaded into its own pool block. */
static int pack_filter(cu_be *c, const gg_node *n, const gg_tval *vals, const geo *g, cu_node *s,
                       uint64_t *workspace) {
  const float *w = vals[n->in[1]].data;
  size_t cnt = (size_t)g->K * g->KH * g->KW * g->cg;
  float *p = malloc(cnt * sizeof *p);
  if (!p) return GG_ENOMEM;
  if (n->op == GG_OP_DEPTHWISE) {
    int mult = g->K / g->C;
    for (int ch = 0; ch < g->C; ch++)
      for (int m = 0; m < mult; m++)
        for (int r = 0; r < g->KH; r++)
          for (int q = 0; q < g->KW; q++)
            p[((size_t)(ch * mult + m) * g->KH + r) * g->KW + q] =
                w[(((size_t)r * g->KW + q) * g->C + ch) * mult + m];
  } else {
    for (int k = 0; k < g->K; k++)
      for (int r = 0; r < g->KH; r++)
        for (int q = 0; q < g->KW; q++)
          for (int ci = 0; ci < g->cg; ci++)
            p[(((size_t)k * g->KH + r) * g->KW + q) * g->cg + ci] =
                w[(((size_t)r * g->KW + q) * g->cg + ci) * g->K + k];
  }
  int rc = gg_pool_alloc(c->pool, cnt * sizeof *p, "engine/cuda-filters", &s->wpack);
  if (!rc)
    rc = dev_copy(
        c, (CUdeviceptr)(uintptr_t)gg_block_devmem(s->wpack)->handle + gg_block_offset(s->wpack), p,
        cnt * sizeof *p, 0);
  if (!rc) *workspace += gg_block_capacity(s->wpack);
  free(p);
  return rc;
}

static int prepare_conv(cu_be *c, const gg_node *n, gg_tval *vals, int algo, cu_node *s,
                        uint64_t *workspace) {
  geo g;
  char err[512];
  conv_geometry(n, vals, &g);
  s->co = g.K, s->rows = g.B * g.OH * g.OW;
  int rc = pack_filter(c, n, vals, &g, s, workspace);
  if (!rc && !(rc = push(c, n, err, sizeof err))) {
    rc = conv_descs(c, n, &g, s, err, sizeof err);
    pop(c);
  }
  if (rc) return rc;
  algo_cache *e = conv_algos(c, n, vals);
  if (!e) return GG_ENOMEM;
  if (algo < 0 || algo >= e->na) algo = 0;
  s->algo_id = e->id[algo], s->algo_mem = e->mem[algo];
  s->lean_id = e->lean >= 0 ? e->id[e->lean] : -1;
  if (!s->algo_mem) return 0;
  rc = grow_scratch(c, n, s->algo_mem, workspace);
  if (rc == GG_EDEV_OOM || rc == GG_EBUDGET) {
    if (c->ws_need >= s->algo_mem) return 0;
    if (s->lean_id < 0) {
      GG_ERROR("GPU",
               "node '%s' (%s): cuDNN's algorithm %s needs a %zu-byte workspace the pool "
               "cannot give, and cuDNN lists none without one",
               n->name, n->src_op, algo_name(s->algo_id), s->algo_mem);
      return rc;
    }
    GG_INFO("GPU",
            "node '%s' (%s): no room for the %zu-byte workspace of %s; it runs %s, which "
            "needs none",
            n->name, n->src_op, s->algo_mem, algo_name(s->algo_id), algo_name(s->lean_id));
    g_st[S_PFALLBACK]++;
    s->algo_id = s->lean_id, s->algo_mem = 0;
    rc = 0;
  }
  return rc;
}

static int prepare_pool(cu_be *c, const gg_node *n, gg_tval *vals, cu_node *s) {
  geo g;
  char err[512];
  pool_geometry(n, vals, &g);
  int rc = push(c, n, err, sizeof err);
  if (rc) return rc;
  cudnnStatus_t st = 0;
  const char *call = "";
  DNN_CALL(cudnnCreateTensorDescriptor(&s->xd));
  DNN_CALL(cudnnCreateTensorDescriptor(&s->yd));
  DNN_CALL(cudnnCreatePoolingDescriptor(&s->pd));
  DNN_CALL(
      cudnnSetTensor4dDescriptor(s->xd, GGDNN_TENSOR_NHWC, GGDNN_DATA_FLOAT, g.B, g.C, g.H, g.W));
  DNN_CALL(
      cudnnSetTensor4dDescriptor(s->yd, GGDNN_TENSOR_NHWC, GGDNN_DATA_FLOAT, g.B, g.C, g.OH, g.OW));
  DNN_CALL(cudnnSetPooling2dDescriptor(s->pd, GGDNN_POOLING_MAX, GGDNN_NOT_PROPAGATE_NAN, g.KH,
                                       g.KW, g.ph, g.pw, g.sh, g.sw));
  pop(c);
  return st ? dnn_fail(n, st, call, err, sizeof err) : 0;
}

static int prepare_softmax(cu_be *c, const gg_node *n, gg_tval *vals, cu_node *s) {
  const gg_tval *x = &vals[n->in[0]];
  int C = (int)x->shape[x->ndim - 1], rows = C ? (int)(x->nelem / C) : 0;
  char err[512];
  int rc = push(c, n, err, sizeof err);
  if (rc) return rc;
  cudnnStatus_t st = 0;
  const char *call = "";
  DNN_CALL(cudnnCreateTensorDescriptor(&s->xd));
  DNN_CALL(cudnnSetTensor4dDescriptor(s->xd, GGDNN_TENSOR_NCHW, GGDNN_DATA_FLOAT, rows ? rows : 1,
                                      C ? C : 1, 1, 1));
  pop(c);
  s->rows = rows, s->co = C;
  return st ? dnn_fail(n, st, call, err, sizeof err) : 0;
}

static int cu_prepare_algo(gg_backend *be, const gg_node *n, gg_tval *vals, int algo, void **state,
                           uint64_t *workspace) {
  cu_be *c = be->ctx;
  uint64_t ws = 0;
  int path = node_path(c, n, vals);
  if (path < 0) return GG_EUNSUPPORTED;
  cu_node *s = calloc(1, sizeof *s);
  if (!s) return GG_ENOMEM;
  s->path = path, s->nt = n->n_in + n->n_out, s->lean_id = -1;
  s->args = calloc((size_t)s->nt, sizeof *s->args);
  s->params = calloc((size_t)s->nt, sizeof *s->params);
  int rc = s->args && s->params ? 0 : GG_ENOMEM;
  if (!rc && path == P_KX) rc = gg__kx_copy_params(n, vals, s->params);
  if (!rc && path == P_CONV) rc = prepare_conv(c, n, vals, algo, s, &ws);
  if (!rc && path == P_POOL) rc = prepare_pool(c, n, vals, s);
  if (!rc && path == P_SOFTMAX) rc = prepare_softmax(c, n, vals, s);
  if (rc) {
    node_free(c, s);
    return rc;
  }
  *state = s;
  if (workspace) *workspace = ws;
  return 0;
}

static int cu_prepare(gg_backend *be, const gg_node *n, gg_tval *vals, void **state,
                      uint64_t *workspace) {
  return cu_prepare_algo(be, n, vals, 0, state, workspace);
}

static void cu_release(gg_backend *be, void *state) {
  node_free(be->ctx, state);
}

/* ---- kernels (kx) ---------------------------------------------------------- */

static cu_be *of_kx(gg_kx *x) {
  return (cu_be *)((char *)x - offsetof(cu_be, kx));
}

static int cu_launch(gg_kx *x, const gg_node *n, gg_kx_kernel k, int dims, const size_t *global,
                     const size_t *local, const gg_karg *args, int nargs, char *err,
                     size_t errlen) {
  cu_be *c = of_kx(x);
  if ((int)k < 0 || k >= K_COUNT || !c->fn[k])
    return gg_errf(err, errlen, GG_ENOTIMPL,
                   "node '%s' (%s): kernel %s is not in this build's "
                   "CUDA fatbin",
                   nname(n), nop(n), gg__kx_kernel_name(k) ? gg__kx_kernel_name(k) : "?");
  if (dims < 1 || dims > 3 || nargs > 64) return GG_EINVAL;
  const size_t *l = local ? local : gg__kx_local[dims - 1];
  unsigned grid[3] = {1, 1, 1}, block[3] = {1, 1, 1};
  for (int d = 0; d < dims; d++) {
    if (!global[d]) return 0; /* nothing to do */
    block[d] = (unsigned)l[d];
    grid[d] = (unsigned)((global[d] + l[d] - 1) / l[d]);
  }
  void *params[64];
  for (int i = 0; i < nargs; i++)
    params[i] = (void *)(uintptr_t)args[i].p;
  CUresult r = c->a->cuLaunchKernel(c->fn[k], grid[0], grid[1], grid[2], block[0], block[1],
                                    block[2], 0, c->stream, params, NULL);
  if (r) {
    char call[96];
    snprintf(call, sizeof call, "cuLaunchKernel(%s)", gg__kx_kernel_name(k));
    return cu_fail(n, r, call, err, errlen);
  }
  return 0;
}

/* K_BIAS_ACT over C[M,N] (element offset co): bias, activation, PReLU
 * (kx-ops.c builds the arguments, as for the OpenCL backend). */
static int bias_act(cu_be *c, const gg_node *n, void *cm, uint64_t co, int N, int M, void *bias,
                    uint64_t biaso, int has_bias, void *pa, uint64_t pao, int pan, int act,
                    float alpha, char *err, size_t errlen) {
  if (!has_bias && act == GG_ACT_NONE) return 0;
  gg_kx_gemm_args g = {.c = cm,
                       .bias = bias,
                       .prelu = pa,
                       .co = co,
                       .biaso = biaso,
                       .preluo = pao,
                       .M = M,
                       .N = N,
                       .has_bias = has_bias,
                       .prelu_n = pan,
                       .act = act,
                       .alpha = alpha};
  g_st[S_EPI]++;
  return gg__kx_bias_act(&c->kx, n, &g, err, errlen);
}

static int set_blas_workspace(cu_be *c, const gg_node *n, char *err, size_t errlen) {
  void *p = scratch_ptr(c);
  size_t sz = (size_t)c->ws_need;
  if (c->blas_ws_set && p == c->blas_ws && sz == c->blas_ws_size) return 0;
  cublasStatus_t st = c->a->cublasSetWorkspace(c->blas, p, sz);
  if (st) return blas_fail(n, st, "cublasSetWorkspace_v2", err, errlen);
  c->blas_ws = p, c->blas_ws_size = sz, c->blas_ws_set = 1;
  return 0;
}

/* Row-major C[M,N] = op(A) op(B) as the column-major C^T = op(B)^T op(A)^T,
 * then the epilogue. */
/* Without cuBLAS: the shared tiled GEMM kernel (kernels.cl's gg_gemm, the
 * OpenCL backend's own GEMM), with the epilogue fused. */
static int own_gemm(cu_be *c, const gg_node *n, const gg_kx_gemm_args *g, char *err,
                    size_t errlen) {
  g_st[S_OWN_GEMM]++;
  return gg__kx_gemm_kernel(&c->kx, n, g, err, errlen);
}

static int cu_gemm(gg_kx *x, const gg_node *n, const gg_kx_gemm_args *g, char *err, size_t errlen) {
  cu_be *c = of_kx(x);
  if (!c->blas) return own_gemm(c, n, g, err, errlen);
  int rc = set_blas_workspace(c, n, err, errlen);
  if (rc) return rc;
  const float one = 1.0f, zero = 0.0f;
  const float *A = (const float *)g->a + g->ao, *B = (const float *)g->b + g->bo;
  float *C = (float *)g->c + g->co;
  g_st[S_GEMM]++;
  cublasStatus_t st = c->a->cublasSgemm(c->blas, g->tb ? GGBLAS_OP_T : GGBLAS_OP_N,
                                        g->ta ? GGBLAS_OP_T : GGBLAS_OP_N, g->N, g->M, g->K, &one,
                                        B, g->ldb, A, g->lda, &zero, C, g->N);
  if (st) return blas_fail(n, st, "cublasSgemm_v2", err, errlen);
  return bias_act(c, n, g->c, g->co, g->N, g->M, g->bias, g->biaso, g->has_bias, g->prelu,
                  g->preluo, g->prelu_n, g->act, g->alpha, err, errlen);
}

/* ---- run ---------------------------------------------------------------------- */

static int run_conv(cu_be *c, const gg_node *n, gg_tval *vals, cu_node *s, char *err,
                    size_t errlen) {
  const float one = 1.0f, zero = 0.0f;
  void *x = dptr(&vals[n->in[0]]), *y = dptr(&vals[n->out[0]]);
  void *w = (char *)gg_block_devmem(s->wpack)->handle + gg_block_offset(s->wpack);
  if (!x || !y) return GG_ESTATE;
  g_st[S_CONV]++;
  for (;;) {
    size_t wsz = s->algo_mem ? (size_t)c->ws_need : 0;
    cudnnStatus_t st =
        c->a->cudnnConvolutionForward(c->dnn, &one, s->xd, x, s->wd, w, s->cd, s->algo_id,
                                      wsz ? scratch_ptr(c) : NULL, wsz, &zero, s->yd, y);
    if (!st) break;
    if (gg_classify_cudnn(st) == GG_FAIL_OOM && s->lean_id >= 0 && s->algo_id != s->lean_id) {
      /* cuDNN could not get the memory it wanted beyond our workspace:
       * the zero-workspace algorithm from now on, and this run goes on */
      GG_WARN("GPU",
              "node '%s' (%s): cudnnConvolutionForward (%s): %s; it runs %s (no "
              "workspace) from now on",
              n->name, n->src_op, algo_name(s->algo_id), gg_cudnn_status_name(st),
              algo_name(s->lean_id));
      s->algo_id = s->lean_id, s->algo_mem = 0, s->fell_back = 1;
      g_st[S_FALLBACK]++;
      continue;
    }
    return dnn_fail(n, st, "cudnnConvolutionForward", err, errlen);
  }
  if (!epilogue(n)) return 0;
  int has_bias = n->a.has_bias, pan = 0;
  void *bm = NULL, *pm = NULL;
  uint64_t bo = 0, po = 0, yo = 0;
  void *ym = NULL;
  locate(&vals[n->out[0]], &ym, &yo);
  if (has_bias && locate(&vals[n->in[2]], &bm, &bo)) return GG_ESTATE;
  if (n->a.act == GG_ACT_PRELU) {
    const gg_tval *pv = &vals[n->in[2 + has_bias]];
    if (locate(pv, &pm, &po)) return GG_ESTATE;
    pan = (int)pv->nelem;
  }
  return bias_act(c, n, ym, yo / 4, s->co, s->rows, bm, bo / 4, has_bias, pm, po / 4, pan, n->a.act,
                  n->a.alpha, err, errlen);
}

static int run_kx(cu_be *c, const gg_node *n, gg_tval *vals, cu_node *s, char *err, size_t errlen) {
  for (int k = 0; k < s->nt; k++) {
    int is_in = k < n->n_in;
    const gg_tval *t = &vals[is_in ? n->in[k] : n->out[k - n->n_in]];
    s->args[k].v = t;
    if (is_in && s->params[k].data) {
      s->args[k].v = &s->params[k];
      continue;
    }
    if (t->nelem && locate(t, &s->args[k].mem, &s->args[k].off)) {
      GG_ERROR("GPU", "node '%s' (%s): tensor %d is not in %s memory (scheduler bug)", n->name,
               n->src_op, k, gg_device_name(c->dev));
      return GG_ESTATE;
    }
  }
  g_st[S_KX]++;
  return gg__kx_run(&c->kx, "cuda", n, s->args, s->args + n->n_in, err, errlen);
}

static int run_work(cu_be *c, const gg_node *n, gg_tval *vals, cu_node *s, char *err,
                    size_t errlen) {
  const float one = 1.0f, zero = 0.0f;
  switch (s->path) {
  case P_CONV: return run_conv(c, n, vals, s, err, errlen);
  case P_POOL: {
    void *x = dptr(&vals[n->in[0]]), *y = dptr(&vals[n->out[0]]);
    if (!x || !y) return GG_ESTATE;
    g_st[S_POOL]++;
    cudnnStatus_t st = c->a->cudnnPoolingForward(c->dnn, s->pd, &one, s->xd, x, &zero, s->yd, y);
    return st ? dnn_fail(n, st, "cudnnPoolingForward", err, errlen) : 0;
  }
  case P_SOFTMAX: {
    void *x = dptr(&vals[n->in[0]]), *y = dptr(&vals[n->out[0]]);
    if (!x || !y) return GG_ESTATE;
    if (!s->rows) return 0;
    g_st[S_SOFTMAX]++;
    cudnnStatus_t st =
        c->a->cudnnSoftmaxForward(c->dnn, GGDNN_SOFTMAX_ACCURATE, GGDNN_SOFTMAX_MODE_CHANNEL, &one,
                                  s->xd, x, &zero, s->xd, y);
    return st ? dnn_fail(n, st, "cudnnSoftmaxForward", err, errlen) : 0;
  }
  case P_GEMM: {
    const gg_tval *A = &vals[n->in[0]], *Bt = &vals[n->in[1]], *y = &vals[n->out[0]];
    gg_kx_gemm_args g;
    memset(&g, 0, sizeof g);
    if (locate(A, &g.a, &g.ao) || locate(Bt, &g.b, &g.bo) || locate(y, &g.c, &g.co))
      return GG_ESTATE;
    g.ao /= 4, g.bo /= 4, g.co /= 4;
    g.has_bias = n->a.has_bias, g.act = n->a.act, g.alpha = n->a.alpha;
    if (g.has_bias && locate(&vals[n->in[2]], &g.bias, &g.biaso)) return GG_ESTATE;
    g.biaso /= 4;
    if (g.act == GG_ACT_PRELU) {
      if (locate(&vals[n->in[2 + g.has_bias]], &g.prelu, &g.preluo)) return GG_ESTATE;
      g.preluo /= 4, g.prelu_n = (int)vals[n->in[2 + g.has_bias]].nelem;
    }
    g.lda = (int)A->shape[1], g.ldb = (int)Bt->shape[1];
    g.ta = n->a.transpose_a, g.tb = n->a.transpose_b;
    g.M = (int)y->shape[0], g.N = (int)y->shape[1];
    g.K = (int)(g.ta ? A->shape[0] : A->shape[1]);
    if (!g.M || !g.N) return 0;
    return cu_gemm(&c->kx, n, &g, err, errlen);
  }
  default: return run_kx(c, n, vals, s, err, errlen);
  }
}

/* ---- CUDA graphs -----------------------------------------------------------
 *
 * States: G_FIRST (an eager run, timed, records the node sequence and where
 * uploads/downloads cut it into segments) -> G_CAPTURE (each segment is
 * captured, instantiated and launched) -> G_TRIAL (the graphs replayed,
 * timed) -> G_REPLAY when the graphs were faster (or GPUGUARD_CUDA_GRAPH=1),
 * else G_EAGER for good. A run that differs from the recorded one, a failed
 * capture or a failed node sends the backend to G_EAGER. A segment's graph
 * is launched when the run reaches its first node, so an upload between
 * segments (a copy step) lands before the graph that reads it, and a
 * download (which waits for the stream) sees everything before it. */

static void graph_drop(cu_be *c) {
  for (int i = 0; c->execs && i < c->nseg; i++)
    if (c->execs[i]) c->a->cuGraphExecDestroy(c->execs[i]);
  c->nseg = 0;
}

static int run_work(cu_be *c, const gg_node *n, gg_tval *vals, cu_node *s, char *err,
                    size_t errlen);

/* Runs the nodes of the segment being captured, up to position `upto`,
 * again without capture: capturing recorded them but executed nothing. */
static int rerun_segment(cu_be *c, int upto) {
  char err[1024];
  int rc = 0;
  for (int i = c->seg_first; !rc && i < upto && i < c->nseq; i++)
    rc = run_work(c, c->seq[i], c->gvals, c->sstate[i], err, sizeof err);
  return rc;
}

/* Gives graphs up for this backend (eager from now on). An open capture is
 * ended and thrown away; with `rerun`, the nodes it recorded in this run
 * are run again eagerly, so the run's results stay right. */
static int capture_abort(cu_be *c, const gg_node *n, const char *why, int rerun) {
  int rc = 0;
  (void)n;
  if (c->capturing) {
    CUgraph g = NULL;
    c->a->cuStreamEndCapture(c->stream, &g);
    if (g) c->a->cuGraphDestroy(g);
    c->capturing = 0;
    if (rerun) rc = rerun_segment(c, c->pos);
  }
  graph_drop(c);
  GG_INFO("GPU", "%s: no CUDA graph for this session: %s", gg_device_name(c->dev), why);
  g_st[S_ABORT]++;
  c->gstate = G_EAGER;
  g_last_mode = c->gstate;
  return rc;
}

/* An upload or download. Between nodes it cuts the run into segments; a
 * capture cannot hold one (it waits for the stream), so one in the middle
 * of a segment being captured ends graphs for this session. */
static void graph_io(cu_be *c) {
  if (!c->in_run) return;
  c->io_since_node = 1;
  if (c->gstate == G_CAPTURE && c->capturing) {
    char err[64];
    if (!push(c, NULL, err, sizeof err)) {
      capture_abort(c, NULL, "an upload or download in the middle of a captured segment", 1);
      pop(c);
    }
  }
}

static int grow_seq(cu_be *c) {
  if (c->nseq < c->capseq) return 0;
  int cap = c->capseq ? 2 * c->capseq : 64;
  const gg_node **p = realloc(c->seq, (size_t)cap * sizeof *p);
  if (p) c->seq = p;
  unsigned char *q = p ? realloc(c->segstart, (size_t)cap) : NULL;
  if (q) c->segstart = q;
  CUgraphExec *e = q ? realloc(c->execs, (size_t)cap * sizeof *e) : NULL;
  if (e) c->execs = e;
  cu_node **st = e ? realloc(c->sstate, (size_t)cap * sizeof *st) : NULL;
  if (st) c->sstate = st;
  if (!st) return GG_ENOMEM;
  c->capseq = cap;
  return 0;
}

/* Before node n's work (pushed). *skip: a replayed graph does it. */
static int graph_before(cu_be *c, const gg_node *n, gg_tval *vals, cu_node *s, int *skip, char *err,
                        size_t errlen) {
  *skip = 0;
  if (!c->in_run) {
    c->in_run = 1, c->pos = 0, c->seg = 0, c->io_since_node = 0, c->run_state = c->gstate;
    if (c->gstate == G_FIRST) c->nseq = 0;
    if (c->gstate == G_FIRST || c->gstate == G_CAPTURE || c->gstate == G_TRIAL)
      c->a->cuEventRecord(c->ev0, c->stream);
  }
  if (c->gstate == G_OFF || c->gstate == G_EAGER) return 0;
  int opens = c->pos == 0 || c->io_since_node;
  c->io_since_node = 0;
  if (c->gstate == G_FIRST) {
    if (grow_seq(c)) return capture_abort(c, n, "out of host memory", 0);
    c->segstart[c->nseq] = (unsigned char)opens;
    c->sstate[c->nseq] = s;
    c->seq[c->nseq++] = n;
    c->gvals = vals;
    return 0;
  }
  if (c->pos >= c->nseq || c->seq[c->pos] != n || c->segstart[c->pos] != opens ||
      vals != c->gvals || s != c->sstate[c->pos])
    return capture_abort(c, n, "the run differs from the one recorded", 1);
  if (c->gstate == G_CAPTURE) {
    if (!opens) return 0;
    CUresult r = c->a->cuStreamBeginCapture(c->stream, GGCU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
    if (r) {
      GG_WARN("GPU", "node '%s' (%s): cuStreamBeginCapture_v2: %s", n->name, n->src_op,
              gg__cu_error_name(r));
      return capture_abort(c, n, "the driver refused to capture", 0);
    }
    c->capturing = 1, c->seg_first = c->pos;
    return 0;
  }
  /* G_TRIAL, G_REPLAY: the segment's graph runs its nodes */
  *skip = 1;
  if (!opens) return 0;
  if (c->seg >= c->nseg) return capture_abort(c, n, "more segments than graphs", 0);
  CUresult r = c->a->cuGraphLaunch(c->execs[c->seg++], c->stream);
  if (r) return cu_fail(n, r, "cuGraphLaunch", err, errlen);
  return 0;
}

/* After node n's work (pushed): a captured segment ends at its last node;
 * its graph is instantiated and launched (capturing executed nothing). */
static int graph_after(cu_be *c, const gg_node *n, char *err, size_t errlen) {
  if (c->gstate == G_OFF || c->gstate == G_EAGER || !c->in_run) return 0;
  c->pos++;
  if (c->gstate != G_CAPTURE || !c->capturing) return 0;
  if (c->pos < c->nseq && !c->segstart[c->pos]) return 0;
  CUgraph g = NULL;
  CUgraphExec e = NULL;
  CUresult r = c->a->cuStreamEndCapture(c->stream, &g);
  c->capturing = 0;
  if (!r) r = c->a->cuGraphInstantiateWithFlags(&e, g, 0);
  if (g) c->a->cuGraphDestroy(g);
  if (!r) c->execs[c->nseg++] = e, e = NULL;
  if (!r) r = c->a->cuGraphLaunch(c->execs[c->nseg - 1], c->stream);
  if (e) c->a->cuGraphExecDestroy(e);
  if (r) {
    /* (a library allocating inside the capture invalidates it): this
     * segment runs again eagerly, and graphs are off for the session */
    GG_WARN("GPU",
            "node '%s' (%s): capturing a CUDA graph failed: %s; eager launches from now "
            "on",
            n->name, n->src_op, gg__cu_error_name(r));
    int rc = rerun_segment(c, c->pos);
    capture_abort(c, n, "the capture failed", 0);
    return rc;
  }
  return 0;
}

static int cu_run(gg_backend *be, const gg_node *n, gg_tval *vals, void *state) {
  cu_be *c = be->ctx;
  cu_node *s = state;
  char err[1024];
  int rc = check_reset(c, n), skip = 0;
  if (rc) return rc;
  if (!s) return GG_ESTATE;
  if ((rc = push(c, n, err, sizeof err))) return rc;
  rc = graph_before(c, n, vals, s, &skip, err, sizeof err);
  if (!rc && !skip) rc = run_work(c, n, vals, s, err, sizeof err);
  if (!rc) rc = graph_after(c, n, err, sizeof err);
  if (rc && c->gstate != G_OFF && c->gstate != G_EAGER) {
    capture_abort(c, n, "a node failed", 0);
    c->in_run = 0;
  }
  pop(c);
  if (rc && err[0]) GG_DEBUG("GPU", "%s", err);
  return rc;
}

static float elapsed(cu_be *c) {
  float ms = 0;
  if (c->a->cuEventSynchronize(c->ev1) || c->a->cuEventElapsedTime(&ms, c->ev0, c->ev1)) ms = 0;
  return ms;
}

static int cu_sync(gg_backend *be) {
  cu_be *c = be->ctx;
  char err[512];
  int rc = check_reset(c, NULL);
  if (rc) return rc;
  if ((rc = push(c, NULL, err, sizeof err))) return rc;
  int was = c->in_run ? c->run_state : -1;
  if (c->capturing) capture_abort(c, NULL, "the run ended inside a captured segment", 1);
  if (was == G_FIRST || was == G_TRIAL) c->a->cuEventRecord(c->ev1, c->stream);
  CUresult r = c->a->cuStreamSynchronize(c->stream);
  if (r) rc = cu_fail(NULL, r, "cuStreamSynchronize", err, sizeof err);
  if (!rc && (was == G_FIRST || was == G_EAGER || was == G_OFF)) g_st[S_EAGER]++;
  if (!rc && was >= 0 && was != c->gstate) was = -1; /* graphs were given up during the run */
  int graphed = was == G_CAPTURE || was == G_TRIAL || was == G_REPLAY;
  if (!rc && graphed && c->pos != c->nseq) {
    capture_abort(c, NULL, "the run differs from the one recorded", 0);
  } else if (!rc && was == G_FIRST) {
    c->eager_ms = elapsed(c);
    c->gstate = c->gforce == 0 ? G_OFF : c->nseq ? G_CAPTURE : G_EAGER;
  } else if (!rc && was == G_CAPTURE) {
    g_st[S_CAPT]++;
    g_st[S_GRAPH]++;
    c->gstate = G_TRIAL;
  } else if (!rc && was == G_TRIAL) {
    c->graph_ms = elapsed(c);
    g_st[S_GRAPH]++;
    if (c->gforce == 1 || c->graph_ms <= c->eager_ms) {
      c->gstate = G_REPLAY;
      GG_INFO("GPU",
              "%s: %d CUDA graph(s) for %d nodes replay each run (graphs %.3f ms, "
              "eager %.3f ms)",
              gg_device_name(c->dev), c->nseg, c->nseq, (double)c->graph_ms, (double)c->eager_ms);
    } else {
      graph_drop(c);
      c->gstate = G_EAGER;
      GG_INFO("GPU",
              "%s: eager launches are faster than CUDA graphs (%.3f vs %.3f ms); no "
              "graphs",
              gg_device_name(c->dev), (double)c->eager_ms, (double)c->graph_ms);
    }
  } else if (!rc && was == G_REPLAY) {
    g_st[S_GRAPH]++;
  }
  c->in_run = 0;
  g_last_mode = c->gstate;
  pop(c);
  return rc;
}

/* ---- lifetime -------------------------------------------------------------- */

static void cu_free(gg_backend *be) {
  cu_be *c = be->ctx;
  char err[64];
  /* After a device reset the driver objects (stream, events, module,
   * graphs) died with the context: they are left alone. The cuDNN and
   * cuBLAS handles are the libraries' host objects: they are destroyed
   * either way (their device memory went with the context; an error from
   * that is ignored). */
  int same = c->a && c->ctx && same_context(c);
  int pushed = c->a && c->ctx && push(c, NULL, err, sizeof err) == 0;
  if (pushed && same) {
    if (c->capturing) capture_abort(c, NULL, "the backend is freed", 0);
    graph_drop(c);
    if (c->ev0) c->a->cuEventDestroy(c->ev0);
    if (c->ev1) c->a->cuEventDestroy(c->ev1);
    if (c->module) c->a->cuModuleUnload(c->module);
    if (c->stream) c->a->cuStreamSynchronize(c->stream);
  }
  if (pushed) {
    if (c->blas) c->a->cublasDestroy(c->blas);
    if (c->dnn) c->a->cudnnDestroy(c->dnn);
    if (same && c->stream) c->a->cuStreamDestroy(c->stream);
    pop(c);
  }
  gg_staging_free(c->staging);
  gg_block_free(c->ws);
  free(c->cache);
  free(c->seq);
  free(c->segstart);
  free(c->execs);
  free(c->sstate);
  free(c);
  free(be);
}

static const gg_backend_i k_cu = {
    .name = "cuda",
    .supports_node = cu_supports,
    .buffer_alloc = cu_buffer_alloc,
    .alloc_bytes = cu_alloc_bytes,
    .device_workspace = 1,
    .prepare = cu_prepare,
    .algos = cu_algos,
    .prepare_algo = cu_prepare_algo,
    .release = cu_release,
    .run_node = cu_run,
    .synchronize = cu_sync,
    .free = cu_free,
};

static void load_kernels(cu_be *c) {
#if GG_CU_HAVE_FATBIN
  if (GG_CU_KERNELS_FATBIN_SIZE == 0) return;
  CUresult r = c->a->cuModuleLoadData(&c->module, gg_cu_kernels_fatbin);
  if (r) {
    GG_WARN("GPU",
            "%s: cuModuleLoadData (gpuguard's kernels): %s; only the cuDNN/cuBLAS ops "
            "run on the device",
            gg_device_name(c->dev), gg__cu_error_name(r));
    c->module = NULL;
    return;
  }
  for (int k = 0; k < K_COUNT; k++) {
    r = c->a->cuModuleGetFunction(&c->fn[k], c->module, gg__kx_kernel_name(k));
    if (r) {
      GG_WARN("GPU", "%s: kernel %s not in the fatbin: %s", gg_device_name(c->dev),
              gg__kx_kernel_name(k), gg__cu_error_name(r));
      return;
    }
  }
  c->kernels_ok = 1;
#else
  GG_INFO("GPU",
          "%s: this build has no CUDA kernels (nvcc was not found at build time): only "
          "the cuDNN/cuBLAS ops run on the device",
          gg_device_name(c->dev));
#endif
}

static int cu_init(const gg_backend_params *p, gg_backend **out, char *err, size_t errlen) {
  gg__cu_handles h;
  if (!p->dev || !p->pool || gg__cuda_handles(p->dev, &h)) {
    snprintf(err, errlen,
             "the cuda backend computes on cuda:N devices only (open one and pass "
             "it with its memory pool)");
    return GG_EUNSUPPORTED;
  }
  char missing[700] = "";
  const gg__cu_api *a = gg__cu_api_get(p->dev, missing, sizeof missing);
  if (!a) {
    snprintf(err, errlen, "%s", missing);
    return GG_ENOTIMPL;
  }
  gg_backend *be = calloc(1, sizeof *be);
  cu_be *c = calloc(1, sizeof *c);
  if (!be || !c) {
    free(be), free(c);
    return GG_ENOMEM;
  }
  c->dev = p->dev, c->pool = p->pool, c->a = a, c->ctx = h.context, c->reset_gen = h.reset_gen;
  c->kx.launch = cu_launch, c->kx.gemm = cu_gemm;
  const char *gv = getenv("GPUGUARD_CUDA_GRAPH");
  c->gforce = gv && *gv == '0' ? 0 : gv && *gv == '1' ? 1 : -1;
  c->gstate = c->gforce == 0 ? G_OFF : G_FIRST;
  be->iface = &k_cu, be->ctx = c, be->dev = p->dev;
  int rc = push(c, NULL, err, errlen);
  if (rc) {
    free(c), free(be);
    return rc;
  }
  CUresult r = a->cuStreamCreate(&c->stream, GGCU_STREAM_NON_BLOCKING);
  const char *call = "cuStreamCreate";
  if (!r) r = a->cuEventCreate(&c->ev0, GGCU_EVENT_DEFAULT), call = "cuEventCreate";
  if (!r) r = a->cuEventCreate(&c->ev1, GGCU_EVENT_DEFAULT);
  if (r) rc = cu_fail(NULL, r, call, err, errlen);
  cudnnStatus_t ds = rc || !a->have_dnn ? 0 : a->cudnnCreate(&c->dnn);
  if (!ds && !rc && c->dnn) ds = a->cudnnSetStream(c->dnn, c->stream);
  if (ds) rc = dnn_fail(NULL, ds, "cudnnCreate", err, errlen);
  cublasStatus_t bs = rc || !a->have_blas ? 0 : a->cublasCreate(&c->blas);
  if (!bs && !rc && c->blas) bs = a->cublasSetStream(c->blas, c->stream);
  if (!bs && !rc && c->blas) bs = a->cublasSetMathMode(c->blas, GGBLAS_PEDANTIC_MATH);
  /* no workspace until the scratch exists: cuBLAS allocates none of its own */
  if (!bs && !rc && c->blas) bs = a->cublasSetWorkspace(c->blas, NULL, 0);
  if (bs) rc = blas_fail(NULL, bs, "cublasCreate_v2", err, errlen);
  if (!rc) c->blas_ws_set = 1;
  if (!rc) load_kernels(c);
  pop(c);
  /* A broken CUDA install (no cuDNN, no cuBLAS) still computes on the
   * device through gpuguard's own kernels, slower; only with neither the
   * libraries nor the kernels is there nothing to run. */
  if (!rc && !c->kernels_ok && (!c->dnn || !c->blas)) {
    snprintf(err, errlen, "%s%sthis build has no CUDA kernels to run without them", missing,
             missing[0] ? "; " : "");
    rc = GG_ENOTIMPL;
  } else if (!rc && missing[0]) {
    static _Atomic int warned;
    if (!warned++)
      GG_WARN("GPU",
              "%s: %s; %s run on gpuguard's own CUDA kernels (slower). 'gpuguard doctor' "
              "says how to install the missing library",
              gg_device_name(c->dev), missing,
              !c->dnn && !c->blas ? "convolutions, pooling, softmax and matrix products"
              : !c->dnn           ? "convolutions, pooling and softmax"
                                  : "matrix products");
  }
  if (!rc && !(c->staging = gg_staging_new(&k_pinned, c, (size_t)16 << 20))) rc = GG_ENOMEM;
  if (rc) {
    cu_free(be);
    return rc;
  }
  *out = be;
  return 0;
}

static const gg_backend_reg k_reg = {"cuda", GG_DEVICE_CUDA, cu_init};

/* Referenced by the link option in cmake/cuda-backend.cmake so that a
 * static link keeps this object (and its constructor). */
const gg_backend_reg *gg__backend_cuda_anchor(void);
const gg_backend_reg *gg__backend_cuda_anchor(void) {
  return &k_reg;
}

__attribute__((constructor)) static void cu_register(void) {
  int rc = gg_backend_register(&k_reg);
  if (rc) GG_WARN("ENG", "the cuda backend could not register: %s", gg_err_name(rc));
}
