/* ONNX-era ops, group E (see the enum in src/engine/graph.h): elementwise
 * unary and binary ops with numpy broadcasting, comparisons, Where, Cast,
 * Clip, LogSoftmax, ReduceMax/Min/L2 and the three normalizations. Shape
 * rules (gg__elem_infer) and naive reference kernels (gg__elem_run), numerics
 * as ONNX and numpy define them. The heavy kernels split their work into
 * independent pieces run on ctx->pool; every output element is computed the
 * same way whatever the split, so threaded and serial results are identical. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/error.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define IN(k) (&vals[n->in[k]])
#define OUT(k) (&vals[n->out[k]])
#define F32(v) ((float *)(v)->data)
#define I32(v) ((int32_t *)(v)->data)

/* Elements per unit of parallel work (and the size below which a kernel
 * runs on the calling thread): large enough that scheduling is noise. */
#define TILE 16384

/* ------------------------------------------------------------ helpers */


/* Float -> int32 as Cast defines it: truncation toward zero, saturating at
 * the int32 range, NaN -> 0 (C leaves all three undefined). */
static inline int32_t sat_i32(double v) {
  if (v != v) return 0;
  if (v >= 2147483647.0) return INT32_MAX;
  if (v <= -2147483648.0) return INT32_MIN;
  return (int32_t)v;
}

uint16_t gg__float_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* NaN, quiet */
  return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16); /* nearest even; overflow -> inf */
}

/* y[i] = x[i] rounded to the nearest float16 value (ties to even), held in
 * float: bit for bit what a scalar float -> half -> float conversion gives
 * (checked over all 2^32 inputs against the one this replaced, NaN
 * payloads included), without branches so the loop vectorises:
 * normal halves drop 13 mantissa bits with round-to-nearest-even; from
 * 65520 up, inf; NaN stays NaN, quieted, its payload cut to 10 bits; below
 * 2^-14, halves are multiples of 2^-24, which adding and taking away 0.75
 * (whose ulp is 2^-24) rounds to. x and y may be the same array. */
static void round_f16_row(const float *x, float *y, int64_t len) {
  for (int64_t i = 0; i < len; i++) {
    uint32_t b, sb;
    memcpy(&b, &x[i], 4);
    uint32_t s = b & 0x80000000u, a = b & 0x7fffffffu;
    uint32_t n = (a + 0xfffu + ((a >> 13) & 1u)) & ~0x1fffu;
    uint32_t ov = 0u - (uint32_t)(a >= 0x477ff000u), nan = 0u - (uint32_t)(a > 0x7f800000u);
    uint32_t sm = 0u - (uint32_t)(a < 0x38800000u);
    n = (n & ~ov) | (0x7f800000u & ov);
    n = (n & ~nan) | (((a | 0x400000u) & ~0x1fffu) & nan);
    float af, sub;
    memcpy(&af, &a, 4);
    sub = (af + 0.75f) - 0.75f;
    memcpy(&sb, &sub, 4);
    uint32_t r = ((sb & sm) | (n & ~sm)) | s;
    memcpy(&y[i], &r, 4);
  }
}

/* Cast to FLOAT16 / BFLOAT16 held in float: y becomes exactly that type's
 * value (attrs.cast_kind; other kinds leave y as is). */
static void cast_round(float *y, int64_t len, int kind) {
  if (kind == GG_CAST_F16)
    round_f16_row(y, y, len);
  else if (kind == GG_CAST_BF16)
    for (int64_t i = 0; i < len; i++) {
      uint32_t b = (uint32_t)gg__float_to_bf16(y[i]) << 16;
      memcpy(&y[i], &b, 4);
    }
}

/* An int32 narrowed to the integer type of attrs.cast_kind as C converts
 * (modulo 2^bits), held in int32 again. */
static inline int32_t cast_int(int32_t v, int kind) {
  switch (kind) {
  case GG_CAST_U8: return (uint8_t)v;
  case GG_CAST_I8: return (int8_t)(uint8_t)v;
  case GG_CAST_U16: return (uint16_t)v;
  case GG_CAST_I16: return (int16_t)(uint16_t)v;
  case GG_CAST_BOOL: return v != 0;
  default: return v;
  }
}

static const char *dt_name(gg_dtype dt) {
  return dt == GG_DT_F32 ? "float" : dt == GG_DT_I32 ? "int" : "?";
}

/* numpy broadcasting of a and b into o; GG_EPARSE when they do not. */
static int bcast(const int64_t *a, int na, const int64_t *b, int nb, int64_t *o, int *no) {
  int nd = na > nb ? na : nb;
  for (int i = 0; i < nd; i++) {
    int ia = i - (nd - na), ib = i - (nd - nb);
    int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    if (da != db && da != 1 && db != 1) return GG_EPARSE;
    o[i] = da == 1 ? db : da;
  }
  *no = nd;
  return 0;
}

/* --------------------------------------------------- broadcast iterator */

/* Up to three operands read against one contiguous output. Output dims of
 * size 1 are dropped and neighbouring dims merged wherever every operand is
 * contiguous (or broadcast) across both, so the common cases (same shapes,
 * a scalar operand, a per-channel vector) become one or two long rows. */
#define MAXOP 3
typedef struct bcast_it {
  int nd, nop;
  int64_t shape[GG_MAX_DIMS];
  int64_t st[MAXOP][GG_MAX_DIMS]; /* element strides; 0 where broadcast */
  int64_t nelem;
} bcast_it;

static void bc_init(bcast_it *it, const gg_tval *y, const gg_tval *const *ops, int nop) {
  int nd = y->ndim;
  int64_t st[MAXOP][GG_MAX_DIMS];
  for (int k = 0; k < nop; k++) {
    int64_t s = 1;
    for (int d = nd - 1; d >= 0; d--) {
      int it_d = d - (nd - ops[k]->ndim);
      int64_t e = it_d >= 0 ? ops[k]->shape[it_d] : 1;
      st[k][d] = e == 1 ? 0 : s;
      s *= e;
    }
  }
  memset(it, 0, sizeof *it);
  it->nop = nop, it->nelem = y->nelem;
  for (int d = 0; d < nd; d++) {
    if (y->shape[d] == 1) continue;
    int m = it->nd - 1, merge = m >= 0;
    for (int k = 0; merge && k < nop; k++) merge = it->st[k][m] == st[k][d] * y->shape[d];
    if (merge) {
      it->shape[m] *= y->shape[d];
      for (int k = 0; k < nop; k++) it->st[k][m] = st[k][d];
      continue;
    }
    it->shape[it->nd] = y->shape[d];
    for (int k = 0; k < nop; k++) it->st[k][it->nd] = st[k][d];
    it->nd++;
  }
  if (it->nd == 0) it->nd = 1, it->shape[0] = 1; /* one element, strides 0 */
}

/* Calls row(job, yoff, off, len) over the output elements [start, end): yoff
 * is the output's element offset, off[k] operand k's, and the row runs len
 * elements along the innermost dim (operand strides it->st[k][nd-1]). */
typedef void (*bc_row_fn)(const void *job, int64_t yoff, const int64_t *off, int64_t len);

static void bc_range(const bcast_it *it, int64_t start, int64_t end, bc_row_fn row,
                     const void *job) {
  int nd = it->nd, last = nd - 1;
  int64_t idx[GG_MAX_DIMS], off[MAXOP] = {0}, r = start;
  for (int d = last; d >= 0; d--) {
    idx[d] = r % it->shape[d], r /= it->shape[d];
    for (int k = 0; k < it->nop; k++) off[k] += idx[d] * it->st[k][d];
  }
  for (int64_t pos = start; pos < end;) {
    int64_t len = it->shape[last] - idx[last];
    if (len > end - pos) len = end - pos;
    row(job, pos, off, len);
    pos += len;
    idx[last] += len;
    for (int k = 0; k < it->nop; k++) off[k] += len * it->st[k][last];
    for (int d = last; d > 0 && idx[d] == it->shape[d]; d--) {
      idx[d] = 0, idx[d - 1]++;
      for (int k = 0; k < it->nop; k++) off[k] += it->st[k][d - 1] - it->shape[d] * it->st[k][d];
    }
  }
}

/* --------------------------------------------------- elementwise kernels */

typedef struct ew_job {
  const gg_node *n;
  bcast_it it;
  void *y;
  const void *x[MAXOP];
  gg_dtype xdt[MAXOP], ydt;
} ew_job;

static inline float softplusf(float x) {
  /* log(1 + e^x) = max(x, 0) + log1p(e^-|x|): never overflows. */
  return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x));
}

static inline float clampf(float v, float lo, float hi) {
  /* NaN passes through (numpy.clip); lo > hi gives hi (ONNX Clip). */
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define SQRT1_2 0.7071067811865476f

static void unary_row(const void *jv, int64_t yo, const int64_t *off, int64_t len) {
  const ew_job *j = jv;
  const gg_node *n = j->n;
  if (j->xdt[0] == GG_DT_I32 || j->ydt == GG_DT_I32) {
    const int32_t *xi = (const int32_t *)j->x[0] + off[0];
    const float *xf = (const float *)j->x[0] + off[0];
    int32_t *yi = (int32_t *)j->y + yo;
    float *yf = (float *)j->y + yo;
    switch (n->op) {
    case GG_OP_NOT:
      for (int64_t i = 0; i < len; i++) yi[i] = xi[i] == 0;
      break;
    case GG_OP_NEG:
      for (int64_t i = 0; i < len; i++) yi[i] = (int32_t)(0u - (uint32_t)xi[i]);
      break;
    case GG_OP_CLIP: {
      int32_t lo = n->a.clip_min != n->a.clip_min ? INT32_MIN : sat_i32(ceil(n->a.clip_min));
      int32_t hi = n->a.clip_max != n->a.clip_max ? INT32_MAX : sat_i32(floor(n->a.clip_max));
      for (int64_t i = 0; i < len; i++) {
        int32_t v = xi[i] < lo ? lo : xi[i];
        yi[i] = v > hi ? hi : v;
      }
      break;
    }
    case GG_OP_CAST:
      if (j->ydt == GG_DT_F32) {
        for (int64_t i = 0; i < len; i++) yf[i] = (float)xi[i];
        cast_round(yf, len, n->a.cast_kind);
      } else if (n->a.cast_kind == GG_CAST_BOOL && j->xdt[0] == GG_DT_F32)
        for (int64_t i = 0; i < len; i++) yi[i] = xf[i] != 0; /* NaN -> 1 */
      else if (j->xdt[0] == GG_DT_F32)
        for (int64_t i = 0; i < len; i++) yi[i] = cast_int(sat_i32(xf[i]), n->a.cast_kind);
      else
        for (int64_t i = 0; i < len; i++) yi[i] = cast_int(xi[i], n->a.cast_kind);
      break;
    default: break;
    }
    return;
  }
  const float *x = (const float *)j->x[0] + off[0];
  float *y = (float *)j->y + yo;
  float al = n->a.alpha, be = n->a.beta;
  switch (n->op) {
  case GG_OP_SQRT: for (int64_t i = 0; i < len; i++) y[i] = sqrtf(x[i]); break;
  case GG_OP_EXP: for (int64_t i = 0; i < len; i++) y[i] = expf(x[i]); break;
  case GG_OP_LOG: for (int64_t i = 0; i < len; i++) y[i] = logf(x[i]); break;
  case GG_OP_NEG: for (int64_t i = 0; i < len; i++) y[i] = -x[i]; break;
  case GG_OP_RECIPROCAL: for (int64_t i = 0; i < len; i++) y[i] = 1.0f / x[i]; break;
  case GG_OP_ERF: for (int64_t i = 0; i < len; i++) y[i] = erff(x[i]); break;
  case GG_OP_TANH: for (int64_t i = 0; i < len; i++) y[i] = tanhf(x[i]); break;
  case GG_OP_SOFTPLUS: for (int64_t i = 0; i < len; i++) y[i] = softplusf(x[i]); break;
  case GG_OP_HARD_SIGMOID:
    for (int64_t i = 0; i < len; i++) y[i] = clampf(al * x[i] + be, 0.0f, 1.0f);
    break;
  case GG_OP_HARD_SWISH:
    for (int64_t i = 0; i < len; i++) y[i] = x[i] * clampf(x[i] / 6.0f + 0.5f, 0.0f, 1.0f);
    break;
  case GG_OP_GELU:
    if (n->a.approximate)
      for (int64_t i = 0; i < len; i++) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + tanhf(GELU_K * (v + 0.044715f * v * v * v)));
      }
    else
      for (int64_t i = 0; i < len; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * SQRT1_2));
    break;
  case GG_OP_CLIP:
    for (int64_t i = 0; i < len; i++) y[i] = clampf(x[i], n->a.clip_min, n->a.clip_max);
    break;
  case GG_OP_CAST:
    if (n->a.cast_kind == GG_CAST_F16) {
      round_f16_row(x, y, len);
      break;
    }
    memcpy(y, x, (size_t)len * 4);
    cast_round(y, len, n->a.cast_kind);
    break;
  default: break;
  }
}

/* One binary loop: contiguous operands get their own copy so it vectorises. */
#define BIN_LOOP(TA, TY, A, B, Y, expr)                                                            \
  do {                                                                                             \
    if (sa == 1 && sb == 1)                                                                        \
      for (int64_t i = 0; i < len; i++) {                                                          \
        TA a = (A)[i], b = (B)[i];                                                                 \
        (Y)[i] = (TY)(expr);                                                                       \
      }                                                                                            \
    else                                                                                           \
      for (int64_t i = 0; i < len; i++) {                                                          \
        TA a = (A)[i * sa], b = (B)[i * sb];                                                       \
        (Y)[i] = (TY)(expr);                                                                       \
      }                                                                                            \
  } while (0)

static inline int32_t idiv(int32_t a, int32_t b) {
  if (b == 0) return 0;
  if (b == -1) return (int32_t)(0u - (uint32_t)a); /* INT32_MIN / -1 wraps */
  return a / b;
}

static void binary_row(const void *jv, int64_t yo, const int64_t *off, int64_t len) {
  const ew_job *j = jv;
  int64_t sa = j->it.st[0][j->it.nd - 1], sb = j->it.st[1][j->it.nd - 1];
  const float *fa = (const float *)j->x[0] + off[0], *fb = (const float *)j->x[1] + off[1];
  const int32_t *ia = (const int32_t *)j->x[0] + off[0], *ib = (const int32_t *)j->x[1] + off[1];
  float *fy = (float *)j->y + yo;
  int32_t *iy = (int32_t *)j->y + yo;
  int isf = j->xdt[0] == GG_DT_F32;
  switch (j->n->op) {
  case GG_OP_DIV:
    if (isf) BIN_LOOP(float, float, fa, fb, fy, a / b);
    else BIN_LOOP(int32_t, int32_t, ia, ib, iy, idiv(a, b));
    break;
  case GG_OP_POW:
    /* The exponent may be int; an int base (an extension of the contract)
     * gives an int result as ONNX does: pow in double, then Cast's rule. */
    if (isf && j->xdt[1] == GG_DT_F32) BIN_LOOP(float, float, fa, fb, fy, powf(a, b));
    else if (isf) BIN_LOOP(float, float, fa, ib, fy, powf(a, (float)b));
    else if (j->xdt[1] == GG_DT_F32) BIN_LOOP(double, int32_t, ia, fb, iy, sat_i32(pow(a, b)));
    else BIN_LOOP(double, int32_t, ia, ib, iy, sat_i32(pow(a, b)));
    break;
  case GG_OP_EQUAL:
    if (isf) BIN_LOOP(float, int32_t, fa, fb, iy, a == b);
    else BIN_LOOP(int32_t, int32_t, ia, ib, iy, a == b);
    break;
  case GG_OP_GREATER:
    if (isf) BIN_LOOP(float, int32_t, fa, fb, iy, a > b);
    else BIN_LOOP(int32_t, int32_t, ia, ib, iy, a > b);
    break;
  case GG_OP_LESS:
    if (isf) BIN_LOOP(float, int32_t, fa, fb, iy, a < b);
    else BIN_LOOP(int32_t, int32_t, ia, ib, iy, a < b);
    break;
  default: break;
  }
}

static void where_row(const void *jv, int64_t yo, const int64_t *off, int64_t len) {
  const ew_job *j = jv;
  int last = j->it.nd - 1;
  int64_t sc = j->it.st[0][last], sa = j->it.st[1][last], sb = j->it.st[2][last];
  const int32_t *c = (const int32_t *)j->x[0] + off[0];
  const uint32_t *a = (const uint32_t *)j->x[1] + off[1], *b = (const uint32_t *)j->x[2] + off[2];
  uint32_t *y = (uint32_t *)j->y + yo; /* a copy of 4-byte values: any dtype */
  for (int64_t i = 0; i < len; i++) y[i] = c[i * sc] ? a[i * sa] : b[i * sb];
}

typedef struct ew_task {
  const ew_job *job;
  bc_row_fn row;
} ew_task;

static void ew_tile(void *arg, size_t u) {
  const ew_task *t = arg;
  int64_t s = (int64_t)u * TILE, e = s + TILE;
  if (e > t->job->it.nelem) e = t->job->it.nelem;
  bc_range(&t->job->it, s, e, t->row, t->job);
}

static int run_elementwise(const gg_node *n, gg_tval *vals, const gg__kctx *ctx, int nop,
                           bc_row_fn row) {
  gg_tval *y = OUT(0);
  if (y->nelem == 0) return 0;
  ew_job j = {n, {0}, y->data, {NULL}, {GG_DT_F32}, y->dtype};
  const gg_tval *ops[MAXOP];
  for (int k = 0; k < nop; k++) ops[k] = IN(k), j.x[k] = IN(k)->data, j.xdt[k] = IN(k)->dtype;
  bc_init(&j.it, y, ops, nop);
  ew_task t = {&j, row};
  gg__par1d(y->nelem > TILE ? ctx : NULL, ew_tile, &t, (size_t)((y->nelem + TILE - 1) / TILE));
  return 0;
}

/* ------------------------------------------------------------ LogSoftmax */

typedef struct rows_job {
  const gg_node *n;
  gg_tval *vals;
  int64_t rows, inner, rows_per_unit;
} rows_job;

static void log_softmax_unit(void *arg, size_t u) {
  const rows_job *j = arg;
  const gg_node *n = j->n;
  gg_tval *vals = j->vals;
  int64_t r0 = (int64_t)u * j->rows_per_unit, r1 = r0 + j->rows_per_unit, m = j->inner;
  if (r1 > j->rows) r1 = j->rows;
  for (int64_t r = r0; r < r1; r++) {
    const float *x = F32(IN(0)) + r * m;
    float *y = F32(OUT(0)) + r * m;
    float mx = -INFINITY;
    for (int64_t i = 0; i < m; i++) mx = x[i] > mx || x[i] != x[i] ? x[i] : mx;
    double s = 0;
    for (int64_t i = 0; i < m; i++) s += exp((double)x[i] - mx);
    float lse = (float)log(s);
    for (int64_t i = 0; i < m; i++) y[i] = (x[i] - mx) - lse;
  }
}

static int64_t rows_per_unit(int64_t rows, int64_t inner) {
  int64_t k = inner >= TILE ? 1 : TILE / (inner ? inner : 1);
  return k < 1 ? 1 : (k > rows ? (rows ? rows : 1) : k);
}

static int run_log_softmax(const gg_node *n, gg_tval *vals, const gg__kctx *ctx) {
  const gg_tval *x = IN(0);
  int64_t inner = x->shape[x->ndim - 1];
  if (x->nelem == 0) return 0;
  rows_job j = {n, vals, x->nelem / inner, inner, 0};
  j.rows_per_unit = rows_per_unit(j.rows, inner);
  gg__par1d(ctx, log_softmax_unit, &j, (size_t)((j.rows + j.rows_per_unit - 1) / j.rows_per_unit));
  return 0;
}

/* ------------------------------------------------------------ reductions */

/* Which axes of x a Reduce* node reduces: its const axes input, all axes when
 * it has none or it is empty. Returns GG_EPARSE for an axis out of range. */
static int reduce_axes(const gg_node *n, const gg_tval *vals, int *red) {
  const gg_tval *x = IN(0);
  memset(red, 0, sizeof(int) * GG_MAX_DIMS);
  if (n->n_in < 2 || IN(1)->nelem == 0) {
    for (int d = 0; d < x->ndim; d++) red[d] = 1;
    return 0;
  }
  for (int64_t i = 0; i < IN(1)->nelem; i++) {
    int ax = 0;
    if (gg__norm_axis(I32(IN(1))[i], x->ndim, &ax)) return GG_EPARSE;
    red[ax] = 1;
  }
  return 0;
}

typedef struct red_job {
  const gg_node *n;
  const void *x;
  void *y;
  int isf;
  int nk, nr;                          /* kept and reduced dims */
  int64_t kshape[GG_MAX_DIMS], kst[GG_MAX_DIMS];
  int64_t rshape[GG_MAX_DIMS], rst[GG_MAX_DIMS];
  int64_t ny, rcount, per_unit;
} red_job;

static void reduce_unit(void *arg, size_t u) {
  const red_job *j = arg;
  gg_op op = j->n->op;
  int64_t o0 = (int64_t)u * j->per_unit, o1 = o0 + j->per_unit;
  if (o1 > j->ny) o1 = j->ny;
  for (int64_t o = o0; o < o1; o++) {
    int64_t base = 0, r = o;
    for (int d = j->nk - 1; d >= 0; d--) base += (r % j->kshape[d]) * j->kst[d], r /= j->kshape[d];
    int64_t idx[GG_MAX_DIMS] = {0}, off = base;
    double acc = op == GG_OP_REDUCE_MAX ? -INFINITY : op == GG_OP_REDUCE_MIN ? INFINITY : 0.0;
    int32_t iacc = op == GG_OP_REDUCE_MAX ? INT32_MIN : INT32_MAX;
    for (int64_t c = 0; c < j->rcount; c++) {
      if (j->isf) {
        double v = ((const float *)j->x)[off];
        if (op == GG_OP_REDUCE_L2) acc += v * v;
        else if (v != v || (op == GG_OP_REDUCE_MAX ? v > acc : v < acc)) acc = v;
        if (acc != acc && op != GG_OP_REDUCE_L2) break; /* NaN propagates (numpy) */
      } else {
        int32_t v = ((const int32_t *)j->x)[off];
        iacc = op == GG_OP_REDUCE_MAX ? (v > iacc ? v : iacc) : (v < iacc ? v : iacc);
      }
      for (int d = j->nr - 1; d >= 0; d--) {
        off += j->rst[d];
        if (++idx[d] < j->rshape[d]) break;
        off -= j->rshape[d] * j->rst[d], idx[d] = 0;
      }
    }
    if (!j->isf) ((int32_t *)j->y)[o] = iacc;
    else ((float *)j->y)[o] = (float)(op == GG_OP_REDUCE_L2 ? sqrt(acc) : acc);
  }
}

/* ReduceMin / ReduceMax of a whole float tensor (DynamicQuantizeLinear's
 * range): chunks on the pool, each a loop the compiler vectorises, NaN
 * tracked apart (it wins, as in reduce_unit). */
enum { MM_PARTS = 64 };
typedef struct mm_job {
  const float *x;
  int64_t n, chunk;
  int max;
  float part[MM_PARTS];
  int nan[MM_PARTS];
} mm_job;

/* Eight running results side by side, folded at the end: the loop body is
 * one select per lane, which gcc vectorises. A NaN, once in a lane, stays
 * (no comparison with it is true, and the select takes it). */
#define MM_LANES 8
static void minmax_chunk(void *arg, size_t u) {
  mm_job *j = arg;
  int64_t s = (int64_t)u * j->chunk, e = s + j->chunk > j->n ? j->n : s + j->chunk, i = s;
  float m[MM_LANES];
  const float *x = j->x;
  for (int l = 0; l < MM_LANES; l++)
    m[l] = j->max ? -INFINITY : INFINITY;
  if (j->max)
    for (; i + MM_LANES <= e; i += MM_LANES)
      for (int l = 0; l < MM_LANES; l++)
        m[l] = x[i + l] > m[l] || x[i + l] != x[i + l] ? x[i + l] : m[l];
  else
    for (; i + MM_LANES <= e; i += MM_LANES)
      for (int l = 0; l < MM_LANES; l++)
        m[l] = x[i + l] < m[l] || x[i + l] != x[i + l] ? x[i + l] : m[l];
  for (; i < e; i++)
    m[0] = (j->max ? x[i] > m[0] : x[i] < m[0]) || x[i] != x[i] ? x[i] : m[0];
  float r = m[0];
  int nan = 0;
  for (int l = 0; l < MM_LANES; l++) {
    r = j->max ? (m[l] > r ? m[l] : r) : (m[l] < r ? m[l] : r);
    nan |= m[l] != m[l];
  }
  j->part[u] = r, j->nan[u] = nan;
}
#undef MM_LANES

static void reduce_all_minmax(const gg_node *n, const gg_tval *x, float *y, const gg__kctx *ctx) {
  mm_job j;
  j.x = x->data, j.n = x->nelem, j.max = n->op == GG_OP_REDUCE_MAX;
  j.chunk = (x->nelem + MM_PARTS - 1) / MM_PARTS;
  if (j.chunk < 65536) j.chunk = 65536;
  size_t parts = (size_t)((x->nelem + j.chunk - 1) / j.chunk);
  gg__par1d(ctx, minmax_chunk, &j, parts);
  float m = j.max ? -INFINITY : INFINITY;
  for (size_t u = 0; u < parts; u++) {
    if (j.nan[u]) {
      *y = NAN;
      return;
    }
    m = j.max ? (j.part[u] > m ? j.part[u] : m) : (j.part[u] < m ? j.part[u] : m);
  }
  *y = m;
}

static int run_reduce(const gg_node *n, gg_tval *vals, const gg__kctx *ctx) {
  const gg_tval *x = IN(0);
  gg_tval *y = OUT(0);
  int red[GG_MAX_DIMS];
  if (reduce_axes(n, vals, red)) return GG_EPARSE;
  if (y->nelem == 0) return 0;
  if (y->nelem == 1 && x->nelem > 0 && x->dtype == GG_DT_F32 &&
      (n->op == GG_OP_REDUCE_MIN || n->op == GG_OP_REDUCE_MAX)) {
    reduce_all_minmax(n, x, y->data, ctx);
    return 0;
  }
  red_job j = {n, x->data, y->data, x->dtype == GG_DT_F32, 0, 0, {0}, {0}, {0}, {0}, y->nelem, 1, 1};
  int64_t s = 1;
  int64_t st[GG_MAX_DIMS];
  for (int d = x->ndim - 1; d >= 0; d--) st[d] = s, s *= x->shape[d];
  for (int d = 0; d < x->ndim; d++) {
    if (red[d]) j.rshape[j.nr] = x->shape[d], j.rst[j.nr++] = st[d], j.rcount *= x->shape[d];
    else j.kshape[j.nk] = x->shape[d], j.kst[j.nk++] = st[d];
  }
  j.per_unit = rows_per_unit(j.ny, j.rcount);
  gg__par1d(ctx, reduce_unit, &j, (size_t)((j.ny + j.per_unit - 1) / j.per_unit));
  return 0;
}

/* ------------------------------------------------------------ normalization */

/* mean and 1/sqrt(var + eps) of m floats at stride 1: two passes in double,
 * so a large mean does not eat the variance. */
static void moments(const float *x, int64_t m, double eps, double *mean, double *inv) {
  double s = 0, q = 0;
  for (int64_t i = 0; i < m; i++) s += x[i];
  double mu = m ? s / (double)m : 0.0;
  for (int64_t i = 0; i < m; i++) q += ((double)x[i] - mu) * ((double)x[i] - mu);
  *mean = mu;
  *inv = 1.0 / sqrt((m ? q / (double)m : 0.0) + eps);
}

typedef struct ln_job {
  const float *x, *scale, *bias;
  float *y, *mean_out, *inv_out;
  int64_t rows, m;
  double eps;
  /* scale / bias against the normalized dims: index = sum (j_d) * st_d */
  int nd;
  int64_t shape[GG_MAX_DIMS], sst[GG_MAX_DIMS], bst[GG_MAX_DIMS];
  int sfull, bfull; /* nelem == m: index j itself */
} ln_job;

static void layer_norm_row(void *arg, size_t r) {
  const ln_job *j = arg;
  const float *x = j->x + (int64_t)r * j->m;
  float *y = j->y + (int64_t)r * j->m;
  double mu, inv;
  moments(x, j->m, j->eps, &mu, &inv);
  if (j->mean_out) j->mean_out[r] = (float)mu;
  if (j->inv_out) j->inv_out[r] = (float)inv;
  int64_t idx[GG_MAX_DIMS] = {0}, so = 0, bo = 0;
  for (int64_t i = 0; i < j->m; i++) {
    float v = (float)(((double)x[i] - mu) * inv);
    v *= j->scale[j->sfull ? i : so];
    if (j->bias) v += j->bias[j->bfull ? i : bo];
    y[i] = v;
    for (int d = j->nd - 1; d >= 0; d--) {
      so += j->sst[d], bo += j->bst[d];
      if (++idx[d] < j->shape[d]) break;
      so -= j->shape[d] * j->sst[d], bo -= j->shape[d] * j->bst[d], idx[d] = 0;
    }
  }
}

/* Strides of t (aligned to the trailing dims) over the normalized dims. */
static void trailing_strides(const gg_tval *t, int nd, int64_t *st) {
  int64_t s = 1;
  for (int d = nd - 1; d >= 0; d--) {
    int it = d - (nd - t->ndim);
    int64_t e = it >= 0 ? t->shape[it] : 1;
    st[d] = e == 1 ? 0 : s;
    s *= e;
  }
}

static int run_layer_norm(const gg_node *n, gg_tval *vals, const gg__kctx *ctx) {
  const gg_tval *x = IN(0);
  int ax = n->a.axis;
  ln_job j = {F32(x), F32(IN(1)), n->n_in > 2 ? F32(IN(2)) : NULL, F32(OUT(0)),
              n->n_out > 1 ? F32(OUT(1)) : NULL, n->n_out > 2 ? F32(OUT(2)) : NULL,
              1, 1, n->a.epsilon, 0, {0}, {0}, {0}, 0, 0};
  for (int d = 0; d < ax; d++) j.rows *= x->shape[d];
  j.nd = x->ndim - ax;
  for (int d = ax; d < x->ndim; d++) j.m *= x->shape[d], j.shape[d - ax] = x->shape[d];
  if (x->nelem == 0) { /* only Mean / InvStdDev of empty rows may have values */
    for (int64_t r = 0; r < j.rows; r++) {
      if (j.mean_out) j.mean_out[r] = 0.0f;
      if (j.inv_out) j.inv_out[r] = (float)(1.0 / sqrt(j.eps));
    }
    return 0;
  }
  trailing_strides(IN(1), j.nd, j.sst);
  j.sfull = IN(1)->nelem == j.m;
  if (j.bias) {
    trailing_strides(IN(2), j.nd, j.bst);
    j.bfull = IN(2)->nelem == j.m;
  }
  gg__par1d(x->nelem > TILE ? ctx : NULL, layer_norm_row, &j, (size_t)j.rows);
  return 0;
}

typedef struct gn_job {
  const float *x, *scale, *bias;
  float *y;
  int64_t C, spatial, groups;
  double eps;
} gn_job;

/* One (n, group) of GroupNormalization; InstanceNormalization is the case
 * groups == C. The group's channels are contiguous in NC... layout. */
static void group_norm_unit(void *arg, size_t u) {
  const gn_job *j = arg;
  int64_t cpg = j->C / j->groups, b = (int64_t)u / j->groups, g = (int64_t)u % j->groups;
  int64_t m = cpg * j->spatial, base = (b * j->C + g * cpg) * j->spatial;
  double mu, inv;
  moments(j->x + base, m, j->eps, &mu, &inv);
  for (int64_t c = 0; c < cpg; c++) {
    int64_t ch = g * cpg + c;
    const float *x = j->x + base + c * j->spatial;
    float *y = j->y + base + c * j->spatial;
    float sc = j->scale[ch], bi = j->bias[ch];
    for (int64_t i = 0; i < j->spatial; i++) y[i] = (float)(((double)x[i] - mu) * inv) * sc + bi;
  }
}

static int run_group_norm(const gg_node *n, gg_tval *vals, const gg__kctx *ctx) {
  const gg_tval *x = IN(0);
  gn_job j = {F32(x), F32(IN(1)), F32(IN(2)), F32(OUT(0)), x->shape[1], 1,
              n->op == GG_OP_INSTANCE_NORM ? x->shape[1] : n->a.groups, n->a.epsilon};
  for (int d = 2; d < x->ndim; d++) j.spatial *= x->shape[d];
  if (x->nelem == 0) return 0;
  gg__par1d(x->nelem > TILE ? ctx : NULL, group_norm_unit, &j, (size_t)(x->shape[0] * j.groups));
  return 0;
}

/* ------------------------------------------------------------ shape rules */

static int set_shape(gg_tval *o, gg_dtype dt, const int64_t *shape, int ndim) {
  o->dtype = dt;
  o->ndim = ndim;
  for (int i = 0; i < ndim; i++) o->shape[i] = shape[i];
  return gg__shape_nelem(o->shape, ndim, &o->nelem);
}

/* The unary ops that take a float input and give a float output of its
 * shape (the rest of gg__elem_is_unary's ops also take ints). */
static int is_float_unary(gg_op op) {
  switch (op) {
  case GG_OP_SQRT:
  case GG_OP_EXP:
  case GG_OP_LOG:
  case GG_OP_RECIPROCAL:
  case GG_OP_ERF:
  case GG_OP_TANH:
  case GG_OP_SOFTPLUS:
  case GG_OP_HARD_SIGMOID:
  case GG_OP_HARD_SWISH:
  case GG_OP_GELU: return 1;
  default: return 0;
  }
}

int gg__elem_is_unary(gg_op op) {
  return op == GG_OP_NOT || op == GG_OP_NEG || op == GG_OP_CLIP || op == GG_OP_CAST ||
         is_float_unary(op);
}

/* Input and output counts each op takes: [min, max]. */
static void arity(gg_op op, int *in_lo, int *in_hi, int *out_hi) {
  *out_hi = 1;
  switch (op) {
  case GG_OP_DIV:
  case GG_OP_POW:
  case GG_OP_EQUAL:
  case GG_OP_GREATER:
  case GG_OP_LESS: *in_lo = *in_hi = 2; return;
  case GG_OP_WHERE:
  case GG_OP_INSTANCE_NORM:
  case GG_OP_GROUP_NORM: *in_lo = *in_hi = 3; return;
  case GG_OP_REDUCE_MAX:
  case GG_OP_REDUCE_MIN:
  case GG_OP_REDUCE_L2: *in_lo = 1, *in_hi = 2; return;
  case GG_OP_LAYER_NORM: *in_lo = 2, *in_hi = 3, *out_hi = 3; return;
  default: *in_lo = *in_hi = 1; return;
  }
}

int gg__elem_infer(const gg_node *n, gg_tval *vals, char *err, size_t errlen) {
  char sa[96], sb[96], sc[96];
  int64_t shp[GG_MAX_DIMS];
  int nd = 0, in_lo, in_hi, out_hi;
#define BAD(...) gg_errf(err, errlen, GG_EPARSE, __VA_ARGS__)
#define SHP(t) gg__shape_str((t)->shape, (t)->ndim, sa, sizeof sa)
  if (!GG_OP_IS_GROUP_E(n->op))
    return gg_errf(err, errlen, GG_EUNSUPPORTED, "node '%s' (%s): not a group E op", n->name,
                   n->src_op);
  arity(n->op, &in_lo, &in_hi, &out_hi);
  if (n->n_in < in_lo || n->n_in > in_hi || n->n_out < 1 || n->n_out > out_hi)
    return BAD("node '%s' (%s): takes %d..%d inputs and 1..%d outputs, has %d and %d", n->name,
               n->src_op, in_lo, in_hi, out_hi, n->n_in, n->n_out);
  for (int k = 0; k < n->n_in; k++)
    if (IN(k)->ndim < 0 || IN(k)->ndim > GG_MAX_DIMS ||
        (IN(k)->dtype != GG_DT_F32 && IN(k)->dtype != GG_DT_I32))
      return BAD("node '%s' (%s): input %d has no shape or an unknown type", n->name, n->src_op,
                 k);
  const gg_tval *x = IN(0);
  if (n->op == GG_OP_LOG_SOFTMAX || is_float_unary(n->op)) {
    if (n->op == GG_OP_LOG_SOFTMAX && x->ndim < 1)
      return BAD("node '%s' (%s): needs at least one dim, got a scalar", n->name, n->src_op);
    if (x->dtype != GG_DT_F32)
      return BAD("node '%s' (%s): needs a float input, got int", n->name, n->src_op);
    return set_shape(OUT(0), GG_DT_F32, x->shape, x->ndim);
  }
  switch (n->op) {
  case GG_OP_DIV:
  case GG_OP_POW:
  case GG_OP_EQUAL:
  case GG_OP_GREATER:
  case GG_OP_LESS: {
    const gg_tval *b = IN(1);
    if (n->op != GG_OP_POW && x->dtype != b->dtype)
      return BAD("node '%s' (%s): operand types differ (%s and %s)", n->name, n->src_op,
                 dt_name(x->dtype), dt_name(b->dtype));
    if (bcast(x->shape, x->ndim, b->shape, b->ndim, shp, &nd))
      return BAD("node '%s' (%s): shapes %s and %s do not broadcast", n->name, n->src_op, SHP(x),
                 gg__shape_str(b->shape, b->ndim, sb, sizeof sb));
    gg_dtype dt = n->op == GG_OP_DIV || n->op == GG_OP_POW ? x->dtype : GG_DT_I32;
    return set_shape(OUT(0), dt, shp, nd);
  }
  case GG_OP_WHERE: {
    const gg_tval *a = IN(1), *b = IN(2);
    int64_t t[GG_MAX_DIMS];
    int tn = 0;
    if (x->dtype != GG_DT_I32)
      return BAD("node '%s' (%s): the condition must be a bool/int tensor, got float", n->name,
                 n->src_op);
    if (a->dtype != b->dtype)
      return BAD("node '%s' (%s): the two value inputs differ in type (%s and %s)", n->name,
                 n->src_op, dt_name(a->dtype), dt_name(b->dtype));
    if (bcast(x->shape, x->ndim, a->shape, a->ndim, t, &tn) || bcast(t, tn, b->shape, b->ndim, shp, &nd))
      return BAD("node '%s' (%s): shapes %s, %s and %s do not broadcast", n->name, n->src_op,
                 SHP(x), gg__shape_str(a->shape, a->ndim, sb, sizeof sb),
                 gg__shape_str(b->shape, b->ndim, sc, sizeof sc));
    return set_shape(OUT(0), a->dtype, shp, nd);
  }
  case GG_OP_NOT:
    if (x->dtype != GG_DT_I32)
      return BAD("node '%s' (%s): needs a bool/int input, got float", n->name, n->src_op);
    return set_shape(OUT(0), GG_DT_I32, x->shape, x->ndim);
  case GG_OP_NEG:
  case GG_OP_CLIP:
    return set_shape(OUT(0), x->dtype, x->shape, x->ndim);
  case GG_OP_CAST:
    if (n->a.to != GG_DT_F32 && n->a.to != GG_DT_I32)
      return gg_errf(err, errlen, GG_EUNSUPPORTED, "node '%s' (%s): cannot cast to type %d",
                     n->name, n->src_op, (int)n->a.to);
    if (n->a.cast_kind < GG_CAST_NONE || n->a.cast_kind > GG_CAST_BOOL ||
        (n->a.cast_kind != GG_CAST_NONE &&
         (n->a.cast_kind <= GG_CAST_BF16) != (n->a.to == GG_DT_F32)))
      return gg_errf(err, errlen, GG_EUNSUPPORTED, "node '%s' (%s): cannot cast to kind %d",
                     n->name, n->src_op, n->a.cast_kind);
    return set_shape(OUT(0), n->a.to, x->shape, x->ndim);
  case GG_OP_REDUCE_MAX:
  case GG_OP_REDUCE_MIN:
  case GG_OP_REDUCE_L2: {
    int red[GG_MAX_DIMS];
    if (n->op == GG_OP_REDUCE_L2 && x->dtype != GG_DT_F32)
      return BAD("node '%s' (%s): needs a float input, got int", n->name, n->src_op);
    if (n->n_in > 1) {
      const gg_tval *ax = IN(1);
      if (!ax->data && ax->nelem)
        return gg_errf(err, errlen, GG_EUNSUPPORTED, "node '%s' (%s): axes must be a constant",
                       n->name, n->src_op);
      if (ax->dtype != GG_DT_I32 || ax->ndim > 1 || ax->nelem > GG_MAX_DIMS)
        return BAD("node '%s' (%s): axes must be at most %d ints, got %s %s", n->name, n->src_op,
                   GG_MAX_DIMS, dt_name(ax->dtype), SHP(ax));
    }
    if (reduce_axes(n, vals, red))
      return BAD("node '%s' (%s): an axis is out of range for input %s", n->name, n->src_op, SHP(x));
    for (int d = 0; d < x->ndim; d++) {
      if (red[d] && !n->a.keep_dims) continue;
      shp[nd++] = red[d] ? 1 : x->shape[d];
    }
    return set_shape(OUT(0), x->dtype, shp, nd);
  }
  case GG_OP_LAYER_NORM: {
    int ax = n->a.axis;
    if (x->dtype != GG_DT_F32 || x->ndim < 1)
      return BAD("node '%s' (%s): needs a float input of rank >= 1, got %s %s", n->name,
                 n->src_op, dt_name(x->dtype), SHP(x));
    if (ax < 0 || ax >= x->ndim)
      return BAD("node '%s' (%s): axis %d is out of range for input %s", n->name, n->src_op, ax,
                 SHP(x));
    for (int k = 1; k < n->n_in; k++) {
      const gg_tval *p = IN(k);
      int ok = p->dtype == GG_DT_F32;
      for (int d = 0; ok && d < p->ndim; d++) {
        int xd = d - p->ndim + x->ndim; /* aligned to x's trailing dims */
        ok = p->shape[d] == 1 || (xd >= ax && p->shape[d] == x->shape[xd]);
      }
      if (!ok)
        return BAD("node '%s' (%s): %s %s %s does not broadcast to the normalized dims of %s "
                   "(from axis %d)",
                   n->name, n->src_op, k == 1 ? "scale" : "bias", dt_name(p->dtype),
                   gg__shape_str(p->shape, p->ndim, sb, sizeof sb), SHP(x), ax);
    }
    int rc = set_shape(OUT(0), GG_DT_F32, x->shape, x->ndim);
    /* ONNX's optional Mean and InvStdDev: x's dims before axis, then 1s. */
    for (int d = 0; d < x->ndim; d++) shp[d] = d < ax ? x->shape[d] : 1;
    for (int k = 1; !rc && k < n->n_out; k++) rc = set_shape(OUT(k), GG_DT_F32, shp, x->ndim);
    return rc;
  }
  case GG_OP_INSTANCE_NORM:
  case GG_OP_GROUP_NORM: {
    int minr = n->op == GG_OP_INSTANCE_NORM ? 3 : 2;
    if (x->dtype != GG_DT_F32 || x->ndim < minr)
      return BAD("node '%s' (%s): needs a float [N, C, ...] input of rank >= %d, got %s %s",
                 n->name, n->src_op, minr, dt_name(x->dtype), SHP(x));
    int64_t C = x->shape[1];
    for (int k = 1; k < 3; k++)
      if (IN(k)->dtype != GG_DT_F32 || IN(k)->nelem != C || IN(k)->ndim != 1)
        return BAD("node '%s' (%s): %s must be float [%lld] (the channels of %s), got %s %s",
                   n->name, n->src_op, k == 1 ? "scale" : "bias", (long long)C, SHP(x),
                   dt_name(IN(k)->dtype), gg__shape_str(IN(k)->shape, IN(k)->ndim, sb, sizeof sb));
    if (n->op == GG_OP_GROUP_NORM && (n->a.groups < 1 || C % n->a.groups))
      return BAD("node '%s' (%s): %d groups do not divide %lld channels", n->name, n->src_op,
                 n->a.groups, (long long)C);
    return set_shape(OUT(0), GG_DT_F32, x->shape, x->ndim);
  }
  default: break;
  }
  return gg_errf(err, errlen, GG_EUNSUPPORTED, "node '%s': op %s has no shape rule", n->name,
                 n->src_op);
#undef BAD
#undef SHP
}

/* ------------------------------------------------------------ dispatch */

int gg__elem_run(const gg_node *n, gg_tval *vals, const struct gg__kctx *ctx) {
  if (gg__elem_is_unary(n->op)) return run_elementwise(n, vals, ctx, 1, unary_row);
  switch (n->op) {
  case GG_OP_DIV:
  case GG_OP_POW:
  case GG_OP_EQUAL:
  case GG_OP_GREATER:
  case GG_OP_LESS: return run_elementwise(n, vals, ctx, 2, binary_row);
  case GG_OP_WHERE: return run_elementwise(n, vals, ctx, 3, where_row);
  case GG_OP_LOG_SOFTMAX: return run_log_softmax(n, vals, ctx);
  case GG_OP_REDUCE_MAX:
  case GG_OP_REDUCE_MIN:
  case GG_OP_REDUCE_L2: return run_reduce(n, vals, ctx);
  case GG_OP_LAYER_NORM: return run_layer_norm(n, vals, ctx);
  case GG_OP_INSTANCE_NORM:
  case GG_OP_GROUP_NORM: return run_group_norm(n, vals, ctx);
  default: return GG_EUNSUPPORTED;
  }
}
