/* Tests for src/engine/xnn: every XNNPACK wrapper against a naive reference
 * computed here, on random data and several shapes (TF SAME padding, stride 2,
 * depthwise, dilation, grouped, broadcasting), with 1 and 2 threads. */
#include "engine/xnn.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "test.h"

#include <float.h>
#include <stdint.h>

/* ---------------------------------------------------------------- helpers */

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* uniform in [-1, 1) */
  g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((g_rng >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f;
}

/* Buffers get GG_XNN_EXTRA_BYTES of readable slack, as xnn.h requires. */
static float *buf_new(size_t n) {
  float *p = calloc(n * sizeof(float) + GG_XNN_EXTRA_BYTES, 1);
  if (!p) abort();
  return p;
}
static float *buf_rand(size_t n) {
  float *p = buf_new(n);
  for (size_t i = 0; i < n; i++) p[i] = frand();
  return p;
}

/* Max |a - b| / max(1, |b|) over n floats. */
static double max_err(const float *a, const float *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]) / fmax(1.0, fabs((double)b[i]));
    if (isnan(d)) return NAN; /* any NaN fails the caller's `e <= bound` */
    if (d > m) m = d;
  }
  return m;
}

static float act_apply(gg_xnn_act act, float v, float lo, float hi) {
  switch (act) {
  case GG_XNN_ACT_RELU: return v < 0 ? 0 : v;
  case GG_XNN_ACT_RELU6: return v < 0 ? 0 : v > 6 ? 6 : v;
  case GG_XNN_ACT_CLAMP: return v < lo ? lo : v > hi ? hi : v;
  default: return v;
  }
}

static gg_xnn_threadpool *g_pool[2];
static int g_have;

static int setup_pools(void) {
  if (!gg_xnn_available()) return 0;
  if (!g_pool[0]) {
    if (gg_xnn_threadpool_new(1, &g_pool[0]) || gg_xnn_threadpool_new(2, &g_pool[1])) return 0;
    g_have = 1;
  }
  return g_have;
}

#define NEED_XNN()                                                             \
  do {                                                                         \
    if (!setup_pools()) SKIP("XNNPACK not in this build (GG_HAVE_XNNPACK unset)"); \
  } while (0)

/* ---------------------------------------------------------------- conv */

typedef struct conv_case {
  size_t n, h, w, c, oc;
  uint32_t kh, kw, sh, sw, dh, dw, groups;
  int same; /* 1: TF SAME pads, 0: VALID, 2: explicit asymmetric pads below */
  uint32_t pt, pl, pb, pr;
  gg_xnn_act act;
  int bias;
} conv_case;

static void conv_ref(const gg_xnn_conv2d_params *p, const float *in, const float *f,
                     const float *bias, float *out, size_t oh, size_t ow) {
  uint32_t g = p->groups ? p->groups : 1;
  size_t gin = p->in_c / g, gout = p->out_c / g;
  for (size_t b = 0; b < p->batch; b++)
    for (size_t y = 0; y < oh; y++)
      for (size_t x = 0; x < ow; x++)
        for (size_t oc = 0; oc < p->out_c; oc++) {
          size_t grp = oc / gout;
          double acc = bias ? bias[oc] : 0;
          for (size_t ky = 0; ky < p->kernel_h; ky++)
            for (size_t kx = 0; kx < p->kernel_w; kx++) {
              long iy = (long)(y * p->stride_h + ky * p->dilation_h) - (long)p->pad_top;
              long ix = (long)(x * p->stride_w + kx * p->dilation_w) - (long)p->pad_left;
              if (iy < 0 || ix < 0 || iy >= (long)p->in_h || ix >= (long)p->in_w) continue;
              for (size_t i = 0; i < gin; i++)
                acc += (double)in[((b * p->in_h + (size_t)iy) * p->in_w + (size_t)ix) * p->in_c +
                                  grp * gin + i] *
                       f[((ky * p->kernel_w + kx) * gin + i) * p->out_c + oc];
            }
          out[((b * oh + y) * ow + x) * p->out_c + oc] =
              act_apply(p->act, (float)acc, p->clamp_min, p->clamp_max);
        }
}

static void run_conv_case(const conv_case *cc, int t) {
  gg_xnn_conv2d_params p = {0};
  p.batch = cc->n, p.in_h = cc->h, p.in_w = cc->w, p.in_c = cc->c, p.out_c = cc->oc;
  p.kernel_h = cc->kh, p.kernel_w = cc->kw, p.stride_h = cc->sh, p.stride_w = cc->sw;
  p.dilation_h = cc->dh, p.dilation_w = cc->dw, p.groups = cc->groups, p.act = cc->act;
  p.clamp_min = -0.5f, p.clamp_max = 0.5f;
  if (cc->same == 1) {
    gg_xnn_same_pads(cc->h, cc->kh, cc->sh, cc->dh, &p.pad_top, &p.pad_bottom);
    gg_xnn_same_pads(cc->w, cc->kw, cc->sw, cc->dw, &p.pad_left, &p.pad_right);
  } else if (cc->same == 2) {
    p.pad_top = cc->pt, p.pad_left = cc->pl, p.pad_bottom = cc->pb, p.pad_right = cc->pr;
  }
  size_t oh = gg_xnn_out_dim(cc->h, cc->kh, cc->sh, cc->dh, p.pad_top, p.pad_bottom);
  size_t ow = gg_xnn_out_dim(cc->w, cc->kw, cc->sw, cc->dw, p.pad_left, p.pad_right);
  if (cc->same == 1) {
    ASSERT_EQ(oh, (cc->h + cc->sh - 1) / cc->sh);
    ASSERT_EQ(ow, (cc->w + cc->sw - 1) / cc->sw);
  }
  uint32_t g = cc->groups ? cc->groups : 1;
  size_t nin = cc->n * cc->h * cc->w * cc->c, nout = cc->n * oh * ow * cc->oc;
  size_t nf = (size_t)cc->kh * cc->kw * (cc->c / g) * cc->oc;
  float *in = buf_rand(nin), *f = buf_rand(nf), *bias = cc->bias ? buf_rand(cc->oc) : NULL;
  float *out = buf_new(nout), *ref = buf_new(nout);
  /* Inputs in [-4, 4) so that outputs pass ReLU6's upper clamp (checked below). */
  for (size_t i = 0; i < nin; i++) in[i] *= 4.0f;
  for (size_t i = 0; i < nout; i++) out[i] = NAN;
  gg_xnn_op *op = NULL;
  int rc = gg_xnn_conv2d_new(&p, f, bias, g_pool[t], &op);
  if (rc == 0) rc = gg_xnn_op_bind(op, in, NULL, out);
  if (rc == 0) rc = gg_xnn_op_run(op);
  size_t elems = gg_xnn_op_out_elems(op);
  gg_xnn_op_free(op);
  conv_ref(&p, in, f, bias, ref, oh, ow);
  double e = max_err(out, ref, nout);
  size_t clamped = 0;
  for (size_t i = 0; i < nout; i++) clamped += ref[i] == 6.0f;
  free(in), free(f), free(bias), free(out), free(ref);
  if (rc) GG_T_FAIL("conv %zux%zux%zu k%ux%u s%u d%u g%u: %s", cc->h, cc->w, cc->c, cc->kh,
                    cc->kw, cc->sh, cc->dh, g, gg_err_name(rc));
  ASSERT_EQ(elems, nout);
  if (cc->act == GG_XNN_ACT_RELU6 && !clamped)
    GG_T_FAIL("conv %zux%zux%zu: no output reached ReLU6's clamp: the case cannot test it",
              cc->h, cc->w, cc->c);
  if (!(e <= 1e-4))
    GG_T_FAIL("conv %zux%zux%zu->%zu k%ux%u s%u d%u g%u pads %u,%u,%u,%u threads %d: err %g",
              cc->h, cc->w, cc->c, cc->oc, cc->kh, cc->kw, cc->sh, cc->dh, g, p.pad_top,
              p.pad_left, p.pad_bottom, p.pad_right, t + 1, e);
}

static void test_conv2d(void) {
  NEED_XNN();
  static const conv_case cases[] = {
      /* n h  w  c  oc  kh kw sh sw dh dw g  same */
      {1, 8, 8, 3, 8, 3, 3, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, GG_XNN_ACT_NONE, 1},  /* SAME */
      {1, 9, 7, 3, 16, 3, 3, 2, 2, 1, 1, 0, 1, 0, 0, 0, 0, GG_XNN_ACT_RELU, 1}, /* SAME s2 odd */
      {2, 6, 6, 4, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, GG_XNN_ACT_RELU6, 0}, /* 1x1 VALID */
      {1, 10, 10, 8, 8, 3, 3, 1, 1, 1, 1, 8, 1, 0, 0, 0, 0, GG_XNN_ACT_RELU6, 1}, /* depthwise */
      {1, 11, 11, 8, 8, 3, 3, 2, 2, 1, 1, 8, 1, 0, 0, 0, 0, GG_XNN_ACT_NONE, 1}, /* dw s2 */
      {1, 12, 12, 4, 8, 3, 3, 1, 1, 1, 1, 4, 1, 0, 0, 0, 0, GG_XNN_ACT_NONE, 1}, /* dw mult 2 */
      {1, 12, 12, 6, 6, 5, 5, 1, 1, 1, 1, 6, 1, 0, 0, 0, 0, GG_XNN_ACT_CLAMP, 1}, /* dw 5x5 */
      {1, 13, 13, 4, 6, 3, 3, 1, 1, 2, 2, 0, 1, 0, 0, 0, 0, GG_XNN_ACT_NONE, 1}, /* dilation 2 */
      {1, 13, 13, 4, 4, 3, 3, 1, 1, 2, 2, 4, 1, 0, 0, 0, 0, GG_XNN_ACT_NONE, 1}, /* dw dil 2 */
      {1, 8, 8, 8, 12, 3, 3, 1, 1, 1, 1, 2, 1, 0, 0, 0, 0, GG_XNN_ACT_NONE, 1},  /* grouped */
      {1, 7, 9, 5, 7, 3, 2, 1, 2, 1, 1, 0, 2, 1, 0, 2, 1, GG_XNN_ACT_NONE, 1},  /* asym pads */
      {1, 16, 16, 3, 24, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0, GG_XNN_ACT_RELU, 1}, /* VALID s2 */
  };
  for (int t = 0; t < 2; t++)
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      int before = gg_t_failed_checks;
      run_conv_case(&cases[i], t);
      if (gg_t_failed_checks != before) return;
    }
}

static void test_conv2d_bad(void) {
  NEED_XNN();
  gg_log_set_level(GG_LOG_OFF); /* the refusals below log errors by design */
  float f[3 * 3 * 3 * 4] = {0};
  gg_xnn_op *op = (gg_xnn_op *)1;
  gg_xnn_conv2d_params p = {.batch = 1, .in_h = 4, .in_w = 4, .in_c = 3, .out_c = 4,
                            .kernel_h = 3, .kernel_w = 3, .groups = 2};
  ASSERT_EQ(gg_xnn_conv2d_new(&p, f, NULL, g_pool[0], &op), GG_EINVAL); /* 2 !| 3 */
  ASSERT_TRUE(op == NULL);
  p.groups = 1;
  p.kernel_h = 5; /* window larger than the input, VALID */
  ASSERT_EQ(gg_xnn_conv2d_new(&p, f, NULL, g_pool[0], &op), GG_EINVAL);
  p.kernel_h = 3;
  ASSERT_EQ(gg_xnn_conv2d_new(&p, NULL, NULL, g_pool[0], &op), GG_EINVAL);
  p.act = GG_XNN_ACT_CLAMP; /* empty clamp range [0, 0] */
  ASSERT_EQ(gg_xnn_conv2d_new(&p, f, NULL, g_pool[0], &op), GG_EINVAL);
  p.act = GG_XNN_ACT_NONE;
  ASSERT_OK(gg_xnn_conv2d_new(&p, f, NULL, g_pool[0], &op));
  ASSERT_EQ(gg_xnn_op_run(op), GG_ESTATE); /* not bound */
  float in[64] = {0}, out[64];
  ASSERT_EQ(gg_xnn_op_bind(op, in, in, out), GG_EINVAL); /* b must be NULL */
  gg_log_set_level(GG_LOG_INFO);
  ASSERT_OK(gg_xnn_op_bind(op, in, NULL, out));
  ASSERT_OK(gg_xnn_op_run(op));
  ASSERT_STREQ(gg_xnn_op_name(op), "conv2d");
  gg_xnn_op_free(op);
  gg_xnn_op_free(NULL);
}

/* SAME pads match TensorFlow's formula on known values. */
static void test_same_pads(void) {
  uint32_t a, b;
  gg_xnn_same_pads(9, 3, 2, 1, &a, &b); /* out 5, need 11 -> total 2 */
  ASSERT_EQ(a, 1);
  ASSERT_EQ(b, 1);
  gg_xnn_same_pads(8, 3, 2, 1, &a, &b); /* out 4, need 9 -> total 1: 0 top, 1 bottom */
  ASSERT_EQ(a, 0);
  ASSERT_EQ(b, 1);
  gg_xnn_same_pads(13, 3, 1, 2, &a, &b); /* eff 5 -> total 4 */
  ASSERT_EQ(a, 2);
  ASSERT_EQ(b, 2);
  gg_xnn_same_pads(4, 1, 1, 1, &a, &b);
  ASSERT_EQ(a + b, 0);
  ASSERT_EQ(gg_xnn_out_dim(8, 3, 2, 1, 0, 1), 4);
  ASSERT_EQ(gg_xnn_out_dim(2, 3, 1, 1, 0, 0), 0);
}

/* ---------------------------------------------------------------- fc */

static void test_fc(void) {
  NEED_XNN();
  static const size_t shapes[][3] = {{1, 128, 10}, {3, 17, 5}, {4, 64, 192}, {1, 1, 1}};
  for (int t = 0; t < 2; t++)
    for (size_t s = 0; s < 4; s++)
      for (int tb = 0; tb < 2; tb++) {
        size_t m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
        float *in = buf_rand(m * k), *w = buf_rand(k * n), *bias = buf_rand(n);
        float *out = buf_new(m * n), *ref = buf_new(m * n);
        gg_xnn_fc_params p = {.rows = m, .in_ch = k, .out_ch = n, .transpose_b = tb,
                              .act = tb ? GG_XNN_ACT_RELU : GG_XNN_ACT_NONE};
        for (size_t i = 0; i < m; i++)
          for (size_t j = 0; j < n; j++) {
            double acc = bias[j];
            for (size_t q = 0; q < k; q++)
              acc += (double)in[i * k + q] * (tb ? w[j * k + q] : w[q * n + j]);
            ref[i * n + j] = act_apply(p.act, (float)acc, 0, 0);
          }
        gg_xnn_op *op = NULL;
        int rc = gg_xnn_fc_new(&p, w, bias, g_pool[t], &op);
        if (!rc) rc = gg_xnn_op_bind(op, in, NULL, out);
        if (!rc) rc = gg_xnn_op_run(op);
        gg_xnn_op_free(op);
        double e = max_err(out, ref, m * n);
        free(in), free(w), free(bias), free(out), free(ref);
        ASSERT_OK(rc);
        if (!(e <= 1e-4)) GG_T_FAIL("fc %zux%zux%zu tb %d: err %g", m, k, n, tb, e);
      }
}

/* ---------------------------------------------------------------- pooling */

static void pool_ref(const gg_xnn_pool2d_params *p, int is_max, const float *in, float *out,
                     size_t oh, size_t ow) {
  for (size_t b = 0; b < p->batch; b++)
    for (size_t y = 0; y < oh; y++)
      for (size_t x = 0; x < ow; x++)
        for (size_t c = 0; c < p->channels; c++) {
          double acc = is_max ? -INFINITY : 0;
          int cnt = 0;
          for (size_t ky = 0; ky < p->kernel_h; ky++)
            for (size_t kx = 0; kx < p->kernel_w; kx++) {
              long iy = (long)(y * p->stride_h + ky) - (long)p->pad_top;
              long ix = (long)(x * p->stride_w + kx) - (long)p->pad_left;
              if (iy < 0 || ix < 0 || iy >= (long)p->in_h || ix >= (long)p->in_w) continue;
              double v = in[((b * p->in_h + (size_t)iy) * p->in_w + (size_t)ix) * p->channels + c];
              acc = is_max ? fmax(acc, v) : acc + v;
              cnt++;
            }
          out[((b * oh + y) * ow + x) * p->channels + c] =
              (float)(is_max ? acc : acc / (cnt ? cnt : 1));
        }
}

static void test_pool2d(void) {
  NEED_XNN();
  /* h, w, c, k, stride, same */
  static const uint32_t cases[][6] = {
      {8, 8, 4, 2, 2, 0}, {9, 9, 3, 3, 2, 1}, {7, 10, 5, 3, 1, 1}, {6, 6, 16, 2, 2, 1},
      {5, 5, 2, 5, 1, 0}};
  for (int t = 0; t < 2; t++)
    for (int is_max = 0; is_max < 2; is_max++)
      for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gg_xnn_pool2d_params p = {.batch = 2, .in_h = cases[i][0], .in_w = cases[i][1],
                                  .channels = cases[i][2], .kernel_h = cases[i][3],
                                  .kernel_w = cases[i][3], .stride_h = cases[i][4],
                                  .stride_w = cases[i][4]};
        if (cases[i][5]) {
          gg_xnn_same_pads(p.in_h, p.kernel_h, p.stride_h, 1, &p.pad_top, &p.pad_bottom);
          gg_xnn_same_pads(p.in_w, p.kernel_w, p.stride_w, 1, &p.pad_left, &p.pad_right);
        }
        size_t oh = gg_xnn_out_dim(p.in_h, p.kernel_h, p.stride_h, 1, p.pad_top, p.pad_bottom);
        size_t ow = gg_xnn_out_dim(p.in_w, p.kernel_w, p.stride_w, 1, p.pad_left, p.pad_right);
        size_t nin = p.batch * p.in_h * p.in_w * p.channels, nout = p.batch * oh * ow * p.channels;
        float *in = buf_rand(nin), *out = buf_new(nout), *ref = buf_new(nout);
        pool_ref(&p, is_max, in, ref, oh, ow);
        gg_xnn_op *op = NULL;
        int rc = is_max ? gg_xnn_max_pool2d_new(&p, g_pool[t], &op)
                        : gg_xnn_avg_pool2d_new(&p, g_pool[t], &op);
        if (!rc) rc = gg_xnn_op_bind(op, in, NULL, out);
        if (!rc) rc = gg_xnn_op_run(op);
        size_t elems = gg_xnn_op_out_elems(op);
        gg_xnn_op_free(op);
        double e = max_err(out, ref, nout);
        free(in), free(out), free(ref);
        ASSERT_OK(rc);
        ASSERT_EQ(elems, nout);
        if (!(e <= 1e-5))
          GG_T_FAIL("%s case %zu (pads %u,%u,%u,%u): err %g", is_max ? "max" : "avg", i,
                    p.pad_top, p.pad_left, p.pad_bottom, p.pad_right, e);
      }
}

static void test_global_avg_pool(void) {
  NEED_XNN();
  size_t n = 2, hw = 7 * 5, c = 19;
  float *in = buf_rand(n * hw * c), *out = buf_new(n * c), *ref = buf_new(n * c);
  for (size_t b = 0; b < n; b++)
    for (size_t ch = 0; ch < c; ch++) {
      double s = 0;
      for (size_t i = 0; i < hw; i++) s += in[(b * hw + i) * c + ch];
      ref[b * c + ch] = (float)(s / (double)hw);
    }
  gg_xnn_op *op = NULL;
  int rc = gg_xnn_global_avg_pool_new(n, hw, c, g_pool[1], &op);
  if (!rc) rc = gg_xnn_op_bind(op, in, NULL, out);
  if (!rc) rc = gg_xnn_op_run(op);
  gg_xnn_op_free(op);
  double e = max_err(out, ref, n * c);
  free(in), free(out), free(ref);
  ASSERT_OK(rc);
  ASSERT_LE_F(e, 1e-5);
}

/* ---------------------------------------------------------------- elementwise */

static double bin_ref(gg_xnn_binary_op o, double a, double b) {
  switch (o) {
  case GG_XNN_ADD: return a + b;
  case GG_XNN_SUB: return a - b;
  case GG_XNN_MUL: return a * b;
  case GG_XNN_DIV: return a / b;
  case GG_XNN_MAX: return fmax(a, b);
  case GG_XNN_MIN: return fmin(a, b);
  case GG_XNN_SQDIFF: return (a - b) * (a - b);
  default: return NAN;
  }
}

/* Index into a tensor of rank nd_t (right-aligned in rank nd) for the
 * broadcast output coordinate idx[0..nd). */
static size_t bcast_index(const size_t *idx, size_t nd, const size_t *shape, size_t nd_t) {
  size_t off = 0;
  for (size_t i = 0; i < nd_t; i++) {
    size_t d = shape[i];
    size_t coord = idx[nd - nd_t + i];
    off = off * d + (d == 1 ? 0 : coord);
  }
  return off;
}

static void test_binary(void) {
  NEED_XNN();
  typedef struct {
    size_t na, a[4], nb, b[4];
  } bc;
  static const bc shapes[] = {
      {4, {1, 5, 6, 8}, 4, {1, 5, 6, 8}}, /* same shape */
      {4, {1, 5, 6, 8}, 1, {8}},          /* per-channel (BiasAdd) */
      {4, {2, 5, 6, 8}, 0, {0}},          /* scalar */
      {3, {4, 1, 3}, 3, {1, 5, 3}},       /* both broadcast */
      {2, {7, 1}, 4, {2, 3, 1, 9}},       /* rank differs */
  };
  for (int o = 0; o < GG_XNN_BINARY_COUNT; o++)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      const bc *sc = &shapes[s];
      gg_xnn_binary_params p = {.op = (gg_xnn_binary_op)o, .a_ndim = sc->na, .b_ndim = sc->nb};
      memcpy(p.a_shape, sc->a, sizeof sc->a);
      memcpy(p.b_shape, sc->b, sizeof sc->b);
      if (o == GG_XNN_ADD && s == 1) p.act = GG_XNN_ACT_RELU6;
      size_t nd = sc->na > sc->nb ? sc->na : sc->nb, oshape[4], na = 1, nb = 1, nout = 1;
      for (size_t i = 0; i < nd; i++) {
        size_t da = i + sc->na >= nd ? sc->a[i + sc->na - nd] : 1;
        size_t db = i + sc->nb >= nd ? sc->b[i + sc->nb - nd] : 1;
        oshape[i] = da > db ? da : db;
        nout *= oshape[i];
      }
      for (size_t i = 0; i < sc->na; i++) na *= sc->a[i];
      for (size_t i = 0; i < sc->nb; i++) nb *= sc->b[i];
      float *a = buf_rand(na), *b = buf_rand(nb), *out = buf_new(nout), *ref = buf_new(nout);
      if (o == GG_XNN_DIV)
        for (size_t i = 0; i < nb; i++) b[i] = b[i] < 0 ? b[i] - 0.5f : b[i] + 0.5f;
      for (size_t flat = 0; flat < nout; flat++) {
        size_t idx[4], r = flat;
        for (size_t i = nd; i-- > 0;) idx[i] = r % oshape[i], r /= oshape[i];
        double v = bin_ref((gg_xnn_binary_op)o, a[bcast_index(idx, nd, sc->a, sc->na)],
                           b[bcast_index(idx, nd, sc->b, sc->nb)]);
        ref[flat] = act_apply(p.act, (float)v, 0, 0);
      }
      gg_xnn_op *op = NULL;
      int rc = gg_xnn_binary_new(&p, g_pool[s & 1], &op);
      if (!rc) rc = gg_xnn_op_bind(op, a, b, out);
      if (!rc) rc = gg_xnn_op_run(op);
      size_t elems = gg_xnn_op_out_elems(op);
      gg_xnn_op_free(op);
      double e = max_err(out, ref, nout);
      free(a), free(b), free(out), free(ref);
      if (rc) GG_T_FAIL("binary op %d shapes %zu: %s", o, s, gg_err_name(rc));
      ASSERT_EQ(elems, nout);
      if (!(e <= 1e-5)) GG_T_FAIL("binary op %d shapes %zu: err %g", o, s, e);
    }
  /* Shapes that do not broadcast are refused. */
  gg_xnn_binary_params bad = {.op = GG_XNN_ADD, .a_ndim = 2, .a_shape = {3, 4}, .b_ndim = 1,
                              .b_shape = {3}};
  gg_xnn_op *op = NULL;
  gg_log_set_level(GG_LOG_OFF);
  int rc1 = gg_xnn_binary_new(&bad, g_pool[0], &op);
  bad.b_shape[0] = 4;
  bad.op = GG_XNN_MAX;
  bad.act = GG_XNN_ACT_RELU; /* no fused activation for max */
  int rc2 = gg_xnn_binary_new(&bad, g_pool[0], &op);
  gg_log_set_level(GG_LOG_INFO);
  ASSERT_EQ(rc1, GG_EINVAL);
  ASSERT_EQ(rc2, GG_EINVAL);
}

static double un_ref(gg_xnn_unary_op o, double x, double alpha) {
  switch (o) {
  case GG_XNN_COPY: return x;
  case GG_XNN_RELU: return x < 0 ? 0 : x;
  case GG_XNN_RELU6: return x < 0 ? 0 : x > 6 ? 6 : x;
  case GG_XNN_CLAMP: return x < -0.25 ? -0.25 : x > 0.5 ? 0.5 : x;
  case GG_XNN_LEAKY_RELU: return x >= 0 ? x : alpha * x;
  case GG_XNN_ELU: return x >= 0 ? x : alpha * (exp(x) - 1);
  case GG_XNN_SIGMOID: return 1 / (1 + exp(-x));
  case GG_XNN_ABS: return fabs(x);
  case GG_XNN_NEG: return -x;
  case GG_XNN_SQUARE: return x * x;
  case GG_XNN_SQRT: return sqrt(fabs(x));
  case GG_XNN_FLOOR: return floor(x);
  case GG_XNN_CEIL: return ceil(x);
  case GG_XNN_ROUND: return nearbyint(x);
  case GG_XNN_HARDSWISH: return x * fmin(fmax(x + 3, 0), 6) / 6;
  default: return NAN;
  }
}

static void test_unary(void) {
  NEED_XNN();
  static const size_t counts[] = {1, 7, 1000, 70001};
  for (int o = 0; o < GG_XNN_UNARY_COUNT; o++)
    for (size_t s = 0; s < 4; s++) {
      size_t n = counts[s];
      float *in = buf_rand(n), *out = buf_new(n), *ref = buf_new(n);
      for (size_t i = 0; i < n; i++) {
        in[i] *= 8.0f; /* cover relu6, sigmoid saturation, rounding */
        if (o == GG_XNN_SQRT) in[i] = fabsf(in[i]);
        if (o == GG_XNN_ROUND && i % 5 == 0) in[i] = (float)((long)in[i]) + 0.5f; /* ties */
      }
      gg_xnn_unary_params p = {.op = (gg_xnn_unary_op)o, .count = n, .alpha = 0.2f,
                               .clamp_min = -0.25f, .clamp_max = 0.5f};
      for (size_t i = 0; i < n; i++) ref[i] = (float)un_ref(p.op, in[i], p.alpha);
      gg_xnn_op *op = NULL;
      int rc = gg_xnn_unary_new(&p, g_pool[s & 1], &op);
      if (!rc) rc = gg_xnn_op_bind(op, in, NULL, out);
      if (!rc) rc = gg_xnn_op_run(op);
      gg_xnn_op_free(op);
      double e = max_err(out, ref, n);
      free(in), free(out), free(ref);
      if (rc) GG_T_FAIL("unary op %d n %zu: %s", o, n, gg_err_name(rc));
      if (!(e <= 1e-5)) GG_T_FAIL("unary op %d n %zu: err %g", o, n, e);
    }
}

static void test_unary_inplace(void) {
  NEED_XNN();
  size_t n = 333;
  float *x = buf_rand(n), *ref = buf_new(n);
  for (size_t i = 0; i < n; i++) ref[i] = x[i] >= 0 ? x[i] : 0.1f * x[i];
  gg_xnn_unary_params p = {.op = GG_XNN_LEAKY_RELU, .count = n, .alpha = 0.1f};
  gg_xnn_op *op = NULL;
  int rc = gg_xnn_unary_new(&p, g_pool[1], &op);
  if (!rc) rc = gg_xnn_op_bind(op, x, NULL, x);
  if (!rc) rc = gg_xnn_op_run(op);
  gg_xnn_op_free(op);
  double e = max_err(x, ref, n);
  free(x), free(ref);
  ASSERT_OK(rc);
  ASSERT_LE_F(e, 1e-6);
}

static void test_prelu(void) {
  NEED_XNN();
  size_t r = 37, c = 24;
  float *in = buf_rand(r * c), *alpha = buf_rand(c), *out = buf_new(r * c), *ref = buf_new(r * c);
  for (size_t i = 0; i < r * c; i++) ref[i] = in[i] >= 0 ? in[i] : alpha[i % c] * in[i];
  gg_xnn_op *op = NULL;
  int rc = gg_xnn_prelu_new(r, c, alpha, g_pool[1], &op);
  for (size_t i = 0; i < c; i++) alpha[i] = 1000; /* the op keeps its own copy */
  if (!rc) rc = gg_xnn_op_bind(op, in, NULL, out);
  if (!rc) rc = gg_xnn_op_run(op);
  gg_xnn_op_free(op);
  double e = max_err(out, ref, r * c);
  free(in), free(alpha), free(out), free(ref);
  ASSERT_OK(rc);
  if (!(e <= 1e-6)) GG_T_FAIL("prelu: err %g", e);
}

/* Concat of three parts along the last axis, then split back, with strided
 * copies bound at offsets. */
static void test_copy_strided(void) {
  NEED_XNN();
  size_t rows = 50, w[3] = {3, 8, 5}, total = 16;
  float *part[3], *back[3], *cat = buf_new(rows * total);
  int rc = 0;
  for (int i = 0; i < 3; i++) part[i] = buf_rand(rows * w[i]), back[i] = buf_new(rows * w[i]);
  size_t off = 0;
  for (int i = 0; i < 3 && !rc; i++) {
    gg_xnn_op *c = NULL, *s = NULL;
    rc = gg_xnn_copy_strided_new(rows, w[i], w[i], total, g_pool[i & 1], &c);
    if (!rc) rc = gg_xnn_op_bind(c, part[i], NULL, cat + off);
    if (!rc) rc = gg_xnn_op_run(c);
    if (!rc) rc = gg_xnn_copy_strided_new(rows, w[i], total, w[i], g_pool[0], &s);
    if (!rc) rc = gg_xnn_op_bind(s, cat + off, NULL, back[i]);
    gg_xnn_op_free(c);
    off += w[i];
    if (!rc) rc = gg_xnn_op_run(s);
    gg_xnn_op_free(s);
  }
  int cat_ok = 1, split_ok = 1;
  for (size_t r = 0; r < rows; r++) {
    size_t o = 0;
    for (int i = 0; i < 3; i++) {
      for (size_t k = 0; k < w[i]; k++) {
        cat_ok &= cat[r * total + o + k] == part[i][r * w[i] + k];
        split_ok &= back[i][r * w[i] + k] == part[i][r * w[i] + k];
      }
      o += w[i];
    }
  }
  for (int i = 0; i < 3; i++) free(part[i]), free(back[i]);
  free(cat);
  ASSERT_OK(rc);
  ASSERT_TRUE(cat_ok);
  ASSERT_TRUE(split_ok);
}

static void test_softmax(void) {
  NEED_XNN();
  static const size_t shapes[][2] = {{1, 2}, {3, 80}, {2034, 4}, {5, 1000}};
  for (size_t s = 0; s < 4; s++) {
    size_t r = shapes[s][0], c = shapes[s][1];
    float *in = buf_rand(r * c), *out = buf_new(r * c), *ref = buf_new(r * c);
    for (size_t i = 0; i < r * c; i++) in[i] *= 10;
    for (size_t i = 0; i < r; i++) {
      double mx = -INFINITY, sum = 0;
      for (size_t j = 0; j < c; j++) mx = fmax(mx, in[i * c + j]);
      for (size_t j = 0; j < c; j++) sum += exp(in[i * c + j] - mx);
      for (size_t j = 0; j < c; j++) ref[i * c + j] = (float)(exp(in[i * c + j] - mx) / sum);
    }
    gg_xnn_op *op = NULL;
    int rc = gg_xnn_softmax_new(r, c, g_pool[s & 1], &op);
    if (!rc) rc = gg_xnn_op_bind(op, in, NULL, out);
    if (!rc) rc = gg_xnn_op_run(op);
    gg_xnn_op_free(op);
    double e = max_err(out, ref, r * c);
    free(in), free(out), free(ref);
    ASSERT_OK(rc);
    if (!(e <= 1e-5)) GG_T_FAIL("softmax %zux%zu: err %g", r, c, e);
  }
}

/* ---------------------------------------------------------------- resize, pad */

/* TensorFlow's ResizeBilinear (resize_bilinear_op.cc), which tfjs follows. */
static void resize_ref(const gg_xnn_resize_params *p, const float *in, float *out) {
  float sy = p->align_corners && p->out_h > 1 ? (float)(p->in_h - 1) / (float)(p->out_h - 1)
                                              : (float)p->in_h / (float)p->out_h;
  float sx = p->align_corners && p->out_w > 1 ? (float)(p->in_w - 1) / (float)(p->out_w - 1)
                                              : (float)p->in_w / (float)p->out_w;
  for (size_t b = 0; b < p->batch; b++)
    for (size_t y = 0; y < p->out_h; y++) {
      float fy = p->half_pixel_centers ? ((float)y + 0.5f) * sy - 0.5f : (float)y * sy;
      float fy0 = floorf(fy);
      size_t y0 = fy0 < 0 ? 0 : (size_t)fy0;
      size_t y1 = (size_t)fminf(ceilf(fy), (float)(p->in_h - 1));
      if (fy < 0) y1 = 0;
      float ly = fy - fy0;
      for (size_t x = 0; x < p->out_w; x++) {
        float fx = p->half_pixel_centers ? ((float)x + 0.5f) * sx - 0.5f : (float)x * sx;
        float fx0 = floorf(fx);
        size_t x0 = fx0 < 0 ? 0 : (size_t)fx0;
        size_t x1 = (size_t)fminf(ceilf(fx), (float)(p->in_w - 1));
        if (fx < 0) x1 = 0;
        float lx = fx - fx0;
        for (size_t c = 0; c < p->channels; c++) {
#define PIX(yy, xx) in[((b * p->in_h + (yy)) * p->in_w + (xx)) * p->channels + c]
          float top = PIX(y0, x0) + (PIX(y0, x1) - PIX(y0, x0)) * lx;
          float bot = PIX(y1, x0) + (PIX(y1, x1) - PIX(y1, x0)) * lx;
#undef PIX
          out[((b * p->out_h + y) * p->out_w + x) * p->channels + c] = top + (bot - top) * ly;
        }
      }
    }
}

static void test_resize_bilinear(void) {
  NEED_XNN();
  static const size_t sizes[][4] = {{4, 4, 8, 8}, {5, 7, 10, 3}, {10, 10, 20, 20}, {6, 6, 3, 3}};
  for (int mode = 0; mode < 3; mode++)
    for (size_t s = 0; s < 4; s++) {
      gg_xnn_resize_params p = {.batch = 1, .in_h = sizes[s][0], .in_w = sizes[s][1],
                                .channels = 5, .out_h = sizes[s][2], .out_w = sizes[s][3],
                                .align_corners = mode == 1, .half_pixel_centers = mode == 2};
      size_t nin = p.in_h * p.in_w * p.channels, nout = p.out_h * p.out_w * p.channels;
      float *in = buf_rand(nin), *out = buf_new(nout), *ref = buf_new(nout);
      resize_ref(&p, in, ref);
      gg_xnn_op *op = NULL;
      int rc = gg_xnn_resize_bilinear_new(&p, g_pool[s & 1], &op);
      if (!rc) rc = gg_xnn_op_bind(op, in, NULL, out);
      if (!rc) rc = gg_xnn_op_run(op);
      gg_xnn_op_free(op);
      double e = max_err(out, ref, nout);
      free(in), free(out), free(ref);
      ASSERT_OK(rc);
      if (!(e <= 1e-5))
        GG_T_FAIL("resize %zux%zu->%zux%zu mode %d: err %g", p.in_h, p.in_w, p.out_h, p.out_w,
                  mode, e);
    }
}

static void test_pad(void) {
  NEED_XNN();
  size_t shape[4] = {1, 5, 6, 3}, pre[4] = {0, 1, 2, 0}, post[4] = {0, 2, 1, 1};
  size_t os[4], nin = 1, nout = 1;
  for (int i = 0; i < 4; i++) os[i] = shape[i] + pre[i] + post[i], nin *= shape[i], nout *= os[i];
  float *in = buf_rand(nin), *out = buf_new(nout), *ref = buf_new(nout);
  for (size_t y = 0; y < os[1]; y++)
    for (size_t x = 0; x < os[2]; x++)
      for (size_t c = 0; c < os[3]; c++) {
        long iy = (long)y - (long)pre[1], ix = (long)x - (long)pre[2];
        int inside = iy >= 0 && ix >= 0 && iy < (long)shape[1] && ix < (long)shape[2] &&
                     c < shape[3];
        ref[(y * os[2] + x) * os[3] + c] =
            inside ? in[((size_t)iy * shape[2] + (size_t)ix) * shape[3] + c] : -3.5f;
      }
  gg_xnn_op *op = NULL;
  int rc = gg_xnn_pad_new(4, shape, pre, post, -3.5f, g_pool[1], &op);
  if (!rc) rc = gg_xnn_op_bind(op, in, NULL, out);
  if (!rc) rc = gg_xnn_op_run(op);
  size_t elems = gg_xnn_op_out_elems(op);
  gg_xnn_op_free(op);
  double e = max_err(out, ref, nout);
  free(in), free(out), free(ref);
  ASSERT_OK(rc);
  ASSERT_EQ(elems, nout);
  ASSERT_TRUE(e == 0);
}

/* ---------------------------------------------------------------- memory, reuse */

/* Bytes are counted: a conv holds at least its packed weights while alive and
 * gives everything back when freed; running allocates nothing. */
static void test_mem_accounting(void) {
  NEED_XNN();
  gg_xnn_conv2d_params p = {.batch = 1, .in_h = 16, .in_w = 16, .in_c = 32, .out_c = 64,
                            .kernel_h = 3, .kernel_w = 3, .pad_top = 1, .pad_left = 1,
                            .pad_bottom = 1, .pad_right = 1};
  size_t nf = 3 * 3 * 32 * 64;
  float *f = buf_rand(nf), *in = buf_rand(16 * 16 * 32), *out = buf_new(16 * 16 * 64);
  uint64_t before = 0, after_new = 0, after_bind = 0, after_run = 0, after_free = 0, peak = 0;
  gg_xnn_mem_stats(&before, NULL);
  gg_xnn_op *op = NULL;
  ASSERT_OK(gg_xnn_conv2d_new(&p, f, NULL, g_pool[1], &op));
  gg_xnn_mem_stats(&after_new, NULL);
  ASSERT_OK(gg_xnn_op_bind(op, in, NULL, out));
  gg_xnn_mem_stats(&after_bind, NULL);
  for (int i = 0; i < 3; i++) ASSERT_OK(gg_xnn_op_run(op));
  gg_xnn_mem_stats(&after_run, &peak);
  uint64_t op_bytes = gg_xnn_op_bytes(op);
  gg_xnn_op_free(op);
  gg_xnn_mem_stats(&after_free, NULL);
  free(f), free(in), free(out);
  ASSERT_GE(after_new - before, nf * sizeof(float)); /* packed weights live in XNNPACK */
  ASSERT_GE(after_bind, after_new);                  /* indirection buffer */
  ASSERT_U64_EQ(after_run, after_bind);              /* nothing on the hot path */
  ASSERT_U64_EQ(op_bytes, after_bind - before);
  ASSERT_U64_EQ(after_free, before);
  ASSERT_GE(peak, after_bind);
}

/* Rebinding to new pointers works and a second run gives the same result. */
static void test_rebind(void) {
  NEED_XNN();
  gg_xnn_binary_params p = {.op = GG_XNN_MUL, .a_ndim = 1, .a_shape = {100}, .b_ndim = 1,
                            .b_shape = {100}};
  float *a = buf_rand(100), *b = buf_rand(100), *o1 = buf_new(100), *o2 = buf_new(100);
  gg_xnn_op *op = NULL;
  ASSERT_OK(gg_xnn_binary_new(&p, g_pool[0], &op));
  ASSERT_OK(gg_xnn_op_bind(op, a, b, o1));
  ASSERT_OK(gg_xnn_op_run(op));
  ASSERT_OK(gg_xnn_op_bind(op, b, a, o2));
  ASSERT_OK(gg_xnn_op_run(op));
  gg_xnn_op_free(op);
  int same = memcmp(o1, o2, 100 * sizeof(float)) == 0;
  float v = o1[17], want = a[17] * b[17];
  free(a), free(b), free(o1), free(o2);
  ASSERT_TRUE(same);
  ASSERT_NEAR(v, want, 1e-6);
}

static void test_available(void) {
  if (gg_xnn_available()) {
    ASSERT_OK(gg_xnn_init());
    gg_xnn_threadpool *tp = NULL;
    ASSERT_OK(gg_xnn_threadpool_new(3, &tp));
    ASSERT_EQ(gg_xnn_threadpool_threads(tp), 3);
    ASSERT_TRUE(gg_xnn_threadpool_get(tp) != NULL);
    gg_xnn_threadpool *one = NULL;
    ASSERT_OK(gg_xnn_threadpool_new(1, &one));
    int one_raw_null = gg_xnn_threadpool_get(one) == NULL;
    gg_xnn_threadpool_free(one);
    ASSERT_TRUE(one_raw_null); /* 1 thread: runs on the caller, no pool */
    gg_xnn_threadpool_free(tp);
    ASSERT_EQ(gg_xnn_threadpool_threads(NULL), 1);
    ASSERT_EQ(gg_xnn_threadpool_new(1, NULL), GG_EINVAL);
  } else {
    gg_xnn_threadpool *tp = NULL;
    ASSERT_EQ(gg_xnn_init(), GG_ENOTIMPL);
    ASSERT_EQ(gg_xnn_threadpool_new(2, &tp), GG_ENOTIMPL);
    SKIP("XNNPACK not in this build: checked that the stubs return GG_ENOTIMPL");
  }
}

int main(int argc, char **argv) {
  static const gg_test_case cases[] = {
      {"available", test_available},
      {"same_pads", test_same_pads},
      {"conv2d", test_conv2d},
      {"conv2d_bad", test_conv2d_bad},
      {"fc", test_fc},
      {"pool2d", test_pool2d},
      {"global_avg_pool", test_global_avg_pool},
      {"binary", test_binary},
      {"unary", test_unary},
      {"unary_inplace", test_unary_inplace},
      {"prelu", test_prelu},
      {"copy_strided", test_copy_strided},
      {"softmax", test_softmax},
      {"resize_bilinear", test_resize_bilinear},
      {"pad", test_pad},
      {"mem_accounting", test_mem_accounting},
      {"rebind", test_rebind},
      {NULL, NULL},
  };
  int rc = gg_test_main(argc, argv, cases);
  gg_xnn_threadpool_free(g_pool[0]);
  gg_xnn_threadpool_free(g_pool[1]);
  return rc;
}
