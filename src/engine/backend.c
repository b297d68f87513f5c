/* The backend registry, the buffer wrappers (with the defaults backend.h
 * documents), the pool buffer type device backends share, and the "sim"
 * backend: the CPU kernels on tensors that live in the simulated GPU's
 * capped memory, one gg_device_launch per node. */
#include "engine/backend.h"
#include "engine/engine-impl.h"
#include "engine/xnn.h"
#include "gpuguard/device.h"
#include "gpuguard/error.h"
#include "gpuguard/memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ registry */

extern const gg_backend_reg gg__backend_naive, gg__backend_xnnpack, gg__backend_sim;

#define MAX_BACKENDS 16
static const gg_backend_reg *g_regs[MAX_BACKENDS] = {&gg__backend_naive, &gg__backend_xnnpack,
                                                     &gg__backend_sim};
static int g_n_regs = 3;

int gg_backend_register(const gg_backend_reg *reg) {
  if (!reg || !reg->name || !reg->init) return GG_EINVAL;
  if (gg_backend_find(reg->name)) return GG_EINVAL;
  if (g_n_regs == MAX_BACKENDS) return GG_ERANGE;
  g_regs[g_n_regs++] = reg;
  return 0;
}

const gg_backend_reg *gg_backend_find(const char *name) {
  for (int i = 0; name && i < g_n_regs; i++)
    if (!strcmp(g_regs[i]->name, name)) return g_regs[i];
  return NULL;
}

int gg_backend_unregister(const gg_backend_reg *reg) {
  for (int i = 0; i < g_n_regs; i++)
    if (g_regs[i] == reg) {
      memmove(&g_regs[i], &g_regs[i + 1], (size_t)(g_n_regs - i - 1) * sizeof g_regs[0]);
      g_n_regs--;
      return 0;
    }
  return GG_ENOTFOUND;
}

const gg_backend_reg *gg_backend_for_device_kind(int kind) {
  /* the latest registration wins: a plugin may replace a built-in */
  for (int i = g_n_regs - 1; kind >= 0 && i >= 0; i--)
    if (g_regs[i]->device_kind == kind) return g_regs[i];
  return NULL;
}

int gg_backend_count(void) {
  return g_n_regs;
}
const gg_backend_reg *gg_backend_get(int i) {
  return i >= 0 && i < g_n_regs ? g_regs[i] : NULL;
}

int gg_backend_init_by_name(const char *name, const gg_backend_params *p, gg_backend **out,
                            char *err, size_t errlen) {
  char tmp[8];
  if (!err) err = tmp, errlen = sizeof tmp;
  *out = NULL;
  const gg_backend_reg *r = gg_backend_find(name);
  if (!r) {
    snprintf(err, errlen, "backend '%s' is not part of this build", name ? name : "(null)");
    return GG_ENOTFOUND;
  }
  gg_backend_params none;
  memset(&none, 0, sizeof none);
  err[0] = 0;
  int rc = r->init(p ? p : &none, out, err, errlen);
  if (!rc && (*out)->dev == NULL && p) (*out)->dev = r->device_kind >= 0 ? p->dev : NULL;
  return rc;
}

void gg_backend_free(gg_backend *be) {
  if (be) be->iface->free(be);
}

const char *gg_backend_name(const gg_backend *be) {
  return be ? be->iface->name : "(none)";
}

/* ------------------------------------------------------------ buffers */

void gg_backend_buffer_free(gg_backend_buffer *buf) {
  if (buf) buf->iface->free(buf);
}

void *gg_backend_buffer_host_ptr(gg_backend_buffer *buf, uint64_t off) {
  return buf && buf->iface->host_ptr ? buf->iface->host_ptr(buf, off) : NULL;
}

int gg_backend_buffer_set(gg_backend_buffer *buf, uint64_t off, const void *src, size_t n) {
  if (off > buf->size || n > buf->size - off) return GG_ERANGE;
  if (buf->iface->set) return buf->iface->set(buf, off, src, n);
  if (n) memcpy(buf->iface->host_ptr(buf, off), src, n);
  return 0;
}

int gg_backend_buffer_get(gg_backend_buffer *buf, uint64_t off, void *dst, size_t n) {
  if (off > buf->size || n > buf->size - off) return GG_ERANGE;
  if (buf->iface->get) return buf->iface->get(buf, off, dst, n);
  if (n) memcpy(dst, buf->iface->host_ptr(buf, off), n);
  return 0;
}

int gg_backend_buffer_copy(gg_backend_buffer *dst, uint64_t doff, gg_backend_buffer *src,
                           uint64_t soff, size_t n) {
  if (soff > src->size || n > src->size - soff) return GG_ERANGE;
  /* Device memory is always read and written through its own set/get (the
   * device's copy path, where its faults and queue ordering apply), even
   * when the host could address it. */
  if (!src->iface->get) return gg_backend_buffer_set(dst, doff, src->iface->host_ptr(src, soff), n);
  if (!dst->iface->set) {
    if (doff > dst->size || n > dst->size - doff) return GG_ERANGE;
    return gg_backend_buffer_get(src, soff, dst->iface->host_ptr(dst, doff), n);
  }
  /* Device to device across domains: bounce through host memory. */
  void *tmp = malloc(n ? n : 1);
  if (!tmp) return GG_ENOMEM;
  int rc = gg_backend_buffer_get(src, soff, tmp, n);
  if (!rc) rc = gg_backend_buffer_set(dst, doff, tmp, n);
  free(tmp);
  return rc;
}

static void pool_buf_free(gg_backend_buffer *b) {
  gg_block_free(b->block);
  free(b);
}

static void *pool_buf_ptr(gg_backend_buffer *b, uint64_t off) {
  uint8_t *p = gg_block_host_ptr(b->block);
  return p ? p + off : NULL;
}

static int pool_buf_set(gg_backend_buffer *b, uint64_t off, const void *src, size_t n) {
  return gg_block_copy_to(b->block, (size_t)off, src, n);
}

static int pool_buf_get(gg_backend_buffer *b, uint64_t off, void *dst, size_t n) {
  return gg_block_copy_from(b->block, dst, (size_t)off, n);
}

static const gg_backend_buffer_i k_pool_host_buf = {pool_buf_free, pool_buf_ptr, pool_buf_set,
                                                    pool_buf_get};
static const gg_backend_buffer_i k_pool_dev_buf = {pool_buf_free, NULL, pool_buf_set, pool_buf_get};

int gg_backend_pool_buffer(gg_backend *be, gg_pool *pool, uint64_t size, const char *owner,
                           gg_backend_buffer **out) {
  *out = NULL;
  gg_backend_buffer *b = calloc(1, sizeof *b);
  if (!b) return GG_ENOMEM;
  int rc = gg_pool_alloc(pool, (size_t)(size ? size : 1), owner, &b->block);
  if (rc) {
    free(b);
    return rc;
  }
  b->iface = gg_block_host_ptr(b->block) ? &k_pool_host_buf : &k_pool_dev_buf;
  b->backend = be, b->size = size;
  *out = b;
  return 0;
}

uint64_t gg_backend_pool_bytes(uint64_t size) {
  if (!size) size = 1;
  return (size + GG_POOL_ROUND - 1) / GG_POOL_ROUND * GG_POOL_ROUND;
}

/* ------------------------------------------------------------ sim */

/* The sim computes with the host kernels (its memory is host memory):
 * XNNPACK where it takes a node, naive otherwise, as on the CPU. */
typedef struct sim_ctx {
  gg_device *dev;
  gg_pool *pool;
  gg_backend *xnn; /* NULL without XNNPACK or with cpu_kernels = 1 */
  gg_backend *naive;
} sim_ctx;

typedef struct sim_node {
  gg_backend *inner;
  void *state;
} sim_node;

static int sim_supports(gg_backend *be, const gg_node *n, const gg_tval *vals) {
  sim_ctx *c = be->ctx;
  return c->naive->iface->supports_node(c->naive, n, vals);
}

static int sim_buffer_alloc(gg_backend *be, uint64_t size, const char *owner,
                            gg_backend_buffer **out) {
  sim_ctx *c = be->ctx;
  return gg_backend_pool_buffer(be, c->pool, size, owner, out);
}

static uint64_t sim_alloc_bytes(gg_backend *be, uint64_t size) {
  (void)be;
  return gg_backend_pool_bytes(size);
}

static uint64_t sim_read_slack(gg_backend *be) {
  (void)be;
  return GG_XNN_EXTRA_BYTES;
}

static int sim_prepare(gg_backend *be, const gg_node *n, gg_tval *vals, void **state,
                       uint64_t *workspace) {
  sim_ctx *c = be->ctx;
  sim_node *sn = calloc(1, sizeof *sn);
  if (!sn) return GG_ENOMEM;
  sn->inner = c->naive;
  if (c->xnn && c->xnn->iface->supports_node(c->xnn, n, vals)) {
    int rc = c->xnn->iface->prepare(c->xnn, n, vals, &sn->state, workspace);
    if (!rc)
      sn->inner = c->xnn;
    else if (rc != GG_EINVAL && rc != GG_EUNSUPPORTED) {
      free(sn);
      return rc;
    }
  }
  *state = sn;
  return 0;
}

static void sim_release(gg_backend *be, void *state) {
  (void)be;
  sim_node *sn = state;
  if (!sn) return;
  if (sn->inner->iface->release) sn->inner->iface->release(sn->inner, sn->state);
  free(sn);
}

typedef struct sim_job {
  gg_backend *inner;
  const gg_node *n;
  gg_tval *vals;
  void *state;
} sim_job;

static int sim_kernel(void *p) {
  sim_job *j = p;
  return j->inner->iface->run_node(j->inner, j->n, j->vals, j->state);
}

/* One node = one launch: the sim's launch/sticky/hang faults hit node N. */
static int sim_run(gg_backend *be, const gg_node *n, gg_tval *vals, void *state) {
  sim_ctx *c = be->ctx;
  sim_node *sn = state;
  sim_job j = {sn->inner, n, vals, sn->state};
  return gg_device_launch(c->dev, sim_kernel, &j);
}

static int sim_sync(gg_backend *be) {
  sim_ctx *c = be->ctx;
  return gg_device_synchronize(c->dev);
}

static void sim_free(gg_backend *be) {
  sim_ctx *c = be->ctx;
  gg_backend_free(c->xnn);
  gg_backend_free(c->naive);
  free(c);
  free(be);
}

static const gg_backend_i k_sim = {
    .name = "sim",
    .supports_node = sim_supports,
    .buffer_alloc = sim_buffer_alloc,
    .alloc_bytes = sim_alloc_bytes,
    .read_slack = sim_read_slack,
    .prepare = sim_prepare,
    .release = sim_release,
    .run_node = sim_run,
    .synchronize = sim_sync,
    .free = sim_free,
};

static int sim_init(const gg_backend_params *p, gg_backend **out, char *err, size_t errlen) {
  if (!p->dev || !p->pool || gg_device_get_kind(p->dev) != GG_DEVICE_SIM) {
    snprintf(err, errlen, "the sim backend needs a sim device and its memory pool");
    return GG_EINVAL;
  }
  gg_backend *be = calloc(1, sizeof *be);
  sim_ctx *c = calloc(1, sizeof *c);
  if (!be || !c) {
    free(be), free(c);
    return GG_ENOMEM;
  }
  c->dev = p->dev, c->pool = p->pool;
  /* The kernels stay on the calling thread: the device runs one launch at a
   * time, like a GPU stream. */
  gg_backend_params cpu = {NULL, NULL, 1, 0};
  int rc = gg_backend_init_by_name("naive", &cpu, &c->naive, err, errlen);
  if (!rc && !p->cpu_kernels && gg_xnn_available())
    rc = gg_backend_init_by_name("xnnpack", &cpu, &c->xnn, err, errlen);
  if (rc) {
    gg_backend_free(c->naive);
    free(c), free(be);
    return rc;
  }
  be->iface = &k_sim, be->ctx = c, be->dev = p->dev;
  *out = be;
  return 0;
}

const gg_backend_reg gg__backend_sim = {"sim", GG_DEVICE_SIM, sim_init};
