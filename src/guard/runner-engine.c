/* The engine-backed runner: real TF.js graph models (include/gpuguard/engine.h)
 * under the guard.
 *
 * On a device with an engine backend (sim; see src/engine/backend.h) the
 * engine computes there for real: each session takes its weights copy and
 * activation arena from the device's pool when it is prepared (so budget,
 * OOM and leak accounting see the planned sizes, and oom@N hits one of
 * those allocations), and a run is one gg_device_launch per op (so
 * launch@N, sticky@N and hang@N hit op N, named in the error). The default
 * session is prepared at load, so warm-up and runs allocate nothing.
 *
 * On a device without one yet (cuda, opencl until their backends register)
 * the engine computes on the host and this runner makes the footprint and
 * the execution visible to the device where a GPU backend's would be:
 *   - load reserves the model's weight bytes from the device's pool;
 *   - each run reserves the session's planned arena + workspace from the
 *     pool, then runs the graph as one kernel through gg_device_launch
 *     followed by gg_device_synchronize (so launch, sticky and hang faults
 *     hit it).
 * The planned peak is the engine's own prediction for the device: weights +
 * arena + workspace for that input shape, with the plan chosen to fit the
 * pool's budget (the lean plan when the fast one does not fit; the session
 * fails with GG_EBUDGET only when even the lean plan does not). Sessions
 * are kept per input shape.
 * runner arg: "threads=N" (default 1). */
#include "engine/backend.h"
#include "gpuguard/catalog.h"
#include "gpuguard/device.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/image.h"
#include "gpuguard/log.h"
#include "guard/guard-impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENG_SESSIONS 4

typedef struct eng_sess {
  int is_default; /* made for the placeholder's shape (shape NULL) */
  int ndim;       /* input 0's shape as the session has it */
  int64_t shape[GG_ENGINE_MAX_DIMS];
  gg_session *s;
  gg_engine_mem mem;
  uint64_t used;
} eng_sess;

typedef struct eng_model {
  char name[GG__MODEL_NAME];
  gg_model *m;
  gg_device *dev;
  gg_pool *pool;
  gg_block *weights;   /* host-computed devices: the weights' reservation */
  int on_device;       /* the device has an engine backend: sessions compute there */
  eng_sess sess[ENG_SESSIONS];
  int n_sess;
  uint64_t clock;
  int def_ndim; /* > 0: the default session's input shape (a model with free dims) */
  int64_t def_shape[GG_ENGINE_MAX_DIMS];
} eng_model;

typedef struct eng_ctx {
  int threads;
} eng_ctx;

static void sess_free(eng_sess *s) {
  gg_session_free(s->s);
  memset(s, 0, sizeof *s);
}

/* The session for `shape` (NULL = the placeholder's default), created on
 * first use; least recently used one evicted. The default session also
 * serves requests of its shape: on a device it was prepared at load, and a
 * second one would take the device memory again inside a run. */
static int get_session(eng_ctx *c, eng_model *em, const int64_t *shape, int ndim, eng_sess **out) {
  for (int i = 0; i < em->n_sess; i++) {
    eng_sess *s = &em->sess[i];
    if ((shape && s->ndim == ndim && !memcmp(s->shape, shape, sizeof(int64_t) * (size_t)ndim)) ||
        (!shape && s->is_default)) {
      s->used = ++em->clock;
      *out = s;
      return 0;
    }
  }
  if (em->n_sess == ENG_SESSIONS) {
    int lru = 0;
    for (int i = 1; i < em->n_sess; i++)
      if (em->sess[i].used < em->sess[lru].used) lru = i;
    sess_free(&em->sess[lru]);
    em->sess[lru] = em->sess[--em->n_sess];
  }
  eng_sess *s = &em->sess[em->n_sess];
  memset(s, 0, sizeof *s);
  gg_session_opts so = {c->threads, GG_ENGINE_AUTO, 0};
  char err[256] = "";
  const int is_default = !shape;
  if (!shape && em->def_ndim > 0) shape = em->def_shape, ndim = em->def_ndim;
  int rc = gg_session_new_on(em->m, shape, ndim, &so, em->on_device ? em->pool : NULL, &s->s, err,
                             sizeof err);
  if ((rc == GG_EDEV_OOM || rc == GG_EBUDGET) && em->on_device) {
    /* Sessions of other shapes hold their arenas on the device: a caller
     * that shrinks its input after an OOM (tiled upscaling) needs that room.
     * Drop them (the default one stays: warm-up and probes use it) and try
     * once more. */
    int dropped = 0;
    for (int i = em->n_sess - 1; i >= 0; i--)
      if (!em->sess[i].is_default) {
        sess_free(&em->sess[i]);
        em->sess[i] = em->sess[--em->n_sess];
        dropped++;
      }
    s = &em->sess[em->n_sess];
    memset(s, 0, sizeof *s);
    if (dropped) {
      GG_INFO("ENG", "%s: freed %d cached session%s of other input shapes to make room", em->name,
              dropped, dropped == 1 ? "" : "s");
      err[0] = 0;
      rc = gg_session_new_on(em->m, shape, ndim, &so, em->pool, &s->s, err, sizeof err);
    }
  }
  if (rc) {
    GG_WARN("ENG", "%s: cannot prepare a session for this input: %s", em->name, err);
    return rc;
  }
  gg_tensor_info info;
  gg_session_input(s->s, 0, &info);
  s->is_default = is_default;
  s->ndim = info.ndim;
  memcpy(s->shape, info.shape, sizeof(int64_t) * (size_t)info.ndim);
  gg_session_memory(s->s, &s->mem);
  /* The session was planned against the pool's budget (docs/engine.md,
   * memory-aware plans): the peak admission sees is the chosen plan's. */
  if (s->mem.n_devices > 1)
    GG_INFO("ENG", "%s: %s plan on %s: %llu device bytes (fast plan %llu, lean plan %llu, %d "
            "nodes on a leaner algorithm)", em->name, s->mem.plan, s->mem.dev[1].device,
            (unsigned long long)s->mem.dev[1].predicted, (unsigned long long)s->mem.plan_fast,
            (unsigned long long)s->mem.plan_lean, s->mem.n_lean_ops);
  s->used = ++em->clock;
  em->n_sess++;
  *out = s;
  return 0;
}

/* The default session's input shape for a model whose input 0 has free
 * dims (an ONNX detector's [N,3,H,W]): the shape POST /api/infer feeds it,
 * the catalog entry's input_shape (free H and W are 224 there, see
 * src/engine/catalog.c), so warm-up and probes run the shape requests use.
 * A model given by path has no entry: its image input (the size its
 * MODEL.json sidecar asks for, gg_model_image_input) is the default then.
 * Declared dims must agree with it; otherwise (and for models with no free
 * dims) the declared shape stays the default, free dims as 1. */
static void default_shape(eng_model *em, const char *path) {
  gg_tensor_info ti;
  if (gg_model_input(em->m, 0, &ti) || ti.ndim != 4) return;
  int free_dims = 0;
  for (int d = 0; d < 4; d++)
    free_dims += ti.shape[d] <= 0;
  if (!free_dims) return;
  const gg_model_entry *e = gg_catalog_find(em->name);
  int64_t want[4];
  gg_preprocess pp;
  char err[256];
  if (e)
    memcpy(want, e->input_shape, sizeof want);
  else if (gg_model_image_input(path, &pp, want, err, sizeof err))
    return;
  for (int d = 0; d < 4; d++)
    if (want[d] <= 0 || (ti.shape[d] > 0 && ti.shape[d] != want[d])) return;
  memcpy(em->def_shape, want, sizeof want);
  em->def_ndim = 4;
}

static int eng_load(void *ctx, const char *model, gg_device *dev, gg_pool *pool, void **handle) {
  char path[1024];
  int rc = gg_catalog_resolve(model, path, sizeof path);
  if (rc) {
    GG_ERROR("ENG",
             "model '%s' not found (last tried %s); run scripts/fetch-models.sh or give a "
             "path to a model.json",
             model, path);
    return rc;
  }
  eng_model *em = calloc(1, sizeof *em);
  if (!em) return GG_ENOMEM;
  snprintf(em->name, sizeof em->name, "%s", model);
  em->dev = dev;
  em->pool = pool;
  char err[256] = "";
  rc = gg_model_load(path, &em->m, err, sizeof err);
  if (rc) {
    GG_ERROR("ENG", "loading %s failed: %s", path, err);
    free(em);
    return rc;
  }
  default_shape(em, path);
  em->on_device = gg_backend_for_device_kind((int)gg_device_get_kind(dev)) != NULL;
  if (em->on_device) {
    eng_sess *s;
    rc = get_session(ctx, em, NULL, 0, &s);
  } else {
    char owner[GG_MEM_OWNER_MAX];
    snprintf(owner, sizeof owner, "model:%.40s/weights", model);
    uint64_t wb = gg_model_weights_bytes(em->m);
    rc = gg_pool_alloc(pool, wb ? wb : 1, owner, &em->weights);
  }
  if (rc) {
    gg_model_free(em->m);
    free(em);
    return rc;
  }
  *handle = em;
  return 0;
}

static int eng_peak(void *ctx, void *handle, const gg_gtensor *in, uint64_t *peak) {
  eng_model *em = handle;
  eng_sess *s;
  int rc = get_session(ctx, em, in->dims, in->ndim, &s);
  if (rc) return rc;
  /* The device's share is what its budget must hold (dev[1] when the
   * engine computes there); host-computed devices reserve the whole. */
  *peak = s->mem.n_devices > 1 ? s->mem.dev[1].predicted : s->mem.predicted;
  return 0;
}

typedef struct eng_kernel {
  gg_session *s;
  int rc;
  char err[256];
} eng_kernel;

static int eng_kernel_fn(void *p) {
  eng_kernel *k = p;
  k->rc = gg_session_run(k->s, k->err, sizeof k->err);
  return k->rc;
}

/* Runs session s on the device. With an engine backend the session does
 * it op by op; otherwise: reserve, launch the whole graph, synchronize,
 * release. */
static int run_on_device(eng_model *em, eng_sess *s) {
  if (em->on_device) {
    char err[512] = "";
    int rc = gg_session_run(s->s, err, sizeof err);
    if (rc) GG_WARN("ENG", "%s: %s", em->name, err);
    return rc;
  }
  gg_block *res = NULL;
  uint64_t need = s->mem.arena + s->mem.workspace;
  int rc = gg_pool_alloc(em->pool, need ? need : 1, "request/activations", &res);
  if (rc) return rc;
  eng_kernel k = {s->s, 0, ""};
  rc = gg_device_launch(em->dev, eng_kernel_fn, &k);
  if (rc == 0) rc = gg_device_synchronize(em->dev);
  if (rc == 0 && k.rc) {
    GG_WARN("ENG", "%s: %s", em->name, k.err);
    rc = k.rc;
  }
  gg_block_free(res);
  return rc;
}

static int eng_warmup(void *ctx, void *handle) {
  eng_model *em = handle;
  eng_sess *s;
  int rc = get_session(ctx, em, NULL, 0, &s);
  if (rc) return rc;
  gg_tensor_info info;
  float *in = gg_session_input(s->s, 0, &info);
  if (!in) return GG_ESTATE;
  size_t n = 1;
  for (int i = 0; i < info.ndim; i++)
    n *= (size_t)(info.shape[i] > 0 ? info.shape[i] : 1);
  memset(in, 0, n * sizeof(float));
  return run_on_device(em, s);
}

static int eng_run(void *ctx, void *handle, const gg_gtensor *in, gg_gtensor *outs, int max_outs,
                   int *n_outs) {
  eng_model *em = handle;
  eng_sess *s;
  *n_outs = 0;
  int rc = get_session(ctx, em, in->dims, in->ndim, &s);
  if (rc) return rc;
  float *dst = gg_session_input(s->s, 0, NULL);
  if (!dst) return GG_ESTATE;
  memcpy(dst, in->data, gg_gtensor_count(in) * sizeof(float));
  rc = run_on_device(em, s);
  if (rc) return rc;
  int n = gg_model_n_outputs(em->m);
  if (n > max_outs) n = max_outs;
  for (int i = 0; i < n; i++) {
    gg_tensor_info info;
    const float *o = gg_session_output(s->s, i, &info);
    int64_t cnt = gg_session_output_elems(s->s, i);
    gg_gtensor *t = &outs[i];
    memset(t, 0, sizeof *t);
    if (!o || cnt < 0 || info.ndim > GG_GUARD_MAX_DIMS) {
      rc = GG_ESTATE;
      break;
    }
    t->ndim = info.ndim;
    for (int d = 0; d < info.ndim; d++)
      t->dims[d] = info.shape[d];
    t->data = malloc((size_t)(cnt ? cnt : 1) * sizeof(float));
    if (!t->data) {
      rc = GG_ENOMEM;
      break;
    }
    memcpy(t->data, o, (size_t)cnt * sizeof(float));
    *n_outs = i + 1;
  }
  if (rc) {
    for (int i = 0; i < *n_outs; i++)
      gg_gtensor_release(&outs[i]);
    *n_outs = 0;
  }
  return rc;
}

/* The backends that ran the ops of `in`'s session (those with ops). */
static int eng_ops_by_backend(void *ctx, void *handle, const gg_gtensor *in,
                              gg_guard_backend_ops *out, int max) {
  eng_model *em = handle;
  eng_sess *s;
  if (get_session(ctx, em, in->dims, in->ndim, &s)) return 0;
  int n = 0;
  for (int b = 0; b < s->mem.n_backends && n < max; b++)
    if (s->mem.ops[b].n_ops > 0) {
      snprintf(out[n].name, sizeof out[n].name, "%s", s->mem.ops[b].name);
      out[n++].n_ops = s->mem.ops[b].n_ops;
    }
  return n;
}

static void eng_unload(void *ctx, void *handle) {
  eng_model *em = handle;
  if (!em) return;
  for (int i = 0; i < em->n_sess; i++)
    sess_free(&em->sess[i]);
  gg_model_free(em->m);
  gg_block_free(em->weights);
  free(em);
}

static const gg_runner_i k_engine = {
    .name = "engine",
    .load = eng_load,
    .planned_peak = eng_peak,
    .warmup = eng_warmup,
    .run = eng_run,
    .unload = eng_unload,
    .ops_by_backend = eng_ops_by_backend,
};

int gg__runner_engine(const char *arg, gg_runner *out);
int gg__runner_engine(const char *arg, gg_runner *out) {
  eng_ctx *c = calloc(1, sizeof *c);
  if (!c) return GG_ENOMEM;
  c->threads = 1;
  if (arg && !strncmp(arg, "threads=", 8)) {
    int t = atoi(arg + 8);
    if (t > 0 && t <= 64) c->threads = t;
  }
  out->iface = &k_engine;
  out->ctx = c;
  return 0;
}
