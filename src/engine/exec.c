/* Models, and sessions: the scheduler. A session prepares a model for one
 * input shape: shape inference (shape.c), an assignment of every node to a
 * backend (the device's own first when it supports the node, else XNNPACK,
 * else the naive kernels), copies where data crosses memory domains, one
 * planned arena per domain (plan.c), backend state prepared once; then a
 * run is the list of steps, allocating nothing. See backend.h. */
#include "engine/backend.h"
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "engine/xnn.h"
#include "gpuguard/core.h"
#include "gpuguard/device.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "gpuguard/memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gg_model {
  gg_graph *g;
  char *path;
  uint64_t weights_measured; /* accounted host bytes the load left allocated */
};

/* A memory domain: the backends of one device share an arena, a weights
 * buffer (device domains only) and a view of the tensors. */
typedef struct domain {
  gg_backend *mem_be;          /* whose buffer type holds the domain's memory */
  gg_tval *vals;               /* this domain's view (backend.h: tensor storage) */
  gg__plan plan;
  gg_backend_buffer *arena, *weights;
  uint64_t arena_bytes, arena_counted, weights_bytes, weights_counted, workspace;
} domain;

/* One step of a run: a node on a backend, or a copy of a tensor between
 * domains (inserted where data crosses devices, and for model I/O). */
typedef struct step {
  int node;   /* index into g->nodes; -1 for a copy */
  int be;     /* index into s->be (nodes) */
  int algo;   /* index into the backend's algos() list (0: the fastest) */
  void *state;
  int tensor, from, to; /* copies: tensor id, source and destination domains */
} step;

#define MAX_BE 3
#define MAX_DOM 2

struct gg_session {
  gg_model *m;
  int n_be, n_dom;
  gg_backend *be[MAX_BE];
  int be_dom[MAX_BE];
  int xnn_be, naive_be;     /* indices of the host backends (-1: absent) */
  domain dom[MAX_DOM];      /* 0: the host; 1: the device, when one computes */
  gg_pool *pool;            /* the device's pool (borrowed), NULL without one */
  int n_steps;
  step *steps;
  gg_engine_mem mem;
  int profile;                          /* GG_ENGINE_PROFILE=1: time per op kind */
  uint64_t prof_ns[GG_OP_COUNT][MAX_BE]; /* [op][backend] */
  uint64_t prof_runs;
};

static uint64_t host_allocated(void) {
  gg_host_stats st;
  memset(&st, 0, sizeof st);
  gg_host_get_stats(&st);
  return st.allocated;
}

static int file_exists(const char *p) {
  FILE *f = fopen(p, "rb");
  if (!f) return 0;
  fclose(f);
  return 1;
}

int gg_model_resolve(const char *arg, char *out, size_t outlen) {
  if (!arg || !*arg || !out || outlen < 2) return GG_EINVAL;
  snprintf(out, outlen, "%s", arg);
  if (strchr(arg, '/') || strstr(arg, ".json")) return file_exists(arg) ? 0 : GG_ENOTFOUND;
  if (strlen(arg) > 200) return GG_EINVAL;
  const char *md = getenv("GPUGUARD_MODELS_DIR");
  if (md && *md) {
    snprintf(out, outlen, "%s/%s.json", md, arg);
    if (file_exists(out)) return 0;
    snprintf(out, outlen, "%s/human-models-3.0.4/models/%s.json", md, arg);
    if (file_exists(out)) return 0;
  }
  const char *cache = getenv("GPUGUARD_CACHE"), *home = getenv("HOME");
  if (cache && *cache) snprintf(out, outlen, "%s/models/human-models-3.0.4/models/%s.json", cache, arg);
  else snprintf(out, outlen, "%s/.cache/gpuguard/models/human-models-3.0.4/models/%s.json", home ? home : "", arg);
  return file_exists(out) ? 0 : GG_ENOTFOUND;
}

int gg_model_load(const char *path, gg_model **out, char *err, size_t errlen) {
  char tmp[8];
  if (!err) err = tmp, errlen = sizeof tmp;
  if (!path || !out) return gg_errf(err, errlen, GG_EINVAL, "gg_model_load: path and out are required");
  *out = NULL;
  gg_model *m = calloc(1, sizeof *m);
  if (!m) return GG_ENOMEM;
  m->path = strdup(path);
  uint64_t before = host_allocated();
  int rc = m->path ? gg__tfjs_load_file(path, &m->g, err, errlen) : GG_ENOMEM;
  if (rc) {
    free(m->path);
    free(m);
    return rc;
  }
  m->weights_measured = host_allocated() - before;
  GG_INFO("ENG", "loaded %s: %d ops, %d inputs, %d outputs, %llu weight bytes", path,
          m->g->n_order, m->g->n_inputs, m->g->n_outputs, (unsigned long long)m->g->weights_bytes);
  *out = m;
  return 0;
}

void gg_model_free(gg_model *m) {
  if (!m) return;
  gg__graph_free(m->g);
  free(m->path);
  free(m);
}

const char *gg_model_path(const gg_model *m) { return m ? m->path : NULL; }
int gg_model_n_inputs(const gg_model *m) { return m ? m->g->n_inputs : 0; }
int gg_model_n_outputs(const gg_model *m) { return m ? m->g->n_outputs : 0; }
uint64_t gg_model_weights_bytes(const gg_model *m) { return m ? m->g->weights_bytes : 0; }
int gg_model_n_ops(const gg_model *m) { return m ? m->g->n_order : 0; }

const gg_graph *gg__model_graph(const gg_model *m) { return m ? m->g : NULL; }

int gg__model_from_graph(gg_graph *g, const char *label, gg_model **out) {
  *out = NULL;
  gg_model *m = calloc(1, sizeof *m);
  if (!m) return GG_ENOMEM;
  m->path = strdup(label ? label : "graph");
  if (!m->path) {
    free(m);
    return GG_ENOMEM;
  }
  m->g = g;
  m->weights_measured = g->weights_bytes;
  *out = m;
  return 0;
}

static void fill_info(const gg_tensor *t, const char *name, const gg_tval *v, gg_tensor_info *o) {
  o->name = name ? name : t->name;
  o->ndim = v->ndim;
  for (int d = 0; d < v->ndim && d < GG_ENGINE_MAX_DIMS; d++) o->shape[d] = v->shape[d];
}

int gg_model_input(const gg_model *m, int i, gg_tensor_info *out) {
  if (!m || !out || i < 0 || i >= m->g->n_inputs) return GG_ERANGE;
  const gg_tensor *t = &m->g->tensors[m->g->inputs[i]];
  fill_info(t, NULL, &t->v, out);
  return 0;
}

int gg_model_output(const gg_model *m, int i, gg_tensor_info *out) {
  if (!m || !out || i < 0 || i >= m->g->n_outputs) return GG_ERANGE;
  const gg_tensor *t = &m->g->tensors[m->g->outputs[i]];
  fill_info(t, m->g->output_names[i], &t->v, out);
  return 0;
}

/* ------------------------------------------------------------ sessions */

static void print_profile(const gg_session *s) {
  uint64_t total = 0;
  for (int i = 0; i < GG_OP_COUNT; i++)
    for (int b = 0; b < s->n_be; b++) total += s->prof_ns[i][b];
  if (!s->prof_runs || !total) return;
  fprintf(stderr, "[ENG] profile of %s over %llu runs (ms per run):\n", s->m->path,
          (unsigned long long)s->prof_runs);
  for (int i = 0; i < GG_OP_COUNT; i++)
    for (int b = 0; b < s->n_be; b++)
      if (s->prof_ns[i][b])
        fprintf(stderr, "  %-16s %-8s %8.3f  %5.1f%%\n", gg__op_name((gg_op)i), gg_backend_name(s->be[b]),
                (double)s->prof_ns[i][b] / 1e6 / (double)s->prof_runs,
                100.0 * (double)s->prof_ns[i][b] / (double)total);
}

void gg_session_free(gg_session *s) {
  if (!s) return;
  if (s->profile) print_profile(s);
  for (int k = 0; s->steps && k < s->n_steps; k++) {
    step *st = &s->steps[k];
    if (st->node >= 0 && st->state && s->be[st->be]->iface->release)
      s->be[st->be]->iface->release(s->be[st->be], st->state);
  }
  free(s->steps);
  for (int d = 0; d < s->n_dom; d++) {
    gg_backend_buffer_free(s->dom[d].arena);
    gg_backend_buffer_free(s->dom[d].weights);
    gg__plan_free(&s->dom[d].plan);
    free(s->dom[d].vals);
  }
  for (int b = 0; b < s->n_be; b++) gg_backend_free(s->be[b]);
  free(s);
}

static uint64_t pool_allocated(gg_pool *pool) {
  gg_pool_stats st;
  if (!pool) return 0;
  memset(&st, 0, sizeof st);
  gg_pool_get_stats(pool, &st);
  return st.allocated;
}

/* Input shapes from the caller (input 0) or the placeholders. */
static int set_input_shapes(gg_session *s, gg_tval *vals, const int64_t *shape, int ndim,
                            char *err, size_t errlen) {
  const gg_graph *g = s->m->g;
  for (int i = 0; i < g->n_inputs; i++) {
    gg_tval *iv = &vals[g->inputs[i]];
    const gg_tensor *it = &g->tensors[g->inputs[i]];
    if (i == 0 && shape) {
      if (ndim != it->v.ndim)
        return gg_errf(err, errlen, GG_EINVAL, "%s: input '%s' has rank %d, got a shape of rank %d",
                     s->m->path, it->name, it->v.ndim, ndim);
      for (int d = 0; d < ndim; d++) {
        if (shape[d] < 1 || (it->v.shape[d] >= 0 && it->v.shape[d] != shape[d])) {
          char a[96], b[96];
          return gg_errf(err, errlen, GG_EINVAL, "%s: input '%s' expects shape %s, got %s", s->m->path,
                       it->name, gg__shape_str(it->v.shape, ndim, a, sizeof a),
                       gg__shape_str(shape, ndim, b, sizeof b));
        }
        iv->shape[d] = shape[d];
      }
    } else
      for (int d = 0; d < iv->ndim; d++)
        if (iv->shape[d] < 0) iv->shape[d] = 1;
    iv->dtype = GG_DT_F32;
    if (gg__shape_nelem(iv->shape, iv->ndim, &iv->nelem))
      return gg_errf(err, errlen, GG_ERANGE, "%s: input shape too large", s->m->path);
  }
  return 0;
}

/* The backends of a session: the device's (when pool's device has
 * one), then XNNPACK (unless naive is asked for), then the naive kernels. */
static int make_backends(gg_session *s, const gg_session_opts *o, gg_pool *pool, char *err,
                         size_t errlen) {
  int use_xnn = o->backend != GG_ENGINE_NAIVE && gg_xnn_available();
  int threads = o->threads < 1 ? 1 : o->threads;
  char why[256] = "";
  int rc;
  s->n_dom = 1;
  s->xnn_be = s->naive_be = -1;
  if (pool) {
    gg_device *dev = gg_pool_device(pool);
    const gg_backend_reg *r = gg_backend_for_device_kind((int)gg_device_get_kind(dev));
    if (r) {
      gg_backend_params p = {dev, pool, threads, o->backend == GG_ENGINE_NAIVE};
      if ((rc = gg_backend_init_by_name(r->name, &p, &s->be[0], why, sizeof why)))
        return gg_errf(err, errlen, rc, "%s: the %s backend for %s is not available: %s", s->m->path,
                     r->name, gg_device_name(dev), why);
      s->be_dom[0] = 1;
      s->n_be = 1, s->n_dom = 2;
      s->pool = pool;
    }
  }
  /* One pool of workers per session: with XNNPACK its own pool runs the
   * heavy ops and the few naive ones stay on the caller's thread (two pools
   * of spinning workers on the same cores slow each other down badly). */
  gg_backend_params hp = {NULL, NULL, threads, 0};
  if (use_xnn) {
    if ((rc = gg_backend_init_by_name("xnnpack", &hp, &s->be[s->n_be], why, sizeof why)))
      return gg_errf(err, errlen, rc, "%s: %s", s->m->path, why);
    s->xnn_be = s->n_be++;
    hp.threads = 1;
  }
  if ((rc = gg_backend_init_by_name("naive", &hp, &s->be[s->n_be], why, sizeof why)))
    return gg_errf(err, errlen, rc, "%s: %s", s->m->path, why);
  s->naive_be = s->n_be++;
  for (int d = 0; d < s->n_dom; d++) s->dom[d].mem_be = s->be[d == 0 ? s->naive_be : 0];
  return 0;
}

static int add_step(gg_session *s, int cap, step st) {
  if (s->n_steps >= cap) return GG_ENOMEM;
  s->steps[s->n_steps++] = st;
  return 0;
}

static void live(gg__plan *p, int t, int k) {
  if (p->first[t] < 0) p->first[t] = k;
  if (p->last[t] < k) p->last[t] = k;
}

/* The steps and each domain's lifetimes. A tensor lives in the domain of
 * its producer (inputs: the host); a node reading it from another domain
 * gets a copy step before it, and an output produced on a device is
 * downloaded right after its producer. */
static int schedule(gg_session *s, const gg_tval *vals) {
  const gg_graph *g = s->m->g;
  /* nodes, plus each tensor copied at most once into each domain */
  int nt = g->n_tensors, cap = g->n_order + 2 * nt + 1;
  s->steps = calloc((size_t)cap, sizeof *s->steps);
  uint8_t *present = calloc((size_t)nt * MAX_DOM + 1, 1);
  int rc = s->steps && present ? 0 : GG_ENOMEM;
  for (int d = 0; !rc && d < s->n_dom; d++) rc = gg__plan_init(&s->dom[d].plan, nt);
  if (rc) goto out;
  for (int i = 0; i < g->n_inputs; i++) present[(size_t)g->inputs[i] * MAX_DOM] = 1;
  for (int i = 0; !rc && i < g->n_order; i++) {
    const gg_node *n = &g->nodes[g->order[i]];
    int b = s->n_dom > 1 && s->be[0]->iface->supports_node(s->be[0], n, vals) ? 0
            : s->xnn_be >= 0 && s->be[s->xnn_be]->iface->supports_node(s->be[s->xnn_be], n, vals)
                ? s->xnn_be
                : s->naive_be;
    int d = s->be_dom[b];
    for (int k = 0; !rc && k < n->n_in; k++) {
      int t = n->in[k];
      if (g->tensors[t].is_const || present[(size_t)t * MAX_DOM + d]) continue;
      int from = present[(size_t)t * MAX_DOM] ? 0 : 1;
      rc = add_step(s, cap, (step){-1, 0, 0, NULL, t, from, d});
      present[(size_t)t * MAX_DOM + d] = 1;
    }
    if (!rc) rc = add_step(s, cap, (step){g->order[i], b, 0, NULL, -1, 0, 0});
    for (int k = 0; !rc && k < n->n_out; k++) {
      int t = n->out[k];
      present[(size_t)t * MAX_DOM + d] = 1;
      if (d != 0 && g->tensors[t].is_output) {
        rc = add_step(s, cap, (step){-1, 0, 0, NULL, t, d, 0});
        present[(size_t)t * MAX_DOM] = 1;
      }
    }
  }
  if (rc) goto out;
  for (int k = 0; k < s->n_steps; k++) {
    const step *st = &s->steps[k];
    if (st->node < 0) {
      live(&s->dom[st->from].plan, st->tensor, k);
      live(&s->dom[st->to].plan, st->tensor, k);
      continue;
    }
    const gg_node *n = &g->nodes[st->node];
    gg__plan *p = &s->dom[s->be_dom[st->be]].plan;
    for (int j = 0; j < n->n_out; j++) live(p, n->out[j], k);
    for (int j = 0; j < n->n_in; j++)
      if (!g->tensors[n->in[j]].is_const) live(p, n->in[j], k);
  }
  gg__plan *hp = &s->dom[0].plan;
  for (int i = 0; i < g->n_inputs; i++) hp->first[g->inputs[i]] = 0, hp->last[g->inputs[i]] = s->n_steps;
  for (int i = 0; i < g->n_outputs; i++)
    if (hp->first[g->outputs[i]] >= 0) hp->last[g->outputs[i]] = s->n_steps;
out:
  free(present);
  return rc;
}

/* Plans and allocates each domain's arena, and a device domain's weights
 * (the constants its nodes read, uploaded once). Sets every view. */
static int place_memory(gg_session *s, const gg_tval *vals, int reuse, char *err, size_t errlen) {
  const gg_graph *g = s->m->g;
  int rc = 0;
  for (int d = 0; d < s->n_dom; d++) {
    domain *dm = &s->dom[d];
    gg_backend *mb = dm->mem_be;
    dm->vals = malloc(((size_t)g->n_tensors + 1) * sizeof *dm->vals);
    if (!dm->vals) return GG_ENOMEM;
    memcpy(dm->vals, vals, (size_t)g->n_tensors * sizeof *vals);
    if (s->n_dom == 1) {
      /* The host-only plan is exactly the graph plan (tests compare them). */
      gg__plan_free(&dm->plan);
      rc = gg__plan_memory(g, vals, reuse, &dm->plan);
    } else
      rc = gg__plan_place(&dm->plan, vals, reuse);
    if (rc) return rc;
    uint64_t slack = mb->iface->read_slack ? mb->iface->read_slack(mb) : 0;
    dm->arena_bytes = dm->plan.peak + slack;
    dm->arena_counted = mb->iface->alloc_bytes ? mb->iface->alloc_bytes(mb, dm->arena_bytes) : dm->arena_bytes;
    if ((rc = mb->iface->buffer_alloc(mb, dm->arena_bytes, "engine/arena", &dm->arena)))
      return gg_errf(err, errlen, rc, "%s: cannot allocate the %llu-byte activation arena on %s "
                   "(%s); every plan needs it, the lean one too", s->m->path,
                   (unsigned long long)dm->arena_bytes,
                   mb->dev ? gg_device_name(mb->dev) : "the host", gg_strerror(rc));
    /* Constants a device domain reads: one weights buffer, uploaded now. */
    uint64_t wsize = 0;
    int64_t *woff = NULL;
    if (d > 0) {
      woff = malloc(((size_t)g->n_tensors + 1) * sizeof *woff);
      if (!woff) return GG_ENOMEM;
      for (int t = 0; t < g->n_tensors; t++) woff[t] = -1;
      for (int k = 0; k < s->n_steps; k++) {
        const step *st = &s->steps[k];
        if (st->node < 0 || s->be_dom[st->be] != d) continue;
        const gg_node *n = &g->nodes[st->node];
        for (int j = 0; j < n->n_in; j++) {
          int t = n->in[j];
          if (!g->tensors[t].is_const || woff[t] >= 0) continue;
          woff[t] = (int64_t)wsize;
          uint64_t b = GG_CONST_BYTES((uint64_t)vals[t].nelem * gg__dtype_size(vals[t].dtype));
          wsize += (b + GG_ARENA_ALIGN - 1) / GG_ARENA_ALIGN * GG_ARENA_ALIGN;
        }
      }
      if (wsize) {
        dm->weights_bytes = wsize;
        dm->weights_counted = mb->iface->alloc_bytes ? mb->iface->alloc_bytes(mb, wsize) : wsize;
        rc = mb->iface->buffer_alloc(mb, wsize, "engine/weights", &dm->weights);
        for (int t = 0; !rc && t < g->n_tensors; t++)
          if (woff[t] >= 0)
            rc = gg_backend_buffer_set(dm->weights, (uint64_t)woff[t], vals[t].data,
                                       (size_t)vals[t].nelem * gg__dtype_size(vals[t].dtype));
        if (rc) {
          free(woff);
          return gg_errf(err, errlen, rc, "%s: cannot place the %llu bytes of weights on %s (%s); "
                       "every plan needs them, the lean one too", s->m->path,
                       (unsigned long long)wsize, gg_device_name(mb->dev), gg_strerror(rc));
        }
      }
    }
    for (int t = 0; t < g->n_tensors; t++) {
      gg_tval *v = &dm->vals[t];
      v->is_const = g->tensors[t].is_const;
      if (woff && woff[t] >= 0) {
        void *hp = gg_backend_buffer_host_ptr(dm->weights, (uint64_t)woff[t]);
        v->buf = dm->weights, v->offs = (uint64_t)woff[t];
        if (hp) v->data = hp; /* else: the model's host copy, read-only (backend.h) */
      } else if (!v->is_const) {
        v->buf = dm->plan.offset[t] >= 0 ? dm->arena : NULL;
        v->offs = dm->plan.offset[t] >= 0 ? (uint64_t)dm->plan.offset[t] : 0;
        v->data = v->buf ? gg_backend_buffer_host_ptr(dm->arena, v->offs) : NULL;
      }
    }
    free(woff);
  }
  return 0;
}

/* The algorithms of step st (0 when its backend has no choice). */
static int step_algos(gg_session *s, const step *st, gg_backend_algo a[GG_BACKEND_MAX_ALGOS]) {
  gg_backend *be = s->be[st->be];
  if (st->node < 0 || !be->iface->algos) return 0;
  int na = be->iface->algos(be, &s->m->g->nodes[st->node], s->dom[s->be_dom[st->be]].vals, a);
  return na < 0 ? 0 : na > GG_BACKEND_MAX_ALGOS ? GG_BACKEND_MAX_ALGOS : na;
}

/* The device scratch a plan needs: the largest workspace among its
 * algorithms (the backend holds one block, backend.h). Which plan: 0 the
 * chosen algorithms, PLAN_FAST every node's fastest, PLAN_LEAN every node's
 * leanest. */
enum { PLAN_CHOSEN, PLAN_FAST, PLAN_LEAN };
static uint64_t plan_workspace(gg_session *s, int which) {
  uint64_t ws = 0;
  for (int k = 0; k < s->n_steps; k++) {
    gg_backend_algo a[GG_BACKEND_MAX_ALGOS];
    int na = step_algos(s, &s->steps[k], a), pick = which == PLAN_FAST ? 0 : s->steps[k].algo;
    for (int i = 0; which == PLAN_LEAN && i < na; i++)
      if (a[i].workspace < a[pick].workspace) pick = i;
    if (na && a[pick].workspace > ws) ws = a[pick].workspace;
  }
  return ws;
}

/* 1 when `bytes` more fit in the device pool now (its budget and memory),
 * asked of the pool itself so that segment rounding and the cache count
 * exactly as they will for the scratch; 0 when not, or an error. */
static int pool_fits(gg_pool *pool, uint64_t bytes) {
  gg_block *b = NULL;
  if (!bytes) return 1;
  int rc = gg_pool_try_alloc(pool, (size_t)bytes, "engine/plan-probe", &b);
  gg_block_free(b);
  return rc == GG_EDEV_OOM || rc == GG_EBUDGET ? 0 : rc ? rc : 1;
}

/* Memory-aware plan (docs/engine.md): every node starts on its fastest
 * algorithm; while the device scratch that needs does not fit the pool,
 * the nodes holding the largest need (the only ones whose downgrade frees
 * anything, the scratch being shared) move to their cheapest algorithm
 * with a smaller workspace. Runs after the arena and the weights are
 * placed, before prepare takes the scratch. */
static int choose_algos(gg_session *s) {
  gg_engine_mem *m = &s->mem;
  for (;;) {
    uint64_t ws = plan_workspace(s, PLAN_CHOSEN);
    int fits = s->pool ? pool_fits(s->pool, ws) : 1;
    if (fits < 0) return fits;
    if (fits) break;
    int moved = 0;
    for (int k = 0; k < s->n_steps; k++) {
      step *st = &s->steps[k];
      gg_backend_algo a[GG_BACKEND_MAX_ALGOS];
      int na = step_algos(s, st, a), best = -1;
      if (!na || a[st->algo].workspace != ws) continue;
      for (int i = 0; i < na; i++)
        if (a[i].workspace < ws && (best < 0 || a[i].cost < a[best].cost)) best = i;
      if (best >= 0) st->algo = best, moved = 1;
    }
    if (!moved) break; /* nothing leaner: prepare's own allocation reports it */
  }
  for (int k = 0; k < s->n_steps; k++) m->n_lean_ops += s->steps[k].algo != 0;
  snprintf(m->plan, sizeof m->plan, "%s", m->n_lean_ops ? "lean" : "fast");
  if (m->n_lean_ops)
    GG_INFO("ENG", "%s: lean plan on %s: the fast plan's %llu-byte scratch does not fit its pool, "
            "so %d nodes run a leaner algorithm with a %llu-byte scratch (the [MEM] budget "
            "warnings above are the planner's probes)", s->m->path, gg_device_name(s->be[0]->dev),
            (unsigned long long)plan_workspace(s, PLAN_FAST), m->n_lean_ops,
            (unsigned long long)plan_workspace(s, PLAN_CHOSEN));
  return 0;
}

/* Prepares every node once. On the host, a node XNNPACK turns down after
 * all (GG_EINVAL/GG_EUNSUPPORTED at creation) goes to the naive kernels.
 * Each node's workspace is booked where it lives (backend.h: device_workspace). */
static int prepare_steps(gg_session *s, char *err, size_t errlen) {
  const gg_graph *g = s->m->g;
  for (int k = 0; k < s->n_steps; k++) {
    step *st = &s->steps[k];
    if (st->node < 0) continue;
    const gg_node *n = &g->nodes[st->node];
    gg_backend *be = s->be[st->be];
    if (!be->iface->prepare && !be->iface->prepare_algo) continue;
    uint64_t ws = 0;
    gg_tval *v = s->dom[s->be_dom[st->be]].vals;
    int rc = be->iface->prepare_algo ? be->iface->prepare_algo(be, n, v, st->algo, &st->state, &ws)
                                     : be->iface->prepare(be, n, v, &st->state, &ws);
    if (rc && st->be == s->xnn_be && (rc == GG_EINVAL || rc == GG_EUNSUPPORTED)) {
      GG_DEBUG("ENG", "%s: node '%s' (%s) runs on the naive kernel: XNNPACK said %s", s->m->path,
               n->name, n->src_op, gg_err_name(rc));
      st->be = s->naive_be, st->state = NULL;
      continue;
    }
    if (rc)
      return gg_errf(err, errlen, rc, "%s: node '%s' (%s): the %s backend could not prepare it (%s)",
                   s->m->path, n->name, n->src_op, be->iface->name, gg_strerror(rc));
    s->dom[be->iface->device_workspace ? s->be_dom[st->be] : 0].workspace += ws;
  }
  return 0;
}

static void fill_memory(gg_session *s, uint64_t host_measured, uint64_t dev_measured) {
  gg_engine_mem *m = &s->mem;
  const gg_graph *g = s->m->g;
  for (int d = 0; d < s->n_dom; d++) {
    domain *dm = &s->dom[d];
    gg_engine_dev_mem *dv = &m->dev[d];
    gg_device *dev = dm->mem_be->dev;
    snprintf(dv->device, sizeof dv->device, "%s", dev ? gg_device_name(dev) : "host");
    dv->weights = d == 0 ? g->weights_bytes : dm->weights_counted;
    dv->arena = dm->arena_counted;
    dv->workspace = dm->workspace;
    dv->predicted = dv->weights + dv->arena + dv->workspace;
    dv->measured = d == 0 ? host_measured : dev_measured;
    m->weights += dv->weights, m->arena += dv->arena, m->workspace += dv->workspace;
    m->predicted += dv->predicted, m->measured += dv->measured;
  }
  m->n_devices = s->n_dom;
  m->arena_peak = s->dom[0].plan.peak;
  m->arena_no_reuse = s->dom[0].plan.sum;
  for (int d = 1; d < s->n_dom; d++)
    m->arena_peak += s->dom[d].plan.peak, m->arena_no_reuse += s->dom[d].plan.sum;
  m->n_ops = g->n_order;
  m->n_backends = s->n_be;
  for (int b = 0; b < s->n_be; b++)
    snprintf(m->ops[b].name, sizeof m->ops[b].name, "%s", gg_backend_name(s->be[b]));
  for (int k = 0; k < s->n_steps; k++)
    if (s->steps[k].node >= 0) m->ops[s->steps[k].be].n_ops++;
  m->n_ops_xnnpack = s->xnn_be >= 0 ? m->ops[s->xnn_be].n_ops : 0;
  /* the computing device's bytes under either plan (choose_algos) */
  const domain *dd = &s->dom[s->n_dom - 1];
  uint64_t base = m->dev[s->n_dom - 1].weights + dd->arena_counted;
  m->plan_fast = base + (s->n_dom > 1 ? plan_workspace(s, PLAN_FAST) : dd->workspace);
  m->plan_lean = base + (s->n_dom > 1 ? plan_workspace(s, PLAN_LEAN) : dd->workspace);
}

int gg_session_new(gg_model *m, const int64_t *shape, int ndim, const gg_session_opts *opts,
                   gg_session **out, char *err, size_t errlen) {
  return gg_session_new_on(m, shape, ndim, opts, NULL, out, err, errlen);
}

int gg_session_new_on(gg_model *m, const int64_t *shape, int ndim, const gg_session_opts *opts,
                      gg_pool *pool, gg_session **out, char *err, size_t errlen) {
  char tmp[8];
  if (!err) err = tmp, errlen = sizeof tmp;
  if (!m || !out) return gg_errf(err, errlen, GG_EINVAL, "gg_session_new: model and out are required");
  *out = NULL;
  gg_session_opts o;
  memset(&o, 0, sizeof o);
  if (opts) o = *opts;
  if (o.backend == GG_ENGINE_XNNPACK && !gg_xnn_available())
    return gg_errf(err, errlen, GG_ENOTIMPL, "XNNPACK is not part of this build (install libxnnpack-dev and rebuild, or use the naive backend)");
  gg_graph *g = m->g;
  gg_session *s = calloc(1, sizeof *s);
  if (!s) return GG_ENOMEM;
  s->m = m;
  gg_tval *vals = calloc((size_t)g->n_tensors + 1, sizeof *vals);
  int rc = vals ? 0 : GG_ENOMEM;
  if (rc) goto fail;
  for (int t = 0; t < g->n_tensors; t++) {
    vals[t] = g->tensors[t].v;
    vals[t].is_const = g->tensors[t].is_const;
    if (!g->tensors[t].is_const) vals[t].data = NULL;
  }
  if ((rc = set_input_shapes(s, vals, shape, ndim, err, errlen))) goto fail;
  for (int i = 0; i < g->n_order; i++) {
    char msg[400];
    if ((rc = gg__op_infer(&g->nodes[g->order[i]], vals, msg, sizeof msg))) {
      gg_errf(err, errlen, rc, "%s: %s", m->path, msg);
      goto fail;
    }
  }
  if ((rc = make_backends(s, &o, pool, err, errlen))) goto fail;
  if ((rc = schedule(s, vals))) goto fail;
  uint64_t host0 = host_allocated(), xnn0 = 0, dev0 = pool_allocated(s->pool);
  gg_xnn_mem_stats(&xnn0, NULL);
  if ((rc = place_memory(s, vals, !o.no_reuse, err, errlen))) goto fail;
  if ((rc = choose_algos(s))) goto fail;
  if ((rc = prepare_steps(s, err, errlen))) goto fail;
  uint64_t xnn1 = 0;
  gg_xnn_mem_stats(&xnn1, NULL);
  fill_memory(s, m->weights_measured + (host_allocated() - host0) + (xnn1 - xnn0),
              pool_allocated(s->pool) - dev0);
  const char *prof = getenv("GG_ENGINE_PROFILE");
  s->profile = prof && *prof && strcmp(prof, "0");
  free(vals);
  *out = s;
  return 0;
fail:
  free(vals);
  gg_session_free(s);
  return rc;
}

float *gg_session_input(gg_session *s, int i, gg_tensor_info *info) {
  if (!s || i < 0 || i >= s->m->g->n_inputs) return NULL;
  int t = s->m->g->inputs[i];
  if (info) fill_info(&s->m->g->tensors[t], NULL, &s->dom[0].vals[t], info);
  return s->dom[0].vals[t].data;
}

static int run_copy(gg_session *s, const step *st, char *err, size_t errlen) {
  const gg_tval *src = &s->dom[st->from].vals[st->tensor], *dst = &s->dom[st->to].vals[st->tensor];
  size_t n = (size_t)src->nelem * gg__dtype_size(src->dtype);
  int rc = gg_backend_buffer_copy(dst->buf, dst->offs, src->buf, src->offs, n);
  if (rc)
    gg_errf(err, errlen, rc, "%s: copying tensor '%s' (%zu bytes) from %s to %s failed: %s", s->m->path,
          s->m->g->tensors[st->tensor].name, n, s->dom[st->from].mem_be->iface->name,
          s->dom[st->to].mem_be->iface->name, gg_strerror(rc));
  return rc;
}

int gg_session_run(gg_session *s, char *err, size_t errlen) {
  const gg_graph *g = s->m->g;
  int last = -1;
  for (int k = 0; k < s->n_steps; k++) {
    const step *st = &s->steps[k];
    int rc;
    if (st->node < 0) {
      if ((rc = run_copy(s, st, err, errlen))) return rc;
      continue;
    }
    const gg_node *n = &g->nodes[st->node];
    gg_backend *be = s->be[st->be];
    uint64_t t0 = s->profile ? gg_now_ns() : 0;
    rc = be->iface->run_node(be, n, s->dom[s->be_dom[st->be]].vals, st->state);
    if (s->profile) s->prof_ns[n->op][st->be] += gg_now_ns() - t0;
    if (rc)
      return gg_errf(err, errlen, rc, "%s: node '%s' (%s) failed on %s: %s", s->m->path, n->name,
                   n->src_op, be->iface->name, gg_strerror(rc));
    last = st->node;
  }
  for (int b = 0; b < s->n_be; b++) {
    int rc = s->be[b]->iface->synchronize ? s->be[b]->iface->synchronize(s->be[b]) : 0;
    if (rc)
      return gg_errf(err, errlen, rc, "%s: %s: waiting for the work up to node '%s' failed: %s",
                   s->m->path, s->be[b]->iface->name, last >= 0 ? g->nodes[last].name : "-",
                   gg_strerror(rc));
  }
  s->prof_runs++;
  return 0;
}

const float *gg_session_output(gg_session *s, int i, gg_tensor_info *info) {
  if (!s || i < 0 || i >= s->m->g->n_outputs) return NULL;
  int t = s->m->g->outputs[i];
  if (info) fill_info(&s->m->g->tensors[t], s->m->g->output_names[i], &s->dom[0].vals[t], info);
  return s->dom[0].vals[t].data;
}

int64_t gg_session_output_elems(gg_session *s, int i) {
  if (!s || i < 0 || i >= s->m->g->n_outputs) return 0;
  return s->dom[0].vals[s->m->g->outputs[i]].nelem;
}

void gg_session_memory(const gg_session *s, gg_engine_mem *out) {
  if (!s || !out) return;
  *out = s->mem;
}

int gg_session_ops_by_backend(const gg_session *s, const char *backend) {
  if (!s || !backend) return 0;
  for (int b = 0; b < s->mem.n_backends; b++)
    if (!strcmp(s->mem.ops[b].name, backend)) return s->mem.ops[b].n_ops;
  return 0;
}
