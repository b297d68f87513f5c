/* Naive reference kernels for every op (NHWC, float32; int32 for the shape
 * arithmetic that constant folding evaluates; shapes come from shape.c). These
 * are the correctness oracle for faster backends, threaded over rows with
 * pthreadpool where that is cheap. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/error.h"

#ifdef GG_HAVE_PTHREADPOOL
#include <pthreadpool.h>
#endif

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IN(k) (&vals[n->in[k]])
#define OUT(k) (&vals[n->out[k]])
#define F32(v) ((float *)(v)->data)
#define I32(v) ((int32_t *)(v)->data)

/* ------------------------------------------------------------ kernels */

static inline float apply_act(float v, gg_act act, float alpha, float pa) {
  switch (act) {
  case GG_ACT_RELU: return v > 0 ? v : 0;
  case GG_ACT_RELU6: return v < 0 ? 0 : (v > 6 ? 6 : v);
  case GG_ACT_LEAKY: return v > 0 ? v : v * alpha;
  case GG_ACT_PRELU: return v > 0 ? v : v * pa;
  default: return v;
  }
}

typedef struct conv_job {
  const float *x, *w, *bias, *prelu;
  float *y;
  int64_t H, W, CI, OH, OW, CO, KH, KW, groups, prelu_n;
  int sh, sw, dh, dw, pt, pl;
  gg_act act;
  float alpha;
  int depthwise;
  int64_t mult;
} conv_job;

static void conv_row(void *arg, size_t row) {
  const conv_job *j = arg;
  int64_t b = (int64_t)row / j->OH, oy = (int64_t)row % j->OH;
  int64_t cig = j->CI / j->groups, cog = j->CO / j->groups;
  for (int64_t ox = 0; ox < j->OW; ox++) {
    float *restrict y = j->y + ((b * j->OH + oy) * j->OW + ox) * j->CO;
    for (int64_t c = 0; c < j->CO; c++) y[c] = j->bias ? j->bias[c] : 0.0f;
    for (int64_t ky = 0; ky < j->KH; ky++) {
      int64_t iy = oy * j->sh - j->pt + ky * j->dh;
      if (iy < 0 || iy >= j->H) continue;
      for (int64_t kx = 0; kx < j->KW; kx++) {
        int64_t ix = ox * j->sw - j->pl + kx * j->dw;
        if (ix < 0 || ix >= j->W) continue;
        const float *restrict xin = j->x + ((b * j->H + iy) * j->W + ix) * j->CI;
        if (j->depthwise) {
          const float *restrict w = j->w + (ky * j->KW + kx) * j->CI * j->mult;
          if (j->mult == 1) {
            for (int64_t c = 0; c < j->CI; c++) y[c] += xin[c] * w[c];
          } else {
            for (int64_t c = 0; c < j->CI; c++)
              for (int64_t m = 0; m < j->mult; m++) y[c * j->mult + m] += xin[c] * w[c * j->mult + m];
          }
        } else {
          for (int64_t g = 0; g < j->groups; g++) {
            for (int64_t ci = 0; ci < cig; ci++) {
              float xv = xin[g * cig + ci];
              const float *restrict w = j->w + ((ky * j->KW + kx) * cig + ci) * j->CO + g * cog;
              float *restrict yy = y + g * cog;
              for (int64_t c = 0; c < cog; c++) yy[c] += xv * w[c];
            }
          }
        }
      }
    }
    if (j->act != GG_ACT_NONE)
      for (int64_t c = 0; c < j->CO; c++)
        y[c] = apply_act(y[c], j->act, j->alpha, j->prelu ? j->prelu[j->prelu_n == 1 ? 0 : c] : 0);
  }
}

void gg__par1d(const gg__kctx *ctx, void (*fn)(void *, size_t), void *arg, size_t range) {
#ifdef GG_HAVE_PTHREADPOOL
  if (ctx && ctx->pool && range > 1) {
    pthreadpool_parallelize_1d(ctx->pool, (pthreadpool_task_1d_t)fn, arg, range, 0);
    return;
  }
#else
  (void)ctx;
#endif
  for (size_t i = 0; i < range; i++) fn(arg, i);
}

static int run_conv(const gg_node *n, gg_tval *vals, const gg__kctx *ctx) {
  const gg_tval *x = IN(0), *w = IN(1);
  gg_tval *y = OUT(0);
  conv_job j = {0};
  j.x = F32(x), j.w = F32(w), j.y = F32(y);
  j.bias = n->a.has_bias ? F32(IN(2)) : NULL;
  if (n->a.act == GG_ACT_PRELU) {
    j.prelu = F32(IN(2 + n->a.has_bias));
    j.prelu_n = IN(2 + n->a.has_bias)->nelem;
  }
  j.H = x->shape[1], j.W = x->shape[2], j.CI = x->shape[3];
  j.OH = y->shape[1], j.OW = y->shape[2], j.CO = y->shape[3];
  j.KH = w->shape[0], j.KW = w->shape[1];
  j.sh = n->a.strides[0], j.sw = n->a.strides[1], j.dh = n->a.dilations[0], j.dw = n->a.dilations[1];
  j.act = n->a.act, j.alpha = n->a.alpha;
  j.depthwise = n->op == GG_OP_DEPTHWISE;
  j.mult = j.depthwise ? w->shape[3] : 1;
  j.groups = j.depthwise ? 1 : j.CI / w->shape[2];
  int64_t o;
  gg__window(j.H, (int)j.KH, j.sh, j.dh, n->a.padding, n->a.pads[0], n->a.pads[1], &o, &j.pt);
  gg__window(j.W, (int)j.KW, j.sw, j.dw, n->a.padding, n->a.pads[2], n->a.pads[3], &o, &j.pl);
  gg__par1d(ctx, conv_row, &j, (size_t)(x->shape[0] * j.OH));
  return 0;
}

typedef struct pool_job {
  const float *x;
  float *y;
  int64_t H, W, C, OH, OW;
  int kh, kw, sh, sw, pt, pl;
  int dh, dw; /* dilations (ONNX MaxPool) */
} pool_job;

static void pool_row(void *arg, size_t row) {
  const pool_job *j = arg;
  int64_t b = (int64_t)row / j->OH, oy = (int64_t)row % j->OH;
  for (int64_t ox = 0; ox < j->OW; ox++) {
    float *restrict y = j->y + ((b * j->OH + oy) * j->OW + ox) * j->C;
    for (int64_t c = 0; c < j->C; c++) y[c] = -INFINITY;
    for (int ky = 0; ky < j->kh; ky++) {
      int64_t iy = oy * j->sh - j->pt + (int64_t)ky * j->dh;
      if (iy < 0 || iy >= j->H) continue;
      for (int kx = 0; kx < j->kw; kx++) {
        int64_t ix = ox * j->sw - j->pl + (int64_t)kx * j->dw;
        if (ix < 0 || ix >= j->W) continue;
        const float *restrict xin = j->x + ((b * j->H + iy) * j->W + ix) * j->C;
        for (int64_t c = 0; c < j->C; c++) y[c] = xin[c] > y[c] ? xin[c] : y[c];
      }
    }
  }
}

static int run_maxpool(const gg_node *n, gg_tval *vals, const gg__kctx *ctx) {
  const gg_tval *x = IN(0);
  gg_tval *y = OUT(0);
  pool_job j = {F32(x), F32(y), x->shape[1], x->shape[2], x->shape[3], y->shape[1], y->shape[2],
                n->a.ksize[0], n->a.ksize[1], n->a.strides[0], n->a.strides[1], 0, 0,
                n->a.dilations[0] > 1 ? n->a.dilations[0] : 1,
                n->a.dilations[1] > 1 ? n->a.dilations[1] : 1};
  int64_t o;
  gg__window(j.H, j.kh, j.sh, j.dh, n->a.padding, n->a.pads[0], n->a.pads[1], &o, &j.pt);
  gg__window(j.W, j.kw, j.sw, j.dw, n->a.padding, n->a.pads[2], n->a.pads[3], &o, &j.pl);
  gg__par1d(ctx, pool_row, &j, (size_t)(x->shape[0] * j.OH));
  return 0;
}

static int run_matmul(const gg_node *n, gg_tval *vals) {
  const gg_tval *a = IN(0), *b = IN(1);
  gg_tval *y = OUT(0);
  int64_t M = y->shape[0], N = y->shape[1];
  int64_t K = n->a.transpose_a ? a->shape[0] : a->shape[1];
  const float *A = F32(a), *B = F32(b), *bias = n->a.has_bias ? F32(IN(2)) : NULL;
  const float *pa = n->a.act == GG_ACT_PRELU ? F32(IN(2 + n->a.has_bias)) : NULL;
  int64_t pan = pa ? IN(2 + n->a.has_bias)->nelem : 0;
  float *restrict Y = F32(y);
  for (int64_t i = 0; i < M; i++) {
    float *restrict yr = Y + i * N;
    for (int64_t j = 0; j < N; j++) yr[j] = bias ? bias[j] : 0.0f;
    for (int64_t k = 0; k < K; k++) {
      float av = n->a.transpose_a ? A[k * M + i] : A[i * K + k];
      if (!n->a.transpose_b) {
        const float *restrict br = B + k * N;
        for (int64_t j = 0; j < N; j++) yr[j] += av * br[j];
      } else {
        for (int64_t j = 0; j < N; j++) yr[j] += av * B[j * K + k];
      }
    }
    if (n->a.act != GG_ACT_NONE)
      for (int64_t j = 0; j < N; j++)
        yr[j] = apply_act(yr[j], n->a.act, n->a.alpha, pa ? pa[pan == 1 ? 0 : j] : 0);
  }
  return 0;
}

/* Elementwise binary with broadcasting: outer odometer, inner loop over the
 * last output dim with per-operand strides (0 when broadcast). */
static inline float fbin(gg_op op, float a, float b) {
  switch (op) {
  case GG_OP_ADD: return a + b;
  case GG_OP_SUB: return a - b;
  case GG_OP_MUL: return a * b;
  case GG_OP_MAXIMUM: return a > b ? a : b;
  case GG_OP_MINIMUM: return a < b ? a : b;
  case GG_OP_PRELU: return a > 0 ? a : a * b;
  default: return 0;
  }
}
static inline int32_t ibin(gg_op op, int32_t a, int32_t b) {
  switch (op) {
  case GG_OP_ADD: return (int32_t)((uint32_t)a + (uint32_t)b);
  case GG_OP_SUB: return (int32_t)((uint32_t)a - (uint32_t)b);
  case GG_OP_MUL: return (int32_t)((uint32_t)a * (uint32_t)b);
  case GG_OP_MAXIMUM: return a > b ? a : b;
  case GG_OP_MINIMUM: return a < b ? a : b;
  default: return 0;
  }
}

static void strides_for(const gg_tval *t, int nd, const int64_t *oshape, int64_t *st) {
  int64_t s = 1;
  for (int i = nd - 1; i >= 0; i--) {
    int it = i - (nd - t->ndim);
    int64_t d = it >= 0 ? t->shape[it] : 1;
    st[i] = (d == 1 && oshape[i] != 1) ? 0 : s;
    s *= d;
  }
}

static int run_binary_core(const gg_node *n, gg_tval *vals);

static int run_binary(const gg_node *n, gg_tval *vals) {
  int rc = run_binary_core(n, vals);
  gg_tval *y = OUT(0);
  if (rc || n->a.act == GG_ACT_NONE || y->dtype != GG_DT_F32) return rc;
  float *d = F32(y);
  if (n->a.act == GG_ACT_RELU)
    for (int64_t i = 0; i < y->nelem; i++) d[i] = d[i] > 0 ? d[i] : 0;
  else
    for (int64_t i = 0; i < y->nelem; i++) d[i] = apply_act(d[i], n->a.act, n->a.alpha, 0);
  return 0;
}

static int run_binary_core(const gg_node *n, gg_tval *vals) {
  const gg_tval *a = IN(0), *b = IN(1);
  gg_tval *y = OUT(0);
  int nd = y->ndim;
  if (y->nelem == 0) return 0;
  int isf = y->dtype == GG_DT_F32;
  if (a->nelem == y->nelem && b->nelem == y->nelem) {
    if (isf) {
      const float *A = F32(a), *B = F32(b);
      float *Y = F32(y);
      switch (n->op) { /* specialised so the loops vectorise */
      case GG_OP_ADD: for (int64_t i = 0; i < y->nelem; i++) Y[i] = A[i] + B[i]; break;
      case GG_OP_SUB: for (int64_t i = 0; i < y->nelem; i++) Y[i] = A[i] - B[i]; break;
      case GG_OP_MUL: for (int64_t i = 0; i < y->nelem; i++) Y[i] = A[i] * B[i]; break;
      default: for (int64_t i = 0; i < y->nelem; i++) Y[i] = fbin(n->op, A[i], B[i]);
      }
    } else
      for (int64_t i = 0; i < y->nelem; i++) I32(y)[i] = ibin(n->op, I32(a)[i], I32(b)[i]);
    return 0;
  }
  int64_t sa[GG_MAX_DIMS], sb[GG_MAX_DIMS], idx[GG_MAX_DIMS] = {0};
  strides_for(a, nd, y->shape, sa);
  strides_for(b, nd, y->shape, sb);
  int64_t inner = nd ? y->shape[nd - 1] : 1, outer = y->nelem / inner;
  int64_t ia = nd ? sa[nd - 1] : 0, ib = nd ? sb[nd - 1] : 0;
  for (int64_t o = 0; o < outer; o++) {
    int64_t offa = 0, offb = 0;
    for (int d = 0; d < nd - 1; d++) offa += idx[d] * sa[d], offb += idx[d] * sb[d];
    if (isf) {
      const float *A = F32(a) + offa, *B = F32(b) + offb;
      float *Y = F32(y) + o * inner;
      for (int64_t i = 0; i < inner; i++) Y[i] = fbin(n->op, A[i * ia], B[i * ib]);
    } else {
      const int32_t *A = I32(a) + offa, *B = I32(b) + offb;
      int32_t *Y = I32(y) + o * inner;
      for (int64_t i = 0; i < inner; i++) Y[i] = ibin(n->op, A[i * ia], B[i * ib]);
    }
    for (int d = nd - 2; d >= 0; d--) {
      if (++idx[d] < y->shape[d]) break;
      idx[d] = 0;
    }
  }
  return 0;
}

static int run_unary(const gg_node *n, gg_tval *vals) {
  const float *x = F32(IN(0));
  float *y = F32(OUT(0));
  int64_t ne = OUT(0)->nelem;
  float al = n->a.alpha;
  switch (n->op) {
  case GG_OP_ABS: for (int64_t i = 0; i < ne; i++) y[i] = fabsf(x[i]); break;
  case GG_OP_SQUARE: for (int64_t i = 0; i < ne; i++) y[i] = x[i] * x[i]; break;
  case GG_OP_RSQRT: for (int64_t i = 0; i < ne; i++) y[i] = 1.0f / sqrtf(x[i]); break;
  case GG_OP_RELU: for (int64_t i = 0; i < ne; i++) y[i] = x[i] > 0 ? x[i] : 0; break;
  case GG_OP_RELU6:
    for (int64_t i = 0; i < ne; i++) y[i] = x[i] < 0 ? 0 : (x[i] > 6 ? 6 : x[i]);
    break;
  case GG_OP_LEAKY_RELU: for (int64_t i = 0; i < ne; i++) y[i] = x[i] > 0 ? x[i] : x[i] * al; break;
  case GG_OP_SIGMOID: for (int64_t i = 0; i < ne; i++) y[i] = 1.0f / (1.0f + expf(-x[i])); break;
  default: return GG_EUNSUPPORTED;
  }
  return 0;
}

static int run_softmax(const gg_node *n, gg_tval *vals) {
  const gg_tval *x = IN(0);
  int64_t inner = x->shape[x->ndim - 1];
  if (inner == 0) return 0;
  int64_t outer = x->nelem / inner;
  for (int64_t o = 0; o < outer; o++) {
    const float *xr = F32(x) + o * inner;
    float *yr = F32(OUT(0)) + o * inner;
    float mx = -INFINITY;
    for (int64_t i = 0; i < inner; i++) mx = xr[i] > mx ? xr[i] : mx;
    double s = 0;
    for (int64_t i = 0; i < inner; i++) s += (yr[i] = expf(xr[i] - mx));
    float inv = (float)(1.0 / s);
    for (int64_t i = 0; i < inner; i++) yr[i] *= inv;
  }
  return 0;
}

static int run_reduce(const gg_node *n, gg_tval *vals) {
  const gg_tval *x = IN(0);
  gg_tval *y = OUT(0);
  int red[GG_MAX_DIMS] = {0};
  for (int64_t i = 0; i < IN(1)->nelem; i++) {
    int ax = 0;
    gg__norm_axis(I32(IN(1))[i], x->ndim, &ax);
    red[ax] = 1;
  }
  /* Output strides in keep-dims form; reduced axes get stride 0. */
  int64_t ost[GG_MAX_DIMS], s = 1, idx[GG_MAX_DIMS] = {0};
  for (int d = x->ndim - 1; d >= 0; d--) {
    ost[d] = red[d] ? 0 : s;
    if (!red[d]) s *= x->shape[d];
  }
  int64_t cnt = y->nelem ? x->nelem / y->nelem : 0;
  int isf = x->dtype == GG_DT_F32;
  /* Accumulate straight into y (float32 like TF.js): no scratch, so nothing
   * is allocated while a request runs. */
  memset(y->data, 0, (size_t)y->nelem * 4);
  for (int64_t i = 0; i < x->nelem; i++) {
    int64_t o = 0;
    for (int d = 0; d < x->ndim; d++) o += idx[d] * ost[d];
    if (isf) F32(y)[o] += F32(x)[i];
    else I32(y)[o] = (int32_t)((uint32_t)I32(y)[o] + (uint32_t)I32(x)[i]);
    for (int d = x->ndim - 1; d >= 0; d--) {
      if (++idx[d] < x->shape[d]) break;
      idx[d] = 0;
    }
  }
  /* The mean over an empty axis is 0/0: NaN as numpy says (int: 0). */
  if (n->op == GG_OP_MEAN)
    for (int64_t o = 0; o < y->nelem; o++) {
      if (isf) F32(y)[o] = cnt ? F32(y)[o] / (float)cnt : NAN;
      else if (cnt) I32(y)[o] /= (int32_t)cnt;
    }
  return 0;
}

/* ONNX Pad's reflect and edge modes: each output row reads the input row its
 * outer coordinates map to (reflected without repeating the border, or
 * clamped), the inner dim mapped the same way around one memcpy. */
static int64_t pad_map(int64_t o, int64_t pb, int64_t d, gg_pad_mode m) {
  int64_t c = o - pb;
  if (c < 0) return m == GG_PADMODE_REFLECT ? -c : 0;
  if (c >= d) return m == GG_PADMODE_REFLECT ? 2 * (d - 1) - c : d - 1;
  return c;
}

static int run_pad_mapped(const gg_node *n, gg_tval *vals) {
  const gg_tval *x = IN(0);
  gg_tval *y = OUT(0);
  const int32_t *p = I32(IN(1));
  const uint32_t *X = x->data;
  uint32_t *Y = y->data;
  int nd = x->ndim;
  if (y->nelem == 0) return 0;
  if (nd == 0) {
    Y[0] = X[0];
    return 0;
  }
  int64_t xst[GG_MAX_DIMS], s = 1, idx[GG_MAX_DIMS] = {0};
  for (int d = nd - 1; d >= 0; d--) xst[d] = s, s *= x->shape[d];
  int64_t oin = y->shape[nd - 1], xin = x->shape[nd - 1], pl = p[2 * (nd - 1)];
  for (int64_t o = 0; o < y->nelem / oin; o++) {
    int64_t off = 0;
    for (int d = 0; d < nd - 1; d++) off += pad_map(idx[d], p[2 * d], x->shape[d], n->a.pad_mode) * xst[d];
    uint32_t *yr = Y + o * oin;
    for (int64_t i = 0; i < pl; i++) yr[i] = X[off + pad_map(i, pl, xin, n->a.pad_mode)];
    memcpy(yr + pl, X + off, (size_t)xin * 4);
    for (int64_t i = pl + xin; i < oin; i++) yr[i] = X[off + pad_map(i, pl, xin, n->a.pad_mode)];
    for (int d = nd - 2; d >= 0; d--) {
      if (++idx[d] < y->shape[d]) break;
      idx[d] = 0;
    }
  }
  return 0;
}

static int run_pad(const gg_node *n, gg_tval *vals) {
  if (n->a.pad_mode != GG_PADMODE_CONSTANT) return run_pad_mapped(n, vals);
  const gg_tval *x = IN(0);
  gg_tval *y = OUT(0);
  const int32_t *p = I32(IN(1));
  uint32_t fill = 0;
  if (n->n_in > 2) memcpy(&fill, IN(2)->data, 4);
  uint32_t *Y = y->data;
  const uint32_t *X = x->data;
  for (int64_t i = 0; i < y->nelem; i++) Y[i] = fill;
  if (x->nelem == 0) return 0;
  int nd = x->ndim;
  int64_t ost[GG_MAX_DIMS], s = 1, idx[GG_MAX_DIMS] = {0};
  for (int d = nd - 1; d >= 0; d--) ost[d] = s, s *= y->shape[d];
  int64_t inner = nd ? x->shape[nd - 1] : 1, outer = x->nelem / inner;
  for (int64_t o = 0; o < outer; o++) {
    int64_t off = nd ? p[2 * (nd - 1)] : 0;
    for (int d = 0; d < nd - 1; d++) off += (idx[d] + p[2 * d]) * ost[d];
    memcpy(Y + off, X + o * inner, (size_t)inner * 4);
    for (int d = nd - 2; d >= 0; d--) {
      if (++idx[d] < x->shape[d]) break;
      idx[d] = 0;
    }
  }
  return 0;
}

/* Batched 2-D transpose in cache-sized tiles: x [B][R][C] -> y [B][C][R].
 * Covers NCHW <-> NHWC (perms 0231 / 0312), the bulk of nanodet's exports. */
typedef struct t2d_job {
  const uint32_t *x;
  uint32_t *y;
  int64_t R, C, tiles_r, tiles_c;
} t2d_job;

#define T2D_TILE 32

/* The inner loop below is four instructions. Where it lands relative to a
 * fetch-block boundary depends on unrelated code around it, and that alone
 * made nanodet's transposes 1.5x slower (5.5 -> 10 ms per run, gcc 12 -O2,
 * AMD EPYC) when shape inference moved out of this file. Aligning its loops
 * makes the speed stop depending on that. */
#if defined(__GNUC__) && !defined(__clang__)
#define GG_ALIGN_LOOPS __attribute__((optimize("align-loops=32")))
#else
#define GG_ALIGN_LOOPS
#endif

GG_ALIGN_LOOPS static void t2d_tile(void *arg, size_t idx) {
  const t2d_job *j = arg;
  int64_t per_b = j->tiles_r * j->tiles_c, b = (int64_t)idx / per_b, t = (int64_t)idx % per_b;
  int64_t r0 = (t / j->tiles_c) * T2D_TILE, c0 = (t % j->tiles_c) * T2D_TILE;
  int64_t r1 = r0 + T2D_TILE < j->R ? r0 + T2D_TILE : j->R;
  int64_t c1 = c0 + T2D_TILE < j->C ? c0 + T2D_TILE : j->C;
  const uint32_t *x = j->x + b * j->R * j->C;
  uint32_t *y = j->y + b * j->R * j->C;
  for (int64_t c = c0; c < c1; c++)
    for (int64_t r = r0; r < r1; r++) y[c * j->R + r] = x[r * j->C + c];
}

static int run_transpose(const gg_node *n, gg_tval *vals, const gg__kctx *ctx) {
  const gg_tval *x = IN(0);
  gg_tval *y = OUT(0);
  int nd = x->ndim;
  const int32_t *perm = I32(IN(1));
  /* perm = (0..k-1, m..nd-1, k..m-1): a batched 2-D transpose. */
  if (nd >= 2 && y->nelem) {
    int k = 0;
    while (k < nd && perm[k] == k) k++;
    if (k < nd - 1) {
      int m = perm[k], ok = m > k;
      for (int i = k; ok && i < k + (nd - m); i++) ok = perm[i] == m + (i - k);
      for (int i = k + (nd - m); ok && i < nd; i++) ok = perm[i] == k + (i - k - (nd - m));
      if (ok) {
        int64_t B = 1, R = 1, C = 1;
        for (int d = 0; d < k; d++) B *= x->shape[d];
        for (int d = k; d < m; d++) R *= x->shape[d];
        for (int d = m; d < nd; d++) C *= x->shape[d];
        t2d_job j = {x->data, y->data, R, C, (R + T2D_TILE - 1) / T2D_TILE, (C + T2D_TILE - 1) / T2D_TILE};
        gg__par1d(ctx, t2d_tile, &j, (size_t)(B * j.tiles_r * j.tiles_c));
        return 0;
      }
    }
  }
  int64_t xst[GG_MAX_DIMS], s = 1, st[GG_MAX_DIMS], idx[GG_MAX_DIMS] = {0};
  for (int d = nd - 1; d >= 0; d--) xst[d] = s, s *= x->shape[d];
  for (int d = 0; d < nd; d++) st[d] = xst[perm[d]];
  const uint32_t *X = x->data;
  uint32_t *Y = y->data;
  if (y->nelem == 0) return 0;
  int64_t inner = nd ? y->shape[nd - 1] : 1, outer = y->nelem / inner, is = nd ? st[nd - 1] : 0;
  for (int64_t o = 0; o < outer; o++) {
    int64_t off = 0;
    for (int d = 0; d < nd - 1; d++) off += idx[d] * st[d];
    uint32_t *yr = Y + o * inner;
    for (int64_t i = 0; i < inner; i++) yr[i] = X[off + i * is];
    for (int d = nd - 2; d >= 0; d--) {
      if (++idx[d] < y->shape[d]) break;
      idx[d] = 0;
    }
  }
  return 0;
}

static int run_concat(const gg_node *n, gg_tval *vals) {
  gg_tval *y = OUT(0);
  int ax = 0;
  gg__norm_axis(I32(IN(n->n_in - 1))[0], y->ndim, &ax);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < ax; d++) outer *= y->shape[d];
  for (int d = ax + 1; d < y->ndim; d++) inner *= y->shape[d];
  uint32_t *Y = y->data;
  int64_t yrow = y->shape[ax] * inner, off = 0;
  for (int k = 0; k < n->n_in - 1; k++) {
    const gg_tval *x = IN(k);
    int64_t xrow = x->shape[ax] * inner;
    for (int64_t o = 0; o < outer && xrow; o++)
      memcpy(Y + o * yrow + off, (const uint32_t *)x->data + o * xrow, (size_t)xrow * 4);
    off += xrow;
  }
  return 0;
}

static int run_split(const gg_node *n, gg_tval *vals) {
  const gg_tval *x = IN(0);
  int ax = 0;
  gg__norm_axis(I32(IN(2))[0], x->ndim, &ax);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < ax; d++) outer *= x->shape[d];
  for (int d = ax + 1; d < x->ndim; d++) inner *= x->shape[d];
  int64_t xrow = x->shape[ax] * inner, off = 0;
  for (int k = 0; k < n->n_out; k++) {
    gg_tval *y = OUT(k);
    int64_t yrow = y->shape[ax] * inner;
    for (int64_t o = 0; o < outer && yrow; o++)
      memcpy((uint32_t *)y->data + o * yrow, (const uint32_t *)x->data + o * xrow + off, (size_t)yrow * 4);
    off += yrow;
  }
  return 0;
}

/* TF / TF.js ResizeBilinear: scale = in/out (or (in-1)/(out-1) with
 * align_corners), source = (dst + 0.5) * scale - 0.5 with half-pixel
 * centers, else dst * scale; neighbours clamped to the image. */
static void bilinear_coord(int64_t dst, int64_t in, int64_t out, int ac, int hp, int64_t *lo,
                           int64_t *hi, float *frac) {
  float scale = (ac && out > 1) ? (float)(in - 1) / (float)(out - 1) : (float)in / (float)out;
  float src = hp ? ((float)dst + 0.5f) * scale - 0.5f : (float)dst * scale;
  float fl = floorf(src);
  int64_t l = (int64_t)fl, h = (int64_t)ceilf(src);
  if (l < 0) l = 0;
  if (h > in - 1) h = in - 1;
  if (h < 0) h = 0;
  if (l > in - 1) l = in - 1;
  *lo = l, *hi = h;
  *frac = src - (float)(fl < 0 ? 0 : fl);
}

typedef struct rs_job {
  const float *x;
  float *y;
  int64_t H, W, C, OH, OW;
  int ac, hp;
} rs_job;

static void resize_row(void *arg, size_t row) {
  const rs_job *j = arg;
  int64_t b = (int64_t)row / j->OH, oy = (int64_t)row % j->OH;
  int64_t y0, y1, x0, x1;
  float fy, fx;
  bilinear_coord(oy, j->H, j->OH, j->ac, j->hp, &y0, &y1, &fy);
  const float *r0 = j->x + (b * j->H + y0) * j->W * j->C, *r1 = j->x + (b * j->H + y1) * j->W * j->C;
  float *yr = j->y + (b * j->OH + oy) * j->OW * j->C;
  for (int64_t ox = 0; ox < j->OW; ox++) {
    bilinear_coord(ox, j->W, j->OW, j->ac, j->hp, &x0, &x1, &fx);
    for (int64_t c = 0; c < j->C; c++) {
      float tl = r0[x0 * j->C + c], tr = r0[x1 * j->C + c];
      float bl = r1[x0 * j->C + c], br = r1[x1 * j->C + c];
      float top = tl + (tr - tl) * fx, bot = bl + (br - bl) * fx;
      yr[ox * j->C + c] = top + (bot - top) * fy;
    }
  }
}

static int run_resize(const gg_node *n, gg_tval *vals, const gg__kctx *ctx) {
  const gg_tval *x = IN(0);
  gg_tval *y = OUT(0);
  rs_job j = {F32(x), F32(y), x->shape[1], x->shape[2], x->shape[3], y->shape[1], y->shape[2],
              n->a.align_corners, n->a.half_pixel_centers};
  gg__par1d(ctx, resize_row, &j, (size_t)(x->shape[0] * j.OH));
  return 0;
}

/* TF.js ResizeNearestNeighbor (tfjs-backend-cpu): the source index is
 * floor(ratio * dst) (round with align_corners, dst + 0.5 with half-pixel
 * centers), ratio = in/out computed in double precision as JavaScript does,
 * so that integer factors (Keras UpSampling2D) pick exactly TF.js's pixels. */
static int64_t nearest_src(int64_t dst, int64_t in, int64_t out, int ac, int hp) {
  double ei = (ac && out > 1) ? (double)(in - 1) : (double)in;
  double eo = (ac && out > 1) ? (double)(out - 1) : (double)out;
  double f = (ei / eo) * (hp ? (double)dst + 0.5 : (double)dst);
  int64_t s = ac ? (int64_t)round(f) : (int64_t)floor(f);
  if (s > in - 1) s = in - 1;
  if (s < 0) s = 0;
  return s;
}

/* Output rows in blocks of RN_BLOCK per task: inside a block, a row with the
 * same source row as the one before it (every row but one per source row
 * when upscaling) is one copy of that row instead of a copy per pixel. */
#define RN_BLOCK 8
typedef struct rn_job {
  const uint32_t *x;
  uint32_t *y;
  int64_t H, W, C, OH, OW, blocks_per_image;
  int ac, hp;
} rn_job;

static void resize_nearest_rows(void *arg, size_t task) {
  const rn_job *j = arg;
  int64_t b = (int64_t)task / j->blocks_per_image;
  int64_t oy0 = ((int64_t)task % j->blocks_per_image) * RN_BLOCK;
  int64_t oy1 = oy0 + RN_BLOCK < j->OH ? oy0 + RN_BLOCK : j->OH, prev = -1;
  size_t row_bytes = (size_t)(j->OW * j->C) * 4;
  for (int64_t oy = oy0; oy < oy1; oy++) {
    int64_t sy = nearest_src(oy, j->H, j->OH, j->ac, j->hp);
    uint32_t *yr = j->y + (b * j->OH + oy) * j->OW * j->C;
    if (sy == prev) {
      memcpy(yr, yr - j->OW * j->C, row_bytes);
      continue;
    }
    prev = sy;
    const uint32_t *xr = j->x + (b * j->H + sy) * j->W * j->C;
    for (int64_t ox = 0; ox < j->OW; ox++) {
      int64_t sx = nearest_src(ox, j->W, j->OW, j->ac, j->hp);
      memcpy(yr + ox * j->C, xr + sx * j->C, (size_t)j->C * 4);
    }
  }
}

static int run_resize_nearest(const gg_node *n, gg_tval *vals, const gg__kctx *ctx) {
  const gg_tval *x = IN(0);
  gg_tval *y = OUT(0);
  rn_job j = {x->data, y->data, x->shape[1], x->shape[2], x->shape[3], y->shape[1], y->shape[2],
              (y->shape[1] + RN_BLOCK - 1) / RN_BLOCK, n->a.align_corners, n->a.half_pixel_centers};
  gg__par1d(ctx, resize_nearest_rows, &j, (size_t)(x->shape[0] * j.blocks_per_image));
  return 0;
}

/* TF DepthToSpace, NHWC, DCR order (tf.depthToSpace, the ESRGAN packages'
 * PixelShuffle layers): y[b, h*bs+i, w*bs+j, c] = x[b, h, w, (i*bs+j)*OC + c]. */
static int run_depth_to_space(const gg_node *n, gg_tval *vals) {
  const gg_tval *x = IN(0);
  gg_tval *y = OUT(0);
  int64_t bs = n->a.block_size, B = x->shape[0], H = x->shape[1], W = x->shape[2];
  int64_t IC = x->shape[3], OC = y->shape[3], OH = H * bs, OW = W * bs;
  const uint32_t *X = x->data;
  uint32_t *Y = y->data;
  for (int64_t b = 0; b < B; b++)
    for (int64_t oy = 0; oy < OH; oy++) {
      int64_t h = oy / bs, i = oy % bs;
      for (int64_t ox = 0; ox < OW; ox++) {
        int64_t w = ox / bs, j = ox % bs;
        memcpy(Y + ((b * OH + oy) * OW + ox) * OC, X + ((b * H + h) * W + w) * IC + (i * bs + j) * OC,
               (size_t)OC * 4);
      }
    }
  return 0;
}

static int run_sparse_to_dense(const gg_node *n, gg_tval *vals) {
  const gg_tval *ix = IN(0), *vv = IN(2);
  gg_tval *y = OUT(0);
  uint32_t def;
  memcpy(&def, IN(3)->data, 4);
  for (int64_t i = 0; i < y->nelem; i++) ((uint32_t *)y->data)[i] = def;
  int64_t nidx = ix->ndim == 0 ? 1 : ix->shape[0];
  int64_t rank = ix->ndim == 2 ? ix->shape[1] : 1;
  if (ix->ndim > 2 || rank != y->ndim || (vv->nelem != 1 && vv->nelem != nidx)) return GG_EPARSE;
  for (int64_t i = 0; i < nidx; i++) {
    int64_t off = 0;
    for (int64_t d = 0; d < rank; d++) {
      int32_t c = I32(ix)[i * rank + d];
      if (c < 0 || c >= y->shape[d]) return GG_ERANGE;
      off = off * y->shape[d] + c;
    }
    ((uint32_t *)y->data)[off] = ((const uint32_t *)vv->data)[vv->nelem == 1 ? 0 : i];
  }
  return 0;
}

int gg__op_run(const gg_node *n, gg_tval *vals, const gg__kctx *ctx) {
  switch (n->op) {
  case GG_OP_CONST:
  case GG_OP_PLACEHOLDER:
    return 0;
  case GG_OP_IDENTITY:
  case GG_OP_RESHAPE:
  case GG_OP_SQUEEZE:
    if (OUT(0)->data != IN(0)->data && OUT(0)->nelem)
      memmove(OUT(0)->data, IN(0)->data, (size_t)OUT(0)->nelem * 4);
    return 0;
  case GG_OP_CONV2D:
  case GG_OP_DEPTHWISE: return run_conv(n, vals, ctx);
  case GG_OP_MAXPOOL: return run_maxpool(n, vals, ctx);
  case GG_OP_MATMUL: return run_matmul(n, vals);
  case GG_OP_ADD:
  case GG_OP_SUB:
  case GG_OP_MUL:
  case GG_OP_MAXIMUM:
  case GG_OP_MINIMUM:
  case GG_OP_PRELU: return run_binary(n, vals);
  case GG_OP_ABS:
  case GG_OP_SQUARE:
  case GG_OP_RSQRT:
  case GG_OP_RELU:
  case GG_OP_RELU6:
  case GG_OP_LEAKY_RELU:
  case GG_OP_SIGMOID: return run_unary(n, vals);
  case GG_OP_SOFTMAX: return run_softmax(n, vals);
  case GG_OP_SUM:
  case GG_OP_MEAN: return run_reduce(n, vals);
  case GG_OP_PAD: return run_pad(n, vals);
  case GG_OP_TRANSPOSE: return run_transpose(n, vals, ctx);
  case GG_OP_CONCAT: return run_concat(n, vals);
  case GG_OP_SPLITV: return run_split(n, vals);
  case GG_OP_RESIZE_BILINEAR: return run_resize(n, vals, ctx);
  case GG_OP_SPARSE_TO_DENSE: return run_sparse_to_dense(n, vals);
  case GG_OP_RESIZE_NEAREST: return run_resize_nearest(n, vals, ctx);
  case GG_OP_DEPTH_TO_SPACE: return run_depth_to_space(n, vals);
  default:
    if (GG_OP_IS_GROUP_E(n->op)) return gg__elem_run(n, vals, ctx);
    if (GG_OP_IS_GROUP_S(n->op)) return gg__shape_run(n, vals, ctx);
    if (GG_OP_IS_GROUP_W(n->op)) return gg__window_run(n, vals, ctx);
    if (n->op == GG_OP_EINSUM) return gg__einsum_run(n, vals);
    if (GG_OP_IS_GROUP_X(n->op)) return gg__extra_run(n, vals, ctx);
    return GG_EUNSUPPORTED;
  }
}
