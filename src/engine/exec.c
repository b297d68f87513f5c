/* Models and sessions: load, prepare for one input shape (shape inference,
 * memory plan, one arena, backend operators), run. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "engine/xnn.h"
#include "gpuguard/core.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "gpuguard/memory.h"

#ifdef GG_HAVE_PTHREADPOOL
#include <pthreadpool.h>
#endif

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gg_model {
  gg_graph *g;
  char *path;
  uint64_t weights_measured; /* accounted host bytes the load left allocated */
};

/* Per-node backend state. */
typedef struct node_exec {
  gg_xnn_op *xnn;   /* NULL: naive kernel */
  gg_xnn_op *post;  /* in-place activation after the XNN op (LeakyRelu) */
  int post_prelu;   /* naive in-place PReLU after the XNN op */
} node_exec;

struct gg_session {
  gg_model *m;
  gg_tval *vals;
  gg__plan plan;
  uint8_t *arena;
  uint64_t arena_bytes;
  node_exec *ex;
  struct pthreadpool *pool;
  gg_xnn_threadpool *xpool;
  gg__kctx kctx;
  gg_engine_mem mem;
  int profile;                    /* GG_ENGINE_PROFILE=1: time per op kind */
  uint64_t prof_ns[GG_OP_COUNT][2]; /* [op][0 naive, 1 xnnpack] */
  uint64_t prof_runs;
};

__attribute__((format(printf, 4, 5))) static int efail(char *err, size_t errlen, int code,
                                                       const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}

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
  if (!path || !out) return efail(err, errlen, GG_EINVAL, "gg_model_load: path and out are required");
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

/* ------------------------------------------------------------ XNNPACK */

static gg_xnn_act xact(gg_act a) {
  return a == GG_ACT_RELU ? GG_XNN_ACT_RELU : a == GG_ACT_RELU6 ? GG_XNN_ACT_RELU6 : GG_XNN_ACT_NONE;
}

/* Creates the XNNPACK op for node n, or leaves ex->xnn NULL when the op is
 * not covered (the naive kernel runs it). Returns 0 or a creation error. */
static int xnn_make(gg_session *s, const gg_node *n, node_exec *ex) {
  gg_tval *v = s->vals;
  const gg_tval *x = n->n_in ? &v[n->in[0]] : NULL, *y = &v[n->out[0]];
  gg_xnn_threadpool *tp = s->xpool;
  int rc = 0;
  switch (n->op) {
  case GG_OP_CONV2D:
  case GG_OP_DEPTHWISE: {
    const gg_tval *w = &v[n->in[1]];
    if (!s->m->g->tensors[n->in[1]].is_const) return 0;
    gg_xnn_conv2d_params p;
    memset(&p, 0, sizeof p);
    p.batch = (size_t)x->shape[0], p.in_h = (size_t)x->shape[1], p.in_w = (size_t)x->shape[2];
    p.in_c = (size_t)x->shape[3], p.out_c = (size_t)y->shape[3];
    p.kernel_h = (uint32_t)w->shape[0], p.kernel_w = (uint32_t)w->shape[1];
    p.stride_h = (uint32_t)n->a.strides[0], p.stride_w = (uint32_t)n->a.strides[1];
    p.dilation_h = (uint32_t)n->a.dilations[0], p.dilation_w = (uint32_t)n->a.dilations[1];
    if (n->a.padding == GG_PAD_SAME) {
      gg_xnn_same_pads(p.in_h, p.kernel_h, p.stride_h, p.dilation_h, &p.pad_top, &p.pad_bottom);
      gg_xnn_same_pads(p.in_w, p.kernel_w, p.stride_w, p.dilation_w, &p.pad_left, &p.pad_right);
    } else if (n->a.padding == GG_PAD_EXPLICIT) {
      p.pad_top = (uint32_t)n->a.pads[0], p.pad_bottom = (uint32_t)n->a.pads[1];
      p.pad_left = (uint32_t)n->a.pads[2], p.pad_right = (uint32_t)n->a.pads[3];
    }
    p.groups = n->op == GG_OP_DEPTHWISE ? (uint32_t)p.in_c : (uint32_t)(p.in_c / (size_t)w->shape[2]);
    p.act = xact(n->a.act);
    rc = gg_xnn_conv2d_new(&p, w->data, n->a.has_bias ? v[n->in[2]].data : NULL, tp, &ex->xnn);
    break;
  }
  case GG_OP_MATMUL: {
    if (n->a.transpose_a || !s->m->g->tensors[n->in[1]].is_const) return 0;
    gg_xnn_fc_params p;
    memset(&p, 0, sizeof p);
    p.rows = (size_t)y->shape[0], p.in_ch = (size_t)x->shape[1], p.out_ch = (size_t)y->shape[1];
    p.transpose_b = n->a.transpose_b;
    p.act = xact(n->a.act);
    rc = gg_xnn_fc_new(&p, v[n->in[1]].data, n->a.has_bias ? v[n->in[2]].data : NULL, tp, &ex->xnn);
    break;
  }
  case GG_OP_MAXPOOL: {
    gg_xnn_pool2d_params p;
    memset(&p, 0, sizeof p);
    p.batch = (size_t)x->shape[0], p.in_h = (size_t)x->shape[1], p.in_w = (size_t)x->shape[2];
    p.channels = (size_t)x->shape[3];
    p.kernel_h = (uint32_t)n->a.ksize[0], p.kernel_w = (uint32_t)n->a.ksize[1];
    p.stride_h = (uint32_t)n->a.strides[0], p.stride_w = (uint32_t)n->a.strides[1];
    if (n->a.padding == GG_PAD_SAME) {
      gg_xnn_same_pads(p.in_h, p.kernel_h, p.stride_h, 1, &p.pad_top, &p.pad_bottom);
      gg_xnn_same_pads(p.in_w, p.kernel_w, p.stride_w, 1, &p.pad_left, &p.pad_right);
    } else if (n->a.padding == GG_PAD_EXPLICIT) {
      p.pad_top = (uint32_t)n->a.pads[0], p.pad_bottom = (uint32_t)n->a.pads[1];
      p.pad_left = (uint32_t)n->a.pads[2], p.pad_right = (uint32_t)n->a.pads[3];
    }
    rc = gg_xnn_max_pool2d_new(&p, tp, &ex->xnn);
    break;
  }
  case GG_OP_ADD:
  case GG_OP_SUB:
  case GG_OP_MUL:
  case GG_OP_MAXIMUM:
  case GG_OP_MINIMUM: {
    if (y->dtype != GG_DT_F32) return 0;
    const gg_tval *b = &v[n->in[1]];
    gg_xnn_binary_params p;
    memset(&p, 0, sizeof p);
    p.op = n->op == GG_OP_ADD ? GG_XNN_ADD : n->op == GG_OP_SUB ? GG_XNN_SUB
         : n->op == GG_OP_MUL ? GG_XNN_MUL : n->op == GG_OP_MAXIMUM ? GG_XNN_MAX : GG_XNN_MIN;
    p.a_ndim = (size_t)x->ndim, p.b_ndim = (size_t)b->ndim;
    for (int d = 0; d < x->ndim; d++) p.a_shape[d] = (size_t)x->shape[d];
    for (int d = 0; d < b->ndim; d++) p.b_shape[d] = (size_t)b->shape[d];
    p.act = xact(n->a.act);
    rc = gg_xnn_binary_new(&p, tp, &ex->xnn);
    break;
  }
  case GG_OP_RELU:
  case GG_OP_RELU6:
  case GG_OP_LEAKY_RELU:
  case GG_OP_SIGMOID:
  case GG_OP_ABS:
  case GG_OP_SQUARE: {
    gg_xnn_unary_params p;
    memset(&p, 0, sizeof p);
    p.op = n->op == GG_OP_RELU ? GG_XNN_RELU : n->op == GG_OP_RELU6 ? GG_XNN_RELU6
         : n->op == GG_OP_LEAKY_RELU ? GG_XNN_LEAKY_RELU : n->op == GG_OP_SIGMOID ? GG_XNN_SIGMOID
         : n->op == GG_OP_ABS ? GG_XNN_ABS : GG_XNN_SQUARE;
    p.count = (size_t)y->nelem;
    p.alpha = n->a.alpha;
    if (!p.count) return 0;
    rc = gg_xnn_unary_new(&p, tp, &ex->xnn);
    break;
  }
  case GG_OP_SOFTMAX: {
    int64_t ch = x->shape[x->ndim - 1];
    if (!ch || !x->nelem) return 0;
    rc = gg_xnn_softmax_new((size_t)(x->nelem / ch), (size_t)ch, tp, &ex->xnn);
    break;
  }
  case GG_OP_RESIZE_BILINEAR: {
    gg_xnn_resize_params p = {(size_t)x->shape[0], (size_t)x->shape[1], (size_t)x->shape[2],
                              (size_t)x->shape[3], (size_t)y->shape[1], (size_t)y->shape[2],
                              n->a.align_corners, n->a.half_pixel_centers};
    rc = gg_xnn_resize_bilinear_new(&p, tp, &ex->xnn);
    break;
  }
  case GG_OP_PAD: {
    if (x->dtype != GG_DT_F32 || !x->nelem || x->ndim < 1) return 0;
    size_t shp[GG_MAX_DIMS], pre[GG_MAX_DIMS], post[GG_MAX_DIMS];
    const int32_t *pd = v[n->in[1]].data;
    for (int d = 0; d < x->ndim; d++)
      shp[d] = (size_t)x->shape[d], pre[d] = (size_t)pd[2 * d], post[d] = (size_t)pd[2 * d + 1];
    float val = n->n_in > 2 ? *(const float *)v[n->in[2]].data : 0.0f;
    rc = gg_xnn_pad_new((size_t)x->ndim, shp, pre, post, val, tp, &ex->xnn);
    break;
  }
  case GG_OP_MEAN: {
    const gg_tval *ax = &v[n->in[1]];
    const int32_t *a = ax->data;
    if (x->ndim != 4 || ax->nelem != 2 || x->dtype != GG_DT_F32) return 0;
    int a0 = a[0] < 0 ? a[0] + 4 : a[0], a1 = a[1] < 0 ? a[1] + 4 : a[1];
    if (!((a0 == 1 && a1 == 2) || (a0 == 2 && a1 == 1))) return 0;
    rc = gg_xnn_global_avg_pool_new((size_t)x->shape[0], (size_t)(x->shape[1] * x->shape[2]),
                                    (size_t)x->shape[3], tp, &ex->xnn);
    break;
  }
  default:
    return 0;
  }
  if (rc) return rc;
  if ((n->op == GG_OP_CONV2D || n->op == GG_OP_DEPTHWISE || n->op == GG_OP_MATMUL) && ex->xnn) {
    if (n->a.act == GG_ACT_LEAKY) {
      gg_xnn_unary_params p;
      memset(&p, 0, sizeof p);
      p.op = GG_XNN_LEAKY_RELU, p.count = (size_t)y->nelem, p.alpha = n->a.alpha;
      rc = gg_xnn_unary_new(&p, tp, &ex->post);
    } else if (n->a.act == GG_ACT_PRELU)
      ex->post_prelu = 1;
  }
  return rc;
}

static int xnn_bind(gg_session *s, const gg_node *n, node_exec *ex) {
  gg_tval *v = s->vals;
  float *y = v[n->out[0]].data;
  const float *a = v[n->in[0]].data;
  const float *b = NULL;
  if (n->op == GG_OP_ADD || n->op == GG_OP_SUB || n->op == GG_OP_MUL || n->op == GG_OP_MAXIMUM ||
      n->op == GG_OP_MINIMUM)
    b = v[n->in[1]].data;
  int rc = gg_xnn_op_bind(ex->xnn, a, b, y);
  if (!rc && ex->post) rc = gg_xnn_op_bind(ex->post, y, NULL, y);
  return rc;
}

static void prelu_inplace(const gg_node *n, gg_tval *v) {
  gg_tval *y = &v[n->out[0]];
  const gg_tval *al = &v[n->in[2 + n->a.has_bias]];
  float *d = y->data;
  const float *a = al->data;
  int64_t c = y->shape[y->ndim - 1];
  if (al->nelem == 1) {
    for (int64_t i = 0; i < y->nelem; i++) d[i] = d[i] > 0 ? d[i] : d[i] * a[0];
    return;
  }
  for (int64_t i = 0; i < y->nelem; i += c)
    for (int64_t k = 0; k < c; k++) d[i + k] = d[i + k] > 0 ? d[i + k] : d[i + k] * a[k];
}

/* ------------------------------------------------------------ sessions */

static void print_profile(const gg_session *s) {
  uint64_t total = 0;
  for (int i = 0; i < GG_OP_COUNT; i++) total += s->prof_ns[i][0] + s->prof_ns[i][1];
  if (!s->prof_runs || !total) return;
  fprintf(stderr, "[ENG] profile of %s over %llu runs (ms per run):\n", s->m->path,
          (unsigned long long)s->prof_runs);
  for (int i = 0; i < GG_OP_COUNT; i++)
    for (int b = 0; b < 2; b++)
      if (s->prof_ns[i][b])
        fprintf(stderr, "  %-16s %-8s %8.3f  %5.1f%%\n", gg__op_name((gg_op)i), b ? "xnnpack" : "naive",
                (double)s->prof_ns[i][b] / 1e6 / (double)s->prof_runs,
                100.0 * (double)s->prof_ns[i][b] / (double)total);
}

void gg_session_free(gg_session *s) {
  if (!s) return;
  if (s->profile) print_profile(s);
  if (s->ex)
    for (int i = 0; i < s->m->g->n_order; i++) {
      gg_xnn_op_free(s->ex[i].xnn);
      gg_xnn_op_free(s->ex[i].post);
    }
  free(s->ex);
  gg_xnn_threadpool_free(s->xpool);
#ifdef GG_HAVE_PTHREADPOOL
  if (s->pool) pthreadpool_destroy(s->pool);
#endif
  gg_host_free(s->arena);
  gg__plan_free(&s->plan);
  free(s->vals);
  free(s);
}

int gg_session_new(gg_model *m, const int64_t *shape, int ndim, const gg_session_opts *opts,
                   gg_session **out, char *err, size_t errlen) {
  char tmp[8];
  if (!err) err = tmp, errlen = sizeof tmp;
  if (!m || !out) return efail(err, errlen, GG_EINVAL, "gg_session_new: model and out are required");
  *out = NULL;
  gg_session_opts o;
  memset(&o, 0, sizeof o);
  if (opts) o = *opts;
  if (o.backend == GG_ENGINE_XNNPACK && !gg_xnn_available())
    return efail(err, errlen, GG_ENOTIMPL, "XNNPACK is not part of this build (install libxnnpack-dev and rebuild, or use the naive backend)");
  int use_xnn = o.backend != GG_ENGINE_NAIVE && gg_xnn_available();
  gg_graph *g = m->g;
  gg_session *s = calloc(1, sizeof *s);
  if (!s) return GG_ENOMEM;
  s->m = m;
  s->vals = calloc((size_t)g->n_tensors + 1, sizeof *s->vals);
  s->ex = calloc((size_t)g->n_order + 1, sizeof *s->ex);
  int rc = 0;
  if (!s->vals || !s->ex) {
    rc = GG_ENOMEM;
    goto fail;
  }
  for (int t = 0; t < g->n_tensors; t++) {
    s->vals[t] = g->tensors[t].v;
    if (!g->tensors[t].is_const) s->vals[t].data = NULL;
  }
  /* Input shapes. */
  for (int i = 0; i < g->n_inputs; i++) {
    gg_tval *iv = &s->vals[g->inputs[i]];
    const gg_tensor *it = &g->tensors[g->inputs[i]];
    if (i == 0 && shape) {
      if (ndim != it->v.ndim) {
        rc = efail(err, errlen, GG_EINVAL, "%s: input '%s' has rank %d, got a shape of rank %d",
                   m->path, it->name, it->v.ndim, ndim);
        goto fail;
      }
      for (int d = 0; d < ndim; d++) {
        if (shape[d] < 1 || (it->v.shape[d] >= 0 && it->v.shape[d] != shape[d])) {
          char a[96], b[96];
          rc = efail(err, errlen, GG_EINVAL, "%s: input '%s' expects shape %s, got %s", m->path,
                     it->name, gg__shape_str(it->v.shape, ndim, a, sizeof a),
                     gg__shape_str(shape, ndim, b, sizeof b));
          goto fail;
        }
        iv->shape[d] = shape[d];
      }
    } else
      for (int d = 0; d < iv->ndim; d++)
        if (iv->shape[d] < 0) iv->shape[d] = 1;
    iv->dtype = GG_DT_F32;
    if (gg__shape_nelem(iv->shape, iv->ndim, &iv->nelem)) {
      rc = efail(err, errlen, GG_ERANGE, "%s: input shape too large", m->path);
      goto fail;
    }
  }
  /* Shape inference in execution order. */
  for (int i = 0; i < g->n_order; i++) {
    char msg[400];
    if ((rc = gg__op_infer(&g->nodes[g->order[i]], s->vals, msg, sizeof msg))) {
      efail(err, errlen, rc, "%s: %s", m->path, msg);
      goto fail;
    }
  }
  /* Plan, then the one arena allocation. */
  if ((rc = gg__plan_memory(g, s->vals, !o.no_reuse, &s->plan))) goto fail;
  uint64_t host0 = host_allocated(), xnn0 = 0;
  gg_xnn_mem_stats(&xnn0, NULL);
  s->arena_bytes = s->plan.peak + GG_XNN_EXTRA_BYTES;
  s->arena = gg_host_alloc("engine/arena", (size_t)s->arena_bytes);
  if (!s->arena) {
    rc = efail(err, errlen, GG_ENOMEM, "%s: cannot allocate the %llu-byte activation arena",
               m->path, (unsigned long long)s->arena_bytes);
    goto fail;
  }
  memset(s->arena, 0, (size_t)s->arena_bytes);
  for (int t = 0; t < g->n_tensors; t++)
    if (s->plan.offset[t] >= 0) s->vals[t].data = s->arena + s->plan.offset[t];
  /* Threads and backend operators. */
  int threads = o.threads < 1 ? 1 : o.threads;
#ifdef GG_HAVE_PTHREADPOOL
  /* One pool of workers per session: with XNNPACK its own pool runs the
   * heavy ops and the few naive ones stay on the caller's thread (two pools
   * of spinning workers on the same cores slow each other down badly). */
  if (threads > 1 && !use_xnn) {
    s->pool = pthreadpool_create((size_t)threads);
    if (!s->pool) {
      rc = GG_ENOMEM;
      goto fail;
    }
  }
#endif
  s->kctx.pool = s->pool;
  uint64_t ws = 0;
  int nx = 0;
  if (use_xnn) {
    if ((rc = gg_xnn_threadpool_new(threads, &s->xpool))) {
      efail(err, errlen, rc, "%s: cannot create the XNNPACK thread pool", m->path);
      goto fail;
    }
    for (int i = 0; i < g->n_order; i++) {
      const gg_node *n = &g->nodes[g->order[i]];
      if ((rc = xnn_make(s, n, &s->ex[i]))) {
        gg_xnn_op_free(s->ex[i].xnn);
        gg_xnn_op_free(s->ex[i].post);
        memset(&s->ex[i], 0, sizeof s->ex[i]);
        if (rc == GG_EINVAL || rc == GG_EUNSUPPORTED) {
          /* A shape or parameter XNNPACK refuses: the naive kernel runs it. */
          GG_DEBUG("ENG", "%s: node '%s' (%s) runs on the naive kernel: XNNPACK said %s",
                   m->path, n->name, n->tf_op, gg_err_name(rc));
          rc = 0;
          continue;
        }
        efail(err, errlen, rc, "%s: node '%s' (%s): XNNPACK operator creation failed (%s)",
              m->path, n->name, n->tf_op, gg_strerror(rc));
        goto fail;
      }
      if (!s->ex[i].xnn) continue;
      if ((rc = xnn_bind(s, n, &s->ex[i]))) {
        efail(err, errlen, rc, "%s: node '%s' (%s): XNNPACK bind failed (%s)", m->path, n->name,
              n->tf_op, gg_strerror(rc));
        goto fail;
      }
      ws += gg_xnn_op_bytes(s->ex[i].xnn) + (s->ex[i].post ? gg_xnn_op_bytes(s->ex[i].post) : 0);
      nx++;
    }
  }
  uint64_t xnn1 = 0;
  gg_xnn_mem_stats(&xnn1, NULL);
  s->mem.weights = g->weights_bytes;
  s->mem.arena = s->arena_bytes;
  s->mem.arena_peak = s->plan.peak;
  s->mem.arena_no_reuse = s->plan.sum;
  s->mem.workspace = ws;
  s->mem.predicted = s->mem.weights + s->mem.arena + s->mem.workspace;
  s->mem.measured = m->weights_measured + (host_allocated() - host0) + (xnn1 - xnn0);
  s->mem.n_ops = g->n_order;
  s->mem.n_ops_xnnpack = nx;
  const char *prof = getenv("GG_ENGINE_PROFILE");
  s->profile = prof && *prof && strcmp(prof, "0");
  *out = s;
  return 0;
fail:
  gg_session_free(s);
  return rc;
}

float *gg_session_input(gg_session *s, int i, gg_tensor_info *info) {
  if (!s || i < 0 || i >= s->m->g->n_inputs) return NULL;
  int t = s->m->g->inputs[i];
  if (info) fill_info(&s->m->g->tensors[t], NULL, &s->vals[t], info);
  return s->vals[t].data;
}

int gg_session_run(gg_session *s, char *err, size_t errlen) {
  const gg_graph *g = s->m->g;
  for (int i = 0; i < g->n_order; i++) {
    const gg_node *n = &g->nodes[g->order[i]];
    node_exec *ex = &s->ex[i];
    int rc;
    uint64_t t0 = s->profile ? gg_now_ns() : 0;
    if (ex->xnn) {
      rc = gg_xnn_op_run(ex->xnn);
      if (!rc && ex->post) rc = gg_xnn_op_run(ex->post);
      if (!rc && ex->post_prelu) prelu_inplace(n, s->vals);
    } else
      rc = gg__op_run(n, s->vals, &s->kctx);
    if (s->profile) s->prof_ns[n->op][ex->xnn != NULL] += gg_now_ns() - t0;
    if (rc)
      return efail(err, errlen, rc, "%s: node '%s' (%s) failed: %s", s->m->path, n->name,
                   n->tf_op, gg_strerror(rc));
  }
  s->prof_runs++;
  return 0;
}

const float *gg_session_output(gg_session *s, int i, gg_tensor_info *info) {
  if (!s || i < 0 || i >= s->m->g->n_outputs) return NULL;
  int t = s->m->g->outputs[i];
  if (info) fill_info(&s->m->g->tensors[t], s->m->g->output_names[i], &s->vals[t], info);
  return s->vals[t].data;
}

int64_t gg_session_output_elems(gg_session *s, int i) {
  if (!s || i < 0 || i >= s->m->g->n_outputs) return 0;
  return s->vals[s->m->g->outputs[i]].nelem;
}

void gg_session_memory(const gg_session *s, gg_engine_mem *out) {
  if (!s || !out) return;
  *out = s->mem;
}
