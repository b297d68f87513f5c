/* The "opencl" engine backend (src/engine/backend.h) over this folder's
 * kernels: nodes run as OpenCL launches on tensors that live in the device's
 * gg_pool (the arena and the weights buffer the scheduler plans), one queue
 * per device. Registered at load time (a constructor; the link option in
 * cmake/opencl-backend.cmake keeps this object in every executable even
 * though nothing calls it by name). */
#include "backend/opencl/ocl.h"
#include "device/device-impl.h"
#include "engine/backend.h"
#include "gpuguard/device.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "gpuguard/memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ocl_be {
  gg_device *dev;
  gg_pool *pool;
  gg_ocl *o;
  void *context; /* the device's context when prepared: a reset replaces it */
  gg_block *ws;  /* im2col scratch shared by the session's convolutions */
  uint64_t ws_need;    /* bytes of it the kernels use */
  uint64_t ws_refused; /* smallest scratch size the pool refused (0: none) */
} ocl_be;

/* Per node: where each tensor lives (resolved at run) and host copies of the
 * small parameter constants the kernels' geometry comes from. */
typedef struct ocl_node {
  int nt;
  int direct;         /* the plan chose the direct convolution (no scratch) */
  gg_ocl_arg *args;   /* n_in + n_out */
  gg_tval *params;    /* per input; data != NULL for parameter inputs */
} ocl_node;

static void node_free(ocl_node *s) {
  if (!s) return;
  for (int k = 0; s->params && k < s->nt; k++) free(s->params[k].data);
  free(s->params);
  free(s->args);
  free(s);
}

static int ocl_supports(gg_backend *be, const gg_node *n, const gg_tval *vals) {
  (void)be;
  gg_ocl_arg stack[16] = {{0}}, *a = stack;
  int nt = n->n_in + n->n_out, ok;
  if (nt > 16 && !(a = calloc((size_t)nt, sizeof *a))) return 0;
  for (int k = 0; k < nt; k++) {
    a[k].v = &vals[k < n->n_in ? n->in[k] : n->out[k - n->n_in]];
    a[k].mem = NULL, a[k].off = 0;
  }
  ok = gg__ocl_supports(n, a, a + n->n_in, NULL);
  /* parameters are read on the host: they must be constants known now */
  for (int k = 0; ok && k < n->n_in; k++)
    if (gg__ocl_param_input(n, k) && !a[k].v->data) ok = 0;
  if (a != stack) free(a);
  return ok;
}

static int ocl_buffer_alloc(gg_backend *be, uint64_t size, const char *owner,
                            gg_backend_buffer **out) {
  ocl_be *c = be->ctx;
  return gg_backend_pool_buffer(be, c->pool, size, owner, out);
}

static uint64_t ocl_alloc_bytes(gg_backend *be, uint64_t size) {
  (void)be;
  return gg_backend_pool_bytes(size);
}

/* Convolutions run as im2col + GEMM through one scratch block that grows to
 * the largest chunk a node asks for (gg__ocl_workspace_bytes). The old
 * block is given back before the larger one is taken (no kernel runs while
 * a session is prepared), so the pool never holds both: the scratch the
 * plan predicted is all it needs. *workspace gets the bytes the pool counts
 * more than before (modulo 2^64: a cached block's unsplit tail can make the
 * new capacity the smaller), so the session's prediction sums to the block
 * it ends with. When the pool cannot give a larger block (budget, device
 * memory), the smaller one is taken back: the kernels then take more
 * chunks, or run the direct convolution that needs none. */
static int grow_workspace(ocl_be *c, const gg_node *n, const gg_tval *vals, uint64_t *workspace) {
  gg_ocl_arg a[3] = {{0}};
  if (n->op != GG_OP_CONV2D) return 0;
  a[0].v = &vals[n->in[0]], a[1].v = &vals[n->in[1]], a[2].v = &vals[n->out[0]];
  uint64_t need = gg__ocl_workspace_bytes(n, a, a + 2), have = c->ws ? c->ws_need : 0;
  if (need <= have || (c->ws_refused && need >= c->ws_refused)) return 0;
  uint64_t before = c->ws ? gg_block_capacity(c->ws) : 0;
  gg_block *b = NULL;
  gg__ocl_set_workspace(c->o, NULL, 0, 0);
  gg_block_free(c->ws);
  c->ws = NULL, c->ws_need = 0;
  int rc = gg_pool_alloc(c->pool, (size_t)need, "engine/opencl-im2col", &b);
  if (rc == GG_EDEV_OOM || rc == GG_EBUDGET) {
    c->ws_refused = need; /* asking again for as much would only fail again */
    GG_INFO("GPU", "node '%s' (%s): no room for a %llu-byte im2col scratch on %s; it runs "
                   "with %llu bytes (more chunks or the direct convolution)", n->name, n->src_op,
            (unsigned long long)need, gg_device_name(c->dev), (unsigned long long)have);
    need = have;
    rc = have ? gg_pool_alloc(c->pool, (size_t)have, "engine/opencl-im2col", &b) : 0;
  }
  if (rc) return rc;
  if (workspace) *workspace = (b ? gg_block_capacity(b) : 0) - before;
  c->ws = b, c->ws_need = need;
  if (b) gg__ocl_set_workspace(c->o, gg_block_devmem(b)->handle, gg_block_offset(b), need);
  return 0;
}

/* A convolution that would run as im2col + GEMM has a lean alternative:
 * the direct kernel, which needs no scratch. Its cost (relative run time)
 * is an assumption, not a measurement (GEMM-based convolution is the fast
 * one on GPUs; on PoCL the two were within noise): only its order matters
 * to the planner. Other nodes have one algorithm. */
enum { ALGO_FAST, ALGO_DIRECT };
static int ocl_algos(gg_backend *be, const gg_node *n, const gg_tval *vals,
                     gg_backend_algo out[GG_BACKEND_MAX_ALGOS]) {
  (void)be;
  gg_ocl_arg a[3] = {{0}};
  if (n->op != GG_OP_CONV2D) return 0;
  a[0].v = &vals[n->in[0]], a[1].v = &vals[n->in[1]], a[2].v = &vals[n->out[0]];
  uint64_t need = gg__ocl_workspace_bytes(n, a, a + 2);
  if (!need) return 0;
  out[ALGO_FAST] = (gg_backend_algo){"im2col", gg_backend_pool_bytes(need), 1};
  out[ALGO_DIRECT] = (gg_backend_algo){"direct", 0, 3};
  return 2;
}

static int ocl_prepare_algo(gg_backend *be, const gg_node *n, gg_tval *vals, int algo,
                            void **state, uint64_t *workspace) {
  ocl_node *s = calloc(1, sizeof *s);
  if (!s) return GG_ENOMEM;
  s->nt = n->n_in + n->n_out;
  s->args = calloc((size_t)s->nt, sizeof *s->args);
  s->params = calloc((size_t)s->nt, sizeof *s->params);
  if (!s->args || !s->params) {
    node_free(s);
    return GG_ENOMEM;
  }
  int rc = gg__kx_copy_params(n, vals, s->params);
  if (rc) {
    node_free(s);
    return rc;
  }
  *state = s;
  if (workspace) *workspace = 0;
  s->direct = algo == ALGO_DIRECT;
  return s->direct ? 0 : grow_workspace(be->ctx, n, vals, workspace);
}

static int ocl_prepare(gg_backend *be, const gg_node *n, gg_tval *vals, void **state,
                       uint64_t *workspace) {
  return ocl_prepare_algo(be, n, vals, ALGO_FAST, state, workspace);
}

static void ocl_release(gg_backend *be, void *state) {
  (void)be;
  node_free(state);
}

/* (cl_mem, byte offset) of a tensor in this backend's view. */
static int locate(const gg_tval *t, gg_ocl_arg *a) {
  if (!t->buf || !t->buf->block || !gg_block_devmem(t->buf->block)) return GG_ESTATE;
  a->mem = gg_block_devmem(t->buf->block)->handle;
  a->off = gg_block_offset(t->buf->block) + t->offs;
  return 0;
}

static int ocl_run(gg_backend *be, const gg_node *n, gg_tval *vals, void *state) {
  ocl_be *c = be->ctx;
  ocl_node *s = state;
  char err[1024];
  gg__cl_handles h;
  if (gg__opencl_handles(c->dev, &h) || h.context != c->context) {
    GG_ERROR("GPU", "node '%s' (%s): %s was reset after this session was prepared; prepare "
                    "the session again", n->name, n->src_op, gg_device_name(c->dev));
    return GG_EDEVICE_LOST;
  }
  for (int k = 0; k < s->nt; k++) {
    int is_in = k < n->n_in;
    const gg_tval *t = &vals[is_in ? n->in[k] : n->out[k - n->n_in]];
    s->args[k].v = t;
    if (is_in && s->params[k].data) {
      s->args[k].v = &s->params[k];
      continue;
    }
    if (t->nelem && locate(t, &s->args[k])) {
      GG_ERROR("GPU", "node '%s' (%s): tensor %d is not in %s memory (scheduler bug)", n->name,
               n->src_op, k, gg_device_name(c->dev));
      return GG_ESTATE;
    }
  }
  if (!s->direct || !c->ws) return gg__ocl_run(c->o, n, s->args, s->args + n->n_in, err, sizeof err);
  /* without a scratch the convolution runs the direct kernel (kx-ops.c) */
  gg__ocl_set_workspace(c->o, NULL, 0, 0);
  int rc = gg__ocl_run(c->o, n, s->args, s->args + n->n_in, err, sizeof err);
  gg__ocl_set_workspace(c->o, gg_block_devmem(c->ws)->handle, gg_block_offset(c->ws), c->ws_need);
  return rc;
}

static int ocl_sync(gg_backend *be) {
  ocl_be *c = be->ctx;
  char err[1024];
  return gg__ocl_finish(c->o, err, sizeof err);
}

static void ocl_free(gg_backend *be) {
  ocl_be *c = be->ctx;
  gg__ocl_free(c->o);
  gg_block_free(c->ws);
  free(c);
  free(be);
}

static const gg_backend_i k_ocl = {
    .name = "opencl",
    .supports_node = ocl_supports,
    .buffer_alloc = ocl_buffer_alloc,
    .alloc_bytes = ocl_alloc_bytes,
    .device_workspace = 1,
    .prepare = ocl_prepare,
    .algos = ocl_algos,
    .prepare_algo = ocl_prepare_algo,
    .release = ocl_release,
    .run_node = ocl_run,
    .synchronize = ocl_sync,
    .free = ocl_free,
};

static int ocl_init(const gg_backend_params *p, gg_backend **out, char *err, size_t errlen) {
  gg__cl_handles h;
  if (!p->dev || !p->pool || gg__opencl_handles(p->dev, &h)) {
    snprintf(err, errlen, "the opencl backend computes on opencl:P.D devices only (open one "
                          "and pass it with its memory pool)");
    return GG_EUNSUPPORTED;
  }
  gg_backend *be = calloc(1, sizeof *be);
  ocl_be *c = calloc(1, sizeof *c);
  if (!be || !c) {
    free(be), free(c);
    return GG_ENOMEM;
  }
  const char *sync = getenv("GPUGUARD_OPENCL_SYNC");
  gg_ocl_params op = {.sync_each = sync && *sync == '1'};
  int rc = gg__ocl_new(p->dev, &op, &c->o, err, errlen);
  if (rc) {
    free(c), free(be);
    return rc;
  }
  c->dev = p->dev, c->pool = p->pool, c->context = h.context;
  be->iface = &k_ocl, be->ctx = c, be->dev = p->dev;
  *out = be;
  return 0;
}

static const gg_backend_reg k_reg = {"opencl", GG_DEVICE_OPENCL, ocl_init};

/* Referenced by the link option in cmake/opencl-backend.cmake so that a
 * static link keeps this object (and its constructor). */
const gg_backend_reg *gg__backend_opencl_anchor(void);
const gg_backend_reg *gg__backend_opencl_anchor(void) { return &k_reg; }

__attribute__((constructor)) static void ocl_register(void) {
  int rc = gg_backend_register(&k_reg);
  if (rc) GG_WARN("ENG", "the opencl backend could not register: %s", gg_err_name(rc));
}
