/* The two CPU backends: "naive" (the reference kernels of ops.c, every op)
 * and "xnnpack" (XNNPACK operators for the ops it covers, created and bound
 * once per session; weights packed then). Both keep their tensors in host
 * memory ("engine/arena", accounted by gg_host_alloc), so they form one
 * memory domain and the scheduler gives a node to xnnpack when its prepare
 * takes it and to naive otherwise, exactly node by node. */
#include "engine/backend.h"
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "engine/xnn.h"
#include "gpuguard/error.h"
#include "gpuguard/memory.h"

#ifdef GG_HAVE_PTHREADPOOL
#include <pthreadpool.h>
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ host buffers */

static void host_buf_free(gg_backend_buffer *b) {
  gg_host_free(b->ctx);
  free(b);
}

static void *host_buf_ptr(gg_backend_buffer *b, uint64_t off) {
  return (uint8_t *)b->ctx + off;
}

static const gg_backend_buffer_i k_host_buf = {host_buf_free, host_buf_ptr, NULL, NULL};

/* The host buffer type: accounted host memory. */
static int host_buffer_alloc(gg_backend *be, uint64_t size, const char *owner,
                             gg_backend_buffer **out) {
  *out = NULL;
  gg_backend_buffer *b = calloc(1, sizeof *b);
  void *p = b ? gg_host_alloc(owner, (size_t)(size ? size : 1)) : NULL;
  if (!p) {
    free(b);
    return GG_ENOMEM;
  }
  /* Not zeroed: every tensor is written before it is read (the arena is
   * reused between tensors anyway, as the sim's pool buffers are), and
   * zeroing a multi-GiB arena faulted in every page up front: 1.3 s of a
   * 3.4 GiB esrgan-slim x8 session (docs/upscale.md). */
  b->iface = &k_host_buf, b->ctx = p, b->backend = be, b->size = size;
  *out = b;
  return 0;
}

/* XNNPACK may read GG_XNN_EXTRA_BYTES past an input; the naive kernels share
 * the arena with it, so both host backends ask for the same slack. */
static uint64_t host_read_slack(gg_backend *be) {
  (void)be;
  return GG_XNN_EXTRA_BYTES;
}

/* ------------------------------------------------------------ naive */

typedef struct naive_ctx {
  struct pthreadpool *pool;
  gg__kctx kctx;
} naive_ctx;

static int naive_supports(gg_backend *be, const gg_node *n, const gg_tval *vals) {
  (void)be, (void)vals;
  return n->op != GG_OP_CONST && n->op != GG_OP_PLACEHOLDER && n->op < GG_OP_COUNT;
}

static int naive_run(gg_backend *be, const gg_node *n, gg_tval *vals, void *state) {
  (void)state;
  naive_ctx *c = be->ctx;
  return gg__op_run(n, vals, &c->kctx);
}

static void naive_free(gg_backend *be) {
  naive_ctx *c = be->ctx;
#ifdef GG_HAVE_PTHREADPOOL
  if (c->pool) pthreadpool_destroy(c->pool);
#endif
  free(c);
  free(be);
}

static const gg_backend_i k_naive = {
    .name = "naive",
    .supports_node = naive_supports,
    .buffer_alloc = host_buffer_alloc,
    .read_slack = host_read_slack,
    .run_node = naive_run,
    .free = naive_free,
};

static int naive_init(const gg_backend_params *p, gg_backend **out, char *err, size_t errlen) {
  (void)err, (void)errlen;
  gg_backend *be = calloc(1, sizeof *be);
  naive_ctx *c = calloc(1, sizeof *c);
  if (!be || !c) {
    free(be), free(c);
    return GG_ENOMEM;
  }
#ifdef GG_HAVE_PTHREADPOOL
  if (p && p->threads > 1) {
    c->pool = pthreadpool_create((size_t)p->threads);
    if (!c->pool) {
      free(be), free(c);
      return GG_ENOMEM;
    }
  }
#else
  (void)p;
#endif
  c->kctx.pool = c->pool;
  be->iface = &k_naive, be->ctx = c;
  *out = be;
  return 0;
}

const gg_backend_reg gg__backend_naive = {"naive", -1, naive_init};

/* ------------------------------------------------------------ xnnpack */

typedef struct xnn_ctx {
  gg_xnn_threadpool *pool;
} xnn_ctx;

/* Per-node state: the operator, and what runs in place after it. */
typedef struct xnn_node {
  gg_xnn_op *xnn;  /* NULL: XNNPACK did not take the node */
  gg_xnn_op *post; /* in-place activation after the XNN op (LeakyRelu) */
  int post_prelu;  /* naive in-place PReLU after the XNN op */
  /* Concat: one strided copy per non-empty input (xnn = parts[0]); part i
   * copies input part_in[i] to the output at element part_off[i] */
  int n_parts;
  gg_xnn_op **parts;
  int *part_in;
  size_t *part_off;
} xnn_node;

/* Concat as strided row copies (XNNPACK's copy_nc_x32: floats and int32
 * alike): rows = the output dims before the axis, each input's row is its
 * dims from the axis on, written at its offset within the output row. */
static int xnn_concat_make(const gg_node *n, const gg_tval *v, gg_xnn_threadpool *tp,
                           xnn_node *ex) {
  const gg_tval *y = &v[n->out[0]], *av = &v[n->in[n->n_in - 1]];
  if (y->nelem <= 0 || !av->data || av->nelem != 1 || av->dtype != GG_DT_I32) return 0;
  int ax = ((const int32_t *)av->data)[0];
  if (ax < 0) ax += y->ndim;
  if (ax < 0 || ax >= y->ndim) return 0;
  int64_t rows = 1;
  for (int d = 0; d < ax; d++)
    rows *= y->shape[d];
  if (rows <= 0) return 0;
  int64_t width = y->nelem / rows, off = 0;
  ex->parts = calloc((size_t)n->n_in, sizeof *ex->parts);
  ex->part_in = calloc((size_t)n->n_in, sizeof *ex->part_in);
  ex->part_off = calloc((size_t)n->n_in, sizeof *ex->part_off);
  if (!ex->parts || !ex->part_in || !ex->part_off) return GG_ENOMEM;
  for (int k = 0; k < n->n_in - 1; k++) {
    const gg_tval *x = &v[n->in[k]];
    if (x->dtype != y->dtype || gg__dtype_size(x->dtype) != 4) return GG_EUNSUPPORTED;
    int64_t w = x->nelem / rows;
    if (w <= 0) continue;
    int rc = gg_xnn_copy_strided_new((size_t)rows, (size_t)w, (size_t)w, (size_t)width, tp,
                                     &ex->parts[ex->n_parts]);
    if (rc) return rc;
    ex->part_in[ex->n_parts] = n->in[k];
    ex->part_off[ex->n_parts++] = (size_t)off;
    off += w;
  }
  ex->xnn = ex->n_parts ? ex->parts[0] : NULL;
  return 0;
}

static gg_xnn_act xact(gg_act a) {
  return a == GG_ACT_RELU    ? GG_XNN_ACT_RELU
         : a == GG_ACT_RELU6 ? GG_XNN_ACT_RELU6
                             : GG_XNN_ACT_NONE;
}

/* BatchMatMul runs as one XNNPACK fully-connected op when b is a constant
 * matrix (its batch dims, if any, all 1) and nothing is empty. */
static int xnn_bmm_ok(const gg_node *n, const gg_tval *v) {
  const gg_tval *a = &v[n->in[0]], *b = &v[n->in[1]];
  if (!b->is_const || !b->data || a->dtype != GG_DT_F32 || a->nelem <= 0 || b->nelem <= 0)
    return 0;
  for (int d = 0; d + 2 < b->ndim; d++)
    if (b->shape[d] != 1) return 0;
  return a->shape[a->ndim - 1] > 0;
}

/* ConvTranspose: constant filter (and bias), output_padding < stride. */
static int xnn_deconv_ok(const gg_node *n, const gg_tval *v) {
  if (!v[n->in[1]].is_const || !v[n->in[1]].data || v[n->out[0]].nelem <= 0) return 0;
  if (n->n_in > 2 && (!v[n->in[2]].is_const || !v[n->in[2]].data)) return 0;
  for (int d = 0; d < 2; d++)
    if (n->a.output_padding[d] >= n->a.strides[d]) return 0;
  return 1;
}

/* Pow(x, 2) with a float x and a constant exponent 2 (the variance step of
 * a decomposed LayerNorm): XNNPACK's square, x * x, which is what powf(x, 2)
 * returns. */
static int xnn_pow_is_square(const gg_node *n, const gg_tval *v) {
  const gg_tval *x = &v[n->in[0]], *e = &v[n->in[1]], *y = &v[n->out[0]];
  if (x->dtype != GG_DT_F32 || y->dtype != GG_DT_F32 || !e->is_const || !e->data || e->nelem != 1 ||
      y->nelem != x->nelem || y->nelem <= 0)
    return 0;
  return e->dtype == GG_DT_F32 ? ((const float *)e->data)[0] == 2.0f
                               : ((const int32_t *)e->data)[0] == 2;
}

/* AvgPool: XNNPACK divides by the window's in-image part (ONNX
 * count_include_pad=0, or no padding at all) and has no ceil_mode. */
static int xnn_avgpool_ok(const gg_node *n, const gg_tval *v) {
  const gg_attrs *a = &n->a;
  int padded = a->padding == GG_PAD_SAME ||
               (a->padding == GG_PAD_EXPLICIT && (a->pads[0] || a->pads[1] || a->pads[2] || a->pads[3]));
  return v[n->out[0]].nelem > 0 && !a->ceil_mode && !(padded && a->count_include_pad);
}

/* ONNX Resize that is TF's ResizeBilinear (XNNPACK's): linear, float, the
 * scale exactly out/in, and half_pixel (pytorch_half_pixel with outputs > 1),
 * align_corners or asymmetric coordinates. Sets TF's two flags. */
static int xnn_resize_ok(const gg_node *n, const gg_tval *v, int *ac, int *hp) {
  const gg_attrs *a = &n->a;
  const gg_tval *x = &v[n->in[0]], *y = &v[n->out[0]];
  if (a->resize_mode != GG_RESIZE_LINEAR || x->dtype != GG_DT_F32 || y->nelem <= 0 ||
      a->exclude_outside)
    return 0;
  for (int d = 0; d < 2; d++) {
    double sc = a->scale_hw[d];
    if (a->out_hw[d] == -2) {
      if (n->n_in < 2 || !v[n->in[1]].data || v[n->in[1]].nelem != 4) return 0;
      sc = ((const float *)v[n->in[1]].data)[2 + d];
    } else if (a->out_hw[d] == -3) {
      sc = 0;
    }
    if (sc > 0 && sc * (double)x->shape[1 + d] != (double)y->shape[1 + d]) return 0;
    if (a->coord_mode == GG_COORD_PYTORCH_HALF_PIXEL && y->shape[1 + d] == 1) return 0;
  }
  switch (a->coord_mode) {
  case GG_COORD_HALF_PIXEL:
  case GG_COORD_PYTORCH_HALF_PIXEL: *ac = 0, *hp = 1; return 1;
  case GG_COORD_ALIGN_CORNERS: *ac = 1, *hp = 0; return 1;
  case GG_COORD_ASYMMETRIC: *ac = 0, *hp = 0; return 1;
  default: return 0;
  }
}

/* Creates the XNNPACK op for node n, or leaves ex->xnn NULL when the op is
 * not covered (the naive kernel runs it). Returns 0 or a creation error. */
static int xnn_make(xnn_ctx *c, const gg_node *n, gg_tval *v, xnn_node *ex) {
  const gg_tval *x = n->n_in ? &v[n->in[0]] : NULL, *y = &v[n->out[0]];
  gg_xnn_threadpool *tp = c->pool;
  int rc = 0;
  switch (n->op) {
  case GG_OP_CONV2D:
  case GG_OP_DEPTHWISE: {
    const gg_tval *w = &v[n->in[1]];
    if (!v[n->in[1]].is_const) return 0;
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
    p.groups =
        n->op == GG_OP_DEPTHWISE ? (uint32_t)p.in_c : (uint32_t)(p.in_c / (size_t)w->shape[2]);
    p.act = xact(n->a.act);
    rc = gg_xnn_conv2d_new(&p, w->data, n->a.has_bias ? v[n->in[2]].data : NULL, tp, &ex->xnn);
    break;
  }
  case GG_OP_MATMUL: {
    if (n->a.transpose_a || !v[n->in[1]].is_const) return 0;
    gg_xnn_fc_params p;
    memset(&p, 0, sizeof p);
    p.rows = (size_t)y->shape[0], p.in_ch = (size_t)x->shape[1], p.out_ch = (size_t)y->shape[1];
    p.transpose_b = n->a.transpose_b;
    p.act = xact(n->a.act);
    rc = gg_xnn_fc_new(&p, v[n->in[1]].data, n->a.has_bias ? v[n->in[2]].data : NULL, tp, &ex->xnn);
    break;
  }
  case GG_OP_BATCH_MATMUL: {
    /* A constant 2-D right operand (a projection): one fully-connected op
     * over all rows of a, whatever a's batch dims; same bytes out. */
    const gg_tval *b = &v[n->in[1]];
    if (!xnn_bmm_ok(n, v)) return 0;
    gg_xnn_fc_params p;
    memset(&p, 0, sizeof p);
    p.in_ch = (size_t)x->shape[x->ndim - 1];
    p.out_ch = b->ndim == 1 ? 1 : (size_t)b->shape[b->ndim - 1];
    p.rows = (size_t)(x->nelem / x->shape[x->ndim - 1]);
    rc = gg_xnn_fc_new(&p, b->data, NULL, tp, &ex->xnn);
    break;
  }
  case GG_OP_CONV_TRANSPOSE: {
    if (!xnn_deconv_ok(n, v)) return 0;
    const gg_tval *w = &v[n->in[1]];
    gg_xnn_deconv2d_params p;
    memset(&p, 0, sizeof p);
    p.batch = (size_t)x->shape[0], p.in_h = (size_t)x->shape[1], p.in_w = (size_t)x->shape[2];
    p.in_c = (size_t)x->shape[3], p.out_c = (size_t)y->shape[3];
    p.kernel_h = (uint32_t)w->shape[0], p.kernel_w = (uint32_t)w->shape[1];
    p.stride_h = (uint32_t)n->a.strides[0], p.stride_w = (uint32_t)n->a.strides[1];
    p.dilation_h = (uint32_t)n->a.dilations[0], p.dilation_w = (uint32_t)n->a.dilations[1];
    p.groups = (uint32_t)(n->a.groups < 1 ? 1 : n->a.groups);
    p.pad_top = (uint32_t)n->a.pads[0], p.pad_bottom = (uint32_t)n->a.pads[1];
    p.pad_left = (uint32_t)n->a.pads[2], p.pad_right = (uint32_t)n->a.pads[3];
    p.adj_h = (uint32_t)n->a.output_padding[0], p.adj_w = (uint32_t)n->a.output_padding[1];
    p.act = xact(n->a.act); /* Relu / Relu6 only (fold.c fuses no other) */
    rc = gg_xnn_deconv2d_new(&p, w->data, n->n_in > 2 ? v[n->in[2]].data : NULL, tp, &ex->xnn);
    break;
  }
  case GG_OP_MAXPOOL:
  case GG_OP_AVGPOOL: {
    if (n->op == GG_OP_MAXPOOL ? n->a.ceil_mode : !xnn_avgpool_ok(n, v)) return 0;
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
    rc = n->op == GG_OP_MAXPOOL ? gg_xnn_max_pool2d_new(&p, tp, &ex->xnn)
                                : gg_xnn_avg_pool2d_new(&p, tp, &ex->xnn);
    break;
  }
  case GG_OP_ADD:
  case GG_OP_SUB:
  case GG_OP_MUL:
  case GG_OP_DIV:
  case GG_OP_MAXIMUM:
  case GG_OP_MINIMUM: {
    if (y->dtype != GG_DT_F32 || x->dtype != GG_DT_F32 || v[n->in[1]].dtype != GG_DT_F32) return 0;
    const gg_tval *b = &v[n->in[1]];
    gg_xnn_binary_params p;
    memset(&p, 0, sizeof p);
    p.op = n->op == GG_OP_ADD       ? GG_XNN_ADD
           : n->op == GG_OP_SUB     ? GG_XNN_SUB
           : n->op == GG_OP_MUL     ? GG_XNN_MUL
           : n->op == GG_OP_DIV     ? GG_XNN_DIV
           : n->op == GG_OP_MAXIMUM ? GG_XNN_MAX
                                    : GG_XNN_MIN;
    p.a_ndim = (size_t)x->ndim, p.b_ndim = (size_t)b->ndim;
    for (int d = 0; d < x->ndim; d++)
      p.a_shape[d] = (size_t)x->shape[d];
    for (int d = 0; d < b->ndim; d++)
      p.b_shape[d] = (size_t)b->shape[d];
    p.act = xact(n->a.act);
    rc = gg_xnn_binary_new(&p, tp, &ex->xnn);
    break;
  }
  case GG_OP_RELU:
  case GG_OP_RELU6:
  case GG_OP_LEAKY_RELU:
  case GG_OP_SIGMOID:
  case GG_OP_ABS:
  case GG_OP_SQUARE:
  case GG_OP_HARD_SWISH:
  case GG_OP_CLIP:
  case GG_OP_POW: {
    if (x->dtype != GG_DT_F32 || y->dtype != GG_DT_F32) return 0;
    if (n->op == GG_OP_POW && !xnn_pow_is_square(n, v)) return 0;
    if (n->op == GG_OP_CLIP && !(n->a.clip_min <= n->a.clip_max)) return 0; /* naive's rule */
    gg_xnn_unary_params p;
    memset(&p, 0, sizeof p);
    p.op = n->op == GG_OP_RELU         ? GG_XNN_RELU
           : n->op == GG_OP_RELU6      ? GG_XNN_RELU6
           : n->op == GG_OP_LEAKY_RELU ? GG_XNN_LEAKY_RELU
           : n->op == GG_OP_SIGMOID    ? GG_XNN_SIGMOID
           : n->op == GG_OP_ABS        ? GG_XNN_ABS
           : n->op == GG_OP_HARD_SWISH ? GG_XNN_HARDSWISH
           : n->op == GG_OP_CLIP       ? GG_XNN_CLAMP
                                       : GG_XNN_SQUARE; /* and Pow(x, 2) */
    p.count = (size_t)y->nelem;
    p.alpha = n->a.alpha;
    p.clamp_min = n->a.clip_min, p.clamp_max = n->a.clip_max;
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
    gg_xnn_resize_params p = {(size_t)x->shape[0], (size_t)x->shape[1],    (size_t)x->shape[2],
                              (size_t)x->shape[3], (size_t)y->shape[1],    (size_t)y->shape[2],
                              n->a.align_corners,  n->a.half_pixel_centers};
    rc = gg_xnn_resize_bilinear_new(&p, tp, &ex->xnn);
    break;
  }
  case GG_OP_RESIZE: {
    int ac = 0, hp = 0;
    if (!xnn_resize_ok(n, v, &ac, &hp)) return 0;
    gg_xnn_resize_params p = {(size_t)x->shape[0], (size_t)x->shape[1], (size_t)x->shape[2],
                              (size_t)x->shape[3], (size_t)y->shape[1], (size_t)y->shape[2], ac, hp};
    rc = gg_xnn_resize_bilinear_new(&p, tp, &ex->xnn);
    break;
  }
  case GG_OP_PAD: {
    if (x->dtype != GG_DT_F32 || !x->nelem || x->ndim < 1 || n->a.pad_mode != GG_PADMODE_CONSTANT)
      return 0;
    size_t shp[GG_MAX_DIMS], pre[GG_MAX_DIMS], post[GG_MAX_DIMS];
    const int32_t *pd = v[n->in[1]].data;
    for (int d = 0; d < x->ndim; d++)
      shp[d] = (size_t)x->shape[d], pre[d] = (size_t)pd[2 * d], post[d] = (size_t)pd[2 * d + 1];
    float val = n->n_in > 2 ? *(const float *)v[n->in[2]].data : 0.0f;
    rc = gg_xnn_pad_new((size_t)x->ndim, shp, pre, post, val, tp, &ex->xnn);
    break;
  }
  case GG_OP_CONCAT: return xnn_concat_make(n, v, tp, ex);
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
  default: return 0;
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

static int xnn_bind(const gg_node *n, gg_tval *v, const xnn_node *ex) {
  float *y = v[n->out[0]].data;
  for (int i = 0; i < ex->n_parts; i++) {
    int rc = gg_xnn_op_bind(ex->parts[i], v[ex->part_in[i]].data, NULL, y + ex->part_off[i]);
    if (rc) return rc;
  }
  if (ex->n_parts) return 0;
  const float *a = v[n->in[0]].data;
  const float *b = NULL;
  if (n->op == GG_OP_ADD || n->op == GG_OP_SUB || n->op == GG_OP_MUL || n->op == GG_OP_DIV ||
      n->op == GG_OP_MAXIMUM || n->op == GG_OP_MINIMUM)
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
    for (int64_t i = 0; i < y->nelem; i++)
      d[i] = d[i] > 0 ? d[i] : d[i] * a[0];
    return;
  }
  for (int64_t i = 0; i < y->nelem; i += c)
    for (int64_t k = 0; k < c; k++)
      d[i + k] = d[i + k] > 0 ? d[i + k] : d[i + k] * a[k];
}

static int xnnpack_supports(gg_backend *be, const gg_node *n, const gg_tval *v) {
  (void)be;
  switch (n->op) {
  case GG_OP_CONV2D:
  case GG_OP_DEPTHWISE: return v[n->in[1]].is_const;
  case GG_OP_MATMUL: return !n->a.transpose_a && v[n->in[1]].is_const;
  case GG_OP_ADD:
  case GG_OP_SUB:
  case GG_OP_MUL:
  case GG_OP_MAXIMUM:
  case GG_OP_MINIMUM: return v[n->out[0]].dtype == GG_DT_F32;
  case GG_OP_DIV: /* F32 only: I32 division has its own rules (x / 0 = 0) */
    return v[n->out[0]].dtype == GG_DT_F32 && v[n->in[0]].dtype == GG_DT_F32 &&
           v[n->in[1]].dtype == GG_DT_F32 && v[n->out[0]].nelem > 0;
  case GG_OP_HARD_SWISH: return v[n->out[0]].nelem > 0 && v[n->in[0]].dtype == GG_DT_F32;
  case GG_OP_POW: return xnn_pow_is_square(n, v);
  case GG_OP_CLIP:
    return v[n->out[0]].nelem > 0 && v[n->in[0]].dtype == GG_DT_F32 &&
           n->a.clip_min <= n->a.clip_max;
  case GG_OP_PAD:
    return v[n->in[0]].dtype == GG_DT_F32 && v[n->in[0]].nelem > 0 &&
           n->a.pad_mode == GG_PADMODE_CONSTANT;
  case GG_OP_MEAN: return v[n->in[0]].ndim == 4 && v[n->in[1]].nelem == 2;
  case GG_OP_CONCAT: /* floats or int32, a known axis */
    return v[n->out[0]].nelem > 0 && gg__dtype_size(v[n->out[0]].dtype) == 4 &&
           v[n->in[n->n_in - 1]].data != NULL && v[n->in[n->n_in - 1]].nelem == 1;
  case GG_OP_BATCH_MATMUL: return xnn_bmm_ok(n, v);
  case GG_OP_CONV_TRANSPOSE: return xnn_deconv_ok(n, v);
  case GG_OP_AVGPOOL: return xnn_avgpool_ok(n, v);
  case GG_OP_RESIZE: { /* in a quantized graph, the reference kernel (graph.h) */
    int ac, hp;
    return !n->a.quantized && xnn_resize_ok(n, v, &ac, &hp);
  }
  case GG_OP_MAXPOOL: return v[n->out[0]].nelem > 0 && !n->a.ceil_mode; /* naive: ONNX ceil_mode */
  case GG_OP_RELU:
  case GG_OP_RELU6:
  case GG_OP_LEAKY_RELU:
  case GG_OP_SIGMOID:
  case GG_OP_ABS:
  case GG_OP_SQUARE:
  case GG_OP_SOFTMAX:
  case GG_OP_RESIZE_BILINEAR: return v[n->out[0]].nelem > 0;
  default: return 0;
  }
}

static void xnnpack_release(gg_backend *be, void *state) {
  (void)be;
  xnn_node *ex = state;
  if (!ex) return;
  if (ex->parts) {
    for (int i = 0; i < ex->n_parts; i++)
      gg_xnn_op_free(ex->parts[i]);
  } else {
    gg_xnn_op_free(ex->xnn);
  }
  free(ex->parts);
  free(ex->part_in);
  free(ex->part_off);
  gg_xnn_op_free(ex->post);
  free(ex);
}

/* Creates and binds the node's operator(s). GG_EUNSUPPORTED when XNNPACK
 * does not take these parameters after all: the naive kernel runs it. */
static int xnnpack_prepare(gg_backend *be, const gg_node *n, gg_tval *vals, void **state,
                           uint64_t *workspace) {
  xnn_node *ex = calloc(1, sizeof *ex);
  if (!ex) return GG_ENOMEM;
  int rc = xnn_make(be->ctx, n, vals, ex);
  if (!rc && !ex->xnn) rc = GG_EUNSUPPORTED;
  if (!rc) rc = xnn_bind(n, vals, ex);
  if (rc) {
    xnnpack_release(be, ex);
    return rc;
  }
  *workspace = ex->n_parts ? 0 : gg_xnn_op_bytes(ex->xnn);
  for (int i = 0; i < ex->n_parts; i++)
    *workspace += gg_xnn_op_bytes(ex->parts[i]);
  *workspace += ex->post ? gg_xnn_op_bytes(ex->post) : 0;
  *state = ex;
  return 0;
}

static int xnnpack_run(gg_backend *be, const gg_node *n, gg_tval *vals, void *state) {
  (void)be;
  xnn_node *ex = state;
  int rc = 0;
  for (int i = 1; i < ex->n_parts && !rc; i++) /* parts[0] is ex->xnn */
    rc = gg_xnn_op_run(ex->parts[i]);
  if (!rc) rc = gg_xnn_op_run(ex->xnn);
  if (!rc && ex->post) rc = gg_xnn_op_run(ex->post);
  if (!rc && ex->post_prelu) prelu_inplace(n, vals);
  return rc;
}

/* End of a run: the pool's workers sleep instead of spinning until the
 * next run's first parallel op. */
static int xnnpack_synchronize(gg_backend *be) {
  gg_xnn_threadpool_rest(((xnn_ctx *)be->ctx)->pool);
  return 0;
}

static void xnnpack_free(gg_backend *be) {
  xnn_ctx *c = be->ctx;
  gg_xnn_threadpool_free(c->pool);
  free(c);
  free(be);
}

static const gg_backend_i k_xnnpack = {
    .name = "xnnpack",
    .supports_node = xnnpack_supports,
    .buffer_alloc = host_buffer_alloc,
    .read_slack = host_read_slack,
    .prepare = xnnpack_prepare,
    .release = xnnpack_release,
    .run_node = xnnpack_run,
    .synchronize = xnnpack_synchronize,
    .free = xnnpack_free,
};

static int xnnpack_init(const gg_backend_params *p, gg_backend **out, char *err, size_t errlen) {
  if (!gg_xnn_available()) {
    snprintf(err, errlen, "XNNPACK is not part of this build (install libxnnpack-dev and rebuild)");
    return GG_ENOTIMPL;
  }
  gg_backend *be = calloc(1, sizeof *be);
  xnn_ctx *c = calloc(1, sizeof *c);
  if (!be || !c) {
    free(be), free(c);
    return GG_ENOMEM;
  }
  int rc = gg_xnn_threadpool_new(p && p->threads > 1 ? p->threads : 1, &c->pool);
  if (rc) {
    snprintf(err, errlen, "cannot create the XNNPACK thread pool (%s)", gg_strerror(rc));
    free(be), free(c);
    return rc;
  }
  be->iface = &k_xnnpack, be->ctx = c;
  *out = be;
  return 0;
}

const gg_backend_reg gg__backend_xnnpack = {"xnnpack", -1, xnnpack_init};
