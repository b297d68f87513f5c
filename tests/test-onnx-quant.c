/* ONNX's linear quantization: QuantizeLinear, DequantizeLinear,
 * DynamicQuantizeLinear, ConvInteger, MatMulInteger, QLinearConv and
 * QLinearMatMul, on every backend (naive, auto = XNNPACK when built, the
 * sim device, OpenCL when it opens), checked against references written
 * here: rounding half to even spelled out, saturation, per-axis scales and
 * zero points, NaN, the all-zero input of DynamicQuantizeLinear, integer
 * convolutions and products accumulated in int64, and the requantization
 * ONNX Runtime computes (x_scale * w_scale / y_scale in float32). Also:
 * what is refused (blocked quantization, float 8 zero points, computed
 * ConvInteger weights), the Cast back to float that reads ConvInteger's
 * float accumulator, and XNNPACK's bilinear resize declining the nodes of a
 * quantized graph. This suite also runs under ASan/UBSan. */
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
#include "test-backends.h"

#include <math.h>
#include <unistd.h>

#define FLT ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
#define U8 ONNX__TENSOR_PROTO__DATA_TYPE__UINT8
#define S8 ONNX__TENSOR_PROTO__DATA_TYPE__INT8
#define I32T ONNX__TENSOR_PROTO__DATA_TYPE__INT32


/* Writes and loads b (then frees it): 0 or the load error (message in err). */
static int load(ob_model *b, const char *name, gg_model **m, char *err, size_t errlen) {
  const char *p = ob_tmp_path("gg-onnx-quant", name);
  int rc = ob_write(b, p, 0) ? GG_EIO : gg_model_load(p, m, err, errlen);
  ob_free(b);
  unlink(p);
  return rc;
}

/* What a case feeds and expects. Inputs: float or int32 values (the
 * session holds every integer type as int32). Outputs: int32 values, or
 * floats compared within ftol (NaN-safe). */
typedef struct qio {
  int n_in;
  const int64_t *shape[4];
  int nd[4];
  const void *in[4];
  size_t in_bytes[4];
  int n_out;
  const void *want[8];
  int is_f32[8];
  int64_t n[8];
  double ftol;
} qio;

/* Runs m on every backend that opened; 0, or -1 after printing the first
 * difference (backend, output, index). */
static int run_check(gg_model *m, const char *what, const qio *io) {
  int bad = 0;
  for (int b = 0; b < N_BE && !bad; b++) {
    if (g_be[b].spec && !g_be[b].pool) continue;
    gg_session_opts o = {2, g_be[b].be, 0};
    gg_session *s = NULL;
    char err[512] = "";
    int rc = gg_session_new_shapes(m, io->n_in, io->shape, io->nd, &o, g_be[b].pool, &s, err,
                                   sizeof err);
    for (int i = 0; !rc && i < io->n_in; i++)
      memcpy(gg_session_input_data(s, i, NULL), io->in[i], io->in_bytes[i]);
    if (!rc) rc = gg_session_run(s, err, sizeof err);
    if (rc) {
      fprintf(stderr, "  %s on %s: %s\n", what, g_be[b].name, err);
      gg_session_free(s);
      return -1;
    }
    for (int k = 0; k < io->n_out && !bad; k++) {
      gg_tensor_info ti;
      const void *y = gg_session_output_data(s, k, &ti);
      if (gg_session_output_elems(s, k) != io->n[k] ||
          ti.dtype != (io->is_f32[k] ? GG_TENSOR_F32 : GG_TENSOR_I32)) {
        fprintf(stderr, "  %s on %s: output %d has %lld values of type %d\n", what, g_be[b].name, k,
                (long long)gg_session_output_elems(s, k), (int)ti.dtype);
        bad = 1;
      }
      for (int64_t i = 0; !bad && i < io->n[k]; i++) {
        if (io->is_f32[k]) {
          float g = ((const float *)y)[i], w = ((const float *)io->want[k])[i];
          if (!gg_t_near(g, w, io->ftol * (1 + fabs(w)))) {
            fprintf(stderr, "  %s on %s: output %d [%lld] = %.9g, expected %.9g\n", what,
                    g_be[b].name, k, (long long)i, g, w);
            bad = 1;
          }
        } else if (((const int32_t *)y)[i] != ((const int32_t *)io->want[k])[i]) {
          fprintf(stderr, "  %s on %s: output %d [%lld] = %d, expected %d\n", what, g_be[b].name, k,
                  (long long)i, ((const int32_t *)y)[i], ((const int32_t *)io->want[k])[i]);
          bad = 1;
        }
      }
    }
    gg_session_free(s);
  }
  return bad ? -1 : 0;
}

/* ------------------------------------------------------------ references */

/* Round half to even, spelled out (the kernels call rintf). */
static float rne(float v) {
  float r = floorf(v), d = v - r;
  if (d > 0.5f || (d == 0.5f && fmodf(r, 2.0f) != 0.0f)) r += 1.0f;
  return r;
}

/* QuantizeLinear of one value: rne(x / s) + zp in [lo, hi]; NaN gives the
 * zero point. mul: x * s (the requantization of QLinearConv / MatMul). */
static int32_t ref_q(float x, float s, int32_t zp, int lo, int hi, int mul) {
  float q = mul ? x * s : x / s;
  double v = (q != q ? 0.0 : (double)rne(q)) + zp;
  return v < lo ? lo : v > hi ? hi : (int32_t)v;
}

/* DynamicQuantizeLinear, as ONNX's reference defines it. */
static void ref_dynamic(const float *x, int n, int32_t *y, float *scale, int32_t *zp) {
  float mn = 0.0f, mx = 0.0f;
  for (int i = 0; i < n; i++)
    mn = x[i] < mn ? x[i] : mn, mx = x[i] > mx ? x[i] : mx;
  float s = mx == mn ? 1.0f : (mx - mn) / 255.0f, z = 0.0f - mn / s;
  z = z < 0.0f ? 0.0f : z > 255.0f ? 255.0f : z;
  *scale = s, *zp = (int32_t)rne(z);
  for (int i = 0; i < n; i++)
    y[i] = ref_q(x[i], s, *zp, 0, 255, 0);
}

/* ------------------------------------------------------------ cases */

/* QuantizeLinear (uint8, int8, per axis, no zero point), DequantizeLinear
 * of its per-axis result, DynamicQuantizeLinear on four inputs (mixed
 * signs, all positive, all negative, all zeros). */
static void test_quantize_linear(void) {
  enum { C = 3, L = 8, N = C * L };
  float x[N], x2[4][N];
  for (int i = 0; i < N; i++)
    x[i] = (float)(i - 11) * 0.75f; /* x / 0.5: ties at every odd multiple of 0.25 */
  x[3] = NAN, x[5] = INFINITY, x[7] = -1e9f, x[20] = 1e9f, x[21] = 0.25f, x[22] = -0.25f;
  uint32_t seed = 5;
  for (int i = 0; i < N; i++) {
    seed = seed * 1664525u + 1013904223u;
    float r = (float)((seed >> 8) & 0xffff) / 8192.0f; /* 0 .. 8 */
    x2[0][i] = r - 3.0f, x2[1][i] = r + 0.5f, x2[2][i] = -r - 0.25f, x2[3][i] = 0.0f;
  }
  float s1 = 0.5f, s2 = 0.25f, sax[C] = {0.5f, 1.5f, 4.0f};
  uint8_t z1 = 128, zax[C] = {0, 10, 250};
  int8_t z2 = -3;
  ob_model b;
  ob_init(&b, 13);
  int64_t xd[2] = {C, L}, cd[1] = {C};
  ob_input(&b, "x", 2, xd);
  ob_input(&b, "x2", 2, xd);
  ob_init_f(&b, "s1", 0, NULL, &s1, 1);
  ob_init_raw(&b, "z1", U8, 0, NULL, &z1, 1);
  ob_init_f(&b, "s2", 0, NULL, &s2, 1);
  ob_init_raw(&b, "z2", S8, 0, NULL, &z2, 1);
  ob_init_f(&b, "sax", 1, cd, sax, C);
  ob_init_raw(&b, "zax", U8, 1, cd, zax, C);
  ob_node(&b, "QuantizeLinear", "q1", "x,s1,z1", "q1");
  ob_node(&b, "QuantizeLinear", "q2", "x,s2,z2", "q2");
  Onnx__NodeProto *n = ob_node(&b, "QuantizeLinear", "qax", "x,sax,zax", "qax");
  ob_attr_i(&b, n, "axis", 0);
  n = ob_node(&b, "DequantizeLinear", "dq", "qax,sax,zax", "dq");
  ob_attr_i(&b, n, "axis", -2);
  ob_node(&b, "QuantizeLinear", "q0", "x,s1", "q0");
  ob_node(&b, "DynamicQuantizeLinear", "dyn", "x2", "dy,dys,dyz");
  static const char *outs[] = {"q1", "q2", "qax", "dq", "q0", "dy", "dys", "dyz"};
  static const int types[] = {U8, S8, U8, FLT, U8, U8, FLT, U8};
  for (int k = 0; k < 8; k++) {
    ob_output(&b, outs[k]);
    b.outs[k]->type->tensor_type->elem_type = types[k];
  }
  gg_model *m = NULL;
  char err[512] = "";
  ASSERT_OK(load(&b, "quantize.onnx", &m, err, sizeof err));
  int32_t q1[N], q2[N], qax[N], q0[N], dy[N], dyz;
  float dq[N], dys;
  for (int i = 0; i < N; i++) {
    int c = i / L;
    q1[i] = ref_q(x[i], s1, z1, 0, 255, 0);
    q2[i] = ref_q(x[i], s2, z2, -128, 127, 0);
    qax[i] = ref_q(x[i], sax[c], zax[c], 0, 255, 0);
    dq[i] = (float)(qax[i] - zax[c]) * sax[c];
    q0[i] = ref_q(x[i], s1, 0, 0, 255, 0);
  }
  /* the references themselves: ties to even, saturation, NaN */
  ASSERT_EQ(q1[21], 128);  /* 0.25 / 0.5 = 0.5 -> 0 */
  ASSERT_EQ(q1[13], 131);  /* 1.5 / 0.5 = 3 */
  ASSERT_EQ(q1[12], 130);  /* 0.75 / 0.5 = 1.5 -> 2 */
  ASSERT_EQ(q1[14], 132);  /* 2.25 / 0.5 = 4.5 -> 4 */
  ASSERT_EQ(q1[3], 128);   /* NaN: the zero point */
  ASSERT_EQ(q1[5], 255);   /* +inf */
  ASSERT_EQ(q2[7], -128);  /* -1e9 */
  ASSERT_EQ(qax[20], 255); /* 1e9 */
  for (int v = 0; v < 4; v++) {
    ref_dynamic(x2[v], N, dy, &dys, &dyz);
    if (v == 3) ASSERT_TRUE(dys == 1.0f && dyz == 0);
    if (v == 1) ASSERT_EQ(dyz, 0);
    if (v == 2) ASSERT_EQ(dyz, 255);
    qio io = {2,
              {xd, xd},
              {2, 2},
              {x, x2[v]},
              {sizeof x, sizeof x2[v]},
              8,
              {q1, q2, qax, dq, q0, dy, &dys, &dyz},
              {0, 0, 0, 1, 0, 0, 1, 0},
              {N, N, N, N, N, N, 1, 1},
              0.0};
    char what[64];
    snprintf(what, sizeof what, "quantize (dynamic input %d)", v);
    if (run_check(m, what, &io)) {
      gg_model_free(m);
      GG_T_FAIL("%s", what);
    }
  }
  gg_model_free(m);
}

/* Integer convolution of x [C, H, W] (uint8 values less xz) with w [CO, C,
 * K, K] less wz[o], pad 1, stride st; + bias; into acc [CO, OH, OW]. */
static void ref_conv_int(const int32_t *x, int C, int H, int W, int32_t xz, const int32_t *w,
                         const int32_t *wz, int CO, int K, int st, const int32_t *bias,
                         int64_t *acc, int OH, int OW) {
  for (int o = 0; o < CO; o++)
    for (int oy = 0; oy < OH; oy++)
      for (int ox = 0; ox < OW; ox++) {
        int64_t a = bias ? bias[o] : 0;
        for (int c = 0; c < C; c++)
          for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
              int iy = oy * st - 1 + ky, ix = ox * st - 1 + kx;
              if (iy < 0 || ix < 0 || iy >= H || ix >= W) continue;
              a += (int64_t)(x[(c * H + iy) * W + ix] - xz) *
                   (w[((o * C + c) * K + ky) * K + kx] - wz[o]);
            }
        acc[(o * OH + oy) * OW + ox] = a;
      }
}

/* ConvInteger (its int32 output, and a Cast of it back to float: read from
 * the float accumulator), MatMulInteger with per-row and per-column zero
 * points, QLinearConv (int8 weights and output, per-channel scales, bias,
 * stride 2) and QLinearMatMul (per-column scales), all against integer
 * references. */
static void test_integer_ops(void) {
  enum { C = 2, H = 5, W = 5, CO = 3, K = 3, M = 3, KK = 4, NN = 5, OH2 = 3 };
  uint32_t seed = 11;
#define RND(lo, hi)                                                                                \
  (seed = seed * 1664525u + 1013904223u,                                                           \
   (int32_t)((seed >> 8) % (uint32_t)((hi) - (lo) + 1)) + (lo))
  int32_t x[C * H * W], a[M * KK];
  for (int i = 0; i < C * H * W; i++)
    x[i] = RND(0, 255);
  x[0] = 0, x[1] = 255;
  for (int i = 0; i < M * KK; i++)
    a[i] = RND(0, 255);
  uint8_t wu[CO * C * K * K], wzu[CO] = {0, 128, 255}, xz = 7, azu[M] = {1, 2, 200}, b8u[KK * NN],
                              bz8u[NN] = {0, 3, 128, 250, 255}, az1 = 3, yz_m = 100;
  int8_t ws8[CO * C * K * K], bm[KK * NN], bzi[NN] = {-128, -1, 0, 5, 127}, wz8[CO] = {0, 0, 0},
                                           yz_c = -5;
  for (size_t i = 0; i < sizeof wu; i++)
    wu[i] = (uint8_t)RND(0, 255), ws8[i] = (int8_t)RND(-128, 127);
  for (size_t i = 0; i < sizeof bm; i++)
    bm[i] = (int8_t)RND(-128, 127), b8u[i] = (uint8_t)RND(0, 255);
  int32_t bias[CO] = {-80000, 0, 40000};
  float xs = 0.02f, wsc[CO] = {0.01f, 0.003f, 0.05f}, ys = 0.1f, as = 0.05f,
        bsc[NN] = {0.01f, 0.02f, 0.004f, 0.1f, 0.03f}, ysm = 0.3f;
#undef RND
  ob_model b;
  ob_init(&b, 13);
  int64_t xd[4] = {1, C, H, W}, ad[2] = {M, KK}, wd[4] = {CO, C, K, K}, cod[1] = {CO},
          bd[2] = {KK, NN}, nd[1] = {NN}, md[1] = {M};
  ob_input_t(&b, "x", U8, 4, xd);
  ob_input_t(&b, "a", U8, 2, ad);
  ob_init_raw(&b, "w", U8, 4, wd, wu, sizeof wu);
  ob_init_raw(&b, "wz", U8, 1, cod, wzu, sizeof wzu);
  ob_init_raw(&b, "xz", U8, 0, NULL, &xz, 1);
  ob_init_raw(&b, "bm", S8, 2, bd, bm, sizeof bm);
  ob_init_raw(&b, "az", U8, 1, md, azu, sizeof azu);
  ob_init_raw(&b, "bz", S8, 1, nd, bzi, sizeof bzi);
  ob_init_f(&b, "xs", 0, NULL, &xs, 1);
  ob_init_raw(&b, "wq", S8, 4, wd, ws8, sizeof ws8);
  ob_init_f(&b, "wsc", 1, cod, wsc, CO);
  ob_init_raw(&b, "wz8", S8, 1, cod, wz8, sizeof wz8);
  ob_init_f(&b, "ys", 0, NULL, &ys, 1);
  ob_init_raw(&b, "yz", S8, 0, NULL, &yz_c, 1);
  ob_init_raw(&b, "bias", I32T, 1, cod, bias, sizeof bias);
  ob_init_f(&b, "as", 0, NULL, &as, 1);
  ob_init_raw(&b, "az1", U8, 0, NULL, &az1, 1);
  ob_init_raw(&b, "b8", U8, 2, bd, b8u, sizeof b8u);
  ob_init_f(&b, "bs", 1, nd, bsc, NN);
  ob_init_raw(&b, "bz8", U8, 1, nd, bz8u, sizeof bz8u);
  ob_init_f(&b, "ysm", 0, NULL, &ysm, 1);
  ob_init_raw(&b, "yzm", U8, 0, NULL, &yz_m, 1);
  int64_t pads[4] = {1, 1, 1, 1}, st2[2] = {2, 2};
  Onnx__NodeProto *n = ob_node(&b, "ConvInteger", "ci", "x,w,xz,wz", "ci");
  ob_attr_ints(&b, n, "pads", 4, pads);
  n = ob_node(&b, "Cast", "cif", "ci", "cif");
  ob_attr_i(&b, n, "to", FLT);
  ob_node(&b, "MatMulInteger", "mi", "a,bm,az,bz", "mi");
  n = ob_node(&b, "QLinearConv", "qc", "x,xs,xz,wq,wsc,wz8,ys,yz,bias", "qc");
  ob_attr_ints(&b, n, "pads", 4, pads);
  ob_attr_ints(&b, n, "strides", 2, st2);
  ob_node(&b, "QLinearMatMul", "qm", "a,as,az1,b8,bs,bz8,ysm,yzm", "qm");
  static const char *outs[] = {"ci", "cif", "mi", "qc", "qm"};
  static const int types[] = {I32T, FLT, I32T, S8, U8};
  for (int k = 0; k < 5; k++) {
    ob_output(&b, outs[k]);
    b.outs[k]->type->tensor_type->elem_type = types[k];
  }
  gg_model *m = NULL;
  char err[512] = "";
  ASSERT_OK(load(&b, "integer.onnx", &m, err, sizeof err));

  /* The Cast back to float is gone: it reads ConvInteger's accumulator. */
  const gg_graph *g = gg__model_graph(m);
  for (int i = 0; i < g->n_order; i++)
    ASSERT_TRUE(strcmp(g->nodes[g->order[i]].src_op, "Cast") != 0);

  int32_t w32[CO * C * K * K], wq32[CO * C * K * K], wz32[CO], zero[CO] = {0, 0, 0};
  for (int i = 0; i < CO * C * K * K; i++)
    w32[i] = wu[i], wq32[i] = ws8[i];
  for (int i = 0; i < CO; i++)
    wz32[i] = wzu[i];
  int64_t acc[CO * H * W], acc2[CO * OH2 * OH2];
  int32_t ci[CO * H * W], mi[M * NN], qc[CO * OH2 * OH2], qm[M * NN];
  float cif[CO * H * W];
  ref_conv_int(x, C, H, W, xz, w32, wz32, CO, K, 1, NULL, acc, H, W);
  for (int i = 0; i < CO * H * W; i++)
    ci[i] = (int32_t)acc[i], cif[i] = (float)acc[i];
  ref_conv_int(x, C, H, W, xz, wq32, zero, CO, K, 2, bias, acc2, OH2, OH2);
  for (int o = 0; o < CO; o++) {
    float mul = xs * wsc[o];
    mul = mul / ys;
    for (int i = 0; i < OH2 * OH2; i++)
      qc[o * OH2 * OH2 + i] = ref_q((float)acc2[o * OH2 * OH2 + i], mul, yz_c, -128, 127, 1);
  }
  for (int r = 0; r < M; r++)
    for (int c = 0; c < NN; c++) {
      int64_t s = 0, s8 = 0;
      for (int k = 0; k < KK; k++) {
        s += (int64_t)(a[r * KK + k] - azu[r]) * (bm[k * NN + c] - bzi[c]);
        s8 += (int64_t)(a[r * KK + k] - az1) * (b8u[k * NN + c] - bz8u[c]);
      }
      mi[r * NN + c] = (int32_t)s;
      float mul = as * bsc[c];
      mul = mul / ysm;
      qm[r * NN + c] = ref_q((float)s8, mul, yz_m, 0, 255, 1);
    }
  int sat = 0; /* the case reaches both ends of the int8 output */
  for (int i = 0; i < CO * OH2 * OH2; i++)
    sat |= (qc[i] == -128) | (qc[i] == 127) << 1;
  ASSERT_EQ(sat, 3);
  qio io = {2,
            {xd, ad},
            {4, 2},
            {x, a},
            {sizeof x, sizeof a},
            5,
            {ci, cif, mi, qc, qm},
            {0, 1, 0, 0, 0},
            {CO * H * W, CO * H * W, M * NN, CO * OH2 * OH2, M * NN},
            0.0};
  int bad = run_check(m, "integer ops", &io);
  gg_model_free(m);
  if (bad) GG_T_FAIL("integer ops");
}

/* The pattern of ONNX Runtime's quantize_dynamic around a Conv:
 * DynamicQuantizeLinear -> ConvInteger -> Cast to float -> Mul by x_scale *
 * w_scale -> Add of the bias reshaped to [1, C, 1, 1], against the same
 * arithmetic done here (an exact integer accumulator, then the float
 * multiply and add). The layout pass must leave only the transposes at the
 * model's input and output: the scales are one value each (they broadcast
 * the same in NHWC) and the bias becomes a constant at import. */
static void test_dynamic_pattern(void) {
  enum { C = 2, H = 6, W = 5, CO = 3, K = 3 };
  float x[C * H * W], ws = 0.0125f, bias[CO] = {0.5f, -1.25f, 2.0f};
  uint8_t w8[CO * C * K * K], wz = 131;
  uint32_t seed = 23;
  for (int i = 0; i < C * H * W; i++) {
    seed = seed * 1664525u + 1013904223u;
    x[i] = (float)((seed >> 8) & 0xffff) / 9000.0f - 2.5f;
  }
  for (int i = 0; i < CO * C * K * K; i++) {
    seed = seed * 1664525u + 1013904223u;
    w8[i] = (uint8_t)(seed >> 24);
  }
  ob_model b;
  ob_init(&b, 13);
  int64_t xd[4] = {1, C, H, W}, wd[4] = {CO, C, K, K}, cd[1] = {CO}, sd[1] = {4};
  int64_t shape4[4] = {1, CO, 1, 1}, pads[4] = {1, 1, 1, 1};
  ob_input(&b, "x", 4, xd);
  ob_init_raw(&b, "w", U8, 4, wd, w8, sizeof w8);
  ob_init_raw(&b, "wz", U8, 0, NULL, &wz, 1);
  ob_init_f(&b, "ws", 0, NULL, &ws, 1);
  ob_init_f(&b, "bias", 1, cd, bias, CO);
  ob_init_i64(&b, "bias_shape", 1, sd, shape4, 4);
  ob_node(&b, "DynamicQuantizeLinear", "dq", "x", "xq,xs,xz");
  Onnx__NodeProto *n = ob_node(&b, "ConvInteger", "conv", "xq,w,xz,wz", "acc");
  ob_attr_ints(&b, n, "pads", 4, pads);
  n = ob_node(&b, "Cast", "cast", "acc", "accf");
  ob_attr_i(&b, n, "to", FLT);
  ob_node(&b, "Mul", "scale", "xs,ws", "s");
  ob_node(&b, "Mul", "rescale", "accf,s", "r");
  ob_node(&b, "Reshape", "bias4", "bias,bias_shape", "b4");
  ob_node(&b, "Add", "add", "r,b4", "y");
  ob_output(&b, "y");
  gg_model *m = NULL;
  char err[512] = "";
  ASSERT_OK(load(&b, "dynamic.onnx", &m, err, sizeof err));
  int transposes = 0;
  const gg_graph *g = gg__model_graph(m);
  for (int i = 0; i < g->n_order; i++)
    transposes += g->nodes[g->order[i]].op == GG_OP_TRANSPOSE;
  ASSERT_EQ(transposes, 2);
  int32_t xq[C * H * W], xz, wq[CO * C * K * K], wzv[CO] = {wz, wz, wz};
  float xs;
  ref_dynamic(x, C * H * W, xq, &xs, &xz);
  for (int i = 0; i < CO * C * K * K; i++)
    wq[i] = w8[i];
  int64_t acc[CO * H * W];
  ref_conv_int(xq, C, H, W, xz, wq, wzv, CO, K, 1, NULL, acc, H, W);
  float y[CO * H * W], sc = xs * ws;
  for (int o = 0; o < CO; o++)
    for (int i = 0; i < H * W; i++)
      y[o * H * W + i] = (float)acc[o * H * W + i] * sc + bias[o];
  qio io = {1, {xd}, {4}, {x}, {sizeof x}, 1, {y}, {1}, {CO * H * W}, 0.0};
  int bad = run_check(m, "dynamic pattern", &io);
  gg_model_free(m);
  if (bad) GG_T_FAIL("dynamic pattern");
}

/* What is refused at load, naming the node. */
static void test_quant_refusals(void) {
  static const struct {
    const char *what, *op, *ins, *attr, *want;
    int zp_type;
  } k_cases[] = {
      {"blocked", "QuantizeLinear", "x,s,z", "block_size", "block_size", U8},
      {"float zero point", "QuantizeLinear", "x,s,zf", NULL, "float 8", U8},
      {"int32 zero point", "QuantizeLinear", "x,s,z", NULL, "INT32", I32T},
      {"computed weights", "ConvInteger", "xq,wq", NULL, "constant integers", U8},
      {"dequantize float", "DequantizeLinear", "x,s", NULL, "float 8", U8},
  };
  for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
    ob_model b;
    ob_init(&b, 21);
    int64_t xd[4] = {1, 1, 3, 3};
    float s = 0.5f, zf = 0.0f;
    int32_t z = 0;
    ob_input(&b, "x", 4, xd);
    ob_init_f(&b, "s", 0, NULL, &s, 1);
    ob_init_f(&b, "zf", 0, NULL, &zf, 1);
    ob_init_raw(&b, "z", k_cases[i].zp_type, 0, NULL, &z, k_cases[i].zp_type == I32T ? 4 : 1);
    if (!strcmp(k_cases[i].op, "ConvInteger")) { /* weights from a node: not constant */
      ob_node(&b, "QuantizeLinear", "qx", "x,s,z", "xq");
      ob_node(&b, "QuantizeLinear", "qw", "x,s,z", "wq");
    }
    Onnx__NodeProto *n = ob_node(&b, k_cases[i].op, "bad", k_cases[i].ins, "y");
    if (k_cases[i].attr) ob_attr_i(&b, n, k_cases[i].attr, 2);
    ob_output(&b, "y");
    gg_model *m = NULL;
    char err[512] = "";
    int rc = load(&b, "refused.onnx", &m, err, sizeof err);
    gg_model_free(m);
    if (rc != GG_EUNSUPPORTED || !strstr(err, "'bad'") || !strstr(err, k_cases[i].want))
      GG_T_FAIL("%s: rc %s, error '%s' (expected GG_EUNSUPPORTED naming the node and '%s')",
                k_cases[i].what, gg_err_name(rc), err, k_cases[i].want);
  }
}

/* Runs m (one float input x, 1 x 4 x 8 x 8) on backend be (on pool's
 * device when pool is not NULL); out gets output k (n floats). */
static void run_resize(gg_model *m, gg_engine_backend be, gg_pool *pool, const float *x, int k,
                       float *out, int64_t n) {
  int64_t xd[4] = {1, 4, 8, 8};
  const int64_t *sh[1] = {xd};
  int nd[1] = {4};
  gg_session_opts o = {1, be, 0};
  gg_session *s = NULL;
  char err[512] = "";
  if (gg_session_new_shapes(m, 1, sh, nd, &o, pool, &s, err, sizeof err))
    GG_T_FAIL("session: %s", err);
  memcpy(gg_session_input(s, 0, NULL), x, 4 * 64 * sizeof *x);
  if (gg_session_run(s, err, sizeof err)) GG_T_FAIL("run: %s", err);
  ASSERT_EQ(gg_session_output_elems(s, k), n);
  memcpy(out, gg_session_output_data(s, k, NULL), (size_t)n * sizeof *out);
  gg_session_free(s);
}

/* A quantized graph's bilinear Resize runs the reference kernel (ONNX
 * Runtime's formula) on every CPU backend: XNNPACK rounds the last bit
 * differently, which 8-bit rounding turns into whole steps. The same
 * Resize in a float graph stays on XNNPACK; the case first shows that
 * XNNPACK's result differs from the reference on this input (else it
 * cannot tell the two apart, and says so). */
static void test_quantized_resize(void) {
  enum { NY = 4 * 16 * 16 };
  float x[4 * 64], ref[NY], got[NY];
  uint32_t seed = 3;
  for (int i = 0; i < 4 * 64; i++) {
    seed = seed * 1664525u + 1013904223u;
    x[i] = (float)((seed >> 8) & 0xffffff) / 1677721.6f - 5.0f;
  }
  for (int quantized = 0; quantized < 2; quantized++) {
    ob_model b;
    ob_init(&b, 13);
    int64_t xd[4] = {1, 4, 8, 8}, sd[1] = {4};
    float sc[4] = {1.0f, 1.0f, 2.0f, 2.0f};
    ob_input(&b, "x", 4, xd);
    ob_init_f(&b, "scales", 1, sd, sc, 4);
    Onnx__NodeProto *n = ob_node(&b, "Resize", "rs", "x,,scales", "r");
    ob_attr_s(&b, n, "mode", "linear");
    ob_output(&b, "r");
    if (quantized) {
      ob_node(&b, "DynamicQuantizeLinear", "dq", "r", "y,ys,yz");
      ob_output(&b, "y");
      b.outs[1]->type->tensor_type->elem_type = U8;
    }
    gg_model *m = NULL;
    char err[512] = "";
    ASSERT_OK(load(&b, "resize.onnx", &m, err, sizeof err));
    run_resize(m, GG_ENGINE_NAIVE, NULL, x, 0, ref, NY);
    run_resize(m, GG_ENGINE_AUTO, NULL, x, 0, got, NY);
    int differ = memcmp(ref, got, sizeof ref) != 0;
#ifdef GG_HAVE_XNNPACK
    if (!quantized && !differ) printf("  (XNNPACK's resize equals the reference on this input)\n");
#endif
    if (quantized) ASSERT_TRUE(!differ);
    /* the devices likewise (kx-ops.c: a device Resize or Div declines a
     * quantized graph's nodes) */
    for (int d = 0; d < N_BE; d++) {
      if (!g_be[d].pool) continue;
      run_resize(m, GG_ENGINE_AUTO, g_be[d].pool, x, 0, got, NY);
      differ = memcmp(ref, got, sizeof ref) != 0;
      if (!quantized && !differ)
        printf("  (%s's resize equals the reference on this input)\n", g_be[d].name);
      if (quantized && differ) GG_T_FAIL("%s: the quantized graph's Resize differs", g_be[d].name);
    }
    gg_model_free(m);
  }
}

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_ERROR);
  open_devices();
  static const gg_test_case cases[] = {
      {"quantize_linear", test_quantize_linear},   {"integer_ops", test_integer_ops},
      {"dynamic_pattern", test_dynamic_pattern},   {"refusals", test_quant_refusals},
      {"quantized_resize", test_quantized_resize}, {0},
  };
  int rc = gg_test_main(argc, argv, cases);
  close_devices();
  return ob_tmp_cleanup(rc);
}

#else
int main(void) {
  printf("SKIP: built without ONNX import (libprotobuf-c-dev, protobuf-c-compiler, libonnx-dev)\n");
  return 0;
}
#endif
