/* ONNX importer tests: small models built in memory (tests/onnx-build.h),
 * written to a temp file, loaded with gg_model_load and run; results
 * checked against values computed here by direct loops. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/device.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "gpuguard/memory.h"
#include "test.h"

#ifdef GG_HAVE_ONNX
#include "onnx-build.h"

#include <unistd.h>

#define F ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
#define I64 ONNX__TENSOR_PROTO__DATA_TYPE__INT64

static const char *tmp_path(const char *name) {
  return ob_tmp_path("gg-test-onnx", name);
}

/* Writes b to a file and loads it: 0 or the load error (msg in err). */
static int load(ob_model *b, const char *name, gg_model **m, char *err, size_t errlen) {
  const char *p = tmp_path(name);
  if (ob_write(b, p, 0)) return GG_EIO;
  return gg_model_load(p, m, err, errlen);
}

/* Loads path without the layout pass and fusion (the reference the
 * optimized model is compared with): 0 or the load error. */
static int load_unoptimized(const char *path, gg_model **m, char *err, size_t errlen) {
  setenv("GG_ONNX_NO_LAYOUT", "1", 1);
  gg__fuse_disabled = 1;
  int rc = gg_model_load(path, m, err, errlen);
  gg__fuse_disabled = 0;
  unsetenv("GG_ONNX_NO_LAYOUT");
  return rc;
}

/* load, then ob_free(b): the model, or NULL after printing the error (the
 * caller fails its test). */
static gg_model *load_free(ob_model *b, const char *name) {
  gg_model *m = NULL;
  char err[512] = "";
  int rc = load(b, name, &m, err, sizeof err);
  ob_free(b);
  if (rc) fprintf(stderr, "  load %s: %s\n", name, err);
  return rc ? NULL : m;
}

static float frand(uint32_t *s) {
  *s = *s * 1664525u + 1013904223u;
  return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* Live Transpose nodes of a model's run. */
static int count_transposes(const gg_model *m) {
  const gg_graph *g = gg__model_graph(m);
  int n = 0;
  for (int i = 0; i < g->n_order; i++)
    n += g->nodes[g->order[i]].op == GG_OP_TRANSPOSE;
  return n;
}

/* Runs a one-input model on x; out gets output 0 (n values). */
static int run1(gg_model *m, const int64_t *shape, int nd, const float *x, float *out, int64_t n,
                gg_engine_backend be, char *err, size_t errlen) {
  gg_session *s = NULL;
  gg_session_opts o = {1, be, 0};
  int rc = gg_session_new(m, shape, nd, &o, &s, err, errlen);
  if (rc) return rc;
  gg_tensor_info ti;
  float *in = gg_session_input(s, 0, &ti);
  int64_t ne = 1;
  for (int d = 0; d < ti.ndim; d++)
    ne *= ti.shape[d];
  memcpy(in, x, (size_t)ne * sizeof *x);
  if (!(rc = gg_session_run(s, err, errlen))) {
    if (gg_session_output_elems(s, 0) != n)
      rc = GG_ERANGE;
    else
      memcpy(out, gg_session_output(s, 0, NULL), (size_t)n * sizeof *out);
  }
  gg_session_free(s);
  return rc;
}

/* Runs m on x on every engine backend: output 0 (n values) must match want
 * within tol * (1 + |want|). 0, or -1 after printing what (the case), the
 * backend and the error or first mismatch. */
static int match_backends(gg_model *m, const int64_t *shape, int nd, const float *x,
                          const float *want, int64_t n, double tol, const char *what) {
  float *got = malloc((size_t)n * sizeof *got);
  if (!got) abort();
  char err[512] = "";
  int bad = 0;
  for (int be = GG_ENGINE_AUTO; be <= GG_ENGINE_NAIVE && !bad; be++) {
    if (run1(m, shape, nd, x, got, n, (gg_engine_backend)be, err, sizeof err)) {
      fprintf(stderr, "  %s backend %d: %s\n", what, be, err);
      bad = 1;
    }
    for (int64_t i = 0; !bad && i < n; i++)
      if (!gg_t_near(got[i], want[i], tol * (1 + fabs(want[i])))) {
        fprintf(stderr, "  %s backend %d: y[%lld] = %.6g, expected %.6g\n", what, be, (long long)i,
                got[i], want[i]);
        bad = 1;
      }
  }
  free(got);
  return bad ? -1 : 0;
}

/* ------------------------------------------------------------ conv + bn + relu */

/* Direct NCHW convolution (OIHW weights, groups), then BN, then ReLU. */
static void ref_conv(const float *x, int C, int H, int W, const float *w, const float *bias, int CO,
                     int K, int stride, const int pads[4], int groups, const float *bn, float *y,
                     int OH, int OW) {
  int cig = C / groups, cog = CO / groups;
  for (int o = 0; o < CO; o++)
    for (int oy = 0; oy < OH; oy++)
      for (int ox = 0; ox < OW; ox++) {
        double acc = bias ? bias[o] : 0;
        int g = o / cog;
        for (int i = 0; i < cig; i++)
          for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
              int iy = oy * stride - pads[0] + ky, ix = ox * stride - pads[1] + kx;
              if (iy < 0 || ix < 0 || iy >= H || ix >= W) continue;
              acc += (double)x[((g * cig + i) * H + iy) * W + ix] *
                     w[((o * cig + i) * K + ky) * K + kx];
            }
        if (bn) { /* gamma, beta, mean, var (each CO), eps 1e-5 */
          acc = (acc - bn[2 * CO + o]) / sqrt(bn[3 * CO + o] + 1e-5) * bn[o] + bn[CO + o];
          if (acc < 0) acc = 0;
        }
        y[(o * OH + oy) * OW + ox] = (float)acc;
      }
}

static void conv_case(int groups, int CO, int stride, int asym, int with_bn) {
  enum { C = 6, H = 7, W = 6, K = 3 };
  ob_model b;
  ob_init(&b, 13);
  uint32_t seed = 7u + (uint32_t)groups;
  int cig = C / groups;
  float w[CO * C * K * K], bias[CO], bn[4 * CO], x[C * H * W];
  for (int i = 0; i < CO * cig * K * K; i++)
    w[i] = frand(&seed);
  for (int i = 0; i < CO; i++)
    bias[i] = frand(&seed);
  for (int i = 0; i < CO; i++) {
    bn[i] = 1.0f + 0.5f * frand(&seed);
    bn[CO + i] = frand(&seed);
    bn[2 * CO + i] = 0.3f * frand(&seed);
    bn[3 * CO + i] = 1.0f + 0.5f * frand(&seed);
  }
  for (int i = 0; i < C * H * W; i++)
    x[i] = frand(&seed);
  int64_t xd[4] = {1, C, H, W}, wd[4] = {CO, cig, K, K}, cd[1] = {CO};
  ob_input(&b, "x", 4, xd);
  ob_init_f(&b, "w", 4, wd, w, (size_t)(CO * cig * K * K));
  ob_init_f(&b, "b", 1, cd, bias, CO);
  Onnx__NodeProto *n = ob_node(&b, "Conv", "conv", "x,w,b", with_bn ? "c" : "y");
  int64_t ks[2] = {K, K}, st[2] = {stride, stride}, pads[4] = {1, 1, 1, 1};
  if (asym) pads[2] = 0, pads[3] = 2; /* h_begin, w_begin, h_end, w_end */
  ob_attr_ints(&b, n, "kernel_shape", 2, ks);
  ob_attr_ints(&b, n, "strides", 2, st);
  ob_attr_ints(&b, n, "pads", 4, pads);
  ob_attr_i(&b, n, "group", groups);
  if (with_bn) {
    ob_init_f(&b, "g", 1, cd, bn, CO);
    ob_init_f(&b, "be", 1, cd, bn + CO, CO);
    ob_init_f(&b, "mu", 1, cd, bn + 2 * CO, CO);
    ob_init_f(&b, "var", 1, cd, bn + 3 * CO, CO);
    ob_node(&b, "BatchNormalization", "bn", "c,g,be,mu,var", "d");
    ob_node(&b, "Relu", "relu", "d", "y");
  }
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "conv.onnx");
  if (!m) GG_T_FAIL("load failed");
  int OH = (H + (int)pads[0] + (int)pads[2] - K) / stride + 1,
      OW = (W + (int)pads[1] + (int)pads[3] - K) / stride + 1;
  float ref[CO * OH * OW];
  int p4[4] = {(int)pads[0], (int)pads[1], (int)pads[2], (int)pads[3]};
  ref_conv(x, C, H, W, w, bias, CO, K, stride, p4, groups, with_bn ? bn : NULL, ref, OH, OW);
  char what[64];
  snprintf(what, sizeof what, "groups %d", groups);
  if (match_backends(m, xd, 4, x, ref, CO * OH * OW, 1e-4, what)) {
    gg_model_free(m);
    GG_T_FAIL("conv: %s", what);
  }
  /* BN and ReLU folded into the conv: transpose, conv, transpose */
  if (with_bn) ASSERT_EQ(gg_model_n_ops(m), 3);
  gg_model_free(m);
}

static void test_conv_bn_relu(void) {
  conv_case(1, 4, 1, 0, 1);
  if (gg_t_failed_checks) return;
  conv_case(1, 5, 2, 1, 1);
  if (gg_t_failed_checks) return;
  conv_case(6, 12, 1, 0, 1); /* depthwise, multiplier 2 */
  if (gg_t_failed_checks) return;
  conv_case(2, 4, 2, 1, 0); /* grouped */
}

/* A 1-D convolution runs as a 2-D one over [1, L]. */
static void test_conv1d(void) {
  enum { C = 2, L = 7, CO = 3, K = 3 };
  ob_model b;
  ob_init(&b, 13);
  float w[CO * C * K], x[C * L];
  uint32_t seed = 21;
  for (int i = 0; i < CO * C * K; i++)
    w[i] = frand(&seed);
  for (int i = 0; i < C * L; i++)
    x[i] = frand(&seed);
  int64_t xd[3] = {1, C, L}, wd[3] = {CO, C, K}, ks[1] = {K}, st[1] = {2}, pads[2] = {1, 2};
  ob_input(&b, "x", 3, xd);
  ob_init_f(&b, "w", 3, wd, w, CO * C * K);
  Onnx__NodeProto *n = ob_node(&b, "Conv", "conv1d", "x,w", "y");
  ob_attr_ints(&b, n, "kernel_shape", 1, ks);
  ob_attr_ints(&b, n, "strides", 1, st);
  ob_attr_ints(&b, n, "pads", 2, pads);
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "conv1d.onnx");
  if (!m) GG_T_FAIL("load failed");
  char err[512] = "";
  int rc = 0;
  enum { OL = (L + 1 + 2 - K) / 2 + 1 };
  float got[CO * OL];
  rc = run1(m, xd, 3, x, got, CO * OL, GG_ENGINE_AUTO, err, sizeof err);
  gg_model_free(m);
  if (rc) GG_T_FAIL("run: %s", err);
  for (int o = 0; o < CO; o++)
    for (int ol = 0; ol < OL; ol++) {
      double acc = 0;
      for (int i = 0; i < C; i++)
        for (int k = 0; k < K; k++) {
          int il = ol * 2 - 1 + k;
          if (il >= 0 && il < L) acc += (double)x[i * L + il] * w[(o * C + i) * K + k];
        }
      ASSERT_NEAR(got[o * OL + ol], acc, 1e-5);
    }
}

/* ConvTranspose with output_shape: the pads follow from the output size by
 * ONNX's rule (total = stride * (in - 1) + output_padding + kernel - out;
 * the odd one at the start unless SAME_UPPER). An output larger than the
 * scatter reaches (total < 0: ONNX's test_convtranspose_output_shape) gets
 * the rest at the end, bias only, as ONNX Runtime does. */
static void convtranspose_os_case(int OH, int OW, int top, int left) {
  enum { CI = 2, CO = 3, H = 3, W = 3, K = 3, SH = 3, SW = 2 };
  ob_model b;
  ob_init(&b, 13);
  float w[CI * CO * K * K], bias[CO], x[CI * H * W];
  uint32_t seed = 31;
  for (int i = 0; i < CI * CO * K * K; i++)
    w[i] = frand(&seed);
  for (int i = 0; i < CO; i++)
    bias[i] = frand(&seed);
  for (int i = 0; i < CI * H * W; i++)
    x[i] = frand(&seed);
  int64_t xd[4] = {1, CI, H, W}, wd[4] = {CI, CO, K, K}, cd[1] = {CO}, st[2] = {SH, SW},
          os[2] = {OH, OW};
  ob_input(&b, "x", 4, xd);
  ob_init_f(&b, "w", 4, wd, w, CI * CO * K * K);
  ob_init_f(&b, "b", 1, cd, bias, CO);
  Onnx__NodeProto *n = ob_node(&b, "ConvTranspose", "deconv", "x,w,b", "y");
  ob_attr_ints(&b, n, "strides", 2, st);
  ob_attr_ints(&b, n, "output_shape", 2, os);
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "convtranspose-os.onnx");
  if (!m) GG_T_FAIL("load failed");
  float ref[CO * 16 * 16];
  for (int o = 0; o < CO; o++)
    for (int i = 0; i < OH * OW; i++)
      ref[o * OH * OW + i] = bias[o];
  for (int o = 0; o < CO; o++)
    for (int ci = 0; ci < CI; ci++)
      for (int iy = 0; iy < H; iy++)
        for (int ix = 0; ix < W; ix++)
          for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
              int oy = iy * SH - top + ky, ox = ix * SW - left + kx;
              if (oy < 0 || ox < 0 || oy >= OH || ox >= OW) continue;
              ref[(o * OH + oy) * OW + ox] +=
                  x[(ci * H + iy) * W + ix] * w[((ci * CO + o) * K + ky) * K + kx];
            }
  char what[64];
  snprintf(what, sizeof what, "output_shape [%d,%d]", OH, OW);
  int bad = match_backends(m, xd, 4, x, ref, CO * OH * OW, 1e-5, what);
  gg_model_free(m);
  if (bad) GG_T_FAIL("ConvTranspose: %s", what);
}

static void test_convtranspose_output_shape(void) {
  convtranspose_os_case(9, 7, 0, 0); /* exactly the scatter's size: no padding */
  if (gg_t_failed_checks) return;
  convtranspose_os_case(8, 6, 1, 1); /* total 1: the odd pixel at the start */
  if (gg_t_failed_checks) return;
  convtranspose_os_case(10, 8, 0, 0); /* total -1: one more row and column, bias only */
  if (gg_t_failed_checks) return;
  convtranspose_os_case(12, 9, 0, 0); /* total -3 and -2 */
}

/* ------------------------------------------------------------ gemm */

static void gemm_case(int c_full) {
  ob_model b;
  ob_init(&b, 13);
  float A[6] = {1, 2, 3, -1, 0.5f, 2}, B[12], C[8];
  uint32_t seed = 3;
  for (int i = 0; i < 12; i++)
    B[i] = frand(&seed);
  for (int i = 0; i < 8; i++)
    C[i] = frand(&seed);
  int64_t ad[2] = {2, 3}, bd[2] = {4, 3}, cd[2] = {2, 4}, cv[1] = {4};
  ob_input(&b, "a", 2, ad);
  ob_init_f(&b, "B", 2, bd, B, 12);
  if (c_full)
    ob_init_f(&b, "C", 2, cd, C, 8);
  else
    ob_init_f(&b, "C", 1, cv, C, 4);
  Onnx__NodeProto *n = ob_node(&b, "Gemm", "gemm", "a,B,C", "y");
  ob_attr_i(&b, n, "transB", 1);
  ob_attr_f(&b, n, "alpha", 0.5f);
  ob_attr_f(&b, n, "beta", 2.0f);
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "gemm.onnx");
  if (!m) GG_T_FAIL("load failed");
  char err[512] = "";
  int rc = 0;
  float got[8];
  rc = run1(m, ad, 2, A, got, 8, GG_ENGINE_AUTO, err, sizeof err);
  gg_model_free(m);
  if (rc) GG_T_FAIL("run: %s", err);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++) {
      double acc = 0;
      for (int k = 0; k < 3; k++)
        acc += A[i * 3 + k] * B[j * 3 + k];
      acc = 0.5 * acc + 2.0 * (c_full ? C[i * 4 + j] : C[j]);
      ASSERT_NEAR(got[i * 4 + j], acc, 1e-5);
    }
}

static void test_gemm(void) {
  gemm_case(0);
  gemm_case(1);
}

/* ------------------------------------------------------------ reshape / flatten */

static void test_reshape_flatten(void) {
  ob_model b;
  ob_init(&b, 14);
  int64_t xd[4] = {2, 3, 2, 2}, sd[1] = {3}, sv[3] = {0, 3, -1};
  ob_input(&b, "x", 4, xd);
  ob_init_i64(&b, "s", 1, sd, sv, 3);
  ob_node(&b, "Reshape", "r", "x,s", "r0"); /* [2,3,4]: the 0 copies dim 0 */
  Onnx__NodeProto *n = ob_node(&b, "Flatten", "f", "r0", "y");
  ob_attr_i(&b, n, "axis", 1);
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "reshape.onnx");
  if (!m) GG_T_FAIL("load failed");
  char err[512] = "";
  int rc = 0;
  gg_session *s = NULL;
  rc = gg_session_new(m, xd, 4, NULL, &s, err, sizeof err);
  if (rc) {
    gg_model_free(m);
    GG_T_FAIL("session: %s", err);
  }
  float *in = gg_session_input(s, 0, NULL);
  for (int i = 0; i < 24; i++)
    in[i] = (float)i;
  rc = gg_session_run(s, err, sizeof err);
  gg_tensor_info ti;
  const float *y = gg_session_output(s, 0, &ti);
  int ok =
      !rc && ti.ndim == 2 && ti.shape[0] == 2 && ti.shape[1] == 12 && ti.dtype == GG_TENSOR_F32;
  for (int i = 0; ok && i < 24; i++)
    ok = y[i] == (float)i;
  gg_session_free(s);
  gg_model_free(m);
  if (rc) GG_T_FAIL("run: %s", err);
  ASSERT_TRUE(ok);
}

/* ------------------------------------------------------------ softmax axis */

static void softmax_case(int opset, int axis, int rank3) {
  ob_model b;
  ob_init(&b, opset);
  int64_t xd[3] = {2, 3, 4};
  ob_input(&b, "x", rank3 ? 3 : 2, xd);
  Onnx__NodeProto *n = ob_node(&b, "Softmax", "sm", "x", "y");
  ob_attr_i(&b, n, "axis", axis);
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "softmax.onnx");
  if (!m) GG_T_FAIL("opset %d axis %d: load failed", opset, axis);
  char err[512] = "";
  int rc = 0;
  float x[24], got[24], ref[24];
  uint32_t seed = 11;
  for (int i = 0; i < 24; i++)
    x[i] = 3 * frand(&seed);
  int ne = rank3 ? 24 : 6;
  rc = run1(m, xd, rank3 ? 3 : 2, x, got, ne, GG_ENGINE_AUTO, err, sizeof err);
  gg_model_free(m);
  if (rc) GG_T_FAIL("opset %d axis %d: run: %s", opset, axis, err);
  /* reference: groups of elements that share the softmax */
  int D0 = 2, D1 = 3, D2 = rank3 ? 4 : 1;
  for (int i = 0; i < ne; i++) {
    int a0 = i / (D1 * D2), a1 = i / D2 % D1, a2 = i % D2;
    double mx = -1e30, sum = 0;
    for (int j = 0; j < ne; j++) {
      int b0 = j / (D1 * D2), b1 = j / D2 % D1, b2 = j % D2;
      int same = opset >= 13 ? (axis == 1 ? b0 == a0 && b2 == a2 : b0 == a0 && b1 == a1)
                             : (axis == 1 ? b0 == a0 : b0 == a0 && b1 == a1);
      if (same && x[j] > mx) mx = x[j];
    }
    for (int j = 0; j < ne; j++) {
      int b0 = j / (D1 * D2), b1 = j / D2 % D1, b2 = j % D2;
      int same = opset >= 13 ? (axis == 1 ? b0 == a0 && b2 == a2 : b0 == a0 && b1 == a1)
                             : (axis == 1 ? b0 == a0 : b0 == a0 && b1 == a1);
      if (same) sum += exp(x[j] - mx);
    }
    ref[i] = (float)(exp(x[i] - mx) / sum);
    (void)D0;
  }
  for (int i = 0; i < ne; i++)
    ASSERT_NEAR(got[i], ref[i], 1e-5);
}

static void test_softmax_axis(void) {
  softmax_case(13, 1, 1); /* middle axis: transposes around the last-axis op */
  softmax_case(13, -1, 1);
  softmax_case(11, 1, 1); /* coerced 2-D: one softmax over dims 1.. */
  softmax_case(11, 1, 0);
}

/* ------------------------------------------------------------ two inputs, int input */

static void test_two_inputs(void) {
  ob_model b;
  ob_init(&b, 13);
  int64_t d[2] = {2, -1}, cd[1] = {1};
  float three = 3;
  ob_input(&b, "a", 2, d);
  ob_input(&b, "b", 2, d);
  ob_input_t(&b, "i", I64, 2, d);
  ob_input_t(&b, "j", I64, 2, d);
  ob_init_f(&b, "k", 1, cd, &three, 1);
  ob_node(&b, "Add", "add", "a,b", "s");
  ob_node(&b, "Mul", "mul", "s,k", "y");
  ob_node(&b, "Add", "iadd", "i,j", "z");
  ob_output(&b, "y");
  ob_output(&b, "z");
  gg_model *m = load_free(&b, "two.onnx");
  if (!m) GG_T_FAIL("load failed");
  char err[512] = "";
  int rc = 0;
  ASSERT_EQ(gg_model_n_inputs(m), 4);
  gg_tensor_info ti;
  ASSERT_EQ(gg_model_input(m, 2, &ti), 0);
  ASSERT_EQ(ti.dtype, GG_TENSOR_I32);
  ASSERT_EQ(ti.shape[1], -1);
  int64_t sh[2] = {2, 3};
  const int64_t *shapes[4] = {sh, sh, sh, sh};
  int nd[4] = {2, 2, 2, 2};
  gg_session *s = NULL;
  rc = gg_session_new_shapes(m, 4, shapes, nd, NULL, NULL, &s, err, sizeof err);
  if (rc) {
    gg_model_free(m);
    GG_T_FAIL("session: %s", err);
  }
  float *a = gg_session_input(s, 0, NULL), *bb = gg_session_input(s, 1, NULL);
  int32_t *ii = gg_session_input_data(s, 2, &ti), *jj = gg_session_input_data(s, 3, NULL);
  int fails = ti.dtype != GG_TENSOR_I32 || gg_session_input(s, 2, NULL) != NULL;
  for (int k = 0; k < 6; k++)
    a[k] = (float)k, bb[k] = 0.5f, ii[k] = k, jj[k] = 100 * k;
  rc = gg_session_run(s, err, sizeof err);
  const float *y = gg_session_output(s, 0, NULL);
  const int32_t *z = gg_session_output_data(s, 1, &ti);
  fails |= ti.dtype != GG_TENSOR_I32 || ti.shape[1] != 3 || gg_session_output(s, 1, NULL) != NULL;
  for (int k = 0; !rc && k < 6; k++)
    fails |= y[k] != 3.0f * ((float)k + 0.5f) || z[k] != 101 * k;
  gg_session_free(s);
  /* a wrong rank for input 1 is refused, naming it */
  int64_t bad[3] = {2, 3, 1};
  const int64_t *shapes2[2] = {sh, bad};
  int nd2[2] = {2, 3};
  int rc2 = gg_session_new_shapes(m, 2, shapes2, nd2, NULL, NULL, &s, err, sizeof err);
  gg_model_free(m);
  if (rc) GG_T_FAIL("run: %s", err);
  ASSERT_FALSE(fails);
  ASSERT_EQ(rc2, GG_EINVAL);
  ASSERT_TRUE(strstr(err, "'b'") != NULL);
}

/* ------------------------------------------------------------ shape subgraph */

/* y = Reshape(x, Concat(Gather(Shape(x), 0), [-1])): [N, 2, 3] -> [N, 6],
 * with N free: the shape is only known at session time. */
static void test_shape_subgraph_folded(void) {
  ob_model b;
  ob_init(&b, 13);
  int64_t xd[3] = {-1, 2, 3}, one[1] = {1}, idx[1] = {0}, m1[1] = {-1};
  ob_input(&b, "x", 3, xd);
  ob_init_i64(&b, "idx", 1, one, idx, 1);
  ob_init_i64(&b, "minus1", 1, one, m1, 1);
  ob_node(&b, "Shape", "shape", "x", "sh");
  ob_node(&b, "Gather", "gather", "sh,idx", "n");
  Onnx__NodeProto *c = ob_node(&b, "Concat", "concat", "n,minus1", "target");
  ob_attr_i(&b, c, "axis", 0);
  ob_node(&b, "Reshape", "reshape", "x,target", "r");
  ob_node(&b, "Relu", "relu", "r", "y");
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "shape.onnx");
  if (!m) GG_T_FAIL("load failed");
  char err[512] = "";
  int rc = 0;
  int n_ops = gg_model_n_ops(m);
  uint64_t model_weights = gg_model_weights_bytes(m);
  int64_t sh[3] = {4, 2, 3};
  gg_session *s = NULL;
  gg_session_opts o = {1, GG_ENGINE_AUTO, 0};
  rc = gg_session_new(m, sh, 3, &o, &s, err, sizeof err);
  if (rc) {
    gg_model_free(m);
    GG_T_FAIL("session: %s", err);
  }
  gg_engine_mem mem;
  gg_session_memory(s, &mem);
  float *in = gg_session_input(s, 0, NULL);
  for (int i = 0; i < 24; i++)
    in[i] = (float)(i % 5) - 2;
  rc = gg_session_run(s, err, sizeof err);
  gg_tensor_info ti;
  const float *y = gg_session_output(s, 0, &ti);
  int ok = !rc && ti.ndim == 2 && ti.shape[0] == 4 && ti.shape[1] == 6;
  for (int i = 0; ok && i < 24; i++)
    ok = y[i] == fmaxf(0.0f, (float)(i % 5) - 2);
  gg_session_free(s);
  gg_model_free(m);
  if (rc) GG_T_FAIL("run: %s", err);
  ASSERT_TRUE(ok);
  /* Shape, Gather and Concat ran at session creation: Reshape and Relu remain */
  ASSERT_EQ(n_ops, 5);
  ASSERT_EQ(mem.n_ops, 2);
  ASSERT_U64_EQ(mem.predicted, mem.measured);
  ASSERT_TRUE(mem.weights > model_weights); /* the folded values are the session's */
}

/* Size: x's element count as an int32 scalar, computed when the session
 * knows x's shape (x [-1,3,4] fed [2,3,4] and [5,3,4]): y = x * Size(x). */
static void test_size_folded(void) {
  ob_model b;
  ob_init(&b, 13);
  int64_t xd[3] = {-1, 3, 4};
  ob_input(&b, "x", 3, xd);
  ob_node(&b, "Size", "size", "x", "n");
  Onnx__NodeProto *c = ob_node(&b, "Cast", "cast", "n", "nf");
  ob_attr_i(&b, c, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
  ob_node(&b, "Mul", "mul", "x,nf", "y");
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "size.onnx");
  if (!m) GG_T_FAIL("load failed");
  char err[512] = "";
  int rc = 0;
  for (int64_t n0 = 2; n0 <= 5; n0 += 3) {
    int64_t sh[3] = {n0, 3, 4};
    gg_session *s = NULL;
    gg_session_opts o = {1, GG_ENGINE_AUTO, 0};
    rc = gg_session_new(m, sh, 3, &o, &s, err, sizeof err);
    if (rc) GG_T_FAIL("session: %s", err);
    if (rc) break;
    gg_engine_mem mem;
    gg_session_memory(s, &mem);
    float *in = gg_session_input(s, 0, NULL);
    for (int i = 0; i < n0 * 12; i++)
      in[i] = (float)(i % 7) - 3;
    rc = gg_session_run(s, err, sizeof err);
    if (rc) GG_T_FAIL("run: %s", err);
    const float *y = gg_session_output(s, 0, NULL);
    for (int i = 0; !rc && i < n0 * 12; i++)
      ASSERT_NEAR(y[i], ((float)(i % 7) - 3) * (float)(n0 * 12), 1e-4);
    ASSERT_EQ(mem.n_ops, 1); /* Size and Cast folded at session time: Mul remains */
    ASSERT_U64_EQ(mem.predicted, mem.measured);
    gg_session_free(s);
  }
  gg_model_free(m);
}

/* ------------------------------------------------------------ layout pass */

/* conv -> relu -> conv -> add(residual from the first relu) -> relu ->
 * global average pool: in NCHW the importer wraps each conv in two
 * transposes; the layout pass must leave only the model-input one. */
static void test_layout_pass(void) {
  ob_model b;
  ob_init(&b, 13);
  int64_t xd[4] = {1, 4, 5, 5}, wd[4] = {4, 4, 3, 3};
  float w1[144], w2[144], x[100];
  uint32_t seed = 5;
  for (int i = 0; i < 144; i++)
    w1[i] = 0.3f * frand(&seed), w2[i] = 0.3f * frand(&seed);
  for (int i = 0; i < 100; i++)
    x[i] = frand(&seed);
  ob_input(&b, "x", 4, xd);
  ob_init_f(&b, "w1", 4, wd, w1, 144);
  ob_init_f(&b, "w2", 4, wd, w2, 144);
  int64_t ks[2] = {3, 3}, pads[4] = {1, 1, 1, 1};
  Onnx__NodeProto *n = ob_node(&b, "Conv", "c1", "x,w1", "a");
  ob_attr_ints(&b, n, "kernel_shape", 2, ks);
  ob_attr_ints(&b, n, "pads", 4, pads);
  ob_node(&b, "Relu", "r1", "a", "ar");
  n = ob_node(&b, "Conv", "c2", "ar,w2", "c");
  ob_attr_ints(&b, n, "kernel_shape", 2, ks);
  ob_attr_ints(&b, n, "pads", 4, pads);
  ob_node(&b, "Add", "add", "c,ar", "s");
  ob_node(&b, "Relu", "r2", "s", "sr");
  ob_node(&b, "GlobalAveragePool", "gap", "sr", "y");
  ob_output(&b, "y");
  gg_model *m = NULL, *m0 = NULL;
  char err[512] = "";
  gg__fuse_disabled = 0;
  int rc = load(&b, "layout.onnx", &m, err, sizeof err);
  if (rc) {
    ob_free(&b);
    GG_T_FAIL("load: %s", err);
  }
  /* the same model without the pass and fusion: the oracle */
  const char *p0 = tmp_path("layout0.onnx");
  rc = ob_write(&b, p0, 0) ? GG_EIO : load_unoptimized(p0, &m0, err, sizeof err);
  ob_free(&b);
  if (rc) {
    gg_model_free(m);
    GG_T_FAIL("load: %s", err);
  }
  int left = count_transposes(m), before = count_transposes(m0);
  float y[4], y0[4];
  int64_t shp[4] = {1, 4, 5, 5};
  rc = run1(m, shp, 4, x, y, 4, GG_ENGINE_AUTO, err, sizeof err);
  int rc0 = rc ? 0 : run1(m0, shp, 4, x, y0, 4, GG_ENGINE_NAIVE, err, sizeof err);
  gg_model_free(m);
  gg_model_free(m0);
  if (rc || rc0) GG_T_FAIL("run: %s", err);
  for (int i = 0; i < 4; i++)
    ASSERT_NEAR(y[i], y0[i], 1e-5);
  fprintf(stderr, "  layout: %d transposes before the pass, %d after\n", before, left);
  ASSERT_EQ(before, 4);
  ASSERT_LE(left, 2); /* the model input's, and the pooled [1,1,1,C] output's */
}

/* conv -> relu -> BatchNormalization (not after a conv: Mul and Add by
 * [C,1,1] constants) -> Sigmoid -> Concat with the relu on channels ->
 * ReduceMean over H, W: the layout pass permutes the constants and remaps
 * the concat and reduce axes; results must not change. */
static void test_layout_constants(void) {
  ob_model b;
  ob_init(&b, 13);
  enum { C = 3 };
  int64_t xd[4] = {1, C, 4, 5}, wd[4] = {C, C, 1, 1}, cd[1] = {C}, ax[2] = {2, 3};
  float w[C * C], bn[4 * C], x[C * 20];
  uint32_t seed = 9;
  for (int i = 0; i < C * C; i++)
    w[i] = frand(&seed);
  for (int i = 0; i < C; i++) {
    bn[i] = 1 + frand(&seed), bn[C + i] = frand(&seed), bn[2 * C + i] = frand(&seed);
    bn[3 * C + i] = 1.5f + frand(&seed);
  }
  for (int i = 0; i < C * 20; i++)
    x[i] = frand(&seed);
  ob_input(&b, "x", 4, xd);
  ob_init_f(&b, "w", 4, wd, w, C * C);
  ob_init_f(&b, "g", 1, cd, bn, C);
  ob_init_f(&b, "be", 1, cd, bn + C, C);
  ob_init_f(&b, "mu", 1, cd, bn + 2 * C, C);
  ob_init_f(&b, "var", 1, cd, bn + 3 * C, C);
  ob_node(&b, "Conv", "conv", "x,w", "c");
  ob_node(&b, "Relu", "relu", "c", "r");
  ob_node(&b, "BatchNormalization", "bn", "r,g,be,mu,var", "n");
  ob_node(&b, "Sigmoid", "sig", "n", "s");
  Onnx__NodeProto *n = ob_node(&b, "Concat", "cat", "s,r", "k");
  ob_attr_i(&b, n, "axis", 1);
  n = ob_node(&b, "ReduceMean", "mean", "k", "y");
  ob_attr_ints(&b, n, "axes", 2, ax);
  ob_output(&b, "y");
  gg_model *m = NULL, *m0 = NULL;
  char err[512] = "";
  const char *p = tmp_path("layout_consts.onnx");
  if (getenv("GG_TEST_KEEP")) fprintf(stderr, "  model: %s\n", p);
  int rc = ob_write(&b, p, 0);
  ob_free(&b);
  if (!rc) rc = gg_model_load(p, &m, err, sizeof err);
  if (rc) GG_T_FAIL("load: %s", err);
  rc = load_unoptimized(p, &m0, err, sizeof err);
  if (rc) {
    gg_model_free(m);
    GG_T_FAIL("load: %s", err);
  }
  int left = count_transposes(m), before = count_transposes(m0);
  float y[2 * C], y0[2 * C];
  rc = run1(m, xd, 4, x, y, 2 * C, GG_ENGINE_AUTO, err, sizeof err);
  int rc0 = rc ? 0 : run1(m0, xd, 4, x, y0, 2 * C, GG_ENGINE_NAIVE, err, sizeof err);
  gg_model_free(m);
  gg_model_free(m0);
  if (rc || rc0) GG_T_FAIL("run: %s", err);
  for (int i = 0; i < 2 * C; i++)
    ASSERT_NEAR(y[i], y0[i], 1e-5);
  fprintf(stderr, "  layout with constants: %d transposes before the pass, %d after\n", before,
          left);
  ASSERT_EQ(before, 2);
  ASSERT_LE(left, 2); /* the input's, and the reduced [1,1,1,2C] output's */
}

/* Einsum by definition: every assignment of the labels, out[o] += a[i] *
 * b[j] (b NULL: one operand, out[o] += a[i]). dims: each label's size
 * (LAB: 'a'..'z', 'A'..'Z'). A label repeated in ea walks a diagonal by
 * construction. */
#define LAB(ch) ((ch) >= 'a' ? (ch) - 'a' : (ch) - 'A' + 26) /* a..z, A..Z -> 0..51 */
static void ref_einsum(const char *ea, const char *eb, const char *eo, const int64_t *dims,
                       const float *x, const float *y, double *out, int64_t nout) {
  char labels[53] = "";
  int nl = 0;
  for (const char *s = ea; *s; s++)
    if (!strchr(labels, *s)) labels[nl++] = *s, labels[nl] = 0;
  for (const char *s = eb ? eb : ""; *s; s++)
    if (!strchr(labels, *s)) labels[nl++] = *s, labels[nl] = 0;
  for (int64_t i = 0; i < nout; i++)
    out[i] = 0;
  int64_t idx[52] = {0};
  for (;;) {
    int64_t ia = 0, ib = 0, io = 0;
    for (const char *s = ea; *s; s++)
      ia = ia * dims[LAB(*s)] + idx[LAB(*s)];
    for (const char *s = eb ? eb : ""; *s; s++)
      ib = ib * dims[LAB(*s)] + idx[LAB(*s)];
    for (const char *s = eo; *s; s++)
      io = io * dims[LAB(*s)] + idx[LAB(*s)];
    out[io] += (double)x[ia] * (y ? y[ib] : 1.0);
    int l = nl - 1;
    for (; l >= 0; l--) {
      int c = LAB(labels[l]);
      if (++idx[c] < dims[c]) break;
      idx[c] = 0;
    }
    if (l < 0) break;
  }
}

/* Einsum's two-input forms the importer rewrites to BatchMatMul (with
 * transposes where the labels are not in [batch..., m, k] x [batch..., k, n]
 * order), and the other forms (GG_OP_EINSUM's kernel: eb NULL for one
 * operand; eq may use an ellipsis or an implicit output where ea/eb/eo
 * spell the labels out), each on every engine backend against ref_einsum.
 * general: whether the model must hold a GG_OP_EINSUM node (else it must
 * not: the attention forms keep their BatchMatMul). */
static void einsum_case(const char *eq, const char *ea, const char *eb, const char *eo,
                        int general) {
  /* label sizes: distinct so that a swapped axis cannot pass */
  int64_t dims[52];
  for (int c = 0; c < 52; c++)
    dims[c] = 2 + c % 4;
  int64_t ad[8], bd[8], na = 1, nb = 1, no = 1;
  int ra = (int)strlen(ea), rb, ro = (int)strlen(eo);
  for (int i = 0; i < ra; i++)
    ad[i] = dims[LAB(ea[i])], na *= ad[i];
  rb = eb ? (int)strlen(eb) : 0;
  for (int i = 0; i < rb; i++)
    bd[i] = dims[LAB(eb[i])], nb *= bd[i];
  for (int i = 0; i < ro; i++)
    no *= dims[LAB(eo[i])];
  ob_model b;
  ob_init(&b, 13);
  ob_input(&b, "q", ra, ad);
  if (eb) ob_input(&b, "k", rb, bd);
  Onnx__NodeProto *n = ob_node(&b, "Einsum", "attn", eb ? "q,k" : "q", "y");
  ob_attr_s(&b, n, "equation", eq);
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "einsum.onnx");
  if (!m) GG_T_FAIL("%s: load failed", eq);
  if (!m) return;
  const gg_graph *g = gg__model_graph(m);
  int n_einsum = 0;
  for (int i = 0; i < g->n_order; i++)
    n_einsum += g->nodes[g->order[i]].op == GG_OP_EINSUM;
  if (n_einsum != general) GG_T_FAIL("%s: %d GG_OP_EINSUM nodes, want %d", eq, n_einsum, general);
  char err[512] = "";
  int rc = 0;
  float *x = malloc((size_t)na * 4), *y = malloc((size_t)nb * 4);
  double *want = malloc((size_t)no * sizeof *want);
  if (!x || !y || !want) abort();
  uint32_t seed = 13;
  for (int64_t i = 0; i < na; i++)
    x[i] = frand(&seed);
  for (int64_t i = 0; i < nb; i++)
    y[i] = frand(&seed);
  ref_einsum(ea, eb, eo, dims, x, eb ? y : NULL, want, no);
  const int64_t *shapes[2] = {ad, bd};
  int nd[2] = {ra, rb};
  int nin = eb ? 2 : 1;
  /* backends: AUTO (XNNPACK), NAIVE, and the sim device (be 2) */
  gg_device *dev = NULL;
  gg_pool *pool = NULL;
  if (gg_device_open("sim:mem=64M", &dev) || gg_pool_new(dev, NULL, &pool))
    GG_T_FAIL("cannot open the sim device");
  for (int be = GG_ENGINE_AUTO; be <= GG_ENGINE_NAIVE + 1 && !rc; be++) {
    gg_session *s = NULL;
    gg_session_opts o = {1, be == 2 ? GG_ENGINE_AUTO : (gg_engine_backend)be, 0};
    rc = gg_session_new_shapes(m, nin, shapes, nd, &o, be == 2 ? pool : NULL, &s, err,
                               sizeof err);
    if (!rc) {
      memcpy(gg_session_input(s, 0, NULL), x, (size_t)na * 4);
      if (eb) memcpy(gg_session_input(s, 1, NULL), y, (size_t)nb * 4);
      rc = gg_session_run(s, err, sizeof err);
    }
    if (!rc && be == 2 && gg_session_ops_by_backend(s, "sim") < 1)
      snprintf(err, sizeof err, "no op ran on sim"), rc = GG_EPARSE;
    gg_tensor_info ti;
    const float *got = rc ? NULL : gg_session_output(s, 0, &ti);
    if (got && ti.ndim != ro) snprintf(err, sizeof err, "%d-D output", ti.ndim), rc = GG_EPARSE;
    for (int i = 0; got && !rc && i < ro; i++)
      if (ti.shape[i] != dims[LAB(eo[i])])
        snprintf(err, sizeof err, "output dim %d is %lld", i, (long long)ti.shape[i]),
            rc = GG_EPARSE;
    for (int64_t i = 0; got && !rc && i < no; i++)
      if (!gg_t_near(got[i], want[i], 1e-5 * (1 + fabs(want[i]))))
        snprintf(err, sizeof err, "y[%lld] = %.6g, expected %.6g", (long long)i, got[i], want[i]),
            rc = GG_EPARSE;
    gg_session_free(s);
    if (rc) fprintf(stderr, "  %s backend %d: %s\n", eq, be, err);
  }
  gg_pool_free(pool);
  gg_device_free(dev);
  free(x), free(y), free(want);
  gg_model_free(m);
  ASSERT_OK(rc);
}

static void einsum_bcast_case(int one) {
  int64_t ad[4] = {2, 3, 4, 5}, bd[3] = {one ? 1 : 3, 5, 6}, dims[52] = {0};
  dims[LAB('y')] = 2, dims[LAB('z')] = 3, dims[LAB('i')] = 4, dims[LAB('j')] = 5,
  dims[LAB('k')] = 6;
  ob_model b;
  ob_init(&b, 13);
  ob_input(&b, "q", 4, ad);
  ob_input(&b, "k", 3, bd);
  Onnx__NodeProto *n = ob_node(&b, "Einsum", "bc", "q,k", "y");
  ob_attr_s(&b, n, "equation", "...ij,...jk->...ik");
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "einsum-bcast.onnx");
  if (!m) GG_T_FAIL("load failed");
  if (!m) return;
  float x[120], y[90], got[144];
  double want[144];
  uint32_t seed = 5;
  for (int i = 0; i < 120; i++)
    x[i] = frand(&seed);
  for (int i = 0; i < 90; i++)
    y[i] = frand(&seed);
  ref_einsum("yzij", one ? "jk" : "zjk", "yzik", dims, x, y, want, 144);
  const int64_t *shapes[2] = {ad, bd};
  int nd[2] = {4, 3};
  gg_session *s = NULL;
  gg_session_opts o = {1, GG_ENGINE_NAIVE, 0};
  char err[512] = "";
  ASSERT_OK(gg_session_new_shapes(m, 2, shapes, nd, &o, NULL, &s, err, sizeof err));
  memcpy(gg_session_input(s, 0, NULL), x, sizeof x);
  memcpy(gg_session_input(s, 1, NULL), y, (size_t)(one ? 30 : 90) * 4);
  ASSERT_OK(gg_session_run(s, err, sizeof err));
  gg_tensor_info ti;
  memcpy(got, gg_session_output(s, 0, &ti), sizeof got);
  ASSERT_EQ(ti.ndim, 4);
  ASSERT_EQ(ti.shape[1], 3);
  ASSERT_EQ(ti.shape[3], 6);
  for (int i = 0; i < 144; i++)
    ASSERT_NEAR(got[i], want[i], 1e-5 * (1 + fabs(want[i])));
  gg_session_free(s);
  gg_model_free(m);
}

static void test_einsum(void) {
  static const struct {
    const char *eq, *a, *b, *o;
  } k_forms[] = {
      {"ij,jk->ik", "ij", "jk", "ik"},                /* matmul */
      {"bij,bjk->bik", "bij", "bjk", "bik"},          /* batch matmul (ONNX's test) */
      {"bhid,bhjd->bhij", "bhid", "bhjd", "bhij"},    /* attention scores, Q K^T */
      {"bhid,bhjd->bhji", "bhid", "bhjd", "bhji"},    /* and the output transposed */
      {"bhij, bhjd -> bhid", "bhij", "bhjd", "bhid"}, /* attention x V, with spaces */
      {"ibd,jbd->bij", "ibd", "jbd", "bij"},          /* batch label not leading */
      {"bkm,bkn->bmn", "bkm", "bkn", "bmn"},          /* A transposed */
  };
  for (size_t i = 0; i < sizeof k_forms / sizeof k_forms[0] && !gg_t_failed_checks; i++)
    einsum_case(k_forms[i].eq, k_forms[i].a, k_forms[i].b, k_forms[i].o, 0);
  /* Every other form: the general kernel (ONNX's own tests: transpose, sum,
   * inner product, batch diagonal). b NULL: one operand. */
  static const struct {
    const char *eq, *a, *b, *o;
  } k_general[] = {
      {"ij->ji", "ij", NULL, "ji"},                /* transpose */
      {"ij->i", "ij", NULL, "i"},                  /* row sums */
      {"ij->", "ij", NULL, ""},                    /* total */
      {"ij", "ij", NULL, "ij"},                    /* implicit: identity */
      {"ji", "ji", NULL, "ij"},                    /* implicit: sorted, a transpose */
      {"ii->i", "ii", NULL, "i"},                  /* diagonal */
      {"ii", "ii", NULL, ""},                      /* implicit: trace */
      {"...ii->...i", "zii", NULL, "zi"},          /* batch diagonal (ONNX's test) */
      {"i i j -> j i", "iij", NULL, "ji"},         /* diagonal summed, spaces */
      {"i,i", "i", "i", ""},                       /* inner product (ONNX's test) */
      {"i,j->ij", "i", "j", "ij"},                 /* outer product */
      {"ij,ij->ij", "ij", "ij", "ij"},             /* elementwise */
      {"ij,jk", "ij", "jk", "ik"},                 /* implicit matmul */
      {"bij,bjk->bk", "bij", "bjk", "bk"},         /* two summed labels */
      {"...ij,...jk->...ik", "zij", "zjk", "zik"}, /* ellipsis matmul */
      {"ii,ij->j", "ii", "ij", "j"},               /* diagonal times matrix */
      {"Ab,bA", "Ab", "bA", ""},                   /* upper case, all summed */
      {"bA->Ab", "bA", NULL, "Ab"},                /* upper case */
      {"bA", "bA", NULL, "Ab"},                    /* implicit: ASCII order, A first */
  };
  for (size_t i = 0; i < sizeof k_general / sizeof k_general[0] && !gg_t_failed_checks; i++)
    einsum_case(k_general[i].eq, k_general[i].a, k_general[i].b, k_general[i].o, 1);
  /* Ellipses of different lengths align from the right and broadcast a
   * size-1 dim: a [2,3,4,5] "...ij" x b [3|1,5,6] "...jk"; the reference
   * reads b as "zjk" (or "jk" when its ellipsis dim is 1). */
  for (int one = 0; one < 2 && !gg_t_failed_checks; one++)
    einsum_bcast_case(one);
  /* Forms with no meaning: refused at load, naming the node and the
   * equation. */
  static const char *const k_refused[] = {"ij->k", "ij->ii", "i$->i", "...i,...i->i",
                                          "ij,jk,kl->il"};
  for (size_t i = 0; i < sizeof k_refused / sizeof k_refused[0]; i++) {
    ob_model b;
    ob_init(&b, 13);
    int64_t d2[2] = {3, 3};
    ob_input(&b, "q", 2, d2);
    ob_input(&b, "k", 2, d2);
    int two = strchr(k_refused[i], ',') != NULL;
    Onnx__NodeProto *n = ob_node(&b, "Einsum", "e", two ? "q,k" : "q", "y");
    ob_attr_s(&b, n, "equation", k_refused[i]);
    ob_output(&b, "y");
    gg_model *m = NULL;
    char err[512] = "";
    int rc = load(&b, "einsum-refused.onnx", &m, err, sizeof err);
    ob_free(&b);
    gg_model_free(m);
    ASSERT_EQ(rc, GG_EUNSUPPORTED);
    ASSERT_CONTAINS(err, "node 'e' (Einsum)");
    ASSERT_CONTAINS(err, k_refused[i]);
  }
}

/* ------------------------------------------------------------ float16 / bfloat16 / double */

/* x rounded to a float format with `mant` stored mantissa bits, exponent
 * at least emin (subnormals below) and values past `max` (the largest
 * finite, a double) + half an ulp going to inf, round to nearest even:
 * by scaling in double, independently of the engine's bit twiddling. */
static float ref_round(float x, int mant, int emin, double max) {
  if (x != x || isinf(x) || x == 0) return x;
  int e;
  frexp(x, &e);
  e -= 1; /* x = 1.f * 2^e */
  if (e < emin) e = emin;
  double ulp = ldexp(1.0, e - mant);
  double r = nearbyint((double)x / ulp) * ulp; /* exact: x / ulp has at most 24 bits */
  if (fabs(r) > max) return x < 0 ? -INFINITY : INFINITY;
  return (float)r;
}

static float f_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static uint32_t f_bits_u(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

/* Cast to FLOAT16 and BFLOAT16: the float32 the engine holds must be that
 * type's value, round to nearest even (ties both ways, subnormals, the
 * overflow threshold, NaN, -0), on every engine backend, against ref_round;
 * the declared types reach gg_tensor_info.src_type. */
static void test_cast_f16(void) {
  enum { N = 4096 };
  static const float k_fixed[] = {
      1.0f + 0x1p-11f,     /* f16 tie, even below: 1 */
      1.0f + 3 * 0x1p-11f, /* f16 tie, even above: 1 + 2^-9 */
      65504.0f,            /* f16 max */
      65519.99f,           /* just under the overflow threshold: max */
      65520.0f,            /* overflow to inf (a tie to even past max) */
      -65520.0f,           /* and to -inf */
      0x1p-24f,            /* f16 smallest subnormal */
      0x1p-25f,            /* half of it: ties to 0 */
      0x1.8p-24f,          /* 1.5 ulp ties to 2 ulp */
      0x1.8p-25f,          /* 0.75 ulp rounds to 1 */
      0x1.ff8p-15f,        /* largest f16 subnormal */
      0x1.ffcp-15f,        /* ties up into the smallest normal 2^-14 */
      -0.0f,               /* keeps its sign */
      INFINITY,            /* kept */
      -INFINITY,           /* kept */
      NAN,                 /* kept */
      1.0f + 0x1p-8f,      /* bf16 tie, even below */
      1.0f + 3 * 0x1p-8f,  /* bf16 tie, even above */
      3.4028235e38f,       /* FLT_MAX: past bf16 max + half ulp -> inf */
      0,                   /* bit patterns, set below */
      0,                   /* ... */
      0,                   /* ... */
      0,                   /* ... */
  };
  float *x = malloc(N * sizeof *x);
  if (!x) abort();
  size_t nf = sizeof k_fixed / sizeof k_fixed[0];
  memcpy(x, k_fixed, sizeof k_fixed);
  x[nf - 4] = f_bits(0x7f7f7fffu); /* rounds down to bf16 max */
  x[nf - 3] = f_bits(0x7f7f8000u); /* bf16 tie past max, odd: inf */
  x[nf - 2] = f_bits(0x00008000u); /* bf16 subnormal tie, even below: 0 */
  x[nf - 1] = f_bits(0x00018000u); /* bf16 subnormal tie, odd: up */
  uint32_t seed = 7;
  for (int i = (int)nf; i < N; i++) { /* random bits over the whole exponent range */
    seed = seed * 1664525u + 1013904223u;
    uint32_t u = seed;
    if (i % 3 == 0)
      u = (u & 0x8001ffffu) | ((uint32_t)(100 + (seed >> 13) % 50) << 23); /* near f16 */
    if (i % 5 == 0) u = (u & 0x8000ffffu) | 0x8000u * (i % 2) | ((uint32_t)(u >> 20 & 0xff) << 23);
    x[i] = f_bits(u);
  }
  ob_model b;
  ob_init(&b, 13);
  int64_t xd[1] = {N};
  ob_input(&b, "x", 1, xd);
  Onnx__NodeProto *n = ob_node(&b, "Cast", "to_f16", "x", "h");
  ob_attr_i(&b, n, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16);
  n = ob_node(&b, "Cast", "to_bf16", "x", "bf");
  ob_attr_i(&b, n, "to", ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16);
  ob_output(&b, "h");
  b.outs[0]->type->tensor_type->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16;
  ob_output(&b, "bf");
  b.outs[1]->type->tensor_type->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16;
  gg_model *m = load_free(&b, "cast16.onnx");
  if (!m) GG_T_FAIL("load failed");
  if (!m) goto out;
  gg_tensor_info ti;
  ASSERT_OK(gg_model_output(m, 0, &ti));
  ASSERT_EQ(ti.src_type, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16);
  ASSERT_EQ(ti.dtype, GG_TENSOR_F32);
  ASSERT_OK(gg_model_output(m, 1, &ti));
  ASSERT_EQ(ti.src_type, ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16);
  /* XNNPACK, naive, and OpenCL when a platform opens (PoCL in CI): the
   * device rounds to float16 itself (kx-ops.c, B_F16) */
  gg_device *dev = NULL;
  gg_pool *pool = NULL;
  int have_cl = gg_device_open("opencl:0.0", &dev) == 0 && gg_pool_new(dev, NULL, &pool) == 0;
  if (!have_cl) fprintf(stderr, "  note: no OpenCL device; cast_f16 runs on the CPU only\n");
  for (int be = GG_ENGINE_AUTO; be <= GG_ENGINE_NAIVE + have_cl; be++) {
    gg_session *s = NULL;
    gg_session_opts o = {1, be > GG_ENGINE_NAIVE ? GG_ENGINE_AUTO : (gg_engine_backend)be, 0};
    char err[512] = "";
    ASSERT_OK(gg_session_new_on(m, xd, 1, &o, be > GG_ENGINE_NAIVE ? pool : NULL, &s, err,
                                sizeof err));
    if (be > GG_ENGINE_NAIVE) ASSERT_GE(gg_session_ops_by_backend(s, "opencl"), 1);
    memcpy(gg_session_input(s, 0, NULL), x, N * sizeof *x);
    ASSERT_OK(gg_session_run(s, err, sizeof err));
    for (int k = 0; k < 2; k++) {
      const float *y = gg_session_output(s, k, NULL);
      int bad = 0;
      for (int i = 0; i < N && bad < 3; i++) {
        float want = k ? ref_round(x[i], 7, -126, 0x1.fep127) : ref_round(x[i], 10, -14, 65504.0);
        uint32_t ug, uw;
        memcpy(&ug, &y[i], 4), memcpy(&uw, &want, 4);
        if (ug == uw || (want != want && y[i] != y[i])) continue;
        fprintf(stderr, "  backend %d, to %s: x[%d] = %a (0x%08x) -> %a, want %a\n", be,
                k ? "bfloat16" : "float16", i, (double)x[i], (unsigned)f_bits_u(x[i]), (double)y[i],
                (double)want);
        bad++;
      }
      ASSERT_EQ(bad, 0);
    }
    gg_session_free(s);
  }
  gg_pool_free(pool);
  gg_device_free(dev);
  gg_model_free(m);
out:
  free(x);
}

/* A Cast that changes nothing in the engine's storage (FLOAT to FLOAT, a
 * FLOAT16 value back to FLOAT, INT64 to INT32) is bypassed at session time:
 * it does not run and its readers read its input. A rounding Cast (to
 * FLOAT16) runs, and a Cast whose output the caller asked for stays. Checked
 * by the session's op count and the values, on XNNPACK, naive and sim. */
static void test_cast_bypass(void) {
  enum { N = 9 };
  static const float x[N] = {-2.5f, -0.0f,    0.0f, 1.0f + 0x1p-11f, 3.0f,
                             1e-8f, 70000.0f, NAN,  -1.0f + 0x1p-12f};
  ob_model b;
  ob_init(&b, 13);
  int64_t xd[1] = {N};
  ob_input(&b, "x", 1, xd);
  Onnx__NodeProto *n = ob_node(&b, "Cast", "same", "x", "c1");
  ob_attr_i(&b, n, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
  ob_node(&b, "Abs", "abs", "c1", "r");
  n = ob_node(&b, "Cast", "to_half", "x", "h");
  ob_attr_i(&b, n, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16);
  n = ob_node(&b, "Cast", "back", "h", "f");
  ob_attr_i(&b, n, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
  ob_node(&b, "Neg", "neg", "f", "o2");
  n = ob_node(&b, "Cast", "asked", "x", "g");
  ob_attr_i(&b, n, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
  ob_output(&b, "r");
  ob_output(&b, "o2");
  ob_output(&b, "g");
  gg_model *m = load_free(&b, "cast_bypass.onnx");
  if (!m) GG_T_FAIL("load failed");
  ASSERT_EQ(gg_model_n_ops(m), 6);
  gg_device *dev = NULL;
  gg_pool *pool = NULL;
  if (gg_device_open("sim:mem=64M", &dev) || gg_pool_new(dev, NULL, &pool))
    GG_T_FAIL("cannot open the sim device");
  for (int be = GG_ENGINE_AUTO; be <= GG_ENGINE_NAIVE + 1; be++) {
    gg_session *s = NULL;
    gg_session_opts o = {1, be == 2 ? GG_ENGINE_AUTO : (gg_engine_backend)be, 0};
    char err[512] = "";
    const int64_t *shapes[1] = {xd};
    int nd[1] = {1};
    ASSERT_OK(
        gg_session_new_shapes(m, 1, shapes, nd, &o, be == 2 ? pool : NULL, &s, err, sizeof err));
    gg_engine_mem mem;
    gg_session_memory(s, &mem);
    ASSERT_EQ(mem.n_ops, 4); /* Abs, Cast to FLOAT16, Neg, the asked-for Cast */
    ASSERT_U64_EQ(mem.predicted, mem.measured);
    memcpy(gg_session_input(s, 0, NULL), x, sizeof x);
    ASSERT_OK(gg_session_run(s, err, sizeof err));
    const float *r = gg_session_output(s, 0, NULL), *o2 = gg_session_output(s, 1, NULL),
                *g = gg_session_output(s, 2, NULL);
    int bad = 0;
    for (int i = 0; i < N; i++) {
      float half = ref_round(x[i], 10, -14, 65504.0);
      float want[3] = {fabsf(x[i]), -half, x[i]};
      float got[3] = {r[i], o2[i], g[i]};
      for (int k = 0; k < 3; k++)
        if (memcmp(&got[k], &want[k], 4) && !(got[k] != got[k] && want[k] != want[k])) {
          fprintf(stderr, "  backend %d, output %d, x[%d] = %a: %a, want %a\n", be, k, i,
                  (double)x[i], (double)got[k], (double)want[k]);
          bad++;
        }
    }
    ASSERT_EQ(bad, 0);
    gg_session_free(s);
  }
  gg_pool_free(pool);
  gg_device_free(dev);
  gg_model_free(m);
}

/* Cast to BOOL (x != 0, NaN true) and to the narrow integers (Cast's
 * float -> int32 rule, then wrapped as C converts), held as int32. */
static void test_cast_ints(void) {
  enum { N = 9, K = 5 };
  static const float x[N] = {0.0f, -0.0f, NAN, 0.5f, -0.5f, 300.7f, -129.2f, 65537.9f, 1e10f};
  static const struct {
    int to;
    int32_t want[N];
  } k_to[K] = {
      {ONNX__TENSOR_PROTO__DATA_TYPE__BOOL, {0, 0, 1, 1, 1, 1, 1, 1, 1}},
      {ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, {0, 0, 0, 0, 0, 44, 127, 1, 255}},
      {ONNX__TENSOR_PROTO__DATA_TYPE__INT8, {0, 0, 0, 0, 0, 44, 127, 1, -1}},
      {ONNX__TENSOR_PROTO__DATA_TYPE__UINT16, {0, 0, 0, 0, 0, 300, 65407, 1, 65535}},
      {ONNX__TENSOR_PROTO__DATA_TYPE__INT16, {0, 0, 0, 0, 0, 300, -129, 1, -1}},
  };
  ob_model b;
  ob_init(&b, 13);
  int64_t xd[1] = {N};
  ob_input(&b, "x", 1, xd);
  for (int k = 0; k < K; k++) {
    char nm[16], out[16];
    snprintf(nm, sizeof nm, "c%d", k), snprintf(out, sizeof out, "y%d", k);
    Onnx__NodeProto *n = ob_node(&b, "Cast", nm, "x", out);
    ob_attr_i(&b, n, "to", k_to[k].to);
    ob_output(&b, out);
    b.outs[k]->type->tensor_type->elem_type = k_to[k].to;
  }
  gg_model *m = load_free(&b, "cast-ints.onnx");
  if (!m) GG_T_FAIL("load failed");
  if (!m) return;
  for (int be = GG_ENGINE_AUTO; be <= GG_ENGINE_NAIVE; be++) {
    gg_session *s = NULL;
    gg_session_opts o = {1, (gg_engine_backend)be, 0};
    char err[512] = "";
    ASSERT_OK(gg_session_new(m, xd, 1, &o, &s, err, sizeof err));
    memcpy(gg_session_input(s, 0, NULL), x, sizeof x);
    ASSERT_OK(gg_session_run(s, err, sizeof err));
    for (int k = 0; k < K; k++) {
      gg_tensor_info ti;
      const int32_t *y = gg_session_output_data(s, k, &ti);
      ASSERT_EQ(ti.dtype, GG_TENSOR_I32);
      ASSERT_EQ(ti.src_type, k_to[k].to);
      for (int i = 0; i < N; i++)
        if (y[i] != k_to[k].want[i])
          GG_T_FAIL("backend %d, to %d: x[%d] = %g -> %d, want %d", be, k_to[k].to, i, (double)x[i],
                    y[i], k_to[k].want[i]);
    }
    gg_session_free(s);
  }
  gg_model_free(m);
}

/* A model with DOUBLE, FLOAT16 and UINT32 inputs, initializers (typed
 * fields and raw_data) and outputs: held as float32 / int32, the declared
 * types in gg_tensor_info.src_type. */
static void test_wide_types(void) {
  ob_model b;
  ob_init(&b, 13);
  int64_t d3[1] = {3};
  ob_input_t(&b, "xd", ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE, 1, d3);
  ob_input_t(&b, "xh", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16, 1, d3);
  ob_input_t(&b, "xu", ONNX__TENSOR_PROTO__DATA_TYPE__UINT32, 1, d3);
  Onnx__TensorProto *wd = ob_tensor(&b, "wd", ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE, 1, d3);
  wd->n_double_data = 3;
  wd->double_data = ob_alloc(&b, 3 * sizeof(double));
  wd->double_data[0] = 0.5, wd->double_data[1] = 1e300, wd->double_data[2] = -2.25;
  b.inits[b.g.n_initializer++] = wd;
  Onnx__TensorProto *wh = ob_tensor(&b, "wh", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16, 1, d3);
  static const uint8_t hraw[6] = {0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00}; /* 1, -2, 2^-24 */
  wh->has_raw_data = 1, wh->raw_data.len = 6, wh->raw_data.data = ob_alloc(&b, 6);
  memcpy(wh->raw_data.data, hraw, 6);
  b.inits[b.g.n_initializer++] = wh;
  Onnx__TensorProto *wu = ob_tensor(&b, "wu", ONNX__TENSOR_PROTO__DATA_TYPE__UINT64, 1, d3);
  wu->n_uint64_data = 3;
  wu->uint64_data = ob_alloc(&b, 3 * sizeof(uint64_t));
  wu->uint64_data[0] = 7, wu->uint64_data[1] = 2147483647u, wu->uint64_data[2] = 0;
  b.inits[b.g.n_initializer++] = wu;
  Onnx__NodeProto *n = ob_node(&b, "Add", "addd", "xd", "yd");
  n->n_input = 2, n->input = ob_alloc(&b, 2 * sizeof *n->input);
  n->input[0] = ob_str(&b, "xd"), n->input[1] = ob_str(&b, "wd");
  n = ob_node(&b, "Mul", "mulh", "xh", "yh");
  n->n_input = 2, n->input = ob_alloc(&b, 2 * sizeof *n->input);
  n->input[0] = ob_str(&b, "xh"), n->input[1] = ob_str(&b, "wh");
  n = ob_node(&b, "Max", "maxu", "xu", "yu");
  n->n_input = 2, n->input = ob_alloc(&b, 2 * sizeof *n->input);
  n->input[0] = ob_str(&b, "xu"), n->input[1] = ob_str(&b, "wu");
  ob_output(&b, "yd");
  b.outs[0]->type->tensor_type->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
  ob_output(&b, "yh");
  b.outs[1]->type->tensor_type->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16;
  ob_output(&b, "yu");
  b.outs[2]->type->tensor_type->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__UINT32;
  gg_model *m = load_free(&b, "wide.onnx");
  if (!m) GG_T_FAIL("load failed");
  if (!m) return;
  static const int k_in[3] = {ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE,
                              ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16,
                              ONNX__TENSOR_PROTO__DATA_TYPE__UINT32};
  gg_tensor_info ti;
  for (int i = 0; i < 3; i++) {
    ASSERT_OK(gg_model_input(m, i, &ti));
    ASSERT_EQ(ti.src_type, k_in[i]);
    ASSERT_EQ(ti.dtype, i == 2 ? GG_TENSOR_I32 : GG_TENSOR_F32);
    ASSERT_OK(gg_model_output(m, i, &ti));
    ASSERT_EQ(ti.src_type, k_in[i]);
  }
  gg_session *s = NULL;
  gg_session_opts o = {1, GG_ENGINE_NAIVE, 0};
  const int64_t *shapes[3] = {d3, d3, d3};
  int nds[3] = {1, 1, 1};
  char err[512] = "";
  ASSERT_OK(gg_session_new_shapes(m, 3, shapes, nds, &o, NULL, &s, err, sizeof err));
  float *xd = gg_session_input_data(s, 0, &ti), *xh = gg_session_input_data(s, 1, NULL);
  ASSERT_EQ(ti.src_type, ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE);
  int32_t *xu = gg_session_input_data(s, 2, NULL);
  xd[0] = 1, xd[1] = 1, xd[2] = 0.25f;
  xh[0] = 3, xh[1] = 0.5f, xh[2] = 4;
  xu[0] = 9, xu[1] = 5, xu[2] = 0;
  ASSERT_OK(gg_session_run(s, err, sizeof err));
  const float *yd = gg_session_output_data(s, 0, &ti);
  ASSERT_EQ(ti.src_type, ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE);
  ASSERT_NEAR(yd[0], 1.5, 0);
  ASSERT_TRUE(isinf(yd[1]) && yd[1] > 0); /* 1e300 held as float: inf */
  ASSERT_NEAR(yd[2], -2.0, 0);
  const float *yh = gg_session_output_data(s, 1, NULL);
  ASSERT_NEAR(yh[0], 3.0, 0);
  ASSERT_NEAR(yh[1], -1.0, 0);
  ASSERT_NEAR(yh[2], 0x1p-22, 0);
  const int32_t *yu = gg_session_output_data(s, 2, &ti);
  ASSERT_EQ(ti.dtype, GG_TENSOR_I32);
  ASSERT_EQ(yu[0], 9);
  ASSERT_EQ(yu[1], 2147483647);
  ASSERT_EQ(yu[2], 0);
  gg_session_free(s);
  gg_model_free(m);
}

/* ------------------------------------------------------------ refusals */

static void test_refusals(void) {
  ob_model b;
  char err[512] = "";
  gg_model *m = NULL;
  int64_t xd[2] = {1, 4};
  /* unknown op, named with the node */
  ob_init(&b, 13);
  ob_input(&b, "x", 2, xd);
  ob_node(&b, "FancyOp", "my_fancy_node", "x", "y");
  ob_output(&b, "y");
  int rc = load(&b, "unknown.onnx", &m, err, sizeof err);
  ob_free(&b);
  ASSERT_EQ(rc, GG_EUNSUPPORTED);
  ASSERT_TRUE(strstr(err, "my_fancy_node") && strstr(err, "FancyOp"));
  /* an attribute value we do not run */
  ob_init(&b, 13);
  ob_input(&b, "x", 2, xd);
  Onnx__NodeProto *n = ob_node(&b, "Cast", "cast_node", "x", "y");
  ob_attr_i(&b, n, "to", ONNX__TENSOR_PROTO__DATA_TYPE__STRING);
  ob_output(&b, "y");
  rc = load(&b, "attr.onnx", &m, err, sizeof err);
  ob_free(&b);
  ASSERT_EQ(rc, GG_EUNSUPPORTED);
  ASSERT_TRUE(strstr(err, "cast_node") && strstr(err, "to=STRING") && strstr(err, "string"));
  /* an unknown attribute */
  ob_init(&b, 13);
  ob_input(&b, "x", 2, xd);
  n = ob_node(&b, "Relu", "relu_node", "x", "y");
  ob_attr_i(&b, n, "mystery", 3);
  ob_output(&b, "y");
  rc = load(&b, "attr2.onnx", &m, err, sizeof err);
  ob_free(&b);
  ASSERT_EQ(rc, GG_EUNSUPPORTED);
  ASSERT_TRUE(strstr(err, "attribute mystery=3 not supported") != NULL);
  /* a parameter given in the form of another opset: refused, not ignored */
  ob_init(&b, 13);
  int64_t one[1] = {0};
  ob_input(&b, "x", 2, xd);
  n = ob_node(&b, "Squeeze", "sq", "x", "y");
  ob_attr_ints(&b, n, "axes", 1, one);
  ob_output(&b, "y");
  rc = load(&b, "moved.onnx", &m, err, sizeof err);
  ob_free(&b);
  ASSERT_EQ(rc, GG_EUNSUPPORTED);
  ASSERT_TRUE(strstr(err, "attribute axes is an input since opset 13") != NULL);
  /* opsets 0 and 22 */
  for (int v = 0; v <= 22; v += 22) {
    ob_init(&b, v);
    ob_input(&b, "x", 2, xd);
    ob_node(&b, "Relu", "r", "x", "y");
    ob_output(&b, "y");
    rc = load(&b, "opset.onnx", &m, err, sizeof err);
    ob_free(&b);
    ASSERT_EQ(rc, GG_EUNSUPPORTED);
    char want[32];
    snprintf(want, sizeof want, "opset %d", v);
    ASSERT_TRUE(strstr(err, want) != NULL);
  }
  /* another domain */
  ob_init(&b, 13);
  ob_input(&b, "x", 2, xd);
  n = ob_node(&b, "Relu", "r", "x", "y");
  n->domain = ob_str(&b, "com.microsoft");
  ob_output(&b, "y");
  rc = load(&b, "domain.onnx", &m, err, sizeof err);
  ob_free(&b);
  ASSERT_EQ(rc, GG_EUNSUPPORTED);
  ASSERT_TRUE(strstr(err, "com.microsoft") != NULL);
  /* what 3-D windows and Indices do not run: refused at load, naming the node */
  static const struct {
    const char *op, *attr, *want;
    int64_t v;
  } k_3d[] = {
      {"MaxPool", "storage_order", "storage_order=1 not supported with a 3-D window", 1},
      {"MaxPool", "ceil_mode", "ceil_mode=2 not supported", 2},
      {"AveragePool", "strides", "attribute strides has 1 values for a 3-D window", 0},
      {"Conv", "kernel_shape", "kernel_shape does not match the weights", 0},
      {"Conv", "group", "group=0", 0},
      {"ConvTranspose", "output_padding", "attribute output_padding has 2 values", 0},
  };
  for (size_t i = 0; i < sizeof k_3d / sizeof k_3d[0]; i++) {
    int64_t x5[5] = {1, 2, 3, 4, 4}, w5[5] = {2, 2, 2, 2, 2}, k3[3] = {2, 2, 2}, two[2] = {1, 1};
    float w[32] = {0};
    int pool = k_3d[i].op[0] != 'C';
    ob_init(&b, 13);
    ob_input(&b, "x", 5, x5);
    if (!pool) ob_init_f(&b, "w", 5, w5, w, 32);
    n = ob_node(&b, k_3d[i].op, "vol", pool ? "x" : "x,w", "y");
    if (strcmp(k_3d[i].attr, "kernel_shape")) ob_attr_ints(&b, n, "kernel_shape", 3, k3);
    if (!strcmp(k_3d[i].attr, "kernel_shape")) {
      int64_t k33[3] = {2, 3, 2};
      ob_attr_ints(&b, n, "kernel_shape", 3, k33);
    } else if (!strcmp(k_3d[i].attr, "strides"))
      ob_attr_ints(&b, n, "strides", 1, two);
    else if (!strcmp(k_3d[i].attr, "output_padding"))
      ob_attr_ints(&b, n, "output_padding", 2, two);
    else
      ob_attr_i(&b, n, k_3d[i].attr, k_3d[i].v);
    ob_output(&b, "y");
    rc = load(&b, "3d.onnx", &m, err, sizeof err);
    ob_free(&b);
    gg_model_free(m);
    m = NULL;
    ASSERT_TRUE(rc == GG_EUNSUPPORTED || rc == GG_EPARSE);
    ASSERT_CONTAINS(err, "node 'vol'");
    ASSERT_CONTAINS(err, k_3d[i].want);
  }
  /* Indices of an integer input: refused */
  ob_init(&b, 13);
  int64_t x4[4] = {1, 1, 4, 4}, k2[2] = {2, 2};
  ob_input_t(&b, "x", ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, 4, x4);
  n = ob_node(&b, "MaxPool", "mp_int", "x", "y,idx");
  ob_attr_ints(&b, n, "kernel_shape", 2, k2);
  ob_output(&b, "y");
  ob_output(&b, "idx");
  rc = load(&b, "idx_int.onnx", &m, err, sizeof err);
  ob_free(&b);
  gg_model_free(m);
  m = NULL;
  ASSERT_EQ(rc, GG_EUNSUPPORTED);
  ASSERT_CONTAINS(err, "node 'mp_int'");
  ASSERT_CONTAINS(err, "integer input");
}

/* Opsets 1 to 6: an op whose definition there is the one opset 7 selects
 * runs (Relu v6 at opset 6, Softplus v1 at opset 1); one whose definition
 * there is older (Relu at opset 5: consumed_inputs; Add at opset 6: the
 * broadcast attribute) is refused, naming the node and the op. */
static void test_old_opsets(void) {
  static const struct {
    int opset;
    const char *op;
    int ok;
  } k[] = {{6, "Relu", 1}, {1, "Softplus", 1}, {5, "Relu", 0}, {6, "Add", 0}, {6, "Expand", 0}};
  int64_t xd[2] = {1, 4};
  const float x[4] = {-2.0f, -0.5f, 0.5f, 3.0f};
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
    ob_model b;
    char err[512] = "";
    gg_model *m = NULL;
    ob_init(&b, k[i].opset);
    ob_input(&b, "x", 2, xd);
    if (!strcmp(k[i].op, "Add") || !strcmp(k[i].op, "Expand")) {
      Onnx__NodeProto *n = ob_node(&b, k[i].op, "old_node", "x", "y");
      n->n_input = 2; /* x op x */
      n->input = ob_alloc(&b, 2 * sizeof *n->input);
      n->input[0] = n->input[1] = ob_str(&b, "x");
    } else {
      ob_node(&b, k[i].op, "old_node", "x", "y");
    }
    ob_output(&b, "y");
    int rc = load(&b, "old.onnx", &m, err, sizeof err);
    ob_free(&b);
    if (k[i].ok) {
      if (rc) GG_T_FAIL("opset %d %s: %s", k[i].opset, k[i].op, err);
      float y[4] = {0};
      if (!rc) ASSERT_OK(run1(m, xd, 2, x, y, 4, GG_ENGINE_NAIVE, err, sizeof err));
      for (int j = 0; j < 4 && !rc; j++) {
        float want = !strcmp(k[i].op, "Relu") ? (x[j] > 0 ? x[j] : 0) : log1pf(expf(x[j]));
        ASSERT_NEAR(y[j], want, 1e-5);
      }
      gg_model_free(m);
    } else {
      ASSERT_EQ(rc, GG_EUNSUPPORTED);
      if (!strstr(err, "old_node") || !strstr(err, k[i].op))
        GG_T_FAIL("opset %d %s: the error does not name the node and op: %s", k[i].opset,
                  k[i].op, err);
    }
  }
}

/* A uint8 graph input is held as int32 (the API says I32) and computes in
 * int32: Add of two uint8 inputs whose sum passes 255 gives the int32 sum
 * (narrowing it is the caller's part). */
static void test_narrow_int_inputs(void) {
  ob_model b;
  char err[512] = "";
  gg_model *m = NULL;
  int64_t xd[1] = {3};
  ob_init(&b, 13);
  ob_input_t(&b, "a", ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, 1, xd);
  ob_input_t(&b, "b", ONNX__TENSOR_PROTO__DATA_TYPE__INT16, 1, xd);
  Onnx__NodeProto *n = ob_node(&b, "Add", "add", "a", "y");
  n->n_input = 2;
  n->input = ob_alloc(&b, 2 * sizeof *n->input);
  n->input[0] = ob_str(&b, "a"), n->input[1] = ob_str(&b, "b");
  ob_output(&b, "y");
  int rc = load(&b, "u8.onnx", &m, err, sizeof err);
  ob_free(&b);
  if (rc) GG_T_FAIL("load: %s", err);
  if (rc) return;
  gg_tensor_info ti;
  ASSERT_OK(gg_model_input(m, 0, &ti));
  ASSERT_EQ(ti.dtype, GG_TENSOR_I32);
  gg_session *s = NULL;
  gg_session_opts o = {1, GG_ENGINE_NAIVE, 0};
  const int64_t *shapes[2] = {xd, xd};
  int nds[2] = {1, 1};
  rc = gg_session_new_shapes(m, 2, shapes, nds, &o, NULL, &s, err, sizeof err);
  if (rc) GG_T_FAIL("session: %s", err);
  if (!rc) {
    int32_t *a = gg_session_input_data(s, 0, NULL), *bb = gg_session_input_data(s, 1, NULL);
    const int32_t av[3] = {200, 255, 0}, bv[3] = {100, -300, 7};
    memcpy(a, av, sizeof av), memcpy(bb, bv, sizeof bv);
    ASSERT_OK(gg_session_run(s, err, sizeof err));
    const int32_t *y = gg_session_output_data(s, 0, &ti);
    ASSERT_EQ(ti.dtype, GG_TENSOR_I32);
    ASSERT_EQ(y[0], 300);
    ASSERT_EQ(y[1], -45);
    ASSERT_EQ(y[2], 7);
  }
  gg_session_free(s);
  gg_model_free(m);
}

/* NAME.onnx in GPUGUARD_MODELS_DIR resolves; a .json still wins. */
static void test_resolve(void) {
  ob_model b;
  ob_init(&b, 13);
  int64_t xd[2] = {1, 4};
  ob_input(&b, "x", 2, xd);
  ob_node(&b, "Relu", "r", "x", "y");
  ob_output(&b, "y");
  ASSERT_EQ(ob_write(&b, tmp_path("resolveme.onnx"), 0), 0);
  ob_free(&b);
  setenv("GPUGUARD_MODELS_DIR", ob_tmp_dir(), 1);
  char p[512];
  ASSERT_EQ(gg_model_resolve("resolveme", p, sizeof p), 0);
  ASSERT_TRUE(strstr(p, "resolveme.onnx") != NULL);
  gg_model *m = NULL;
  char err[256];
  ASSERT_EQ(gg_model_load(p, &m, err, sizeof err), 0);
  gg_model_free(m);
}

/* The PP-OCR models (scripts/fetch-models.sh), when fetched: they load,
 * and the layout pass leaves fewer transposes than the importer made. */
static void test_ppocr_transposes(void) {
  static const char *const k[] = {"ch_PP-OCRv4_det_infer", "ch_PP-OCRv4_rec_infer",
                                  "ch_ppocr_mobile_v2.0_cls_infer"};
  /* What the layout pass leaves today (140 -> 2, 87 -> 12, 108 -> 2): det's
   * input and output transposes, rec's attention reshapes. More is a
   * regression of the pass (one op it no longer moves through adds dozens). */
  static const int most[] = {2, 12, 2};
  const char *cache = getenv("GPUGUARD_CACHE"), *home = getenv("HOME");
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
    char p[600];
    if (cache && *cache)
      snprintf(p, sizeof p, "%s/models/ocr-models-1.4.2/assets/%s.onnx", cache, k[i]);
    else
      snprintf(p, sizeof p, "%s/.cache/gpuguard/models/ocr-models-1.4.2/assets/%s.onnx",
               home ? home : "", k[i]);
    if (access(p, R_OK)) {
      fprintf(stderr, "  skip %s: not fetched (scripts/fetch-models.sh)\n", k[i]);
      continue;
    }
    gg_model *m = NULL, *m0 = NULL;
    char err[512] = "";
    int rc = gg_model_load(p, &m, err, sizeof err);
    if (rc) GG_T_FAIL("%s: %s", k[i], err);
    rc = load_unoptimized(p, &m0, err, sizeof err);
    if (rc) {
      gg_model_free(m);
      GG_T_FAIL("%s: %s", k[i], err);
    }
    int after = count_transposes(m), before = count_transposes(m0);
    fprintf(stderr,
            "  %s: %d ops, %d transposes as imported, %d after the layout pass and fusion\n", k[i],
            gg_model_n_ops(m), before, after);
    gg_model_free(m);
    gg_model_free(m0);
    ASSERT_LE(after, before);
    ASSERT_LE(after, most[i]);
  }
}

/* ------------------------------------------------------------ DepthToSpace, SpaceToDepth */

/* One block-rearrangement model (N dynamic) against a direct NCHW loop on
 * every backend. op 0: DepthToSpace DCR, 1: DepthToSpace CRD, 2: SpaceToDepth.
 * x [2, C, H, W]; bs the block size. */
static void d2s_case(int op, int C, int H, int W, int bs) {
  ob_model b;
  ob_init(&b, 13);
  int64_t xd[4] = {-1, C, H, W}, sh[4] = {2, C, H, W};
  ob_input(&b, "x", 4, xd);
  Onnx__NodeProto *n = ob_node(&b, op == 2 ? "SpaceToDepth" : "DepthToSpace", "blocks", "x", "y");
  ob_attr_i(&b, n, "blocksize", bs);
  if (op < 2) ob_attr_s(&b, n, "mode", op ? "CRD" : "DCR");
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "d2s.onnx");
  if (!m) GG_T_FAIL("op %d: load failed", op);
  int ne = 2 * C * H * W;
  float *x = malloc((size_t)ne * sizeof *x), *want = malloc((size_t)ne * sizeof *want);
  if (!x || !want) abort();
  for (int i = 0; i < ne; i++)
    x[i] = (float)i;
  /* the small side: D2S output [C/bs², H*bs, W*bs], S2D input [C, H, W] */
  int cs = op == 2 ? C : C / (bs * bs), hs = op == 2 ? H / bs : H, ws = op == 2 ? W / bs : W;
  int cb = cs * bs * bs, hb = hs * bs, wb = ws * bs;
  for (int bi = 0; bi < 2; bi++)
    for (int c = 0; c < cs; c++)
      for (int h = 0; h < hs; h++)
        for (int w = 0; w < ws; w++)
          for (int i = 0; i < bs; i++)
            for (int j = 0; j < bs; j++) {
              /* deep: [cb, hs, ws]; wide: [cs, hb, wb] */
              int dc = op == 1 ? c * bs * bs + i * bs + j : (i * bs + j) * cs + c;
              int deep = ((bi * cb + dc) * hs + h) * ws + w;
              int wide = ((bi * cs + c) * hb + h * bs + i) * wb + w * bs + j;
              if (op == 2)
                want[deep] = x[wide];
              else
                want[wide] = x[deep];
            }
  ASSERT_EQ(match_backends(m, sh, 4, x, want, ne, 0, op == 2 ? "s2d" : op ? "crd" : "dcr"), 0);
  free(x);
  free(want);
  gg_model_free(m);
}

static void test_depth_to_space_modes(void) {
  d2s_case(0, 8, 2, 3, 2);
  d2s_case(1, 8, 2, 3, 2);
  d2s_case(1, 18, 2, 1, 3);
  d2s_case(2, 3, 4, 6, 2);
  d2s_case(2, 1, 3, 6, 3);
  /* a block size that does not divide H: refused at the session, no crash */
  ob_model b;
  ob_init(&b, 13);
  int64_t xd[4] = {1, 1, 3, 4};
  ob_input(&b, "x", 4, xd);
  Onnx__NodeProto *n = ob_node(&b, "SpaceToDepth", "s2d", "x", "y");
  ob_attr_i(&b, n, "blocksize", 2);
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "s2d_bad.onnx");
  if (!m) GG_T_FAIL("load failed");
  float x[12] = {0}, y[12];
  char err[512] = "";
  int rc = run1(m, xd, 4, x, y, 12, GG_ENGINE_AUTO, err, sizeof err);
  gg_model_free(m);
  if (rc != GG_EPARSE || !strstr(err, "s2d")) fprintf(stderr, "  %s\n", err);
  ASSERT_EQ(rc, GG_EPARSE);
  ASSERT_TRUE(strstr(err, "s2d") != NULL);
}

/* ------------------------------------------------------------ Dropout mask */

/* An initializer of one BOOL value (raw_data). */
static void init_bool(ob_model *b, const char *name, int v) {
  Onnx__TensorProto *t = ob_tensor(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__BOOL, 0, NULL);
  t->has_raw_data = 1;
  t->raw_data.len = 1;
  t->raw_data.data = ob_alloc(b, 1);
  t->raw_data.data[0] = (uint8_t)v;
  b->inits[b->g.n_initializer++] = t;
}

static void test_dropout_mask(void) {
  ob_model b;
  ob_init(&b, 13);
  int64_t xd[3] = {-1, 3, 4}, sh[3] = {2, 3, 4}, none[1] = {0};
  float ratio = 0.3f;
  ob_input(&b, "x", 3, xd);
  ob_init_f(&b, "ratio", 0, none, &ratio, 1);
  init_bool(&b, "training", 0);
  ob_node(&b, "Dropout", "drop", "x,ratio,training", "y,mask");
  ob_output(&b, "y");
  ob_output(&b, "mask");
  gg_model *m = load_free(&b, "dropout_mask.onnx");
  if (!m) GG_T_FAIL("load failed");
  char err[512] = "";
  gg_session *s = NULL;
  int rc = gg_session_new(m, sh, 3, NULL, &s, err, sizeof err);
  if (rc) {
    gg_model_free(m);
    GG_T_FAIL("session: %s", err);
  }
  float *in = gg_session_input(s, 0, NULL);
  for (int i = 0; i < 24; i++)
    in[i] = (float)i - 7.5f;
  rc = gg_session_run(s, err, sizeof err);
  gg_tensor_info ty, tm;
  const float *y = gg_session_output(s, 0, &ty);
  const int32_t *mask = gg_session_output_data(s, 1, &tm);
  int ok_y = !rc && y && ty.ndim == 3 && ty.shape[0] == 2, ok_m = !rc && mask;
  for (int i = 0; ok_y && i < 24; i++)
    ok_y = y[i] == (float)i - 7.5f;
  for (int i = 0; ok_m && i < 24; i++)
    ok_m = mask[i] == 1;
  gg_session_free(s);
  gg_model_free(m);
  if (rc) GG_T_FAIL("run: %s", err);
  ASSERT_TRUE(ok_y);
  ASSERT_TRUE(ok_m);
  ASSERT_EQ(tm.dtype, GG_TENSOR_I32);
  ASSERT_EQ(tm.ndim, 3);
  ASSERT_EQ(tm.shape[0], 2);
  ASSERT_EQ(tm.shape[1], 3);
  ASSERT_EQ(tm.shape[2], 4);
  /* training mode stays refused, naming the node */
  ob_init(&b, 13);
  ob_input(&b, "x", 3, sh);
  init_bool(&b, "training", 1);
  ob_node(&b, "Dropout", "drop_train", "x,,training", "y,mask");
  ob_output(&b, "y");
  ob_output(&b, "mask");
  m = NULL;
  rc = load(&b, "dropout_train.onnx", &m, err, sizeof err);
  ob_free(&b);
  gg_model_free(m);
  ASSERT_EQ(rc, GG_EUNSUPPORTED);
  ASSERT_TRUE(strstr(err, "drop_train") && strstr(err, "training_mode"));
}

/* ------------------------------------------------------------ 3-D windows */

/* One window case over x [1, C, D, H, W] (1-D and 2-D: D, H of 1 and k, s,
 * dl of 1 there): ONNX attributes per axis (d, h, w), pads begins then ends. */
typedef struct w3case {
  int C, in[3], k[3], s[3], dl[3], p[6];
} w3case;

/* ONNX's output size of one pooling / conv axis (ceil_mode: a window that
 * would start in the end padding is dropped). */
static int w3_out(const w3case *g, int a, int ceil_mode) {
  int ek = (g->k[a] - 1) * g->dl[a] + 1, span = g->in[a] + g->p[a] + g->p[3 + a] - ek;
  int o = (ceil_mode ? (span + g->s[a] - 1) / g->s[a] : span / g->s[a]) + 1;
  if (ceil_mode && (o - 1) * g->s[a] >= g->in[a] + g->p[a]) o--;
  return o;
}

/* Max / average pool by direct loops over every tap; idx (may be NULL) gets
 * the flat input index of each maximum (the first one; storage order 1:
 * spatial part column-major). Returns the output element count. */
static int ref_pool3(const w3case *g, const float *x, int is_max, int ceil_mode, int cip,
                     int colmaj, float *y, int64_t *idx) {
  int o[3], n = 0;
  for (int a = 0; a < 3; a++)
    o[a] = w3_out(g, a, ceil_mode);
  for (int c = 0; c < g->C; c++)
    for (int od = 0; od < o[0]; od++)
      for (int oh = 0; oh < o[1]; oh++)
        for (int ow = 0; ow < o[2]; ow++) {
          double sum = 0, best = -INFINITY;
          int cnt = 0;
          int64_t bi = -1;
          for (int kd = 0; kd < g->k[0]; kd++)
            for (int kh = 0; kh < g->k[1]; kh++)
              for (int kw = 0; kw < g->k[2]; kw++) {
                int p[3] = {od * g->s[0] - g->p[0] + kd * g->dl[0],
                            oh * g->s[1] - g->p[1] + kh * g->dl[1],
                            ow * g->s[2] - g->p[2] + kw * g->dl[2]};
                int inside = 1, in_pad = 1;
                for (int a = 0; a < 3; a++) {
                  inside &= p[a] >= 0 && p[a] < g->in[a];
                  in_pad &= p[a] >= -g->p[a] && p[a] < g->in[a] + g->p[3 + a];
                }
                cnt += cip ? in_pad : inside;
                if (!inside) continue;
                int64_t at = ((int64_t)(c * g->in[0] + p[0]) * g->in[1] + p[1]) * g->in[2] + p[2];
                sum += x[at];
                if (x[at] > best) {
                  best = x[at];
                  bi = colmaj ? (int64_t)c * g->in[0] * g->in[1] * g->in[2] +
                                    ((int64_t)p[2] * g->in[1] + p[1]) * g->in[0] + p[0]
                              : at;
                }
              }
          y[n] = (float)(is_max ? best : sum / cnt);
          if (idx) idx[n] = bi;
          n++;
        }
  return n;
}

/* Conv (transpose 0: OIDHW weights) or ConvTranspose (1: IODHW, scattered
 * into the full output, then cropped by the pads; out: its size) with
 * groups and bias, by direct loops. Returns the output element count. */
static int ref_conv3(const w3case *g, const float *x, const float *w, const float *bias, int CO,
                     int groups, int transpose, const int out[3], float *y) {
  int cig = g->C / groups, cog = CO / groups, n = out[0] * out[1] * out[2];
  for (int i = 0; i < CO * n; i++)
    y[i] = bias ? bias[i / n] : 0.0f;
  for (int co = 0; co < CO; co++)
    for (int ci = 0; ci < cig; ci++) {
      int grp = co / cog, c = grp * cig + ci;
      const float *wk = transpose ? w + ((int64_t)c * cog + co % cog) * g->k[0] * g->k[1] * g->k[2]
                                  : w + ((int64_t)co * cig + ci) * g->k[0] * g->k[1] * g->k[2];
      for (int kd = 0; kd < g->k[0]; kd++)
        for (int kh = 0; kh < g->k[1]; kh++)
          for (int kw = 0; kw < g->k[2]; kw++) {
            float wv = wk[(kd * g->k[1] + kh) * g->k[2] + kw];
            int kk[3] = {kd, kh, kw};
            /* conv: over outputs, the input tap; transpose: over inputs, the output tap */
            int lim[3];
            for (int a = 0; a < 3; a++)
              lim[a] = transpose ? g->in[a] : out[a];
            for (int i0 = 0; i0 < lim[0]; i0++)
              for (int i1 = 0; i1 < lim[1]; i1++)
                for (int i2 = 0; i2 < lim[2]; i2++) {
                  int ii[3] = {i0, i1, i2}, q[3], ok = 1;
                  for (int a = 0; a < 3; a++) {
                    q[a] = ii[a] * g->s[a] - g->p[a] + kk[a] * g->dl[a];
                    ok &= q[a] >= 0 && q[a] < (transpose ? out[a] : g->in[a]);
                  }
                  if (!ok) continue;
                  const int *xi = transpose ? ii : q, *yi = transpose ? q : ii;
                  y[co * n + (yi[0] * out[1] + yi[1]) * out[2] + yi[2]] +=
                      x[((c * g->in[0] + xi[0]) * g->in[1] + xi[1]) * g->in[2] + xi[2]] * wv;
                }
          }
    }
  return CO * n;
}

/* The model: one node of op over x [1, C, spatial of nd dims] with g's
 * attributes for those dims; w (may be NULL) an initializer. */
static Onnx__NodeProto *w3_model(ob_model *b, const char *op, const w3case *g, int nd,
                                 const float *w, const int64_t *wd, const float *bias, int64_t CO,
                                 const char *outs, int64_t *xd) {
  int off = 3 - nd;
  int64_t ks[3], st[3], dl[3], pads[6];
  xd[0] = 1, xd[1] = g->C;
  for (int i = 0; i < nd; i++) {
    xd[2 + i] = g->in[off + i], ks[i] = g->k[off + i], st[i] = g->s[off + i];
    dl[i] = g->dl[off + i], pads[i] = g->p[off + i], pads[nd + i] = g->p[3 + off + i];
  }
  ob_init(b, 19);
  ob_input(b, "x", nd + 2, xd);
  if (w) {
    int64_t wn = 1;
    for (int i = 0; i < nd + 2; i++)
      wn *= wd[i];
    ob_init_f(b, "w", nd + 2, wd, w, (size_t)wn);
  }
  if (bias) ob_init_f(b, "b", 1, &CO, bias, (size_t)CO);
  Onnx__NodeProto *n = ob_node(b, op, "win", w ? (bias ? "x,w,b" : "x,w") : "x", outs);
  ob_attr_ints(b, n, "kernel_shape", nd, ks);
  ob_attr_ints(b, n, "strides", nd, st);
  ob_attr_ints(b, n, "dilations", nd, dl);
  ob_attr_ints(b, n, "pads", 2 * nd, pads);
  ob_output(b, "y");
  return n;
}

static void fill(float *v, int n, uint32_t seed) {
  for (int i = 0; i < n; i++)
    v[i] = frand(&seed);
}

/* 3-D MaxPool / AveragePool (count_include_pad 0 and 1, ceil_mode 0 and 1,
 * pads, strides, dilations) against ref_pool3 on the engine backends. */
static void test_pool3d(void) {
  static const w3case k_cases[] = {
      {2, {4, 5, 6}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0, 0, 0, 0}},
      {3, {5, 4, 7}, {3, 2, 3}, {2, 1, 2}, {1, 1, 1}, {1, 0, 1, 2, 1, 0}},
      {2, {6, 5, 5}, {2, 3, 2}, {2, 2, 1}, {2, 1, 2}, {1, 1, 0, 0, 2, 1}},
      {1, {7, 5, 6}, {3, 2, 2}, {3, 1, 3}, {1, 2, 1}, {2, 0, 1, 1, 1, 1}},
  };
  float x[3 * 7 * 7 * 7], want[3 * 8 * 8 * 8];
  for (size_t ci = 0; ci < sizeof k_cases / sizeof k_cases[0]; ci++)
    for (int kind = 0; kind < 6; kind++) { /* max, avg cip 0, avg cip 1; x ceil_mode 0, 1 */
      const w3case *g = &k_cases[ci];
      int is_max = kind % 3 == 0, cip = kind % 3 == 2, ceil_mode = kind / 3;
      fill(x, g->C * g->in[0] * g->in[1] * g->in[2], 11u + (uint32_t)ci);
      ob_model b;
      int64_t xd[5];
      Onnx__NodeProto *n =
          w3_model(&b, is_max ? "MaxPool" : "AveragePool", g, 3, NULL, NULL, NULL, 0, "y", xd);
      ob_attr_i(&b, n, "ceil_mode", ceil_mode);
      if (!is_max) ob_attr_i(&b, n, "count_include_pad", cip);
      gg_model *m = load_free(&b, "pool3d.onnx");
      if (!m) GG_T_FAIL("load failed");
      int ne = ref_pool3(g, x, is_max, ceil_mode, cip, 0, want, NULL);
      char what[96];
      snprintf(what, sizeof what, "pool3d case %zu %s cip %d ceil %d", ci,
               is_max ? "max" : "avg", cip, ceil_mode);
      int bad = match_backends(m, xd, 5, x, want, ne, 1e-5, what);
      gg_model_free(m);
      if (bad) GG_T_FAIL("%s", what);
    }
}

/* MaxPool's Indices output (1-D, 2-D with storage_order 0 and 1, 3-D) on
 * the engine backends: values and the int64 flat indices (int32 here). */
static void test_maxpool_indices(void) {
  static const w3case g = {3, {4, 5, 6}, {2, 3, 2}, {2, 1, 2}, {1, 2, 1}, {1, 1, 0, 0, 1, 1}};
  float x[3 * 4 * 5 * 6], want[3 * 5 * 6 * 6];
  int64_t widx[3 * 5 * 6 * 6];
  for (int nd = 1; nd <= 3; nd++)
    for (int so = 0; so <= (nd < 3); so++) {
      w3case h = g; /* the unused leading axes: size 1, one tap */
      for (int a = 0; a < 3 - nd; a++)
        h.in[a] = h.k[a] = h.s[a] = h.dl[a] = 1, h.p[a] = h.p[3 + a] = 0;
      int nx = h.C * h.in[0] * h.in[1] * h.in[2];
      fill(x, nx, 5u + (uint32_t)nd);
      x[6] = x[7] = 5.0f; /* a tie (one window on every axis): the first index wins */
      ob_model b;
      int64_t xd[5];
      Onnx__NodeProto *n = w3_model(&b, "MaxPool", &h, nd, NULL, NULL, NULL, 0, "y,idx", xd);
      ob_attr_i(&b, n, "storage_order", so);
      ob_output(&b, "idx");
      gg_model *m = load_free(&b, "maxpool_idx.onnx");
      if (!m) GG_T_FAIL("load failed");
      int ne = ref_pool3(&h, x, 1, 0, 0, so, want, widx);
      char err[512] = "";
      int bad = 0;
      for (int be = GG_ENGINE_AUTO; be <= GG_ENGINE_NAIVE && !bad; be++) {
        gg_session *s = NULL;
        gg_session_opts o = {1, (gg_engine_backend)be, 0};
        int rc = gg_session_new(m, xd, nd + 2, &o, &s, err, sizeof err);
        if (!rc) {
          memcpy(gg_session_input(s, 0, NULL), x, (size_t)nx * sizeof *x);
          rc = gg_session_run(s, err, sizeof err);
        }
        gg_tensor_info ti;
        const float *y = rc ? NULL : gg_session_output(s, 0, NULL);
        const int32_t *idx = rc ? NULL : gg_session_output_data(s, 1, &ti);
        bad = rc || !y || !idx || ti.dtype != GG_TENSOR_I32 ||
              gg_session_output_elems(s, 1) != ne;
        for (int i = 0; !bad && i < ne; i++)
          if (y[i] != want[i] || idx[i] != widx[i]) {
            fprintf(stderr,
                    "  %d-D storage_order %d backend %d: [%d] = %g @%d, expected %g @%lld\n", nd,
                    so, be, i, y[i], idx[i], want[i], (long long)widx[i]);
            bad = 1;
          }
        if (rc) fprintf(stderr, "  %d-D backend %d: %s\n", nd, be, err);
        gg_session_free(s);
      }
      gg_model_free(m);
      if (bad) GG_T_FAIL("maxpool indices %d-D storage_order %d", nd, so);
    }
}

/* 3-D Conv and ConvTranspose (groups, strides, dilations, asymmetric pads,
 * bias, output_padding; output_shape and auto_pad SAME_UPPER) against
 * ref_conv3 on the engine backends. */
static void test_conv3d(void) {
  static const w3case k_cases[] = {
      {2, {4, 5, 6}, {2, 3, 2}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0, 0, 0, 0}},
      {4, {5, 6, 5}, {3, 2, 2}, {2, 1, 2}, {1, 2, 1}, {1, 0, 1, 2, 1, 0}},
      {2, {3, 4, 6}, {2, 2, 3}, {1, 2, 2}, {2, 1, 1}, {0, 1, 1, 1, 0, 2}},
  };
  float x[4 * 6 * 6 * 6], w[4 * 4 * 27], bias[4], want[4 * 16 * 16 * 16];
  for (size_t ci = 0; ci < sizeof k_cases / sizeof k_cases[0]; ci++)
    for (int kind = 0; kind < 8; kind++) {
      const w3case *g = &k_cases[ci];
      int tr = kind & 1, groups = kind & 2 ? 2 : 1, with_bias = (kind & 4) != 0, CO = 4;
      int cig = g->C / groups, cog = CO / groups, kv = g->k[0] * g->k[1] * g->k[2];
      int64_t wd[5] = {tr ? g->C : CO, tr ? cog : cig, g->k[0], g->k[1], g->k[2]};
      fill(x, g->C * g->in[0] * g->in[1] * g->in[2], 3u + (uint32_t)ci);
      fill(w, (int)(wd[0] * wd[1]) * kv, 9u + (uint32_t)kind);
      fill(bias, CO, 17u);
      int out[3], op[3] = {0, 0, 0};
      for (int a = 0; a < 3; a++) {
        if (tr) {
          op[a] = g->s[a] > 1 ? (int)(ci + (size_t)a) % g->s[a] : 0;
          out[a] = g->s[a] * (g->in[a] - 1) + op[a] + (g->k[a] - 1) * g->dl[a] + 1 - g->p[a] -
                   g->p[3 + a];
        } else
          out[a] = w3_out(g, a, 0);
      }
      ob_model b;
      int64_t xd[5];
      Onnx__NodeProto *n = w3_model(&b, tr ? "ConvTranspose" : "Conv", g, 3, w, wd,
                                    with_bias ? bias : NULL, CO, "y", xd);
      ob_attr_i(&b, n, "group", groups);
      if (tr) {
        int64_t op64[3] = {op[0], op[1], op[2]};
        ob_attr_ints(&b, n, "output_padding", 3, op64);
      }
      gg_model *m = load_free(&b, "conv3d.onnx");
      if (!m) GG_T_FAIL("load failed");
      int ne = ref_conv3(g, x, w, with_bias ? bias : NULL, CO, groups, tr, out, want);
      char what[96];
      snprintf(what, sizeof what, "%s case %zu groups %d bias %d",
               tr ? "convtranspose3d" : "conv3d", ci, groups, with_bias);
      int bad = match_backends(m, xd, 5, x, want, ne, 1e-4, what);
      gg_model_free(m);
      if (bad) GG_T_FAIL("%s", what);
    }
  /* Conv auto_pad SAME_UPPER and ConvTranspose output_shape: the pads the
   * shape rule derives (the odd one at the end / split as ONNX says). */
  w3case g = {2, {5, 4, 6}, {3, 2, 3}, {2, 1, 2}, {1, 1, 1}, {0}};
  for (int tr = 0; tr <= 1; tr++) {
    int64_t wd[5] = {2, 2, 3, 2, 3}, os[3] = {11, 4, 12};
    int out[3];
    fill(x, 2 * 5 * 4 * 6, 23u);
    fill(w, 2 * 2 * 18, 29u);
    w3case r = g;
    for (int a = 0; a < 3; a++) {
      int tot;
      if (tr) {
        out[a] = (int)os[a];
        tot = g.s[a] * (g.in[a] - 1) + g.k[a] - out[a];
        r.p[a] = tot - tot / 2, r.p[3 + a] = tot / 2;
      } else {
        out[a] = (g.in[a] + g.s[a] - 1) / g.s[a];
        tot = (out[a] - 1) * g.s[a] + g.k[a] - g.in[a];
        if (tot < 0) tot = 0;
        r.p[a] = tot / 2, r.p[3 + a] = tot - tot / 2;
      }
    }
    ob_model b;
    int64_t xd[5] = {1, 2, 5, 4, 6}, ks[3] = {3, 2, 3}, st[3] = {2, 1, 2};
    ob_init(&b, 13);
    ob_input(&b, "x", 5, xd);
    ob_init_f(&b, "w", 5, wd, w, 2 * 2 * 18);
    Onnx__NodeProto *n = ob_node(&b, tr ? "ConvTranspose" : "Conv", "win", "x,w", "y");
    ob_attr_ints(&b, n, "kernel_shape", 3, ks);
    ob_attr_ints(&b, n, "strides", 3, st);
    if (tr)
      ob_attr_ints(&b, n, "output_shape", 3, os);
    else
      ob_attr_s(&b, n, "auto_pad", "SAME_UPPER");
    ob_output(&b, "y");
    gg_model *m = load_free(&b, "conv3d_auto.onnx");
    if (!m) GG_T_FAIL("load failed");
    int ne = ref_conv3(&r, x, w, NULL, 2, 1, tr, out, want);
    int bad = match_backends(m, xd, 5, x, want, ne, 1e-4, tr ? "output_shape" : "SAME_UPPER");
    gg_model_free(m);
    if (bad) GG_T_FAIL("%s", tr ? "convtranspose3d output_shape" : "conv3d SAME_UPPER");
  }
}

/* Group X through the importer: TopK with k as the opset-9 attribute, Mean
 * of three inputs (a sum chain, then / 3), Elu at opset 6 (its opset-7
 * definition), ReduceLogSumExp with its axes attribute; and the refusals of
 * what is not run (float Mod without fmod, an unknown scatter reduction, an
 * EyeLike dtype: STRING), each naming the node. */
static void test_group_x(void) {
  int64_t xd[2] = {1, 4};
  const float x[4] = {-2.0f, -0.5f, 0.5f, 3.0f};
  static const struct {
    int opset;
    const char *op, *inputs;
    int64_t nout;
    float want[4];
  } k[] = {
      {9, "TopK", "x", 2, {3.0f, 0.5f}},
      {13, "Mean", "x,x,x", 4, {-2.0f, -0.5f, 0.5f, 3.0f}},
      {6, "Elu", "x", 4, {-0.8646647f, -0.3934693f, 0.5f, 3.0f}},
      {13, "ReduceLogSumExp", "x", 1, {3.1124536f}},
  };
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
    ob_model b;
    char err[512] = "";
    gg_model *m = NULL;
    ob_init(&b, k[i].opset);
    ob_input(&b, "x", 2, xd);
    const char *outs = !strcmp(k[i].op, "TopK") ? "y,idx" : "y";
    Onnx__NodeProto *n = ob_node(&b, k[i].op, "xnode", k[i].inputs, outs);
    if (!strcmp(k[i].op, "TopK")) ob_attr_i(&b, n, "k", 2);
    if (!strcmp(k[i].op, "ReduceLogSumExp")) {
      int64_t ax[1] = {-1};
      ob_attr_ints(&b, n, "axes", 1, ax);
    }
    ob_output(&b, "y");
    int rc = load(&b, "groupx.onnx", &m, err, sizeof err);
    ob_free(&b);
    if (rc) {
      GG_T_FAIL("%s: %s", k[i].op, err);
      continue;
    }
    if (match_backends(m, xd, 2, x, k[i].want, k[i].nout, 1e-5, k[i].op))
      GG_T_FAIL("%s: wrong result", k[i].op);
    gg_model_free(m);
  }
  /* TopK's K from a shape subgraph, known once the session knows x's shape:
   * K = Shape(x)[1:2], the whole row sorted. */
  {
    ob_model b;
    char err[512] = "";
    gg_model *m = NULL;
    ob_init(&b, 15);
    ob_input(&b, "x", 2, xd);
    Onnx__NodeProto *n = ob_node(&b, "Shape", "k_of_x", "x", "k");
    ob_attr_i(&b, n, "start", 1);
    ob_attr_i(&b, n, "end", 2);
    ob_node(&b, "TopK", "topk_node", "x,k", "y,idx");
    ob_output(&b, "y");
    int rc = load(&b, "groupx_topk.onnx", &m, err, sizeof err);
    ob_free(&b);
    if (rc) GG_T_FAIL("TopK with K from Shape: %s", err);
    const float want[4] = {3.0f, 0.5f, -0.5f, -2.0f};
    if (!rc && match_backends(m, xd, 2, x, want, 4, 0, "TopK(K = Shape)"))
      GG_T_FAIL("TopK with K from Shape: wrong result");
    gg_model_free(m);
  }
  static const struct {
    const char *op, *attr, *sval, *want;
    int64_t ival;
  } r[] = {
      {"Mod", NULL, NULL, "float operands need fmod=1", 0},
      {"ScatterElements", "reduction", "median", "reduction=median", 0},
      {"EyeLike", "dtype", NULL, "dtype=STRING", ONNX__TENSOR_PROTO__DATA_TYPE__STRING},
      {"Hardmax", "axis", NULL, "axis 9", 9},
  };
  for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
    ob_model b;
    char err[512] = "";
    gg_model *m = NULL;
    ob_init(&b, 18);
    ob_input(&b, "x", 2, xd);
    const char *ins = !strcmp(r[i].op, "Mod")               ? "x,x"
                      : !strcmp(r[i].op, "ScatterElements") ? "x,x,x"
                                                            : "x";
    Onnx__NodeProto *n = ob_node(&b, r[i].op, "refused_node", ins, "y");
    if (r[i].sval)
      ob_attr_s(&b, n, r[i].attr, r[i].sval);
    else if (r[i].attr)
      ob_attr_i(&b, n, r[i].attr, r[i].ival);
    ob_output(&b, "y");
    int rc = load(&b, "groupx_refused.onnx", &m, err, sizeof err);
    ob_free(&b);
    gg_model_free(m);
    if (rc != GG_EUNSUPPORTED && rc != GG_ERANGE)
      GG_T_FAIL("%s: got %s, want a refusal (%s)", r[i].op, gg_err_name(rc), err);
    ASSERT_CONTAINS(err, "refused_node");
    ASSERT_CONTAINS(err, r[i].want);
  }
}

/* Mish (opset 18) against x * tanh(log(1 + exp(x))) in double, over
 * values from -30 (softplus underflow) to 30 (overflow-safe softplus). */
static void test_mish(void) {
  ob_model b;
  ob_init(&b, 18);
  int64_t xd[1] = {64};
  ob_input(&b, "x", 1, xd);
  ob_node(&b, "Mish", "mish", "x", "y");
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "mish.onnx");
  if (!m) GG_T_FAIL("load failed");
  float x[64], want[64];
  for (int i = 0; i < 64; i++) {
    x[i] = -30.0f + 60.0f * (float)i / 63.0f;
    double v = x[i];
    want[i] = (float)(v * tanh(v > 20 ? v : log1p(exp(v))));
  }
  int bad = match_backends(m, xd, 1, x, want, 64, 1e-5, "mish");
  gg_model_free(m);
  ASSERT_FALSE(bad);
}

/* Pad with opset 18's axes input: pads for the listed axes only (-1: the
 * last), the others unpadded; a repeated axis is refused naming the node. */
static void test_pad_axes(void) {
  ob_model b;
  ob_init(&b, 18);
  int64_t xd[2] = {2, 3}, pd[1] = {2}, ad[1] = {1}, pads[2] = {1, 2}, axes[1] = {-1};
  ob_input(&b, "x", 2, xd);
  ob_init_i64(&b, "pads", 1, pd, pads, 2);
  ob_init_i64(&b, "axes", 1, ad, axes, 1);
  ob_node(&b, "Pad", "pad", "x,pads,,axes", "y");
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "pad_axes.onnx");
  if (!m) GG_T_FAIL("load failed");
  const float x[6] = {1, 2, 3, 4, 5, 6};
  const float want[12] = {0, 1, 2, 3, 0, 0, 0, 4, 5, 6, 0, 0};
  int bad = match_backends(m, xd, 2, x, want, 12, 0, "pad axes");
  gg_model_free(m);
  ASSERT_FALSE(bad);
  ob_init(&b, 18);
  int64_t pd4[1] = {4}, ad2[1] = {2}, pads4[4] = {1, 1, 1, 1}, axes2[2] = {1, -1};
  ob_input(&b, "x", 2, xd);
  ob_init_i64(&b, "pads", 1, pd4, pads4, 4);
  ob_init_i64(&b, "axes", 1, ad2, axes2, 2);
  ob_node(&b, "Pad", "pad", "x,pads,,axes", "y");
  ob_output(&b, "y");
  char err[512] = "";
  m = NULL;
  int rc = load(&b, "pad_axes_bad.onnx", &m, err, sizeof err);
  ob_free(&b);
  gg_model_free(m);
  ASSERT_EQ(rc, GG_EPARSE);
  ASSERT_CONTAINS(err, "'pad'");
  ASSERT_CONTAINS(err, "repeated");
}

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_ERROR);
  static const gg_test_case cases[] = {
      {"conv_bn_relu", test_conv_bn_relu},
      {"conv1d", test_conv1d},
      {"gemm", test_gemm},
      {"reshape_flatten", test_reshape_flatten},
      {"softmax_axis", test_softmax_axis},
      {"two_inputs", test_two_inputs},
      {"shape_subgraph_folded", test_shape_subgraph_folded},
      {"layout_pass", test_layout_pass},
      {"layout_constants", test_layout_constants},
      {"einsum", test_einsum},
      {"convtranspose_output_shape", test_convtranspose_output_shape},
      {"refusals", test_refusals},
      {"old_opsets", test_old_opsets},
      {"size_folded", test_size_folded},
      {"narrow_int_inputs", test_narrow_int_inputs},
      {"resolve", test_resolve},
      {"ppocr_transposes", test_ppocr_transposes},
      {"depth_to_space_modes", test_depth_to_space_modes},
      {"dropout_mask", test_dropout_mask},
      {"pool3d", test_pool3d},
      {"maxpool_indices", test_maxpool_indices},
      {"conv3d", test_conv3d},
      {"cast_f16", test_cast_f16},
      {"cast_bypass", test_cast_bypass},
      {"wide_types", test_wide_types},
      {"cast_ints", test_cast_ints},
      {"group_x", test_group_x},
      {"pad_axes", test_pad_axes},
      {"mish", test_mish},
      {0},
  };
  int rc = gg_test_main(argc, argv, cases);
  const char *keep = getenv("GG_TEST_KEEP"); /* keep the models (fuzz seeds) */
  if (keep && *keep) {
    fprintf(stderr, "models kept in %s\n", ob_tmp_dir());
    return rc;
  }
  return ob_tmp_cleanup(rc);
}

#else
int main(void) {
  printf("SKIP: built without ONNX import (libprotobuf-c-dev, protobuf-c-compiler, libonnx-dev)\n");
  return 0;
}
#endif
