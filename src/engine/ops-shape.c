/* ONNX-era ops, group S (see the enum in src/engine/graph.h): shape rules
 * (gg__shape_infer) and reference kernels (gg__shape_run) for batched
 * matmul, the shape/index ops (Slice, Gather, Expand, Tile, Shape, Range,
 * ConstantOfShape) and the NHWC spatial ops (AvgPool, ConvTranspose,
 * Resize). Semantics are ONNX's. Kernels allocate nothing; the heavy ones
 * are threaded over output rows with ctx->pool. MaxPool's ceil_mode shape
 * rule lives here too (shape.c hands such nodes over). */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/error.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define IN(k) (&vals[n->in[k]])
#define OUT(k) (&vals[n->out[k]])
#define F32(v) ((float *)(v)->data)
#define I32(v) ((int32_t *)(v)->data)


static int set_shape(gg_tval *o, gg_dtype dt, const int64_t *shape, int ndim) {
  o->dtype = dt;
  o->ndim = ndim;
  for (int i = 0; i < ndim; i++) o->shape[i] = shape[i];
  return gg__shape_nelem(o->shape, ndim, &o->nelem);
}

/* A constant int32 parameter input (Expand's shape, Tile's repeats...). */
static int const_ints(const gg_node *n, const gg_tval *v, const char *what, int64_t maxn,
                      char *err, size_t errlen) {
  if (!v->data)
    return gg_errf(err, errlen, GG_EUNSUPPORTED,
                   "node '%s' (%s): %s must be a constant (computed values are not supported)",
                   n->name, n->src_op, what);
  if (v->dtype != GG_DT_I32 || v->ndim > 1)
    return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): %s must be a 1-D integer tensor",
                   n->name, n->src_op, what);
  if (v->nelem > maxn)
    return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): %s has %lld values (at most %lld)",
                   n->name, n->src_op, what, (long long)v->nelem, (long long)maxn);
  return 0;
}

/* ------------------------------------------------------------ geometry */

/* Slice: per input dim the first index, the step and the count, by ONNX's
 * rules (negative starts/ends count from the end, then clamp: [0, d] for a
 * positive step, [0, d-1] / [-1, d-1] for a negative one). */
static int slice_plan(const gg_node *n, const gg_tval *x, int64_t *start, int64_t *step,
                      int64_t *count, char *err, size_t errlen) {
  const gg_attrs *a = &n->a;
  for (int d = 0; d < x->ndim; d++) start[d] = 0, step[d] = 1, count[d] = x->shape[d];
  if (a->n_slice < 0 || a->n_slice > GG_MAX_DIMS)
    return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): %d slice entries (at most %d)",
                   n->name, n->src_op, a->n_slice, GG_MAX_DIMS);
  int seen[GG_MAX_DIMS] = {0};
  for (int i = 0; i < a->n_slice; i++) {
    int ax = 0;
    if (gg__norm_axis(a->slice_axes[i], x->ndim, &ax))
      return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): axis %lld out of range for rank %d",
                     n->name, n->src_op, (long long)a->slice_axes[i], x->ndim);
    if (seen[ax]++)
      return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): axis %d sliced twice", n->name,
                     n->src_op, ax);
    int64_t dim = x->shape[ax], s = a->slice_steps[i], b = a->slice_starts[i],
            e = a->slice_ends[i];
    if (s == 0 || s == INT64_MIN)
      return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): step of axis %d is %lld", n->name,
                     n->src_op, ax, (long long)s);
    if (b < 0) b = b < -dim ? -1 : b + dim; /* -1: below the dim (INT64_MIN safe) */
    if (e < 0) e = e < -dim ? -1 : e + dim;
    if (s > 0) {
      b = b < 0 ? 0 : (b > dim ? dim : b);
      e = e < 0 ? 0 : (e > dim ? dim : e);
      count[ax] = e > b ? (e - b - 1) / s + 1 : 0;
    } else {
      b = b < 0 ? 0 : (b > dim - 1 ? dim - 1 : b);
      e = e < -1 ? -1 : (e > dim - 1 ? dim - 1 : e);
      count[ax] = b > e ? (b - e - 1) / (-s) + 1 : 0;
    }
    /* A step that is never taken (count <= 1) is 1, so offsets never overflow. */
    start[ax] = b, step[ax] = count[ax] > 1 ? s : 1;
  }
  return 0;
}

/* One spatial dim of a pooling window, ONNX rules: like gg__window, plus
 * ceil_mode (the last window may run past the input; one that would start
 * in the trailing padding is dropped, as the ONNX spec says) and the
 * trailing pad (what count_include_pad counts). */
static int pool_dim(int64_t in, int k, int s, gg_padding p, int pads_b, int pads_a, int ceil_mode,
                    int64_t *out, int *pb, int *pa) {
  if (k < 1 || s < 1 || in < 1) return GG_ERANGE;
  if (p == GG_PAD_SAME) {
    *out = (in + s - 1) / s;
    int64_t tot = (*out - 1) * s + k - in;
    if (tot < 0) tot = 0;
    *pb = (int)(tot / 2), *pa = (int)(tot - tot / 2);
    return 0;
  }
  int b = p == GG_PAD_EXPLICIT ? pads_b : 0, e = p == GG_PAD_EXPLICIT ? pads_a : 0;
  if (b < 0 || e < 0) return GG_ERANGE;
  int64_t eff = in + b + e;
  if (eff < k) return GG_ERANGE;
  if (ceil_mode) {
    *out = (eff - k + s - 1) / s + 1;
    if ((*out - 1) * s >= in + b) (*out)--;
  } else {
    *out = (eff - k) / s + 1;
  }
  *pb = b, *pa = e;
  return 0;
}

/* --------------------------------------------------------- shape rules */

static int infer_batch_matmul(const gg_node *n, gg_tval *vals, char *err, size_t errlen) {
  const gg_tval *a = IN(0), *b = IN(1);
  char sa[96], sb[96];
  if (a->dtype != GG_DT_F32 || b->dtype != GG_DT_F32 || a->ndim < 1 || b->ndim < 1)
    return gg_errf(err, errlen, GG_EPARSE,
                   "node '%s' (%s): needs float operands of rank >= 1, got %s and %s", n->name,
                   n->src_op, gg__shape_str(a->shape, a->ndim, sa, sizeof sa),
                   gg__shape_str(b->shape, b->ndim, sb, sizeof sb));
  int64_t ka = a->shape[a->ndim - 1], kb = b->ndim == 1 ? b->shape[0] : b->shape[b->ndim - 2];
  if (ka != kb)
    return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): inner dims differ: %s x %s",
                   n->name, n->src_op, gg__shape_str(a->shape, a->ndim, sa, sizeof sa),
                   gg__shape_str(b->shape, b->ndim, sb, sizeof sb));
  int ba = a->ndim > 2 ? a->ndim - 2 : 0, bb = b->ndim > 2 ? b->ndim - 2 : 0;
  int nb = ba > bb ? ba : bb, nd = 0;
  int64_t shp[GG_MAX_DIMS + 2];
  for (int i = 0; i < nb; i++) {
    int ia = i - (nb - ba), ib = i - (nb - bb);
    int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
    if (da != db && da != 1 && db != 1)
      return gg_errf(err, errlen, GG_EPARSE,
                     "node '%s' (%s): batch dims of %s and %s do not broadcast", n->name,
                     n->src_op, gg__shape_str(a->shape, a->ndim, sa, sizeof sa),
                     gg__shape_str(b->shape, b->ndim, sb, sizeof sb));
    shp[nd++] = da == 1 ? db : da;
  }
  if (a->ndim > 1) shp[nd++] = a->shape[a->ndim - 2];
  if (b->ndim > 1) shp[nd++] = b->shape[b->ndim - 1];
  return set_shape(OUT(0), GG_DT_F32, shp, nd);
}

static int infer_pool(const gg_node *n, gg_tval *vals, char *err, size_t errlen) {
  const gg_tval *x = IN(0);
  char sa[96];
  if (x->ndim != 4 || (n->op == GG_OP_AVGPOOL && x->dtype != GG_DT_F32))
    return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): needs a 4-D NHWC %sinput, got %s",
                   n->name, n->src_op, n->op == GG_OP_AVGPOOL ? "float " : "",
                   gg__shape_str(x->shape, x->ndim, sa, sizeof sa));
  if (n->a.padding == GG_PAD_EXPLICIT)
    for (int i = 0; i < 4; i++)
      if (n->a.pads[i] >= n->a.ksize[i / 2])
        return gg_errf(err, errlen, GG_EUNSUPPORTED,
                       "node '%s' (%s): pad %d is not smaller than the %dx%d window", n->name,
                       n->src_op, n->a.pads[i], n->a.ksize[0], n->a.ksize[1]);
  int64_t shp[4];
  int pb, pa;
  if (pool_dim(x->shape[1], n->a.ksize[0], n->a.strides[0], n->a.padding, n->a.pads[0],
               n->a.pads[1], n->a.ceil_mode, &shp[1], &pb, &pa) ||
      pool_dim(x->shape[2], n->a.ksize[1], n->a.strides[1], n->a.padding, n->a.pads[2],
               n->a.pads[3], n->a.ceil_mode, &shp[2], &pb, &pa))
    return gg_errf(err, errlen, GG_ERANGE,
                   "node '%s' (%s): window %dx%d (strides %d,%d) does not fit input %s", n->name,
                   n->src_op, n->a.ksize[0], n->a.ksize[1], n->a.strides[0], n->a.strides[1],
                   gg__shape_str(x->shape, 4, sa, sizeof sa));
  shp[0] = x->shape[0], shp[3] = x->shape[3];
  return set_shape(OUT(0), x->dtype, shp, 4);
}

static int infer_conv_transpose(const gg_node *n, gg_tval *vals, char *err, size_t errlen) {
  const gg_tval *x = IN(0), *w = IN(1);
  const gg_attrs *a = &n->a;
  char sa[96], sb[96];
  if (x->ndim != 4 || w->ndim != 4 || x->dtype != GG_DT_F32 || w->dtype != GG_DT_F32)
    return gg_errf(err, errlen, GG_EPARSE,
                   "node '%s' (%s): needs a 4-D float input and filter, got %s and %s", n->name,
                   n->src_op, gg__shape_str(x->shape, x->ndim, sa, sizeof sa),
                   gg__shape_str(w->shape, w->ndim, sb, sizeof sb));
  int64_t groups = a->groups < 1 ? 1 : a->groups, ci = x->shape[3];
  if (w->shape[3] != ci || ci % groups || w->shape[2] < 1)
    return gg_errf(err, errlen, GG_EPARSE,
                   "node '%s' (%s): filter %s (HWOI) does not fit input %s with %lld groups",
                   n->name, n->src_op, gg__shape_str(w->shape, 4, sb, sizeof sb),
                   gg__shape_str(x->shape, 4, sa, sizeof sa), (long long)groups);
  if (w->shape[0] < 1 || w->shape[1] < 1 || w->shape[0] > 4096 || w->shape[1] > 4096)
    return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): bad kernel size %lldx%lld", n->name,
                   n->src_op, (long long)w->shape[0], (long long)w->shape[1]);
  int64_t co = w->shape[2] * groups, shp[4] = {x->shape[0], 0, 0, co};
  for (int d = 0; d < 2; d++) {
    int s = a->strides[d], dl = a->dilations[d], op = a->output_padding[d];
    int p0 = a->pads[2 * d], p1 = a->pads[2 * d + 1];
    if (s < 1 || dl < 1 || s > 4096 || dl > 4096 || op < 0 || p0 < 0 || p1 < 0 ||
        op > (1 << 20) || p0 > (1 << 20) || p1 > (1 << 20))
      return gg_errf(err, errlen, GG_EPARSE,
                     "node '%s' (%s): bad stride %d, dilation %d, pads %d,%d or output_padding "
                     "%d",
                     n->name, n->src_op, s, dl, p0, p1, op);
    shp[1 + d] = (x->shape[1 + d] - 1) * s + (w->shape[d] - 1) * dl + 1 - p0 - p1 + op;
    if (shp[1 + d] < 1)
      return gg_errf(err, errlen, GG_ERANGE,
                     "node '%s' (%s): pads %d,%d leave no output of input %s", n->name,
                     n->src_op, p0, p1, gg__shape_str(x->shape, 4, sa, sizeof sa));
  }
  if (n->n_in > 2 && (IN(2)->dtype != GG_DT_F32 || IN(2)->nelem != co))
    return gg_errf(err, errlen, GG_EPARSE,
                   "node '%s' (%s): bias has %lld values, expected %lld floats", n->name,
                   n->src_op, (long long)IN(2)->nelem, (long long)co);
  return set_shape(OUT(0), GG_DT_F32, shp, 4);
}

/* Resize's output size and the scale its coordinate transform uses, per
 * spatial dim (H, W). attrs.out_hw: >= 1 the size (scale_hw or out/in);
 * -1 floor(in * scale_hw); -2 input 1 holds ONNX's scales [N,C,H,W] (float,
 * N and C 1); -3 input 1 holds ONNX's sizes [N,C,H,W] (int, N and C kept).
 * tf_crop_and_resize with scales sizes the roi: floor(in * (end-start) *
 * scale). Errors name the node. */
static int resize_geometry(const gg_node *n, const gg_tval *vals, int64_t *out, double *scale,
                           double *len, char *err, size_t errlen) {
  const gg_tval *x = IN(0);
  const gg_attrs *a = &n->a;
  const gg_tval *p = n->n_in > 1 ? IN(1) : NULL;
  char sa[96];
  for (int d = 0; d < 2; d++) {
    int64_t in = x->shape[1 + d], o = a->out_hw[d];
    double sc = a->scale_hw[d];
    if (o == -2 || o == -3) {
      if (!p || !p->data)
        return gg_errf(err, errlen, GG_EUNSUPPORTED,
                       "node '%s' (%s): %s must be known when the session is created", n->name,
                       n->src_op, o == -2 ? "scales" : "sizes");
      if (p->nelem != 4 || p->dtype != (o == -2 ? GG_DT_F32 : GG_DT_I32))
        return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): %s must be 4 %s values", n->name,
                       n->src_op, o == -2 ? "scales" : "sizes", o == -2 ? "float" : "integer");
      if (o == -2) {
        const float *f = p->data;
        if (f[0] != 1.0f || f[1] != 1.0f)
          return gg_errf(err, errlen, GG_EUNSUPPORTED,
                         "node '%s' (%s): scales %g, %g on N and C (only H and W resize)",
                         n->name, n->src_op, (double)f[0], (double)f[1]);
        sc = f[2 + d], o = -1;
      } else {
        const int32_t *z = p->data;
        if (z[0] != x->shape[0] || z[1] != x->shape[3])
          return gg_errf(err, errlen, GG_EUNSUPPORTED,
                         "node '%s' (%s): sizes %d, %d change N or C of %s (only H and W resize)",
                         n->name, n->src_op, z[0], z[1],
                         gg__shape_str(x->shape, 4, sa, sizeof sa));
        o = z[2 + d], sc = 0;
      }
    }
    if (o == -1) {
      if (!(sc > 0) || !isfinite(sc) || sc > 65536)
        return gg_errf(err, errlen, GG_ERANGE, "node '%s' (%s): bad scale %g", n->name,
                       n->src_op, sc);
      float f = (float)in * (float)sc;
      if (a->coord_mode == GG_COORD_TF_CROP_AND_RESIZE)
        f = (float)in * (a->roi[2 + d] - a->roi[d]) * (float)sc;
      o = f >= 1.0f ? (int64_t)floorf(f) : 0;
    }
    if (o < 1 || o > (1 << 20) || !(sc >= 0) || !isfinite(sc))
      return gg_errf(err, errlen, GG_ERANGE,
                     "node '%s' (%s): output size %lld of dim %s from input %s is not in 1..%d",
                     n->name, n->src_op, (long long)o, d ? "W" : "H",
                     gg__shape_str(x->shape, 4, sa, sizeof sa), 1 << 20);
    out[d] = o;
    scale[d] = sc > 0 ? sc : (double)o / (double)in;
    len[d] = sc > 0 ? sc * (double)in : (double)o; /* ONNX's "output_width" (float) */
  }
  return 0;
}

static int infer_resize(const gg_node *n, gg_tval *vals, char *err, size_t errlen) {
  const gg_tval *x = IN(0);
  const gg_attrs *a = &n->a;
  char sa[96];
  if (x->ndim != 4 || (a->resize_mode != GG_RESIZE_NEAREST && x->dtype != GG_DT_F32))
    return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): needs a 4-D NHWC %sinput, got %s",
                   n->name, n->src_op, a->resize_mode != GG_RESIZE_NEAREST ? "float " : "",
                   gg__shape_str(x->shape, x->ndim, sa, sizeof sa));
  if ((unsigned)a->resize_mode > GG_RESIZE_CUBIC ||
      (unsigned)a->coord_mode > GG_COORD_HALF_PIXEL_SYMMETRIC ||
      (unsigned)a->nearest_mode > GG_NEAREST_CEIL)
    return gg_errf(err, errlen, GG_EUNSUPPORTED,
                   "node '%s' (%s): unknown mode (resize %d, coordinates %d, nearest %d)",
                   n->name, n->src_op, (int)a->resize_mode, (int)a->coord_mode,
                   (int)a->nearest_mode);
  if (x->shape[1] < 1 || x->shape[2] < 1)
    return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): empty input %s", n->name, n->src_op,
                   gg__shape_str(x->shape, 4, sa, sizeof sa));
  if (!isfinite(a->cubic_a) || !isfinite(a->roi[0]) || !isfinite(a->roi[1]) ||
      !isfinite(a->roi[2]) || !isfinite(a->roi[3]))
    return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): cubic_coeff_a or roi is not finite",
                   n->name, n->src_op);
  int64_t o[2];
  double sc[2], len[2];
  int rc = resize_geometry(n, vals, o, sc, len, err, errlen);
  if (rc) return rc;
  int64_t shp[4] = {x->shape[0], o[0], o[1], x->shape[3]};
  return set_shape(OUT(0), x->dtype, shp, 4);
}

int gg__shape_infer(const gg_node *n, gg_tval *vals, char *err, size_t errlen) {
  char sa[96], sb[96];
  int64_t shp[GG_MAX_DIMS];
  int rc = 0;
  for (int k = 0; k < n->n_in; k++)
    if (IN(k)->ndim < 0 || IN(k)->ndim > GG_MAX_DIMS)
      return gg_errf(err, errlen, GG_EPARSE, "node '%s': input %d has no shape", n->name, k);
  int need = n->op == GG_OP_RANGE ? 3 : (n->op == GG_OP_BATCH_MATMUL || n->op == GG_OP_GATHER ||
                                         n->op == GG_OP_EXPAND || n->op == GG_OP_TILE ||
                                         n->op == GG_OP_CONV_TRANSPOSE)
                                            ? 2
                                            : 1;
  if (n->n_in < need || n->n_out < 1)
    return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): %d inputs, %d outputs (needs %d, 1)",
                   n->name, n->src_op, n->n_in, n->n_out, need);
  const gg_tval *x = IN(0);
#define BAD(...) gg_errf(err, errlen, GG_EPARSE, __VA_ARGS__)
  switch (n->op) {
  case GG_OP_BATCH_MATMUL: return infer_batch_matmul(n, vals, err, errlen);
  case GG_OP_SLICE: {
    int64_t st[GG_MAX_DIMS], sp[GG_MAX_DIMS];
    if ((rc = slice_plan(n, x, st, sp, shp, err, errlen))) return rc;
    return set_shape(OUT(0), x->dtype, shp, x->ndim);
  }
  case GG_OP_GATHER: {
    const gg_tval *ix = IN(1);
    int ax = 0, nd = 0;
    if (ix->dtype != GG_DT_I32)
      return BAD("node '%s' (%s): indices must be integers", n->name, n->src_op);
    if (gg__norm_axis(n->a.axis, x->ndim, &ax))
      return BAD("node '%s' (%s): axis %d out of range for data %s", n->name, n->src_op,
                 n->a.axis, gg__shape_str(x->shape, x->ndim, sa, sizeof sa));
    if (x->ndim + ix->ndim - 1 > GG_MAX_DIMS)
      return gg_errf(err, errlen, GG_EUNSUPPORTED,
                     "node '%s' (%s): output rank %d exceeds %d (data %s, indices %s)", n->name,
                     n->src_op, x->ndim + ix->ndim - 1, GG_MAX_DIMS,
                     gg__shape_str(x->shape, x->ndim, sa, sizeof sa),
                     gg__shape_str(ix->shape, ix->ndim, sb, sizeof sb));
    if (x->shape[ax] == 0 && ix->nelem > 0)
      return gg_errf(err, errlen, GG_ERANGE, "node '%s' (%s): gathering from an empty axis %d",
                     n->name, n->src_op, ax);
    for (int d = 0; d < ax; d++) shp[nd++] = x->shape[d];
    for (int d = 0; d < ix->ndim; d++) shp[nd++] = ix->shape[d];
    for (int d = ax + 1; d < x->ndim; d++) shp[nd++] = x->shape[d];
    return set_shape(OUT(0), x->dtype, shp, nd);
  }
  case GG_OP_EXPAND: {
    const gg_tval *s = IN(1);
    if ((rc = const_ints(n, s, "shape", GG_MAX_DIMS, err, errlen))) return rc;
    int nd = (int)s->nelem > x->ndim ? (int)s->nelem : x->ndim;
    for (int i = 0; i < nd; i++) {
      int ix = i - (nd - x->ndim), is = i - (nd - (int)s->nelem);
      int64_t dx = ix >= 0 ? x->shape[ix] : 1, ds = is >= 0 ? I32(s)[is] : 1;
      if (ds < 0 || (dx != ds && dx != 1 && ds != 1))
        return BAD("node '%s' (%s): input %s does not broadcast to shape entry %lld (dim %d)",
                   n->name, n->src_op, gg__shape_str(x->shape, x->ndim, sa, sizeof sa),
                   (long long)ds, i);
      shp[i] = dx == 1 ? ds : dx;
    }
    return set_shape(OUT(0), x->dtype, shp, nd);
  }
  case GG_OP_TILE: {
    const gg_tval *r = IN(1);
    if ((rc = const_ints(n, r, "repeats", GG_MAX_DIMS, err, errlen))) return rc;
    if (r->nelem != x->ndim)
      return BAD("node '%s' (%s): %lld repeats for an input of rank %d", n->name, n->src_op,
                 (long long)r->nelem, x->ndim);
    for (int i = 0; i < x->ndim; i++) {
      int64_t k = I32(r)[i];
      if (k < 0) return BAD("node '%s' (%s): repeat %lld of dim %d", n->name, n->src_op, (long long)k, i);
      if (x->shape[i] && k > GG_MAX_ELEMS / x->shape[i])
        return gg_errf(err, errlen, GG_ERANGE, "node '%s' (%s): output too large", n->name,
                       n->src_op);
      shp[i] = x->shape[i] * k;
    }
    return set_shape(OUT(0), x->dtype, shp, x->ndim);
  }
  case GG_OP_SHAPE: {
    int64_t r = x->ndim, b = n->a.n_slice ? n->a.slice_starts[0] : 0,
            e = n->a.n_slice ? n->a.slice_ends[0] : r;
    if (b < 0) b = b < -r ? 0 : b + r;
    if (e < 0) e = e < -r ? 0 : e + r;
    b = b > r ? r : b, e = e > r ? r : e;
    shp[0] = e > b ? e - b : 0;
    return set_shape(OUT(0), GG_DT_I32, shp, 1);
  }
  case GG_OP_RANGE: {
    const gg_tval *s = IN(0), *l = IN(1), *dl = IN(2);
    for (int k = 0; k < 3; k++) {
      const gg_tval *v = IN(k);
      if (!v->data)
        return gg_errf(err, errlen, GG_EUNSUPPORTED, "node '%s' (%s): input %d must be a constant",
                       n->name, n->src_op, k);
      if (v->nelem != 1 || v->dtype != s->dtype)
        return BAD("node '%s' (%s): start, limit and delta must be scalars of one type", n->name,
                   n->src_op);
    }
    double cnt;
    if (s->dtype == GG_DT_I32) {
      int64_t a0 = I32(s)[0], a1 = I32(l)[0], d = I32(dl)[0];
      if (d == 0) return BAD("node '%s' (%s): delta is 0", n->name, n->src_op);
      int64_t diff = a1 - a0;
      cnt = d > 0 ? (diff > 0 ? (double)((diff + d - 1) / d) : 0)
                  : (diff < 0 ? (double)((-diff + (-d) - 1) / (-d)) : 0);
    } else {
      float a0 = F32(s)[0], a1 = F32(l)[0], d = F32(dl)[0];
      if (d == 0 || !isfinite(a0) || !isfinite(a1) || !isfinite(d))
        return BAD("node '%s' (%s): start %g, limit %g, delta %g", n->name, n->src_op, (double)a0,
                   (double)a1, (double)d);
      cnt = ceil((double)(a1 - a0) / (double)d);
      if (cnt < 0) cnt = 0;
    }
    if (cnt > (double)GG_MAX_ELEMS)
      return gg_errf(err, errlen, GG_ERANGE, "node '%s' (%s): %.0f elements is too many", n->name,
                     n->src_op, cnt);
    shp[0] = (int64_t)cnt;
    return set_shape(OUT(0), s->dtype, shp, 1);
  }
  case GG_OP_CONSTANT_OF_SHAPE: {
    if ((rc = const_ints(n, x, "shape", GG_MAX_DIMS, err, errlen))) return rc;
    if ((unsigned)n->a.to >= GG_DT_COUNT)
      return BAD("node '%s' (%s): bad dtype %d", n->name, n->src_op, (int)n->a.to);
    for (int i = 0; i < (int)x->nelem; i++) {
      if (I32(x)[i] < 0)
        return BAD("node '%s' (%s): negative dim %d", n->name, n->src_op, (int)I32(x)[i]);
      shp[i] = I32(x)[i];
    }
    if ((rc = set_shape(OUT(0), n->a.to, shp, (int)x->nelem)))
      return gg_errf(err, errlen, rc, "node '%s' (%s): shape %s is too large", n->name,
                     n->src_op, gg__shape_str(shp, (int)x->nelem, sa, sizeof sa));
    return 0;
  }
  case GG_OP_MAXPOOL:
  case GG_OP_AVGPOOL: return infer_pool(n, vals, err, errlen);
  case GG_OP_CONV_TRANSPOSE: return infer_conv_transpose(n, vals, err, errlen);
  case GG_OP_RESIZE: return infer_resize(n, vals, err, errlen);
  default:
    return gg_errf(err, errlen, GG_EUNSUPPORTED, "node '%s': op %s has no shape rule here",
                   n->name, n->src_op);
  }
#undef BAD
}

/* ------------------------------------------------------------- kernels */

/* Batched GEMM. A task is one batch entry and a band of MM_ROWS rows of C.
 * Inside it, 4x8 tiles of C live in registers while K is swept (each B load
 * feeds 4 multiply-adds; gcc vectorises the 8-wide loops); rows and columns
 * left over take a row-times-panel loop that keeps MM_NC columns of C in L1
 * while a KC x NC panel of B is reused by every row of the band. */
#define MM_ROWS 16
#define MM_KC 128
#define MM_NC 256
#define MM_TR 4
#define MM_TC 8

typedef struct bmm_job {
  const float *a, *b;
  float *y;
  int64_t M, K, N, bands;
  int nb;                        /* output batch dims */
  int64_t bshape[GG_MAX_DIMS];   /* output batch shape */
  int64_t ast[GG_MAX_DIMS], bst[GG_MAX_DIMS]; /* batch strides in matrices (0: broadcast) */
} bmm_job;

/* C[i0..i0+4, j0..j0+8] = A[i0..+4, :] B[:, j0..+8], accumulated in eight
 * 4-float vectors (GNU vector extension: SSE2 registers on any x86-64; a
 * plain array elsewhere, which compilers keep in memory). */
#if defined(__GNUC__)
typedef float mm_v4 __attribute__((vector_size(16)));
static void bmm_tile(const float *restrict A, const float *restrict B, float *restrict C,
                     int64_t K, int64_t N) {
  mm_v4 c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
  for (int64_t k = 0; k < K; k++) {
    mm_v4 b0, b1;
    memcpy(&b0, B + k * N, sizeof b0);
    memcpy(&b1, B + k * N + 4, sizeof b1);
    mm_v4 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    a0 += A[k], a1 += A[K + k], a2 += A[2 * K + k], a3 += A[3 * K + k];
    c00 += a0 * b0, c01 += a0 * b1, c10 += a1 * b0, c11 += a1 * b1;
    c20 += a2 * b0, c21 += a2 * b1, c30 += a3 * b0, c31 += a3 * b1;
  }
  memcpy(C, &c00, 16), memcpy(C + 4, &c01, 16);
  memcpy(C + N, &c10, 16), memcpy(C + N + 4, &c11, 16);
  memcpy(C + 2 * N, &c20, 16), memcpy(C + 2 * N + 4, &c21, 16);
  memcpy(C + 3 * N, &c30, 16), memcpy(C + 3 * N + 4, &c31, 16);
}
#else
static void bmm_tile(const float *restrict A, const float *restrict B, float *restrict C,
                     int64_t K, int64_t N) {
  float acc[MM_TR][MM_TC] = {{0}};
  for (int64_t k = 0; k < K; k++)
    for (int r = 0; r < MM_TR; r++)
      for (int c = 0; c < MM_TC; c++) acc[r][c] += A[r * K + k] * B[k * N + c];
  for (int r = 0; r < MM_TR; r++)
    for (int c = 0; c < MM_TC; c++) C[r * N + c] = acc[r][c];
}
#endif

/* Rows [i0, i1) x columns [c0, N) the row-times-panel way. */
static void bmm_rest(const float *A, const float *B, float *C, int64_t i0, int64_t i1, int64_t c0,
                     int64_t K, int64_t N) {
  for (int64_t j0 = c0; j0 < N; j0 += MM_NC) {
    int64_t j1 = j0 + MM_NC < N ? j0 + MM_NC : N;
    for (int64_t i = i0; i < i1; i++)
      for (int64_t c = j0; c < j1; c++) C[i * N + c] = 0.0f;
    for (int64_t k0 = 0; k0 < K; k0 += MM_KC) {
      int64_t k1 = k0 + MM_KC < K ? k0 + MM_KC : K;
      for (int64_t i = i0; i < i1; i++) {
        float *restrict cr = C + i * N;
        const float *ar = A + i * K;
        for (int64_t k = k0; k < k1; k++) {
          float av = ar[k];
          const float *restrict br = B + k * N;
          for (int64_t c = j0; c < j1; c++) cr[c] += av * br[c];
        }
      }
    }
  }
}

static void bmm_task(void *arg, size_t t) {
  const bmm_job *j = arg;
  int64_t bi = (int64_t)t / j->bands, i0 = ((int64_t)t % j->bands) * MM_ROWS;
  int64_t i1 = i0 + MM_ROWS < j->M ? i0 + MM_ROWS : j->M;
  int64_t oa = 0, ob = 0, rem = bi;
  for (int d = j->nb - 1; d >= 0; d--) {
    int64_t id = rem % j->bshape[d];
    rem /= j->bshape[d];
    oa += id * j->ast[d], ob += id * j->bst[d];
  }
  const float *A = j->a + oa * j->M * j->K, *B = j->b + ob * j->K * j->N;
  float *C = j->y + bi * j->M * j->N;
  int64_t K = j->K, N = j->N, it = i0 + (i1 - i0) / MM_TR * MM_TR, nt = N / MM_TC * MM_TC;
  for (int64_t i = i0; i < it; i += MM_TR)
    for (int64_t c = 0; c < nt; c += MM_TC) bmm_tile(A + i * K, B + c, C + i * N + c, K, N);
  if (nt < N) bmm_rest(A, B, C, i0, it, nt, K, N);
  if (it < i1) bmm_rest(A, B, C, it, i1, 0, K, N);
}

static int run_batch_matmul(const gg_node *n, gg_tval *vals, const gg__kctx *ctx) {
  const gg_tval *a = IN(0), *b = IN(1);
  gg_tval *y = OUT(0);
  bmm_job j;
  memset(&j, 0, sizeof j);
  j.a = F32(a), j.b = F32(b), j.y = F32(y);
  j.K = a->shape[a->ndim - 1];
  j.M = a->ndim > 1 ? a->shape[a->ndim - 2] : 1;
  j.N = b->ndim > 1 ? b->shape[b->ndim - 1] : 1;
  int ba = a->ndim > 2 ? a->ndim - 2 : 0, bb = b->ndim > 2 ? b->ndim - 2 : 0;
  j.nb = ba > bb ? ba : bb;
  int64_t sa = 1, sb = 1, nbatch = 1;
  for (int d = j.nb - 1; d >= 0; d--) {
    int ia = d - (j.nb - ba), ib = d - (j.nb - bb);
    int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
    j.bshape[d] = da == 1 ? db : da;
    j.ast[d] = da == 1 ? 0 : sa, j.bst[d] = db == 1 ? 0 : sb;
    sa *= da, sb *= db, nbatch *= j.bshape[d];
  }
  if (y->nelem == 0) return 0;
  if (j.K == 0) {
    memset(y->data, 0, (size_t)y->nelem * 4);
    return 0;
  }
  j.bands = (j.M + MM_ROWS - 1) / MM_ROWS;
  gg__par1d(ctx, bmm_task, &j, (size_t)(nbatch * j.bands));
  return 0;
}

static int run_slice(const gg_node *n, gg_tval *vals) {
  const gg_tval *x = IN(0);
  gg_tval *y = OUT(0);
  int64_t st[GG_MAX_DIMS], sp[GG_MAX_DIMS], cnt[GG_MAX_DIMS], xst[GG_MAX_DIMS], s = 1;
  char err[8];
  if (slice_plan(n, x, st, sp, cnt, err, sizeof err)) return GG_EPARSE;
  if (y->nelem == 0) return 0;
  int nd = x->ndim;
  for (int d = nd - 1; d >= 0; d--) xst[d] = s, s *= x->shape[d];
  int64_t base = 0, idx[GG_MAX_DIMS] = {0};
  for (int d = 0; d < nd; d++) base += st[d] * xst[d];
  int64_t inner = nd ? cnt[nd - 1] : 1, outer = y->nelem / inner,
          istep = nd ? sp[nd - 1] * xst[nd - 1] : 0;
  const uint32_t *X = x->data;
  uint32_t *Y = y->data;
  for (int64_t o = 0; o < outer; o++) {
    int64_t off = base;
    for (int d = 0; d < nd - 1; d++) off += idx[d] * sp[d] * xst[d];
    uint32_t *yr = Y + o * inner;
    if (istep == 1) memcpy(yr, X + off, (size_t)inner * 4);
    else
      for (int64_t i = 0; i < inner; i++) yr[i] = X[off + i * istep];
    for (int d = nd - 2; d >= 0; d--) {
      if (++idx[d] < cnt[d]) break;
      idx[d] = 0;
    }
  }
  return 0;
}

static int run_gather(const gg_node *n, gg_tval *vals) {
  const gg_tval *x = IN(0), *ix = IN(1);
  gg_tval *y = OUT(0);
  int ax = 0;
  if (gg__norm_axis(n->a.axis, x->ndim, &ax)) return GG_EPARSE;
  int64_t outer = 1, inner = 1, dim = x->shape[ax];
  for (int d = 0; d < ax; d++) outer *= x->shape[d];
  for (int d = ax + 1; d < x->ndim; d++) inner *= x->shape[d];
  const int32_t *I = I32(ix);
  /* Every index is checked before anything is written. */
  for (int64_t k = 0; k < ix->nelem; k++)
    if (I[k] < -dim || I[k] >= dim) return GG_ERANGE;
  const uint32_t *X = x->data;
  uint32_t *Y = y->data;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t k = 0; k < ix->nelem; k++) {
      int64_t i = I[k] < 0 ? I[k] + dim : I[k];
      memcpy(Y + (o * ix->nelem + k) * inner, X + (o * dim + i) * inner, (size_t)inner * 4);
    }
  return 0;
}

/* y[idx] = x[sum idx[d] * xst[d]] over y's shape (Expand's broadcast copy). */
static void copy_strided(const uint32_t *X, const int64_t *xst, uint32_t *Y, const int64_t *shape,
                         int nd, int64_t total) {
  int64_t idx[GG_MAX_DIMS] = {0};
  int64_t inner = nd ? shape[nd - 1] : 1, outer = inner ? total / inner : 0,
          is = nd ? xst[nd - 1] : 0;
  for (int64_t o = 0; o < outer; o++) {
    int64_t off = 0;
    for (int d = 0; d < nd - 1; d++) off += idx[d] * xst[d];
    uint32_t *yr = Y + o * inner;
    for (int64_t i = 0; i < inner; i++) yr[i] = X[off + i * is];
    for (int d = nd - 2; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

static int run_expand(const gg_node *n, gg_tval *vals) {
  const gg_tval *x = IN(0);
  gg_tval *y = OUT(0);
  int nd = y->ndim;
  int64_t xst[GG_MAX_DIMS], s = 1;
  for (int d = nd - 1; d >= 0; d--) {
    int ix = d - (nd - x->ndim);
    int64_t dx = ix >= 0 ? x->shape[ix] : 1;
    xst[d] = dx == 1 ? 0 : s;
    s *= dx;
  }
  if (y->nelem) copy_strided(x->data, xst, y->data, y->shape, nd, y->nelem);
  return 0;
}

static int run_tile(const gg_node *n, gg_tval *vals) {
  const gg_tval *x = IN(0);
  gg_tval *y = OUT(0);
  int nd = x->ndim;
  if (y->nelem == 0) return 0;
  int64_t xst[GG_MAX_DIMS], s = 1, idx[GG_MAX_DIMS] = {0};
  for (int d = nd - 1; d >= 0; d--) xst[d] = s, s *= x->shape[d];
  const uint32_t *X = x->data;
  uint32_t *Y = y->data;
  int64_t inner = nd ? y->shape[nd - 1] : 1, outer = y->nelem / inner,
          xin = nd ? x->shape[nd - 1] : 1;
  for (int64_t o = 0; o < outer; o++) {
    int64_t off = 0;
    for (int d = 0; d < nd - 1; d++) off += (idx[d] % x->shape[d]) * xst[d];
    uint32_t *yr = Y + o * inner;
    for (int64_t i = 0; i < inner; i += xin) memcpy(yr + i, X + off, (size_t)xin * 4);
    for (int d = nd - 2; d >= 0; d--) {
      if (++idx[d] < y->shape[d]) break;
      idx[d] = 0;
    }
  }
  return 0;
}

static int run_shape(const gg_node *n, gg_tval *vals) {
  const gg_tval *x = IN(0);
  gg_tval *y = OUT(0);
  int64_t r = x->ndim, b = n->a.n_slice ? n->a.slice_starts[0] : 0;
  if (b < 0) b = b < -r ? 0 : b + r;
  b = b > r ? r : b;
  for (int64_t i = 0; i < y->nelem; i++) I32(y)[i] = (int32_t)x->shape[b + i];
  return 0;
}

static int run_range(const gg_node *n, gg_tval *vals) {
  gg_tval *y = OUT(0);
  if (y->dtype == GG_DT_I32) {
    int64_t s = I32(IN(0))[0], d = I32(IN(2))[0];
    for (int64_t i = 0; i < y->nelem; i++) I32(y)[i] = (int32_t)(s + i * d);
  } else {
    float s = F32(IN(0))[0], d = F32(IN(2))[0];
    for (int64_t i = 0; i < y->nelem; i++) F32(y)[i] = s + (float)i * d;
  }
  return 0;
}

static int run_constant_of_shape(const gg_node *n, gg_tval *vals) {
  gg_tval *y = OUT(0);
  if (y->dtype == GG_DT_I32) {
    float f = n->a.fill;
    int32_t v = f != f ? 0 : f >= 2147483647.0f ? INT32_MAX : f <= -2147483648.0f ? INT32_MIN
                                                                                   : (int32_t)f;
    for (int64_t i = 0; i < y->nelem; i++) I32(y)[i] = v;
  } else {
    for (int64_t i = 0; i < y->nelem; i++) F32(y)[i] = n->a.fill;
  }
  return 0;
}

typedef struct apool_job {
  const float *x;
  float *y;
  int64_t H, W, C, OH, OW;
  int kh, kw, sh, sw, pt, pl, pb, pr, include_pad;
} apool_job;

static void apool_row(void *arg, size_t row) {
  const apool_job *j = arg;
  int64_t b = (int64_t)row / j->OH, oy = (int64_t)row % j->OH;
  int64_t y0 = oy * j->sh - j->pt, y1 = y0 + j->kh;
  int64_t py1 = y1 < j->H + j->pb ? y1 : j->H + j->pb; /* window inside the padded image */
  int64_t cy0 = y0 < 0 ? 0 : y0, cy1 = y1 < j->H ? y1 : j->H;
  for (int64_t ox = 0; ox < j->OW; ox++) {
    int64_t x0 = ox * j->sw - j->pl, x1 = x0 + j->kw;
    int64_t px1 = x1 < j->W + j->pr ? x1 : j->W + j->pr;
    int64_t cx0 = x0 < 0 ? 0 : x0, cx1 = x1 < j->W ? x1 : j->W;
    float *restrict y = j->y + ((b * j->OH + oy) * j->OW + ox) * j->C;
    for (int64_t c = 0; c < j->C; c++) y[c] = 0.0f;
    for (int64_t iy = cy0; iy < cy1; iy++)
      for (int64_t ix = cx0; ix < cx1; ix++) {
        const float *restrict xin = j->x + ((b * j->H + iy) * j->W + ix) * j->C;
        for (int64_t c = 0; c < j->C; c++) y[c] += xin[c];
      }
    int64_t cnt = j->include_pad ? (py1 - y0) * (px1 - x0)
                                 : (cy1 > cy0 ? cy1 - cy0 : 0) * (cx1 > cx0 ? cx1 - cx0 : 0);
    float fc = (float)cnt;
    for (int64_t c = 0; c < j->C; c++) y[c] = cnt > 0 ? y[c] / fc : 0.0f;
  }
}

static int run_avgpool(const gg_node *n, gg_tval *vals, const gg__kctx *ctx) {
  const gg_tval *x = IN(0);
  gg_tval *y = OUT(0);
  apool_job j = {F32(x), F32(y), x->shape[1], x->shape[2], x->shape[3], y->shape[1], y->shape[2],
                 n->a.ksize[0], n->a.ksize[1], n->a.strides[0], n->a.strides[1],
                 0, 0, 0, 0, n->a.count_include_pad};
  int64_t o;
  if (pool_dim(j.H, j.kh, j.sh, n->a.padding, n->a.pads[0], n->a.pads[1], n->a.ceil_mode, &o,
               &j.pt, &j.pb) ||
      pool_dim(j.W, j.kw, j.sw, n->a.padding, n->a.pads[2], n->a.pads[3], n->a.ceil_mode, &o,
               &j.pl, &j.pr))
    return GG_ERANGE;
  if (y->nelem) gg__par1d(ctx, apool_row, &j, (size_t)(x->shape[0] * j.OH));
  return 0;
}

typedef struct convt_job {
  const float *x, *w, *bias;
  float *y;
  int64_t H, W, CI, OH, OW, CO, KH, KW, cig, cog;
  int sh, sw, dh, dw, pt, pl;
} convt_job;

/* One output row, gathered: output pixel (oy, ox) sits at (oy + pt, ox + pl)
 * of the full (uncropped) output, which input pixel iy reaches through tap
 * ky when iy * s + ky * d equals it. Writes never collide across rows. */
static void convt_row(void *arg, size_t row) {
  const convt_job *j = arg;
  int64_t b = (int64_t)row / j->OH, oy = (int64_t)row % j->OH, fy = oy + j->pt;
  for (int64_t ox = 0; ox < j->OW; ox++) {
    float *restrict y = j->y + ((b * j->OH + oy) * j->OW + ox) * j->CO;
    int64_t fx = ox + j->pl;
    for (int64_t c = 0; c < j->CO; c++) y[c] = j->bias ? j->bias[c] : 0.0f;
    for (int64_t ky = 0; ky < j->KH; ky++) {
      int64_t ty = fy - ky * j->dh;
      if (ty < 0 || ty % j->sh) continue;
      int64_t iy = ty / j->sh;
      if (iy >= j->H) continue;
      for (int64_t kx = 0; kx < j->KW; kx++) {
        int64_t tx = fx - kx * j->dw;
        if (tx < 0 || tx % j->sw) continue;
        int64_t ix = tx / j->sw;
        if (ix >= j->W) continue;
        const float *xin = j->x + ((b * j->H + iy) * j->W + ix) * j->CI;
        const float *wk = j->w + (ky * j->KW + kx) * j->cog * j->CI;
        int64_t groups = j->CI / j->cig;
        for (int64_t g = 0; g < groups; g++) {
          const float *xg = xin + g * j->cig;
          for (int64_t o = 0; o < j->cog; o++) {
            const float *restrict wr = wk + o * j->CI + g * j->cig;
            float acc = 0.0f;
            for (int64_t ci = 0; ci < j->cig; ci++) acc += xg[ci] * wr[ci];
            y[g * j->cog + o] += acc;
          }
        }
      }
    }
  }
}

static int run_conv_transpose(const gg_node *n, gg_tval *vals, const gg__kctx *ctx) {
  const gg_tval *x = IN(0), *w = IN(1);
  gg_tval *y = OUT(0);
  int64_t groups = n->a.groups < 1 ? 1 : n->a.groups;
  convt_job j = {F32(x), F32(w), n->n_in > 2 ? F32(IN(2)) : NULL, F32(y),
                 x->shape[1], x->shape[2], x->shape[3], y->shape[1], y->shape[2], y->shape[3],
                 w->shape[0], w->shape[1], x->shape[3] / groups, w->shape[2],
                 n->a.strides[0], n->a.strides[1], n->a.dilations[0], n->a.dilations[1],
                 n->a.pads[0], n->a.pads[2]};
  if (y->nelem) gg__par1d(ctx, convt_row, &j, (size_t)(x->shape[0] * j.OH));
  /* A Relu / Relu6 fused in by fold.c (a BatchNorm shift + Relu after it) */
  if (n->a.act == GG_ACT_RELU || n->a.act == GG_ACT_RELU6) {
    float *d = F32(y), hi = n->a.act == GG_ACT_RELU6 ? 6.0f : INFINITY;
    for (int64_t i = 0; i < y->nelem; i++)
      d[i] = d[i] < 0.0f ? 0.0f : d[i] > hi ? hi : d[i];
  }
  return 0;
}

/* ---- Resize. Per output coordinate and dim: the source coordinate (ONNX's
 * coordinate_transformation_mode, in double as the ONNX reference computes
 * it), then up to 4 taps (index clamped to the image = ONNX's edge padding)
 * with weights. */
typedef struct rs_dim {
  int64_t in, out;
  double scale, len; /* scale as given (out/in when none); len = scale * in (float size) */
  double roi0, roi1;
} rs_dim;

typedef struct rs_taps {
  int n, outside;   /* outside: tf_crop_and_resize extrapolation */
  int64_t idx[4];
  float w[4];
} rs_taps;

static double rs_coord(const gg_attrs *a, const rs_dim *d, int64_t o) {
  double x = (double)o, in = (double)d->in;
  switch (a->coord_mode) {
  case GG_COORD_ALIGN_CORNERS: return d->len == 1.0 ? 0.0 : x * (in - 1) / (d->len - 1);
  case GG_COORD_ASYMMETRIC: return x / d->scale;
  case GG_COORD_TF_HALF_PIXEL_FOR_NN: return (x + 0.5) / d->scale;
  case GG_COORD_PYTORCH_HALF_PIXEL: return d->len == 1.0 ? -0.5 : (x + 0.5) / d->scale - 0.5;
  case GG_COORD_TF_CROP_AND_RESIZE: {
    double r = d->len == 1.0 ? (d->roi1 - d->roi0) * (in - 1) / 2
                             : x * (d->roi1 - d->roi0) * (in - 1) / (d->len - 1);
    return r + d->roi0 * (in - 1);
  }
  case GG_COORD_HALF_PIXEL_SYMMETRIC: {
    double adj = (double)d->out / d->len, off = in / 2 * (1 - adj);
    return off + (x + 0.5) / d->scale - 0.5;
  }
  case GG_COORD_HALF_PIXEL:
  default: return (x + 0.5) / d->scale - 0.5;
  }
}

static int64_t clampi(int64_t v, int64_t lo, int64_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

static void rs_make_taps(const gg_attrs *a, const rs_dim *d, int64_t o, rs_taps *t) {
  double xo = rs_coord(a, d, o);
  /* Far outside the image every tap clamps the same; keep the int64 cast defined. */
  xo = xo < -1e9 ? -1e9 : (xo > 1e9 ? 1e9 : xo);
  t->outside = a->coord_mode == GG_COORD_TF_CROP_AND_RESIZE && (xo < 0 || xo > (double)(d->in - 1));
  double fl = floor(xo), r = xo - fl;
  int64_t x0 = (int64_t)fl;
  if (a->resize_mode == GG_RESIZE_NEAREST) {
    int64_t s;
    if (r == 0) s = x0;
    else
      switch (a->nearest_mode) {
      case GG_NEAREST_ROUND_PREFER_CEIL: s = r >= 0.5 ? x0 + 1 : x0; break;
      case GG_NEAREST_FLOOR: s = x0; break;
      case GG_NEAREST_CEIL: s = x0 + 1; break;
      case GG_NEAREST_ROUND_PREFER_FLOOR:
      default: s = r > 0.5 ? x0 + 1 : x0; break;
      }
    t->n = 1, t->idx[0] = clampi(s, 0, d->in - 1), t->w[0] = 1.0f;
    return;
  }
  double w[4];
  int64_t first;
  if (a->resize_mode == GG_RESIZE_LINEAR) {
    t->n = 2, first = x0, w[0] = 1 - r, w[1] = r;
  } else {
    double A = a->cubic_a, s = 1 - r;
    t->n = 4, first = x0 - 1;
    w[0] = ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A;
    w[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
    w[2] = ((A + 2) * s - (A + 3)) * s * s + 1;
    w[3] = ((A * (s + 1) - 5 * A) * (s + 1) + 8 * A) * (s + 1) - 4 * A;
  }
  if (a->exclude_outside) {
    double sum = 0;
    for (int k = 0; k < t->n; k++) {
      int64_t i = first + k;
      if (i < 0 || i >= d->in) w[k] = 0;
      sum += w[k];
    }
    for (int k = 0; k < t->n; k++) w[k] = sum != 0 ? w[k] / sum : 0;
  }
  for (int k = 0; k < t->n; k++) t->idx[k] = clampi(first + k, 0, d->in - 1), t->w[k] = (float)w[k];
}

typedef struct resize_job {
  const gg_attrs *a;
  const void *x;
  void *y;
  int64_t C;
  rs_dim dh, dw;
  int isf;
} resize_job;

static void resize_row(void *arg, size_t row) {
  const resize_job *j = arg;
  int64_t b = (int64_t)row / j->dh.out, oy = (int64_t)row % j->dh.out, C = j->C;
  int64_t H = j->dh.in, W = j->dw.in, OW = j->dw.out;
  rs_taps ty, tx;
  rs_make_taps(j->a, &j->dh, oy, &ty);
  for (int64_t ox = 0; ox < OW; ox++) {
    rs_make_taps(j->a, &j->dw, ox, &tx);
    int64_t yo = ((b * j->dh.out + oy) * OW + ox) * C;
    if (!j->isf) { /* int32, nearest only */
      const int32_t *src = (const int32_t *)j->x + ((b * H + ty.idx[0]) * W + tx.idx[0]) * C;
      int32_t *dst = (int32_t *)j->y + yo;
      int32_t ev = (int32_t)j->a->extrapolation;
      for (int64_t c = 0; c < C; c++) dst[c] = ty.outside || tx.outside ? ev : src[c];
      continue;
    }
    float *restrict dst = (float *)j->y + yo;
    if (ty.outside || tx.outside) {
      for (int64_t c = 0; c < C; c++) dst[c] = j->a->extrapolation;
      continue;
    }
    if (ty.n == 1 && tx.n == 1 && ty.w[0] == 1.0f && tx.w[0] == 1.0f) {
      /* one tap of weight 1 (nearest, or linear on the grid): a copy */
      memcpy(dst, (const float *)j->x + ((b * H + ty.idx[0]) * W + tx.idx[0]) * C,
             (size_t)C * sizeof *dst);
      continue;
    }
    for (int64_t c = 0; c < C; c++) dst[c] = 0.0f;
    for (int ky = 0; ky < ty.n; ky++) {
      const float *xr = (const float *)j->x + (b * H + ty.idx[ky]) * W * C;
      for (int kx = 0; kx < tx.n; kx++) {
        float wt = ty.w[ky] * tx.w[kx];
        if (wt == 0.0f) continue;
        const float *restrict src = xr + tx.idx[kx] * C;
        for (int64_t c = 0; c < C; c++) dst[c] += wt * src[c];
      }
    }
  }
}

static int run_resize(const gg_node *n, gg_tval *vals, const gg__kctx *ctx) {
  const gg_tval *x = IN(0);
  gg_tval *y = OUT(0);
  resize_job j;
  memset(&j, 0, sizeof j);
  j.a = &n->a, j.x = x->data, j.y = y->data, j.C = x->shape[3], j.isf = x->dtype == GG_DT_F32;
  rs_dim *dims[2] = {&j.dh, &j.dw};
  int64_t o[2];
  double sc[2], len[2];
  char err[8];
  if (resize_geometry(n, vals, o, sc, len, err, sizeof err)) return GG_EPARSE;
  for (int d = 0; d < 2; d++) {
    rs_dim *r = dims[d];
    r->in = x->shape[1 + d], r->out = y->shape[1 + d];
    /* ONNX sizes its coordinate transform by scale * in, which is not the
     * integer output size when a scale was given. */
    r->scale = sc[d], r->len = len[d];
    r->roi0 = n->a.roi[d], r->roi1 = n->a.roi[2 + d];
  }
  if (y->nelem) gg__par1d(ctx, resize_row, &j, (size_t)(x->shape[0] * j.dh.out));
  return 0;
}

int gg__shape_run(const gg_node *n, gg_tval *vals, const struct gg__kctx *ctx) {
  switch (n->op) {
  case GG_OP_BATCH_MATMUL: return run_batch_matmul(n, vals, ctx);
  case GG_OP_SLICE: return run_slice(n, vals);
  case GG_OP_GATHER: return run_gather(n, vals);
  case GG_OP_EXPAND: return run_expand(n, vals);
  case GG_OP_TILE: return run_tile(n, vals);
  case GG_OP_SHAPE: return run_shape(n, vals);
  case GG_OP_RANGE: return run_range(n, vals);
  case GG_OP_CONSTANT_OF_SHAPE: return run_constant_of_shape(n, vals);
  case GG_OP_AVGPOOL: return run_avgpool(n, vals, ctx);
  case GG_OP_CONV_TRANSPOSE: return run_conv_transpose(n, vals, ctx);
  case GG_OP_RESIZE: return run_resize(n, vals, ctx);
  default: return GG_EUNSUPPORTED;
  }
}
