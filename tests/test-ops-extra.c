/* The group X ops (src/engine/ops-extra.c): each op against values computed
 * here independently (hand-written arrays or a direct loop in double), with
 * the edge cases ONNX/numpy define: NaN and inf, ties, negative zero, halves
 * (Round), the sign rules of Mod, empty axes, negative indices, duplicates in
 * scatters; threaded against serial; and the shape rules' errors. */
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

#define OPT_NODE_NAME "extra_node"
#include "op-harness.h"

static void expect_err(opt *o, int code, const char *needle) {
  int rc = ev(o);
  done(o);
  if (rc != code)
    GG_T_FAIL("%s: got %s (%s), want %s", o->n.src_op, gg_err_name(rc), o->err, gg_err_name(code));
  ASSERT_CONTAINS(o->err, "extra_node");
  ASSERT_CONTAINS(o->err, needle);
}

/* One unary function over x (n floats) with attrs from a. */
static void unary(opt *o, int fn, float *x, int64_t n, float alpha, float beta, float gamma) {
  init(o, GG_OP_UNARY_X, 1, 1);
  o->n.a.fn = fn, o->n.a.alpha = alpha, o->n.a.beta = beta, o->n.a.gamma = gamma;
  set(o, 0, GG_DT_F32, x, 1, S(n));
}

/* ------------------------------------------------------------ unary */

static void test_unary(void) {
  opt o;
  /* Every function against libm in double at a few points of its domain. */
  float x[5] = {-0.75f, -0.25f, 0.0f, 0.3f, 0.9f}, xp[5] = {1.0f, 1.5f, 2.0f, 7.0f, 30.0f};
  double (*ref[])(double) = {sin, cos, tan, asin, acos, atan, sinh, cosh, asinh, acosh, atanh};
  for (int fn = GG_UX_SIN; fn <= GG_UX_ATANH; fn++) {
    float *in = fn == GG_UX_ACOSH ? xp : x;
    double want[5];
    for (int i = 0; i < 5; i++)
      want[i] = ref[fn](in[i]);
    unary(&o, fn, in, 5, 0, 0, 0);
    ASSERT_OK(ev(&o));
    EXPECT_F(&o, 0, want, 5, 1e-6);
    done(&o);
  }
  /* Round: halves to even, as numpy; Floor / Ceil keep -0 and go the right way. */
  float r[8] = {0.5f, 1.5f, 2.5f, -0.5f, -2.5f, 2.4f, -2.6f, NAN};
  unary(&o, GG_UX_ROUND, r, 8, 0, 0, 0);
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){0, 2, 2, -0.0, -2, 2, -3, NAN}), 8, 0);
  ASSERT_TRUE(signbit(fout(&o, 0)[3]));
  done(&o);
  unary(&o, GG_UX_FLOOR, r, 8, 0, 0, 0);
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){0, 1, 2, -1, -3, 2, -3, NAN}), 8, 0);
  done(&o);
  unary(&o, GG_UX_CEIL, r, 8, 0, 0, 0);
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){1, 2, 3, -0.0, -2, 3, -2, NAN}), 8, 0);
  done(&o);
  /* Sign: NaN stays NaN, zero stays zero; ints too. */
  float sg[5] = {-3.0f, 0.0f, 2.0f, NAN, -0.0f};
  unary(&o, GG_UX_SIGN, sg, 5, 0, 0, 0);
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){-1, 0, 1, NAN, 0}), 5, 0);
  done(&o);
  int32_t si[4] = {-7, 0, 9, INT32_MIN};
  init(&o, GG_OP_UNARY_X, 1, 1);
  o.n.a.fn = GG_UX_SIGN;
  set(&o, 0, GG_DT_I32, si, 1, S(4));
  ASSERT_OK(ev(&o));
  EXPECT_I(&o, 0, I(-1, 0, 1, -1), 4);
  done(&o);
  /* IsNaN, IsInf with each detect flag. */
  float sp[4] = {INFINITY, -INFINITY, NAN, 1.0f};
  unary(&o, GG_UX_ISNAN, sp, 4, 0, 0, 0);
  ASSERT_OK(ev(&o));
  EXPECT_I(&o, 0, I(0, 0, 1, 0), 4);
  done(&o);
  const int32_t want_inf[4][4] = {{0, 0, 0, 0}, {0, 1, 0, 0}, {1, 0, 0, 0}, {1, 1, 0, 0}};
  for (int fl = 0; fl < 4; fl++) {
    unary(&o, GG_UX_ISINF, sp, 4, 0, 0, 0);
    o.n.a.flags = fl;
    ASSERT_OK(ev(&o));
    EXPECT_I(&o, 0, want_inf[fl], 4);
    done(&o);
  }
  /* The activations against their ONNX formulas. */
  float a[4] = {-2.0f, -0.5f, 0.0f, 1.5f};
  double al = 0.7, ga = 1.2, want[4];
  unary(&o, GG_UX_ELU, a, 4, 0.7f, 0, 0);
  ASSERT_OK(ev(&o));
  for (int i = 0; i < 4; i++)
    want[i] = a[i] < 0 ? al * (exp(a[i]) - 1) : a[i];
  EXPECT_F(&o, 0, want, 4, 1e-6);
  done(&o);
  unary(&o, GG_UX_SELU, a, 4, 0.7f, 0, 1.2f);
  ASSERT_OK(ev(&o));
  for (int i = 0; i < 4; i++)
    want[i] = a[i] > 0 ? ga * a[i] : ga * (al * exp(a[i]) - al);
  EXPECT_F(&o, 0, want, 4, 1e-6);
  done(&o);
  unary(&o, GG_UX_CELU, a, 4, 0.7f, 0, 0);
  ASSERT_OK(ev(&o));
  for (int i = 0; i < 4; i++)
    want[i] = fmax(0, a[i]) + fmin(0, al * (exp(a[i] / al) - 1));
  EXPECT_F(&o, 0, want, 4, 1e-6);
  done(&o);
  unary(&o, GG_UX_SOFTSIGN, a, 4, 0, 0, 0);
  ASSERT_OK(ev(&o));
  for (int i = 0; i < 4; i++)
    want[i] = a[i] / (1 + fabs(a[i]));
  EXPECT_F(&o, 0, want, 4, 1e-6);
  done(&o);
  unary(&o, GG_UX_THRESHOLDED_RELU, a, 4, 0.0f, 0, 0); /* x > alpha, strictly */
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){0, 0, 0, 1.5}), 4, 0);
  done(&o);
  unary(&o, GG_UX_SHRINK, a, 4, 0.25f, 0.5f, 0); /* bias 0.25, lambd 0.5 */
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){-1.75, 0, 0, 1.25}), 4, 0);
  done(&o);
}

/* ------------------------------------------------------------ binary */

static void test_binary(void) {
  opt o;
  /* Mod: the divisor's sign (Python), x mod 0 = 0, INT32_MIN mod -1 = 0 */
  int32_t a[6] = {-7, 7, -7, 7, 5, INT32_MIN}, b[6] = {3, -3, -3, 3, 0, -1};
  init(&o, GG_OP_BINARY_X, 2, 1);
  o.n.a.fn = GG_BX_MOD;
  set(&o, 0, GG_DT_I32, a, 1, S(6));
  set(&o, 1, GG_DT_I32, b, 1, S(6));
  ASSERT_OK(ev(&o));
  EXPECT_I(&o, 0, I(2, -2, -1, 1, 0, 0), 6);
  done(&o);
  o.n.a.fn = GG_BX_FMOD; /* C's remainder: the dividend's sign */
  ASSERT_OK(ev(&o));
  EXPECT_I(&o, 0, I(-1, 1, -1, 1, 0, 0), 6);
  done(&o);
  float fa[4] = {-7.5f, 7.5f, 5.0f, -0.0f}, fb[4] = {2.0f, -2.0f, 0.0f, 3.0f};
  init(&o, GG_OP_BINARY_X, 2, 1);
  o.n.a.fn = GG_BX_FMOD;
  set(&o, 0, GG_DT_F32, fa, 1, S(4));
  set(&o, 1, GG_DT_F32, fb, 1, S(4));
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){-1.5, 1.5, NAN, -0.0}), 4, 0);
  ASSERT_TRUE(signbit(fout(&o, 0)[3]));
  done(&o);
  /* GreaterOrEqual / LessOrEqual: NaN compares false; broadcasting [2,3] x [3]. */
  float ga[6] = {1, 2, NAN, 4, 5, 6}, gb[3] = {2, 2, 2};
  for (int fn = GG_BX_GE; fn <= GG_BX_LE; fn++) {
    init(&o, GG_OP_BINARY_X, 2, 1);
    o.n.a.fn = fn;
    set(&o, 0, GG_DT_F32, ga, 2, S(2, 3));
    set(&o, 1, GG_DT_F32, gb, 1, S(3));
    ASSERT_OK(ev(&o));
    EXPECT_SHAPE(&o, 0, 2, 2, 3);
    EXPECT_I(&o, 0, fn == GG_BX_GE ? I(0, 1, 0, 1, 1, 1) : I(1, 1, 0, 0, 0, 0), 6);
    done(&o);
  }
  /* And / Or / Xor: nonzero is true, [2,1] x [1,2] -> [2,2]. */
  int32_t la[2] = {0, 5}, lb[2] = {0, 1};
  const int32_t want[3][4] = {{0, 0, 0, 1}, {0, 1, 1, 1}, {0, 1, 1, 0}};
  for (int fn = GG_BX_AND; fn <= GG_BX_XOR; fn++) {
    init(&o, GG_OP_BINARY_X, 2, 1);
    o.n.a.fn = fn;
    set(&o, 0, GG_DT_I32, la, 2, S(2, 1));
    set(&o, 1, GG_DT_I32, lb, 2, S(1, 2));
    ASSERT_OK(ev(&o));
    EXPECT_SHAPE(&o, 0, 2, 2, 2);
    EXPECT_I(&o, 0, want[fn - GG_BX_AND], 4);
    done(&o);
  }
}

/* ------------------------------------------------------------ reductions */

static void reduce(opt *o, int fn, float *x, int nd, const int64_t *shape, int32_t *axes, int na,
                   int keep) {
  init(o, GG_OP_REDUCE_X, 2, 1);
  o->n.a.fn = fn, o->n.a.keep_dims = keep;
  set(o, 0, GG_DT_F32, x, nd, shape);
  set(o, 1, GG_DT_I32, axes, 1, S(na));
}

static void test_reduce(void) {
  opt o;
  float x[6] = {1, -2, 3, -4, 5, -6};
  int32_t ax1[1] = {-1}, none[1] = {0};
  const double want[5][2] = {{-6, 120}, {14, 77}, {6, 15}, {NAN, NAN}, {0, 0}};
  for (int fn = GG_RX_PROD; fn <= GG_RX_L1; fn++) {
    reduce(&o, fn, x, 2, S(2, 3), ax1, 1, 1);
    ASSERT_OK(ev(&o));
    EXPECT_SHAPE(&o, 0, 2, 2, 1);
    EXPECT_F(&o, 0, want[fn], 2, 1e-6);
    done(&o);
  }
  /* LogSum of positives; empty axes: every axis, keep_dims off gives a scalar. */
  float p[4] = {1, 2, 3, 4};
  reduce(&o, GG_RX_LOG_SUM, p, 2, S(2, 2), none, 0, 0);
  ASSERT_OK(ev(&o));
  ASSERT_EQ(o.v[o.out[0]].ndim, 0);
  EXPECT_F(&o, 0, ((double[]){log(10.0)}), 1, 1e-6);
  done(&o);
  /* LogSumExp: large values do not overflow; -inf rows give -inf, +inf +inf. */
  float l[6] = {1000, 1000, -INFINITY, -INFINITY, INFINITY, 3};
  reduce(&o, GG_RX_LOG_SUM_EXP, l, 2, S(3, 2), ax1, 1, 0);
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){1000 + log(2.0), -INFINITY, INFINITY}), 3, 1e-6);
  done(&o);
  float m[4] = {-1, 0.5f, 2, -3};
  reduce(&o, GG_RX_LOG_SUM_EXP, m, 1, S(4), none, 0, 1);
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){log(exp(-1.0) + exp(0.5) + exp(2.0) + exp(-3.0))}), 1, 1e-6);
  done(&o);
  /* An empty reduced axis: Prod 1, SumSquare 0, LogSum -inf. */
  float e[1] = {0};
  int32_t ax0[1] = {0};
  const double ew[5] = {1, 0, 0, -INFINITY, -INFINITY};
  for (int fn = GG_RX_PROD; fn <= GG_RX_LOG_SUM_EXP; fn++) {
    reduce(&o, fn, e, 2, S(0, 2), ax0, 1, 1);
    ASSERT_OK(ev(&o));
    EXPECT_F(&o, 0, ((double[]){ew[fn], ew[fn]}), 2, 0);
    done(&o);
  }
  /* Ints wrap as int32 (no UB): Prod, SumSquare, L1. */
  int32_t xi[3] = {65536, 65536, -3};
  init(&o, GG_OP_REDUCE_X, 2, 1);
  o.n.a.fn = GG_RX_L1;
  set(&o, 0, GG_DT_I32, xi, 1, S(3));
  set(&o, 1, GG_DT_I32, none, 1, S(0));
  ASSERT_OK(ev(&o));
  EXPECT_I(&o, 0, I(131075), 1);
  done(&o);
  o.n.a.fn = GG_RX_PROD;
  ASSERT_OK(ev(&o));
  EXPECT_I(&o, 0, I(0), 1); /* 2^32 * -3 wraps to 0 */
  done(&o);
}

static void test_arg(void) {
  opt o;
  /* Ties: the first, or the last with select_last_index; a NaN wins. */
  float x[8] = {1, 3, 3, 0, 2, NAN, 5, NAN};
  /* [fn][last][row]: row 1 holds NaN at 1 and 3, which wins max and min (numpy) */
  const int32_t want[2][2][2] = {{{1, 1}, {2, 3}}, {{3, 1}, {3, 3}}};
  for (int fn = 0; fn < 2; fn++)
    for (int last = 0; last < 2; last++) {
      init(&o, GG_OP_ARG_X, 1, 1);
      o.n.a.fn = fn, o.n.a.flags = last, o.n.a.axis = -1, o.n.a.keep_dims = 1;
      set(&o, 0, GG_DT_F32, x, 2, S(2, 4));
      ASSERT_OK(ev(&o));
      EXPECT_SHAPE(&o, 0, 2, 2, 1);
      EXPECT_I(&o, 0, want[fn][last], 2);
      done(&o);
    }
  /* Axis 0 without keep_dims, ints. */
  int32_t xi[6] = {4, -1, 7, 4, 9, -2};
  init(&o, GG_OP_ARG_X, 1, 1);
  o.n.a.axis = 0;
  set(&o, 0, GG_DT_I32, xi, 2, S(2, 3));
  ASSERT_OK(ev(&o));
  EXPECT_SHAPE(&o, 0, 1, 3);
  EXPECT_I(&o, 0, I(0, 1, 0), 3);
  done(&o);
  /* Hardmax: opset 13 along axis 1, and the coerced 2-D form from axis 1. */
  float h[8] = {1, 4, 2, 4, 0, 5, 1, 0};
  init(&o, GG_OP_HARDMAX, 1, 1);
  o.n.a.axis = 1;
  set(&o, 0, GG_DT_F32, h, 3, S(1, 2, 4));
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){1, 0, 1, 1, 0, 1, 0, 0}), 8, 0);
  done(&o);
  o.n.a.flags = 1;
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){0, 0, 0, 0, 0, 1, 0, 0}), 8, 0);
  done(&o);
  float hn[3] = {1, NAN, 5}; /* a NaN wins, as np.argmax in ONNX's reference */
  init(&o, GG_OP_HARDMAX, 1, 1);
  set(&o, 0, GG_DT_F32, hn, 1, S(3));
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){0, 1, 0}), 3, 0);
  done(&o);
}

/* ------------------------------------------------------------ the rest */

static void test_cumsum_trilu(void) {
  opt o;
  float x[6] = {1, 2, 3, 4, 5, 6};
  int32_t ax = 1;
  const double want[4][6] = {
      {1, 3, 6, 4, 9, 15}, {0, 1, 3, 0, 4, 9}, {6, 5, 3, 15, 11, 6}, {5, 3, 0, 11, 6, 0}};
  for (int fl = 0; fl < 4; fl++) {
    init(&o, GG_OP_CUMSUM, 2, 1);
    o.n.a.flags = fl;
    set(&o, 0, GG_DT_F32, x, 2, S(2, 3));
    set(&o, 1, GG_DT_I32, &ax, 0, NULL);
    ASSERT_OK(ev(&o));
    EXPECT_F(&o, 0, want[fl], 6, 0);
    done(&o);
  }
  int32_t bad = 2;
  init(&o, GG_OP_CUMSUM, 2, 1);
  set(&o, 0, GG_DT_F32, x, 2, S(2, 3));
  set(&o, 1, GG_DT_I32, &bad, 0, NULL);
  ASSERT_EQ(ev(&o), GG_ERANGE);
  done(&o);
  /* Trilu on a 3x3: upper k=1, lower k=-1, and no k (0). */
  float t[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  int32_t k1 = 1, km1 = -1;
  init(&o, GG_OP_TRILU, 2, 1);
  o.n.a.flags = 1;
  set(&o, 0, GG_DT_F32, t, 2, S(3, 3));
  set(&o, 1, GG_DT_I32, &k1, 1, S(1));
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){0, 2, 3, 0, 0, 6, 0, 0, 0}), 9, 0);
  done(&o);
  o.n.a.flags = 0;
  set(&o, 1, GG_DT_I32, &km1, 1, S(1));
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){0, 0, 0, 4, 0, 0, 7, 8, 0}), 9, 0);
  done(&o);
  o.n.n_in = 1, o.n.a.flags = 1;
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){1, 2, 3, 0, 5, 6, 0, 0, 9}), 9, 0);
  done(&o);
}

static void test_topk(void) {
  opt o;
  /* Ties: the lower index first, largest and smallest; a NaN is the largest. */
  float x[6] = {2, 5, 2, NAN, 5, 1};
  int32_t k = 4;
  init(&o, GG_OP_TOPK, 2, 2);
  o.n.a.axis = 0, o.n.a.flags = 1;
  set(&o, 0, GG_DT_F32, x, 1, S(6));
  set(&o, 1, GG_DT_I32, &k, 1, S(1));
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){NAN, 5, 5, 2}), 4, 0);
  EXPECT_I(&o, 1, I(3, 1, 4, 0), 4);
  done(&o);
  o.n.a.flags = 0;
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){1, 2, 2, 5}), 4, 0);
  EXPECT_I(&o, 1, I(5, 0, 2, 1), 4);
  done(&o);
  /* Along axis 0 of [3,2]. */
  float y[6] = {1, 9, 3, 8, 2, 7};
  int32_t k2 = 2;
  init(&o, GG_OP_TOPK, 2, 2);
  o.n.a.axis = -2, o.n.a.flags = 1;
  set(&o, 0, GG_DT_F32, y, 2, S(3, 2));
  set(&o, 1, GG_DT_I32, &k2, 0, NULL);
  ASSERT_OK(ev(&o));
  EXPECT_SHAPE(&o, 0, 2, 2, 2);
  EXPECT_F(&o, 0, ((double[]){3, 9, 2, 8}), 4, 0);
  EXPECT_I(&o, 1, I(1, 0, 2, 1), 4);
  done(&o);
  /* Random rows (few distinct values, so many ties, and NaNs) against a
   * full sort: every K from 1 to the row, largest and smallest. The kernel
   * keeps a heap of K in the output row; the reference sorts a copy. */
  enum { RN = 37 };
  float r[RN];
  for (int trial = 0; trial < 8; trial++) {
    for (int i = 0; i < RN; i++)
      r[i] = trial % 3 == 2 && i % 11 == 3 ? NAN : (float)(int)frand(0.0f, 6.0f);
    for (int32_t kk = 1; kk <= RN; kk += trial % 2 ? 5 : 1)
      for (int lg = 0; lg < 2; lg++) {
        /* reference: selection of the next (value, index) in the output order */
        double wv[RN];
        int32_t wi[RN];
        int used[RN] = {0};
        for (int32_t j = 0; j < kk; j++) {
          int best = -1;
          for (int i = 0; i < RN; i++) {
            if (used[i]) continue;
            if (best < 0) {
              best = i;
              continue;
            }
            int in = r[i] != r[i], bn = r[best] != r[best];
            int before = in != bn ? (lg ? in : bn)
                         : !in && r[i] != r[best] ? (lg ? r[i] > r[best] : r[i] < r[best])
                                                 : 0; /* equal: the lower index, already best */
            if (before) best = i;
          }
          used[best] = 1, wv[j] = r[best], wi[j] = best;
        }
        init(&o, GG_OP_TOPK, 2, 2);
        o.n.a.axis = 0, o.n.a.flags = lg;
        set(&o, 0, GG_DT_F32, r, 1, S(RN));
        set(&o, 1, GG_DT_I32, &kk, 1, S(1));
        ASSERT_OK(ev(&o));
        EXPECT_F(&o, 0, wv, kk, 0);
        EXPECT_I(&o, 1, wi, kk);
        done(&o);
      }
  }
  init(&o, GG_OP_TOPK, 2, 2);
  o.n.a.axis = -2, o.n.a.flags = 1;
  set(&o, 0, GG_DT_F32, y, 2, S(3, 2));
  /* K past the axis, and K not known when the shapes are. */
  int32_t big = 4;
  set(&o, 1, GG_DT_I32, &big, 0, NULL);
  expect_err(&o, GG_EPARSE, "outside");
  set(&o, 1, GG_DT_I32, NULL, 0, NULL);
  expect_err(&o, GG_EUNSUPPORTED, "K must be known");
}

static void test_gather_scatter(void) {
  opt o;
  /* GatherElements axis 1 with a negative index; out of range: GG_ERANGE. */
  float d[6] = {1, 2, 3, 4, 5, 6};
  int32_t gi[4] = {2, -3, 1, 1};
  init(&o, GG_OP_GATHER_ELEMENTS, 2, 1);
  o.n.a.axis = 1;
  set(&o, 0, GG_DT_F32, d, 2, S(2, 3));
  set(&o, 1, GG_DT_I32, gi, 2, S(2, 2));
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){3, 1, 5, 5}), 4, 0);
  done(&o);
  gi[0] = 3;
  ASSERT_EQ(ev(&o), GG_ERANGE);
  done(&o);
  /* GatherND with batch_dims 1: data [2,2,2], indices [2,1,1]. */
  float g[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  int32_t ni[2] = {1, 0};
  init(&o, GG_OP_GATHER_ND, 2, 1);
  o.n.a.axis = 1;
  set(&o, 0, GG_DT_F32, g, 3, S(2, 2, 2));
  set(&o, 1, GG_DT_I32, ni, 3, S(2, 1, 1));
  ASSERT_OK(ev(&o));
  EXPECT_SHAPE(&o, 0, 3, 2, 1, 2);
  EXPECT_F(&o, 0, ((double[]){2, 3, 4, 5}), 4, 0);
  done(&o);
  /* ScatterND with add and duplicates: data [4], indices [[1],[1],[-1]]. */
  float sd[4] = {1, 1, 1, 1}, su[3] = {2, 3, 4};
  int32_t sn[3] = {1, 1, -1};
  init(&o, GG_OP_SCATTER_ND, 3, 1);
  o.n.a.fn = GG_SX_ADD;
  set(&o, 0, GG_DT_F32, sd, 1, S(4));
  set(&o, 1, GG_DT_I32, sn, 2, S(3, 1));
  set(&o, 2, GG_DT_F32, su, 1, S(3));
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){1, 6, 1, 5}), 4, 0);
  done(&o);
  o.n.a.fn = GG_SX_NONE; /* the last write wins */
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){1, 3, 1, 4}), 4, 0);
  done(&o);
  /* ScatterElements axis 0 with mul and max. */
  float ed[4] = {1, 2, 3, 4}, eu[2] = {10, 0.5f};
  int32_t ei[2] = {1, 0};
  init(&o, GG_OP_SCATTER_ELEMENTS, 3, 1);
  o.n.a.fn = GG_SX_MUL;
  set(&o, 0, GG_DT_F32, ed, 2, S(2, 2));
  set(&o, 1, GG_DT_I32, ei, 2, S(1, 2));
  set(&o, 2, GG_DT_F32, eu, 2, S(1, 2));
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){1, 1, 30, 4}), 4, 0);
  done(&o);
  o.n.a.fn = GG_SX_MAX;
  ASSERT_OK(ev(&o));
  EXPECT_F(&o, 0, ((double[]){1, 2, 10, 4}), 4, 0);
  done(&o);
}

static void test_onehot_eye_lrn(void) {
  opt o;
  /* OneHot: negative indices from depth, out of range all off, axis 0. */
  int32_t ix[4] = {0, -1, 3, 1}, depth = 3;
  float vals[2] = {-1, 7};
  init(&o, GG_OP_ONE_HOT, 3, 1);
  o.n.a.axis = 0;
  set(&o, 0, GG_DT_I32, ix, 1, S(4));
  set(&o, 1, GG_DT_I32, &depth, 0, NULL);
  set(&o, 2, GG_DT_F32, vals, 1, S(2));
  ASSERT_OK(ev(&o));
  EXPECT_SHAPE(&o, 0, 2, 3, 4);
  EXPECT_F(&o, 0, ((double[]){7, -1, -1, -1, -1, -1, -1, 7, -1, 7, -1, -1}), 12, 0);
  done(&o);
  /* EyeLike with k = 1 as int. */
  float x[6] = {0};
  init(&o, GG_OP_EYE_LIKE, 1, 1);
  o.n.a.to = GG_DT_I32, o.n.a.axis = 1;
  set(&o, 0, GG_DT_F32, x, 2, S(2, 3));
  ASSERT_OK(ev(&o));
  EXPECT_I(&o, 0, I(0, 1, 0, 0, 0, 1), 6);
  done(&o);
  /* LRN against its formula in double, size 2 (window c-0..c+1) and 3. */
  int64_t C = 4, sp = 3;
  float *l = rnd_buf(2 * C * sp, -2, 2);
  for (int size = 2; size <= 3; size++) {
    init(&o, GG_OP_LRN, 1, 1);
    o.n.a.size = size, o.n.a.alpha = 0.3f, o.n.a.beta = 0.75f, o.n.a.gamma = 1.5f;
    set(&o, 0, GG_DT_F32, l, 3, S(2, C, sp));
    ASSERT_OK(ev(&o));
    double want[24];
    for (int64_t b = 0; b < 2; b++)
      for (int64_t c = 0; c < C; c++)
        for (int64_t s = 0; s < sp; s++) {
          double sum = 0;
          for (int64_t q = c - (size - 1) / 2; q <= c + size / 2; q++)
            if (q >= 0 && q < C) sum += (double)l[(b * C + q) * sp + s] * l[(b * C + q) * sp + s];
          want[(b * C + c) * sp + s] = l[(b * C + c) * sp + s] / pow(1.5 + 0.3 / size * sum, 0.75);
        }
    EXPECT_F(&o, 0, want, 24, 1e-5);
    done(&o);
  }
  /* A window far past the channels (a hostile size): every channel, once. */
  init(&o, GG_OP_LRN, 1, 1);
  o.n.a.size = INT32_MAX, o.n.a.alpha = 0.3f, o.n.a.beta = 0.75f, o.n.a.gamma = 1.5f;
  set(&o, 0, GG_DT_F32, l, 3, S(1, C, 1));
  ASSERT_OK(ev(&o));
  double all = 0, wl[4];
  for (int64_t c = 0; c < C; c++)
    all += (double)l[c] * l[c];
  for (int64_t c = 0; c < C; c++)
    wl[c] = l[c] / pow(1.5 + 0.3 / INT32_MAX * all, 0.75);
  EXPECT_F(&o, 0, wl, 4, 1e-6);
  done(&o);
  free(l);
  /* OneHot's depth given as a float: truncated; NaN refused. */
  float fd = 2.7f, fnan = NAN;
  init(&o, GG_OP_ONE_HOT, 3, 1);
  o.n.a.axis = -1;
  set(&o, 0, GG_DT_I32, ix, 1, S(2));
  set(&o, 1, GG_DT_F32, &fd, 0, NULL);
  set(&o, 2, GG_DT_F32, vals, 1, S(2));
  ASSERT_OK(ev(&o));
  EXPECT_SHAPE(&o, 0, 2, 2, 2);
  EXPECT_F(&o, 0, ((double[]){7, -1, -1, 7}), 4, 0);
  done(&o);
  set(&o, 1, GG_DT_F32, &fnan, 0, NULL);
  expect_err(&o, GG_EPARSE, "depth must be an integer");
}

static void test_threaded(void) {
#ifndef HAVE_POOL
  SKIP("pthreadpool.h not found: the kernels run serially in this build");
#else
  struct pthreadpool *pool = pthreadpool_create(4);
  ASSERT_TRUE(pool != NULL);
  gg__kctx kc = {pool};
  int64_t A = 37, B = 61, C = 53; /* 119,561 elements: several tiles */
  float *a = rnd_buf(A * B * C, -4, 4), *b = rnd_buf(B, 0.5f, 3);
  int32_t ax[1] = {1};
  gg_op ops[3] = {GG_OP_UNARY_X, GG_OP_BINARY_X, GG_OP_REDUCE_X};
  for (int t = 0; t < 3; t++) {
    opt o[2];
    for (int p = 0; p < 2; p++) {
      init(&o[p], ops[t], t ? 2 : 1, 1);
      o[p].n.a.fn = t == 0 ? GG_UX_SIN : t == 1 ? GG_BX_FMOD : GG_RX_LOG_SUM_EXP;
      set(&o[p], 0, GG_DT_F32, a, 3, S(A, B, C));
      if (t == 1) set(&o[p], 1, GG_DT_F32, b, 2, S(B, 1));
      if (t == 2) set(&o[p], 1, GG_DT_I32, ax, 1, S(1));
      ASSERT_OK(ev_pool(&o[p], p ? &kc : NULL));
    }
    const gg_tval *y0 = &o[0].v[o[0].out[0]], *y1 = &o[1].v[o[1].out[0]];
    ASSERT_EQ(y0->nelem, y1->nelem);
    if (memcmp(y0->data, y1->data, (size_t)y0->nelem * 4))
      GG_T_FAIL("%s: threaded result differs from the serial one", gg__op_name(ops[t]));
    if (t == 1) /* and right: fmod against libm at a few places */
      for (int64_t i = 0; i < A * B * C; i += 997)
        ASSERT_NEAR(((float *)y0->data)[i], fmodf(a[i], b[(i / C) % B]), 0);
    done(&o[0]), done(&o[1]);
  }
  free(a), free(b);
  pthreadpool_destroy(pool);
#endif
}

static void test_errors(void) {
  float f[8] = {0};
  int32_t i[8] = {0};
  opt o;
  init(&o, GG_OP_BINARY_X, 2, 1); /* float Mod without fmod: refused */
  o.n.a.fn = GG_BX_MOD;
  set(&o, 0, GG_DT_F32, f, 1, S(2));
  set(&o, 1, GG_DT_F32, f, 1, S(2));
  expect_err(&o, GG_EUNSUPPORTED, "fmod=1");
  o.n.a.fn = GG_BX_AND;
  expect_err(&o, GG_EPARSE, "bool");
  init(&o, GG_OP_UNARY_X, 1, 1);
  o.n.a.fn = GG_UX_SIN;
  set(&o, 0, GG_DT_I32, i, 1, S(2));
  expect_err(&o, GG_EPARSE, "float");
  init(&o, GG_OP_GATHER_ND, 2, 1);
  o.n.a.axis = 0;
  set(&o, 0, GG_DT_F32, f, 2, S(2, 2));
  set(&o, 1, GG_DT_I32, i, 2, S(1, 3)); /* k 3 > rank 2 */
  expect_err(&o, GG_EPARSE, "do not index");
  init(&o, GG_OP_ONE_HOT, 3, 1);
  set(&o, 0, GG_DT_I32, i, 1, S(2));
  set(&o, 1, GG_DT_I32, NULL, 0, NULL);
  set(&o, 2, GG_DT_F32, f, 1, S(2));
  expect_err(&o, GG_EUNSUPPORTED, "depth");
  init(&o, GG_OP_ARG_X, 1, 1);
  o.n.a.axis = 0;
  set(&o, 0, GG_DT_F32, f, 2, S(0, 2));
  expect_err(&o, GG_EPARSE, "empty");
  init(&o, GG_OP_TRILU, 1, 1);
  set(&o, 0, GG_DT_F32, f, 1, S(2));
  expect_err(&o, GG_EPARSE, "rank >= 2");
}

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_WARN);
  static const gg_test_case cases[] = {
      {"unary", test_unary},
      {"binary", test_binary},
      {"reduce", test_reduce},
      {"arg", test_arg},
      {"cumsum_trilu", test_cumsum_trilu},
      {"topk", test_topk},
      {"gather_scatter", test_gather_scatter},
      {"onehot_eye_lrn", test_onehot_eye_lrn},
      {"threaded", test_threaded},
      {"errors", test_errors},
      {NULL, NULL},
  };
  return gg_test_main(argc, argv, cases);
}
