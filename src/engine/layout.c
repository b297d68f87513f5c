/* Layout pass (see gg__layout_pass in graph.h). The ONNX importer keeps
 * NCHW and wraps every NHWC-only op in a pair of transposes; this pass
 * pushes each Transpose down through the ops that do not care about layout
 * (elementwise unary; binary elementwise whose other operand carries the
 * same transpose or is a constant, permuted here; Concat, Pad and keep-dims
 * reductions with their axes remapped), until it meets its inverse, where
 * both vanish. Each rewrite is an identity of the math, so the pass is
 * correct by construction; it only buys speed. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Elementwise unary ops: the older ones here, group E's from ops-elem.c. */
static int is_unary(gg_op op) {
  switch (op) {
  case GG_OP_IDENTITY:
  case GG_OP_ABS:
  case GG_OP_SQUARE:
  case GG_OP_RSQRT:
  case GG_OP_RELU:
  case GG_OP_RELU6:
  case GG_OP_LEAKY_RELU:
  case GG_OP_SIGMOID: return 1;
  default: return gg__elem_is_unary(op);
  }
}

static int is_binary(gg_op op) {
  switch (op) {
  case GG_OP_ADD:
  case GG_OP_SUB:
  case GG_OP_MUL:
  case GG_OP_MAXIMUM:
  case GG_OP_MINIMUM:
  case GG_OP_PRELU:
  case GG_OP_DIV:
  case GG_OP_POW:
  case GG_OP_EQUAL:
  case GG_OP_GREATER:
  case GG_OP_LESS: return 1;
  default: return 0;
  }
}

/* A Quantize / Dequantize whose scale and zero point are one value each:
 * elementwise in its input 0. */
static int is_quant_per_tensor(const gg_graph *g, const gg_node *n) {
  if ((n->op != GG_OP_QUANTIZE && n->op != GG_OP_DEQUANTIZE) || !(n->a.flags & 2)) return 0;
  for (int k = 1; k < n->n_in; k++)
    if (!gg__tensor_one_elem(&g->tensors[n->in[k]])) return 0;
  return 1;
}

static int is_reduce(gg_op op) {
  return op == GG_OP_SUM || op == GG_OP_MEAN || op == GG_OP_REDUCE_MAX || op == GG_OP_REDUCE_MIN ||
         op == GG_OP_REDUCE_L2;
}

/* The perm of a live Transpose node (r entries), or NULL. */
static const int32_t *perm_of(const gg_graph *g, const gg_node *n, int *r) {
  if (n->dead || n->op != GG_OP_TRANSPOSE || n->n_in != 2) return NULL;
  const gg_tensor *p = &g->tensors[n->in[1]];
  if (!p->is_const || p->v.dtype != GG_DT_I32 || p->v.nelem < 1 || p->v.nelem > GG_MAX_DIMS)
    return NULL;
  const int32_t *P = p->v.data;
  int seen[GG_MAX_DIMS] = {0};
  for (int i = 0; i < p->v.nelem; i++)
    if (P[i] < 0 || P[i] >= p->v.nelem || seen[P[i]]++) return NULL;
  *r = (int)p->v.nelem;
  return P;
}

/* A new tensor (name borrowed from base with a suffix); -1 on ENOMEM. */
static int add_tensor(gg_graph *g, const char *base, const char *suffix) {
  gg_tensor *t = realloc(g->tensors, ((size_t)g->n_tensors + 1) * sizeof *t);
  if (!t) return -1;
  g->tensors = t;
  gg_tensor *n = &g->tensors[g->n_tensors];
  memset(n, 0, sizeof *n);
  size_t l = strlen(base) + strlen(suffix) + 1;
  n->name = malloc(l);
  if (!n->name) return -1;
  snprintf(n->name, l, "%s%s", base, suffix);
  n->producer = -1;
  return g->n_tensors++;
}

/* A new node (inputs/outputs copied); -1 on ENOMEM. */
static int add_node(gg_graph *g, gg_op op, const char *src, const char *name, const int *in,
                    int n_in, int out) {
  gg_node *nn = realloc(g->nodes, ((size_t)g->n_nodes + 1) * sizeof *nn);
  if (!nn) return -1;
  g->nodes = nn;
  int i = g->n_nodes;
  gg_node *n = &g->nodes[i];
  memset(n, 0, sizeof *n);
  n->name = malloc(strlen(name) + 1);
  n->in = malloc(((size_t)n_in + 1) * sizeof *n->in);
  n->out = malloc(2 * sizeof *n->out);
  g->n_nodes++;
  if (!n->name || !n->in || !n->out) return -1;
  memcpy(n->name, name, strlen(name) + 1);
  if (n_in) memcpy(n->in, in, (size_t)n_in * sizeof *in);
  n->n_in = n_in, n->n_out = 1, n->out[0] = out;
  n->op = op, n->src_op = src;
  n->a.strides[0] = n->a.strides[1] = n->a.dilations[0] = n->a.dilations[1] = 1;
  g->tensors[out].producer = i;
  return i;
}

/* A new constant tensor + Const node holding data (gg__const_alloc'd, taken). */
static int add_const(gg_graph *g, const char *base, const char *suffix, gg_dtype dt,
                     const int64_t *shape, int nd, void *data) {
  int t = add_tensor(g, base, suffix);
  if (t < 0) {
    gg__const_free(data);
    return -1;
  }
  gg_tensor *tt = &g->tensors[t];
  tt->is_const = 1;
  tt->v.dtype = dt, tt->v.ndim = nd, tt->v.data = data;
  for (int i = 0; i < nd; i++)
    tt->v.shape[i] = shape[i];
  if (gg__shape_nelem(tt->v.shape, nd, &tt->v.nelem)) return -1;
  if (add_node(g, GG_OP_CONST, "Const", tt->name, NULL, 0, t) < 0) return -1;
  return t;
}

static int i32_const(gg_graph *g, const char *base, const char *suffix, const int32_t *v, int n) {
  int32_t *d = gg__const_alloc((size_t)n * 4);
  if (!d) return -1;
  memcpy(d, v, (size_t)n * 4);
  int64_t sh[1] = {n};
  return add_const(g, base, suffix, GG_DT_I32, sh, 1, d);
}

/* Constant c (rank <= r) seen in the transposed layout, as the constant
 * that gives the same broadcast in the untransposed one: padded left to
 * rank r with 1s, then permuted by the inverse of P. -1: not possible. */
static int permute_const(gg_graph *g, int c, const int32_t *P, int r) {
  const gg_tensor *ct = &g->tensors[c];
  if (ct->v.nelem == 1 && ct->v.ndim <= r) return c; /* a scalar broadcasts the same */
  if (ct->v.ndim > r) return -1;
  int64_t sp[GG_MAX_DIMS], sq[GG_MAX_DIMS];
  int off = r - ct->v.ndim;
  for (int i = 0; i < r; i++)
    sp[i] = i < off ? 1 : ct->v.shape[i - off];
  for (int i = 0; i < r; i++)
    sq[P[i]] = sp[i]; /* x-layout dim P[i] is y-layout dim i */
  size_t es = gg__dtype_size(ct->v.dtype);
  uint8_t *d = gg__const_alloc((size_t)ct->v.nelem * es);
  if (!d) return -1;
  const uint8_t *s = ct->v.data;
  /* element at y-index iy (over sp) goes to x-index ix with ix[P[i]] = iy[i] */
  int64_t strq[GG_MAX_DIMS], acc = 1;
  for (int i = r - 1; i >= 0; i--)
    strq[i] = acc, acc *= sq[i];
  for (int64_t e = 0; e < ct->v.nelem; e++) {
    int64_t rem = e, off_x = 0;
    for (int i = r - 1; i >= 0; i--) {
      int64_t iy = rem % sp[i];
      rem /= sp[i];
      off_x += iy * strq[P[i]];
    }
    memcpy(d + (size_t)off_x * es, s + (size_t)e * es, es);
  }
  return add_const(g, ct->name, "/nhwc", ct->v.dtype, sq, r, d);
}

/* Replaces every read of tensor `from` by `to`. */
static void rewire(gg_graph *g, int from, int to) {
  for (int i = 0; i < g->n_nodes; i++) {
    gg_node *n = &g->nodes[i];
    if (n->dead) continue;
    for (int k = 0; k < n->n_in; k++)
      if (n->in[k] == from) n->in[k] = to;
  }
}

static int n_consumers(const gg_graph *g, int t) {
  int c = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const gg_node *n = &g->nodes[i];
    if (n->dead) continue;
    for (int k = 0; k < n->n_in; k++)
      c += n->in[k] == t;
  }
  return c;
}

/* Node ci now computes in the untransposed layout: its output gets a new
 * tensor and a Transpose (perm tensor pt) restores the old one. */
static int reroute_output(gg_graph *g, int ci, int pt) {
  int old = g->nodes[ci].out[0];
  int nt = add_tensor(g, g->tensors[old].name, "/untransposed");
  if (nt < 0) return GG_ENOMEM;
  g->nodes[ci].out[0] = nt;
  g->tensors[nt].producer = ci;
  int in[2] = {nt, pt};
  char nm[600];
  snprintf(nm, sizeof nm, "%.500s/transpose", g->nodes[ci].name);
  return add_node(g, GG_OP_TRANSPOSE, "Transpose", nm, in, 2, old) < 0 ? GG_ENOMEM : 0;
}

/* Tries to move transpose ti (x -> y, perm P) past its consumer ci.
 * Returns 1 when done, 0 when not possible, < 0 on ENOMEM. */
static int push_one(gg_graph *g, int ti, int ci) {
  int r;
  const int32_t *P = perm_of(g, &g->nodes[ti], &r);
  if (!P) return 0;
  int x = g->nodes[ti].in[0], y = g->nodes[ti].out[0], pt = g->nodes[ti].in[1];
  gg_node *c = &g->nodes[ci];
  if (c->n_out != 1 || (c->in[0] != y && !is_binary(c->op) && c->op != GG_OP_CONCAT)) return 0;
  int rq;
  const int32_t *Q = perm_of(g, c, &rq);
  if (Q && c->in[0] == y && rq == r) {
    for (int j = 0; j < r; j++)
      if (P[Q[j]] != j) return 0;
    /* Transpose(Transpose(x, P), Q) == x */
    int o = c->out[0];
    if (g->tensors[o].is_output) {
      c->op = GG_OP_IDENTITY, c->src_op = "Identity", c->in[0] = x, c->n_in = 1;
    } else {
      rewire(g, o, x);
      c->dead = 1;
      g->tensors[o].producer = -1;
    }
    return 1;
  }
  if ((is_unary(c->op) && c->n_in == 1) || (c->in[0] == y && is_quant_per_tensor(g, c))) {
    c->in[0] = x;
    return reroute_output(g, ci, pt) ? GG_ENOMEM : 1;
  }
  if (is_reduce(c->op) && c->in[0] == y &&
      (c->n_in == 1 || (g->tensors[c->in[1]].is_const && g->tensors[c->in[1]].v.nelem == 0))) {
    /* over every axis: the same elements, the same one-element result */
    c->in[0] = x;
    return 1;
  }
  if (is_binary(c->op) && c->n_in == 2) {
    int nin[2];
    for (int k = 0; k < 2; k++) {
      int t = c->in[k], p = g->tensors[t].producer, rr;
      const int32_t *PP = p >= 0 ? perm_of(g, &g->nodes[p], &rr) : NULL;
      if (t == y)
        nin[k] = x;
      else if (!g->tensors[t].is_const && gg__tensor_one_elem(&g->tensors[t]))
        nin[k] = t; /* a computed scalar (a quantization scale) broadcasts the same */
      else if (PP && rr == r && !memcmp(PP, P, (size_t)r * sizeof *P))
        nin[k] = g->nodes[p].in[0];
      else if (g->tensors[t].is_const) {
        nin[k] = permute_const(g, t, P, r);
        if (nin[k] < 0) return 0;
        c = &g->nodes[ci];
      } else
        return 0;
    }
    c->in[0] = nin[0], c->in[1] = nin[1];
    return reroute_output(g, ci, pt) ? GG_ENOMEM : 1;
  }
  if (c->op == GG_OP_CONCAT && c->n_in >= 2) {
    const gg_tensor *at = &g->tensors[c->in[c->n_in - 1]];
    if (!at->is_const || at->v.dtype != GG_DT_I32 || at->v.nelem != 1) return 0;
    int ax = ((int32_t *)at->v.data)[0];
    if (ax < 0) ax += r;
    if (ax < 0 || ax >= r) return 0;
    for (int k = 0; k < c->n_in - 1; k++) {
      int p = g->tensors[c->in[k]].producer, rr;
      const int32_t *PP = p >= 0 ? perm_of(g, &g->nodes[p], &rr) : NULL;
      if (!PP || rr != r || memcmp(PP, P, (size_t)r * sizeof *P)) return 0;
    }
    int32_t nax = P[ax];
    int at2 = i32_const(g, c->name, "/axis_untransposed", &nax, 1);
    if (at2 < 0) return GG_ENOMEM;
    c = &g->nodes[ci];
    for (int k = 0; k < c->n_in - 1; k++)
      c->in[k] = g->nodes[g->tensors[c->in[k]].producer].in[0];
    c->in[c->n_in - 1] = at2;
    return reroute_output(g, ci, pt) ? GG_ENOMEM : 1;
  }
  if (is_reduce(c->op) && c->n_in == 2 && c->a.keep_dims) {
    const gg_tensor *at = &g->tensors[c->in[1]];
    if (!at->is_const || at->v.dtype != GG_DT_I32 || at->v.nelem > r) return 0;
    int32_t na[GG_MAX_DIMS];
    for (int i = 0; i < at->v.nelem; i++) {
      int a = ((int32_t *)at->v.data)[i];
      if (a < 0) a += r;
      if (a < 0 || a >= r) return 0;
      na[i] = P[a];
    }
    int at2 = i32_const(g, c->name, "/axes_untransposed", na, (int)at->v.nelem);
    if (at2 < 0) return GG_ENOMEM;
    c = &g->nodes[ci];
    c->in[0] = x, c->in[1] = at2;
    return reroute_output(g, ci, pt) ? GG_ENOMEM : 1;
  }
  if (c->op == GG_OP_PAD && c->n_in >= 2) {
    const gg_tensor *pd = &g->tensors[c->in[1]];
    if (!pd->is_const || pd->v.dtype != GG_DT_I32 || pd->v.nelem != 2 * r) return 0;
    const int32_t *pa = pd->v.data;
    int32_t pb[2 * GG_MAX_DIMS];
    for (int i = 0; i < r; i++)
      pb[2 * P[i]] = pa[2 * i], pb[2 * P[i] + 1] = pa[2 * i + 1];
    int p2 = i32_const(g, c->name, "/paddings_untransposed", pb, 2 * r);
    if (p2 < 0) return GG_ENOMEM;
    c = &g->nodes[ci];
    c->in[0] = x, c->in[1] = p2;
    return reroute_output(g, ci, pt) ? GG_ENOMEM : 1;
  }
  return 0;
}

/* Drops Identity nodes whose output is not a graph output. */
static int drop_identities(gg_graph *g) {
  int n = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    gg_node *nd = &g->nodes[i];
    if (nd->dead || nd->op != GG_OP_IDENTITY || nd->n_in != 1 || g->tensors[nd->out[0]].is_output)
      continue;
    int from = nd->out[0], to = nd->in[0];
    if (from == to) continue; /* a self-loop: toposort refuses the graph */
    nd->dead = 1;
    g->tensors[from].producer = -1;
    rewire(g, from, to);
    n++;
  }
  return n;
}

int gg__layout_pass(gg_graph *g) {
  int live0 = 0, live1 = 0;
  for (int i = 0; i < g->n_nodes; i++)
    live0 += !g->nodes[i].dead && g->nodes[i].op == GG_OP_TRANSPOSE;
  int budget = 8 * g->n_nodes + 64, changed = 1;
  while (changed && budget > 0) {
    changed = 0;
    for (int ti = 0; ti < g->n_nodes && budget > 0; ti++) {
      int r;
      if (!perm_of(g, &g->nodes[ti], &r)) continue;
      int y = g->nodes[ti].out[0];
      if (g->tensors[y].is_output) continue;
      /* push past every consumer it can; it stays for the others */
      for (int ci = 0; ci < g->n_nodes && budget > 0; ci++) {
        gg_node *c = &g->nodes[ci];
        if (c->dead || ci == ti) continue;
        int reads = 0;
        for (int k = 0; k < c->n_in; k++)
          reads |= c->in[k] == y;
        if (!reads) continue;
        int rc = push_one(g, ti, ci);
        if (rc < 0) return rc;
        if (rc) changed = 1, budget--;
      }
      if (!n_consumers(g, y)) {
        g->nodes[ti].dead = 1;
        g->tensors[y].producer = -1;
      }
    }
  }
  drop_identities(g);
  for (int i = 0; i < g->n_nodes; i++)
    live1 += !g->nodes[i].dead && g->nodes[i].op == GG_OP_TRANSPOSE;
  GG_DEBUG("ENG", "%s: layout pass: %d transposes -> %d", g->path, live0, live1);
  return live0 > live1 ? live0 - live1 : 0;
}
