/* Shape inference for every op: the output dtype and shape of a node from
 * its inputs' shapes (and the data of constant parameter inputs such as
 * Reshape's shape). Run once per session by the scheduler before planning;
 * the kernels (ops.c and the backends) trust what it computed. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/error.h"

#include <stdio.h>
#include <string.h>

#define IN(k) (&vals[n->in[k]])
#define OUT(k) (&vals[n->out[k]])
#define I32(v) ((int32_t *)(v)->data)

static int set_shape(gg_tval *o, gg_dtype dt, const int64_t *shape, int ndim) {
  o->dtype = dt;
  o->ndim = ndim;
  for (int i = 0; i < ndim; i++) o->shape[i] = shape[i];
  return gg__shape_nelem(o->shape, ndim, &o->nelem);
}

/* A constant int32 parameter input (shape, axes, perm, paddings...). */
static int const_ints(const gg_node *n, gg_tval *v, const char *what, int64_t maxn, char *err,
                      size_t errlen) {
  if (!v->data)
    return gg_errf(err, errlen, GG_EUNSUPPORTED, "node '%s' (%s): %s must be a constant", n->name,
                 n->src_op, what);
  if (v->dtype != GG_DT_I32)
    return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): %s must be an integer tensor", n->name,
                 n->src_op, what);
  if (v->nelem > maxn)
    return gg_errf(err, errlen, GG_EPARSE, "node '%s' (%s): %s has %lld values (max %lld)", n->name,
                 n->src_op, what, (long long)v->nelem, (long long)maxn);
  return 0;
}

int gg__norm_axis(int64_t ax, int ndim, int *out) {
  if (ax < -ndim || ax >= ndim) return GG_ERANGE;
  *out = (int)(ax < 0 ? ax + ndim : ax);
  return 0;
}

/* TF window geometry for one spatial dim. */
int gg__window(int64_t in, int k, int s, int d, gg_padding p, int pb, int pa, int64_t *out,
                  int *pad_before) {
  int64_t ek = (int64_t)(k - 1) * d + 1;
  if (p == GG_PAD_SAME) {
    *out = (in + s - 1) / s;
    int64_t tot = (*out - 1) * s + ek - in;
    if (tot < 0) tot = 0;
    *pad_before = (int)(tot / 2);
  } else {
    int64_t eff = in + (p == GG_PAD_EXPLICIT ? pb + pa : 0);
    if (eff < ek) return GG_ERANGE;
    *out = (eff - ek) / s + 1;
    *pad_before = p == GG_PAD_EXPLICIT ? pb : 0;
  }
  return 0;
}

/* Broadcast shapes a and b into o (numpy rules). */
static int bcast(const gg_tval *a, const gg_tval *b, int64_t *o, int *ond) {
  int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
  for (int i = 0; i < nd; i++) {
    int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
    int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
    if (da != db && da != 1 && db != 1) return GG_EPARSE;
    o[i] = da == 1 ? db : da;
  }
  *ond = nd;
  return 0;
}

int gg__op_infer(const gg_node *n, gg_tval *vals, char *err, size_t errlen) {
  char sa[96], sb[96];
  int64_t shp[GG_MAX_DIMS];
  int nd = 0, rc = 0;
  for (int k = 0; k < n->n_in; k++)
    if (IN(k)->ndim < 0 || IN(k)->ndim > GG_MAX_DIMS)
      return gg_errf(err, errlen, GG_EPARSE, "node '%s': input %d has no shape", n->name, k);
  const gg_tval *x = n->n_in ? IN(0) : NULL;
#define BAD(...) gg_errf(err, errlen, GG_EPARSE, __VA_ARGS__)
  switch (n->op) {
  case GG_OP_CONST:
  case GG_OP_PLACEHOLDER:
    return 0;
  case GG_OP_IDENTITY:
    return set_shape(OUT(0), x->dtype, x->shape, x->ndim);
  case GG_OP_CONV2D:
  case GG_OP_DEPTHWISE: {
    const gg_tval *w = IN(1);
    if (x->ndim != 4 || w->ndim != 4 || x->dtype != GG_DT_F32 || w->dtype != GG_DT_F32)
      return BAD("node '%s' (%s): needs a 4-D float input and filter, got %s and %s", n->name,
                 n->src_op, gg__shape_str(x->shape, x->ndim, sa, sizeof sa),
                 gg__shape_str(w->shape, w->ndim, sb, sizeof sb));
    int64_t ci = x->shape[3], co;
    if (n->op == GG_OP_CONV2D) {
      /* groups = ci / filter_ci must be >= 1 and divide the outputs. */
      if (w->shape[2] <= 0 || ci < w->shape[2] || ci % w->shape[2] ||
          w->shape[3] % (ci / w->shape[2]))
        return BAD("node '%s' (%s): input channels %lld do not fit filter %s", n->name, n->src_op,
                   (long long)ci, gg__shape_str(w->shape, 4, sb, sizeof sb));
      co = w->shape[3];
    } else {
      if (w->shape[2] != ci)
        return BAD("node '%s' (%s): input channels %lld != filter channels %lld", n->name,
                   n->src_op, (long long)ci, (long long)w->shape[2]);
      co = ci * w->shape[3];
    }
    if (w->shape[0] < 1 || w->shape[1] < 1 || w->shape[0] > 4096 || w->shape[1] > 4096)
      return BAD("node '%s': bad kernel size", n->name);
    int pb;
    if (gg__window(x->shape[1], (int)w->shape[0], n->a.strides[0], n->a.dilations[0], n->a.padding,
               n->a.pads[0], n->a.pads[1], &shp[1], &pb) ||
        gg__window(x->shape[2], (int)w->shape[1], n->a.strides[1], n->a.dilations[1], n->a.padding,
               n->a.pads[2], n->a.pads[3], &shp[2], &pb))
      return BAD("node '%s' (%s): input %s is smaller than the filter window", n->name, n->src_op,
                 gg__shape_str(x->shape, 4, sa, sizeof sa));
    if (n->a.has_bias && IN(2)->nelem != co)
      return BAD("node '%s' (%s): bias has %lld values, expected %lld", n->name, n->src_op,
                 (long long)IN(2)->nelem, (long long)co);
    if (n->a.act == GG_ACT_PRELU) {
      int64_t na = IN(2 + n->a.has_bias)->nelem;
      if (na != co && na != 1) return BAD("node '%s': prelu alpha has %lld values", n->name, (long long)na);
    }
    shp[0] = x->shape[0], shp[3] = co;
    return set_shape(OUT(0), GG_DT_F32, shp, 4);
  }
  case GG_OP_MAXPOOL: {
    if (x->ndim != 4) return BAD("node '%s' (MaxPool): needs a 4-D input", n->name);
    if (x->dtype != GG_DT_F32) return BAD("node '%s' (MaxPool): needs a float input", n->name);
    int dh = n->a.dilations[0] > 1 ? n->a.dilations[0] : 1;
    int dw = n->a.dilations[1] > 1 ? n->a.dilations[1] : 1;
    if (n->a.ceil_mode) {
      if (dh > 1 || dw > 1) return BAD("node '%s' (MaxPool): dilations with ceil_mode", n->name);
      return gg__shape_infer(n, vals, err, errlen); /* ONNX ceil_mode rule */
    }
    int pb;
    if (gg__window(x->shape[1], n->a.ksize[0], n->a.strides[0], dh, n->a.padding, n->a.pads[0],
               n->a.pads[1], &shp[1], &pb) ||
        gg__window(x->shape[2], n->a.ksize[1], n->a.strides[1], dw, n->a.padding, n->a.pads[2],
               n->a.pads[3], &shp[2], &pb))
      return BAD("node '%s' (MaxPool): input smaller than the window", n->name);
    shp[0] = x->shape[0], shp[3] = x->shape[3];
    return set_shape(OUT(0), x->dtype, shp, 4);
  }
  case GG_OP_MATMUL: {
    const gg_tval *b = IN(1);
    if (x->ndim != 2 || b->ndim != 2)
      return BAD("node '%s' (%s): only 2-D operands are supported, got %s x %s", n->name,
                 n->src_op, gg__shape_str(x->shape, x->ndim, sa, sizeof sa),
                 gg__shape_str(b->shape, b->ndim, sb, sizeof sb));
    int64_t m = n->a.transpose_a ? x->shape[1] : x->shape[0];
    int64_t ka = n->a.transpose_a ? x->shape[0] : x->shape[1];
    int64_t kb = n->a.transpose_b ? b->shape[1] : b->shape[0];
    int64_t nn = n->a.transpose_b ? b->shape[0] : b->shape[1];
    if (ka != kb)
      return BAD("node '%s' (%s): inner dims differ (%lld vs %lld)", n->name, n->src_op,
                 (long long)ka, (long long)kb);
    if (n->a.has_bias && IN(2)->nelem != nn)
      return BAD("node '%s' (%s): bias has %lld values, expected %lld", n->name, n->src_op,
                 (long long)IN(2)->nelem, (long long)nn);
    if (n->a.act == GG_ACT_PRELU) {
      int64_t na = IN(2 + n->a.has_bias)->nelem;
      if (na != nn && na != 1) return BAD("node '%s': prelu alpha has %lld values", n->name, (long long)na);
    }
    shp[0] = m, shp[1] = nn;
    return set_shape(OUT(0), GG_DT_F32, shp, 2);
  }
  case GG_OP_ADD:
  case GG_OP_SUB:
  case GG_OP_MUL:
  case GG_OP_MAXIMUM:
  case GG_OP_MINIMUM:
  case GG_OP_PRELU:
    if (x->dtype != IN(1)->dtype)
      return BAD("node '%s' (%s): operand types differ", n->name, n->src_op);
    if (n->op == GG_OP_PRELU && x->dtype != GG_DT_F32)
      return BAD("node '%s': Prelu needs float input", n->name);
    if (bcast(x, IN(1), shp, &nd))
      return BAD("node '%s' (%s): shapes %s and %s do not broadcast", n->name, n->src_op,
                 gg__shape_str(x->shape, x->ndim, sa, sizeof sa),
                 gg__shape_str(IN(1)->shape, IN(1)->ndim, sb, sizeof sb));
    return set_shape(OUT(0), x->dtype, shp, nd);
  case GG_OP_ABS:
  case GG_OP_SQUARE:
  case GG_OP_RSQRT:
  case GG_OP_RELU:
  case GG_OP_RELU6:
  case GG_OP_LEAKY_RELU:
  case GG_OP_SIGMOID:
  case GG_OP_SOFTMAX:
    if (x->dtype != GG_DT_F32) return BAD("node '%s' (%s): needs float input", n->name, n->src_op);
    if (n->op == GG_OP_SOFTMAX && x->ndim < 1) return BAD("node '%s': Softmax of a scalar", n->name);
    return set_shape(OUT(0), x->dtype, x->shape, x->ndim);
  case GG_OP_SUM:
  case GG_OP_MEAN: {
    if ((rc = const_ints(n, IN(1), "axes", GG_MAX_DIMS, err, errlen))) return rc;
    int red[GG_MAX_DIMS] = {0};
    for (int64_t i = 0; i < IN(1)->nelem; i++) {
      int ax = 0;
      if (gg__norm_axis(I32(IN(1))[i], x->ndim, &ax)) return BAD("node '%s': axis out of range", n->name);
      red[ax] = 1;
    }
    for (int i = 0; i < x->ndim; i++) {
      if (red[i] && !n->a.keep_dims) continue;
      shp[nd++] = red[i] ? 1 : x->shape[i];
    }
    return set_shape(OUT(0), x->dtype, shp, nd);
  }
  case GG_OP_PAD: {
    if ((rc = const_ints(n, IN(1), "paddings", 2 * GG_MAX_DIMS, err, errlen))) return rc;
    if (IN(1)->nelem != 2 * x->ndim)
      return BAD("node '%s' (%s): paddings must be [%d,2]", n->name, n->src_op, x->ndim);
    for (int i = 0; i < x->ndim; i++) {
      int32_t a = I32(IN(1))[2 * i], b = I32(IN(1))[2 * i + 1];
      if (a < 0 || b < 0 || a > (1 << 20) || b > (1 << 20))
        return gg_errf(err, errlen, GG_EUNSUPPORTED, "node '%s' (%s): padding %d,%d not supported", n->name, n->src_op, a, b);
      /* reflect mirrors without the border pixel; edge repeats it (ONNX Pad) */
      if ((a || b) && ((n->a.pad_mode == GG_PADMODE_REFLECT && (a >= x->shape[i] || b >= x->shape[i])) ||
                       (n->a.pad_mode == GG_PADMODE_EDGE && x->shape[i] == 0)))
        return gg_errf(err, errlen, GG_EUNSUPPORTED, "node '%s' (%s): %s padding %d,%d of dim %d needs a larger dim than %lld",
                       n->name, n->src_op, n->a.pad_mode == GG_PADMODE_REFLECT ? "reflect" : "edge", a, b, i, (long long)x->shape[i]);
      shp[i] = x->shape[i] + a + b;
    }
    if (n->n_in > 2 && (!IN(2)->data || IN(2)->nelem != 1 || IN(2)->dtype != x->dtype))
      return BAD("node '%s' (%s): constant_values must be a constant scalar", n->name, n->src_op);
    return set_shape(OUT(0), x->dtype, shp, x->ndim);
  }
  case GG_OP_RESHAPE: {
    if (n->a.flatten > 0) {
      if (n->a.flatten > x->ndim)
        return BAD("node '%s' (Flatten): axis %d past the input's rank %d", n->name, n->a.flatten,
                   x->ndim);
      shp[0] = shp[1] = 1;
      for (int i = 0; i < x->ndim; i++) {
        int64_t *p = &shp[i >= n->a.flatten];
        if (x->shape[i] && *p > GG_MAX_ELEMS / x->shape[i])
          return BAD("node '%s' (Flatten): a dim past %lld elements", n->name,
                     (long long)GG_MAX_ELEMS);
        *p *= x->shape[i];
      }
      return set_shape(OUT(0), x->dtype, shp, 2);
    }
    if ((rc = const_ints(n, IN(1), "shape", GG_MAX_DIMS, err, errlen))) return rc;
    int neg = -1;
    int64_t prod = 1;
    nd = (int)IN(1)->nelem;
    for (int i = 0; i < nd; i++) {
      int64_t d = I32(IN(1))[i];
      if (d == -1 && neg < 0) {
        neg = i;
        continue;
      }
      if (d < 0 || (d && prod > GG_MAX_ELEMS / d)) return BAD("node '%s' (Reshape): bad target dim %lld", n->name, (long long)d);
      shp[i] = d;
      prod *= d;
    }
    if (neg >= 0) {
      if (prod == 0 || x->nelem % prod) return BAD("node '%s' (Reshape): cannot infer -1 for %lld elements", n->name, (long long)x->nelem);
      shp[neg] = x->nelem / prod;
      prod *= shp[neg];
    }
    if (prod != x->nelem)
      return BAD("node '%s' (Reshape): %lld elements cannot become %s", n->name,
                 (long long)x->nelem, gg__shape_str(shp, nd, sa, sizeof sa));
    return set_shape(OUT(0), x->dtype, shp, nd);
  }
  case GG_OP_SQUEEZE: {
    int sq[GG_MAX_DIMS] = {0};
    for (int i = 0; i < n->a.n_axes; i++) {
      int ax = 0;
      if (gg__norm_axis(n->a.axes[i], x->ndim, &ax) || x->shape[ax] != 1)
        return BAD("node '%s' (Squeeze): axis %d is not a size-1 dim of %s", n->name, n->a.axes[i],
                   gg__shape_str(x->shape, x->ndim, sa, sizeof sa));
      sq[ax] = 1;
    }
    for (int i = 0; i < x->ndim; i++)
      if (!(n->a.n_axes ? sq[i] : x->shape[i] == 1)) shp[nd++] = x->shape[i];
    return set_shape(OUT(0), x->dtype, shp, nd);
  }
  case GG_OP_TRANSPOSE: {
    if ((rc = const_ints(n, IN(1), "perm", GG_MAX_DIMS, err, errlen))) return rc;
    if (IN(1)->nelem != x->ndim) return BAD("node '%s' (Transpose): perm has %lld entries for rank %d", n->name, (long long)IN(1)->nelem, x->ndim);
    int seen[GG_MAX_DIMS] = {0};
    for (int i = 0; i < x->ndim; i++) {
      int32_t p = I32(IN(1))[i];
      if (p < 0 || p >= x->ndim || seen[p]++) return BAD("node '%s' (Transpose): perm is not a permutation", n->name);
      shp[i] = x->shape[p];
    }
    return set_shape(OUT(0), x->dtype, shp, x->ndim);
  }
  case GG_OP_CONCAT: {
    const gg_tval *av = IN(n->n_in - 1);
    if ((rc = const_ints(n, (gg_tval *)av, "axis", 1, err, errlen))) return rc;
    int ax = 0;
    if (av->nelem != 1 || gg__norm_axis(I32(av)[0], x->ndim, &ax)) return BAD("node '%s' (ConcatV2): bad axis", n->name);
    for (int i = 0; i < x->ndim; i++) shp[i] = x->shape[i];
    shp[ax] = 0;
    for (int k = 0; k < n->n_in - 1; k++) {
      const gg_tval *t = IN(k);
      if (t->ndim != x->ndim || t->dtype != x->dtype) return BAD("node '%s' (ConcatV2): inputs differ in rank or type", n->name);
      for (int i = 0; i < x->ndim; i++)
        if (i != ax && t->shape[i] != x->shape[i])
          return BAD("node '%s' (ConcatV2): input %d shape %s does not match %s", n->name, k,
                     gg__shape_str(t->shape, t->ndim, sa, sizeof sa), gg__shape_str(x->shape, x->ndim, sb, sizeof sb));
      shp[ax] += t->shape[ax];
    }
    return set_shape(OUT(0), x->dtype, shp, x->ndim);
  }
  case GG_OP_SPLITV: {
    if ((rc = const_ints(n, IN(1), "size_splits", n->n_out, err, errlen))) return rc;
    if ((rc = const_ints(n, IN(2), "axis", 1, err, errlen))) return rc;
    int ax = 0;
    if (IN(2)->nelem != 1 || gg__norm_axis(I32(IN(2))[0], x->ndim, &ax)) return BAD("node '%s' (SplitV): bad axis", n->name);
    if (IN(1)->nelem != n->n_out) return BAD("node '%s' (SplitV): %lld sizes for %d outputs", n->name, (long long)IN(1)->nelem, n->n_out);
    int neg = -1;
    int64_t tot = 0;
    for (int k = 0; k < n->n_out; k++) {
      int32_t s = I32(IN(1))[k];
      if (s == -1 && neg < 0) neg = k;
      else if (s < 0) return BAD("node '%s' (SplitV): bad size %d", n->name, s);
      else tot += s;
    }
    if (tot > x->shape[ax] || (neg < 0 && tot != x->shape[ax]))
      return BAD("node '%s' (SplitV): sizes add up to %lld, dim is %lld", n->name, (long long)tot, (long long)x->shape[ax]);
    for (int k = 0; k < n->n_out; k++) {
      for (int i = 0; i < x->ndim; i++) shp[i] = x->shape[i];
      shp[ax] = k == neg ? x->shape[ax] - tot : I32(IN(1))[k];
      if ((rc = set_shape(OUT(k), x->dtype, shp, x->ndim))) return rc;
    }
    return 0;
  }
  case GG_OP_RESIZE_BILINEAR: {
    if ((rc = const_ints(n, IN(1), "size", 2, err, errlen))) return rc;
    if (x->ndim != 4 || x->dtype != GG_DT_F32 || IN(1)->nelem != 2)
      return BAD("node '%s' (ResizeBilinear): needs a 4-D float input and a size of 2", n->name);
    int32_t h = I32(IN(1))[0], w = I32(IN(1))[1];
    if (h < 1 || w < 1 || h > 65536 || w > 65536) return BAD("node '%s' (ResizeBilinear): bad size %dx%d", n->name, h, w);
    if (x->shape[1] < 1 || x->shape[2] < 1) return BAD("node '%s' (ResizeBilinear): empty input", n->name);
    shp[0] = x->shape[0], shp[1] = h, shp[2] = w, shp[3] = x->shape[3];
    return set_shape(OUT(0), GG_DT_F32, shp, 4);
  }
  case GG_OP_RESIZE_NEAREST: {
    if (n->n_in > 1 && (rc = const_ints(n, IN(1), "size", 2, err, errlen))) return rc;
    if (x->ndim != 4 || (n->n_in > 1 && IN(1)->nelem != 2))
      return BAD("node '%s' (%s): needs a 4-D input and a size of 2, got %s", n->name, n->src_op,
                 gg__shape_str(x->shape, x->ndim, sa, sizeof sa));
    int64_t h, w;
    if (n->n_in > 1) {
      h = I32(IN(1))[0], w = I32(IN(1))[1];
    } else {
      if (n->a.scale[0] < 1 || n->a.scale[1] < 1 || n->a.scale[0] > 64 || n->a.scale[1] > 64)
        return BAD("node '%s' (%s): bad scale %dx%d", n->name, n->src_op, n->a.scale[0], n->a.scale[1]);
      h = x->shape[1] * n->a.scale[0], w = x->shape[2] * n->a.scale[1];
    }
    if (h < 1 || w < 1 || h > 65536 || w > 65536)
      return BAD("node '%s' (%s): bad size %lldx%lld", n->name, n->src_op, (long long)h, (long long)w);
    if (x->shape[1] < 1 || x->shape[2] < 1) return BAD("node '%s' (%s): empty input", n->name, n->src_op);
    shp[0] = x->shape[0], shp[1] = h, shp[2] = w, shp[3] = x->shape[3];
    return set_shape(OUT(0), x->dtype, shp, 4);
  }
  case GG_OP_DEPTH_TO_SPACE: {
    int64_t bs = n->a.block_size;
    if (x->ndim != 4 || bs < 1 || bs > 64 || x->shape[3] % (bs * bs))
      return BAD("node '%s' (%s): needs a 4-D NHWC input whose %lld channels divide by block "
                 "size %lld squared, got %s",
                 n->name, n->src_op, (long long)(x->ndim == 4 ? x->shape[3] : 0), (long long)bs,
                 gg__shape_str(x->shape, x->ndim, sa, sizeof sa));
    if (x->shape[1] > GG_MAX_ELEMS / bs || x->shape[2] > GG_MAX_ELEMS / bs)
      return gg_errf(err, errlen, GG_ERANGE, "node '%s' (%s): output too large", n->name, n->src_op);
    shp[0] = x->shape[0], shp[1] = x->shape[1] * bs, shp[2] = x->shape[2] * bs;
    shp[3] = x->shape[3] / (bs * bs);
    return set_shape(OUT(0), x->dtype, shp, 4);
  }
  case GG_OP_SPARSE_TO_DENSE: {
    if ((rc = const_ints(n, IN(0), "sparse_indices", GG_MAX_ELEMS, err, errlen))) return rc;
    if ((rc = const_ints(n, IN(1), "output_shape", GG_MAX_DIMS, err, errlen))) return rc;
    if (!IN(2)->data || !IN(3)->data || IN(3)->nelem != 1 || IN(2)->dtype != IN(3)->dtype)
      return BAD("node '%s' (SparseToDense): values and default must be constants of one type", n->name);
    nd = (int)IN(1)->nelem;
    for (int i = 0; i < nd; i++) {
      if (I32(IN(1))[i] < 0) return BAD("node '%s' (SparseToDense): negative output dim", n->name);
      shp[i] = I32(IN(1))[i];
    }
    return set_shape(OUT(0), IN(2)->dtype, shp, nd);
  }
  default:
    if (GG_OP_IS_GROUP_E(n->op)) return gg__elem_infer(n, vals, err, errlen);
    if (GG_OP_IS_GROUP_S(n->op)) return gg__shape_infer(n, vals, err, errlen);
    if (GG_OP_IS_GROUP_W(n->op)) return gg__window_infer(n, vals, err, errlen);
    if (n->op == GG_OP_EINSUM) return gg__einsum_infer(n, vals, err, errlen);
    if (GG_OP_IS_GROUP_X(n->op)) return gg__extra_infer(n, vals, err, errlen);
    return gg_errf(err, errlen, GG_EUNSUPPORTED, "node '%s': op %s has no shape rule", n->name, n->src_op);
  }
#undef BAD
}
