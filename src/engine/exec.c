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

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint64_t gg__arena_limit = 0;

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
  /* The session's view of the graph: the model's, with the nodes that
   * session-time folding evaluated turned into constants (shape subgraphs)
   * and parameters resolved from the input shapes. Shallow: names, node
   * inputs and model constants are the model's (borrowed). */
  gg_graph sg;
  const gg_graph *g;
  int **own_in; /* node input arrays the session replaced */
  int n_own_in;
  void **fold_data; /* constants the session computed (gg__const_alloc) */
  int n_fold;
  uint64_t fold_bytes;
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
  if (strchr(arg, '/') || strstr(arg, ".json") || strstr(arg, ".onnx"))
    return file_exists(arg) ? 0 : GG_ENOTFOUND;
  if (strlen(arg) > 200) return GG_EINVAL;
  const char *md = getenv("GPUGUARD_MODELS_DIR");
  if (md && *md) {
    snprintf(out, outlen, "%s/%s.json", md, arg);
    if (file_exists(out)) return 0;
    snprintf(out, outlen, "%s/%s.onnx", md, arg);
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
  int rc = m->path ? 0 : GG_ENOMEM;
  /* The importer by content: TF.js model.json is a JSON object; anything
   * else is read as an ONNX ModelProto (protobuf has no magic number). */
  int first = -1,
      fd = rc ? -1 : open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block */
  struct stat st;
  if (fd >= 0 && !fstat(fd, &st) && S_ISREG(st.st_mode)) {
    unsigned char head[256];
    ssize_t n = read(fd, head, sizeof head);
    for (ssize_t i = 0; i < n && first < 0; i++)
      if (head[i] != ' ' && head[i] != '\t' && head[i] != '\n' && head[i] != '\r') first = head[i];
  }
  if (fd >= 0) close(fd);
  /* not a regular file, or unreadable: the TF.js loader says why */
  if (!rc)
    rc = first == '{' || fd < 0 || !S_ISREG(st.st_mode)
             ? gg__tfjs_load_file(path, &m->g, err, errlen)
             : gg__onnx_load_file(path, &m->g, err, errlen);
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
  o->dtype = v->dtype == GG_DT_I32 ? GG_TENSOR_I32 : GG_TENSOR_F32;
  o->src_type = t->src_type;
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
  for (int i = 0; i < s->n_fold; i++)
    gg__const_free(s->fold_data[i]);
  free(s->fold_data);
  for (int i = 0; i < s->n_own_in; i++)
    free(s->own_in[i]);
  free(s->own_in);
  free(s->sg.tensors);
  free(s->sg.nodes);
  free(s->sg.order);
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

/* Input shapes from the caller (shapes[i] for input i; NULL entries, or
 * inputs past n, take the placeholder's with unknown dims as 1). */
static int set_input_shapes(gg_session *s, gg_tval *vals, int n, const int64_t *const *shapes,
                            const int *ndims, char *err, size_t errlen) {
  const gg_graph *g = s->g;
  if (n > g->n_inputs)
    return gg_errf(err, errlen, GG_EINVAL, "%s: %d input shapes given, the model has %d inputs",
                   s->m->path, n, g->n_inputs);
  for (int i = 0; i < g->n_inputs; i++) {
    gg_tval *iv = &vals[g->inputs[i]];
    const gg_tensor *it = &g->tensors[g->inputs[i]];
    const int64_t *shape = i < n && shapes ? shapes[i] : NULL;
    if (shape) {
      int ndim = ndims[i];
      if (ndim != it->v.ndim)
        return gg_errf(err, errlen, GG_EINVAL, "%s: input '%s' has rank %d, got a shape of rank %d",
                     s->m->path, it->name, it->v.ndim, ndim);
      for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || (it->v.shape[d] >= 0 && it->v.shape[d] != shape[d])) {
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
    iv->dtype = it->v.dtype;
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

/* Nodes only the naive kernels run: MaxPool dilations (the XNNPACK and
 * device kernels pool undilated windows), and any node that reads or
 * writes a zero-size tensor (a [0, 3, 4] input, a Split part of 0): the
 * naive kernels loop zero times over it; libraries and device buffers are
 * not asked about empty operands. */
static int naive_only(const gg_node *n, const gg_tval *vals) {
  for (int k = 0; k < n->n_in; k++)
    if (vals[n->in[k]].nelem == 0) return 1;
  for (int k = 0; k < n->n_out; k++)
    if (vals[n->out[k]].nelem == 0) return 1;
  return n->op == GG_OP_MAXPOOL && (n->a.dilations[0] > 1 || n->a.dilations[1] > 1);
}

/* The steps and each domain's lifetimes. A tensor lives in the domain of
 * its producer (inputs: the host); a node reading it from another domain
 * gets a copy step before it, and an output produced on a device is
 * downloaded right after its producer. */
static int schedule(gg_session *s, const gg_tval *vals) {
  const gg_graph *g = s->g;
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
    int b = naive_only(n, vals) ? s->naive_be
            : s->n_dom > 1 && s->be[0]->iface->supports_node(s->be[0], n, vals) ? 0
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

/* Bytes the accounting will count for a `size`-byte buffer of domain d: a
 * device domain's buffers come from s->pool, which is asked (block tails
 * included, gg_pool_footprint), so predicted == measured to the byte. */
static uint64_t counted_bytes(gg_session *s, int d, gg_backend *mb, uint64_t size) {
  if (d > 0 && s->pool) return gg_pool_footprint(s->pool, (size_t)(size ? size : 1));
  return mb->iface->alloc_bytes ? mb->iface->alloc_bytes(mb, size) : size;
}

/* Plans and allocates each domain's arena, and a device domain's weights
 * (the constants its nodes read, uploaded once). Sets every view. */
static int place_memory(gg_session *s, const gg_tval *vals, int reuse, char *err, size_t errlen) {
  const gg_graph *g = s->g;
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
    dm->arena_counted = counted_bytes(s, d, mb, dm->arena_bytes);
    if (gg__arena_limit && dm->arena_bytes > gg__arena_limit)
      return gg_errf(err, errlen, GG_ETOO_LARGE,
                     "%s: the %llu-byte activation arena exceeds this process's %llu-byte limit",
                     s->m->path, (unsigned long long)dm->arena_bytes,
                     (unsigned long long)gg__arena_limit);
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
        dm->weights_counted = counted_bytes(s, d, mb, wsize);
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
  int na = be->iface->algos(be, &s->g->nodes[st->node], s->dom[s->be_dom[st->be]].vals, a);
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
  const gg_graph *g = s->g;
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
  const gg_graph *g = s->g;
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

/* ------------------------------------------------------------ session-time folding */

/* Largest output (elements) session-time folding evaluates: shape
 * arithmetic, not activations. */
#define SESSION_FOLD_MAX 65536

static int keep_fold(gg_session *s, void *p) {
  void **f = realloc(s->fold_data, ((size_t)s->n_fold + 1) * sizeof *f);
  if (!f) return GG_ENOMEM;
  s->fold_data = f;
  f[s->n_fold++] = p;
  return 0;
}

/* A node input the session replaces: the node gets its own input array. */
static int own_inputs(gg_session *s, gg_node *n) {
  int *in = malloc(((size_t)n->n_in + 1) * sizeof *in);
  int **o = realloc(s->own_in, ((size_t)s->n_own_in + 1) * sizeof *o);
  if (o) s->own_in = o;
  if (!in || !o) {
    free(in);
    return GG_ENOMEM;
  }
  memcpy(in, n->in, (size_t)n->n_in * sizeof *in);
  n->in = in;
  s->own_in[s->n_own_in++] = in;
  return 0;
}

/* A session constant (data from gg__const_alloc, taken) as a new tensor. */
static int new_session_const(gg_session *s, gg_tval *vals, const gg_tval *v, int *out) {
  gg_graph *g = &s->sg;
  int t = g->n_tensors++;
  gg_tensor *tt = &g->tensors[t];
  memset(tt, 0, sizeof *tt);
  tt->name = g->tensors[0].name; /* borrowed; only messages read it */
  tt->v = *v;
  tt->is_const = 1;
  tt->producer = -1;
  vals[t] = *v;
  vals[t].is_const = 1;
  s->fold_bytes += GG_CONST_BYTES((uint64_t)v->nelem * gg__dtype_size(v->dtype));
  *out = t;
  return keep_fold(s, v->data);
}

/* Parameters the importer left to the session (ONNX): Resize's output size
 * from scales and the input shape or from a computed sizes/scales input;
 * Reshape's copy-zero dims (attrs.axis = 1). Runs before the node's shape
 * rule, once its inputs' shapes (and folded values) are known. */
static int resolve_params(gg_session *s, gg_node *n, gg_tval *vals, char *err, size_t errlen) {
  const char *path = s->m->path;
  if (n->op == GG_OP_RESIZE && n->a.out_hw[0] < 0) {
    const gg_tval *x = &vals[n->in[0]];
    if (x->ndim != 4)
      return gg_errf(err, errlen, GG_EPARSE, "%s: node '%s' (%s): needs a 4-D input", path, n->name,
                     n->src_op);
    if (n->a.out_hw[0] == -2 || n->a.out_hw[0] == -3) {
      const gg_tval *p = n->n_in > 1 ? &vals[n->in[1]] : NULL;
      if (!p || !p->data || p->nelem != 4)
        return gg_errf(
            err, errlen, GG_EUNSUPPORTED,
            "%s: node '%s' (%s): its %s must be computable from the input shapes (4 values)", path,
            n->name, n->src_op, n->a.out_hw[0] == -2 ? "scales" : "sizes");
      if (n->a.out_hw[0] == -3) {
        const int32_t *z = p->dtype == GG_DT_I32 ? p->data : NULL;
        if (!z || z[0] != x->shape[0] || z[1] != x->shape[3] || z[2] < 1 || z[3] < 1)
          return gg_errf(err, errlen, GG_EUNSUPPORTED,
                         "%s: node '%s' (%s): sizes must keep N and C", path, n->name, n->src_op);
        n->a.out_hw[0] = z[2], n->a.out_hw[1] = z[3];
        n->a.scale_hw[0] = n->a.scale_hw[1] = 0;
      } else {
        const float *f = p->dtype == GG_DT_F32 ? p->data : NULL;
        if (!f || f[0] != 1.0f || f[1] != 1.0f || !(f[2] > 0) || !(f[3] > 0))
          return gg_errf(err, errlen, GG_EUNSUPPORTED,
                         "%s: node '%s' (%s): scales must be 1 for N and C and positive", path,
                         n->name, n->src_op);
        n->a.scale_hw[0] = f[2], n->a.scale_hw[1] = f[3];
        n->a.out_hw[0] = -1;
      }
      n->n_in = 1;
    }
    if (n->a.out_hw[0] == -1) {
      double h = floor((double)x->shape[1] * n->a.scale_hw[0]),
             w = floor((double)x->shape[2] * n->a.scale_hw[1]);
      if (!(h >= 1 && w >= 1 && h <= 65536 && w <= 65536))
        return gg_errf(err, errlen, GG_ERANGE, "%s: node '%s' (%s): output size %gx%g out of range",
                       path, n->name, n->src_op, h, w);
      n->a.out_hw[0] = (int64_t)h, n->a.out_hw[1] = (int64_t)w;
    }
  }
  /* ONNX auto_pad SAME_LOWER (pads -1): SAME's total padding, the odd
   * pixel first, from the input size (NHWC) */
  if ((n->op == GG_OP_CONV2D || n->op == GG_OP_DEPTHWISE || n->op == GG_OP_MAXPOOL ||
       n->op == GG_OP_AVGPOOL) &&
      n->a.padding == GG_PAD_EXPLICIT && n->a.pads[0] == -1) {
    const gg_tval *x = &vals[n->in[0]];
    int pool = n->op == GG_OP_MAXPOOL || n->op == GG_OP_AVGPOOL;
    const gg_tval *w = pool ? NULL : &vals[n->in[1]];
    if (x->ndim != 4 || (w && w->ndim != 4))
      return gg_errf(err, errlen, GG_EPARSE, "%s: node '%s' (%s): needs a 4-D input", path, n->name,
                     n->src_op);
    for (int d = 0; d < 2; d++) {
      int64_t in = x->shape[1 + d], k = pool ? n->a.ksize[d] : w->shape[d];
      int st = n->a.strides[d] > 0 ? n->a.strides[d] : 1;
      int dl = n->a.dilations[d] > 1 ? n->a.dilations[d] : 1; /* MaxPool's too */
      int64_t out = (in + st - 1) / st, tot = (out - 1) * st + (k - 1) * dl + 1 - in;
      if (tot < 0) tot = 0;
      if (tot > (1 << 20))
        return gg_errf(err, errlen, GG_ERANGE, "%s: node '%s' (%s): padding out of range", path,
                       n->name, n->src_op);
      n->a.pads[2 * d] = (int)(tot - tot / 2), n->a.pads[2 * d + 1] = (int)(tot / 2);
    }
  }
  /* ONNX ConvTranspose with output_shape or auto_pad SAME_* (pads[0] -2,
   * pads[1] 1 for SAME_UPPER): the pads that give that output size */
  if (n->op == GG_OP_CONV_TRANSPOSE && n->a.padding == GG_PAD_EXPLICIT && n->a.pads[0] == -2) {
    const gg_tval *x = &vals[n->in[0]], *w = &vals[n->in[1]];
    if (x->ndim != 4 || w->ndim != 4)
      return gg_errf(err, errlen, GG_EPARSE, "%s: node '%s' (%s): needs a 4-D input", path, n->name,
                     n->src_op);
    int upper = n->a.pads[1] == 1;
    for (int d = 0; d < 2; d++) {
      int64_t in = x->shape[1 + d], k = w->shape[d], st = n->a.strides[d], dl = n->a.dilations[d];
      int64_t out = n->a.out_hw[d] > 0 ? n->a.out_hw[d] : in * st;
      int64_t tot = st * (in - 1) + n->a.output_padding[d] + (k - 1) * dl + 1 - out;
      if (tot < 0 && tot >= -(1 << 20)) /* larger than the scatter: the rest at the end, */
        n->a.output_padding[d] += (int)-tot, tot = 0; /* as output_padding (ONNX Runtime) */
      if (tot < 0 || tot > (1 << 20))
        return gg_errf(err, errlen, GG_EUNSUPPORTED,
                       "%s: node '%s' (%s): an output size of %lld cannot be reached from %lld "
                       "(total padding %lld)",
                       path, n->name, n->src_op, (long long)out, (long long)in, (long long)tot);
      int64_t head = upper ? tot / 2 : tot - tot / 2;
      n->a.pads[2 * d] = (int)head, n->a.pads[2 * d + 1] = (int)(tot - head);
    }
    n->a.out_hw[0] = n->a.out_hw[1] = 0;
  }
  if (n->op == GG_OP_RESHAPE && n->a.axis == 1 && n->n_in == 2) {
    const gg_tval *x = &vals[n->in[0]], *sv = &vals[n->in[1]];
    if (!sv->data || sv->dtype != GG_DT_I32) return 0; /* the shape rule says why */
    const int32_t *d = sv->data;
    int zeros = 0;
    for (int64_t i = 0; i < sv->nelem; i++)
      zeros += d[i] == 0;
    if (!zeros) return 0;
    int32_t *nd = gg__const_alloc((size_t)sv->nelem * 4);
    if (!nd) return GG_ENOMEM;
    for (int64_t i = 0; i < sv->nelem; i++) {
      nd[i] = d[i];
      if (d[i]) continue;
      if (i >= x->ndim) {
        gg__const_free(nd);
        return gg_errf(
            err, errlen, GG_EPARSE,
            "%s: node '%s' (%s): shape value 0 at index %lld copies a dim the %d-D input lacks",
            path, n->name, n->src_op, (long long)i, x->ndim);
      }
      nd[i] = (int32_t)x->shape[i];
    }
    gg_tval v = *sv;
    v.data = nd;
    v.buf = NULL, v.offs = 0;
    int t, rc = own_inputs(s, n);
    if (rc || (rc = new_session_const(s, vals, &v, &t))) {
      if (rc) gg__const_free(nd);
      return rc;
    }
    n->in[1] = t;
  }
  return 0;
}

/* A Cast that changes nothing in the engine's storage (no rounding or
 * wrapping, and the input already of the target dtype: FLOAT to FLOAT, a
 * FLOAT16 value back to FLOAT, INT32 to INT64, FLOAT to DOUBLE) is bypassed:
 * its readers read its input. Cast outputs that are graph outputs stay (the
 * caller asked for that tensor). Runs once the dtypes are inferred; the
 * bypassed nodes are then unread and dropped. Returns how many, or < 0 on
 * allocation failure. */
static int bypass_casts(gg_session *s, const gg_tval *vals) {
  gg_graph *g = &s->sg;
  int *repl = NULL, n = 0;
  for (int i = 0; i < g->n_order; i++) {
    const gg_node *nd = &g->nodes[g->order[i]];
    if (nd->op != GG_OP_CAST || nd->a.cast_kind != GG_CAST_NONE || nd->n_in != 1 ||
        nd->n_out != 1 || g->tensors[nd->out[0]].is_output ||
        vals[nd->in[0]].dtype != vals[nd->out[0]].dtype)
      continue;
    if (!repl) {
      repl = malloc(((size_t)g->n_tensors + 1) * sizeof *repl);
      if (!repl) return -1;
      for (int t = 0; t < g->n_tensors; t++)
        repl[t] = t;
    }
    repl[nd->out[0]] = repl[nd->in[0]];
    n++;
  }
  for (int i = 0; repl && i < g->n_order; i++) {
    gg_node *nd = &g->nodes[g->order[i]];
    int hit = 0;
    for (int k = 0; k < nd->n_in; k++)
      hit |= nd->in[k] >= 0 && repl[nd->in[k]] != nd->in[k];
    if (!hit) continue;
    if (own_inputs(s, nd)) {
      free(repl);
      return -1;
    }
    for (int k = 0; k < nd->n_in; k++)
      if (nd->in[k] >= 0) nd->in[k] = repl[nd->in[k]];
  }
  free(repl);
  return n;
}

/* Shape inference over the session's graph, evaluating on the way every
 * small node whose value follows from the input shapes alone (Shape, and
 * the shape arithmetic fed by it: Gather/Concat/Slice/Cast/...): Reshape,
 * Expand, Resize and Slice then see their parameters. What is evaluated is
 * held by the session (fold_bytes, counted as weights) and leaves the run. */
static int infer_and_fold(gg_session *s, gg_tval *vals, char *err, size_t errlen) {
  gg_graph *g = &s->sg;
  int kept = 0, rc = 0;
  for (int i = 0; i < g->n_order; i++) {
    gg_node *n = &g->nodes[g->order[i]];
    char msg[400];
    if ((rc = resolve_params(s, n, vals, err, errlen))) return rc;
    if ((rc = gg__op_infer(n, vals, msg, sizeof msg)))
      return gg_errf(err, errlen, rc, "%s: %s", s->m->path, msg);
    int fold = n->n_out > 0 && n->op != GG_OP_PLACEHOLDER && n->op != GG_OP_CONST;
    for (int k = 0; fold && k < n->n_out; k++)
      fold = vals[n->out[k]].nelem <= SESSION_FOLD_MAX && !g->tensors[n->out[k]].is_output;
    if (fold && n->op != GG_OP_SHAPE)
      for (int k = 0; fold && k < n->n_in; k++)
        fold = vals[n->in[k]].data != NULL;
    if (fold && n->op == GG_OP_SHAPE)
      fold = 1;
    else if (fold && !n->n_in)
      fold = 0;
    if (!fold) {
      g->order[kept++] = g->order[i];
      continue;
    }
    for (int k = 0; k < n->n_out; k++) {
      gg_tval *o = &vals[n->out[k]];
      o->data = gg__const_alloc((size_t)o->nelem * gg__dtype_size(o->dtype));
      if (!o->data || (rc = keep_fold(s, o->data))) {
        gg__const_free(o->data);
        o->data = NULL;
        return GG_ENOMEM;
      }
      s->fold_bytes += GG_CONST_BYTES((uint64_t)o->nelem * gg__dtype_size(o->dtype));
    }
    if ((rc = gg__op_run(n, vals, NULL)))
      return gg_errf(err, errlen, rc,
                     "%s: node '%s' (%s): evaluating it from the input shapes failed: %s",
                     s->m->path, n->name, n->src_op, gg_strerror(rc));
    for (int k = 0; k < n->n_out; k++) {
      gg_tensor *t = &g->tensors[n->out[k]];
      vals[n->out[k]].is_const = 1;
      t->v = vals[n->out[k]];
      t->is_const = 1;
    }
    n->op = GG_OP_CONST;
    n->n_in = 0;
  }
  int folded = g->n_order - kept;
  g->n_order = kept;
  g->weights_bytes += s->fold_bytes;
  int bypassed = bypass_casts(s, vals);
  if (bypassed < 0) return GG_ENOMEM;
  /* Nodes only the folded ones read (a Transpose feeding a Shape), and the
   * bypassed Casts, need not run any more: drop every node whose outputs
   * nothing live reads. */
  char *used = calloc((size_t)g->n_tensors + 1, 1);
  if (!used) return GG_ENOMEM;
  for (int i = 0; i < g->n_outputs; i++) used[g->outputs[i]] = 1;
  int dropped = 0;
  for (int i = g->n_order - 1; i >= 0; i--) {
    const gg_node *n = &g->nodes[g->order[i]];
    int live = 0;
    for (int k = 0; k < n->n_out; k++) live |= used[n->out[k]];
    if (!live) {
      g->order[i] = -1, dropped++;
      continue;
    }
    for (int k = 0; k < n->n_in; k++) used[n->in[k]] = 1;
  }
  free(used);
  kept = 0;
  for (int i = 0; i < g->n_order; i++)
    if (g->order[i] >= 0) g->order[kept++] = g->order[i];
  g->n_order = kept;
  if (folded || dropped)
    GG_DEBUG("ENG", "%s: %d nodes evaluated from the input shapes, %d Casts bypassed, %d left unread",
             s->m->path, folded, bypassed, dropped);
  return 0;
}

/* The session's shallow copy of the model graph (room for one new tensor
 * per node: resolved Reshape shapes). */
static int copy_graph(gg_session *s) {
  const gg_graph *mg = s->m->g;
  s->sg = *mg;
  s->sg.tensors = malloc(((size_t)mg->n_tensors + (size_t)mg->n_nodes + 1) * sizeof *s->sg.tensors);
  s->sg.nodes = malloc(((size_t)mg->n_nodes + 1) * sizeof *s->sg.nodes);
  s->sg.order = malloc(((size_t)mg->n_order + 1) * sizeof *s->sg.order);
  if (!s->sg.tensors || !s->sg.nodes || !s->sg.order) return GG_ENOMEM;
  memcpy(s->sg.tensors, mg->tensors, (size_t)mg->n_tensors * sizeof *mg->tensors);
  memcpy(s->sg.nodes, mg->nodes, (size_t)mg->n_nodes * sizeof *mg->nodes);
  memcpy(s->sg.order, mg->order, (size_t)mg->n_order * sizeof *mg->order);
  s->g = &s->sg;
  return 0;
}

int gg_session_new(gg_model *m, const int64_t *shape, int ndim, const gg_session_opts *opts,
                   gg_session **out, char *err, size_t errlen) {
  return gg_session_new_on(m, shape, ndim, opts, NULL, out, err, errlen);
}

int gg_session_new_on(gg_model *m, const int64_t *shape, int ndim, const gg_session_opts *opts,
                      gg_pool *pool, gg_session **out, char *err, size_t errlen) {
  const int64_t *shapes[1] = {shape};
  int ndims[1] = {ndim};
  return gg_session_new_shapes(m, shape ? 1 : 0, shapes, ndims, opts, pool, out, err, errlen);
}

int gg_session_new_shapes(gg_model *m, int n_inputs, const int64_t *const *shapes, const int *ndims,
                          const gg_session_opts *opts, gg_pool *pool, gg_session **out, char *err,
                          size_t errlen) {
  char tmp[8];
  if (!err) err = tmp, errlen = sizeof tmp;
  if (!m || !out || n_inputs < 0 || (n_inputs && (!shapes || !ndims)))
    return gg_errf(
        err, errlen, GG_EINVAL,
        "gg_session_new: model and out are required (and shapes, ndims for n_inputs > 0)");
  *out = NULL;
  gg_session_opts o;
  memset(&o, 0, sizeof o);
  if (opts) o = *opts;
  if (o.backend == GG_ENGINE_XNNPACK && !gg_xnn_available())
    return gg_errf(err, errlen, GG_ENOTIMPL, "XNNPACK is not part of this build (install libxnnpack-dev and rebuild, or use the naive backend)");
  gg_session *s = calloc(1, sizeof *s);
  if (!s) return GG_ENOMEM;
  s->m = m;
  int rc = copy_graph(s);
  const gg_graph *mg = m->g;
  gg_tval *vals = rc ? NULL : calloc((size_t)mg->n_tensors + (size_t)mg->n_nodes + 1, sizeof *vals);
  if (!vals) rc = GG_ENOMEM;
  if (rc) goto fail;
  for (int t = 0; t < mg->n_tensors; t++) {
    vals[t] = mg->tensors[t].v;
    vals[t].is_const = mg->tensors[t].is_const;
    if (!mg->tensors[t].is_const) vals[t].data = NULL;
  }
  if ((rc = set_input_shapes(s, vals, n_inputs, shapes, ndims, err, errlen))) goto fail;
  uint64_t fold0 = host_allocated();
  if ((rc = infer_and_fold(s, vals, err, errlen))) goto fail;
  uint64_t folded = host_allocated() - fold0;
  if ((rc = make_backends(s, &o, pool, err, errlen))) goto fail;
  if ((rc = schedule(s, vals))) goto fail;
  uint64_t host0 = host_allocated(), xnn0 = 0, dev0 = pool_allocated(s->pool);
  gg_xnn_mem_stats(&xnn0, NULL);
  if ((rc = place_memory(s, vals, !o.no_reuse, err, errlen))) goto fail;
  if ((rc = choose_algos(s))) goto fail;
  if ((rc = prepare_steps(s, err, errlen))) goto fail;
  uint64_t xnn1 = 0;
  gg_xnn_mem_stats(&xnn1, NULL);
  fill_memory(s, m->weights_measured + folded + (host_allocated() - host0) + (xnn1 - xnn0),
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

void *gg_session_input_data(gg_session *s, int i, gg_tensor_info *info) {
  if (!s || i < 0 || i >= s->g->n_inputs) return NULL;
  int t = s->g->inputs[i];
  if (info) fill_info(&s->g->tensors[t], NULL, &s->dom[0].vals[t], info);
  return s->dom[0].vals[t].data;
}

float *gg_session_input(gg_session *s, int i, gg_tensor_info *info) {
  if (!s || i < 0 || i >= s->g->n_inputs || s->dom[0].vals[s->g->inputs[i]].dtype != GG_DT_F32)
    return NULL;
  return gg_session_input_data(s, i, info);
}

/* 1 when every output of n is zero-size: the node has nothing to compute. */
static int all_empty(const gg_node *n, const gg_tval *vals) {
  for (int k = 0; k < n->n_out; k++)
    if (vals[n->out[k]].nelem) return 0;
  return 1;
}

static int run_copy(gg_session *s, const step *st, char *err, size_t errlen) {
  const gg_tval *src = &s->dom[st->from].vals[st->tensor], *dst = &s->dom[st->to].vals[st->tensor];
  size_t n = (size_t)src->nelem * gg__dtype_size(src->dtype);
  if (!n) return 0;
  int rc = gg_backend_buffer_copy(dst->buf, dst->offs, src->buf, src->offs, n);
  if (rc)
    gg_errf(err, errlen, rc, "%s: copying tensor '%s' (%zu bytes) from %s to %s failed: %s",
            s->m->path, s->g->tensors[st->tensor].name, n, s->dom[st->from].mem_be->iface->name,
            s->dom[st->to].mem_be->iface->name, gg_strerror(rc));
  return rc;
}

int gg_session_run(gg_session *s, char *err, size_t errlen) {
  const gg_graph *g = s->g;
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
    if (all_empty(n, s->dom[s->be_dom[st->be]].vals)) continue; /* nothing to write */
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
  if (!s || i < 0 || i >= s->g->n_outputs || s->dom[0].vals[s->g->outputs[i]].dtype != GG_DT_F32)
    return NULL;
  return gg_session_output_data(s, i, info);
}

const void *gg_session_output_data(gg_session *s, int i, gg_tensor_info *info) {
  if (!s || i < 0 || i >= s->g->n_outputs) return NULL;
  int t = s->g->outputs[i];
  if (info) fill_info(&s->g->tensors[t], s->g->output_names[i], &s->dom[0].vals[t], info);
  return s->dom[0].vals[t].data;
}

int64_t gg_session_output_elems(gg_session *s, int i) {
  if (!s || i < 0 || i >= s->g->n_outputs) return 0;
  return s->dom[0].vals[s->g->outputs[i]].nelem;
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
