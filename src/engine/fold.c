/* Graph rewrites at import: constant folding and fusion. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FOLD_MAX_ELEMS ((int64_t)1 << 24)

int gg__graph_fold_constants(gg_graph *g, char *err, size_t errlen) {
  gg_tval *vals = calloc((size_t)g->n_tensors + 1, sizeof *vals);
  if (!vals) return GG_ENOMEM;
  for (int t = 0; t < g->n_tensors; t++) {
    vals[t] = g->tensors[t].v;
    if (!g->tensors[t].is_const) vals[t].data = NULL;
  }
  int rc = 0, folded = 0;
  for (int oi = 0; oi < g->n_order && !rc; oi++) {
    gg_node *n = &g->nodes[g->order[oi]];
    if (n->dead || n->op == GG_OP_CONST || n->op == GG_OP_PLACEHOLDER || !n->n_in) continue;
    int all = 1;
    for (int k = 0; k < n->n_in; k++)
      all &= g->tensors[n->in[k]].is_const;
    if (!all) continue;
    char msg[512];
    if ((rc = gg__op_infer(n, vals, msg, sizeof msg))) {
      snprintf(err, errlen, "%s: %s", g->path, msg);
      break;
    }
    int big = 0;
    for (int k = 0; k < n->n_out; k++)
      big |= vals[n->out[k]].nelem > FOLD_MAX_ELEMS;
    if (big) continue;
    for (int k = 0; k < n->n_out && !rc; k++) {
      gg_tval *o = &vals[n->out[k]];
      o->data = gg__const_alloc((size_t)o->nelem * 4);
      if (!o->data) rc = GG_ENOMEM;
    }
    if (!rc && (rc = gg__op_run(n, vals, NULL)))
      snprintf(err, errlen, "%s: node '%s' (%s): constant evaluation failed (%s)", g->path, n->name,
               n->src_op, gg_strerror(rc));
    for (int k = 0; k < n->n_out; k++) {
      gg_tensor *t = &g->tensors[n->out[k]];
      if (rc) {
        gg__const_free(vals[n->out[k]].data);
        vals[n->out[k]].data = NULL;
        continue;
      }
      t->v = vals[n->out[k]];
      t->is_const = 1;
    }
    if (rc) break;
    n->op = GG_OP_CONST;
    n->n_in = 0;
    folded++;
  }
  free(vals);
  if (!rc && folded) GG_DEBUG("ENG", "%s: folded %d constant nodes", g->path, folded);
  return rc;
}

/* ------------------------------------------------------------ fusion */

/* Number of live consumers of tensor t; *only gets the last one seen. */
static int consumers(const gg_graph *g, int t, int *only) {
  int c = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const gg_node *n = &g->nodes[i];
    if (n->dead) continue;
    for (int k = 0; k < n->n_in; k++)
      if (n->in[k] == t) {
        c++;
        *only = i;
      }
  }
  return c;
}

/* The single consumer of node p's output 0, or -1 (also when it is a graph output). */
static int sole_consumer(const gg_graph *g, int p) {
  int t = g->nodes[p].out[0], c = -1;
  if (g->tensors[t].is_output || consumers(g, t, &c) != 1) return -1;
  return c;
}

/* Node p takes over node c's output (c becomes dead). */
static void absorb(gg_graph *g, int p, int c) {
  int old = g->nodes[p].out[0], t = g->nodes[c].out[0];
  g->tensors[old].producer = -1;
  g->nodes[p].out[0] = t;
  g->tensors[t].producer = p;
  g->nodes[c].dead = 1;
}

/* Index of n's other operand when one of two inputs is tensor t, else -1. */
static int other_input(const gg_node *n, int t) {
  if (n->n_in != 2) return -1;
  if (n->in[0] == t) return 1;
  if (n->in[1] == t) return 0;
  return -1;
}

/* A constant [C] or [1,..,1,C] vector of length c. */
static int is_channel_vec(const gg_tensor *t, int64_t c) {
  if (!t->is_const || t->v.dtype != GG_DT_F32 || t->v.nelem != c || t->v.ndim < 1) return 0;
  for (int d = 0; d < t->v.ndim - 1; d++)
    if (t->v.shape[d] != 1) return 0;
  return 1;
}

/* A float constant that broadcasts over an NHWC tensor of c channels
 * without changing its shape: one value (rank <= 4, all dims 1) or a
 * channel vector of c. */
static int is_affine_const(const gg_tensor *t, int64_t c) {
  if (!t->is_const || t->v.dtype != GG_DT_F32 || t->v.ndim > 4) return 0;
  if (t->v.nelem == 1) {
    for (int d = 0; d < t->v.ndim; d++)
      if (t->v.shape[d] != 1) return 0;
    return 1;
  }
  return c > 1 && is_channel_vec(t, c);
}

/* Channel k's value of an is_affine_const tensor. */
static float affine_at(const gg_tensor *t, int64_t k) {
  const float *d = t->v.data;
  return t->v.nelem == 1 ? d[0] : d[k];
}

static int scalar_is(const gg_tensor *t, float v) {
  return t->is_const && t->v.dtype == GG_DT_F32 && t->v.nelem == 1 && ((float *)t->v.data)[0] == v;
}

static int add_input(gg_node *n, int t) {
  int *in = realloc(n->in, ((size_t)n->n_in + 2) * sizeof *in);
  if (!in) return GG_ENOMEM;
  n->in = in;
  n->in[n->n_in++] = t;
  return 0;
}

static int64_t out_channels(const gg_graph *g, const gg_node *n) {
  const gg_tval *w = &g->tensors[n->in[1]].v;
  if (!g->tensors[n->in[1]].is_const || w->ndim < 2) return -1;
  if (n->op == GG_OP_CONV2D && w->ndim == 4) return w->shape[3];
  if (n->op == GG_OP_DEPTHWISE && w->ndim == 4) return w->shape[2] * w->shape[3];
  if (n->op == GG_OP_MATMUL && w->ndim == 2 && !n->a.transpose_b) return w->shape[1];
  /* HWOI [KH, KW, CO/groups, CI]; one group only (the channel of a filter
   * value is then simply its O index) */
  if (n->op == GG_OP_CONV_TRANSPOSE && w->ndim == 4 && n->a.groups <= 1) return w->shape[2];
  return -1;
}

/* Index of p's bias input, or -1 when it has none. */
static int bias_input(const gg_node *p) {
  if (p->op == GG_OP_CONV_TRANSPOSE) return p->n_in > 2 ? 2 : -1;
  return p->a.has_bias ? 2 : -1;
}

/* Output channel of filter value k of p (out_channels co). */
static int64_t filter_channel(const gg_graph *g, const gg_node *p, int64_t k, int64_t co) {
  if (p->op == GG_OP_CONV_TRANSPOSE) return (k / g->tensors[p->in[1]].v.shape[3]) % co;
  return k % co;
}

/* relu(x) + (x - |x|) * c  ==  prelu(x, 2c), and x + (x - |x|) * c ==
 * prelu(x, 1 + 2c): the two forms of the MobileFaceNet export. */
static int fuse_prelu_pattern(gg_graph *g, int addi) {
  gg_node *add = &g->nodes[addi];
  if (add->op != GG_OP_ADD || add->n_in != 2 || add->a.act != GG_ACT_NONE) return 0;
  for (int side = 0; side < 2; side++) {
    int pm = g->tensors[add->in[!side]].producer;
    if (pm < 0 || g->nodes[pm].op != GG_OP_MUL) continue;
    gg_node *mul = &g->nodes[pm];
    int ci = -1, s = -1;
    for (int k = 0; k < 2; k++) {
      int p = g->tensors[mul->in[k]].producer;
      if (p >= 0 && g->nodes[p].op == GG_OP_SUB) s = p, ci = mul->in[!k];
    }
    if (s < 0 || !g->tensors[ci].is_const || g->tensors[ci].v.dtype != GG_DT_F32) continue;
    gg_node *sub = &g->nodes[s];
    int x = sub->in[0];
    int pa = g->tensors[sub->in[1]].producer;
    if (pa < 0 || g->nodes[pa].op != GG_OP_ABS || g->nodes[pa].in[0] != x) continue;
    int pr = g->tensors[add->in[side]].producer, with_relu;
    if (add->in[side] == x)
      with_relu = 0;
    else if (pr >= 0 && g->nodes[pr].op == GG_OP_RELU && g->nodes[pr].in[0] == x)
      with_relu = 1;
    else
      continue;
    int dummy;
    if (consumers(g, mul->out[0], &dummy) != 1 || consumers(g, sub->out[0], &dummy) != 1 ||
        consumers(g, g->nodes[pa].out[0], &dummy) != 1 || consumers(g, ci, &dummy) != 1 ||
        g->tensors[mul->out[0]].is_output || g->tensors[sub->out[0]].is_output ||
        g->tensors[g->nodes[pa].out[0]].is_output)
      continue;
    if (with_relu && (consumers(g, g->nodes[pr].out[0], &dummy) != 1 ||
                      g->tensors[g->nodes[pr].out[0]].is_output))
      continue;
    float *c = g->tensors[ci].v.data;
    for (int64_t i = 0; i < g->tensors[ci].v.nelem; i++)
      c[i] = with_relu ? 2.0f * c[i] : 1.0f + 2.0f * c[i];
    if (with_relu) g->nodes[pr].dead = 1;
    mul->dead = sub->dead = g->nodes[pa].dead = 1;
    add->op = GG_OP_PRELU;
    add->src_op = "Prelu";
    add->in[0] = x;
    add->in[1] = ci;
    return 1;
  }
  return 0;
}

static int is_layout_free(gg_op op) {
  switch (op) {
  case GG_OP_RELU:
  case GG_OP_RELU6:
  case GG_OP_LEAKY_RELU:
  case GG_OP_SIGMOID:
  case GG_OP_ABS:
  case GG_OP_SQUARE:
  case GG_OP_RSQRT:
  case GG_OP_IDENTITY: return 1;
  default: return 0;
  }
}

/* A constant int32 vector of n values, or NULL. */
static int32_t *const_i32(const gg_graph *g, int t, int64_t n) {
  const gg_tensor *tt = &g->tensors[t];
  if (!tt->is_const || tt->v.dtype != GG_DT_I32 || tt->v.nelem != n) return NULL;
  return tt->v.data;
}

/* Transpose(P) -> [elementwise | Pad]* -> Transpose(Q) with Q undoing P
 * (the ONNX-to-TF export of nanodet wraps every NHWC conv this way): drop
 * both transposes and re-index the Pads, so the chain runs in the original
 * layout. Returns how many transposes were removed. */
static int cancel_transposes(gg_graph *g, int t1) {
  gg_node *a = &g->nodes[t1];
  if (a->op != GG_OP_TRANSPOSE || a->n_in != 2) return 0;
  const gg_tensor *pt = &g->tensors[a->in[1]];
  int r = (int)pt->v.nelem;
  const int32_t *P = const_i32(g, a->in[1], r);
  if (!P || r < 1 || r > GG_MAX_DIMS) return 0;
  int chain[64], nc = 0, cur = t1, t2 = -1;
  for (;;) {
    int c = sole_consumer(g, cur);
    if (c < 0 || nc == 64) return 0;
    gg_node *cn = &g->nodes[c];
    if (cn->in[0] != g->nodes[cur].out[0]) return 0;
    if (is_layout_free(cn->op) && cn->n_in == 1) {
      chain[nc++] = c, cur = c;
      continue;
    }
    if (cn->op == GG_OP_PAD) {
      int dummy;
      if (!const_i32(g, cn->in[1], 2 * r) || consumers(g, cn->in[1], &dummy) != 1) return 0;
      chain[nc++] = c, cur = c;
      continue;
    }
    if (cn->op == GG_OP_TRANSPOSE && cn->n_in == 2) {
      const int32_t *Q = const_i32(g, cn->in[1], r);
      if (!Q) return 0;
      for (int j = 0; j < r; j++)
        if (Q[j] < 0 || Q[j] >= r || P[Q[j]] < 0 || P[Q[j]] >= r || P[Q[j]] != j) return 0;
      t2 = c;
      break;
    }
    return 0;
  }
  int x = a->in[0];
  /* Re-index each Pad: x's dim P[i] gets A's padding of dim i. */
  for (int k = 0; k < nc; k++) {
    gg_node *cn = &g->nodes[chain[k]];
    if (cn->op != GG_OP_PAD) continue;
    int32_t *pa = const_i32(g, cn->in[1], 2 * r), pb[2 * GG_MAX_DIMS];
    for (int i = 0; i < r; i++)
      pb[2 * P[i]] = pa[2 * i], pb[2 * P[i] + 1] = pa[2 * i + 1];
    memcpy(pa, pb, (size_t)(2 * r) * sizeof *pa);
  }
  gg_node *b = &g->nodes[t2];
  if (nc == 0) {
    /* Transpose then its inverse: an identity. */
    b->op = GG_OP_IDENTITY;
    b->src_op = "Identity";
    b->in[0] = x;
    b->n_in = 1;
    a->dead = 1;
    g->tensors[a->out[0]].producer = -1;
    return 2;
  }
  g->nodes[chain[0]].in[0] = x;
  absorb(g, chain[nc - 1], t2);
  a->dead = 1;
  g->tensors[a->out[0]].producer = -1;
  return 2;
}

int gg__fuse_disabled = 0;

/* Transpose -> unary elementwise op (its only consumer) becomes unary ->
 * Transpose, so the transpose moves next to its consumers. Exact. */
static int sink_transpose(gg_graph *g, int t1) {
  gg_node *a = &g->nodes[t1];
  if (a->op != GG_OP_TRANSPOSE || a->n_in != 2 || !g->tensors[a->in[1]].is_const) return 0;
  int c = sole_consumer(g, t1);
  if (c < 0) return 0;
  gg_node *u = &g->nodes[c];
  if (!is_layout_free(u->op) || u->op == GG_OP_IDENTITY || u->n_in != 1 || u->n_out != 1 ||
      u->in[0] != a->out[0])
    return 0;
  int y = a->in[0], t = a->out[0], uo = u->out[0];
  u->in[0] = y;
  u->out[0] = t;
  g->tensors[t].producer = c;
  a->in[0] = t;
  a->out[0] = uo;
  g->tensors[uo].producer = t1;
  return 1;
}

/* A transpose read by several consumers: every consumer chain of Pads
 * ending in the inverse transpose reads the untransposed tensor instead
 * (pads re-indexed); the transpose stays for the other consumers. */
static int bypass_transpose(gg_graph *g, int t1) {
  gg_node *a = &g->nodes[t1];
  if (a->op != GG_OP_TRANSPOSE || a->n_in != 2) return 0;
  int r = (int)g->tensors[a->in[1]].v.nelem;
  const int32_t *P = const_i32(g, a->in[1], r);
  if (!P || r < 1 || r > GG_MAX_DIMS || g->tensors[a->out[0]].is_output) return 0;
  int removed = 0;
  for (int ci = 0; ci < g->n_nodes; ci++) {
    gg_node *first = &g->nodes[ci];
    if (first->dead || first->n_in < 1 || first->in[0] != a->out[0] || ci == t1) continue;
    int chain[32], nc = 0, cur = -1, t2 = -1, node = ci;
    for (;;) {
      gg_node *cn = &g->nodes[node];
      if (cn->op == GG_OP_TRANSPOSE && cn->n_in == 2) {
        const int32_t *Q = const_i32(g, cn->in[1], r);
        int ok = Q != NULL;
        for (int j = 0; ok && j < r; j++)
          ok = Q[j] >= 0 && Q[j] < r && P[Q[j]] == j;
        if (ok) t2 = node;
        break;
      }
      int dummy;
      if (cn->op != GG_OP_PAD || nc == 32 || !const_i32(g, cn->in[1], 2 * r) ||
          consumers(g, cn->in[1], &dummy) != 1)
        break;
      chain[nc++] = node;
      cur = node;
      int nx = sole_consumer(g, cur);
      if (nx < 0 || g->nodes[nx].in[0] != cn->out[0]) break;
      node = nx;
    }
    if (t2 < 0) continue;
    int x = a->in[0];
    for (int k = 0; k < nc; k++) {
      gg_node *cn = &g->nodes[chain[k]];
      int32_t *pa = const_i32(g, cn->in[1], 2 * r), pb[2 * GG_MAX_DIMS];
      for (int i = 0; i < r; i++)
        pb[2 * P[i]] = pa[2 * i], pb[2 * P[i] + 1] = pa[2 * i + 1];
      memcpy(pa, pb, (size_t)(2 * r) * sizeof *pa);
    }
    gg_node *b = &g->nodes[t2];
    if (nc == 0) {
      b->op = GG_OP_IDENTITY;
      b->src_op = "Identity";
      b->in[0] = x;
      b->n_in = 1;
    } else {
      g->nodes[chain[0]].in[0] = x;
      absorb(g, cur, t2);
    }
    removed++;
  }
  int dummy;
  if (removed && consumers(g, a->out[0], &dummy) == 0 && !g->tensors[a->out[0]].is_output) {
    a->dead = 1;
    g->tensors[a->out[0]].producer = -1;
    removed++;
  }
  return removed;
}

/* Zero Pad of H and W feeding a VALID/EXPLICIT conv (NHWC): the conv pads
 * by itself instead (explicit, possibly asymmetric padding), which saves the
 * padded copy and its arena bytes. The ONNX-to-TF export of nanodet pads
 * this way before most of its convs. Returns 1 when fused. */
static int fuse_pad_into_conv(gg_graph *g, int ci) {
  gg_node *c = &g->nodes[ci];
  if ((c->op != GG_OP_CONV2D && c->op != GG_OP_DEPTHWISE) || c->n_in < 2 ||
      (c->a.padding != GG_PAD_VALID && c->a.padding != GG_PAD_EXPLICIT))
    return 0;
  int t = c->in[0], pi = g->tensors[t].producer, only;
  if (pi < 0 || g->tensors[t].is_output || consumers(g, t, &only) != 1) return 0;
  gg_node *p = &g->nodes[pi];
  if (p->dead || p->op != GG_OP_PAD || p->a.pad_mode != GG_PADMODE_CONSTANT ||
      (p->n_in > 2 && !scalar_is(&g->tensors[p->in[2]], 0.0f)))
    return 0;
  const int32_t *pd = const_i32(g, p->in[1], 8);
  if (!pd || pd[0] || pd[1] || pd[6] || pd[7]) return 0; /* batch and channels untouched */
  for (int k = 2; k < 6; k++)
    if (pd[k] < 0 || pd[k] > (1 << 20)) return 0;
  if (c->a.padding == GG_PAD_VALID) c->a.pads[0] = c->a.pads[1] = c->a.pads[2] = c->a.pads[3] = 0;
  c->a.padding = GG_PAD_EXPLICIT;
  c->a.pads[0] += pd[2], c->a.pads[1] += pd[3]; /* top, bottom */
  c->a.pads[2] += pd[4], c->a.pads[3] += pd[5]; /* left, right */
  c->in[0] = p->in[0];
  p->dead = 1;
  g->tensors[t].producer = -1;
  return 1;
}

/* x * relu6(x + 3) / 6 (Add with a fused Relu6, or Add then Relu6 or
 * Clip(0, 6), then Mul by x, then Div by 6: how paddle2onnx writes
 * hardswish) becomes one HardSwish op, x * clamp(x / 6 + 0.5, 0, 1): the
 * same function, within an ulp. di is the Div. Returns the nodes removed. */
static int fuse_hardswish(gg_graph *g, int di) {
  gg_node *dv = &g->nodes[di];
  if (dv->op != GG_OP_DIV || dv->n_in != 2 || dv->a.act != GG_ACT_NONE ||
      !scalar_is(&g->tensors[dv->in[1]], 6.0f) || g->tensors[dv->in[1]].v.ndim > 1)
    return 0;
  int mi = g->tensors[dv->in[0]].producer;
  if (mi < 0 || sole_consumer(g, mi) != di) return 0;
  gg_node *mu = &g->nodes[mi];
  if (mu->op != GG_OP_MUL || mu->n_in != 2 || mu->a.act != GG_ACT_NONE) return 0;
  for (int side = 0; side < 2; side++) {
    int x = mu->in[!side], ri = g->tensors[mu->in[side]].producer, ai = ri, clip = -1;
    if (ri < 0 || sole_consumer(g, ri) != mi) continue;
    gg_node *r = &g->nodes[ri];
    if (r->op == GG_OP_RELU6 ||
        (r->op == GG_OP_CLIP && r->a.clip_min == 0.0f && r->a.clip_max == 6.0f)) {
      clip = ri;
      ai = g->tensors[r->in[0]].producer;
      if (ai < 0 || sole_consumer(g, ai) != ri) continue;
    }
    gg_node *ad = &g->nodes[ai];
    int o = other_input(ad, x);
    if (ad->op != GG_OP_ADD || o < 0 || ad->a.act != (clip < 0 ? GG_ACT_RELU6 : GG_ACT_NONE) ||
        !scalar_is(&g->tensors[ad->in[o]], 3.0f) || g->tensors[ad->in[o]].v.ndim > 1 ||
        g->tensors[x].v.dtype != GG_DT_F32)
      continue;
    ad->dead = mu->dead = 1;
    g->tensors[ad->out[0]].producer = g->tensors[mu->out[0]].producer = -1;
    if (clip >= 0) {
      g->nodes[clip].dead = 1;
      g->tensors[g->nodes[clip].out[0]].producer = -1;
    }
    dv->op = GG_OP_HARD_SWISH;
    dv->src_op = "HardSwish";
    dv->in[0] = x;
    dv->n_in = 1;
    return clip >= 0 ? 3 : 2;
  }
  return 0;
}

/* Channels of tensor t when it is an NHWC conv output, possibly through
 * elementwise unary ops; -1 when unknown. */
static int64_t nhwc_channels(const gg_graph *g, int t) {
  for (int hops = 0; hops < 8; hops++) {
    int p = g->tensors[t].producer;
    if (p < 0) return -1;
    const gg_node *n = &g->nodes[p];
    if (n->op == GG_OP_CONV2D || n->op == GG_OP_DEPTHWISE) return out_channels(g, n);
    if (n->n_in != 1 || (!is_layout_free(n->op) && n->op != GG_OP_HARD_SWISH &&
                         n->op != GG_OP_CLIP && n->op != GG_OP_HARD_SIGMOID))
      return -1;
    t = n->in[0];
  }
  return -1;
}

/* A new float constant [shape] (data gg__const_alloc'd, taken) named
 * base+suffix, with its Const node; the tensor index or -1. Invalidates
 * pointers into g->tensors and g->nodes. */
static int new_const(gg_graph *g, const char *base, const char *suffix, const int64_t *shape,
                     int nd, float *data) {
  gg_tensor *tt = realloc(g->tensors, ((size_t)g->n_tensors + 1) * sizeof *tt);
  if (tt) g->tensors = tt;
  gg_node *nn = tt ? realloc(g->nodes, ((size_t)g->n_nodes + 1) * sizeof *nn) : NULL;
  if (nn) g->nodes = nn;
  size_t l = strlen(base) + strlen(suffix) + 1;
  char *name = nn ? malloc(l) : NULL, *nname = name ? malloc(l) : NULL;
  int *out = nname ? malloc(sizeof *out) : NULL;
  if (!out) {
    free(name), free(nname);
    gg__const_free(data);
    return -1;
  }
  snprintf(name, l, "%s%s", base, suffix);
  memcpy(nname, name, l);
  int t = g->n_tensors++, ni = g->n_nodes++;
  gg_tensor *x = &g->tensors[t];
  memset(x, 0, sizeof *x);
  x->name = name;
  x->is_const = 1;
  x->producer = ni;
  x->v.dtype = GG_DT_F32, x->v.ndim = nd, x->v.data = data, x->v.is_const = 1;
  x->v.nelem = 1;
  for (int d = 0; d < nd; d++)
    x->v.shape[d] = shape[d], x->v.nelem *= shape[d];
  gg_node *n = &g->nodes[ni];
  memset(n, 0, sizeof *n);
  n->name = nname;
  n->op = GG_OP_CONST;
  n->src_op = "Const";
  n->out = out, n->out[0] = t, n->n_out = 1;
  return t;
}

/* y = x * s + t on an NHWC conv output (s, t scalars or channel vectors;
 * the Add may be absent): PP-OCR's learnable affine after each hardswish.
 * Into the next 1x1 unpadded conv when that is the only reader (its filter
 * scaled per input channel, t's contribution added to its bias: no pass
 * left), else one 1x1 depthwise conv with bias (XNNPACK's multiply-add
 * kernel: one pass instead of two). mi is the Mul. Returns nodes removed. */
static int fuse_affine(gg_graph *g, int mi) {
  gg_node *mu = &g->nodes[mi];
  if (mu->op != GG_OP_MUL || mu->n_in != 2 || mu->a.act != GG_ACT_NONE) return 0;
  int side = g->tensors[mu->in[0]].is_const ? 0 : 1, x = mu->in[!side], st = mu->in[side];
  int64_t c = nhwc_channels(g, x);
  if (c < 1 || !is_affine_const(&g->tensors[st], c)) return 0;
  int ai = sole_consumer(g, mi), tt = -1, last = mi;
  if (ai >= 0) {
    gg_node *ad = &g->nodes[ai];
    int o = other_input(ad, mu->out[0]);
    if (ad->op == GG_OP_ADD && ad->a.act == GG_ACT_NONE && o >= 0 &&
        is_affine_const(&g->tensors[ad->in[o]], c))
      tt = ad->in[o], last = ai;
  }
  int ci = sole_consumer(g, last), dummy;
  gg_node *cv = ci >= 0 ? &g->nodes[ci] : NULL;
  const gg_tensor *w = cv && cv->n_in >= 2 ? &g->tensors[cv->in[1]] : NULL;
  if (cv && cv->op == GG_OP_CONV2D && cv->in[0] == g->nodes[last].out[0] && w->is_const &&
      w->v.dtype == GG_DT_F32 && w->v.ndim == 4 && w->v.shape[0] == 1 && w->v.shape[1] == 1 &&
      w->v.shape[2] == c && cv->a.has_bias && cv->a.act != GG_ACT_PRELU &&
      (cv->a.padding == GG_PAD_VALID || (cv->a.padding == GG_PAD_EXPLICIT && !cv->a.pads[0] &&
                                         !cv->a.pads[1] && !cv->a.pads[2] && !cv->a.pads[3])) &&
      consumers(g, cv->in[1], &dummy) == 1 && consumers(g, cv->in[2], &dummy) == 1 &&
      is_channel_vec(&g->tensors[cv->in[2]], w->v.shape[3])) {
    /* conv(x * s + t) = conv'(x) with W'[ci][co] = s[ci] W[ci][co] and
     * b'[co] = b[co] + sum_ci t[ci] W[ci][co] (no padding: every tap is in
     * the image). */
    int64_t co = w->v.shape[3];
    float *wd = w->v.data, *bd = g->tensors[cv->in[2]].v.data;
    for (int64_t o = 0; tt >= 0 && o < co; o++) {
      double acc = 0;
      for (int64_t i = 0; i < c; i++)
        acc += (double)affine_at(&g->tensors[tt], i) * wd[i * co + o];
      bd[o] += (float)acc;
    }
    for (int64_t i = 0; i < c; i++)
      for (int64_t o = 0; o < co; o++)
        wd[i * co + o] *= affine_at(&g->tensors[st], i);
    cv->in[0] = x;
    mu->dead = 1;
    g->tensors[mu->out[0]].producer = -1;
    if (last != mi) {
      g->nodes[ai].dead = 1;
      g->tensors[g->nodes[ai].out[0]].producer = -1;
    }
    return last != mi ? 2 : 1;
  }
  if (last == mi) return 0; /* a lone Mul is one pass already */
  float *fw = gg__const_alloc((size_t)c * sizeof *fw);
  float *fb = fw ? gg__const_alloc((size_t)c * sizeof *fb) : NULL;
  if (!fb) {
    gg__const_free(fw);
    return 0;
  }
  for (int64_t i = 0; i < c; i++)
    fw[i] = affine_at(&g->tensors[st], i), fb[i] = affine_at(&g->tensors[tt], i);
  int64_t fshape[4] = {1, 1, c, 1};
  char base[256];
  snprintf(base, sizeof base, "%s", g->nodes[mi].name);
  int wt = new_const(g, base, "/affine_scale", fshape, 4, fw);
  if (wt < 0) {
    gg__const_free(fb);
    return 0;
  }
  int bt = new_const(g, base, "/affine_bias", &c, 1, fb);
  if (bt < 0) return 0;
  mu = &g->nodes[mi];
  int *in = realloc(mu->in, 3 * sizeof *in);
  if (!in) return 0;
  mu->in = in;
  mu->in[0] = x, mu->in[1] = wt, mu->in[2] = bt, mu->n_in = 3;
  mu->op = GG_OP_DEPTHWISE;
  mu->src_op = "Mul+Add";
  mu->a.has_bias = 1;
  mu->a.padding = GG_PAD_VALID;
  mu->a.strides[0] = mu->a.strides[1] = mu->a.dilations[0] = mu->a.dilations[1] = 1;
  absorb(g, mi, ai);
  return 1;
}

/* x + x * s with s a (Hard)Sigmoid output (a squeeze-excite gate, as in
 * PP-OCR det's RSE neck): x * (s + 1), the + 1 on the small gate instead of
 * a pass over x. Same broadcast shape; s in [0, 1], so no cancellation.
 * ai is the Add. Returns 1 when rewritten. */
static int fuse_gate_residual(gg_graph *g, int ai) {
  gg_node *ad = &g->nodes[ai];
  if (ad->op != GG_OP_ADD || ad->n_in != 2 || ad->a.act != GG_ACT_NONE) return 0;
  for (int side = 0; side < 2; side++) {
    int x = ad->in[!side], mi = g->tensors[ad->in[side]].producer;
    if (mi < 0 || sole_consumer(g, mi) != ai) continue;
    gg_node *mu = &g->nodes[mi];
    int o = other_input(mu, x);
    if (mu->op != GG_OP_MUL || mu->a.act != GG_ACT_NONE || o < 0 || mu->in[0] == mu->in[1])
      continue;
    int sg = mu->in[o], sp = g->tensors[sg].producer;
    if (sp < 0 || (g->nodes[sp].op != GG_OP_HARD_SIGMOID && g->nodes[sp].op != GG_OP_SIGMOID) ||
        g->tensors[sg].v.dtype != GG_DT_F32 || g->tensors[x].v.dtype != GG_DT_F32)
      continue;
    float *one = gg__const_alloc(sizeof *one);
    if (!one) return 0;
    *one = 1.0f;
    char base[256];
    snprintf(base, sizeof base, "%s", ad->name);
    int ct = new_const(g, base, "/one", NULL, 0, one);
    if (ct < 0) return 0;
    ad = &g->nodes[ai], mu = &g->nodes[mi];
    /* the Mul node computes s + 1, the Add node x * (s + 1) */
    int tm = mu->out[0];
    mu->op = GG_OP_ADD;
    mu->src_op = "Add";
    mu->in[0] = sg, mu->in[1] = ct;
    ad->op = GG_OP_MUL;
    ad->src_op = "Mul";
    ad->in[0] = x, ad->in[1] = tm;
    return 1;
  }
  return 0;
}

void gg__graph_fuse(gg_graph *g) {
  int fused = 0;
  const char *env = getenv("GG_ENGINE_NO_FUSE");
  if (gg__fuse_disabled || (env && *env && strcmp(env, "0"))) return;
  for (int i = 0; i < g->n_nodes; i++)
    if (!g->nodes[i].dead) fused += cancel_transposes(g, i);
  for (int i = 0; i < g->n_nodes; i++)
    while (!g->nodes[i].dead && sink_transpose(g, i))
      fused++;
  for (int i = 0; i < g->n_nodes; i++)
    if (!g->nodes[i].dead) fused += bypass_transpose(g, i);
  for (int i = 0; i < g->n_nodes; i++)
    if (!g->nodes[i].dead) fused += cancel_transposes(g, i);
  for (int i = 0; i < g->n_nodes; i++)
    if (!g->nodes[i].dead) fused += fuse_prelu_pattern(g, i);
  for (int i = 0; i < g->n_nodes; i++)
    if (!g->nodes[i].dead) fused += fuse_pad_into_conv(g, i);
  for (int i = 0; i < g->n_nodes; i++) {
    gg_node *p = &g->nodes[i];
    if (p->dead || (p->op != GG_OP_CONV2D && p->op != GG_OP_DEPTHWISE && p->op != GG_OP_MATMUL &&
                    p->op != GG_OP_CONV_TRANSPOSE))
      continue;
    int64_t co = out_channels(g, p);
    for (;;) {
      int c = sole_consumer(g, i);
      if (c < 0) break;
      gg_node *cn = &g->nodes[c];
      int t = p->out[0], oth = other_input(cn, t);
      /* Depthwise/conv followed by a per-channel or scalar Mul (BatchNorm
       * scale, PP-OCR's learnable affine blocks): scale the filter, and the
       * bias, when nothing else reads them. */
      if (cn->op == GG_OP_MUL && cn->a.act == GG_ACT_NONE && oth >= 0 && p->a.act == GG_ACT_NONE &&
          co > 0 && p->op != GG_OP_MATMUL && is_affine_const(&g->tensors[cn->in[oth]], co)) {
        int dummy, bi = bias_input(p);
        if (consumers(g, p->in[1], &dummy) != 1 ||
            (bi >= 0 && consumers(g, p->in[bi], &dummy) != 1))
          break;
        float *w = g->tensors[p->in[1]].v.data;
        const gg_tensor *s = &g->tensors[cn->in[oth]];
        int64_t ne = g->tensors[p->in[1]].v.nelem;
        for (int64_t k = 0; k < ne; k++)
          w[k] *= affine_at(s, filter_channel(g, p, k, co));
        if (bi >= 0) {
          float *b = g->tensors[p->in[bi]].v.data;
          for (int64_t k = 0; k < co; k++)
            b[k] *= affine_at(s, k);
        }
        absorb(g, i, c);
        fused++;
        continue;
      }
      /* An Add of a channel vector becomes the bias; with a bias already,
       * an Add of a constant goes into it. A Relu/Relu6 fused into the Add
       * (a BatchNorm shift + Relu) comes along, except onto a matmul. */
      gg_act add_act = cn->op == GG_OP_ADD ? cn->a.act : GG_ACT_NONE;
      if (cn->op == GG_OP_ADD && oth >= 0 && p->a.act == GG_ACT_NONE && co > 0 &&
          (add_act == GG_ACT_NONE ||
           (p->op != GG_OP_MATMUL && (add_act == GG_ACT_RELU || add_act == GG_ACT_RELU6)))) {
        int bi = bias_input(p), dummy;
        if (bi < 0 && is_channel_vec(&g->tensors[cn->in[oth]], co) &&
            (p->op != GG_OP_CONV_TRANSPOSE || p->n_in == 2)) {
          if (add_input(p, cn->in[oth])) break;
          if (p->op != GG_OP_CONV_TRANSPOSE) p->a.has_bias = 1;
        } else if (bi >= 0 && is_affine_const(&g->tensors[cn->in[oth]], co) &&
                   consumers(g, p->in[bi], &dummy) == 1) {
          float *b = g->tensors[p->in[bi]].v.data;
          for (int64_t k = 0; k < co; k++)
            b[k] += affine_at(&g->tensors[cn->in[oth]], k);
        } else {
          break;
        }
        p->a.act = add_act;
        absorb(g, i, c);
        fused++;
        continue;
      }
      if (p->a.act == GG_ACT_NONE &&
          (cn->op == GG_OP_RELU || cn->op == GG_OP_RELU6 ||
           (cn->op == GG_OP_LEAKY_RELU && p->op != GG_OP_CONV_TRANSPOSE))) {
        p->a.act = cn->op == GG_OP_RELU    ? GG_ACT_RELU
                   : cn->op == GG_OP_RELU6 ? GG_ACT_RELU6
                                           : GG_ACT_LEAKY;
        if (cn->op == GG_OP_LEAKY_RELU) p->a.alpha = cn->a.alpha;
        absorb(g, i, c);
        fused++;
        continue;
      }
      /* PReLU of a Relu/Relu6 output (never negative) is the identity: the
       * TF.js converter fused mobilefacenet's Relu into the depthwise convs
       * ahead of their PReLU decomposition. */
      if ((p->a.act == GG_ACT_RELU || p->a.act == GG_ACT_RELU6) && cn->op == GG_OP_PRELU &&
          cn->in[0] == t) {
        absorb(g, i, c);
        fused++;
        continue;
      }
      if (p->a.act == GG_ACT_NONE && cn->op == GG_OP_PRELU && cn->in[0] == t && co > 0 &&
          p->op != GG_OP_CONV_TRANSPOSE &&
          (is_channel_vec(&g->tensors[cn->in[1]], co) ||
           is_channel_vec(&g->tensors[cn->in[1]], 1))) {
        if (!p->a.has_bias) break; /* alpha must come after the bias input */
        if (add_input(p, cn->in[1])) break;
        p->a.act = GG_ACT_PRELU;
        absorb(g, i, c);
        fused++;
        continue;
      }
      /* relu then clip_by_value(0, 6) == relu6 (the Keras MobileNet export). */
      if (p->a.act == GG_ACT_RELU && cn->op == GG_OP_MINIMUM && oth >= 0 &&
          scalar_is(&g->tensors[cn->in[oth]], 6.0f)) {
        int c2 = sole_consumer(g, c);
        if (c2 < 0) break;
        gg_node *mx = &g->nodes[c2];
        int o2 = other_input(mx, cn->out[0]);
        if (mx->op != GG_OP_MAXIMUM || o2 < 0 || !scalar_is(&g->tensors[mx->in[o2]], 0.0f)) break;
        p->a.act = GG_ACT_RELU6;
        absorb(g, i, c);
        absorb(g, i, c2);
        fused += 2;
        continue;
      }
      break;
    }
  }
  /* Add/Sub/Mul then Relu/Relu6: one op with a fused clamp (blazeface's
   * residual blocks). */
  for (int i = 0; i < g->n_nodes; i++) {
    gg_node *p = &g->nodes[i];
    if (p->dead || p->a.act != GG_ACT_NONE || p->n_in != 2 ||
        (p->op != GG_OP_ADD && p->op != GG_OP_SUB && p->op != GG_OP_MUL))
      continue;
    int c = sole_consumer(g, i);
    if (c < 0 || (g->nodes[c].op != GG_OP_RELU && g->nodes[c].op != GG_OP_RELU6)) continue;
    p->a.act = g->nodes[c].op == GG_OP_RELU ? GG_ACT_RELU : GG_ACT_RELU6;
    absorb(g, i, c);
    fused++;
  }
  for (int i = 0; i < g->n_nodes; i++)
    if (!g->nodes[i].dead) fused += fuse_hardswish(g, i);
  for (int i = 0, n = g->n_nodes; i < n; i++) /* not the Const nodes it adds */
    if (!g->nodes[i].dead) fused += fuse_affine(g, i);
  for (int i = 0, n = g->n_nodes; i < n; i++)
    if (!g->nodes[i].dead) fused += fuse_gate_residual(g, i);
  if (fused) GG_DEBUG("ENG", "%s: fused %d nodes", g->path, fused);
}
