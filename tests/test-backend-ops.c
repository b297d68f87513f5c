/* Every op on every engine backend, in the manner of ggml's
 * test-backend-ops: for each op, random shapes and attributes (seeded, so a
 * failure reproduces), run through the backend interface itself (its buffer
 * type, uploads, supports_node, prepare, run_node, synchronize, downloads)
 * and compared with the naive reference kernels on host memory, within a
 * per-op tolerance (NaN fails). A backend that is not in this build, or
 * whose device cannot be opened, is a visible SKIP line, never a pass; an
 * op a backend does not support is listed as "not supported".
 *
 *   build/test-backend-ops [naive|xnnpack|sim|opencl|others]
 *   GG_TEST_SEED=N  changes the random cases (default 1) */
#include "engine/backend.h"
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/device.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "gpuguard/memory.h"
#include "test.h"

#define CONFIGS 12 /* random cases per op */
#define MAXT 12

static uint64_t g_rng;
static uint32_t rnd(void) {
  g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
  return (uint32_t)(g_rng >> 11);
}
static int irand(int lo, int hi) {
  return lo + (int)(rnd() % (uint32_t)(hi - lo + 1));
}
static float frand(float lo, float hi) {
  return lo + (hi - lo) * (float)(rnd() % 100000) / 100000.0f;
}

/* One op with its tensors: inputs first, then outputs; host data owned. */
typedef struct tcase {
  gg_node n;
  gg_tval v[MAXT];
  int nt, in[8], out[4];
  char desc[160];
} tcase;

static void tc_free(tcase *c) {
  for (int i = 0; i < c->nt; i++)
    free(c->v[i].data);
  memset(c, 0, sizeof *c);
}

static int tc_tensor(tcase *c, gg_dtype dt, int ndim, const int64_t *shape, int is_const) {
  gg_tval *t = &c->v[c->nt];
  memset(t, 0, sizeof *t);
  t->dtype = dt, t->ndim = ndim, t->nelem = 1, t->is_const = is_const;
  for (int i = 0; i < ndim; i++)
    t->shape[i] = shape[i], t->nelem *= shape[i];
  t->data = calloc((size_t)t->nelem + 16, 4);
  for (int64_t i = 0; i < t->nelem; i++) {
    if (dt == GG_DT_F32)
      ((float *)t->data)[i] = frand(-2.0f, 2.0f);
    else
      ((int32_t *)t->data)[i] = irand(-50, 50);
  }
  return c->nt++;
}

static int tc_ints(tcase *c, int n, const int32_t *vals) {
  int64_t shp[1] = {n};
  int t = tc_tensor(c, GG_DT_I32, 1, shp, 1);
  memcpy(c->v[t].data, vals, (size_t)n * 4);
  return t;
}

static void tc_node(tcase *c, gg_op op, int n_in, const int *ins, int n_out) {
  c->n.name = "t";
  c->n.op = op;
  c->n.src_op = gg__op_name(op);
  c->n.n_in = n_in, c->n.n_out = n_out;
  for (int i = 0; i < n_in; i++)
    c->in[i] = ins[i];
  for (int k = 0; k < n_out; k++) {
    c->out[k] = c->nt;
    memset(&c->v[c->nt++], 0, sizeof(gg_tval));
  }
  c->n.in = c->in, c->n.out = c->out;
}

static void rand_shape(int ndim, int64_t *s, int lo, int hi) {
  for (int i = 0; i < ndim; i++)
    s[i] = irand(lo, hi);
}

static gg_act rand_act(int prelu_ok) {
  int a = irand(0, prelu_ok ? 4 : 3);
  return (gg_act)a;
}

/* Builds one random case of op; returns 0 when shape inference accepts it
 * (callers draw again otherwise). */
static int build(tcase *c, gg_op op) {
  memset(c, 0, sizeof *c);
  gg_attrs *a = &c->n.a;
  a->strides[0] = a->strides[1] = a->dilations[0] = a->dilations[1] = 1;
  int64_t s[GG_MAX_DIMS] = {0}, s2[GG_MAX_DIMS] = {0};
  int ins[8], ni = 0, nout = 1, nd = irand(1, 4);
  rand_shape(nd, s, 1, 6);
  switch (op) {
  case GG_OP_CONV2D:
  case GG_OP_DEPTHWISE: {
    int groups = op == GG_OP_CONV2D ? irand(1, 2) : 1, cig = irand(1, 4);
    int64_t x[4] = {irand(1, 2), irand(3, 11), irand(3, 11), cig * groups};
    int64_t w[4] = {irand(1, 3), irand(1, 3), op == GG_OP_CONV2D ? cig : x[3],
                    op == GG_OP_CONV2D ? groups * irand(1, 4) : irand(1, 2)};
    int64_t co = op == GG_OP_CONV2D ? w[3] : x[3] * w[3];
    ins[ni++] = tc_tensor(c, GG_DT_F32, 4, x, 0);
    ins[ni++] = tc_tensor(c, GG_DT_F32, 4, w, 1);
    a->padding = (gg_padding)irand(0, 2);
    for (int i = 0; i < 4; i++)
      a->pads[i] = a->padding == GG_PAD_EXPLICIT ? irand(0, 2) : 0;
    a->strides[0] = irand(1, 2), a->strides[1] = irand(1, 2);
    if (a->strides[0] == 1 && a->strides[1] == 1)
      a->dilations[0] = irand(1, 2), a->dilations[1] = irand(1, 2);
    a->has_bias = irand(0, 1);
    if (a->has_bias) ins[ni++] = tc_tensor(c, GG_DT_F32, 1, &co, 1);
    a->act = rand_act(1);
    a->alpha = frand(0.05f, 0.3f);
    if (a->act == GG_ACT_PRELU) ins[ni++] = tc_tensor(c, GG_DT_F32, 1, &co, 1);
    break;
  }
  case GG_OP_MATMUL: {
    int64_t m = irand(1, 9), k = irand(1, 17), nn = irand(1, 13);
    a->transpose_a = irand(0, 3) == 0, a->transpose_b = irand(0, 1);
    int64_t sa[2] = {a->transpose_a ? k : m, a->transpose_a ? m : k};
    int64_t sb[2] = {a->transpose_b ? nn : k, a->transpose_b ? k : nn};
    ins[ni++] = tc_tensor(c, GG_DT_F32, 2, sa, 0);
    ins[ni++] = tc_tensor(c, GG_DT_F32, 2, sb, 1);
    a->has_bias = irand(0, 1);
    if (a->has_bias) ins[ni++] = tc_tensor(c, GG_DT_F32, 1, &nn, 1);
    a->act = rand_act(0);
    a->alpha = frand(0.05f, 0.3f);
    break;
  }
  case GG_OP_ADD:
  case GG_OP_SUB:
  case GG_OP_MUL:
  case GG_OP_MAXIMUM:
  case GG_OP_MINIMUM:
  case GG_OP_PRELU: {
    gg_dtype dt = op != GG_OP_PRELU && irand(0, 3) == 0 ? GG_DT_I32 : GG_DT_F32;
    /* b broadcasts: a suffix of a's dims, some of them 1 */
    int nb = irand(1, nd);
    for (int i = 0; i < nb; i++)
      s2[i] = irand(0, 2) ? s[nd - nb + i] : 1;
    int swap = op != GG_OP_PRELU && irand(0, 3) == 0;
    ins[ni++] = tc_tensor(c, dt, swap ? nb : nd, swap ? s2 : s, 0);
    ins[ni++] = tc_tensor(c, dt, swap ? nd : nb, swap ? s : s2, op == GG_OP_PRELU);
    if (op == GG_OP_ADD || op == GG_OP_SUB || op == GG_OP_MUL) a->act = (gg_act)irand(0, 2);
    break;
  }
  case GG_OP_RSQRT:
    ins[ni++] = tc_tensor(c, GG_DT_F32, nd, s, 0);
    for (int64_t i = 0; i < c->v[0].nelem; i++)
      ((float *)c->v[0].data)[i] = frand(0.05f, 4.0f);
    break;
  case GG_OP_IDENTITY:
  case GG_OP_ABS:
  case GG_OP_SQUARE:
  case GG_OP_RELU:
  case GG_OP_RELU6:
  case GG_OP_LEAKY_RELU:
  case GG_OP_SIGMOID:
  case GG_OP_SOFTMAX:
    ins[ni++] = tc_tensor(c, GG_DT_F32, nd, s, 0);
    for (int64_t i = 0; i < c->v[0].nelem; i++)
      ((float *)c->v[0].data)[i] *= 4.0f;
    a->alpha = frand(0.05f, 0.3f);
    break;
  case GG_OP_SUM:
  case GG_OP_MEAN: {
    int hw = nd == 4 || irand(0, 1);
    if (hw) nd = 4, rand_shape(4, s, 1, 7);
    ins[ni++] = tc_tensor(c, GG_DT_F32, nd, s, 0);
    int32_t ax[GG_MAX_DIMS];
    int na = 0;
    if (hw)
      ax[na++] = 1, ax[na++] = irand(0, 1) ? 2 : -2;
    else
      for (int i = 0; i < nd; i++)
        if (irand(0, 1) || (i == nd - 1 && !na)) ax[na++] = i;
    ins[ni++] = tc_ints(c, na, ax);
    a->keep_dims = irand(0, 1);
    break;
  }
  case GG_OP_MAXPOOL: {
    int64_t x[4] = {irand(1, 2), irand(2, 10), irand(2, 10), irand(1, 6)};
    ins[ni++] = tc_tensor(c, GG_DT_F32, 4, x, 0);
    a->ksize[0] = irand(1, 3), a->ksize[1] = irand(1, 3);
    a->strides[0] = irand(1, 2), a->strides[1] = irand(1, 2);
    a->padding = (gg_padding)irand(0, 1);
    a->ceil_mode = irand(0, 1); /* ONNX ceil_mode (group S) */
    break;
  }
  case GG_OP_PAD: {
    ins[ni++] = tc_tensor(c, GG_DT_F32, nd, s, 0);
    int32_t p[2 * GG_MAX_DIMS];
    for (int i = 0; i < 2 * nd; i++)
      p[i] = irand(0, 2);
    ins[ni++] = tc_ints(c, 2 * nd, p);
    a->pad_mode = (gg_pad_mode)irand(0, 2); /* ONNX reflect / edge (group S) */
    if (irand(0, 1)) {
      int64_t one = 1;
      ins[ni++] = tc_tensor(c, GG_DT_F32, 0, &one, 1);
    }
    break;
  }
  case GG_OP_RESHAPE: {
    ins[ni++] = tc_tensor(c, GG_DT_F32, nd, s, 0);
    int32_t t[2] = {-1, (int32_t)s[nd - 1]};
    ins[ni++] = tc_ints(c, 2, t);
    break;
  }
  case GG_OP_SQUEEZE: {
    s[irand(0, nd - 1)] = 1;
    ins[ni++] = tc_tensor(c, GG_DT_F32, nd, s, 0);
    a->n_axes = 0;
    for (int i = 0; i < nd; i++)
      if (s[i] == 1 && irand(0, 1)) a->axes[a->n_axes++] = i;
    break;
  }
  case GG_OP_TRANSPOSE: {
    ins[ni++] = tc_tensor(c, GG_DT_F32, nd, s, 0);
    int32_t p[GG_MAX_DIMS];
    for (int i = 0; i < nd; i++)
      p[i] = i;
    for (int i = nd - 1; i > 0; i--) {
      int j = irand(0, i);
      int32_t t = p[i];
      p[i] = p[j], p[j] = t;
    }
    ins[ni++] = tc_ints(c, nd, p);
    break;
  }
  case GG_OP_CONCAT: {
    int k = irand(2, 3), ax = irand(0, nd - 1);
    for (int i = 0; i < k; i++) {
      s[ax] = irand(1, 4);
      ins[ni++] = tc_tensor(c, GG_DT_F32, nd, s, irand(0, 4) == 0);
    }
    int32_t axv = irand(0, 1) ? ax : ax - nd;
    ins[ni++] = tc_ints(c, 1, &axv);
    break;
  }
  case GG_OP_SPLITV: {
    int ax = irand(0, nd - 1);
    s[ax] = irand(2, 8);
    ins[ni++] = tc_tensor(c, GG_DT_F32, nd, s, 0);
    nout = irand(2, 3);
    int32_t sz[3], left = (int32_t)s[ax];
    for (int i = 0; i < nout - 1; i++)
      sz[i] = irand(0, left), left -= sz[i];
    sz[nout - 1] = irand(0, 1) ? -1 : left;
    ins[ni++] = tc_ints(c, nout, sz);
    int32_t axv = ax;
    ins[ni++] = tc_ints(c, 1, &axv);
    break;
  }
  case GG_OP_RESIZE_BILINEAR: {
    int64_t x[4] = {irand(1, 2), irand(1, 7), irand(1, 7), irand(1, 4)};
    ins[ni++] = tc_tensor(c, GG_DT_F32, 4, x, 0);
    int32_t sz[2] = {irand(1, 12), irand(1, 12)};
    ins[ni++] = tc_ints(c, 2, sz);
    int mode = irand(0, 2);
    a->align_corners = mode == 1, a->half_pixel_centers = mode == 2;
    break;
  }
  case GG_OP_DEPTH_TO_SPACE: {
    int bs = irand(2, 3);
    int64_t x[4] = {irand(1, 2), irand(1, 5), irand(1, 5), (int64_t)bs * bs * irand(1, 3)};
    ins[ni++] = tc_tensor(c, GG_DT_F32, 4, x, 0);
    a->block_size = bs;
    break;
  }
  case GG_OP_RESIZE_NEAREST: {
    int64_t x[4] = {irand(1, 2), irand(1, 7), irand(1, 7), irand(1, 4)};
    ins[ni++] = tc_tensor(c, GG_DT_F32, 4, x, 0);
    if (irand(0, 1)) { /* Keras UpSampling2D: integer scale, no size input */
      a->scale[0] = irand(1, 4), a->scale[1] = irand(1, 4);
    } else {
      int32_t sz[2] = {irand(1, 12), irand(1, 12)};
      ins[ni++] = tc_ints(c, 2, sz);
      int mode = irand(0, 2);
      a->align_corners = mode == 1, a->half_pixel_centers = mode == 2;
    }
    break;
  }
  case GG_OP_SPARSE_TO_DENSE: {
    int64_t n = irand(1, 4), two[2] = {n, 2}, one = 1;
    int32_t shape[2] = {irand(2, 6), irand(2, 6)};
    int ti = tc_tensor(c, GG_DT_I32, 2, two, 1);
    for (int i = 0; i < n; i++) /* distinct, in range */
      ((int32_t *)c->v[ti].data)[2 * i] = i % shape[0],
                                     ((int32_t *)c->v[ti].data)[2 * i + 1] = i / shape[0];
    ins[ni++] = ti;
    ins[ni++] = tc_ints(c, 2, shape);
    ins[ni++] = tc_tensor(c, GG_DT_F32, 1, &n, 1);
    ins[ni++] = tc_tensor(c, GG_DT_F32, 0, &one, 1);
    break;
  }
    /* -- group E cases (src/engine/ops-elem.c) -- */
  case GG_OP_DIV:
  case GG_OP_POW:
  case GG_OP_EQUAL:
  case GG_OP_GREATER:
  case GG_OP_LESS: {
    gg_dtype dt = op != GG_OP_POW && irand(0, 2) == 0 ? GG_DT_I32 : GG_DT_F32;
    gg_dtype dtb = op == GG_OP_POW && irand(0, 2) == 0 ? GG_DT_I32 : dt;
    int nb = irand(0, nd), swap = irand(0, 3) == 0; /* nb 0: a rank-0 operand */
    for (int i = 0; i < nb; i++)
      s2[i] = irand(0, 2) ? s[nd - nb + i] : 1;
    ins[ni++] = tc_tensor(c, dt, swap ? nb : nd, swap ? s2 : s, 0);
    ins[ni++] = tc_tensor(c, dtb, swap ? nd : nb, swap ? s : s2, irand(0, 1));
    for (int k = 0; k < 2; k++) {
      gg_tval *t = &c->v[ins[k]];
      for (int64_t i = 0; i < t->nelem; i++) {
        float *f = (float *)t->data + i;
        int32_t *q = (int32_t *)t->data + i;
        if (op == GG_OP_POW && k == 0)
          *f = frand(0.1f, 2.5f); /* no NaN from a < 0 */
        else if (op == GG_OP_POW && t->dtype == GG_DT_I32)
          *q = irand(-3, 3);
        else if (op == GG_OP_DIV && k == 1 && t->dtype == GG_DT_F32 && fabsf(*f) < 0.1f)
          *f = 0.5f; /* float x/0 is inf; int x/0 = 0 stays in */
        else if (t->dtype == GG_DT_I32)
          *q %= 8; /* ties for the comparisons */
        else if (op != GG_OP_DIV && op != GG_OP_POW)
          *f = (float)irand(-4, 4) * 0.5f;
      }
    }
    break;
  }
  case GG_OP_WHERE: {
    gg_dtype dt = irand(0, 2) == 0 ? GG_DT_I32 : GG_DT_F32;
    int64_t s3[GG_MAX_DIMS];
    int nb = irand(0, nd), nc = irand(0, nd);
    for (int i = 0; i < nb; i++)
      s2[i] = irand(0, 2) ? s[nd - nb + i] : 1;
    for (int i = 0; i < nc; i++)
      s3[i] = irand(0, 2) ? s[nd - nc + i] : 1;
    int which = irand(0, 2); /* which operand carries the full shape */
    ins[ni++] = tc_tensor(c, GG_DT_I32, which == 0 ? nd : nb, which == 0 ? s : s2, 0);
    ins[ni++] = tc_tensor(c, dt, which == 1 ? nd : nc, which == 1 ? s : s3, 0);
    ins[ni++] = tc_tensor(c, dt, which == 2 ? nd : nb, which == 2 ? s : s2, 1);
    for (int64_t i = 0; i < c->v[ins[0]].nelem; i++)
      ((int32_t *)c->v[ins[0]].data)[i] &= 1;
    break;
  }
  case GG_OP_NOT:
  case GG_OP_NEG:
  case GG_OP_CLIP:
  case GG_OP_CAST: {
    gg_dtype dt = op == GG_OP_NOT || irand(0, 1) ? GG_DT_I32 : GG_DT_F32;
    ins[ni++] = tc_tensor(c, dt, nd, s, 0);
    for (int64_t i = 0; dt == GG_DT_I32 && op == GG_OP_NOT && i < c->v[0].nelem; i++)
      ((int32_t *)c->v[0].data)[i] %= 2;
    for (int64_t i = 0; dt == GG_DT_F32 && i < c->v[0].nelem; i++)
      ((float *)c->v[0].data)[i] *= 40.0f;
    a->clip_min = frand(-30.0f, 10.0f), a->clip_max = a->clip_min + frand(0.0f, 40.0f);
    if (irand(0, 3) == 0) a->clip_min = -3.4028235e38f; /* FLT_MAX: no bound */
    if (irand(0, 3) == 0) a->clip_max = 3.4028235e38f;
    a->to = irand(0, 1) ? GG_DT_I32 : GG_DT_F32;
    /* Cast's rounding to float16 / bfloat16, or wrapping to a narrow int */
    a->cast_kind = a->to == GG_DT_F32 ? irand(GG_CAST_NONE, GG_CAST_BF16)
                                      : (irand(0, 1) ? irand(GG_CAST_U8, GG_CAST_BOOL) : 0);
    break;
  }
  case GG_OP_SQRT:
  case GG_OP_LOG:
  case GG_OP_RECIPROCAL:
    ins[ni++] = tc_tensor(c, GG_DT_F32, nd, s, 0);
    for (int64_t i = 0; i < c->v[0].nelem; i++)
      ((float *)c->v[0].data)[i] =
          frand(0.05f, 8.0f) * (op == GG_OP_RECIPROCAL && irand(0, 1) ? -1.0f : 1.0f);
    break;
  case GG_OP_EXP:
  case GG_OP_ERF:
  case GG_OP_TANH:
  case GG_OP_SOFTPLUS:
  case GG_OP_HARD_SIGMOID:
  case GG_OP_HARD_SWISH:
  case GG_OP_GELU:
  case GG_OP_LOG_SOFTMAX:
    ins[ni++] = tc_tensor(c, GG_DT_F32, nd, s, 0);
    for (int64_t i = 0; i < c->v[0].nelem; i++)
      ((float *)c->v[0].data)[i] *= op == GG_OP_SOFTPLUS || op == GG_OP_LOG_SOFTMAX ? 30.0f : 4.0f;
    a->alpha = frand(0.05f, 0.5f), a->beta = frand(0.2f, 0.8f), a->approximate = irand(0, 1);
    break;
  case GG_OP_REDUCE_MAX:
  case GG_OP_REDUCE_MIN:
  case GG_OP_REDUCE_L2: {
    gg_dtype dt = op != GG_OP_REDUCE_L2 && irand(0, 3) == 0 ? GG_DT_I32 : GG_DT_F32;
    ins[ni++] = tc_tensor(c, dt, nd, s, 0);
    int32_t ax[GG_MAX_DIMS];
    int na = 0, form = irand(0, 3); /* 0: no axes input, 1: empty axes, else some */
    for (int i = 0; form > 1 && i < nd; i++)
      if (irand(0, 1)) ax[na++] = irand(0, 1) ? i : i - nd;
    if (form) ins[ni++] = tc_ints(c, na, ax);
    a->keep_dims = irand(0, 1);
    break;
  }
  case GG_OP_LAYER_NORM: {
    int ax = irand(0, nd - 1);
    ins[ni++] = tc_tensor(c, GG_DT_F32, nd, s, 0);
    int ns = nd - ax;
    for (int i = 0; i < ns; i++)
      s2[i] = irand(0, 3) ? s[ax + i] : 1;
    ins[ni++] = tc_tensor(c, GG_DT_F32, ns, s2, 1);
    if (irand(0, 1)) ins[ni++] = tc_tensor(c, GG_DT_F32, ns, s2, 1);
    a->axis = ax, a->epsilon = frand(1e-6f, 1e-2f);
    nout = irand(1, 3);
    break;
  }
  case GG_OP_INSTANCE_NORM:
  case GG_OP_GROUP_NORM: {
    int g = irand(1, 3);
    int64_t x[4] = {irand(1, 2), g * irand(1, 3), irand(1, 6), irand(1, 6)};
    ins[ni++] = tc_tensor(c, GG_DT_F32, irand(3, 4), x, 0);
    ins[ni++] = tc_tensor(c, GG_DT_F32, 1, &x[1], 1);
    ins[ni++] = tc_tensor(c, GG_DT_F32, 1, &x[1], 1);
    a->groups = g, a->epsilon = frand(1e-6f, 1e-2f);
    break;
  }
    /* -- end of group E cases -- */
    /* -- group S cases (src/engine/ops-shape.c) -- */
  case GG_OP_BATCH_MATMUL: {
    int64_t m = irand(1, 9), k = irand(1, 17), nn = irand(1, 13), sa[GG_MAX_DIMS], sb[GG_MAX_DIMS];
    int na = irand(1, 4), nb = irand(0, 2) ? irand(1, 2) : irand(3, 4); /* XNNPACK: 2-D b */
    int nbat = (na > nb ? na : nb) - 2;
    int64_t bat[GG_MAX_DIMS];
    rand_shape(nbat > 0 ? nbat : 0, bat, 1, 3);
    for (int i = 0; i < na - 2; i++) /* batch dims: suffix of bat, some broadcast (1) */
      sa[i] = irand(0, 2) ? bat[nbat - (na - 2) + i] : 1;
    for (int i = 0; i < nb - 2; i++)
      sb[i] = irand(0, 2) ? bat[nbat - (nb - 2) + i] : 1;
    if (na == 1) sa[0] = k;
    else sa[na - 2] = m, sa[na - 1] = k;
    if (nb == 1) sb[0] = k;
    else sb[nb - 2] = k, sb[nb - 1] = nn;
    ins[ni++] = tc_tensor(c, GG_DT_F32, na, sa, 0);
    ins[ni++] = tc_tensor(c, GG_DT_F32, nb, sb, irand(0, 1));
    break;
  }
  case GG_OP_SLICE: {
    ins[ni++] = tc_tensor(c, irand(0, 3) ? GG_DT_F32 : GG_DT_I32, nd, s, 0);
    a->n_slice = irand(1, nd);
    int perm[GG_MAX_DIMS];
    for (int i = 0; i < nd; i++)
      perm[i] = i;
    for (int i = nd - 1; i > 0; i--) {
      int j = irand(0, i), t = perm[i];
      perm[i] = perm[j], perm[j] = t;
    }
    for (int i = 0; i < a->n_slice; i++) {
      a->slice_axes[i] = irand(0, 1) ? perm[i] : perm[i] - nd;
      a->slice_starts[i] = irand(-8, 8), a->slice_ends[i] = irand(-8, 8);
      a->slice_steps[i] = irand(0, 1) ? irand(1, 3) : -irand(1, 3);
      if (irand(0, 5) == 0) a->slice_ends[i] = a->slice_steps[i] > 0 ? INT64_MAX : INT64_MIN;
    }
    break;
  }
  case GG_OP_GATHER: {
    ins[ni++] = tc_tensor(c, irand(0, 3) ? GG_DT_F32 : GG_DT_I32, nd, s, 0);
    a->axis = irand(-nd, nd - 1);
    int ax = a->axis < 0 ? a->axis + nd : a->axis, qd = irand(0, 2);
    if (nd + qd - 1 > GG_MAX_DIMS) qd = 1;
    rand_shape(qd, s2, 1, 4);
    int ti = tc_tensor(c, GG_DT_I32, qd, s2, irand(0, 1));
    for (int64_t i = 0; i < c->v[ti].nelem; i++) /* in range, negative ones too */
      ((int32_t *)c->v[ti].data)[i] = irand((int)-s[ax], (int)s[ax] - 1);
    ins[ni++] = ti;
    break;
  }
  case GG_OP_EXPAND: {
    int xd = irand(1, nd);
    for (int i = 0; i < xd; i++)
      s2[i] = irand(0, 1) ? s[nd - xd + i] : 1;
    ins[ni++] = tc_tensor(c, GG_DT_F32, xd, s2, 0);
    int32_t t[GG_MAX_DIMS];
    for (int i = 0; i < nd; i++) /* 1 in the shape keeps x's dim */
      t[i] = i >= nd - xd && irand(0, 3) == 0 ? 1 : (int32_t)s[i];
    ins[ni++] = tc_ints(c, nd, t);
    break;
  }
  case GG_OP_TILE: {
    rand_shape(nd, s, 1, 4);
    ins[ni++] = tc_tensor(c, irand(0, 3) ? GG_DT_F32 : GG_DT_I32, nd, s, 0);
    int32_t r[GG_MAX_DIMS];
    for (int i = 0; i < nd; i++)
      r[i] = irand(0, 8) ? irand(1, 3) : 0;
    ins[ni++] = tc_ints(c, nd, r);
    break;
  }
  case GG_OP_SHAPE:
    ins[ni++] = tc_tensor(c, GG_DT_F32, nd, s, 0);
    a->n_slice = irand(0, 1);
    a->slice_starts[0] = irand(-5, 5), a->slice_ends[0] = irand(-5, 5);
    break;
  case GG_OP_RANGE: {
    int64_t one = 1;
    gg_dtype dt = irand(0, 1) ? GG_DT_F32 : GG_DT_I32;
    for (int i = 0; i < 3; i++) {
      int t = tc_tensor(c, dt, 0, &one, 1);
      int v = i == 2 ? (irand(0, 1) ? irand(1, 4) : -irand(1, 4)) : irand(-20, 20);
      if (dt == GG_DT_F32) ((float *)c->v[t].data)[0] = (float)v * 0.75f;
      else ((int32_t *)c->v[t].data)[0] = v;
      ins[ni++] = t;
    }
    break;
  }
  case GG_OP_CONSTANT_OF_SHAPE: {
    int32_t t[GG_MAX_DIMS];
    for (int i = 0; i < nd; i++)
      t[i] = (int32_t)s[i];
    ins[ni++] = tc_ints(c, irand(0, nd), t);
    a->to = irand(0, 1) ? GG_DT_F32 : GG_DT_I32;
    a->fill = (float)irand(-3, 3) * 1.5f;
    break;
  }
  case GG_OP_AVGPOOL: {
    int64_t x[4] = {irand(1, 2), irand(2, 10), irand(2, 10), irand(1, 6)};
    ins[ni++] = tc_tensor(c, GG_DT_F32, 4, x, 0);
    a->ksize[0] = irand(1, 3), a->ksize[1] = irand(1, 3);
    a->strides[0] = irand(1, 2), a->strides[1] = irand(1, 2);
    a->padding = (gg_padding)irand(0, 2);
    for (int i = 0; i < 4; i++)
      a->pads[i] = a->padding == GG_PAD_EXPLICIT ? irand(0, a->ksize[i / 2] - 1) : 0;
    a->count_include_pad = irand(0, 1), a->ceil_mode = irand(0, 1);
    break;
  }
  case GG_OP_CONV_TRANSPOSE: {
    int groups = irand(1, 2), cig = irand(1, 3), cog = irand(1, 3);
    int64_t x[4] = {irand(1, 2), irand(1, 6), irand(1, 6), cig * groups};
    int64_t w[4] = {irand(1, 3), irand(1, 3), cog, x[3]};
    ins[ni++] = tc_tensor(c, GG_DT_F32, 4, x, 0);
    ins[ni++] = tc_tensor(c, GG_DT_F32, 4, w, 1);
    a->groups = groups;
    for (int d = 0; d < 2; d++) {
      a->strides[d] = irand(1, 3), a->dilations[d] = irand(1, 2);
      a->pads[2 * d] = irand(0, 1), a->pads[2 * d + 1] = irand(0, 1);
      a->output_padding[d] = irand(0, a->strides[d] - 1);
    }
    if (irand(0, 1)) {
      int64_t co = cog * groups;
      ins[ni++] = tc_tensor(c, GG_DT_F32, 1, &co, 1);
    }
    a->act = (gg_act)irand(0, 2); /* none, relu, relu6 (fused by fold.c) */
    break;
  }
  case GG_OP_RESIZE: {
    int64_t x[4] = {irand(1, 2), irand(1, 7), irand(1, 7), irand(1, 4)};
    a->resize_mode = (gg_resize_mode)irand(0, 2);
    ins[ni++] = tc_tensor(c, a->resize_mode == GG_RESIZE_NEAREST && irand(0, 2) == 0 ? GG_DT_I32 : GG_DT_F32, 4, x, 0);
    a->coord_mode = (gg_coord_mode)irand(0, 6);
    a->nearest_mode = (gg_nearest_mode)irand(0, 3);
    a->cubic_a = irand(0, 1) ? -0.75f : -0.5f;
    a->exclude_outside = irand(0, 1);
    a->extrapolation = 10.0f;
    a->roi[0] = 0.1f, a->roi[1] = 0.2f, a->roi[2] = 0.9f, a->roi[3] = 1.1f;
    for (int d = 0; d < 2; d++) {
      a->out_hw[d] = irand(1, 12);
      a->scale_hw[d] = irand(0, 1) ? (float)a->out_hw[d] / (float)x[1 + d] + 0.1f : 0.0f;
    }
    if (irand(0, 2) == 0) { /* exactly 2x, asymmetric: nearest ties (x.5) for the rounding rule */
      for (int d = 0; d < 2; d++)
        a->out_hw[d] = 2 * x[1 + d], a->scale_hw[d] = irand(0, 1) ? 2.0f : 0.0f;
      a->coord_mode = GG_COORD_ASYMMETRIC;
      if (irand(0, 1)) a->resize_mode = GG_RESIZE_NEAREST;
    }
    if (a->resize_mode == GG_RESIZE_LINEAR && irand(0, 1)) {
      /* TF-compatible linear: XNNPACK's resize-bilinear takes it */
      a->coord_mode = (gg_coord_mode)irand(0, 3);
      a->exclude_outside = 0, a->scale_hw[0] = a->scale_hw[1] = 0.0f;
    }
    break;
  }
    /* -- end of group S cases -- */
    /* -- group W cases (N-D window ops, channel-first) -- */
  case GG_OP_MAXPOOL_ND:
  case GG_OP_AVGPOOL_ND:
  case GG_OP_CONV_ND:
  case GG_OP_CONV_TRANSPOSE_ND: {
    int k = irand(1, 3), conv = op == GG_OP_CONV_ND || op == GG_OP_CONV_TRANSPOSE_ND;
    int groups = conv ? irand(1, 2) : 1, cig = irand(1, 3), cog = irand(1, 3);
    int64_t x[5] = {irand(1, 2), cig * groups}, w[5];
    for (int i = 0; i < k; i++)
      x[2 + i] = irand(3, 6);
    ins[ni++] = tc_tensor(c, GG_DT_F32, k + 2, x, 0);
    a->nd_auto = irand(0, 4) == 0 ? irand(1, 3) : GG_AUTO_NOTSET;
    for (int i = 0; i < k; i++) {
      a->nd_k[i] = irand(1, 3), a->nd_s[i] = irand(1, 2), a->nd_d[i] = irand(1, 2);
      a->nd_pads[i] = irand(0, a->nd_k[i] - 1), a->nd_pads[k + i] = irand(0, a->nd_k[i] - 1);
      if (op == GG_OP_CONV_TRANSPOSE_ND) a->nd_out_pad[i] = irand(0, a->nd_s[i] - 1);
    }
    if (conv) {
      int tr = op == GG_OP_CONV_TRANSPOSE_ND;
      w[0] = tr ? x[1] : cog * groups, w[1] = tr ? cog : cig;
      for (int i = 0; i < k; i++)
        w[2 + i] = a->nd_k[i];
      ins[ni++] = tc_tensor(c, GG_DT_F32, k + 2, w, 1);
      a->groups = groups;
      if (irand(0, 1)) {
        int64_t co = cog * groups;
        ins[ni++] = tc_tensor(c, GG_DT_F32, 1, &co, 1);
      }
      if (tr && irand(0, 3) == 0)
        for (int i = 0; i < k; i++)
          a->nd_out_shape[i] = x[2 + i] * a->nd_s[i] + irand(-1, 1);
    } else {
      a->ceil_mode = irand(0, 1), a->count_include_pad = irand(0, 1);
      if (op == GG_OP_MAXPOOL_ND && k <= 2 && irand(0, 1)) a->storage_order = 1;
      if (op == GG_OP_MAXPOOL_ND && irand(0, 1)) nout = 2; /* Indices */
    }
    break;
  }
    /* -- end of group W cases -- */
  case GG_OP_EINSUM: {
    /* ONNX Einsum forms (labels a..z), a label size 1 in one operand now
     * and then (broadcast) */
    static const char *const k_forms[][3] = {
        {"ij", NULL, "ji"},   {"ii", NULL, "i"},   {"zii", NULL, "zi"}, {"ij", NULL, ""},
        {"bij", "bjk", "bk"}, {"i", "j", "ij"},    {"ij", "ij", ""},    {"zij", "zjk", "zik"},
        {"ii", "ij", "j"},    {"abc", "cb", "ca"},
    };
    const char *const *f = k_forms[irand(0, (int)(sizeof k_forms / sizeof k_forms[0]) - 1)];
    int64_t size[26];
    for (int l = 0; l < 26; l++)
      size[l] = irand(1, 5);
    int dt1 = irand(0, 3) == 0; /* I32 now and then */
    for (int k = 0; k < 3; k++) {
      const char *lab = f[k];
      a->ein_n[k] = lab ? (int)strlen(lab) : 0;
      for (int d = 0; lab && lab[d]; d++)
        a->ein_lab[k][d] = (signed char)(lab[d] - 'a');
      if (k == 2 || !lab) continue;
      int64_t sh[GG_MAX_DIMS];
      for (int d = 0; lab[d]; d++)
        sh[d] = size[lab[d] - 'a'];
      if (f[1] && irand(0, 3) == 0 && sh[0] > 1 && strchr(f[1 - k], lab[0]) &&
          !strchr(lab + 1, lab[0]))
        sh[0] = 1; /* broadcast against the other operand */
      ins[ni++] = tc_tensor(c, dt1 ? GG_DT_I32 : GG_DT_F32, a->ein_n[k], sh, irand(0, 1));
    }
    break;
  }
    /* -- group X cases -- */
  case GG_OP_UNARY_X: {
    a->fn = irand(0, GG_UX_COUNT - 1);
    gg_dtype dt = a->fn == GG_UX_SIGN && irand(0, 1) ? GG_DT_I32 : GG_DT_F32;
    int t = tc_tensor(c, dt, nd, s, 0);
    float lo = -3.0f, hi = 3.0f; /* inside each function's domain: no NaN to compare */
    if (a->fn == GG_UX_ASIN || a->fn == GG_UX_ACOS || a->fn == GG_UX_ATANH) lo = -0.99f, hi = 0.99f;
    if (a->fn == GG_UX_ACOSH) lo = 1.0f, hi = 5.0f;
    if (a->fn == GG_UX_TAN) lo = -1.5f, hi = 1.5f;
    for (int64_t i = 0; dt == GG_DT_F32 && i < c->v[t].nelem; i++)
      ((float *)c->v[t].data)[i] = frand(lo, hi);
    if (dt == GG_DT_F32 && c->v[t].nelem > 1 && a->fn == GG_UX_ISINF)
      ((float *)c->v[t].data)[0] = INFINITY, ((float *)c->v[t].data)[1] = -INFINITY;
    ins[ni++] = t;
    a->alpha = frand(0.2f, 1.5f), a->beta = frand(0.0f, 1.0f), a->gamma = frand(0.5f, 1.5f);
    a->flags = irand(0, 3);
    break;
  }
  case GG_OP_BINARY_X: {
    a->fn = irand(0, GG_BX_COUNT - 1);
    gg_dtype dt = a->fn == GG_BX_MOD || a->fn >= GG_BX_AND || irand(0, 1) ? GG_DT_I32 : GG_DT_F32;
    int nb = irand(1, nd);
    for (int i = 0; i < nb; i++)
      s2[i] = irand(0, 2) ? s[nd - nb + i] : 1;
    int swap = irand(0, 3) == 0;
    ins[ni++] = tc_tensor(c, dt, swap ? nb : nd, swap ? s2 : s, 0);
    ins[ni++] = tc_tensor(c, dt, swap ? nd : nb, swap ? s : s2, irand(0, 1));
    for (int k = 0; k < 2; k++)
      for (int64_t i = 0; i < c->v[ins[k]].nelem; i++) {
        if (dt == GG_DT_F32 && fabsf(((float *)c->v[ins[k]].data)[i]) < 0.1f)
          ((float *)c->v[ins[k]].data)[i] = 0.5f; /* fmod by 0 is NaN */
        if (dt == GG_DT_I32 && a->fn >= GG_BX_AND) ((int32_t *)c->v[ins[k]].data)[i] = irand(0, 1);
      }
    break;
  }
  case GG_OP_REDUCE_X: {
    a->fn = irand(0, GG_RX_COUNT - 1);
    gg_dtype dt = a->fn <= GG_RX_L1 && irand(0, 2) == 0 ? GG_DT_I32 : GG_DT_F32;
    int t = tc_tensor(c, dt, nd, s, 0);
    for (int64_t i = 0; dt == GG_DT_F32 && i < c->v[t].nelem; i++)
      if (a->fn == GG_RX_LOG_SUM) ((float *)c->v[t].data)[i] = frand(0.1f, 2.0f);
      else if (a->fn == GG_RX_PROD) ((float *)c->v[t].data)[i] = frand(0.5f, 1.5f);
    for (int64_t i = 0; dt == GG_DT_I32 && i < c->v[t].nelem; i++)
      ((int32_t *)c->v[t].data)[i] = irand(-3, 3);
    ins[ni++] = t;
    int32_t ax[GG_MAX_DIMS];
    int na = 0;
    for (int i = 0; i < nd; i++)
      if (irand(0, 1)) ax[na++] = irand(0, 1) ? i : i - nd;
    ins[ni++] = tc_ints(c, na, ax); /* none: every axis */
    a->keep_dims = irand(0, 1);
    break;
  }
  case GG_OP_ARG_X:
  case GG_OP_HARDMAX: {
    gg_dtype dt = op == GG_OP_ARG_X && irand(0, 2) == 0 ? GG_DT_I32 : GG_DT_F32;
    int t = tc_tensor(c, dt, nd, s, 0);
    for (int64_t i = 0; dt == GG_DT_F32 && i < c->v[t].nelem; i++) /* ties */
      ((float *)c->v[t].data)[i] = (float)irand(-3, 3);
    ins[ni++] = t;
    a->axis = irand(-nd, nd - 1), a->keep_dims = irand(0, 1), a->fn = irand(0, 1);
    a->flags = irand(0, 1);
    break;
  }
  case GG_OP_CUMSUM: {
    ins[ni++] = tc_tensor(c, irand(0, 2) ? GG_DT_F32 : GG_DT_I32, nd, s, 0);
    int32_t ax = irand(-nd, nd - 1);
    int t = tc_tensor(c, GG_DT_I32, 0, s2, 1);
    ((int32_t *)c->v[t].data)[0] = ax;
    ins[ni++] = t;
    a->flags = irand(0, 3);
    break;
  }
  case GG_OP_GATHER_ELEMENTS:
  case GG_OP_SCATTER_ELEMENTS: {
    gg_dtype dt = irand(0, 2) ? GG_DT_F32 : GG_DT_I32;
    ins[ni++] = tc_tensor(c, dt, nd, s, 0);
    a->axis = irand(-nd, nd - 1);
    int ax = a->axis < 0 ? a->axis + nd : a->axis;
    for (int i = 0; i < nd; i++)
      s2[i] = i == ax ? irand(1, 5) : irand(1, (int)s[i]);
    int ti = tc_tensor(c, GG_DT_I32, nd, s2, irand(0, 1));
    for (int64_t i = 0; i < c->v[ti].nelem; i++)
      ((int32_t *)c->v[ti].data)[i] = irand((int)-s[ax], (int)s[ax] - 1);
    ins[ni++] = ti;
    if (op == GG_OP_SCATTER_ELEMENTS) ins[ni++] = tc_tensor(c, dt, nd, s2, 0), a->fn = irand(0, 4);
    break;
  }
  case GG_OP_GATHER_ND:
  case GG_OP_SCATTER_ND: {
    gg_dtype dt = irand(0, 2) ? GG_DT_F32 : GG_DT_I32;
    nd = irand(1, 4);
    rand_shape(nd, s, 1, 6);
    ins[ni++] = tc_tensor(c, dt, nd, s, 0);
    int b = op == GG_OP_GATHER_ND ? irand(0, nd - 1) : 0, k = irand(1, nd - b), q = 0;
    a->axis = b;
    for (int i = 0; i < b; i++)
      s2[q++] = s[i];
    int extra = irand(0, 1);
    for (int i = 0; i < extra; i++)
      s2[q++] = irand(1, 3);
    s2[q++] = k;
    int ti = tc_tensor(c, GG_DT_I32, q, s2, irand(0, 1));
    for (int64_t i = 0; i < c->v[ti].nelem; i++) {
      int d = b + (int)(i % k);
      ((int32_t *)c->v[ti].data)[i] = irand((int)-s[d], (int)s[d] - 1);
    }
    ins[ni++] = ti;
    if (op == GG_OP_SCATTER_ND) {
      int64_t us[GG_MAX_DIMS];
      int un = 0;
      for (int i = 0; i < q - 1; i++)
        us[un++] = s2[i];
      for (int i = k; i < nd; i++)
        us[un++] = s[i];
      ins[ni++] = tc_tensor(c, dt, un, us, 0);
      a->fn = irand(0, 4);
    }
    break;
  }
  case GG_OP_TRILU: {
    nd = irand(2, 4);
    rand_shape(nd, s, 1, 6);
    ins[ni++] = tc_tensor(c, irand(0, 2) ? GG_DT_F32 : GG_DT_I32, nd, s, 0);
    if (irand(0, 3)) {
      int t = tc_tensor(c, GG_DT_I32, irand(0, 1), (int64_t[]){1}, irand(0, 1));
      ((int32_t *)c->v[t].data)[0] = irand(-4, 4);
      ins[ni++] = t;
    }
    a->flags = irand(0, 1);
    break;
  }
  case GG_OP_LRN: {
    nd = irand(2, 4);
    rand_shape(nd, s, 1, 6);
    ins[ni++] = tc_tensor(c, GG_DT_F32, nd, s, 0);
    a->size = irand(1, 5), a->alpha = frand(1e-4f, 1e-2f), a->beta = frand(0.5f, 1.0f);
    a->gamma = frand(0.5f, 2.0f);
    break;
  }
  case GG_OP_TOPK: {
    gg_dtype dt = irand(0, 2) ? GG_DT_F32 : GG_DT_I32;
    int t = tc_tensor(c, dt, nd, s, 0);
    for (int64_t i = 0; dt == GG_DT_F32 && i < c->v[t].nelem; i++) /* ties */
      ((float *)c->v[t].data)[i] = (float)irand(-4, 4);
    ins[ni++] = t;
    a->axis = irand(-nd, nd - 1);
    int ax = a->axis < 0 ? a->axis + nd : a->axis;
    int tk = tc_tensor(c, GG_DT_I32, 1, (int64_t[]){1}, 1);
    ((int32_t *)c->v[tk].data)[0] = irand(0, (int)s[ax]);
    ins[ni++] = tk;
    a->flags = irand(0, 3), nout = 2;
    break;
  }
  case GG_OP_ONE_HOT: {
    nd = irand(1, 3);
    rand_shape(nd, s, 1, 6); /* the dims past the first draw's nd were never set */
    int depth = irand(1, 6);
    gg_dtype dt = irand(0, 1) ? GG_DT_F32 : GG_DT_I32;
    int t = tc_tensor(c, dt, nd, s, 0);
    for (int64_t i = 0; i < c->v[t].nelem; i++) {
      int v = irand(-depth - 1, depth);
      if (dt == GG_DT_F32) ((float *)c->v[t].data)[i] = (float)v;
      else ((int32_t *)c->v[t].data)[i] = v;
    }
    ins[ni++] = t;
    int td = tc_tensor(c, GG_DT_I32, 0, s2, 1);
    ((int32_t *)c->v[td].data)[0] = depth;
    ins[ni++] = td;
    ins[ni++] = tc_tensor(c, irand(0, 1) ? GG_DT_F32 : GG_DT_I32, 1, (int64_t[]){2}, 1);
    a->axis = irand(-nd - 1, nd);
    break;
  }
  case GG_OP_EYE_LIKE:
    rand_shape(2, s, 1, 6);
    ins[ni++] = tc_tensor(c, GG_DT_F32, 2, s, 0);
    a->to = irand(0, 1) ? GG_DT_F32 : GG_DT_I32, a->axis = irand(-4, 4);
    break;
  case GG_OP_QUANTIZE:
  case GG_OP_DEQUANTIZE: {
    int q = op == GG_OP_QUANTIZE, ax = irand(0, nd - 1), per_axis = irand(0, 1);
    int xt = tc_tensor(c, q ? GG_DT_F32 : GG_DT_I32, nd, s, 0);
    for (int64_t i = 0; i < c->v[xt].nelem; i++) /* quantized values, or ties at scale 0.5 */
      if (q)
        ((float *)c->v[xt].data)[i] = (float)irand(-600, 600) * 0.25f;
      else
        ((int32_t *)c->v[xt].data)[i] = irand(-128, 255);
    ins[ni++] = xt;
    a->axis = irand(0, 1) ? ax : ax - nd;
    s2[0] = per_axis ? s[ax] : 1;
    int st = tc_tensor(c, GG_DT_F32, per_axis || irand(0, 1), s2, irand(0, 1));
    for (int64_t i = 0; i < c->v[st].nelem; i++)
      ((float *)c->v[st].data)[i] = (float)irand(1, 8) * 0.25f;
    ins[ni++] = st;
    if (irand(0, 2)) {
      int zt = tc_tensor(c, GG_DT_I32, c->v[st].ndim, s2, irand(0, 1));
      for (int64_t i = 0; i < c->v[zt].nelem; i++)
        ((int32_t *)c->v[zt].data)[i] = irand(-20, 200);
      ins[ni++] = zt;
    }
    a->cast_kind = GG_CAST_U8 + irand(0, 3); /* U8, I8, U16, I16 */
    a->flags = q ? irand(0, 1) | irand(0, 1) << 2 : 0;
    break;
  }
    /* -- end of group X cases -- */
  default: return GG_EUNSUPPORTED;
  }
  tc_node(c, op, ni, ins, nout);
  char msg[256];
  int rc = gg__op_infer(&c->n, c->v, msg, sizeof msg);
  for (int k = 0; !rc && k < nout; k++) {
    gg_tval *o = &c->v[c->out[k]];
    o->data = calloc((size_t)o->nelem + 16, 4);
    if (!o->data) rc = GG_ENOMEM;
  }
  int p = 0;
  for (int i = 0; i < ni && p < (int)sizeof c->desc - 40; i++) {
    char b[64];
    p += snprintf(c->desc + p, sizeof c->desc - (size_t)p, "%s%s", i ? " " : "",
                  gg__shape_str(c->v[ins[i]].shape, c->v[ins[i]].ndim, b, sizeof b));
  }
  return rc;
}

/* Per-op error bound, relative to max(1, |reference|): summation order
 * differs (XNNPACK's GEMM, fma), and exp/rsqrt use approximations. */
static double tolerance(gg_op op) {
  switch (op) {
  case GG_OP_CONV2D:
  case GG_OP_DEPTHWISE:
  case GG_OP_MATMUL:
  case GG_OP_BATCH_MATMUL:
  case GG_OP_CONV_TRANSPOSE:
  case GG_OP_CONV_ND:
  case GG_OP_CONV_TRANSPOSE_ND:
  case GG_OP_AVGPOOL_ND:
  case GG_OP_SUM:
  case GG_OP_MEAN: return 1e-4;
  case GG_OP_SIGMOID:
  case GG_OP_SOFTMAX:
  case GG_OP_RSQRT:
  case GG_OP_RESIZE_BILINEAR:
  case GG_OP_RESIZE: return 1e-5;
  case GG_OP_LAYER_NORM: /* group E: libm / reductions a device may do otherwise */
  case GG_OP_INSTANCE_NORM:
  case GG_OP_GROUP_NORM:
  case GG_OP_REDUCE_L2:
  case GG_OP_LOG_SOFTMAX: return 1e-4;
  case GG_OP_POW:
  case GG_OP_EXP:
  case GG_OP_LOG:
  case GG_OP_ERF:
  case GG_OP_TANH:
  case GG_OP_SOFTPLUS:
  case GG_OP_GELU: return 1e-5;
  default: return 1e-6;
  }
}

/* Runs c on be; returns 0 with *err = max relative error over all outputs,
 * 1 when the backend does not take the node, or an error code. */
static int run_on(gg_backend *be, tcase *c, double *err) {
  *err = 0;
  if (!be->iface->supports_node(be, &c->n, c->v)) return 1;
  /* The naive reference on host memory. */
  gg_tval ref[MAXT];
  memcpy(ref, c->v, sizeof ref);
  for (int k = 0; k < c->n.n_out; k++) {
    gg_tval *o = &ref[c->out[k]];
    o->data = calloc((size_t)o->nelem + 16, 4);
  }
  gg__kctx kc = {NULL};
  int rc = gg__op_run(&c->n, ref, &kc);
  /* The backend: every tensor in one buffer of its buffer type. */
  uint64_t slack = be->iface->read_slack ? be->iface->read_slack(be) : 0, off[MAXT], total = 0;
  for (int i = 0; i < c->nt; i++) {
    off[i] = total;
    total += ((uint64_t)c->v[i].nelem * 4 + slack + 63) / 64 * 64;
  }
  gg_backend_buffer *buf = NULL;
  void *state = NULL;
  gg_tval view[MAXT];
  memcpy(view, c->v, sizeof view);
  if (!rc) rc = be->iface->buffer_alloc(be, total + slack, "test/backend-ops", &buf);
  for (int i = 0; !rc && i < c->nt; i++) {
    gg_tval *t = &view[i];
    void *hp = gg_backend_buffer_host_ptr(buf, off[i]);
    int is_out = 0;
    for (int k = 0; k < c->n.n_out; k++)
      is_out |= c->out[k] == i;
    t->buf = buf, t->offs = off[i];
    t->data = hp ? hp : (t->is_const ? c->v[i].data : NULL);
    if (!is_out) rc = gg_backend_buffer_set(buf, off[i], c->v[i].data, (size_t)c->v[i].nelem * 4);
  }
  uint64_t ws = 0;
  if (!rc && be->iface->prepare) rc = be->iface->prepare(be, &c->n, view, &state, &ws);
  if (rc == GG_EUNSUPPORTED || rc == GG_EINVAL) rc = 1; /* taken back at prepare */
  if (!rc) rc = be->iface->run_node(be, &c->n, view, state);
  if (!rc && be->iface->synchronize) rc = be->iface->synchronize(be);
  for (int k = 0; !rc && k < c->n.n_out; k++) {
    int t = c->out[k];
    const gg_tval *r = &ref[t];
    rc = gg_backend_buffer_get(buf, off[t], c->v[t].data, (size_t)r->nelem * 4);
    for (int64_t i = 0; !rc && i < r->nelem; i++) {
      double want = r->dtype == GG_DT_F32 ? ((float *)r->data)[i] : ((int32_t *)r->data)[i];
      double got =
          r->dtype == GG_DT_F32 ? ((float *)c->v[t].data)[i] : ((int32_t *)c->v[t].data)[i];
      double d = fabs(got - want) / fmax(1.0, fabs(want));
      *err = gg_t_max_err(*err, d != d ? INFINITY : d);
    }
  }
  if (state && be->iface->release) be->iface->release(be, state);
  gg_backend_buffer_free(buf);
  for (int k = 0; k < c->n.n_out; k++)
    free(ref[c->out[k]].data);
  return rc;
}

static const gg_op k_ops[] = {
    GG_OP_IDENTITY,
    GG_OP_CONV2D,
    GG_OP_DEPTHWISE,
    GG_OP_MATMUL,
    GG_OP_ADD,
    GG_OP_SUB,
    GG_OP_MUL,
    GG_OP_MAXIMUM,
    GG_OP_MINIMUM,
    GG_OP_ABS,
    GG_OP_SQUARE,
    GG_OP_RSQRT,
    GG_OP_RELU,
    GG_OP_RELU6,
    GG_OP_LEAKY_RELU,
    GG_OP_SIGMOID,
    GG_OP_SOFTMAX,
    GG_OP_SUM,
    GG_OP_MEAN,
    GG_OP_MAXPOOL,
    GG_OP_PAD,
    GG_OP_RESHAPE,
    GG_OP_SQUEEZE,
    GG_OP_TRANSPOSE,
    GG_OP_CONCAT,
    GG_OP_SPLITV,
    GG_OP_RESIZE_BILINEAR,
    GG_OP_SPARSE_TO_DENSE,
    GG_OP_PRELU,
    GG_OP_DEPTH_TO_SPACE,
    GG_OP_RESIZE_NEAREST,
    /* -- group E ops -- */
    GG_OP_DIV,
    GG_OP_POW,
    GG_OP_EQUAL,
    GG_OP_GREATER,
    GG_OP_LESS,
    GG_OP_NOT,
    GG_OP_WHERE,
    GG_OP_SQRT,
    GG_OP_EXP,
    GG_OP_LOG,
    GG_OP_NEG,
    GG_OP_RECIPROCAL,
    GG_OP_ERF,
    GG_OP_TANH,
    GG_OP_SOFTPLUS,
    GG_OP_HARD_SIGMOID,
    GG_OP_HARD_SWISH,
    GG_OP_GELU,
    GG_OP_CLIP,
    GG_OP_CAST,
    GG_OP_LOG_SOFTMAX,
    GG_OP_REDUCE_MAX,
    GG_OP_REDUCE_MIN,
    GG_OP_REDUCE_L2,
    GG_OP_LAYER_NORM,
    GG_OP_INSTANCE_NORM,
    GG_OP_GROUP_NORM,
    /* -- end of group E ops -- */
    /* -- group S ops -- */
    GG_OP_BATCH_MATMUL,
    GG_OP_SLICE,
    GG_OP_GATHER,
    GG_OP_EXPAND,
    GG_OP_TILE,
    GG_OP_SHAPE,
    GG_OP_RANGE,
    GG_OP_CONSTANT_OF_SHAPE,
    GG_OP_AVGPOOL,
    GG_OP_CONV_TRANSPOSE,
    GG_OP_RESIZE,
    /* -- end of group S ops -- */
    /* -- group W ops -- */
    GG_OP_MAXPOOL_ND,
    GG_OP_AVGPOOL_ND,
    GG_OP_CONV_ND,
    GG_OP_CONV_TRANSPOSE_ND,
    /* -- end of group W ops -- */
    GG_OP_EINSUM,
    /* -- group X ops -- */
    GG_OP_UNARY_X,
    GG_OP_BINARY_X,
    GG_OP_REDUCE_X,
    GG_OP_ARG_X,
    GG_OP_CUMSUM,
    GG_OP_GATHER_ELEMENTS,
    GG_OP_GATHER_ND,
    GG_OP_TRILU,
    GG_OP_HARDMAX,
    GG_OP_LRN,
    GG_OP_TOPK,
    GG_OP_ONE_HOT,
    GG_OP_EYE_LIKE,
    GG_OP_SCATTER_ND,
    GG_OP_SCATTER_ELEMENTS,
    GG_OP_QUANTIZE,
    GG_OP_DEQUANTIZE,
    /* -- end of group X ops -- */
};
#define N_OPS ((int)(sizeof k_ops / sizeof k_ops[0]))

/* Every op executable in a graph is in k_ops (a new op must be added). */
static void test_ops_listed(void) {
  int listed[GG_OP_COUNT] = {0};
  for (int i = 0; i < N_OPS; i++)
    listed[k_ops[i]] = 1;
  for (int op = 0; op < GG_OP_COUNT; op++)
    if (op != GG_OP_CONST && op != GG_OP_PLACEHOLDER && !listed[op])
      GG_T_FAIL("op %s has no case in test-backend-ops", gg__op_name((gg_op)op));
}

/* Runs every op's random cases on the backend `name`, opening a device of
 * its kind when it needs one. */
static void check_backend(const char *name) {
  const gg_backend_reg *r = gg_backend_find(name);
  if (!r) SKIP("backend '%s': not registered in this build", name);
  gg_device *dev = NULL;
  gg_pool *pool = NULL;
  if (r->device_kind >= 0) {
    char spec[64];
    snprintf(spec, sizeof spec, "%s",
             r->device_kind == GG_DEVICE_SIM ? "sim:mem=256M"
                                             : gg_device_kind_name((gg_device_kind)r->device_kind));
    int rc = gg_device_open(spec, &dev);
    if (!rc) rc = gg_pool_new(dev, NULL, &pool);
    if (rc) {
      gg_device_free(dev);
      SKIP("backend '%s': cannot open a %s device (%s)", name, spec, gg_err_name(rc));
    }
  }
  gg_backend_params p = {dev, pool, 1, 0};
  gg_backend *be = NULL;
  char why[256] = "";
  int rc = gg_backend_init_by_name(name, &p, &be, why, sizeof why);
  if (rc) {
    gg_pool_free(pool);
    gg_device_free(dev);
    SKIP("backend '%s': %s (%s)", name, why, gg_err_name(rc));
  }
  const char *seed = getenv("GG_TEST_SEED");
  uint64_t s0 = seed && *seed ? strtoull(seed, NULL, 10) : 1;
  int bad = 0, ran = 0;
  for (int i = 0; i < N_OPS; i++) {
    gg_op op = k_ops[i];
    g_rng = 0x9E3779B97F4A7C15ull * (s0 + (uint64_t)op);
    int ok = 0, unsupported = 0, failed = 0;
    double worst = 0;
    char worst_desc[224] = "";
    for (int k = 0; k < CONFIGS; k++) {
      tcase c;
      int tries = 0;
      while (build(&c, op) && tries++ < 50)
        tc_free(&c);
      double e = 0;
      int rr = run_on(be, &c, &e);
      if (rr == 1)
        unsupported++;
      else if (rr == 0 && e <= tolerance(op))
        ok++;
      else {
        failed++;
        if (rr) e = INFINITY;
      }
      if (rr != 1 && (e > worst || e != e || !worst_desc[0])) {
        worst = e != e ? INFINITY : (e > worst ? e : worst);
        snprintf(worst_desc, sizeof worst_desc, "%s%s%s", c.desc, rr > 1 || rr < 0 ? " error " : "",
                 rr < 0 ? gg_err_name(rr) : "");
      }
      tc_free(&c);
    }
    if (ok + failed) ran++;
    fprintf(stderr, "  %-8s %-16s %2d/%d ok%s", name, gg__op_name(op), ok, ok + failed,
            failed ? "  FAIL" : "");
    if (ok + failed)
      fprintf(stderr, "  max err %.2g (tol %.0e) worst: %s", worst, tolerance(op), worst_desc);
    if (unsupported) fprintf(stderr, "  (%d not supported)", unsupported);
    fprintf(stderr, "\n");
    bad += failed;
  }
  gg_backend_free(be);
  gg_pool_free(pool);
  gg_device_free(dev);
  ASSERT_EQ(bad, 0);
  ASSERT_GE(ran, 1);
}

static void test_naive(void) {
  check_backend("naive");
}
static void test_xnnpack(void) {
  check_backend("xnnpack");
}
static void test_sim(void) {
  check_backend("sim");
}
static void test_opencl(void) {
  check_backend("opencl");
}

/* Backends registered beyond the ones named above (plugins). */
static void test_others(void) {
  int n = 0;
  for (int i = 0; i < gg_backend_count(); i++) {
    const char *nm = gg_backend_get(i)->name;
    if (!strcmp(nm, "naive") || !strcmp(nm, "xnnpack") || !strcmp(nm, "sim") ||
        !strcmp(nm, "opencl"))
      continue;
    check_backend(nm);
    n++;
  }
  if (!n) SKIP("no other backend registered");
}

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_WARN);
  static const gg_test_case cases[] = {
      {"ops_listed", test_ops_listed},
      {"naive", test_naive},
      {"xnnpack", test_xnnpack},
      {"sim", test_sim},
      {"opencl", test_opencl},
      {"others", test_others},
      {NULL, NULL},
  };
  return gg_test_main(argc, argv, cases);
}
