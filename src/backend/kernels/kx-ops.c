/* The GPU backends' op dispatch (kx.h): maps each node of the engine IR onto
 * the kernels of kernels.cl (or GEMM), computing the launch geometry and the
 * scalar arguments on the host, for OpenCL and CUDA alike. Shape rules and
 * attribute meanings are those of src/engine/ops.c, whose naive kernels are
 * the oracle in tests/test-opencl-ops.c. */
#include "backend/kernels/kx.h"
#include "engine/backend.h"
#include "engine/engine-impl.h"
#include "gpuguard/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NELEM(a) ((int)(sizeof(a) / sizeof *(a)))

static const char *const k_kernel_names[K_COUNT] = {
    "gg_conv2d",          "gg_depthwise",  "gg_gemm",        "gg_bias_act",
    "gg_binary",          "gg_unary",      "gg_softmax",     "gg_reduce",
    "gg_maxpool",         "gg_pad",        "gg_transpose",   "gg_copy2d",
    "gg_resize_bilinear", "gg_im2col",     "gg_transpose2d", "gg_compare",
    "gg_where",           "gg_unary_bits", "gg_gather",      "gg_avgpool",
    "gg_conv_transpose",  "gg_bmm",        "gg_layer_norm",  "gg_resize",
    "gg_log_softmax",     "gg_tile",       "gg_group_norm",  "gg_depth_to_space",
    "gg_resize_nearest",  "gg_quant"};

int gg__kx_copy_params(const gg_node *n, const gg_tval *vals, gg_tval *params) {
  for (int k = 0; k < n->n_in; k++) {
    const gg_tval *t = &vals[n->in[k]];
    if (!gg__kx_param_input(n, k)) continue;
    size_t bytes = (size_t)t->nelem * gg__dtype_size(t->dtype);
    params[k] = *t;
    params[k].data = malloc(bytes ? bytes : 1);
    int rc = params[k].data ? 0 : GG_ENOMEM;
    if (!rc && t->data) memcpy(params[k].data, t->data, bytes);
    else if (!rc && t->buf) rc = gg_backend_buffer_get(t->buf, t->offs, params[k].data, bytes);
    else if (!rc) rc = GG_ESTATE;
    if (rc) return rc;
  }
  return 0;
}

const char *gg__kx_kernel_name(int k) { return k >= 0 && k < K_COUNT ? k_kernel_names[k] : NULL; }

/* One fixed work-group shape per grid rank rather than the driver's pick:
 * PoCL compiles a kernel again for every new local size, so letting it
 * choose per shape costs a compile per tensor size. Depth 1, so dim 2 is
 * never rounded (kx.h). */
const size_t gg__kx_local[3][3] = {{64, 1, 1}, {16, 4, 1}, {8, 4, 1}};

/* Element offset of an argument (byte offsets are multiples of 4). */
static uint64_t eo(const gg_kx_arg *a) { return a->off / 4; }

static const int32_t *ints(const gg_kx_arg *a) { return (const int32_t *)a->v->data; }

static int norm_axis(int64_t ax, int nd) {
  int a = 0;
  gg__norm_axis(ax, nd, &a); /* shape inference already checked the range */
  return a;
}

int gg__kx_param_input(const gg_node *n, int k) {
  switch (n->op) {
  case GG_OP_SUM:
  case GG_OP_MEAN:
  case GG_OP_RESHAPE:
  case GG_OP_TRANSPOSE:
  case GG_OP_RESIZE_BILINEAR:
  case GG_OP_RESIZE:
  case GG_OP_REDUCE_MAX:
  case GG_OP_REDUCE_MIN:
  case GG_OP_REDUCE_L2:
  case GG_OP_EXPAND:
  case GG_OP_TILE:
  case GG_OP_RESIZE_NEAREST: return k == 1;
  case GG_OP_PAD:
  case GG_OP_SPLITV: return k >= 1;
  case GG_OP_CONCAT: return k == n->n_in - 1;
  default: return 0;
  }
}

/* Leading padding of one spatial dim, as TF computes it (SAME puts the odd
 * pixel after). */
int gg__kx_pad_before(const gg_node *n, int dim, int64_t in, int k, int s, int d) {
  int64_t o;
  int pb = 0;
  gg__window(in, k, s, d, n->a.padding, n->a.pads[2 * dim], n->a.pads[2 * dim + 1], &o, &pb);
  return pb;
}

/* Gather runs on the device when its indices are constants, checked here
 * (an index out of range is the reference kernel's GG_ERANGE at run). */
static const char *gather_check(const gg_node *n, const gg_kx_arg *in) {
  const gg_tval *x = in[0].v, *ix = in[1].v;
  int ax = 0;
  if (gg__norm_axis(n->a.axis, x->ndim, &ax)) return "bad axis";
  if (!ix->is_const || !ix->data) return "computed indices run on the CPU (range check)";
  for (int64_t k = 0; k < ix->nelem; k++) {
    int32_t v = ((const int32_t *)ix->data)[k];
    if (v < -x->shape[ax] || v >= x->shape[ax]) return "an index is out of range";
  }
  return NULL;
}

int gg__kx_supports(const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out,
                     const char **why) {
  const char *w = NULL;
  for (int k = 0; k < n->n_in && !w; k++)
    if (in[k].v->ndim > 8) w = "more than 8 dims";
  if (n->op == GG_OP_PAD && n->a.pad_mode != GG_PADMODE_CONSTANT) w = "reflect/edge padding runs on the CPU";
  int isf = n->n_out && out[0].v->dtype == GG_DT_F32;
  switch (n->op) {
  case GG_OP_IDENTITY:
  case GG_OP_RESHAPE:
  case GG_OP_SQUEEZE:
  case GG_OP_PAD:
  case GG_OP_TRANSPOSE:
  case GG_OP_CONCAT:
  case GG_OP_SPLITV:
    break; /* data movement: any 4-byte dtype */
  case GG_OP_CONV2D: {
    int64_t fci = in[1].v->shape[2], groups = fci > 0 ? in[0].v->shape[3] / fci : 0;
    if (groups < 1) w = "filter channels do not divide the input channels";
    else if (groups > 1 && (in[1].v->shape[3] / groups) % 4)
      w = "grouped convolution with a group width not a multiple of 4";
    break;
  }
  case GG_OP_DEPTHWISE:
  case GG_OP_MATMUL:
  case GG_OP_ADD:
  case GG_OP_SUB:
  case GG_OP_MUL:
  case GG_OP_MAXIMUM:
  case GG_OP_MINIMUM:
  case GG_OP_PRELU:
  case GG_OP_ABS:
  case GG_OP_SQUARE:
  case GG_OP_RSQRT:
  case GG_OP_RELU:
  case GG_OP_RELU6:
  case GG_OP_LEAKY_RELU:
  case GG_OP_SIGMOID:
  case GG_OP_SOFTMAX:
  case GG_OP_SUM:
  case GG_OP_MEAN:
  case GG_OP_MAXPOOL:
  case GG_OP_RESIZE_BILINEAR:
  case GG_OP_SQRT:
  case GG_OP_EXP:
  case GG_OP_LOG:
  case GG_OP_RECIPROCAL:
  case GG_OP_ERF:
  case GG_OP_TANH:
  case GG_OP_SOFTPLUS:
  case GG_OP_HARD_SIGMOID:
  case GG_OP_HARD_SWISH:
  case GG_OP_GELU:
    if (!isf) w = "int32 arithmetic runs on the CPU";
    break;
  case GG_OP_DIV:
  case GG_OP_POW:
    /* int Div (C truncation, x/0 = 0) and Pow with an int operand (pow in
     * double) stay with the reference kernel */
    if (!isf || in[0].v->dtype != GG_DT_F32 || in[1].v->dtype != GG_DT_F32)
      w = "int32 Div/Pow runs on the CPU";
    break;
  case GG_OP_EQUAL:
  case GG_OP_GREATER:
  case GG_OP_LESS:
  case GG_OP_NOT:
  case GG_OP_WHERE:
  case GG_OP_CAST:
    /* the device casts F32 <-> I32 and rounds F32 to float16 (a float16
     * model's Casts); bfloat16, the narrow ints and bool are the naive
     * kernel's (ops-elem.c) */
    if (n->a.cast_kind == GG_CAST_F16 && n->op == GG_OP_CAST && in[0].v->dtype == GG_DT_F32) break;
    if (n->a.cast_kind != GG_CAST_NONE)
      w = "Cast to bfloat16/narrow ints/bool, or an int to float16, runs on the CPU";
    break;
  case GG_OP_NEG:
  case GG_OP_CLIP:
  case GG_OP_SLICE:
  case GG_OP_EXPAND:
  case GG_OP_TILE:
  case GG_OP_DEPTH_TO_SPACE:
  case GG_OP_RESIZE_NEAREST: break; /* F32 and I32 */
  case GG_OP_LOG_SOFTMAX:
  case GG_OP_REDUCE_MAX:
  case GG_OP_REDUCE_MIN:
  case GG_OP_REDUCE_L2:
  case GG_OP_INSTANCE_NORM:
  case GG_OP_GROUP_NORM:
    if (!isf) w = "int32 arithmetic runs on the CPU";
    break;
  case GG_OP_GATHER: w = gather_check(n, in); break;
  case GG_OP_AVGPOOL:
  case GG_OP_BATCH_MATMUL:
    if (!isf) w = "int32 arithmetic runs on the CPU";
    break;
  case GG_OP_CONV_TRANSPOSE:
    if (!isf)
      w = "int32 arithmetic runs on the CPU";
    else if (n->a.act != GG_ACT_NONE && n->a.act != GG_ACT_RELU && n->a.act != GG_ACT_RELU6)
      w = "fused activation other than Relu/Relu6";
    break;
  case GG_OP_LAYER_NORM:
    if (!isf) w = "int32 arithmetic runs on the CPU";
    break;
  case GG_OP_RESIZE:
    if (!isf)
      w = "int32 Resize runs on the CPU";
    else if (n->a.resize_mode == GG_RESIZE_CUBIC)
      w = "cubic Resize runs on the CPU";
    break;
  case GG_OP_QUANTIZE:
    if (in[0].v->dtype != GG_DT_F32) w = "Quantize of an int32 input runs on the CPU";
    break;
  case GG_OP_DEQUANTIZE:
    if (in[0].v->dtype != GG_DT_I32) w = "Dequantize of a float input runs on the CPU";
    break;
  default: w = "no GPU kernel for this op"; break;
  }
  /* A quantized graph (graph.h, attrs.quantized): rounding to 8 bits turns a
   * last-bit difference into a whole step, so where the reference kernel
   * computes ONNX Runtime's result to the bit and a device may not, the
   * reference runs it: a bilinear Resize (the device compiles its weighting
   * with fused multiply-adds) and float division (OpenCL's is not correctly
   * rounded by default). */
  if (!w && n->a.quantized &&
      (n->op == GG_OP_RESIZE || n->op == GG_OP_RESIZE_BILINEAR || n->op == GG_OP_DIV))
    w = "in a quantized graph the reference kernel runs it (its last bit matters)";
  if (why) *why = w;
  return w == NULL;
}

/* Shape and strides of up to 8 dims as int8 kernel arguments (OpenCL int8,
 * cl-compat.cuh's int8 in CUDA: 32 bytes either way). */
typedef struct int8v {
  int32_t v[8];
} int8v;

static int8v dims_of(const gg_tval *t, int fill) {
  int8v r;
  for (int d = 0; d < 8; d++) r.v[d] = d < t->ndim ? (int32_t)t->shape[d] : fill;
  return r;
}

/* Strides of t read as the nd-dim output shape oshape (0 on broadcast dims). */
static int8v bstrides(const gg_tval *t, int nd, const int64_t *oshape) {
  int8v r = {{0}};
  int64_t s = 1;
  for (int i = nd - 1; i >= 0; i--) {
    int it = i - (nd - t->ndim);
    int64_t d = it >= 0 ? t->shape[it] : 1;
    r.v[i] = (d == 1 && oshape[i] != 1) ? 0 : (int32_t)s;
    s *= d;
  }
  return r;
}

typedef enum conv_algo { CONV_DIRECT = 0, CONV_GEMM_1X1, CONV_IM2COL } conv_algo;

/* Geometry of a Conv2D / depthwise node, and which algorithm fits it. */
typedef struct conv_geo {
  int B, H, W, CI, OH, OW, CO, KH, KW, sh, sw, dh, dw, pt, pl, groups;
  conv_algo algo;
} conv_geo;

static conv_geo conv_geometry(const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out) {
  const gg_tval *x = in[0].v, *wt = in[1].v, *y = out[0].v;
  conv_geo c;
  c.B = (int)x->shape[0], c.H = (int)x->shape[1], c.W = (int)x->shape[2], c.CI = (int)x->shape[3];
  c.OH = (int)y->shape[1], c.OW = (int)y->shape[2], c.CO = (int)y->shape[3];
  c.KH = (int)wt->shape[0], c.KW = (int)wt->shape[1];
  c.sh = n->a.strides[0], c.sw = n->a.strides[1], c.dh = n->a.dilations[0], c.dw = n->a.dilations[1];
  c.pt = gg__kx_pad_before(n, 0, c.H, c.KH, c.sh, c.dh);
  c.pl = gg__kx_pad_before(n, 1, c.W, c.KW, c.sw, c.dw);
  c.groups = n->op == GG_OP_CONV2D ? c.CI / (int)wt->shape[2] : 1;
  c.algo = CONV_DIRECT;
  if (n->op == GG_OP_CONV2D && c.groups == 1) {
    /* a 1x1 stride-1 unpadded convolution is a GEMM: [B*H*W, CI] x [CI, CO] */
    int one = c.KH == 1 && c.KW == 1 && c.sh == 1 && c.sw == 1 && c.OH == c.H && c.OW == c.W &&
              c.pt == 0 && c.pl == 0;
    c.algo = one ? CONV_GEMM_1X1 : CONV_IM2COL;
  }
  return c;
}

uint64_t gg__kx_workspace_bytes(const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out) {
  if (n->op != GG_OP_CONV2D) return 0;
  conv_geo c = conv_geometry(n, in, out);
  if (c.algo != CONV_IM2COL) return 0;
  uint64_t row = (uint64_t)c.KH * c.KW * c.CI * 4, all = row * (uint64_t)c.B * c.OH * c.OW;
  if (all <= GG_KX_IM2COL_MAX) return all;
  return row > GG_KX_IM2COL_MAX ? row : GG_KX_IM2COL_MAX / row * row;
}

/* The epilogue over C[M,N] (ldc = N) in place: bias, activation, PReLU.
 * Unused bias/PReLU arguments still need a valid memory handle: C's. */
int gg__kx_bias_act(gg_kx *o, const gg_node *n, const gg_kx_gemm_args *g, char *err,
                    size_t errlen) {
  if (!g->has_bias && g->act == GG_ACT_NONE) return 0;
  void *bias = g->has_bias ? g->bias : g->c, *pa = g->act == GG_ACT_PRELU ? g->prelu : g->c;
  uint64_t co = g->co, biaso = g->has_bias ? g->biaso : 0, pao = g->act == GG_ACT_PRELU ? g->preluo : 0;
  int has_bias = g->has_bias, M = g->M, N = g->N, pan = g->prelu_n, act = g->act;
  float alpha = g->alpha;
  gg_karg a[] = {KA(g->c),     KA(co), KA(N),   KA(M),   KA(bias), KA(biaso),
                 KA(has_bias), KA(pa), KA(pao), KA(pan), KA(act),  KA(alpha)};
  size_t gl[2] = {(size_t)N, (size_t)M};
  return o->launch(o, n, K_BIAS_ACT, 2, gl, NULL, a, NELEM(a), err, errlen);
}

/* C = op(A) op(B) + bias, activation on the built-in 16x16-tiled kernel. */
int gg__kx_gemm_kernel(gg_kx *o, const gg_node *n, const gg_kx_gemm_args *g, char *err,
                       size_t errlen) {
  void *bias = g->has_bias ? g->bias : g->c, *pa = g->act == GG_ACT_PRELU ? g->prelu : g->c;
  uint64_t ao = g->ao, bo = g->bo, co = g->co, biaso = g->biaso, pao = g->preluo;
  int lda = g->lda, ldb = g->ldb, ta = g->ta, tb = g->tb, ldc = g->N, M = g->M, N = g->N,
      K = g->K, has_bias = g->has_bias, pan = g->prelu_n, act = g->act;
  float alpha = g->alpha;
  gg_karg a[] = {KA(g->a), KA(ao),    KA(lda),      KA(ta), KA(g->b), KA(bo),  KA(ldb),
                 KA(tb),   KA(g->c),  KA(co),       KA(ldc), KA(M),   KA(N),   KA(K),
                 KA(bias), KA(biaso), KA(has_bias), KA(pa), KA(pao),  KA(pan), KA(act),
                 KA(alpha)};
  size_t gl[2] = {(size_t)N, (size_t)M}, lo[2] = {16, 16};
  return o->launch(o, n, K_GEMM, 2, gl, lo, a, NELEM(a), err, errlen);
}

/* im2col + GEMM over chunks of output pixels that fit the scratch buffer. */
static int run_im2col(gg_kx *o, const gg_node *n, const conv_geo *c, const gg_kx_arg *in,
                      const gg_kx_arg *out, gg_kx_gemm_args *g, char *err, size_t errlen) {
  int K = c->KH * c->KW * c->CI, M = c->B * c->OH * c->OW;
  int chunk = (int)(o->ws_bytes / ((uint64_t)K * 4) < (uint64_t)M ? o->ws_bytes / ((uint64_t)K * 4) : (uint64_t)M);
  uint64_t xo = eo(&in[0]), wso = o->ws_off / 4, yo = g->co;
  o->conv_im2col++;
  for (int row0 = 0; row0 < M; row0 += chunk) {
    int rows = M - row0 < chunk ? M - row0 : chunk;
    gg_karg a[] = {KA(in[0].mem), KA(xo),     KA(o->ws),  KA(wso),   KA(c->H),  KA(c->W),
                   KA(c->CI),     KA(c->OH),  KA(c->OW),  KA(c->KW), KA(c->sh), KA(c->sw),
                   KA(c->dh),     KA(c->dw),  KA(c->pt),  KA(c->pl), KA(row0),  KA(rows),
                   KA(K)};
    size_t gl[2] = {(size_t)K, (size_t)rows};
    int rc = o->launch(o, n, K_IM2COL, 2, gl, NULL, a, NELEM(a), err, errlen);
    /* the in-order queue runs this chunk's GEMM before the next im2col */
    g->a = o->ws, g->ao = wso, g->lda = K, g->M = rows, g->K = K;
    g->co = yo + (uint64_t)row0 * c->CO;
    if (!rc) rc = o->gemm(o, n, g, err, errlen);
    if (rc) return rc;
  }
  return 0;
}

static int run_conv(gg_kx *o, const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out,
                    char *err, size_t errlen) {
  conv_geo c = conv_geometry(n, in, out);
  int has_bias = n->a.has_bias, act = n->a.act, pan = 0;
  float alpha = n->a.alpha;
  const gg_kx_arg *bias = has_bias ? &in[2] : &out[0], *pa = &out[0];
  if (act == GG_ACT_PRELU) pa = &in[2 + has_bias], pan = (int)pa->v->nelem;
  uint64_t xo = eo(&in[0]), wo = eo(&in[1]), bo = eo(bias), pao = eo(pa), yo = eo(&out[0]);
  gg_kx_gemm_args g = {in[0].mem, in[1].mem, out[0].mem, bias->mem, pa->mem,
                        xo, wo, yo, bo, pao, c.CI, c.CO, 0, 0, c.B * c.H * c.W, c.CO, c.CI,
                        has_bias, pan, act, alpha};
  if (c.algo == CONV_GEMM_1X1) return o->gemm(o, n, &g, err, errlen);
  if (c.algo == CONV_IM2COL && o->ws_bytes >= (uint64_t)c.KH * c.KW * c.CI * 4)
    return run_im2col(o, n, &c, in, out, &g, err, errlen);
  o->conv_direct++;
  if (n->op == GG_OP_DEPTHWISE) {
    int mult = (int)in[1].v->shape[3];
    gg_karg a[] = {KA(in[0].mem), KA(xo), KA(in[1].mem), KA(wo), KA(bias->mem), KA(bo),
                   KA(has_bias), KA(pa->mem), KA(pao), KA(pan), KA(out[0].mem), KA(yo), KA(c.H),
                   KA(c.W), KA(c.CI), KA(c.OH), KA(c.OW), KA(c.CO), KA(c.KH), KA(c.KW), KA(mult),
                   KA(c.sh), KA(c.sw), KA(c.dh), KA(c.dw), KA(c.pt), KA(c.pl), KA(act), KA(alpha)};
    size_t gl[3] = {(size_t)(c.CO + 3) / 4, (size_t)c.OW, (size_t)c.B * c.OH};
    return o->launch(o, n, K_DEPTHWISE, 3, gl, NULL, a, NELEM(a), err, errlen);
  }
  int cig = c.CI / c.groups, cog = c.CO / c.groups;
  gg_karg a[] = {KA(in[0].mem), KA(xo), KA(in[1].mem), KA(wo), KA(bias->mem), KA(bo),
                 KA(has_bias), KA(pa->mem), KA(pao), KA(pan), KA(out[0].mem), KA(yo), KA(c.H),
                 KA(c.W), KA(c.CI), KA(c.OH), KA(c.OW), KA(c.CO), KA(c.KH), KA(c.KW), KA(cig),
                 KA(cog), KA(c.sh), KA(c.sw), KA(c.dh), KA(c.dw), KA(c.pt), KA(c.pl), KA(act),
                 KA(alpha)};
  size_t gl[3] = {(size_t)(c.CO + 3) / 4, (size_t)c.OW, (size_t)c.B * c.OH};
  return o->launch(o, n, K_CONV2D, 3, gl, NULL, a, NELEM(a), err, errlen);
}

static int run_matmul(gg_kx *o, const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out,
                      char *err, size_t errlen) {
  const gg_tval *A = in[0].v, *Bt = in[1].v, *y = out[0].v;
  int has_bias = n->a.has_bias, pan = 0;
  const gg_kx_arg *bias = has_bias ? &in[2] : &out[0], *pa = &out[0];
  if (n->a.act == GG_ACT_PRELU) pa = &in[2 + has_bias], pan = (int)pa->v->nelem;
  gg_kx_gemm_args g = {in[0].mem, in[1].mem, out[0].mem, bias->mem, pa->mem,
                        eo(&in[0]), eo(&in[1]), eo(&out[0]), eo(bias), eo(pa),
                        (int)A->shape[1], (int)Bt->shape[1], n->a.transpose_a, n->a.transpose_b,
                        (int)y->shape[0], (int)y->shape[1],
                        (int)(n->a.transpose_a ? A->shape[0] : A->shape[1]), has_bias, pan,
                        n->a.act, n->a.alpha};
  return o->gemm(o, n, &g, err, errlen);
}

static int run_binary(gg_kx *o, const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out,
                      char *err, size_t errlen) {
  const gg_tval *A = in[0].v, *Bv = in[1].v, *y = out[0].v;
  int nd = y->ndim, cnt = (int)y->nelem;
  int mode = (A->nelem == y->nelem ? 1 : 0) | (Bv->nelem == y->nelem ? 2 : 0);
  int8v shp = dims_of(y, 1), sa = bstrides(A, nd, y->shape), sb = bstrides(Bv, nd, y->shape);
  int op;
  switch (n->op) {
  case GG_OP_ADD: op = 0; break;
  case GG_OP_SUB: op = 1; break;
  case GG_OP_MUL: op = 2; break;
  case GG_OP_MAXIMUM: op = 3; break;
  case GG_OP_MINIMUM: op = 4; break;
  case GG_OP_DIV: op = 6; break;
  case GG_OP_POW: op = 7; break;
  default: op = 5; break;
  }
  int act = op < 5 ? n->a.act : GG_ACT_NONE;
  float alpha = n->a.alpha;
  uint64_t ao = eo(&in[0]), bo = eo(&in[1]), yo = eo(&out[0]);
  gg_karg a[] = {KA(in[0].mem), KA(ao), KA(in[1].mem), KA(bo), KA(out[0].mem), KA(yo), KA(cnt),
                 KA(nd), KA(shp), KA(sa), KA(sb), KA(mode), KA(op), KA(act), KA(alpha)};
  size_t g = (size_t)cnt;
  return o->launch(o, n, K_BINARY, 1, &g, NULL, a, NELEM(a), err, errlen);
}

static int run_unary(gg_kx *o, const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out,
                     char *err, size_t errlen) {
  static const struct {
    gg_op op;
    int code;
  } k_map[] = {
      {GG_OP_ABS, 0},         {GG_OP_SQUARE, 1},     {GG_OP_RSQRT, 2},     {GG_OP_RELU, 3},
      {GG_OP_RELU6, 4},       {GG_OP_LEAKY_RELU, 5}, {GG_OP_SIGMOID, 6},   {GG_OP_SQRT, 7},
      {GG_OP_EXP, 8},         {GG_OP_LOG, 9},        {GG_OP_NEG, 10},      {GG_OP_RECIPROCAL, 11},
      {GG_OP_ERF, 12},        {GG_OP_TANH, 13},      {GG_OP_SOFTPLUS, 14}, {GG_OP_HARD_SIGMOID, 15},
      {GG_OP_HARD_SWISH, 16}, {GG_OP_GELU, 17},      {GG_OP_CLIP, 19}};
  int op = 6, cnt = (int)out[0].v->nelem;
  for (int i = 0; i < NELEM(k_map); i++)
    if (k_map[i].op == n->op) op = k_map[i].code;
  if (n->op == GG_OP_GELU && n->a.approximate) op = 18;
  float alpha = n->a.alpha, beta = n->a.beta;
  if (n->op == GG_OP_CLIP) alpha = n->a.clip_min, beta = n->a.clip_max;
  uint64_t xo = eo(&in[0]), yo = eo(&out[0]);
  gg_karg a[] = {KA(in[0].mem), KA(xo), KA(out[0].mem), KA(yo),
                 KA(cnt),       KA(op), KA(alpha),      KA(beta)};
  size_t g = (size_t)cnt;
  return o->launch(o, n, K_UNARY, 1, &g, NULL, a, NELEM(a), err, errlen);
}

static int copy2d(gg_kx *o, const gg_node *n, void *x, uint64_t xo, int xrow, void *y, uint64_t yo,
                  int yrow, int cols, int rows, char *err, size_t errlen);

/* Equal / Greater / Less (F32 or I32 operands -> I32 0/1). */
static int run_compare(gg_kx *o, const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out,
                       char *err, size_t errlen) {
  const gg_tval *A = in[0].v, *Bv = in[1].v, *y = out[0].v;
  int nd = y->ndim, cnt = (int)y->nelem;
  int mode = (A->nelem == y->nelem ? 1 : 0) | (Bv->nelem == y->nelem ? 2 : 0);
  int8v shp = dims_of(y, 1), sa = bstrides(A, nd, y->shape), sb = bstrides(Bv, nd, y->shape);
  int op = n->op == GG_OP_EQUAL ? 0 : n->op == GG_OP_GREATER ? 1 : 2;
  int isint = A->dtype == GG_DT_I32;
  uint64_t ao = eo(&in[0]), bo = eo(&in[1]), yo = eo(&out[0]);
  gg_karg a[] = {KA(in[0].mem), KA(ao),  KA(in[1].mem), KA(bo), KA(out[0].mem), KA(yo), KA(cnt),
                 KA(nd),        KA(shp), KA(sa),        KA(sb), KA(mode),       KA(op), KA(isint)};
  size_t g = (size_t)cnt;
  return o->launch(o, n, K_COMPARE, 1, &g, NULL, a, NELEM(a), err, errlen);
}

static int run_where(gg_kx *o, const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out,
                     char *err, size_t errlen) {
  const gg_tval *y = out[0].v;
  int nd = y->ndim, cnt = (int)y->nelem;
  int8v shp = dims_of(y, 1), sc = bstrides(in[0].v, nd, y->shape),
        sa = bstrides(in[1].v, nd, y->shape), sb = bstrides(in[2].v, nd, y->shape);
  uint64_t co = eo(&in[0]), ao = eo(&in[1]), bo = eo(&in[2]), yo = eo(&out[0]);
  gg_karg a[] = {KA(in[0].mem), KA(co),         KA(in[1].mem), KA(ao),  KA(in[2].mem),
                 KA(bo),        KA(out[0].mem), KA(yo),        KA(cnt), KA(nd),
                 KA(shp),       KA(sc),         KA(sa),        KA(sb)};
  size_t g = (size_t)cnt;
  return o->launch(o, n, K_WHERE, 1, &g, NULL, a, NELEM(a), err, errlen);
}

/* ops-elem.c's double -> int32 rule: saturating, NaN -> 0. */
static int32_t sat_i32(double v) {
  if (v != v) return 0;
  if (v >= 2147483647.0) return INT32_MAX;
  if (v <= -2147483648.0) return INT32_MIN;
  return (int32_t)v;
}

/* QuantizeLinear / DequantizeLinear (gg_quant). */
static int run_quant(gg_kx *o, const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out,
                     char *err, size_t errlen) {
  int64_t ch64, inner64;
  float lo = 0.0f, hi = 0.0f; /* Dequantize: unused */
  if (gg__quant_axis(n, in[0].v, in[1].v, &ch64, &inner64) ||
      (n->op == GG_OP_QUANTIZE && gg__quant_range(n->a.cast_kind, &lo, &hi)))
    return GG_EPARSE; /* the shape rule refused both already */
  int ch = (int)ch64, inner = (int)inner64;
  int nz = n->n_in > 2 ? (int)in[2].v->nelem : 0, cnt = (int)out[0].v->nelem;
  int mode = n->op == GG_OP_DEQUANTIZE ? 8 : (n->a.flags & 5);
  const gg_kx_arg *za = nz ? &in[2] : &in[1]; /* no zero point: any buffer, never read */
  uint64_t xo = eo(&in[0]), so = eo(&in[1]), zo = eo(za), yo = eo(&out[0]);
  gg_karg a[] = {KA(in[0].mem), KA(xo),  KA(in[1].mem), KA(so),    KA(za->mem),
                 KA(zo),        KA(nz),  KA(out[0].mem), KA(yo),   KA(cnt),
                 KA(ch),        KA(inner), KA(mode),     KA(lo),   KA(hi)};
  size_t g = (size_t)cnt;
  return o->launch(o, n, K_QUANT, 1, &g, NULL, a, NELEM(a), err, errlen);
}

/* Not, Cast, and Neg / Clip on I32. */
static int run_unary_bits(gg_kx *o, const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out,
                          char *err, size_t errlen) {
  gg_dtype xt = in[0].v->dtype, yt = out[0].v->dtype;
  int op = 0, cnt = (int)out[0].v->nelem, lo = 0, hi = 0;
  switch (n->op) {
  case GG_OP_NOT: op = 0; break;
  case GG_OP_NEG: op = 1; break;
  case GG_OP_CLIP:
    op = 2;
    lo = n->a.clip_min != n->a.clip_min ? INT32_MIN : sat_i32(ceil(n->a.clip_min));
    hi = n->a.clip_max != n->a.clip_max ? INT32_MAX : sat_i32(floor(n->a.clip_max));
    break;
  default: /* Cast */
    if (n->a.cast_kind == GG_CAST_F16) { /* F32 rounded to float16 (kx_supports) */
      op = 5;
      break;
    }
    if (xt == yt) {
      if (in[0].mem == out[0].mem && in[0].off == out[0].off) return 0;
      return copy2d(o, n, in[0].mem, eo(&in[0]), 0, out[0].mem, eo(&out[0]), 0, cnt, 1, err,
                    errlen);
    }
    op = xt == GG_DT_F32 ? 3 : 4;
    break;
  }
  uint64_t xo = eo(&in[0]), yo = eo(&out[0]);
  gg_karg a[] = {KA(in[0].mem), KA(xo), KA(out[0].mem), KA(yo), KA(cnt), KA(op), KA(lo), KA(hi)};
  size_t g = (size_t)cnt;
  return o->launch(o, n, K_UNARY_BITS, 1, &g, NULL, a, NELEM(a), err, errlen);
}

static int run_reduce(gg_kx *o, const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out,
                      char *err, size_t errlen) {
  const gg_tval *x = in[0].v;
  int8v xs = dims_of(x, 1), red = {{0}};
  int all = n->op != GG_OP_SUM && n->op != GG_OP_MEAN && (n->n_in < 2 || !in[1].v->nelem);
  for (int d = 0; all && d < x->ndim; d++) red.v[d] = 1; /* ONNX: no axes = all */
  for (int64_t i = 0; !all && i < in[1].v->nelem; i++)
    red.v[norm_axis(ints(&in[1])[i], x->ndim)] = 1;
  int nout = (int)out[0].v->nelem, nd = x->ndim;
  int mean = n->op == GG_OP_MEAN         ? 1
             : n->op == GG_OP_REDUCE_MAX ? 2
             : n->op == GG_OP_REDUCE_MIN ? 3
             : n->op == GG_OP_REDUCE_L2  ? 4
                                         : 0;
  int cnt = nout ? (int)(x->nelem / nout) : 0;
  uint64_t xo = eo(&in[0]), yo = eo(&out[0]);
  gg_karg a[] = {KA(in[0].mem), KA(xo), KA(out[0].mem), KA(yo), KA(nout), KA(nd),
                 KA(xs),        KA(red), KA(cnt),     KA(mean)};
  size_t g = (size_t)nout;
  return o->launch(o, n, K_REDUCE, 1, &g, NULL, a, NELEM(a), err, errlen);
}

static int run_pad(gg_kx *o, const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out,
                   char *err, size_t errlen) {
  const gg_tval *x = in[0].v, *y = out[0].v;
  int8v ys = dims_of(y, 1), xs = dims_of(x, 1), pb = {{0}};
  for (int d = 0; d < x->ndim; d++) pb.v[d] = ints(&in[1])[2 * d];
  uint32_t fill = 0;
  if (n->n_in > 2) memcpy(&fill, in[2].v->data, 4);
  int cnt = (int)y->nelem, nd = x->ndim;
  uint64_t xo = eo(&in[0]), yo = eo(&out[0]);
  gg_karg a[] = {KA(in[0].mem), KA(xo), KA(out[0].mem), KA(yo), KA(cnt), KA(nd),
                 KA(ys),        KA(xs), KA(pb),        KA(fill)};
  size_t g = (size_t)cnt;
  return o->launch(o, n, K_PAD, 1, &g, NULL, a, NELEM(a), err, errlen);
}

/* perm = (0..k-1, m..nd-1, k..m-1) moves a block of trailing dims in front
 * of the dims before it: a batched 2-D transpose [B][R][C] -> [B][C][R]
 * (NHWC <-> NCHW). Returns 1 and the sizes when perm is one. */
static int as_2d(const gg_tval *x, const int32_t *perm, int *B, int *R, int *C) {
  int nd = x->ndim, k = 0;
  while (k < nd && perm[k] == k) k++;
  if (nd < 2 || k >= nd - 1) return 0;
  int m = perm[k], ok = m > k;
  for (int i = k; ok && i < nd; i++)
    ok = perm[i] == (i < k + (nd - m) ? m + (i - k) : k + (i - k - (nd - m)));
  if (!ok) return 0;
  int64_t b = 1, r = 1, c = 1;
  for (int d = 0; d < nd; d++) *(d < k ? &b : d < m ? &r : &c) *= x->shape[d];
  *B = (int)b, *R = (int)r, *C = (int)c;
  return 1;
}

static int run_transpose(gg_kx *o, const gg_node *n, const gg_kx_arg *in,
                         const gg_kx_arg *out, char *err, size_t errlen) {
  const gg_tval *x = in[0].v, *y = out[0].v;
  int nd = x->ndim, cnt = (int)y->nelem, B, R, C;
  if (cnt && as_2d(x, ints(&in[1]), &B, &R, &C)) {
    uint64_t xo = eo(&in[0]), yo = eo(&out[0]);
    gg_karg a[] = {KA(in[0].mem), KA(xo), KA(out[0].mem), KA(yo), KA(R), KA(C)};
    size_t g[3] = {(size_t)C, (size_t)R, (size_t)B}, l[3] = {16, 16, 1};
    return o->launch(o, n, K_TRANSPOSE2D, 3, g, l, a, NELEM(a), err, errlen);
  }
  int64_t xst[8], s = 1;
  for (int d = nd - 1; d >= 0; d--) xst[d] = s, s *= x->shape[d];
  int8v ys = dims_of(y, 1), st = {{0}};
  for (int d = 0; d < nd; d++) st.v[d] = (int32_t)xst[ints(&in[1])[d]];
  uint64_t xo = eo(&in[0]), yo = eo(&out[0]);
  gg_karg a[] = {KA(in[0].mem), KA(xo), KA(out[0].mem), KA(yo), KA(cnt), KA(nd), KA(ys), KA(st)};
  size_t g = (size_t)cnt;
  return o->launch(o, n, K_TRANSPOSE, 1, &g, NULL, a, NELEM(a), err, errlen);
}

/* rows x cols elements from (x, xrow stride) to (y, yrow stride). */
static int copy2d(gg_kx *o, const gg_node *n, void *x, uint64_t xo, int xrow, void *y,
                  uint64_t yo, int yrow, int cols, int rows, char *err, size_t errlen) {
  gg_karg a[] = {KA(x), KA(xo), KA(xrow), KA(y), KA(yo), KA(yrow), KA(cols), KA(rows)};
  size_t g[2] = {(size_t)cols, (size_t)rows};
  return o->launch(o, n, K_COPY2D, 2, g, NULL, a, NELEM(a), err, errlen);
}

/* Concat (dir 0: inputs -> one output) and SplitV (dir 1: one input ->
 * outputs) along axis ax: per part, a rows x (part dim * inner) copy. */
static int run_parts(gg_kx *o, const gg_node *n, const gg_kx_arg *whole, const gg_kx_arg *parts,
                     int nparts, int ax, int dir, char *err, size_t errlen) {
  const gg_tval *t = whole->v;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < ax; d++) outer *= t->shape[d];
  for (int d = ax + 1; d < t->ndim; d++) inner *= t->shape[d];
  int wrow = (int)(t->shape[ax] * inner), off = 0;
  for (int k = 0; k < nparts; k++) {
    int prow = (int)(parts[k].v->shape[ax] * inner), rc;
    if (dir == 0)
      rc = copy2d(o, n, parts[k].mem, eo(&parts[k]), prow, whole->mem, eo(whole) + off, wrow,
                  prow, (int)outer, err, errlen);
    else
      rc = copy2d(o, n, whole->mem, eo(whole) + off, wrow, parts[k].mem, eo(&parts[k]), prow,
                  prow, (int)outer, err, errlen);
    if (rc) return rc;
    off += prow;
  }
  return 0;
}

static int run_window(gg_kx *o, const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out,
                      char *err, size_t errlen) {
  const gg_tval *x = in[0].v, *y = out[0].v;
  int H = (int)x->shape[1], W = (int)x->shape[2], C = (int)x->shape[3];
  int OH = (int)y->shape[1], OW = (int)y->shape[2];
  uint64_t xo = eo(&in[0]), yo = eo(&out[0]);
  size_t g[3] = {(size_t)C, (size_t)OW, (size_t)(x->shape[0] * OH)};
  if (n->op == GG_OP_RESIZE_BILINEAR) {
    int ac = n->a.align_corners, hp = n->a.half_pixel_centers;
    gg_karg a[] = {KA(in[0].mem), KA(xo), KA(out[0].mem), KA(yo), KA(H), KA(W),
                   KA(C),         KA(OH), KA(OW),         KA(ac), KA(hp)};
    return o->launch(o, n, K_RESIZE, 3, g, NULL, a, NELEM(a), err, errlen);
  }
  int kh = n->a.ksize[0], kw = n->a.ksize[1], sh = n->a.strides[0], sw = n->a.strides[1];
  int pt = gg__kx_pad_before(n, 0, H, kh, sh, 1), pl = gg__kx_pad_before(n, 1, W, kw, sw, 1);
  gg_karg a[] = {KA(in[0].mem), KA(xo), KA(out[0].mem), KA(yo), KA(H),  KA(W),  KA(C), KA(OH),
                 KA(OW),        KA(kh), KA(kw),         KA(sh), KA(sw), KA(pt), KA(pl)};
  return o->launch(o, n, K_MAXPOOL, 3, g, NULL, a, NELEM(a), err, errlen);
}

/* Slice: a strided view of x, run as the general transpose (strides may be
 * negative) from the first selected element; the plan as ops-shape.c's
 * slice_plan (starts clamped, a step never taken read as 1). */
static int run_slice(gg_kx *o, const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out,
                     char *err, size_t errlen) {
  const gg_tval *x = in[0].v, *y = out[0].v;
  int nd = x->ndim, cnt = (int)y->nelem;
  int64_t xst[8], s = 1, base = 0;
  for (int d = nd - 1; d >= 0; d--)
    xst[d] = s, s *= x->shape[d];
  int8v ys = dims_of(y, 1), st = {{0}};
  for (int d = 0; d < nd; d++)
    st.v[d] = (int32_t)xst[d];
  for (int i = 0; i < n->a.n_slice; i++) {
    int ax = norm_axis(n->a.slice_axes[i], nd);
    int64_t dim = x->shape[ax], sp = n->a.slice_steps[i], b = n->a.slice_starts[i];
    if (b < 0) b = b < -dim ? -1 : b + dim;
    if (sp > 0)
      b = b < 0 ? 0 : (b > dim ? dim : b);
    else
      b = b < 0 ? 0 : (b > dim - 1 ? dim - 1 : b);
    if (y->shape[ax] <= 1) sp = 1;
    if (y->shape[ax] > 0) base += b * xst[ax];
    st.v[ax] = (int32_t)(sp * xst[ax]);
  }
  if (!cnt) return 0;
  uint64_t xo = eo(&in[0]) + (uint64_t)base, yo = eo(&out[0]);
  gg_karg a[] = {KA(in[0].mem), KA(xo), KA(out[0].mem), KA(yo), KA(cnt), KA(nd), KA(ys), KA(st)};
  size_t g = (size_t)cnt;
  return o->launch(o, n, K_TRANSPOSE, 1, &g, NULL, a, NELEM(a), err, errlen);
}

static int run_gather(gg_kx *o, const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out,
                      char *err, size_t errlen) {
  const gg_tval *x = in[0].v;
  int ax = norm_axis(n->a.axis, x->ndim), cnt = (int)out[0].v->nelem;
  int64_t inner = 1;
  for (int d = ax + 1; d < x->ndim; d++)
    inner *= x->shape[d];
  int inn = (int)inner, nidx = (int)in[1].v->nelem, dim = (int)x->shape[ax];
  if (!cnt) return 0;
  uint64_t xo = eo(&in[0]), io = eo(&in[1]), yo = eo(&out[0]);
  gg_karg a[] = {KA(in[0].mem), KA(xo),  KA(in[1].mem), KA(io),   KA(out[0].mem),
                 KA(yo),        KA(cnt), KA(inn),       KA(nidx), KA(dim)};
  size_t g = (size_t)cnt;
  return o->launch(o, n, K_GATHER, 1, &g, NULL, a, NELEM(a), err, errlen);
}

/* One spatial dim of an ONNX pool window (ops-shape.c's pool_dim): leading
 * and trailing padding. */
static void pool_pads(int64_t in, int64_t out, int k, int s, gg_padding p, int pads_b, int pads_a,
                      int *pb, int *pa) {
  if (p == GG_PAD_SAME) {
    int64_t tot = (out - 1) * s + k - in;
    if (tot < 0) tot = 0;
    *pb = (int)(tot / 2), *pa = (int)(tot - tot / 2);
    return;
  }
  *pb = p == GG_PAD_EXPLICIT ? pads_b : 0, *pa = p == GG_PAD_EXPLICIT ? pads_a : 0;
}

static int run_avgpool(gg_kx *o, const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out,
                       char *err, size_t errlen) {
  const gg_tval *x = in[0].v, *y = out[0].v;
  int H = (int)x->shape[1], W = (int)x->shape[2], C = (int)x->shape[3];
  int OH = (int)y->shape[1], OW = (int)y->shape[2], pt, pb, pl, pr;
  int kh = n->a.ksize[0], kw = n->a.ksize[1], sh = n->a.strides[0], sw = n->a.strides[1];
  int incl = n->a.count_include_pad;
  pool_pads(H, OH, kh, sh, n->a.padding, n->a.pads[0], n->a.pads[1], &pt, &pb);
  pool_pads(W, OW, kw, sw, n->a.padding, n->a.pads[2], n->a.pads[3], &pl, &pr);
  uint64_t xo = eo(&in[0]), yo = eo(&out[0]);
  gg_karg a[] = {KA(in[0].mem), KA(xo), KA(out[0].mem), KA(yo), KA(H),  KA(W),
                 KA(C),         KA(OH), KA(OW),         KA(kh), KA(kw), KA(sh),
                 KA(sw),        KA(pt), KA(pl),         KA(pb), KA(pr), KA(incl)};
  size_t g[3] = {(size_t)C, (size_t)OW, (size_t)(x->shape[0] * OH)};
  return o->launch(o, n, K_AVGPOOL, 3, g, NULL, a, NELEM(a), err, errlen);
}

static int run_conv_transpose(gg_kx *o, const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out,
                              char *err, size_t errlen) {
  const gg_tval *x = in[0].v, *w = in[1].v, *y = out[0].v;
  int groups = n->a.groups < 1 ? 1 : n->a.groups, has_bias = n->n_in > 2;
  int H = (int)x->shape[1], W = (int)x->shape[2], CI = (int)x->shape[3];
  int OH = (int)y->shape[1], OW = (int)y->shape[2], CO = (int)y->shape[3];
  int KH = (int)w->shape[0], KW = (int)w->shape[1], cig = CI / groups, cog = (int)w->shape[2];
  int sh = n->a.strides[0], sw = n->a.strides[1], dh = n->a.dilations[0], dw = n->a.dilations[1];
  int pt = n->a.pads[0], pl = n->a.pads[2], act = n->a.act;
  const gg_kx_arg *bias = has_bias ? &in[2] : &out[0];
  uint64_t xo = eo(&in[0]), wo = eo(&in[1]), bo = eo(bias), yo = eo(&out[0]);
  gg_karg a[] = {KA(in[0].mem), KA(xo),         KA(in[1].mem), KA(wo), KA(bias->mem), KA(bo),
                 KA(has_bias),  KA(out[0].mem), KA(yo),        KA(H),  KA(W),         KA(CI),
                 KA(OH),        KA(OW),         KA(CO),        KA(KH), KA(KW),        KA(cig),
                 KA(cog),       KA(sh),         KA(sw),        KA(dh), KA(dw),        KA(pt),
                 KA(pl),        KA(act)};
  size_t g[3] = {(size_t)CO, (size_t)OW, (size_t)(x->shape[0] * OH)};
  return o->launch(o, n, K_CONV_TRANSPOSE, 3, g, NULL, a, NELEM(a), err, errlen);
}

/* BatchMatMul with numpy's matmul rules (ops-shape.c run_batch_matmul): a
 * 1-D operand is one row / column; batch dims broadcast. */
static int run_bmm(gg_kx *o, const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out, char *err,
                   size_t errlen) {
  const gg_tval *A = in[0].v, *B = in[1].v, *y = out[0].v;
  int K = (int)A->shape[A->ndim - 1], M = A->ndim > 1 ? (int)A->shape[A->ndim - 2] : 1;
  int N = B->ndim > 1 ? (int)B->shape[B->ndim - 1] : 1;
  int ba = A->ndim > 2 ? A->ndim - 2 : 0, bb = B->ndim > 2 ? B->ndim - 2 : 0;
  int nb = ba > bb ? ba : bb;
  int8v bshape = {{1, 1, 1, 1, 1, 1, 1, 1}}, sa = {{0}}, sb = {{0}};
  int64_t ma = (int64_t)M * K, mb = (int64_t)K * N, nbatch = 1;
  for (int d = nb - 1; d >= 0; d--) {
    int ia = d - (nb - ba), ib = d - (nb - bb);
    int64_t da = ia >= 0 ? A->shape[ia] : 1, db = ib >= 0 ? B->shape[ib] : 1;
    bshape.v[d] = (int32_t)(da == 1 ? db : da);
    sa.v[d] = da == 1 ? 0 : (int32_t)ma, sb.v[d] = db == 1 ? 0 : (int32_t)mb;
    ma *= da, mb *= db, nbatch *= bshape.v[d];
  }
  if (!y->nelem) return 0;
  uint64_t ao = eo(&in[0]), bo = eo(&in[1]), yo = eo(&out[0]);
  gg_karg a[] = {KA(in[0].mem), KA(ao), KA(in[1].mem), KA(bo),     KA(out[0].mem), KA(yo), KA(M),
                 KA(N),         KA(K),  KA(nb),        KA(bshape), KA(sa),         KA(sb)};
  size_t g[3] = {(size_t)N, (size_t)M, (size_t)nbatch}, l[3] = {16, 16, 1};
  return o->launch(o, n, K_BMM, 3, g, l, a, NELEM(a), err, errlen);
}

static int run_layer_norm(gg_kx *o, const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out,
                          char *err, size_t errlen) {
  const gg_tval *x = in[0].v;
  int ax = n->a.axis, nd = x->ndim - ax, rows = 1, m = 1;
  for (int d = 0; d < ax; d++)
    rows *= (int)x->shape[d];
  for (int d = ax; d < x->ndim; d++)
    m *= (int)x->shape[d];
  /* scale / bias strides over the normalized dims (0 where broadcast) */
  int8v shp = {{1, 1, 1, 1, 1, 1, 1, 1}}, sst = bstrides(in[1].v, nd, x->shape + ax), bst = {{0}};
  for (int d = 0; d < nd; d++)
    shp.v[d] = (int32_t)x->shape[ax + d];
  int has_bias = n->n_in > 2, has_mean = n->n_out > 1, has_inv = n->n_out > 2;
  if (has_bias) bst = bstrides(in[2].v, nd, x->shape + ax);
  const gg_kx_arg *bias = has_bias ? &in[2] : &out[0], *mean = has_mean ? &out[1] : &out[0],
                  *inv = has_inv ? &out[2] : &out[0];
  float eps = n->a.epsilon;
  uint64_t xo = eo(&in[0]), so = eo(&in[1]), bo = eo(bias), yo = eo(&out[0]), mo = eo(mean),
           io = eo(inv);
  gg_karg a[] = {KA(in[0].mem), KA(xo),       KA(in[1].mem),  KA(so),  KA(bias->mem),
                 KA(bo),        KA(has_bias), KA(out[0].mem), KA(yo),  KA(mean->mem),
                 KA(mo),        KA(has_mean), KA(inv->mem),   KA(io),  KA(has_inv),
                 KA(rows),      KA(m),        KA(nd),         KA(shp), KA(sst),
                 KA(bst),       KA(eps)};
  size_t g = (size_t)rows * 64, l = 64; /* a work-group of 64 per row */
  return o->launch(o, n, K_LAYER_NORM, 1, &g, &l, a, NELEM(a), err, errlen);
}

/* Expand: the general transpose with x's broadcast strides (0 on the
 * broadcast dims); Tile: coordinates modulo x's dims. */
static int run_expand_tile(gg_kx *o, const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out,
                           char *err, size_t errlen) {
  const gg_tval *x = in[0].v, *y = out[0].v;
  int nd = y->ndim, cnt = (int)y->nelem;
  int8v ys = dims_of(y, 1), st = n->op == GG_OP_EXPAND ? bstrides(x, nd, y->shape) : dims_of(x, 1);
  if (!cnt) return 0;
  uint64_t xo = eo(&in[0]), yo = eo(&out[0]);
  gg_karg a[] = {KA(in[0].mem), KA(xo), KA(out[0].mem), KA(yo), KA(cnt), KA(nd), KA(ys), KA(st)};
  size_t g = (size_t)cnt;
  return o->launch(o, n, n->op == GG_OP_EXPAND ? K_TRANSPOSE : K_TILE, 1, &g, NULL, a, NELEM(a),
                   err, errlen);
}

static int run_group_norm(gg_kx *o, const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out,
                          char *err, size_t errlen) {
  const gg_tval *x = in[0].v;
  int C = (int)x->shape[1], spatial = 1;
  int groups = n->op == GG_OP_INSTANCE_NORM ? C : n->a.groups;
  for (int d = 2; d < x->ndim; d++) spatial *= (int)x->shape[d];
  int units = (int)x->shape[0] * groups;
  float eps = n->a.epsilon;
  if (!x->nelem) return 0;
  uint64_t xo = eo(&in[0]), so = eo(&in[1]), bo = eo(&in[2]), yo = eo(&out[0]);
  gg_karg a[] = {KA(in[0].mem), KA(xo),    KA(in[1].mem), KA(so),      KA(in[2].mem),
                 KA(bo),        KA(out[0].mem), KA(yo),   KA(units),   KA(C),
                 KA(spatial),   KA(groups), KA(eps)};
  size_t g = (size_t)units * 64, l = 64; /* a work-group of 64 per (n, group) */
  return o->launch(o, n, K_GROUP_NORM, 1, &g, &l, a, NELEM(a), err, errlen);
}

/* ONNX Resize, nearest / linear (cubic stays on the host): the scale per
 * dim as ops-shape.c's resize_geometry takes it (attrs.scale_hw, or the
 * scales input; 0 = out / in). */
static int run_resize(gg_kx *o, const gg_node *n, const gg_kx_arg *in, const gg_kx_arg *out,
                      char *err, size_t errlen) {
  const gg_tval *x = in[0].v, *y = out[0].v;
  int H = (int)x->shape[1], W = (int)x->shape[2], C = (int)x->shape[3];
  int OH = (int)y->shape[1], OW = (int)y->shape[2];
  float sc[2];
  for (int d = 0; d < 2; d++) {
    int64_t oh = n->a.out_hw[d];
    sc[d] = oh == -2 ? ((const float *)in[1].v->data)[2 + d] : oh == -3 ? 0.0f : n->a.scale_hw[d];
  }
  int mode = n->a.resize_mode, cm = n->a.coord_mode, nm = n->a.nearest_mode;
  int excl = n->a.exclude_outside;
  float ry0 = n->a.roi[0], rx0 = n->a.roi[1], ry1 = n->a.roi[2], rx1 = n->a.roi[3];
  float ex = n->a.extrapolation;
  uint64_t xo = eo(&in[0]), yo = eo(&out[0]);
  gg_karg a[] = {KA(in[0].mem), KA(xo),  KA(out[0].mem), KA(yo),  KA(H),   KA(W),    KA(C),
                 KA(OH),        KA(OW),  KA(mode),       KA(cm),  KA(nm),  KA(excl), KA(sc[0]),
                 KA(sc[1]),     KA(ry0), KA(rx0),        KA(ry1), KA(rx1), KA(ex)};
  size_t g[3] = {(size_t)(C + 3) / 4, (size_t)OW, (size_t)(x->shape[0] * OH)};
  return o->launch(o, n, K_RESIZE_ONNX, 3, g, NULL, a, NELEM(a), err, errlen);
}

int gg__kx_run(gg_kx *o, const char *who, const gg_node *n, const gg_kx_arg *in,
               const gg_kx_arg *out, char *err, size_t errlen) {
  const char *why = NULL;
  if (!gg__kx_supports(n, in, out, &why)) {
    snprintf(err, errlen, "node '%s' (%s): not supported by the %s backend: %s", n->name,
             n->src_op, who ? who : "GPU", why);
    return GG_EUNSUPPORTED;
  }
  switch (n->op) {
  case GG_OP_IDENTITY:
  case GG_OP_RESHAPE:
  case GG_OP_SQUEEZE: /* views: a copy only when the planner placed them apart */
    if (in[0].mem == out[0].mem && in[0].off == out[0].off) return 0;
    return copy2d(o, n, in[0].mem, eo(&in[0]), 0, out[0].mem, eo(&out[0]), 0,
                  (int)out[0].v->nelem, 1, err, errlen);
  case GG_OP_CONV2D:
  case GG_OP_DEPTHWISE: return run_conv(o, n, in, out, err, errlen);
  case GG_OP_MATMUL: return run_matmul(o, n, in, out, err, errlen);
  case GG_OP_ADD:
  case GG_OP_SUB:
  case GG_OP_MUL:
  case GG_OP_MAXIMUM:
  case GG_OP_MINIMUM:
  case GG_OP_PRELU:
  case GG_OP_DIV:
  case GG_OP_POW: return run_binary(o, n, in, out, err, errlen);
  case GG_OP_EQUAL:
  case GG_OP_GREATER:
  case GG_OP_LESS: return run_compare(o, n, in, out, err, errlen);
  case GG_OP_WHERE: return run_where(o, n, in, out, err, errlen);
  case GG_OP_NOT:
  case GG_OP_CAST: return run_unary_bits(o, n, in, out, err, errlen);
  case GG_OP_SLICE: return run_slice(o, n, in, out, err, errlen);
  case GG_OP_GATHER: return run_gather(o, n, in, out, err, errlen);
  case GG_OP_AVGPOOL: return run_avgpool(o, n, in, out, err, errlen);
  case GG_OP_CONV_TRANSPOSE: return run_conv_transpose(o, n, in, out, err, errlen);
  case GG_OP_BATCH_MATMUL: return run_bmm(o, n, in, out, err, errlen);
  case GG_OP_LAYER_NORM: return run_layer_norm(o, n, in, out, err, errlen);
  case GG_OP_RESIZE: return run_resize(o, n, in, out, err, errlen);
  case GG_OP_QUANTIZE:
  case GG_OP_DEQUANTIZE: return run_quant(o, n, in, out, err, errlen);
  case GG_OP_NEG:
  case GG_OP_CLIP:
    if (out[0].v->dtype == GG_DT_I32) return run_unary_bits(o, n, in, out, err, errlen);
    return run_unary(o, n, in, out, err, errlen);
  case GG_OP_SOFTMAX: {
    int inner = (int)in[0].v->shape[in[0].v->ndim - 1];
    int rows = inner ? (int)(in[0].v->nelem / inner) : 0;
    uint64_t xo = eo(&in[0]), yo = eo(&out[0]);
    gg_karg a[] = {KA(in[0].mem), KA(xo), KA(out[0].mem), KA(yo), KA(rows), KA(inner)};
    size_t g = (size_t)rows;
    return o->launch(o, n, K_SOFTMAX, 1, &g, NULL, a, NELEM(a), err, errlen);
  }
  case GG_OP_SUM:
  case GG_OP_MEAN:
  case GG_OP_REDUCE_MAX:
  case GG_OP_REDUCE_MIN:
  case GG_OP_REDUCE_L2: return run_reduce(o, n, in, out, err, errlen);
  case GG_OP_LOG_SOFTMAX: {
    int inner = (int)in[0].v->shape[in[0].v->ndim - 1];
    int rows = inner ? (int)(in[0].v->nelem / inner) : 0;
    uint64_t xo = eo(&in[0]), yo = eo(&out[0]);
    gg_karg a[] = {KA(in[0].mem), KA(xo), KA(out[0].mem), KA(yo), KA(rows), KA(inner)};
    size_t g = (size_t)rows;
    return o->launch(o, n, K_LOG_SOFTMAX, 1, &g, NULL, a, NELEM(a), err, errlen);
  }
  case GG_OP_EXPAND:
  case GG_OP_TILE: return run_expand_tile(o, n, in, out, err, errlen);
  case GG_OP_INSTANCE_NORM:
  case GG_OP_GROUP_NORM: return run_group_norm(o, n, in, out, err, errlen);
  case GG_OP_DEPTH_TO_SPACE: {
    const gg_tval *x = in[0].v;
    int cnt = (int)out[0].v->nelem, H = (int)x->shape[1], W = (int)x->shape[2];
    int IC = (int)x->shape[3], OC = (int)out[0].v->shape[3], bs = n->a.block_size;
    uint64_t xo = eo(&in[0]), yo = eo(&out[0]);
    gg_karg a[] = {KA(in[0].mem), KA(xo), KA(out[0].mem), KA(yo), KA(cnt),
                   KA(H),         KA(W),  KA(IC),         KA(OC), KA(bs)};
    size_t g = (size_t)cnt;
    return o->launch(o, n, K_DEPTH_TO_SPACE, 1, &g, NULL, a, NELEM(a), err, errlen);
  }
  case GG_OP_RESIZE_NEAREST: {
    const gg_tval *x = in[0].v, *y = out[0].v;
    int H = (int)x->shape[1], W = (int)x->shape[2], C = (int)x->shape[3];
    int OH = (int)y->shape[1], OW = (int)y->shape[2];
    int ac = n->a.align_corners, hp = n->a.half_pixel_centers;
    uint64_t xo = eo(&in[0]), yo = eo(&out[0]);
    gg_karg a[] = {KA(in[0].mem), KA(xo), KA(out[0].mem), KA(yo), KA(H), KA(W),
                   KA(C),         KA(OH), KA(OW),         KA(ac), KA(hp)};
    size_t g[3] = {(size_t)C, (size_t)OW, (size_t)(x->shape[0] * OH)};
    return o->launch(o, n, K_RESIZE_NEAREST, 3, g, NULL, a, NELEM(a), err, errlen);
  }
  case GG_OP_MAXPOOL:
  case GG_OP_RESIZE_BILINEAR: return run_window(o, n, in, out, err, errlen);
  case GG_OP_PAD: return run_pad(o, n, in, out, err, errlen);
  case GG_OP_TRANSPOSE: return run_transpose(o, n, in, out, err, errlen);
  case GG_OP_CONCAT:
    return run_parts(o, n, &out[0], in, n->n_in - 1,
                     norm_axis(ints(&in[n->n_in - 1])[0], out[0].v->ndim), 0, err, errlen);
  case GG_OP_SPLITV:
    return run_parts(o, n, &in[0], out, n->n_out, norm_axis(ints(&in[2])[0], in[0].v->ndim), 1,
                     err, errlen);
  default: return run_unary(o, n, in, out, err, errlen);
  }
}
