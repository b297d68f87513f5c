/* The group E ops (src/engine/ops-elem.c): each op against values computed
 * here independently (hand-written arrays, or a direct loop in double with
 * its own index arithmetic), broadcasting shapes, int paths, NaN and inf
 * where ONNX/numpy define them, keep_dims, the norms over several shapes and
 * axes, threaded against serial, and the shape rules' errors. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "test.h"

#include <float.h>
#include <stdint.h>

#if defined(__has_include)
#if __has_include(<pthreadpool.h>)
#include <pthreadpool.h>
#define HAVE_POOL 1
#endif
#endif

#define OPT_NODE_NAME "elem_node"
#include "op-harness.h"

/* ------------------------------------------------------------ binary */

static void test_div_broadcast(void) {
  /* [2,3,4] / [3,1]: y[i][j][k] = a[i][j][k] / b[j]. */
  float a[24], b[3] = {2.0f, -4.0f, 0.5f};
  double want[24];
  for (int i = 0; i < 24; i++) a[i] = (float)(i - 7) * 0.75f;
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 4; k++) want[(i * 3 + j) * 4 + k] = (double)a[(i * 3 + j) * 4 + k] / b[j];
  opt o;
  init(&o, GG_OP_DIV, 2, 1);
  set(&o, 0, GG_DT_F32, a, 3, S(2, 3, 4));
  set(&o, 1, GG_DT_F32, b, 2, S(3, 1));
  ASSERT_OK(ev(&o));
  EXPECT_SHAPE(&o, 0, 3, 2, 3, 4);
  EXPECT_F(&o, 0, want, 24, 1e-6);
  done(&o);
  /* Operands swapped: [3,1] / [2,3,4] (b[j] / a[i][j][k]). */
  init(&o, GG_OP_DIV, 2, 1);
  set(&o, 0, GG_DT_F32, b, 2, S(3, 1));
  set(&o, 1, GG_DT_F32, a, 3, S(2, 3, 4));
  ASSERT_OK(ev(&o));
  for (int i = 0; i < 24; i++) want[i] = (double)b[(i / 4) % 3] / a[i];
  EXPECT_F(&o, 0, want, 24, 1e-6);
  done(&o);
  /* A rank-0 divisor, and float division by zero: inf, -inf, NaN. */
  float z = 0.0f, c[4] = {1, -1, 0, NAN};
  init(&o, GG_OP_DIV, 2, 1);
  set(&o, 0, GG_DT_F32, c, 1, S(4));
  set(&o, 1, GG_DT_F32, &z, 0, NULL);
  ASSERT_OK(ev(&o));
  EXPECT_SHAPE(&o, 0, 1, 4);
  EXPECT_F(&o, 0, ((double[]){INFINITY, -INFINITY, NAN, NAN}), 4, 0);
  done(&o);
  /* [2,1,3] / [4,1]: both operands broadcast -> [2,4,3]. */
  float p[6] = {1, 2, 3, 4, 5, 6}, q[4] = {1, 2, 4, 8};
  double w3[24];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++)
      for (int k = 0; k < 3; k++) w3[(i * 4 + j) * 3 + k] = (double)p[i * 3 + k] / q[j];
  init(&o, GG_OP_DIV, 2, 1);
  set(&o, 0, GG_DT_F32, p, 3, S(2, 1, 3));
  set(&o, 1, GG_DT_F32, q, 2, S(4, 1));
  ASSERT_OK(ev(&o));
  EXPECT_SHAPE(&o, 0, 3, 2, 4, 3);
  EXPECT_F(&o, 0, w3, 24, 1e-6);
  done(&o);
}

static void test_div_int(void) {
  /* C truncation; x / 0 = 0; INT32_MIN / -1 wraps (numpy int32 does too). */
  opt o;
  init(&o, GG_OP_DIV, 2, 1);
  set(&o, 0, GG_DT_I32, I(7, -7, 7, -7, 5, INT32_MIN, 0, 9), 1, S(8));
  set(&o, 1, GG_DT_I32, I(2, 2, -2, -2, 0, -1, 0, 3), 1, S(8));
  ASSERT_OK(ev(&o));
  EXPECT_I(&o, 0, I(3, -3, -3, 3, 0, INT32_MIN, 0, 3), 8);
  done(&o);
  /* Broadcast [2,3] / [3] in int. */
  init(&o, GG_OP_DIV, 2, 1);
  set(&o, 0, GG_DT_I32, I(10, 20, 30, -10, -20, -30), 2, S(2, 3));
  set(&o, 1, GG_DT_I32, I(3, 0, -7), 1, S(3));
  ASSERT_OK(ev(&o));
  EXPECT_I(&o, 0, I(3, 0, -4, -3, 0, 4), 6);
  done(&o);
}

static void test_pow(void) {
  opt o;
  float a[8] = {2, -2, -2, -8, 0, 4, 3, 1};
  float b[8] = {3, 3, 0.5f, 1.0f / 3.0f, 0, -0.5f, 2, NAN};
  init(&o, GG_OP_POW, 2, 1);
  set(&o, 0, GG_DT_F32, a, 1, S(8));
  set(&o, 1, GG_DT_F32, b, 1, S(8));
  ASSERT_OK(ev(&o));
  /* Negative base with an integer exponent is real; with a fraction NaN.
   * pow(1, NaN) = 1 (C and numpy). */
  EXPECT_F(&o, 0, ((double[]){8, -8, NAN, NAN, 1, 0.5, 9, 1}), 8, 1e-6);
  done(&o);
  /* Int exponent, broadcast: [2,2] ** [2]. */
  init(&o, GG_OP_POW, 2, 1);
  set(&o, 0, GG_DT_F32, F(-3, 2, 0.5f, -1), 2, S(2, 2));
  set(&o, 1, GG_DT_I32, I(2, -1), 1, S(2));
  ASSERT_OK(ev(&o));
  EXPECT_SHAPE(&o, 0, 2, 2, 2);
  EXPECT_F(&o, 0, ((double[]){9, 0.5, 0.25, -1}), 4, 1e-6);
  done(&o);
  /* Int base (ONNX Pow on int tensors): an int result. */
  init(&o, GG_OP_POW, 2, 1);
  set(&o, 0, GG_DT_I32, I(1, 2, 3, -2), 1, S(4));
  set(&o, 1, GG_DT_I32, I(4, 5, 6, 3), 1, S(4));
  ASSERT_OK(ev(&o));
  EXPECT_I(&o, 0, I(1, 32, 729, -8), 4);
  done(&o);
}

static void test_compare(void) {
  opt o;
  float a[6] = {1, 2, NAN, -INFINITY, 5, 0.0f};
  float s = 2.0f;
  static const gg_op ops[3] = {GG_OP_EQUAL, GG_OP_GREATER, GG_OP_LESS};
  /* a vs a rank-0 2: NaN compares false every way. */
  int32_t want[3][6] = {{0, 1, 0, 0, 0, 0}, {0, 0, 0, 0, 1, 0}, {1, 0, 0, 1, 0, 1}};
  for (int k = 0; k < 3; k++) {
    init(&o, ops[k], 2, 1);
    set(&o, 0, GG_DT_F32, a, 2, S(2, 3));
    set(&o, 1, GG_DT_F32, &s, 0, NULL);
    ASSERT_OK(ev(&o));
    EXPECT_SHAPE(&o, 0, 2, 2, 3);
    EXPECT_I(&o, 0, want[k], 6);
    done(&o);
  }
  /* Int, broadcast [3,1] vs [2]: y[i][j] = a[i] op b[j]. */
  int32_t ai[3] = {-1, 4, 7}, bi[2] = {4, -1};
  for (int k = 0; k < 3; k++) {
    int32_t w[6];
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 2; j++)
        w[i * 2 + j] = k == 0 ? ai[i] == bi[j] : k == 1 ? ai[i] > bi[j] : ai[i] < bi[j];
    init(&o, ops[k], 2, 1);
    set(&o, 0, GG_DT_I32, ai, 2, S(3, 1));
    set(&o, 1, GG_DT_I32, bi, 1, S(2));
    ASSERT_OK(ev(&o));
    EXPECT_SHAPE(&o, 0, 2, 3, 2);
    EXPECT_I(&o, 0, w, 6);
    done(&o);
  }
}

static void test_not_where(void) {
  opt o;
  init(&o, GG_OP_NOT, 1, 1);
  set(&o, 0, GG_DT_I32, I(0, 1, -5, 0), 2, S(2, 2));
  ASSERT_OK(ev(&o));
  EXPECT_I(&o, 0, I(1, 0, 0, 1), 4);
  done(&o);
  /* cond [2,1], a [3], b rank 0 -> [2,3]. */
  float a[3] = {1, 2, 3}, b = -9;
  init(&o, GG_OP_WHERE, 3, 1);
  set(&o, 0, GG_DT_I32, I(1, 0), 2, S(2, 1));
  set(&o, 1, GG_DT_F32, a, 1, S(3));
  set(&o, 2, GG_DT_F32, &b, 0, NULL);
  ASSERT_OK(ev(&o));
  EXPECT_SHAPE(&o, 0, 2, 2, 3);
  EXPECT_F(&o, 0, ((double[]){1, 2, 3, -9, -9, -9}), 6, 0);
  done(&o);
  /* Int values; cond [3] against a [2,1] and b [2,3]. */
  init(&o, GG_OP_WHERE, 3, 1);
  set(&o, 0, GG_DT_I32, I(1, 0, 7), 1, S(3));
  set(&o, 1, GG_DT_I32, I(10, 20), 2, S(2, 1));
  set(&o, 2, GG_DT_I32, I(-1, -2, -3, -4, -5, -6), 2, S(2, 3));
  ASSERT_OK(ev(&o));
  EXPECT_I(&o, 0, I(10, -2, 10, 20, -5, 20), 6);
  done(&o);
}

/* ------------------------------------------------------------ unary */

static void unary_f(gg_op op, const gg_attrs *at, const float *x, int n, const double *want,
                    double tol) {
  opt o;
  init(&o, op, 1, 1);
  if (at) o.n.a = *at;
  set(&o, 0, GG_DT_F32, (void *)x, 1, S(n));
  ASSERT_OK(ev(&o));
  EXPECT_SHAPE(&o, 0, 1, n);
  EXPECT_F(&o, 0, want, n, tol);
  done(&o);
}

static void test_unary_math(void) {
  const float x[6] = {-1, 0, 0.25f, 4, INFINITY, NAN};
  unary_f(GG_OP_SQRT, NULL, x, 6, (double[]){NAN, 0, 0.5, 2, INFINITY, NAN}, 1e-7);
  unary_f(GG_OP_LOG, NULL, x, 6, (double[]){NAN, -INFINITY, -1.3862943611198906, 1.3862943611198906, INFINITY, NAN}, 1e-6);
  unary_f(GG_OP_EXP, NULL, x, 6, (double[]){0.36787944117144233, 1, 1.2840254166877414, 54.598150033144236, INFINITY, NAN}, 1e-6);
  unary_f(GG_OP_NEG, NULL, x, 6, (double[]){1, -0.0, -0.25, -4, -INFINITY, NAN}, 0);
  unary_f(GG_OP_RECIPROCAL, NULL, x, 6, (double[]){-1, INFINITY, 4, 0.25, 0, NAN}, 1e-7);
  /* erf / tanh at known points (tables), and the saturation. */
  const float e[7] = {-3, -1, -0.5f, 0, 0.5f, 1, 10};
  unary_f(GG_OP_ERF, NULL, e, 7,
          (double[]){-0.9999779095030014, -0.8427007929497149, -0.5204998778130465, 0,
                     0.5204998778130465, 0.8427007929497149, 1},
          1e-6);
  unary_f(GG_OP_TANH, NULL, e, 7,
          (double[]){-0.9950547536867305, -0.7615941559557649, -0.46211715726000974, 0,
                     0.46211715726000974, 0.7615941559557649, 1},
          1e-6);
  opt o;
  init(&o, GG_OP_NEG, 1, 1);
  set(&o, 0, GG_DT_I32, I(5, -3, 0, INT32_MIN, INT32_MAX), 1, S(5));
  ASSERT_OK(ev(&o));
  EXPECT_I(&o, 0, I(-5, 3, 0, INT32_MIN, -INT32_MAX), 5);
  done(&o);
}

static void test_softplus(void) {
  /* Overflow-safe: softplus(1000) = 1000, not inf; softplus(-1000) = 0 and
   * softplus(-100) keeps its tiny value. */
  const float x[8] = {-1000, -100, -1, 0, 1, 20, 100, 1000};
  double want[8];
  for (int i = 0; i < 8; i++) want[i] = x[i] > 30 ? (double)x[i] : log1p(exp((double)x[i]));
  unary_f(GG_OP_SOFTPLUS, NULL, x, 8, want, 1e-6);
  /* Relative check of the tiny value: exp(-100) = 3.72e-44. */
  opt o;
  init(&o, GG_OP_SOFTPLUS, 1, 1);
  set(&o, 0, GG_DT_F32, (void *)x, 1, S(8));
  ASSERT_OK(ev(&o));
  ASSERT_NEAR(fout(&o, 0)[1] / 3.720075976020836e-44, 1.0, 0.05);
  done(&o);
  unary_f(GG_OP_SOFTPLUS, NULL, (float[]){INFINITY, -INFINITY, NAN}, 3,
          (double[]){INFINITY, 0, NAN}, 0);
}

static void test_hard_and_gelu(void) {
  const float x[7] = {-5, -3, -1, 0, 1, 3, 5};
  double hs[7], hw[7], ge[7], gt[7];
  gg_attrs at = {0};
  at.alpha = 0.2f, at.beta = 0.6f;
  for (int i = 0; i < 7; i++) {
    double v = x[i];
    hs[i] = fmax(0, fmin(1, 0.2 * v + 0.6));
    hw[i] = v * fmax(0, fmin(1, v / 6 + 0.5));
    ge[i] = 0.5 * v * (1 + erf(v / sqrt(2.0)));
    gt[i] = 0.5 * v * (1 + tanh(sqrt(2 / 3.14159265358979323846) * (v + 0.044715 * v * v * v)));
  }
  unary_f(GG_OP_HARD_SIGMOID, &at, x, 7, hs, 1e-6);
  unary_f(GG_OP_HARD_SWISH, NULL, x, 7, hw, 1e-6);
  unary_f(GG_OP_HARD_SIGMOID, &at, (float[]){NAN}, 1, (double[]){NAN}, 0);
  at.approximate = 0;
  unary_f(GG_OP_GELU, &at, x, 7, ge, 1e-6);
  at.approximate = 1;
  unary_f(GG_OP_GELU, &at, x, 7, gt, 1e-6);
  /* The two forms differ (by ~1e-4 at x = 2, 100x the tolerance): the attribute matters. */
  const float two = 2.0f;
  unary_f(GG_OP_GELU, &at, &two, 1, (double[]){0.5 * 2 * (1 + tanh(sqrt(2 / 3.14159265358979323846) * (2 + 0.044715 * 8)))}, 1e-6);
  ASSERT_GT_F(fabs(0.5 * 2 * (1 + erf(2 / sqrt(2.0))) - 0.5 * 2 * (1 + tanh(sqrt(2 / 3.14159265358979323846) * (2 + 0.044715 * 8)))), 5e-5);
}

static void test_clip(void) {
  gg_attrs at = {0};
  at.clip_min = -1, at.clip_max = 2;
  unary_f(GG_OP_CLIP, &at, (float[]){-5, -1, 0.5f, 2, 7, NAN, -INFINITY}, 7,
          (double[]){-1, -1, 0.5, 2, 2, NAN, -1}, 0);
  /* No bounds (the importer's -FLT_MAX / FLT_MAX): identity. */
  at.clip_min = -FLT_MAX, at.clip_max = FLT_MAX;
  unary_f(GG_OP_CLIP, &at, (float[]){-3e38f, 3e38f, 1}, 3, (double[]){-3e38f, 3e38f, 1}, 0);
  /* min > max: everything becomes max (ONNX). */
  at.clip_min = 3, at.clip_max = 1;
  unary_f(GG_OP_CLIP, &at, (float[]){0, 2, 5}, 3, (double[]){1, 1, 1}, 0);
  /* Int with the bounds rounded inward, and unbounded. */
  opt o;
  init(&o, GG_OP_CLIP, 1, 1);
  o.n.a.clip_min = -2.5f, o.n.a.clip_max = 3.5f;
  set(&o, 0, GG_DT_I32, I(-10, -2, 0, 3, 4, INT32_MAX), 1, S(6));
  ASSERT_OK(ev(&o));
  EXPECT_I(&o, 0, I(-2, -2, 0, 3, 3, 3), 6);
  done(&o);
  init(&o, GG_OP_CLIP, 1, 1);
  o.n.a.clip_min = -FLT_MAX, o.n.a.clip_max = FLT_MAX;
  set(&o, 0, GG_DT_I32, I(INT32_MIN, 0, INT32_MAX), 1, S(3));
  ASSERT_OK(ev(&o));
  EXPECT_I(&o, 0, I(INT32_MIN, 0, INT32_MAX), 3);
  done(&o);
}

static void test_cast(void) {
  opt o;
  /* Truncation toward 0, saturation, NaN -> 0. */
  init(&o, GG_OP_CAST, 1, 1);
  o.n.a.to = GG_DT_I32;
  set(&o, 0, GG_DT_F32, F(1.9f, -1.9f, 0.5f, -0.5f, 3e9f, -3e9f, INFINITY, -INFINITY, NAN, 2147483520.0f), 1, S(10));
  ASSERT_OK(ev(&o));
  EXPECT_I(&o, 0, I(1, -1, 0, 0, INT32_MAX, INT32_MIN, INT32_MAX, INT32_MIN, 0, 2147483520), 10);
  done(&o);
  init(&o, GG_OP_CAST, 1, 1);
  o.n.a.to = GG_DT_F32;
  set(&o, 0, GG_DT_I32, I(-7, 0, 16777217, INT32_MIN), 2, S(2, 2));
  ASSERT_OK(ev(&o));
  EXPECT_SHAPE(&o, 0, 2, 2, 2);
  EXPECT_F(&o, 0, ((double[]){-7, 0, 16777216, -2147483648.0}), 4, 0);
  done(&o);
  /* Same type: a copy (rank 0 here). */
  float v = -2.75f;
  init(&o, GG_OP_CAST, 1, 1);
  o.n.a.to = GG_DT_F32;
  set(&o, 0, GG_DT_F32, &v, 0, NULL);
  ASSERT_OK(ev(&o));
  EXPECT_SHAPE(&o, 0, 0, 0);
  EXPECT_F(&o, 0, ((double[]){-2.75}), 1, 0);
  done(&o);
  init(&o, GG_OP_CAST, 1, 1);
  o.n.a.to = GG_DT_I32;
  set(&o, 0, GG_DT_I32, I(5, -6), 1, S(2));
  ASSERT_OK(ev(&o));
  EXPECT_I(&o, 0, I(5, -6), 2);
  done(&o);
}

/* ------------------------------------------------------------ LogSoftmax */

static void test_log_softmax(void) {
  /* Rows of 4 incl. large values (stable: no inf - inf) and a -inf entry. */
  float x[12] = {1, 2, 3, 4, 1000, 1001, 1002, 1003, -INFINITY, 0, 0, -50};
  double want[12];
  for (int r = 0; r < 3; r++) {
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < 4; i++) mx = fmax(mx, x[r * 4 + i]);
    for (int i = 0; i < 4; i++) s += exp((double)x[r * 4 + i] - mx);
    for (int i = 0; i < 4; i++) want[r * 4 + i] = (double)x[r * 4 + i] - mx - log(s);
  }
  opt o;
  init(&o, GG_OP_LOG_SOFTMAX, 1, 1);
  set(&o, 0, GG_DT_F32, x, 2, S(3, 4));
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, want, 12, 1e-6);
  done(&o);
  /* Many rows of odd length through the row splitting, rank 3. */
  int64_t R = 3000, C = 7;
  float *xs = rnd_buf(R * C, -30, 30);
  double *w = malloc((size_t)(R * C) * sizeof *w);
  for (int64_t r = 0; r < R; r++) {
    double mx = -INFINITY, s = 0;
    for (int64_t i = 0; i < C; i++) mx = fmax(mx, xs[r * C + i]);
    for (int64_t i = 0; i < C; i++) s += exp((double)xs[r * C + i] - mx);
    for (int64_t i = 0; i < C; i++) w[r * C + i] = (double)xs[r * C + i] - mx - log(s);
  }
  init(&o, GG_OP_LOG_SOFTMAX, 1, 1);
  set(&o, 0, GG_DT_F32, xs, 3, S(3, 1000, 7));
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, w, R * C, 1e-5);
  done(&o);
  free(xs), free(w);
}

/* ------------------------------------------------------------ reductions */

/* Reference reduction over x [2,3,4] by a mask of axes, in double. */
static void ref_reduce(gg_op op, const float *x, const int *red, double *out) {
  int64_t d0 = red[0] ? 1 : 2, d1 = red[1] ? 1 : 3, d2 = red[2] ? 1 : 4;
  for (int64_t i = 0; i < d0 * d1 * d2; i++)
    out[i] = op == GG_OP_REDUCE_MAX ? -INFINITY : op == GG_OP_REDUCE_MIN ? INFINITY : 0;
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 4; k++) {
        int64_t o = ((red[0] ? 0 : i) * d1 + (red[1] ? 0 : j)) * d2 + (red[2] ? 0 : k);
        double v = x[(i * 3 + j) * 4 + k];
        out[o] = op == GG_OP_REDUCE_MAX ? fmax(out[o], v) : op == GG_OP_REDUCE_MIN ? fmin(out[o], v) : out[o] + v * v;
      }
  if (op == GG_OP_REDUCE_L2)
    for (int64_t i = 0; i < d0 * d1 * d2; i++) out[i] = sqrt(out[i]);
}

static void test_reduce(void) {
  float x[24];
  for (int i = 0; i < 24; i++) x[i] = (float)((i * 37) % 23) - 11.5f;
  static const gg_op ops[3] = {GG_OP_REDUCE_MAX, GG_OP_REDUCE_MIN, GG_OP_REDUCE_L2};
  /* Every subset of axes (as negative axes for odd masks), keep_dims both. */
  for (int op = 0; op < 3; op++)
    for (int mask = 0; mask < 8; mask++)
      for (int keep = 0; keep < 2; keep++) {
        int red[3] = {mask & 1, (mask >> 1) & 1, (mask >> 2) & 1}, na = 0;
        int32_t axes[3];
        for (int d = 0; d < 3; d++)
          if (red[d]) axes[na++] = mask & 1 ? d - 3 : d;
        if (!na) red[0] = red[1] = red[2] = 1; /* empty axes = all */
        double want[24];
        ref_reduce(ops[op], x, red, want);
        opt o;
        init(&o, ops[op], 2, 1);
        o.n.a.keep_dims = keep;
        set(&o, 0, GG_DT_F32, x, 3, S(2, 3, 4));
        set(&o, 1, GG_DT_I32, axes, 1, S(na));
        ASSERT_OK(ev(&o));
        const gg_tval *y = &o.v[o.out[0]];
        int nd = 0;
        for (int d = 0; d < 3; d++) {
          int64_t full = d == 0 ? 2 : d == 1 ? 3 : 4;
          if (red[d] && !keep) continue;
          ASSERT_EQ(y->shape[nd], red[d] ? 1 : full);
          nd++;
        }
        ASSERT_EQ(y->ndim, nd);
        int64_t cnt = y->nelem;
        EXPECT_F(&o, 0, want, cnt, 1e-6);
        done(&o);
      }
  /* No axes input at all: every axis; keep_dims 0 gives a rank-0 result. */
  opt o;
  init(&o, GG_OP_REDUCE_MAX, 1, 1);
  set(&o, 0, GG_DT_F32, x, 3, S(2, 3, 4));
  ASSERT_OK(ev(&o));
  EXPECT_SHAPE(&o, 0, 0, 0);
  EXPECT_F(&o, 0, ((double[]){10.5}), 1, 0);
  done(&o);
  /* Int path, axis 1 of [2,3]. */
  init(&o, GG_OP_REDUCE_MIN, 2, 1);
  o.n.a.keep_dims = 1;
  set(&o, 0, GG_DT_I32, I(4, -2, 9, INT32_MIN, 0, INT32_MAX), 2, S(2, 3));
  set(&o, 1, GG_DT_I32, I(1), 1, S(1));
  ASSERT_OK(ev(&o));
  EXPECT_SHAPE(&o, 0, 2, 2, 1);
  EXPECT_I(&o, 0, I(-2, INT32_MIN), 2);
  done(&o);
  init(&o, GG_OP_REDUCE_MAX, 2, 1);
  set(&o, 0, GG_DT_I32, I(4, -2, 9, INT32_MIN, 0, INT32_MAX), 2, S(2, 3));
  set(&o, 1, GG_DT_I32, I(0), 1, S(1));
  ASSERT_OK(ev(&o));
  EXPECT_SHAPE(&o, 0, 1, 3);
  EXPECT_I(&o, 0, I(4, 0, INT32_MAX), 3);
  done(&o);
  /* NaN propagates through max/min (numpy); the empty set gives -inf / +inf / 0. */
  init(&o, GG_OP_REDUCE_MAX, 1, 1);
  set(&o, 0, GG_DT_F32, F(1, NAN, 3), 1, S(3));
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){NAN}), 1, 0);
  done(&o);
  for (int op = 0; op < 3; op++) {
    init(&o, ops[op], 2, 1);
    o.n.a.keep_dims = 1;
    set(&o, 0, GG_DT_F32, x, 2, S(2, 0));
    set(&o, 1, GG_DT_I32, I(1), 1, S(1));
    ASSERT_OK(ev(&o));
    EXPECT_SHAPE(&o, 0, 2, 2, 1);
    double e = op == 0 ? -INFINITY : op == 1 ? INFINITY : 0;
    EXPECT_F(&o, 0, ((double[]){e, e}), 2, 0);
    done(&o);
  }
}

/* ------------------------------------------------------------ norms */

/* LayerNorm reference in double: rows over x's dims before axis; scale/bias
 * indexed by their own broadcast over the trailing dims (sdims: their shape
 * aligned right to x's, 1 where broadcast). */
static int64_t bcast_index(int64_t i, const int64_t *shape, int nd, int axis, const int64_t *pshape,
                           int pnd) {
  /* index of normalized element i in a tensor of shape pshape aligned right to x's dims */
  int64_t rem = i, pi = 0, mul = 1;
  for (int d = nd - 1; d >= axis; d--) {
    int64_t c = rem % shape[d];
    rem /= shape[d];
    int pd = d - (nd - pnd);
    int64_t e = pd >= 0 ? pshape[pd] : 1;
    pi += (e == 1 ? 0 : c) * mul;
    mul *= e;
  }
  return pi;
}

static void ref_layer_norm(const float *x, const int64_t *shape, int nd, int axis,
                           const float *scale, const int64_t *sshape, int snd, const float *bias,
                           const int64_t *bshape, int bnd, double eps, double *y, double *mean,
                           double *inv) {
  int64_t rows = 1, m = 1;
  for (int d = 0; d < axis; d++) rows *= shape[d];
  for (int d = axis; d < nd; d++) m *= shape[d];
  for (int64_t r = 0; r < rows; r++) {
    double s = 0, q = 0;
    for (int64_t i = 0; i < m; i++) s += x[r * m + i];
    double mu = s / (double)m;
    for (int64_t i = 0; i < m; i++) q += (x[r * m + i] - mu) * (x[r * m + i] - mu);
    double is = 1.0 / sqrt(q / (double)m + eps);
    mean[r] = mu, inv[r] = is;
    for (int64_t i = 0; i < m; i++)
      y[r * m + i] = (x[r * m + i] - mu) * is * scale[bcast_index(i, shape, nd, axis, sshape, snd)] +
                     (bias ? bias[bcast_index(i, shape, nd, axis, bshape, bnd)] : 0);
  }
}

/* bnd < 0: no bias; bshape NULL: the bias has the scale's shape. */
static void layer_norm_case(const int64_t *shape, int nd, int axis, const int64_t *sshape, int snd,
                            const int64_t *bshape, int bnd, int n_out) {
  int64_t n = 1, sn = 1, bn = 1, rows = 1;
  int with_bias = bnd >= 0;
  if (!bshape) bshape = sshape, bnd = with_bias ? snd : bnd;
  for (int d = 0; d < nd; d++) n *= shape[d];
  for (int d = 0; d < snd; d++) sn *= sshape[d];
  for (int d = 0; d < bnd; d++) bn *= bshape[d];
  for (int d = 0; d < axis; d++) rows *= shape[d];
  float *x = rnd_buf(n, -3, 5), *sc = rnd_buf(sn, 0.5f, 2), *bi = rnd_buf(bn, -1, 1);
  double *want = malloc((size_t)n * sizeof *want), *mean = malloc((size_t)rows * 8),
         *inv = malloc((size_t)rows * 8);
  /* A large offset in one row: variance must not be lost to the mean. */
  for (int64_t i = 0; i < n / rows; i++) x[i] += 1000.0f;
  ref_layer_norm(x, shape, nd, axis, sc, sshape, snd, with_bias ? bi : NULL, bshape, bnd, 1e-5, want,
                 mean, inv);
  opt o;
  init(&o, GG_OP_LAYER_NORM, with_bias ? 3 : 2, n_out);
  o.n.a.axis = axis, o.n.a.epsilon = 1e-5f;
  set(&o, 0, GG_DT_F32, x, nd, shape);
  set(&o, 1, GG_DT_F32, sc, snd, sshape);
  if (with_bias) set(&o, 2, GG_DT_F32, bi, bnd, bshape);
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, want, n, 2e-5);
  for (int k = 1; k < n_out; k++) {
    const gg_tval *t = &o.v[o.out[k]];
    ASSERT_EQ(t->ndim, nd);
    for (int d = 0; d < nd; d++) ASSERT_EQ(t->shape[d], d < axis ? shape[d] : 1);
  }
  if (n_out > 1) EXPECT_F(&o, 1, mean, rows, 1e-6);
  if (n_out > 2) EXPECT_F(&o, 2, inv, rows, 1e-5);
  done(&o);
  free(x), free(sc), free(bi), free(want), free(mean), free(inv);
}

static void test_layer_norm(void) {
  layer_norm_case(S(2, 3, 4), 3, 2, S(4), 1, NULL, 1, 1);
  layer_norm_case(S(2, 3, 4), 3, 1, S(3, 4), 2, NULL, 2, 3);
  layer_norm_case(S(2, 3, 4), 3, 0, S(2, 3, 4), 3, NULL, -1, 2); /* no bias */
  layer_norm_case(S(2, 3, 4), 3, 1, S(3, 1), 2, NULL, 2, 1);     /* scale broadcast within */
  layer_norm_case(S(2, 3, 4), 3, 1, S(1), 1, NULL, 1, 1);
  layer_norm_case(S(2, 3, 4), 3, 1, S(3, 4), 2, S(4), 1, 1);     /* bias shaped otherwise */
  layer_norm_case(S(2, 3, 4), 3, 1, S(4), 1, S(3, 1), 2, 2);
  layer_norm_case(S(5, 77), 2, 1, S(77), 1, NULL, 1, 3);
  layer_norm_case(S(7), 1, 0, S(7), 1, NULL, 1, 1);
  layer_norm_case(S(2, 2, 3, 5), 4, 2, S(1, 1, 3, 5), 4, NULL, 4, 1); /* leading 1s */
  /* A constant row: variance 0, the output is the bias (eps keeps it finite). */
  float x[4] = {3, 3, 3, 3}, s[4] = {1, 1, 1, 1}, b[4] = {0.5f, -1, 0, 2};
  opt o;
  init(&o, GG_OP_LAYER_NORM, 3, 1);
  o.n.a.axis = 0, o.n.a.epsilon = 1e-5f;
  set(&o, 0, GG_DT_F32, x, 1, S(4));
  set(&o, 1, GG_DT_F32, s, 1, S(4));
  set(&o, 2, GG_DT_F32, b, 1, S(4));
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){0.5, -1, 0, 2}), 4, 0);
  done(&o);
  /* epsilon is used: x = {-1, 1}, var 1, eps 3 -> x / 2. */
  init(&o, GG_OP_LAYER_NORM, 2, 1);
  o.n.a.axis = 0, o.n.a.epsilon = 3.0f;
  set(&o, 0, GG_DT_F32, F(-1, 1), 1, S(2));
  set(&o, 1, GG_DT_F32, F(1, 1), 1, S(2));
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){-0.5, 0.5}), 2, 1e-7);
  done(&o);
}

/* Group norm reference (instance norm: groups = C) in double. */
static void ref_group_norm(const float *x, int64_t N, int64_t C, int64_t S_, int64_t G,
                           const float *sc, const float *bi, double eps, double *y) {
  int64_t cpg = C / G;
  for (int64_t b = 0; b < N; b++)
    for (int64_t g = 0; g < G; g++) {
      double s = 0, q = 0, m = (double)(cpg * S_);
      for (int64_t c = g * cpg; c < (g + 1) * cpg; c++)
        for (int64_t i = 0; i < S_; i++) s += x[(b * C + c) * S_ + i];
      double mu = s / m;
      for (int64_t c = g * cpg; c < (g + 1) * cpg; c++)
        for (int64_t i = 0; i < S_; i++) {
          double d = x[(b * C + c) * S_ + i] - mu;
          q += d * d;
        }
      double is = 1 / sqrt(q / m + eps);
      for (int64_t c = g * cpg; c < (g + 1) * cpg; c++)
        for (int64_t i = 0; i < S_; i++)
          y[(b * C + c) * S_ + i] = (x[(b * C + c) * S_ + i] - mu) * is * sc[c] + bi[c];
    }
}

static void group_norm_case(gg_op op, const int64_t *shape, int nd, int groups, float eps) {
  int64_t n = 1, sp = 1, C = shape[1];
  for (int d = 0; d < nd; d++) n *= shape[d];
  for (int d = 2; d < nd; d++) sp *= shape[d];
  float *x = rnd_buf(n, -2, 6), *sc = rnd_buf(C, -2, 2), *bi = rnd_buf(C, -1, 1);
  double *want = malloc((size_t)n * sizeof *want);
  ref_group_norm(x, shape[0], C, sp, op == GG_OP_INSTANCE_NORM ? C : groups, sc, bi, eps, want);
  opt o;
  init(&o, op, 3, 1);
  o.n.a.groups = groups, o.n.a.epsilon = eps;
  set(&o, 0, GG_DT_F32, x, nd, shape);
  set(&o, 1, GG_DT_F32, sc, 1, S(C));
  set(&o, 2, GG_DT_F32, bi, 1, S(C));
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, want, n, 2e-5);
  done(&o);
  free(x), free(sc), free(bi), free(want);
}

static void test_instance_norm(void) {
  group_norm_case(GG_OP_INSTANCE_NORM, S(2, 3, 4, 5), 4, 0, 1e-5f);
  group_norm_case(GG_OP_INSTANCE_NORM, S(1, 4, 9), 3, 0, 1e-2f);
  group_norm_case(GG_OP_INSTANCE_NORM, S(3, 2, 2, 3, 2), 5, 0, 1e-5f);
  /* Hand-computed: per channel {1, 3} -> mean 2, var 1 -> {-1, 1}*s + b. */
  opt o;
  init(&o, GG_OP_INSTANCE_NORM, 3, 1);
  set(&o, 0, GG_DT_F32, F(1, 3, 10, 30), 3, S(1, 2, 2));
  set(&o, 1, GG_DT_F32, F(2, 1), 1, S(2));
  set(&o, 2, GG_DT_F32, F(0, 5), 1, S(2));
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){-2, 2, 4, 6}), 4, 1e-6);
  done(&o);
}

static void test_group_norm(void) {
  group_norm_case(GG_OP_GROUP_NORM, S(2, 6, 3, 4), 4, 1, 1e-5f);
  group_norm_case(GG_OP_GROUP_NORM, S(2, 6, 3, 4), 4, 6, 1e-5f); /* = instance norm */
  group_norm_case(GG_OP_GROUP_NORM, S(2, 6, 3, 4), 4, 3, 1e-5f);
  group_norm_case(GG_OP_GROUP_NORM, S(3, 8, 5), 3, 2, 1e-3f);
  group_norm_case(GG_OP_GROUP_NORM, S(2, 4), 2, 2, 1e-5f);
  /* Hand-computed, 1 group of 2 channels: {1, 3, 5, 7} mean 4 var 5. */
  opt o;
  init(&o, GG_OP_GROUP_NORM, 3, 1);
  o.n.a.groups = 1, o.n.a.epsilon = 0;
  set(&o, 0, GG_DT_F32, F(1, 3, 5, 7), 3, S(1, 2, 2));
  set(&o, 1, GG_DT_F32, F(1, 1), 1, S(2));
  set(&o, 2, GG_DT_F32, F(0, 0), 1, S(2));
  ASSERT_OK(ev(&o));
  double r5 = sqrt(5.0);
  EXPECT_F(&o, 0, ((double[]){-3 / r5, -1 / r5, 1 / r5, 3 / r5}), 4, 1e-6);
  done(&o);
}

/* ------------------------------------------------------------ threads */

/* Large tensors through the pool: bit-identical to the serial run, and the
 * broadcast result right (checked against its own index arithmetic). */
static void test_threaded(void) {
#ifndef HAVE_POOL
  SKIP("pthreadpool.h not found: the kernels run serially in this build");
#else
  struct pthreadpool *pool = pthreadpool_create(4);
  ASSERT_TRUE(pool != NULL);
  gg__kctx kc = {pool};
  int64_t A = 37, B = 61, C = 53; /* 119,561 elements: several tiles */
  float *a = rnd_buf(A * B * C, -4, 4), *b = rnd_buf(B, 0.5f, 3), *c = rnd_buf(C, -1, 1);
  struct {
    gg_op op;
    int n_in;
  } cases[] = {{GG_OP_DIV, 2},  {GG_OP_POW, 2},  {GG_OP_GREATER, 2}, {GG_OP_GELU, 1},
               {GG_OP_TANH, 1}, {GG_OP_WHERE, 3}, {GG_OP_LAYER_NORM, 3}, {GG_OP_GROUP_NORM, 3},
               {GG_OP_INSTANCE_NORM, 3}, {GG_OP_REDUCE_L2, 2}, {GG_OP_LOG_SOFTMAX, 1},
               {GG_OP_CAST, 1}};
  int32_t *cond = malloc((size_t)(A * B * C) * 4), ax[1] = {1};
  for (int64_t i = 0; i < A * B * C; i++) cond[i] = a[i] > 0;
  for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
    opt o[2];
    for (int p = 0; p < 2; p++) {
      init(&o[p], cases[t].op, cases[t].n_in, 1);
      o[p].n.a.axis = 2, o[p].n.a.epsilon = 1e-5f, o[p].n.a.groups = 1, o[p].n.a.to = GG_DT_I32;
      gg_op op = cases[t].op;
      if (op == GG_OP_WHERE) {
        set(&o[p], 0, GG_DT_I32, cond, 3, S(A, B, C));
        set(&o[p], 1, GG_DT_F32, b, 2, S(B, 1));
        set(&o[p], 2, GG_DT_F32, c, 1, S(C));
      } else if (op == GG_OP_GROUP_NORM || op == GG_OP_INSTANCE_NORM) {
        set(&o[p], 0, GG_DT_F32, a, 3, S(1, B, A * C));
        set(&o[p], 1, GG_DT_F32, b, 1, S(B));
        set(&o[p], 2, GG_DT_F32, b, 1, S(B));
      } else {
        set(&o[p], 0, GG_DT_F32, a, 3, S(A, B, C));
        if (op == GG_OP_LAYER_NORM) set(&o[p], 1, GG_DT_F32, c, 1, S(C)), set(&o[p], 2, GG_DT_F32, c, 1, S(C));
        else if (op == GG_OP_REDUCE_L2) set(&o[p], 1, GG_DT_I32, ax, 1, S(1));
        else if (cases[t].n_in == 2) set(&o[p], 1, GG_DT_F32, b, 2, S(B, 1));
      }
      ASSERT_OK(ev_pool(&o[p], p ? &kc : NULL));
    }
    const gg_tval *y0 = &o[0].v[o[0].out[0]], *y1 = &o[1].v[o[1].out[0]];
    ASSERT_EQ(y0->nelem, y1->nelem);
    if (memcmp(y0->data, y1->data, (size_t)y0->nelem * 4))
      GG_T_FAIL("%s: threaded result differs from the serial one", gg__op_name(cases[t].op));
    if (cases[t].op == GG_OP_DIV) {
      for (int64_t i = 0; i < A * B * C; i++)
        if (!same(((float *)y1->data)[i], (double)a[i] / b[(i / C) % B], 1e-6))
          GG_T_FAIL("Div [%lld] = %g, want %g", (long long)i, ((float *)y1->data)[i], (double)a[i] / b[(i / C) % B]);
    }
    if (cases[t].op == GG_OP_REDUCE_L2) { /* [A, C] = sqrt(sum over B of a^2) */
      for (int64_t i = 0; i < A; i++)
        for (int64_t k = 0; k < C; k++) {
          double s = 0;
          for (int64_t j = 0; j < B; j++) s += (double)a[(i * B + j) * C + k] * a[(i * B + j) * C + k];
          if (!same(((float *)y1->data)[i * C + k], sqrt(s), 1e-6))
            GG_T_FAIL("ReduceL2 [%lld,%lld] = %g, want %g", (long long)i, (long long)k,
                      ((float *)y1->data)[i * C + k], sqrt(s));
        }
    }
    if (cases[t].op == GG_OP_LOG_SOFTMAX) { /* rows of C */
      for (int64_t r = 0; r < A * B; r++) {
        double mx = -INFINITY, s = 0;
        for (int64_t k = 0; k < C; k++) mx = fmax(mx, a[r * C + k]);
        for (int64_t k = 0; k < C; k++) s += exp(a[r * C + k] - mx);
        for (int64_t k = 0; k < C; k++)
          if (!same(((float *)y1->data)[r * C + k], a[r * C + k] - mx - log(s), 1e-6))
            GG_T_FAIL("LogSoftmax row %lld [%lld] wrong", (long long)r, (long long)k);
      }
    }
    if (cases[t].op == GG_OP_WHERE) {
      for (int64_t i = 0; i < A * B * C; i++) {
        float want = cond[i] ? b[(i / C) % B] : c[i % C];
        if (((float *)y1->data)[i] != want) GG_T_FAIL("Where [%lld] wrong", (long long)i);
      }
    }
    done(&o[0]), done(&o[1]);
  }
  free(a), free(b), free(c), free(cond);
  pthreadpool_destroy(pool);
#endif
}

/* ------------------------------------------------------------ errors */

static void expect_err(opt *o, int code, const char *needle) {
  int rc = ev(o);
  done(o);
  if (rc != code) GG_T_FAIL("%s: got %s (%s), want %s", o->n.src_op, gg_err_name(rc), o->err, gg_err_name(code));
  ASSERT_CONTAINS(o->err, "elem_node");
  ASSERT_CONTAINS(o->err, needle);
}

static void test_errors(void) {
  float f[24] = {0};
  int32_t i[24] = {0};
  opt o;
  /* Shapes that do not broadcast. */
  init(&o, GG_OP_DIV, 2, 1);
  set(&o, 0, GG_DT_F32, f, 3, S(2, 3, 4));
  set(&o, 1, GG_DT_F32, f, 1, S(3));
  expect_err(&o, GG_EPARSE, "[2,3,4] and [3] do not broadcast");
  init(&o, GG_OP_WHERE, 3, 1);
  set(&o, 0, GG_DT_I32, i, 1, S(2));
  set(&o, 1, GG_DT_F32, f, 1, S(3));
  set(&o, 2, GG_DT_F32, f, 0, NULL);
  expect_err(&o, GG_EPARSE, "do not broadcast");
  /* Wrong types. */
  init(&o, GG_OP_DIV, 2, 1);
  set(&o, 0, GG_DT_F32, f, 1, S(3));
  set(&o, 1, GG_DT_I32, i, 1, S(3));
  expect_err(&o, GG_EPARSE, "operand types differ");
  init(&o, GG_OP_EQUAL, 2, 1);
  set(&o, 0, GG_DT_I32, i, 1, S(3));
  set(&o, 1, GG_DT_F32, f, 1, S(3));
  expect_err(&o, GG_EPARSE, "operand types differ");
  init(&o, GG_OP_SQRT, 1, 1);
  set(&o, 0, GG_DT_I32, i, 1, S(3));
  expect_err(&o, GG_EPARSE, "needs a float input");
  init(&o, GG_OP_NOT, 1, 1);
  set(&o, 0, GG_DT_F32, f, 1, S(3));
  expect_err(&o, GG_EPARSE, "bool/int");
  init(&o, GG_OP_WHERE, 3, 1);
  set(&o, 0, GG_DT_F32, f, 1, S(3));
  set(&o, 1, GG_DT_F32, f, 1, S(3));
  set(&o, 2, GG_DT_F32, f, 1, S(3));
  expect_err(&o, GG_EPARSE, "condition");
  init(&o, GG_OP_WHERE, 3, 1);
  set(&o, 0, GG_DT_I32, i, 1, S(3));
  set(&o, 1, GG_DT_F32, f, 1, S(3));
  set(&o, 2, GG_DT_I32, i, 1, S(3));
  expect_err(&o, GG_EPARSE, "differ in type");
  init(&o, GG_OP_REDUCE_L2, 1, 1);
  set(&o, 0, GG_DT_I32, i, 1, S(3));
  expect_err(&o, GG_EPARSE, "float");
  init(&o, GG_OP_LOG_SOFTMAX, 1, 1);
  set(&o, 0, GG_DT_F32, f, 0, NULL);
  expect_err(&o, GG_EPARSE, "scalar");
  init(&o, GG_OP_CAST, 1, 1);
  o.n.a.to = GG_DT_COUNT;
  set(&o, 0, GG_DT_F32, f, 1, S(3));
  expect_err(&o, GG_EUNSUPPORTED, "cast");
  /* Reductions: axis out of range, non-constant axes. */
  init(&o, GG_OP_REDUCE_MAX, 2, 1);
  set(&o, 0, GG_DT_F32, f, 2, S(2, 3));
  set(&o, 1, GG_DT_I32, I(2), 1, S(1));
  expect_err(&o, GG_EPARSE, "out of range");
  init(&o, GG_OP_REDUCE_MAX, 2, 1);
  set(&o, 0, GG_DT_F32, f, 2, S(2, 3));
  set(&o, 1, GG_DT_I32, NULL, 1, S(1));
  expect_err(&o, GG_EUNSUPPORTED, "constant");
  /* Norms. */
  init(&o, GG_OP_LAYER_NORM, 2, 1);
  o.n.a.axis = 1;
  set(&o, 0, GG_DT_F32, f, 2, S(2, 3));
  set(&o, 1, GG_DT_F32, f, 1, S(2));
  expect_err(&o, GG_EPARSE, "scale");
  init(&o, GG_OP_LAYER_NORM, 2, 1);
  o.n.a.axis = 2;
  set(&o, 0, GG_DT_F32, f, 2, S(2, 3));
  set(&o, 1, GG_DT_F32, f, 1, S(3));
  expect_err(&o, GG_EPARSE, "axis 2");
  init(&o, GG_OP_GROUP_NORM, 3, 1);
  o.n.a.groups = 4;
  set(&o, 0, GG_DT_F32, f, 3, S(1, 6, 2));
  set(&o, 1, GG_DT_F32, f, 1, S(6));
  set(&o, 2, GG_DT_F32, f, 1, S(6));
  expect_err(&o, GG_EPARSE, "4 groups do not divide 6 channels");
  init(&o, GG_OP_INSTANCE_NORM, 3, 1);
  set(&o, 0, GG_DT_F32, f, 3, S(1, 6, 2));
  set(&o, 1, GG_DT_F32, f, 1, S(5));
  set(&o, 2, GG_DT_F32, f, 1, S(6));
  expect_err(&o, GG_EPARSE, "scale must be float [6]");
  init(&o, GG_OP_INSTANCE_NORM, 3, 1);
  set(&o, 0, GG_DT_F32, f, 2, S(1, 6));
  set(&o, 1, GG_DT_F32, f, 1, S(6));
  set(&o, 2, GG_DT_F32, f, 1, S(6));
  expect_err(&o, GG_EPARSE, "rank >= 3");
  /* Wrong input count (a malformed import): an error, not a crash. */
  init(&o, GG_OP_DIV, 1, 1);
  set(&o, 0, GG_DT_F32, f, 1, S(3));
  expect_err(&o, GG_EPARSE, "inputs");
}

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_WARN);
  static const gg_test_case cases[] = {
      {"div_broadcast", test_div_broadcast},
      {"div_int", test_div_int},
      {"pow", test_pow},
      {"compare", test_compare},
      {"not_where", test_not_where},
      {"unary_math", test_unary_math},
      {"softplus", test_softplus},
      {"hard_and_gelu", test_hard_and_gelu},
      {"clip", test_clip},
      {"cast", test_cast},
      {"log_softmax", test_log_softmax},
      {"reduce", test_reduce},
      {"layer_norm", test_layer_norm},
      {"instance_norm", test_instance_norm},
      {"group_norm", test_group_norm},
      {"threaded", test_threaded},
      {"errors", test_errors},
      {NULL, NULL},
  };
  return gg_test_main(argc, argv, cases);
}
