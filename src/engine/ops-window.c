/* N-D window ops, group W (see the enum in src/engine/graph.h): shape rules
 * (gg__window_infer) and reference kernels (gg__window_run) for max/average
 * pooling, convolution and transposed convolution over channel-first
 * [N, C, S1..Sk] tensors, k = 1..3, with ONNX's attributes as they are
 * (auto_pad included: the shape rule resolves SAME_* from the input shape, so
 * nothing is left to the session). The importer uses them for 3-D windows and
 * MaxPool's Indices output. Kernels allocate nothing and are threaded over
 * output rows with ctx->pool. Internally every window has 3 axes: a 1-D or
 * 2-D one gets leading axes of size 1 with a 1-tap window. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/error.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define IN(k) (&vals[n->in[k]])
#define OUT(k) (&vals[n->out[k]])
#define F32(v) ((float *)(v)->data)
#define I32(v) ((int32_t *)(v)->data)
#define LIM 4096 /* largest kernel size, stride and dilation accepted */
#define PAD_LIM 65536

/* One window op's geometry, padded to 3 spatial axes. */
typedef struct win3 {
  int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
  int64_t N, CI, CO, groups;
} win3;

static int set_shape(gg_tval *o, gg_dtype dt, const int64_t *shape, int ndim) {
  o->dtype = dt;
  o->ndim = ndim;
  for (int i = 0; i < ndim; i++)
    o->shape[i] = shape[i];
  return gg__shape_nelem(o->shape, ndim, &o->nelem);
}

#define BAD(code, ...)                                                                             \
  gg_errf(err, errlen, code, "node '%s' (%s): %s", n->name, n->src_op,                             \
          (snprintf(msg, sizeof msg, __VA_ARGS__), msg))

/* Fills g from the node's attributes and input shapes (x, and w for the
 * convolutions); the output's spatial sizes follow ONNX's rules. Errors name
 * the node. */
static int geometry(const gg_node *n, const gg_tval *vals, win3 *g, char *err, size_t errlen) {
  const gg_tval *x = IN(0),
                *w = n->op == GG_OP_CONV_ND || n->op == GG_OP_CONV_TRANSPOSE_ND ? IN(1) : NULL;
  const gg_attrs *a = &n->a;
  char msg[256], sa[96], sb[96];
  int conv = w != NULL, tr = n->op == GG_OP_CONV_TRANSPOSE_ND;
  if (x->dtype != GG_DT_F32 || x->ndim < 3 || x->ndim > 5)
    return BAD(GG_EPARSE, "needs a float [N, C, S1..Sk] input with 1 to 3 spatial dims, got %s",
               gg__shape_str(x->shape, x->ndim, sa, sizeof sa));
  int nd = x->ndim - 2, off = 3 - nd;
  memset(g, 0, sizeof *g);
  g->N = x->shape[0], g->CI = g->CO = x->shape[1], g->groups = 1;
  if (conv) {
    g->groups = a->groups < 1 ? 1 : a->groups;
    if (w->dtype != GG_DT_F32 || w->ndim != x->ndim || w->shape[0] < 1 || w->shape[1] < 1 ||
        (tr ? w->shape[0] != g->CI : w->shape[1] * g->groups != g->CI) ||
        (tr ? g->CI % g->groups : w->shape[0] % g->groups))
      return BAD(GG_EPARSE, "weights %s do not fit input %s with %lld groups",
                 gg__shape_str(w->shape, w->ndim, sb, sizeof sb),
                 gg__shape_str(x->shape, x->ndim, sa, sizeof sa), (long long)g->groups);
    g->CO = tr ? w->shape[1] * g->groups : w->shape[0];
    if (n->n_in > 2 && (IN(2)->dtype != GG_DT_F32 || IN(2)->nelem != g->CO))
      return BAD(GG_EPARSE, "the bias has %lld values for %lld output channels",
                 (long long)IN(2)->nelem, (long long)g->CO);
  }
  for (int j = 0; j < 3; j++)
    g->in[j] = g->out[j] = g->k[j] = g->s[j] = g->d[j] = 1;
  for (int i = 0; i < nd; i++) {
    int j = off + i;
    int64_t L = x->shape[2 + i], K = conv ? w->shape[2 + i] : a->nd_k[i];
    int64_t s = a->nd_s[i] ? a->nd_s[i] : 1, d = a->nd_d[i] ? a->nd_d[i] : 1;
    int64_t pb = a->nd_pads[i], pe = a->nd_pads[nd + i], out;
    if (K < 1 || K > LIM || s < 1 || s > LIM || d < 1 || d > LIM || pb < 0 || pe < 0 ||
        pb > PAD_LIM || pe > PAD_LIM)
      return BAD(GG_EPARSE,
                 "axis %d: bad kernel %lld, stride %lld, dilation %lld or pads %lld,%lld", i,
                 (long long)K, (long long)s, (long long)d, (long long)pb, (long long)pe);
    if (conv && a->nd_k[i] > 0 && a->nd_k[i] != K)
      return BAD(GG_EPARSE, "kernel_shape %d does not match the weights %s", a->nd_k[i],
                 gg__shape_str(w->shape, w->ndim, sb, sizeof sb));
    if (L < 1)
      return BAD(GG_EPARSE, "empty spatial dim in %s",
                 gg__shape_str(x->shape, x->ndim, sa, sizeof sa));
    int64_t ek = (K - 1) * d + 1;
    if (a->nd_auto == GG_AUTO_VALID) pb = pe = 0;
    if (tr) {
      int64_t op = a->nd_out_pad[i], full;
      if (op < 0 || op > LIM)
        return BAD(GG_EPARSE, "axis %d: bad output_padding %lld", i, (long long)op);
      full = s * (L - 1) + op + ek;
      if (a->nd_out_shape[i] > 0 || a->nd_auto == GG_AUTO_SAME_UPPER ||
          a->nd_auto == GG_AUTO_SAME_LOWER) {
        out = a->nd_out_shape[i] > 0 ? a->nd_out_shape[i] : L * s;
        int64_t tot = full - out;
        if (tot < 0) /* larger than the scatter: the rest at the end (ONNX Runtime) */
          pb = 0, pe = tot;
        else
          pb = a->nd_auto == GG_AUTO_SAME_UPPER ? tot / 2 : tot - tot / 2, pe = tot - pb;
      } else
        out = full - pb - pe;
      if (out < 1 || out > GG_MAX_ELEMS)
        return BAD(GG_ERANGE, "axis %d: no output (size %lld) from input %s", i, (long long)out,
                   gg__shape_str(x->shape, x->ndim, sa, sizeof sa));
    } else if (a->nd_auto == GG_AUTO_SAME_UPPER || a->nd_auto == GG_AUTO_SAME_LOWER) {
      out = (L + s - 1) / s;
      int64_t tot = (out - 1) * s + ek - L;
      if (tot < 0) tot = 0;
      pb = a->nd_auto == GG_AUTO_SAME_UPPER ? tot / 2 : tot - tot / 2, pe = tot - pb;
    } else {
      if (!conv && (pb >= K || pe >= K))
        return BAD(GG_EUNSUPPORTED, "axis %d: pads %lld,%lld not smaller than the window %lld", i,
                   (long long)pb, (long long)pe, (long long)K);
      int64_t span = L + pb + pe;
      if (span < ek)
        return BAD(GG_ERANGE, "axis %d: window %lld (dilation %lld) does not fit input %s", i,
                   (long long)K, (long long)d, gg__shape_str(x->shape, x->ndim, sa, sizeof sa));
      if (!conv && a->ceil_mode) {
        out = (span - ek + s - 1) / s + 1;
        if ((out - 1) * s >= L + pb) out--; /* a window starting in the end padding: dropped */
      } else
        out = (span - ek) / s + 1;
    }
    g->in[j] = L, g->out[j] = out, g->k[j] = K, g->s[j] = s, g->d[j] = d, g->pb[j] = pb,
    g->pe[j] = pe;
  }
  return 0;
}

int gg__window_infer(const gg_node *n, gg_tval *vals, char *err, size_t errlen) {
  win3 g;
  char msg[256];
  int rc;
  if ((rc = geometry(n, vals, &g, err, errlen))) return rc;
  const gg_tval *x = IN(0);
  int nd = x->ndim - 2;
  int64_t shp[5] = {g.N, g.CO};
  for (int i = 0; i < nd; i++)
    shp[2 + i] = g.out[3 - nd + i];
  if ((rc = set_shape(OUT(0), GG_DT_F32, shp, x->ndim)))
    return gg_errf(err, errlen, rc, "node '%s' (%s): output too large", n->name, n->src_op);
  if (n->n_out > 1) {
    if (n->op != GG_OP_MAXPOOL_ND || n->n_out > 2)
      return BAD(GG_EPARSE, "has %d outputs", n->n_out);
    if (n->a.storage_order != 0 && (n->a.storage_order != 1 || nd > 2))
      return BAD(GG_EUNSUPPORTED, "storage_order=%d with %d spatial dims (0, or 1 with 1 or 2)",
                 n->a.storage_order, nd);
    /* GG_MAX_ELEMS keeps this true; an index must never wrap in int32 */
    if (x->nelem > INT32_MAX) return BAD(GG_ERANGE, "indices past int32");
    if ((rc = set_shape(OUT(1), GG_DT_I32, shp, x->ndim))) return rc;
  }
  return 0;
}

/* ------------------------------------------------------------ kernels */

typedef struct wjob {
  const gg_node *n;
  win3 g;
  const float *x, *w, *bias;
  float *y;
  int32_t *idx;
} wjob;

/* Row r of the output: (n, c, o0, o1), all of axis 2. */
static void row_pos(const wjob *j, size_t r, int64_t C, int64_t *b, int64_t *c, int64_t *o0,
                    int64_t *o1) {
  int64_t rr = (int64_t)r;
  *o1 = rr % j->g.out[1], rr /= j->g.out[1];
  *o0 = rr % j->g.out[0], rr /= j->g.out[0];
  *c = rr % C, *b = rr / C;
}

/* The taps t in [0, k) of a window starting at lo with dilation d that land
 * in [0, L): [*t0, *t1) (empty when *t0 >= *t1). Pools loop over these
 * only, so a huge window over a small input costs what the input holds. */
static void tap_range(int64_t lo, int64_t d, int64_t k, int64_t L, int64_t *t0, int64_t *t1) {
  int64_t first = lo >= 0 ? 0 : (-lo + d - 1) / d, last = lo >= L ? -1 : (L - 1 - lo) / d;
  *t0 = first, *t1 = (last < k - 1 ? last : k - 1) + 1;
}

static void pool_row(void *arg, size_t r) {
  const wjob *j = arg;
  const win3 *g = &j->g;
  int64_t b, c, o0, o1;
  row_pos(j, r, g->CI, &b, &c, &o0, &o1);
  int is_max = j->n->op == GG_OP_MAXPOOL_ND, incl = j->n->a.count_include_pad;
  int colmaj = j->n->a.storage_order == 1;
  int64_t plane = g->in[0] * g->in[1] * g->in[2], base = (b * g->CI + c) * plane;
  const float *xp = j->x + base;
  int64_t orow = ((b * g->CI + c) * g->out[0] + o0) * g->out[1] + o1;
  int64_t o[3] = {o0, o1, 0};
  for (o[2] = 0; o[2] < g->out[2]; o[2]++) {
    int64_t lo[3], t0[3], t1[3], cnt = 1; /* in-input taps; cells counted for the average */
    for (int a = 0; a < 3; a++) {
      int64_t c0, c1;
      lo[a] = o[a] * g->s[a] - g->pb[a];
      tap_range(lo[a], g->d[a], g->k[a], g->in[a], &t0[a], &t1[a]);
      if (incl) /* inside the padded input */
        tap_range(lo[a] + g->pb[a], g->d[a], g->k[a], g->in[a] + g->pb[a] + g->pe[a], &c0, &c1);
      else
        c0 = t0[a], c1 = t1[a];
      cnt *= c1 > c0 ? c1 - c0 : 0;
    }
    float best = -INFINITY, sum = 0.0f;
    int64_t bi = -1;
    for (int64_t q0 = t0[0]; q0 < t1[0]; q0++) {
      int64_t p0 = lo[0] + q0 * g->d[0];
      for (int64_t q1 = t0[1]; q1 < t1[1]; q1++) {
        int64_t p1 = lo[1] + q1 * g->d[1];
        for (int64_t q2 = t0[2]; q2 < t1[2]; q2++) {
          int64_t p2 = lo[2] + q2 * g->d[2];
          int64_t at = (p0 * g->in[1] + p1) * g->in[2] + p2;
          float v = xp[at];
          if (!is_max)
            sum += v;
          else if (v > best || bi < 0) { /* NaN never wins; the first tap is the default */
            if (v > best) best = v;
            bi = colmaj ? (p2 * g->in[1] + p1) * g->in[0] + p0 : at;
          }
        }
      }
    }
    int64_t oi = orow * g->out[2] + o[2];
    if (is_max) {
      j->y[oi] = best;
      if (j->idx) j->idx[oi] = (int32_t)(base + (bi < 0 ? 0 : bi));
    } else
      j->y[oi] = cnt > 0 ? sum / (float)cnt : 0.0f;
  }
}

static void conv_row(void *arg, size_t r) {
  const wjob *j = arg;
  const win3 *g = &j->g;
  int64_t b, co, o0, o1;
  row_pos(j, r, g->CO, &b, &co, &o0, &o1);
  int64_t cig = g->CI / g->groups, cog = g->CO / g->groups, grp = co / cog;
  int64_t plane = g->in[0] * g->in[1] * g->in[2], kvol = g->k[0] * g->k[1] * g->k[2];
  float *y = j->y + (((b * g->CO + co) * g->out[0] + o0) * g->out[1] + o1) * g->out[2];
  int64_t o[3] = {o0, o1, 0};
  for (o[2] = 0; o[2] < g->out[2]; o[2]++) {
    float acc = j->bias ? j->bias[co] : 0.0f;
    for (int64_t ci = 0; ci < cig; ci++) {
      const float *xp = j->x + (b * g->CI + grp * cig + ci) * plane;
      const float *wp = j->w + (co * cig + ci) * kvol;
      for (int64_t t0 = 0; t0 < g->k[0]; t0++) {
        int64_t p0 = o[0] * g->s[0] - g->pb[0] + t0 * g->d[0];
        if (p0 < 0 || p0 >= g->in[0]) continue;
        for (int64_t t1 = 0; t1 < g->k[1]; t1++) {
          int64_t p1 = o[1] * g->s[1] - g->pb[1] + t1 * g->d[1];
          if (p1 < 0 || p1 >= g->in[1]) continue;
          for (int64_t t2 = 0; t2 < g->k[2]; t2++) {
            int64_t p2 = o[2] * g->s[2] - g->pb[2] + t2 * g->d[2];
            if (p2 < 0 || p2 >= g->in[2]) continue;
            acc +=
                xp[(p0 * g->in[1] + p1) * g->in[2] + p2] * wp[(t0 * g->k[1] + t1) * g->k[2] + t2];
          }
        }
      }
    }
    y[o[2]] = acc;
  }
}

/* The input position that reaches output position o through tap t along
 * axis a, or -1: gathered, so that rows never write the same element. */
static int64_t convt_src(const win3 *g, int a, int64_t o, int64_t t) {
  int64_t f = o + g->pb[a] - t * g->d[a];
  if (f < 0 || f % g->s[a]) return -1;
  f /= g->s[a];
  return f < g->in[a] ? f : -1;
}

static void convt_row(void *arg, size_t r) {
  const wjob *j = arg;
  const win3 *g = &j->g;
  int64_t b, co, o0, o1;
  row_pos(j, r, g->CO, &b, &co, &o0, &o1);
  int64_t cig = g->CI / g->groups, cog = g->CO / g->groups, grp = co / cog, oc = co % cog;
  int64_t plane = g->in[0] * g->in[1] * g->in[2], kvol = g->k[0] * g->k[1] * g->k[2];
  float *y = j->y + (((b * g->CO + co) * g->out[0] + o0) * g->out[1] + o1) * g->out[2];
  for (int64_t o2 = 0; o2 < g->out[2]; o2++) {
    float acc = j->bias ? j->bias[co] : 0.0f;
    for (int64_t t0 = 0; t0 < g->k[0]; t0++) {
      int64_t p0 = convt_src(g, 0, o0, t0);
      if (p0 < 0) continue;
      for (int64_t t1 = 0; t1 < g->k[1]; t1++) {
        int64_t p1 = convt_src(g, 1, o1, t1);
        if (p1 < 0) continue;
        for (int64_t t2 = 0; t2 < g->k[2]; t2++) {
          int64_t p2 = convt_src(g, 2, o2, t2);
          if (p2 < 0) continue;
          int64_t at = (p0 * g->in[1] + p1) * g->in[2] + p2,
                  tap = (t0 * g->k[1] + t1) * g->k[2] + t2;
          for (int64_t ci = 0; ci < cig; ci++) {
            int64_t c = grp * cig + ci;
            acc += j->x[(b * g->CI + c) * plane + at] * j->w[(c * cog + oc) * kvol + tap];
          }
        }
      }
    }
    y[o2] = acc;
  }
}

int gg__window_run(const gg_node *n, gg_tval *vals, const gg__kctx *ctx) {
  wjob j;
  memset(&j, 0, sizeof j);
  char err[8];
  if (geometry(n, vals, &j.g, err, sizeof err)) return GG_EPARSE;
  j.n = n, j.x = F32(IN(0)), j.y = F32(OUT(0));
  int conv = n->op == GG_OP_CONV_ND || n->op == GG_OP_CONV_TRANSPOSE_ND;
  if (conv) j.w = F32(IN(1)), j.bias = n->n_in > 2 ? F32(IN(2)) : NULL;
  if (n->op == GG_OP_MAXPOOL_ND && n->n_out > 1) j.idx = I32(OUT(1));
  if (!OUT(0)->nelem) return 0;
  size_t rows = (size_t)(j.g.N * j.g.CO * j.g.out[0] * j.g.out[1]);
  switch (n->op) {
  case GG_OP_MAXPOOL_ND:
  case GG_OP_AVGPOOL_ND: gg__par1d(ctx, pool_row, &j, rows); return 0;
  case GG_OP_CONV_ND: gg__par1d(ctx, conv_row, &j, rows); return 0;
  case GG_OP_CONV_TRANSPOSE_ND: gg__par1d(ctx, convt_row, &j, rows); return 0;
  default: return GG_EUNSUPPORTED;
  }
}
