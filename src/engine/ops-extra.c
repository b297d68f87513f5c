/* ONNX-era ops, group X (see the enum in src/engine/graph.h): the unary math
 * functions, Mod and the logic/comparison ops ONNX adds, the reductions beyond
 * group E's, ArgMax/ArgMin, CumSum, GatherElements/GatherND, Trilu, Hardmax,
 * LRN, TopK, OneHot, EyeLike, ScatterND/ScatterElements and the linear
 * quantization of QuantizeLinear / DequantizeLinear. Shape rules
 * (gg__extra_infer) and naive reference kernels (gg__extra_run), numerics as
 * ONNX's reference implementation (numpy) defines them. The elementwise
 * kernels split large outputs into tiles run on ctx->pool; every element is
 * computed the same way whatever the split. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/error.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IN(k) (&vals[n->in[k]])
#define OUT(k) (&vals[n->out[k]])
#define F32(v) ((float *)(v)->data)
#define I32(v) ((int32_t *)(v)->data)

/* Elements per unit of parallel work (and the size below which a kernel
 * runs on the calling thread). */
#define TILE 16384

/* ------------------------------------------------------------ helpers */

static const char *dt_name(gg_dtype dt) {
  return dt == GG_DT_F32 ? "float" : dt == GG_DT_I32 ? "int" : "?";
}

static int set_shape(gg_tval *o, gg_dtype dt, const int64_t *shape, int ndim) {
  o->dtype = dt;
  o->ndim = ndim;
  for (int i = 0; i < ndim; i++)
    o->shape[i] = shape[i];
  return gg__shape_nelem(o->shape, ndim, &o->nelem);
}

/* Row-major strides of t in elements. */
static void strides_of(const gg_tval *t, int64_t *st) {
  int64_t s = 1;
  for (int d = t->ndim - 1; d >= 0; d--)
    st[d] = s, s *= t->shape[d];
}

/* numpy broadcasting of a and b into o; -1 when they do not. */
static int bcast(const gg_tval *a, const gg_tval *b, int64_t *o, int *no) {
  int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
  for (int i = 0; i < nd; i++) {
    int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
    int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
    if (da != db && da != 1 && db != 1) return -1;
    o[i] = da == 1 ? db : da;
  }
  *no = nd;
  return 0;
}

/* Strides of operand t read against an output of rank nd (0 where it is
 * broadcast). */
static void bcast_strides(const gg_tval *t, int nd, int64_t *st) {
  int64_t s = 1;
  for (int d = nd - 1; d >= 0; d--) {
    int it = d - (nd - t->ndim);
    int64_t e = it >= 0 ? t->shape[it] : 1;
    st[d] = e == 1 ? 0 : s;
    s *= e;
  }
}

/* The value of the scalar (or one-element tensor) t as an integer in *v (a
 * float truncated, as a cast); -1 when t is not one or a float is NaN or
 * past the int32 range. */
static int scalar_i32(const gg_tval *t, int64_t *v) {
  if (!t->data || t->nelem != 1 || t->ndim > 1) return -1;
  if (t->dtype == GG_DT_I32) {
    *v = ((const int32_t *)t->data)[0];
    return 0;
  }
  float f = ((const float *)t->data)[0];
  if (!(f > -2147483648.0f && f < 2147483648.0f)) return -1;
  *v = (int64_t)f;
  return 0;
}

/* ------------------------------------------------------------ unary */

typedef struct ew_job {
  const gg_node *n;
  gg_tval *vals;
  int64_t nelem;
  int nd;
  int64_t shape[GG_MAX_DIMS], sa[GG_MAX_DIMS], sb[GG_MAX_DIMS];
} ew_job;

static void unary_tile(void *arg, size_t u) {
  const ew_job *j = arg;
  const gg_node *n = j->n;
  gg_tval *vals = j->vals;
  int64_t s = (int64_t)u * TILE, e = s + TILE;
  if (e > j->nelem) e = j->nelem;
  float al = n->a.alpha, be = n->a.beta, ga = n->a.gamma;
  if (IN(0)->dtype == GG_DT_I32) { /* Sign on ints */
    const int32_t *x = I32(IN(0));
    int32_t *y = I32(OUT(0));
    for (int64_t i = s; i < e; i++)
      y[i] = (x[i] > 0) - (x[i] < 0);
    return;
  }
  const float *x = F32(IN(0));
  float *y = F32(OUT(0));
  int32_t *yi = I32(OUT(0));
  switch ((gg_ux_fn)n->a.fn) {
  case GG_UX_SIN:
    for (int64_t i = s; i < e; i++)
      y[i] = sinf(x[i]);
    break;
  case GG_UX_COS:
    for (int64_t i = s; i < e; i++)
      y[i] = cosf(x[i]);
    break;
  case GG_UX_TAN:
    for (int64_t i = s; i < e; i++)
      y[i] = tanf(x[i]);
    break;
  case GG_UX_ASIN:
    for (int64_t i = s; i < e; i++)
      y[i] = asinf(x[i]);
    break;
  case GG_UX_ACOS:
    for (int64_t i = s; i < e; i++)
      y[i] = acosf(x[i]);
    break;
  case GG_UX_ATAN:
    for (int64_t i = s; i < e; i++)
      y[i] = atanf(x[i]);
    break;
  case GG_UX_SINH:
    for (int64_t i = s; i < e; i++)
      y[i] = sinhf(x[i]);
    break;
  case GG_UX_COSH:
    for (int64_t i = s; i < e; i++)
      y[i] = coshf(x[i]);
    break;
  case GG_UX_ASINH:
    for (int64_t i = s; i < e; i++)
      y[i] = asinhf(x[i]);
    break;
  case GG_UX_ACOSH:
    for (int64_t i = s; i < e; i++)
      y[i] = acoshf(x[i]);
    break;
  case GG_UX_ATANH:
    for (int64_t i = s; i < e; i++)
      y[i] = atanhf(x[i]);
    break;
  case GG_UX_FLOOR:
    for (int64_t i = s; i < e; i++)
      y[i] = floorf(x[i]);
    break;
  case GG_UX_CEIL:
    for (int64_t i = s; i < e; i++)
      y[i] = ceilf(x[i]);
    break;
  /* rintf in the default rounding mode: halves to even, as numpy.round */
  case GG_UX_ROUND:
    for (int64_t i = s; i < e; i++)
      y[i] = rintf(x[i]);
    break;
  case GG_UX_SIGN:
    for (int64_t i = s; i < e; i++)
      y[i] = x[i] > 0 ? 1.0f : x[i] < 0 ? -1.0f : x[i];
    break;
  case GG_UX_ISNAN:
    for (int64_t i = s; i < e; i++)
      yi[i] = x[i] != x[i];
    break;
  case GG_UX_ISINF:
    for (int64_t i = s; i < e; i++)
      yi[i] = (x[i] == INFINITY && (n->a.flags & 2)) || (x[i] == -INFINITY && (n->a.flags & 1));
    break;
  case GG_UX_ELU:
    for (int64_t i = s; i < e; i++)
      y[i] = x[i] < 0 ? al * expm1f(x[i]) : x[i];
    break;
  case GG_UX_SELU:
    for (int64_t i = s; i < e; i++)
      y[i] = x[i] > 0 ? ga * x[i] : ga * (al * expf(x[i]) - al);
    break;
  case GG_UX_CELU:
    for (int64_t i = s; i < e; i++) {
      float v = al * expm1f(x[i] / al);
      y[i] = (x[i] > 0 ? x[i] : 0.0f) + (v < 0 ? v : 0.0f);
    }
    break;
  case GG_UX_SOFTSIGN:
    for (int64_t i = s; i < e; i++)
      y[i] = x[i] / (1.0f + fabsf(x[i]));
    break;
  case GG_UX_THRESHOLDED_RELU:
    for (int64_t i = s; i < e; i++)
      y[i] = x[i] > al ? x[i] : 0.0f;
    break;
  case GG_UX_SHRINK: /* bias in alpha, lambd in beta */
    for (int64_t i = s; i < e; i++)
      y[i] = x[i] < -be ? x[i] + al : x[i] > be ? x[i] - al : 0.0f;
    break;
  default: break;
  }
}

/* ------------------------------------------------------------ binary */

static inline int32_t imod(int32_t a, int32_t b, int python) {
  if (b == 0 || b == -1) return 0; /* -1: INT32_MIN % -1 traps in C */
  int32_t r = a % b;
  if (python && r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

static void binary_tile(void *arg, size_t u) {
  const ew_job *j = arg;
  const gg_node *n = j->n;
  gg_tval *vals = j->vals;
  int64_t s = (int64_t)u * TILE, e = s + TILE;
  if (e > j->nelem) e = j->nelem;
  int64_t idx[GG_MAX_DIMS], oa = 0, ob = 0, r = s;
  for (int d = j->nd - 1; d >= 0; d--) {
    idx[d] = r % j->shape[d], r /= j->shape[d];
    oa += idx[d] * j->sa[d], ob += idx[d] * j->sb[d];
  }
  int isf = IN(0)->dtype == GG_DT_F32;
  const float *fa = F32(IN(0)), *fb = F32(IN(1));
  const int32_t *ia = I32(IN(0)), *ib = I32(IN(1));
  float *fy = F32(OUT(0));
  int32_t *iy = I32(OUT(0));
  gg_bx_fn fn = (gg_bx_fn)n->a.fn;
  for (int64_t i = s; i < e; i++) {
    switch (fn) {
    case GG_BX_MOD: iy[i] = imod(ia[oa], ib[ob], 1); break;
    case GG_BX_FMOD:
      if (isf)
        fy[i] = fmodf(fa[oa], fb[ob]);
      else
        iy[i] = imod(ia[oa], ib[ob], 0);
      break;
    case GG_BX_GE: iy[i] = isf ? fa[oa] >= fb[ob] : ia[oa] >= ib[ob]; break;
    case GG_BX_LE: iy[i] = isf ? fa[oa] <= fb[ob] : ia[oa] <= ib[ob]; break;
    case GG_BX_AND: iy[i] = (ia[oa] != 0) & (ib[ob] != 0); break;
    case GG_BX_OR: iy[i] = (ia[oa] != 0) | (ib[ob] != 0); break;
    case GG_BX_XOR: iy[i] = (ia[oa] != 0) ^ (ib[ob] != 0); break;
    default: break;
    }
    for (int d = j->nd - 1; d >= 0; d--) {
      oa += j->sa[d], ob += j->sb[d];
      if (++idx[d] < j->shape[d]) break;
      oa -= j->shape[d] * j->sa[d], ob -= j->shape[d] * j->sb[d], idx[d] = 0;
    }
  }
}

static int run_elementwise(const gg_node *n, gg_tval *vals, const gg__kctx *ctx, int binary) {
  gg_tval *y = OUT(0);
  if (y->nelem == 0) return 0;
  ew_job j;
  memset(&j, 0, sizeof j);
  j.n = n, j.vals = vals, j.nelem = y->nelem, j.nd = y->ndim;
  for (int d = 0; d < y->ndim; d++)
    j.shape[d] = y->shape[d];
  if (binary) bcast_strides(IN(0), y->ndim, j.sa), bcast_strides(IN(1), y->ndim, j.sb);
  gg__par1d(y->nelem > TILE ? ctx : NULL, binary ? binary_tile : unary_tile, &j,
            (size_t)((y->nelem + TILE - 1) / TILE));
  return 0;
}

/* ------------------------------------------------------------ reductions */

/* x's dims split into kept and reduced ones (REDUCE_X's axes input, or one
 * axis for ArgMax / ArgMin / Hardmax / CumSum). */
typedef struct red_shape {
  int nk, nr;
  int64_t kshape[GG_MAX_DIMS], kst[GG_MAX_DIMS];
  int64_t rshape[GG_MAX_DIMS], rst[GG_MAX_DIMS];
  int64_t ny, rcount;
} red_shape;

static void red_split(const gg_tval *x, const int *red, red_shape *r) {
  int64_t st[GG_MAX_DIMS];
  strides_of(x, st);
  memset(r, 0, sizeof *r);
  r->ny = r->rcount = 1;
  for (int d = 0; d < x->ndim; d++) {
    if (red[d])
      r->rshape[r->nr] = x->shape[d], r->rst[r->nr++] = st[d], r->rcount *= x->shape[d];
    else
      r->kshape[r->nk] = x->shape[d], r->kst[r->nk++] = st[d], r->ny *= x->shape[d];
  }
}

/* Offset in x of the o-th kept position. */
static int64_t red_base(const red_shape *r, int64_t o) {
  int64_t base = 0;
  for (int d = r->nk - 1; d >= 0; d--)
    base += (o % r->kshape[d]) * r->kst[d], o /= r->kshape[d];
  return base;
}

/* Which axes REDUCE_X reduces: its const axes input, all when empty. */
static int reduce_axes(const gg_node *n, const gg_tval *vals, int *red) {
  const gg_tval *x = IN(0);
  memset(red, 0, sizeof(int) * GG_MAX_DIMS);
  if (n->n_in < 2 || IN(1)->nelem == 0) {
    for (int d = 0; d < x->ndim; d++)
      red[d] = 1;
    return 0;
  }
  for (int64_t i = 0; i < IN(1)->nelem; i++) {
    int ax = 0;
    if (gg__norm_axis(I32(IN(1))[i], x->ndim, &ax)) return -1;
    red[ax] = 1;
  }
  return 0;
}

typedef struct red_job {
  const gg_node *n;
  gg_tval *vals;
  red_shape r;
} red_job;

static void reduce_one(void *arg, size_t u) {
  const red_job *j = arg;
  const gg_node *n = j->n;
  gg_tval *vals = j->vals;
  gg_rx_fn fn = (gg_rx_fn)n->a.fn;
  int isf = IN(0)->dtype == GG_DT_F32;
  int64_t idx[GG_MAX_DIMS] = {0}, off = red_base(&j->r, (int64_t)u);
  double acc = fn == GG_RX_PROD ? 1.0 : 0.0, mx = -INFINITY;
  uint32_t iacc = fn == GG_RX_PROD ? 1u : 0u;
  if (fn == GG_RX_LOG_SUM_EXP) { /* max first: exp never overflows */
    int64_t o2 = off, id2[GG_MAX_DIMS] = {0};
    for (int64_t c = 0; c < j->r.rcount; c++) {
      double v = F32(IN(0))[o2];
      if (v > mx || v != v) mx = v;
      for (int d = j->r.nr - 1; d >= 0; d--) {
        o2 += j->r.rst[d];
        if (++id2[d] < j->r.rshape[d]) break;
        o2 -= j->r.rshape[d] * j->r.rst[d], id2[d] = 0;
      }
    }
  }
  for (int64_t c = 0; c < j->r.rcount; c++) {
    if (isf) {
      double v = F32(IN(0))[off];
      switch (fn) {
      case GG_RX_PROD: acc *= v; break;
      case GG_RX_SUM_SQUARE: acc += v * v; break;
      case GG_RX_L1: acc += fabs(v); break;
      case GG_RX_LOG_SUM: acc += v; break;
      case GG_RX_LOG_SUM_EXP: acc += exp(v - mx); break;
      default: break;
      }
    } else {
      uint32_t v = (uint32_t)I32(IN(0))[off];
      switch (fn) {
      case GG_RX_PROD: iacc *= v; break;
      case GG_RX_SUM_SQUARE: iacc += v * v; break;
      case GG_RX_L1: iacc += (int32_t)v < 0 ? 0u - v : v; break;
      default: break;
      }
    }
    for (int d = j->r.nr - 1; d >= 0; d--) {
      off += j->r.rst[d];
      if (++idx[d] < j->r.rshape[d]) break;
      off -= j->r.rshape[d] * j->r.rst[d], idx[d] = 0;
    }
  }
  if (!isf) {
    I32(OUT(0))[u] = (int32_t)iacc;
    return;
  }
  if (fn == GG_RX_LOG_SUM) acc = log(acc);
  if (fn == GG_RX_LOG_SUM_EXP) acc = isinf(mx) || mx != mx ? mx : mx + log(acc);
  F32(OUT(0))[u] = (float)acc;
}

static int run_reduce(const gg_node *n, gg_tval *vals, const gg__kctx *ctx) {
  int red[GG_MAX_DIMS];
  if (reduce_axes(n, vals, red)) return GG_EPARSE;
  if (OUT(0)->nelem == 0) return 0;
  red_job j = {n, vals, {0}};
  red_split(IN(0), red, &j.r);
  gg__par1d(IN(0)->nelem > TILE ? ctx : NULL, reduce_one, &j, (size_t)j.r.ny);
  return 0;
}

/* ArgMax / ArgMin / Hardmax: the winning position along one axis. */
static int64_t arg_pick(const red_job *j, int64_t off, int is_min, int last) {
  const gg_node *n = j->n;
  gg_tval *vals = j->vals;
  int64_t best = 0, st = j->r.rst[0];
  if (IN(0)->dtype == GG_DT_I32) {
    const int32_t *x = I32(IN(0)) + off;
    for (int64_t c = 1; c < j->r.rcount; c++) {
      int32_t v = x[c * st], b = x[best * st];
      if (is_min ? (v < b || (last && v == b)) : (v > b || (last && v == b))) best = c;
    }
    return best;
  }
  const float *x = F32(IN(0)) + off;
  for (int64_t c = 1; c < j->r.rcount; c++) {
    float v = x[c * st], b = x[best * st];
    int win;
    if (b != b)
      win = last && v != v; /* a NaN wins (numpy): the first, or the last */
    else if (v != v)
      win = 1;
    else
      win = is_min ? (v < b || (last && v == b)) : (v > b || (last && v == b));
    if (win) best = c;
  }
  return best;
}

static void arg_one(void *arg, size_t u) {
  const red_job *j = arg;
  const gg_node *n = j->n;
  gg_tval *vals = j->vals;
  int64_t off = red_base(&j->r, (int64_t)u);
  if (n->op == GG_OP_ARG_X) {
    I32(OUT(0))[u] = (int32_t)arg_pick(j, off, n->a.fn == 1, n->a.flags & 1);
    return;
  }
  /* Hardmax: the one-hot of ArgMax (the first max; a NaN wins, as the
   * np.argmax of ONNX's reference) */
  float *y = F32(OUT(0));
  int64_t st = j->r.rst[0], best = arg_pick(j, off, 0, 0);
  for (int64_t c = 0; c < j->r.rcount; c++)
    y[off + c * st] = c == best ? 1.0f : 0.0f;
}

/* red_shape for one axis ax of x (Hardmax's coerced form: the dims from ax
 * on merged into one). */
static void axis_split(const gg_tval *x, int ax, int coerce, red_shape *r) {
  int red[GG_MAX_DIMS] = {0};
  if (!coerce) {
    red[ax] = 1;
    red_split(x, red, r);
    return;
  }
  memset(r, 0, sizeof *r);
  r->ny = 1, r->rcount = 1;
  for (int d = 0; d < x->ndim; d++)
    if (d < ax)
      r->ny *= x->shape[d];
    else
      r->rcount *= x->shape[d];
  r->nk = 1, r->kshape[0] = r->ny, r->kst[0] = r->rcount;
  r->nr = 1, r->rshape[0] = r->rcount, r->rst[0] = 1;
}

static int run_arg(const gg_node *n, gg_tval *vals, const gg__kctx *ctx) {
  const gg_tval *x = IN(0);
  int ax = 0;
  if (x->ndim == 0) { /* a scalar: Hardmax gives 1, ArgMax 0 */
    if (n->op == GG_OP_HARDMAX)
      F32(OUT(0))[0] = 1.0f;
    else
      I32(OUT(0))[0] = 0;
    return 0;
  }
  if (gg__norm_axis(n->a.axis, x->ndim, &ax)) return GG_EPARSE;
  if (x->nelem == 0) return 0;
  red_job j = {n, vals, {0}};
  axis_split(x, ax, n->op == GG_OP_HARDMAX && (n->a.flags & 1), &j.r);
  gg__par1d(x->nelem > TILE ? ctx : NULL, arg_one, &j, (size_t)j.r.ny);
  return 0;
}

/* ------------------------------------------------------------ CumSum */

static int run_cumsum(const gg_node *n, gg_tval *vals) {
  const gg_tval *x = IN(0);
  int64_t axv;
  int ax;
  if (scalar_i32(IN(1), &axv) || gg__norm_axis(axv, x->ndim, &ax)) return GG_ERANGE;
  if (x->nelem == 0) return 0;
  red_shape r;
  int red[GG_MAX_DIMS] = {0};
  red[ax] = 1;
  red_split(x, red, &r);
  int excl = n->a.flags & 1, rev = (n->a.flags & 2) != 0;
  int64_t st = r.rst[0], len = r.rcount;
  for (int64_t o = 0; o < r.ny; o++) {
    int64_t base = red_base(&r, o);
    double acc = 0;
    uint32_t iacc = 0;
    for (int64_t c = 0; c < len; c++) {
      int64_t p = base + (rev ? len - 1 - c : c) * st;
      if (x->dtype == GG_DT_F32) {
        float v = F32(x)[p];
        if (excl)
          F32(OUT(0))[p] = (float)acc, acc += v;
        else
          acc += v, F32(OUT(0))[p] = (float)acc;
      } else {
        uint32_t v = (uint32_t)I32(x)[p];
        if (excl)
          I32(OUT(0))[p] = (int32_t)iacc, iacc += v;
        else
          iacc += v, I32(OUT(0))[p] = (int32_t)iacc;
      }
    }
  }
  return 0;
}

/* ------------------------------------------------------------ gathers */

static int run_gather_elements(const gg_node *n, gg_tval *vals) {
  const gg_tval *x = IN(0), *ix = IN(1);
  gg_tval *y = OUT(0);
  int ax = 0;
  if (gg__norm_axis(n->a.axis, x->ndim, &ax)) return GG_EPARSE;
  int64_t xst[GG_MAX_DIMS], idx[GG_MAX_DIMS] = {0};
  strides_of(x, xst);
  const int32_t *xi = I32(x);
  int32_t *yi = I32(y);
  int64_t dim = x->shape[ax];
  for (int64_t i = 0; i < ix->nelem; i++) {
    int64_t k = I32(ix)[i];
    if (k < 0) k += dim;
    if (k < 0 || k >= dim) return GG_ERANGE;
    int64_t off = 0;
    for (int d = 0; d < x->ndim; d++)
      off += (d == ax ? k : idx[d]) * xst[d];
    yi[i] = xi[off]; /* a copy of 4-byte values: any dtype */
    for (int d = ix->ndim - 1; d >= 0; d--) {
      if (++idx[d] < ix->shape[d]) break;
      idx[d] = 0;
    }
  }
  return 0;
}

static int run_gather_nd(const gg_node *n, gg_tval *vals) {
  const gg_tval *x = IN(0), *ix = IN(1);
  gg_tval *y = OUT(0);
  int b = n->a.axis, k = (int)ix->shape[ix->ndim - 1];
  int64_t xst[GG_MAX_DIMS], slice = 1, batch = 1, per_batch = 1;
  strides_of(x, xst);
  for (int d = b + k; d < x->ndim; d++)
    slice *= x->shape[d];
  for (int d = 0; d < b; d++)
    batch *= x->shape[d];
  for (int d = b; d < ix->ndim - 1; d++)
    per_batch *= ix->shape[d];
  int64_t bstride = b ? xst[b - 1] : 0;
  const int32_t *ii = I32(ix);
  for (int64_t bt = 0; bt < batch; bt++)
    for (int64_t q = 0; q < per_batch; q++) {
      const int32_t *t = ii + (bt * per_batch + q) * k;
      int64_t off = bt * bstride;
      for (int d = 0; d < k; d++) {
        int64_t v = t[d], dim = x->shape[b + d];
        if (v < 0) v += dim;
        if (v < 0 || v >= dim) return GG_ERANGE;
        off += v * xst[b + d];
      }
      memcpy(I32(y) + (bt * per_batch + q) * slice, I32(x) + off, (size_t)slice * 4);
    }
  return 0;
}

/* ------------------------------------------------------------ Trilu, EyeLike */

static int run_trilu(const gg_node *n, gg_tval *vals) {
  const gg_tval *x = IN(0);
  int64_t k = 0;
  if (n->n_in > 1 && scalar_i32(IN(1), &k)) return GG_EPARSE;
  int64_t rows = x->shape[x->ndim - 2], cols = x->shape[x->ndim - 1];
  int64_t mats = rows && cols ? x->nelem / (rows * cols) : 0;
  int upper = n->a.flags & 1;
  const int32_t *xi = I32(x);
  int32_t *yi = I32(OUT(0));
  for (int64_t m = 0; m < mats; m++)
    for (int64_t i = 0; i < rows; i++)
      for (int64_t c = 0; c < cols; c++) {
        int64_t p = (m * rows + i) * cols + c;
        int keep = upper ? c - i >= k : c - i <= k;
        yi[p] = keep ? xi[p] : 0; /* 0 is 0.0f too */
      }
  return 0;
}

/* ------------------------------------------------------------ quantization */

int gg__quant_range(int kind, float *lo, float *hi) {
  switch (kind) {
  case GG_CAST_U8: *lo = 0.0f, *hi = 255.0f; return 0;
  case GG_CAST_I8: *lo = -128.0f, *hi = 127.0f; return 0;
  case GG_CAST_U16: *lo = 0.0f, *hi = 65535.0f; return 0;
  case GG_CAST_I16: *lo = -32768.0f, *hi = 32767.0f; return 0;
  default: return -1;
  }
}

int gg__quant_axis(const gg_node *n, const gg_tval *x, const gg_tval *s, int64_t *ch,
                   int64_t *inner) {
  int ax;
  *ch = 1, *inner = 1;
  if (s->nelem == 1 && s->ndim <= 1) return 0;
  if (s->ndim != 1 || gg__norm_axis(n->a.axis, x->ndim, &ax) || s->shape[0] != x->shape[ax])
    return -1;
  *ch = s->shape[0];
  for (int d = ax + 1; d < x->ndim; d++)
    *inner *= x->shape[d];
  return 0;
}

typedef struct quant_job {
  const gg_node *n;
  const gg_tval *x, *s, *z;
  gg_tval *y;
  int64_t ch, inner;
  float lo, hi;
} quant_job;

/* One run of QuantizeLinear: clamp(rint(x / k) + zf) to [lo, hi] (x * k
 * when mul), into yi, or minus zf into yf. Written so that it vectorises:
 * NaN becomes 0 (the zero point), values are first bounded to +-2^22 (the
 * result saturates far inside that) and rounded half to even by adding and
 * subtracting 1.5 * 2^23 in the default rounding mode, which is rintf on
 * that range. */
#define QUANT_LOOP(EXPR, STORE)                                                                   \
  for (int64_t r = 0; r < n; r++) {                                                                \
    float q = (EXPR);                                                                              \
    q = q == q ? q : 0.0f;                                                                         \
    q = q < -big ? -big : q > big ? big : q;                                                       \
    q = (q + magic) - magic;                                                                       \
    float v = q + zf;                                                                              \
    v = v < lo ? lo : v > hi ? hi : v;                                                             \
    STORE;                                                                                         \
  }
static void quant_row(const float *restrict x, int64_t n, float k, int mul, float zf, float lo,
                      float hi, int32_t *restrict yi, float *restrict yf) {
  const float big = 4194304.0f, magic = 12582912.0f;
  if (mul && yf)
    QUANT_LOOP(x[r] * k, yf[r] = v - zf)
  else if (mul)
    QUANT_LOOP(x[r] * k, yi[r] = (int32_t)v)
  else if (yf)
    QUANT_LOOP(x[r] / k, yf[r] = v - zf)
  else
    QUANT_LOOP(x[r] / k, yi[r] = (int32_t)v)
}
#undef QUANT_LOOP

static void quant_tile(void *arg, size_t u) {
  const quant_job *j = arg;
  int64_t s = (int64_t)u * TILE, e = s + TILE;
  if (e > j->y->nelem) e = j->y->nelem;
  const float *sc = F32(j->s);
  const int32_t *zp = j->z ? I32(j->z) : NULL;
  for (int64_t i = s; i < e;) {
    int64_t c = j->ch > 1 ? (i / j->inner) % j->ch : 0;
    int64_t run = j->ch > 1 ? j->inner - i % j->inner : e - i; /* elements sharing channel c */
    if (run > e - i) run = e - i;
    float k = sc[c];
    int32_t z = zp ? zp[j->z->nelem == 1 ? 0 : c] : 0;
    if (j->n->op == GG_OP_DEQUANTIZE) {
      const int32_t *x = I32(j->x) + i;
      float *y = F32(j->y) + i;
      for (int64_t r = 0; r < run; r++)
        y[r] = (float)((int64_t)x[r] - z) * k;
    } else {
      const float *x = F32(j->x) + i;
      float zf = (float)z, lo = j->lo, hi = j->hi;
      /* flags bit 0: requantization, x * scale; bit 2: the quantized value
       * less the zero point, as float */
      int fl = j->n->a.flags;
      quant_row(x, run, k, fl & 1, zf, lo, hi, fl & 4 ? NULL : I32(j->y) + i,
                fl & 4 ? F32(j->y) + i : NULL);
    }
    i += run;
  }
}

static int run_quant(const gg_node *n, gg_tval *vals, const gg__kctx *ctx) {
  quant_job j = {n, IN(0), IN(1), n->n_in > 2 ? IN(2) : NULL, OUT(0), 1, 1, 0.0f, 0.0f};
  if (gg__quant_axis(n, j.x, j.s, &j.ch, &j.inner) || j.inner < 1) return GG_EPARSE;
  if (n->op == GG_OP_QUANTIZE && gg__quant_range(n->a.cast_kind, &j.lo, &j.hi)) return GG_EUNSUPPORTED;
  gg__par1d(j.y->nelem > TILE ? ctx : NULL, quant_tile, &j,
            (size_t)((j.y->nelem + TILE - 1) / TILE));
  return 0;
}

static int run_eye_like(const gg_node *n, gg_tval *vals) {
  gg_tval *y = OUT(0);
  if (y->ndim != 2) return GG_EPARSE;
  for (int64_t i = 0; i < y->shape[0]; i++)
    for (int64_t c = 0; c < y->shape[1]; c++) {
      int on = c - i == n->a.axis;
      int64_t p = i * y->shape[1] + c;
      if (y->dtype == GG_DT_F32)
        F32(y)[p] = on ? 1.0f : 0.0f;
      else
        I32(y)[p] = on;
    }
  return 0;
}

/* ------------------------------------------------------------ LRN */

static int run_lrn(const gg_node *n, gg_tval *vals) {
  const gg_tval *x = IN(0);
  int64_t N = x->shape[0], C = x->shape[1], sp = 1;
  for (int d = 2; d < x->ndim; d++)
    sp *= x->shape[d];
  int64_t lo = (n->a.size - 1) / 2, hi = n->a.size - 1 - lo; /* floor and ceil of (size-1)/2 */
  double scale = (double)n->a.alpha / n->a.size;
  for (int64_t b = 0; b < N; b++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t s = 0; s < sp; s++) {
        double sum = 0;
        int64_t q0 = c - lo < 0 ? 0 : c - lo, q1 = c + hi >= C ? C - 1 : c + hi;
        for (int64_t q = q0; q <= q1; q++) {
          double v = F32(x)[(b * C + q) * sp + s];
          sum += v * v;
        }
        int64_t p = (b * C + c) * sp + s;
        F32(OUT(0))[p] = (float)(F32(x)[p] / pow(n->a.gamma + scale * sum, n->a.beta));
      }
  return 0;
}

/* ------------------------------------------------------------ TopK */

/* The output row of one TopK (values and indices at base + j * st for slot
 * j) doubles as a bounded heap while the row is scanned: nothing is
 * allocated while a request runs (engine.h), and the work is n log K. */
typedef struct tk_row {
  gg_tval *yv, *yi;
  int64_t base, st;
  int isf, largest;
} tk_row;

static double tk_v(const tk_row *t, int64_t j) {
  int64_t p = t->base + j * t->st;
  return t->isf ? (double)F32(t->yv)[p] : (double)I32(t->yv)[p];
}

static int64_t tk_i(const tk_row *t, int64_t j) {
  return t->yi ? I32(t->yi)[t->base + j * t->st] : 0;
}

static void tk_set(const tk_row *t, int64_t j, double v, int64_t i) {
  int64_t p = t->base + j * t->st;
  if (t->isf)
    F32(t->yv)[p] = (float)v;
  else
    I32(t->yv)[p] = (int32_t)v;
  if (t->yi) I32(t->yi)[p] = (int32_t)i;
}

/* 1 when (va, ia) comes after (vb, ib) in TopK's output: NaN is the largest
 * value; largest first (or smallest first); equal values: the lower index
 * first. Without the indices output equal values are interchangeable. */
static int tk_after(int largest, double va, int64_t ia, double vb, int64_t ib) {
  int an = va != va, bn = vb != vb;
  if (an != bn) return largest ? bn : an;
  if (!an && va != vb) return largest ? va < vb : va > vb;
  return ia > ib;
}

/* Restores the heap below slot j of n slots (a parent comes after its
 * children in the output order: slot 0 holds the one that would leave first). */
static void tk_sift(const tk_row *t, int64_t j, int64_t n) {
  double v = tk_v(t, j);
  int64_t i = tk_i(t, j);
  for (;;) {
    int64_t c = 2 * j + 1;
    if (c >= n) break;
    if (c + 1 < n && tk_after(t->largest, tk_v(t, c + 1), tk_i(t, c + 1), tk_v(t, c), tk_i(t, c)))
      c++;
    if (!tk_after(t->largest, tk_v(t, c), tk_i(t, c), v, i)) break;
    tk_set(t, j, tk_v(t, c), tk_i(t, c));
    j = c;
  }
  tk_set(t, j, v, i);
}

static int run_topk(const gg_node *n, gg_tval *vals) {
  const gg_tval *x = IN(0);
  gg_tval *yv = OUT(0), *yi = OUT(1);
  int ax = 0;
  if (gg__norm_axis(n->a.axis, x->ndim, &ax)) return GG_EPARSE;
  int64_t K = yv->shape[ax];
  if (yv->nelem == 0) return 0;
  red_shape r, ro;
  int red[GG_MAX_DIMS] = {0};
  red[ax] = 1;
  red_split(x, red, &r);
  red_split(yv, red, &ro);
  int isf = x->dtype == GG_DT_F32;
  for (int64_t o = 0; o < r.ny; o++) {
    int64_t base = red_base(&r, o);
    tk_row t = {yv, yi, red_base(&ro, o), ro.rst[0], isf, (n->a.flags & 1) != 0};
    for (int64_t c = 0; c < r.rcount; c++) {
      int64_t p = base + c * r.rst[0];
      double v = isf ? (double)F32(x)[p] : (double)I32(x)[p];
      if (c < K) { /* fill, then heapify once full */
        tk_set(&t, c, v, c);
        if (c == K - 1)
          for (int64_t j = K / 2 - 1; j >= 0; j--) tk_sift(&t, j, K);
      } else if (tk_after(t.largest, tk_v(&t, 0), tk_i(&t, 0), v, c)) {
        tk_set(&t, 0, v, c); /* the new value beats the one that would leave first */
        tk_sift(&t, 0, K);
      }
    }
    /* heap sort: the slot that leaves first goes to the end, so slot 0 ends
     * up first in the output order */
    for (int64_t e = K - 1; e > 0; e--) {
      double v = tk_v(&t, 0);
      int64_t i = tk_i(&t, 0);
      tk_set(&t, 0, tk_v(&t, e), tk_i(&t, e));
      tk_set(&t, e, v, i);
      tk_sift(&t, 0, e);
    }
  }
  return 0;
}

/* ------------------------------------------------------------ OneHot */

static int run_one_hot(const gg_node *n, gg_tval *vals) {
  const gg_tval *ix = IN(0), *vv = IN(2);
  gg_tval *y = OUT(0);
  int ax = 0;
  if (gg__norm_axis(n->a.axis, y->ndim, &ax)) return GG_EPARSE;
  int64_t depth = y->shape[ax], outer = 1, inner = 1;
  for (int d = 0; d < ax; d++)
    outer *= y->shape[d];
  for (int d = ax + 1; d < y->ndim; d++)
    inner *= y->shape[d];
  const int32_t *v = I32(vv); /* off, on: 4-byte values of y's dtype */
  for (int64_t o = 0; o < outer; o++)
    for (int64_t q = 0; q < inner; q++) {
      int64_t p = o * inner + q;
      double iv = ix->dtype == GG_DT_F32 ? (double)F32(ix)[p] : (double)I32(ix)[p];
      int64_t k = -1; /* float indices truncate, as a cast; out of range: all off */
      if (iv == iv && iv > -(double)depth - 1 && iv < (double)depth) {
        k = (int64_t)iv;
        if (k < 0) k += depth;
      }
      for (int64_t c = 0; c < depth; c++)
        I32(y)[(o * depth + c) * inner + q] = v[c == k];
    }
  return 0;
}

/* ------------------------------------------------------------ scatters */

static void scatter_put(gg_tval *y, int64_t p, const gg_tval *u, int64_t q, gg_sx_fn fn) {
  if (y->dtype == GG_DT_F32) {
    float *d = F32(y) + p, s = F32(u)[q];
    switch (fn) {
    case GG_SX_ADD: *d += s; break;
    case GG_SX_MUL: *d *= s; break;
    case GG_SX_MAX: *d = s > *d ? s : *d; break;
    case GG_SX_MIN: *d = s < *d ? s : *d; break;
    default: *d = s; break;
    }
    return;
  }
  int32_t *d = I32(y) + p, s = I32(u)[q];
  switch (fn) {
  case GG_SX_ADD: *d = (int32_t)((uint32_t)*d + (uint32_t)s); break;
  case GG_SX_MUL: *d = (int32_t)((uint32_t)*d * (uint32_t)s); break;
  case GG_SX_MAX: *d = s > *d ? s : *d; break;
  case GG_SX_MIN: *d = s < *d ? s : *d; break;
  default: *d = s; break;
  }
}

static int run_scatter_nd(const gg_node *n, gg_tval *vals) {
  const gg_tval *x = IN(0), *ix = IN(1), *up = IN(2);
  gg_tval *y = OUT(0);
  memcpy(y->data, x->data, (size_t)x->nelem * 4);
  int k = (int)ix->shape[ix->ndim - 1];
  int64_t xst[GG_MAX_DIMS], slice = 1, nt = k ? ix->nelem / k : 0;
  strides_of(x, xst);
  for (int d = k; d < x->ndim; d++)
    slice *= x->shape[d];
  for (int64_t t = 0; t < nt; t++) {
    int64_t off = 0;
    for (int d = 0; d < k; d++) {
      int64_t v = I32(ix)[t * k + d], dim = x->shape[d];
      if (v < 0) v += dim;
      if (v < 0 || v >= dim) return GG_ERANGE;
      off += v * xst[d];
    }
    for (int64_t s = 0; s < slice; s++)
      scatter_put(y, off + s, up, t * slice + s, (gg_sx_fn)n->a.fn);
  }
  return 0;
}

static int run_scatter_elements(const gg_node *n, gg_tval *vals) {
  const gg_tval *x = IN(0), *ix = IN(1), *up = IN(2);
  gg_tval *y = OUT(0);
  memcpy(y->data, x->data, (size_t)x->nelem * 4);
  int ax = 0;
  if (gg__norm_axis(n->a.axis, x->ndim, &ax)) return GG_EPARSE;
  int64_t xst[GG_MAX_DIMS], idx[GG_MAX_DIMS] = {0}, dim = x->shape[ax];
  strides_of(x, xst);
  for (int64_t i = 0; i < ix->nelem; i++) {
    int64_t k = I32(ix)[i];
    if (k < 0) k += dim;
    if (k < 0 || k >= dim) return GG_ERANGE;
    int64_t off = 0;
    for (int d = 0; d < x->ndim; d++)
      off += (d == ax ? k : idx[d]) * xst[d];
    scatter_put(y, off, up, i, (gg_sx_fn)n->a.fn);
    for (int d = ix->ndim - 1; d >= 0; d--) {
      if (++idx[d] < ix->shape[d]) break;
      idx[d] = 0;
    }
  }
  return 0;
}

/* ------------------------------------------------------------ shape rules */

/* Input and output counts each op takes: [min, max]. */
static void arity(gg_op op, int *in_lo, int *in_hi, int *out_lo, int *out_hi) {
  *out_lo = *out_hi = 1;
  switch (op) {
  case GG_OP_BINARY_X:
  case GG_OP_CUMSUM:
  case GG_OP_GATHER_ELEMENTS:
  case GG_OP_GATHER_ND: *in_lo = *in_hi = 2; return;
  case GG_OP_REDUCE_X:
  case GG_OP_TRILU: *in_lo = 1, *in_hi = 2; return;
  case GG_OP_TOPK: *in_lo = *in_hi = 2, *out_hi = 2; return;
  case GG_OP_ONE_HOT:
  case GG_OP_SCATTER_ND:
  case GG_OP_SCATTER_ELEMENTS: *in_lo = *in_hi = 3; return;
  case GG_OP_QUANTIZE:
  case GG_OP_DEQUANTIZE: *in_lo = 2, *in_hi = 3; return;
  default: *in_lo = *in_hi = 1; return;
  }
}

int gg__extra_infer(const gg_node *n, gg_tval *vals, char *err, size_t errlen) {
  char sa[96], sb[96];
  int64_t shp[GG_MAX_DIMS];
  int nd = 0, in_lo, in_hi, out_lo, out_hi, ax = 0;
#define BAD(...) gg_errf(err, errlen, GG_EPARSE, __VA_ARGS__)
#define NOTIMPL(...) gg_errf(err, errlen, GG_EUNSUPPORTED, __VA_ARGS__)
#define SHP(t) gg__shape_str((t)->shape, (t)->ndim, sa, sizeof sa)
#define SHP2(t) gg__shape_str((t)->shape, (t)->ndim, sb, sizeof sb)
  if (!GG_OP_IS_GROUP_X(n->op))
    return NOTIMPL("node '%s' (%s): not a group X op", n->name, n->src_op);
  arity(n->op, &in_lo, &in_hi, &out_lo, &out_hi);
  if (n->n_in < in_lo || n->n_in > in_hi || n->n_out < out_lo || n->n_out > out_hi)
    return BAD("node '%s' (%s): takes %d..%d inputs and %d..%d outputs, has %d and %d", n->name,
               n->src_op, in_lo, in_hi, out_lo, out_hi, n->n_in, n->n_out);
  for (int k = 0; k < n->n_in; k++)
    if (IN(k)->ndim < 0 || IN(k)->ndim > GG_MAX_DIMS ||
        (IN(k)->dtype != GG_DT_F32 && IN(k)->dtype != GG_DT_I32))
      return BAD("node '%s' (%s): input %d has no shape or an unknown type", n->name, n->src_op, k);
  const gg_tval *x = IN(0);
  switch (n->op) {
  case GG_OP_UNARY_X: {
    int fn = n->a.fn;
    if (fn < 0 || fn >= GG_UX_COUNT)
      return NOTIMPL("node '%s' (%s): function %d", n->name, n->src_op, fn);
    if (x->dtype != GG_DT_F32 && fn != GG_UX_SIGN)
      return BAD("node '%s' (%s): needs a float input, got int", n->name, n->src_op);
    if ((fn == GG_UX_CELU && n->a.alpha == 0.0f))
      return BAD("node '%s' (%s): alpha must not be 0", n->name, n->src_op);
    gg_dtype dt = fn == GG_UX_ISNAN || fn == GG_UX_ISINF ? GG_DT_I32 : x->dtype;
    return set_shape(OUT(0), dt, x->shape, x->ndim);
  }
  case GG_OP_BINARY_X: {
    const gg_tval *b = IN(1);
    int fn = n->a.fn;
    if (fn < 0 || fn >= GG_BX_COUNT)
      return NOTIMPL("node '%s' (%s): function %d", n->name, n->src_op, fn);
    if (x->dtype != b->dtype)
      return BAD("node '%s' (%s): operand types differ (%s and %s)", n->name, n->src_op,
                 dt_name(x->dtype), dt_name(b->dtype));
    if (fn == GG_BX_MOD && x->dtype == GG_DT_F32)
      return NOTIMPL("node '%s' (%s): float operands need fmod=1 (ONNX Mod)", n->name, n->src_op);
    if (fn >= GG_BX_AND && x->dtype != GG_DT_I32)
      return BAD("node '%s' (%s): needs bool operands, got float", n->name, n->src_op);
    if (bcast(x, b, shp, &nd))
      return BAD("node '%s' (%s): shapes %s and %s do not broadcast", n->name, n->src_op, SHP(x),
                 SHP2(b));
    gg_dtype dt = fn == GG_BX_MOD || fn == GG_BX_FMOD ? x->dtype : GG_DT_I32;
    return set_shape(OUT(0), dt, shp, nd);
  }
  case GG_OP_REDUCE_X: {
    int red[GG_MAX_DIMS], fn = n->a.fn;
    if (fn < 0 || fn >= GG_RX_COUNT)
      return NOTIMPL("node '%s' (%s): function %d", n->name, n->src_op, fn);
    if (x->dtype != GG_DT_F32 && (fn == GG_RX_LOG_SUM || fn == GG_RX_LOG_SUM_EXP))
      return BAD("node '%s' (%s): needs a float input, got int", n->name, n->src_op);
    if (n->n_in > 1) {
      const gg_tval *a = IN(1);
      if (!a->data && a->nelem)
        return NOTIMPL("node '%s' (%s): axes must be a constant", n->name, n->src_op);
      if (a->dtype != GG_DT_I32 || a->ndim > 1 || a->nelem > GG_MAX_DIMS)
        return BAD("node '%s' (%s): axes must be at most %d ints, got %s %s", n->name, n->src_op,
                   GG_MAX_DIMS, dt_name(a->dtype), SHP(a));
    }
    if (reduce_axes(n, vals, red))
      return BAD("node '%s' (%s): an axis is out of range for input %s", n->name, n->src_op,
                 SHP(x));
    for (int d = 0; d < x->ndim; d++) {
      if (red[d] && !n->a.keep_dims) continue;
      shp[nd++] = red[d] ? 1 : x->shape[d];
    }
    return set_shape(OUT(0), x->dtype, shp, nd);
  }
  case GG_OP_ARG_X:
  case GG_OP_HARDMAX: {
    if (n->op == GG_OP_HARDMAX && x->dtype != GG_DT_F32)
      return BAD("node '%s' (%s): needs a float input, got int", n->name, n->src_op);
    if (x->ndim == 0 && n->op == GG_OP_HARDMAX) return set_shape(OUT(0), GG_DT_F32, x->shape, 0);
    if (gg__norm_axis(n->a.axis, x->ndim, &ax))
      return BAD("node '%s' (%s): axis %d is out of range for input %s", n->name, n->src_op,
                 n->a.axis, SHP(x));
    if (n->op == GG_OP_HARDMAX) return set_shape(OUT(0), GG_DT_F32, x->shape, x->ndim);
    if (x->shape[ax] == 0)
      return BAD("node '%s' (%s): axis %d of %s is empty (no max or min to take)", n->name,
                 n->src_op, ax, SHP(x));
    for (int d = 0; d < x->ndim; d++)
      if (d != ax || n->a.keep_dims) shp[nd++] = d == ax ? 1 : x->shape[d];
    return set_shape(OUT(0), GG_DT_I32, shp, nd);
  }
  case GG_OP_CUMSUM:
    if (x->ndim < 1) return BAD("node '%s' (%s): needs at least one dim", n->name, n->src_op);
    if (IN(1)->dtype != GG_DT_I32 || IN(1)->nelem != 1 || IN(1)->ndim > 1)
      return BAD("node '%s' (%s): axis must be one int, got %s %s", n->name, n->src_op,
                 dt_name(IN(1)->dtype), SHP(IN(1)));
    return set_shape(OUT(0), x->dtype, x->shape, x->ndim);
  case GG_OP_GATHER_ELEMENTS:
  case GG_OP_SCATTER_ELEMENTS: {
    const gg_tval *ix = IN(1);
    if (ix->dtype != GG_DT_I32 || ix->ndim != x->ndim || x->ndim < 1)
      return BAD("node '%s' (%s): indices must be ints of the data's rank, got %s %s for %s",
                 n->name, n->src_op, dt_name(ix->dtype), SHP2(ix), SHP(x));
    if (gg__norm_axis(n->a.axis, x->ndim, &ax))
      return BAD("node '%s' (%s): axis %d is out of range for input %s", n->name, n->src_op,
                 n->a.axis, SHP(x));
    for (int d = 0; d < x->ndim; d++)
      if (d != ax && ix->shape[d] > x->shape[d])
        return BAD("node '%s' (%s): indices %s exceed the data %s on axis %d", n->name, n->src_op,
                   SHP2(ix), SHP(x), d);
    if (n->op == GG_OP_GATHER_ELEMENTS) return set_shape(OUT(0), x->dtype, ix->shape, ix->ndim);
    {
      const gg_tval *u = IN(2);
      int same = u->ndim == ix->ndim && u->dtype == x->dtype;
      for (int d = 0; same && d < u->ndim; d++)
        same = u->shape[d] == ix->shape[d];
      if (!same)
        return BAD("node '%s' (%s): updates %s %s must have the indices' shape %s and the "
                   "data's type %s",
                   n->name, n->src_op, dt_name(u->dtype), SHP(u), SHP2(ix), dt_name(x->dtype));
    }
    return set_shape(OUT(0), x->dtype, x->shape, x->ndim);
  }
  case GG_OP_GATHER_ND:
  case GG_OP_SCATTER_ND: {
    const gg_tval *ix = IN(1);
    int b = n->op == GG_OP_GATHER_ND ? n->a.axis : 0;
    if (ix->dtype != GG_DT_I32 || ix->ndim < 1)
      return BAD("node '%s' (%s): indices must be ints of rank >= 1, got %s %s", n->name, n->src_op,
                 dt_name(ix->dtype), SHP2(ix));
    int64_t k = ix->shape[ix->ndim - 1];
    if (b < 0 || b >= ix->ndim || b >= x->ndim || k < 1 || k > x->ndim - b)
      return BAD("node '%s' (%s): indices %s (batch_dims %d) do not index data %s", n->name,
                 n->src_op, SHP2(ix), b, SHP(x));
    for (int d = 0; d < b; d++)
      if (ix->shape[d] != x->shape[d])
        return BAD("node '%s' (%s): batch dim %d differs: indices %s, data %s", n->name, n->src_op,
                   d, SHP2(ix), SHP(x));
    for (int d = 0; d < ix->ndim - 1; d++)
      shp[nd++] = ix->shape[d];
    for (int d = b + (int)k; d < x->ndim; d++) {
      if (nd >= GG_MAX_DIMS)
        return NOTIMPL("node '%s' (%s): the result has more than %d dims", n->name, n->src_op,
                       GG_MAX_DIMS);
      shp[nd++] = x->shape[d];
    }
    if (n->op == GG_OP_GATHER_ND) return set_shape(OUT(0), x->dtype, shp, nd);
    const gg_tval *u = IN(2);
    int same = u->ndim == nd && u->dtype == x->dtype;
    for (int d = 0; same && d < nd; d++)
      same = u->shape[d] == shp[d];
    if (!same)
      return BAD("node '%s' (%s): updates %s %s must be %s of the data's type", n->name, n->src_op,
                 dt_name(u->dtype), SHP(u), gg__shape_str(shp, nd, sb, sizeof sb));
    return set_shape(OUT(0), x->dtype, x->shape, x->ndim);
  }
  case GG_OP_TRILU:
    if (x->ndim < 2)
      return BAD("node '%s' (%s): needs rank >= 2, got %s", n->name, n->src_op, SHP(x));
    if (n->n_in > 1 && (IN(1)->dtype != GG_DT_I32 || IN(1)->nelem != 1 || IN(1)->ndim > 1))
      return BAD("node '%s' (%s): k must be one int, got %s %s", n->name, n->src_op,
                 dt_name(IN(1)->dtype), SHP(IN(1)));
    return set_shape(OUT(0), x->dtype, x->shape, x->ndim);
  case GG_OP_LRN:
    if (x->dtype != GG_DT_F32 || x->ndim < 2 || n->a.size < 1)
      return BAD("node '%s' (%s): needs a float [N, C, ...] input and size >= 1, got %s %s, "
                 "size %d",
                 n->name, n->src_op, dt_name(x->dtype), SHP(x), n->a.size);
    return set_shape(OUT(0), GG_DT_F32, x->shape, x->ndim);
  case GG_OP_TOPK: {
    int64_t K = 0;
    if (x->ndim < 1 || gg__norm_axis(n->a.axis, x->ndim, &ax))
      return BAD("node '%s' (%s): axis %d is out of range for input %s", n->name, n->src_op,
                 n->a.axis, SHP(x));
    if (IN(1)->dtype != GG_DT_I32 || IN(1)->nelem != 1 || IN(1)->ndim > 1)
      return BAD("node '%s' (%s): K must be one int, got %s %s", n->name, n->src_op,
                 dt_name(IN(1)->dtype), SHP(IN(1)));
    if (scalar_i32(IN(1), &K))
      return NOTIMPL("node '%s' (%s): K must be known once the input shapes are (a constant "
                     "or computed from shapes)",
                     n->name, n->src_op);
    if (K < 0 || K > x->shape[ax])
      return BAD("node '%s' (%s): K %lld is outside [0, %lld] (axis %d of %s)", n->name, n->src_op,
                 (long long)K, (long long)x->shape[ax], ax, SHP(x));
    for (int d = 0; d < x->ndim; d++)
      shp[d] = d == ax ? K : x->shape[d];
    int rc = set_shape(OUT(0), x->dtype, shp, x->ndim);
    return rc || n->n_out < 2 ? rc : set_shape(OUT(1), GG_DT_I32, shp, x->ndim);
  }
  case GG_OP_ONE_HOT: {
    const gg_tval *dp = IN(1), *vv = IN(2);
    int64_t depth = 0;
    if (dp->nelem != 1 || dp->ndim > 1)
      return BAD("node '%s' (%s): depth must be one value, got %s", n->name, n->src_op, SHP(dp));
    if (!dp->data)
      return NOTIMPL("node '%s' (%s): depth must be known once the input shapes are", n->name,
                     n->src_op);
    if (scalar_i32(dp, &depth) || depth < 1)
      return BAD("node '%s' (%s): depth must be an integer >= 1, got %g", n->name, n->src_op,
                 dp->dtype == GG_DT_F32 ? (double)F32(dp)[0] : (double)I32(dp)[0]);
    if (vv->nelem != 2 || vv->ndim != 1)
      return BAD("node '%s' (%s): values must be [off, on], got %s", n->name, n->src_op, SHP(vv));
    if (x->ndim + 1 > GG_MAX_DIMS || gg__norm_axis(n->a.axis, x->ndim + 1, &ax))
      return BAD("node '%s' (%s): axis %d is out of range for the result of %s", n->name, n->src_op,
                 n->a.axis, SHP(x));
    for (int d = 0, s = 0; d <= x->ndim; d++)
      shp[d] = d == ax ? depth : x->shape[s++];
    return set_shape(OUT(0), vv->dtype, shp, x->ndim + 1);
  }
  case GG_OP_EYE_LIKE:
    if (x->ndim != 2)
      return BAD("node '%s' (%s): needs a 2-D input, got %s", n->name, n->src_op, SHP(x));
    if (n->a.to != GG_DT_F32 && n->a.to != GG_DT_I32)
      return NOTIMPL("node '%s' (%s): cannot make type %d", n->name, n->src_op, (int)n->a.to);
    return set_shape(OUT(0), n->a.to, x->shape, 2);
  case GG_OP_QUANTIZE:
  case GG_OP_DEQUANTIZE: {
    const gg_tval *s = IN(1);
    int64_t ch, inner;
    float lo, hi;
    int q = n->op == GG_OP_QUANTIZE;
    if (x->dtype != (q ? GG_DT_F32 : GG_DT_I32))
      return BAD("node '%s' (%s): needs %s input, got %s", n->name, n->src_op,
                 q ? "a float" : "an integer", dt_name(x->dtype));
    if (s->dtype != GG_DT_F32)
      return BAD("node '%s' (%s): the scale must be float, got int", n->name, n->src_op);
    if (gg__quant_axis(n, x, s, &ch, &inner))
      return BAD("node '%s' (%s): the scale %s is neither one value nor one per element of "
                 "axis %d of the input %s",
                 n->name, n->src_op, SHP(s), n->a.axis, SHP2(x));
    if (n->n_in > 2 && (IN(2)->dtype != GG_DT_I32 || (IN(2)->nelem != s->nelem &&
                                                      IN(2)->nelem != 1)))
      return BAD("node '%s' (%s): the zero point (%s %s) must be integers, one or as many as "
                 "the scale has",
                 n->name, n->src_op, dt_name(IN(2)->dtype), SHP(IN(2)));
    if (q && gg__quant_range(n->a.cast_kind, &lo, &hi))
      return NOTIMPL("node '%s' (%s): quantized type %d", n->name, n->src_op, n->a.cast_kind);
    return set_shape(OUT(0), q && !(n->a.flags & 4) ? GG_DT_I32 : GG_DT_F32, x->shape, x->ndim);
  }
  default: break;
  }
  return NOTIMPL("node '%s': op %s has no shape rule", n->name, n->src_op);
#undef BAD
#undef NOTIMPL
#undef SHP
#undef SHP2
}

/* ------------------------------------------------------------ dispatch */

int gg__extra_run(const gg_node *n, gg_tval *vals, const struct gg__kctx *ctx) {
  switch (n->op) {
  case GG_OP_UNARY_X: return run_elementwise(n, vals, ctx, 0);
  case GG_OP_BINARY_X: return run_elementwise(n, vals, ctx, 1);
  case GG_OP_REDUCE_X: return run_reduce(n, vals, ctx);
  case GG_OP_ARG_X:
  case GG_OP_HARDMAX: return run_arg(n, vals, ctx);
  case GG_OP_CUMSUM: return run_cumsum(n, vals);
  case GG_OP_GATHER_ELEMENTS: return run_gather_elements(n, vals);
  case GG_OP_GATHER_ND: return run_gather_nd(n, vals);
  case GG_OP_TRILU: return run_trilu(n, vals);
  case GG_OP_LRN: return run_lrn(n, vals);
  case GG_OP_TOPK: return run_topk(n, vals);
  case GG_OP_ONE_HOT: return run_one_hot(n, vals);
  case GG_OP_EYE_LIKE: return run_eye_like(n, vals);
  case GG_OP_SCATTER_ND: return run_scatter_nd(n, vals);
  case GG_OP_SCATTER_ELEMENTS: return run_scatter_elements(n, vals);
  case GG_OP_QUANTIZE:
  case GG_OP_DEQUANTIZE: return run_quant(n, vals, ctx);
  default: return GG_EUNSUPPORTED;
  }
}
