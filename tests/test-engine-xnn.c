/* XNNPACK against the naive kernels, op by op, through the engine's own
 * executor: each case is a one-op TF.js model (JSON + weights built here)
 * run by a naive session and an XNNPACK session on the same random input.
 * Each case also checks the op really ran on XNNPACK, so a silent fallback
 * to the naive kernel cannot pass. fusion_vs_unfused builds small multi-op
 * graphs the same way to check each graph rewrite, and its guards. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "engine/xnn.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "test.h"

#include <stdint.h>

typedef struct cdef {
  const char *name;
  int ndim;
  int64_t shape[4];
  int is_int;
  const int32_t *ints; /* for int consts; float consts are random */
} cdef;

static uint8_t g_bin[1 << 20];
static size_t g_bin_len;
static uint64_t g_rng = 1234567;

static float frand(void) {
  g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((g_rng >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

static int mem_reader(void *user, const char *path, uint8_t **data, size_t *len, char *err,
                      size_t errlen) {
  (void)user, (void)path, (void)err, (void)errlen;
  *data = malloc(g_bin_len + 1);
  if (!*data) return GG_ENOMEM;
  memcpy(*data, g_bin, g_bin_len);
  *len = g_bin_len;
  return 0;
}

/* Builds a model: Placeholder "x" of in_shape, the consts, and `node`
 * (a JSON object text for one node named "y"). */
static int build(const int64_t *in_shape, int in_ndim, const cdef *c, int nc, const char *node,
                 gg_model **out) {
  static char json[16384];
  size_t o = 0;
  o += (size_t)snprintf(json + o, sizeof json - o,
                        "{\"format\":\"graph-model\",\"modelTopology\":{\"node\":[{\"name\":\"x\","
                        "\"op\":\"Placeholder\",\"attr\":{\"shape\":{\"shape\":{\"dim\":[");
  for (int d = 0; d < in_ndim; d++)
    o += (size_t)snprintf(json + o, sizeof json - o, "%s{\"size\":\"%lld\"}", d ? "," : "", (long long)in_shape[d]);
  o += (size_t)snprintf(json + o, sizeof json - o, "]}}}}");
  for (int i = 0; i < nc; i++)
    o += (size_t)snprintf(json + o, sizeof json - o, ",{\"name\":\"%s\",\"op\":\"Const\"}", c[i].name);
  o += (size_t)snprintf(json + o, sizeof json - o, ",%s]},\"weightsManifest\":[{\"paths\":[\"w.bin\"],\"weights\":[", node);
  g_bin_len = 0;
  for (int i = 0; i < nc; i++) {
    int64_t n = 1;
    o += (size_t)snprintf(json + o, sizeof json - o, "%s{\"name\":\"%s\",\"dtype\":\"%s\",\"shape\":[", i ? "," : "",
                          c[i].name, c[i].is_int ? "int32" : "float32");
    for (int d = 0; d < c[i].ndim; d++) {
      o += (size_t)snprintf(json + o, sizeof json - o, "%s%lld", d ? "," : "", (long long)c[i].shape[d]);
      n *= c[i].shape[d];
    }
    o += (size_t)snprintf(json + o, sizeof json - o, "]}");
    for (int64_t k = 0; k < n; k++) {
      if (c[i].is_int) memcpy(g_bin + g_bin_len, &c[i].ints[k], 4);
      else {
        float f = frand() * 0.5f;
        memcpy(g_bin + g_bin_len, &f, 4);
      }
      g_bin_len += 4;
    }
  }
  o += (size_t)snprintf(json + o, sizeof json - o, "]}]}");
  gg_graph *g = NULL;
  char err[512];
  int rc = gg__tfjs_import(json, o, "case.json", mem_reader, NULL, &g, err, sizeof err);
  if (rc) {
    fprintf(stderr, "  import: %s: %s\n", gg_err_name(rc), err);
    return rc;
  }
  return gg__model_from_graph(g, "case.json", out);
}

/* Runs naive and XNNPACK sessions; returns max relative error or -1. */
static double compare(gg_model *m, int threads, int *on_xnn) {
  gg_session *a = NULL, *b = NULL;
  gg_session_opts on = {1, GG_ENGINE_NAIVE, 0}, ox = {threads, GG_ENGINE_XNNPACK, 0};
  char err[512];
  if (gg_session_new(m, NULL, 0, &on, &a, err, sizeof err)) {
    fprintf(stderr, "  naive session: %s\n", err);
    return -1;
  }
  if (gg_session_new(m, NULL, 0, &ox, &b, err, sizeof err)) {
    fprintf(stderr, "  xnn session: %s\n", err);
    gg_session_free(a);
    return -1;
  }
  gg_tensor_info ii;
  float *ia = gg_session_input(a, 0, &ii), *ib = gg_session_input(b, 0, NULL);
  int64_t n = 1;
  for (int d = 0; d < ii.ndim; d++) n *= ii.shape[d];
  /* Inputs in [-8, 8): beyond ReLU6's upper clamp, so a wrong clamp shows. */
  for (int64_t k = 0; k < n; k++) ia[k] = ib[k] = frand() * 8.0f;
  double e = -1;
  if (!gg_session_run(a, err, sizeof err) && !gg_session_run(b, err, sizeof err)) {
    e = 0;
    int64_t ne = gg_session_output_elems(a, 0);
    const float *x = gg_session_output(a, 0, NULL), *y = gg_session_output(b, 0, NULL);
    for (int64_t k = 0; k < ne; k++) {
      double d = fabs((double)x[k] - y[k]) / fmax(1.0, fabs((double)x[k]));
      e = gg_t_max_err(e, d);
    }
  }
  gg_engine_mem mem;
  gg_session_memory(b, &mem);
  *on_xnn = mem.n_ops_xnnpack;
  gg_session_free(a);
  gg_session_free(b);
  return e;
}

#define ATTR_SAME "\"padding\":{\"s\":\"U0FNRQ==\"}"
#define ATTR_VALID "\"padding\":{\"s\":\"VkFMSUQ=\"}"
#define STRIDE2 "\"strides\":{\"list\":{\"i\":[\"1\",\"2\",\"2\",\"1\"]}}"
#define STRIDE1 "\"strides\":{\"list\":{\"i\":[\"1\",\"1\",\"1\",\"1\"]}}"
#define BIAS_RELU "\"num_args\":{\"i\":\"1\"},\"fused_ops\":{\"list\":{\"s\":[\"Qmlhc0FkZA==\",\"UmVsdQ==\"]}}"
#define BIAS_RELU6 "\"num_args\":{\"i\":\"1\"},\"fused_ops\":{\"list\":{\"s\":[\"Qmlhc0FkZA==\",\"UmVsdTY=\"]}}"
#define BIAS_ONLY "\"num_args\":{\"i\":\"1\"},\"fused_ops\":{\"list\":{\"s\":[\"Qmlhc0FkZA==\"]}}"

typedef struct xcase {
  const char *what;
  int in_ndim;
  int64_t in_shape[4];
  int nc;
  cdef c[3];
  const char *node;
} xcase;

static const int32_t k_axes12[2] = {1, 2}, k_size[2] = {9, 4}, k_pads[8] = {0, 0, 1, 2, 2, 1, 0, 0};

#define NODE(op, inputs, attrs) "{\"name\":\"y\",\"op\":\"" op "\",\"input\":[" inputs "],\"attr\":{" attrs "}}"

static const xcase k_cases[] = {
    {"conv SAME s2 bias relu", 4, {1, 9, 9, 8}, 2, {{"w", 4, {3, 3, 8, 16}, 0, NULL}, {"b", 1, {16}, 0, NULL}},
     NODE("_FusedConv2D", "\"x\",\"w\",\"b\"", ATTR_SAME "," STRIDE2 "," BIAS_RELU)},
    {"conv VALID 1x1", 4, {1, 7, 7, 8}, 1, {{"w", 4, {1, 1, 8, 12}, 0, NULL}},
     NODE("Conv2D", "\"x\",\"w\"", ATTR_VALID "," STRIDE1)},
    {"conv VALID 3x3 s2 bias", 4, {1, 10, 10, 3}, 2, {{"w", 4, {3, 3, 3, 8}, 0, NULL}, {"b", 1, {8}, 0, NULL}},
     NODE("_FusedConv2D", "\"x\",\"w\",\"b\"", ATTR_VALID "," STRIDE2 "," BIAS_ONLY)},
    {"depthwise SAME s2", 4, {1, 9, 9, 8}, 1, {{"w", 4, {3, 3, 8, 1}, 0, NULL}},
     NODE("DepthwiseConv2dNative", "\"x\",\"w\"", ATTR_SAME "," STRIDE2)},
    {"depthwise x2 VALID bias relu6", 4, {1, 6, 6, 4}, 2, {{"w", 4, {3, 3, 4, 2}, 0, NULL}, {"b", 1, {8}, 0, NULL}},
     NODE("FusedDepthwiseConv2dNative", "\"x\",\"w\",\"b\"", ATTR_VALID "," STRIDE1 "," BIAS_RELU6)},
    {"matmul bias relu", 2, {3, 64}, 2, {{"w", 2, {64, 10}, 0, NULL}, {"b", 1, {10}, 0, NULL}},
     NODE("_FusedMatMul", "\"x\",\"w\",\"b\"", BIAS_RELU)},
    {"matmul transpose_b", 2, {2, 32}, 1, {{"w", 2, {10, 32}, 0, NULL}},
     NODE("MatMul", "\"x\",\"w\"", "\"transpose_b\":{\"b\":true}")},
    {"maxpool SAME 3x3 s2", 4, {1, 9, 9, 4}, 0, {{0}},
     NODE("MaxPool", "\"x\"", ATTR_SAME "," STRIDE2 ",\"ksize\":{\"list\":{\"i\":[\"1\",\"3\",\"3\",\"1\"]}}")},
    {"maxpool VALID 2x2 s2", 4, {1, 8, 8, 4}, 0, {{0}},
     NODE("MaxPool", "\"x\"", ATTR_VALID "," STRIDE2 ",\"ksize\":{\"list\":{\"i\":[\"1\",\"2\",\"2\",\"1\"]}}")},
    {"add broadcast", 4, {1, 5, 5, 8}, 1, {{"b", 1, {8}, 0, NULL}}, NODE("AddV2", "\"x\",\"b\"", "")},
    {"mul same shape", 4, {1, 5, 5, 8}, 1, {{"b", 4, {1, 5, 5, 8}, 0, NULL}}, NODE("Mul", "\"x\",\"b\"", "")},
    {"sub scalar", 4, {1, 5, 5, 8}, 1, {{"b", 0, {0}, 0, NULL}}, NODE("Sub", "\"x\",\"b\"", "")},
    {"maximum", 4, {1, 5, 5, 8}, 1, {{"b", 1, {8}, 0, NULL}}, NODE("Maximum", "\"x\",\"b\"", "")},
    {"minimum", 4, {1, 5, 5, 8}, 1, {{"b", 1, {8}, 0, NULL}}, NODE("Minimum", "\"x\",\"b\"", "")},
    {"relu", 4, {1, 5, 5, 8}, 0, {{0}}, NODE("Relu", "\"x\"", "")},
    {"relu6", 4, {1, 5, 5, 8}, 0, {{0}}, NODE("Relu6", "\"x\"", "")},
    {"leaky relu", 4, {1, 5, 5, 8}, 0, {{0}}, NODE("LeakyRelu", "\"x\"", "\"alpha\":{\"f\":0.1}")},
    {"sigmoid", 4, {1, 5, 5, 8}, 0, {{0}}, NODE("Sigmoid", "\"x\"", "")},
    {"abs", 4, {1, 5, 5, 8}, 0, {{0}}, NODE("Abs", "\"x\"", "")},
    {"square", 4, {1, 5, 5, 8}, 0, {{0}}, NODE("Square", "\"x\"", "")},
    {"softmax", 2, {2, 100}, 0, {{0}}, NODE("Softmax", "\"x\"", "")},
    {"resize legacy", 4, {1, 5, 7, 3}, 1, {{"s", 1, {2}, 1, k_size}}, NODE("ResizeBilinear", "\"x\",\"s\"", "")},
    {"resize half pixel", 4, {1, 5, 7, 3}, 1, {{"s", 1, {2}, 1, k_size}},
     NODE("ResizeBilinear", "\"x\",\"s\"", "\"half_pixel_centers\":{\"b\":true}")},
    {"resize align corners", 4, {1, 5, 7, 3}, 1, {{"s", 1, {2}, 1, k_size}},
     NODE("ResizeBilinear", "\"x\",\"s\"", "\"align_corners\":{\"b\":true}")},
    {"pad", 4, {1, 4, 4, 3}, 1, {{"p", 2, {4, 2}, 1, k_pads}}, NODE("Pad", "\"x\",\"p\"", "")},
    {"mean over h,w", 4, {1, 5, 5, 16}, 1, {{"a", 1, {2}, 1, k_axes12}}, NODE("Mean", "\"x\",\"a\"", "")},
};

static void test_ops_xnn_vs_naive(void) {
  if (!gg_xnn_available()) SKIP("XNNPACK not in this build");
  for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
    const xcase *c = &k_cases[i];
    for (int threads = 1; threads <= 2; threads++) {
      gg_model *m = NULL;
      int rc = build(c->in_shape, c->in_ndim, c->c, c->nc, c->node, &m);
      if (rc) GG_T_FAIL("%s: build failed: %s", c->what, gg_err_name(rc));
      int on_xnn = 0;
      double e = compare(m, threads, &on_xnn);
      if (threads == 1) fprintf(stderr, "  %-30s max rel err %.3g (%d op on XNNPACK)\n", c->what, e, on_xnn);
      gg_model_free(m);
      if (!(e >= 0 && e <= 1e-4)) GG_T_FAIL("%s (%d threads): xnn vs naive error %g", c->what, threads, e);
      if (on_xnn != 1) GG_T_FAIL("%s: expected the op on XNNPACK, %d ops were", c->what, on_xnn);
    }
  }
}

/* ------------------------------------------------------------ fusion */

/* Graph rewrites on small graphs built for them: each runs fused and unfused
 * (naive kernels, same weights, same input) and must give the same outputs.
 * The four real models exercise only some rules (test-engine's
 * fusion_preserves_results); these also cover the conditions under which a
 * rule must NOT fire (a second reader, an existing bias, a non-zero pad). */
#define NODEN(name, op, inputs, attrs)                                                             \
  "{\"name\":\"" name "\",\"op\":\"" op "\",\"input\":[" inputs "],\"attr\":{" attrs "}}"
#define CONV_VALID(name, in, w) NODEN(name, "Conv2D", in "," w, ATTR_VALID "," STRIDE1)
#define CONV_BIAS(name, in)                                                                        \
  NODEN(name, "_FusedConv2D", in ",\"w\",\"b\"", ATTR_VALID "," STRIDE1 "," BIAS_ONLY)

typedef struct fcase {
  const char *what;
  int nc;
  cdef c[3];
  const char *nodes;
  int must_fuse; /* 1: the fused graph must have fewer ops */
} fcase;

static const fcase k_fuse[] = {
    {"conv + relu6 fused",
     1,
     {{"w", 4, {3, 3, 4, 6}, 0, NULL}},
     CONV_VALID("c", "\"x\"", "\"w\"") "," NODEN("y", "Relu6", "\"c\"", ""),
     1},
    {"conv + leaky relu fused",
     1,
     {{"w", 4, {3, 3, 4, 6}, 0, NULL}},
     CONV_VALID("c", "\"x\"", "\"w\"") "," NODEN("y", "LeakyRelu", "\"c\"",
                                                 "\"alpha\":{\"f\":0.3}"),
     1},
    {"conv without bias + prelu kept apart",
     2,
     {{"w", 4, {3, 3, 4, 6}, 0, NULL}, {"a", 1, {6}, 0, NULL}},
     CONV_VALID("c", "\"x\"", "\"w\"") "," NODEN("y", "Prelu", "\"c\",\"a\"", ""),
     0},
    {"add + relu6 fused",
     1,
     {{"b", 1, {4}, 0, NULL}},
     NODEN("s", "AddV2", "\"x\",\"b\"", "") "," NODEN("y", "Relu6", "\"s\"", ""),
     1},
    {"conv read twice: relu not fused",
     1,
     {{"w", 4, {3, 3, 4, 6}, 0, NULL}},
     /* Abs comes first: the last reader seen is the Relu a wrong rule would absorb. */
     CONV_VALID("c", "\"x\"", "\"w\"") "," NODEN("z", "Abs", "\"c\"", "") ","
     NODEN("y", "Relu", "\"c\"", ""),
     0},
    {"biased conv * channels: not folded",
     3,
     {{"w", 4, {3, 3, 4, 6}, 0, NULL}, {"b", 1, {6}, 0, NULL}, {"m", 1, {6}, 0, NULL}},
     CONV_BIAS("c", "\"x\"") "," NODEN("y", "Mul", "\"c\",\"m\"", ""),
     0},
    {"biased conv + channels: not folded",
     3,
     {{"w", 4, {3, 3, 4, 6}, 0, NULL}, {"b", 1, {6}, 0, NULL}, {"m", 1, {6}, 0, NULL}},
     CONV_BIAS("c", "\"x\"") "," NODEN("y", "AddV2", "\"c\",\"m\"", ""),
     0},
    {"pad with a non-zero value: not folded",
     3,
     {{"p", 2, {4, 2}, 1, k_pads}, {"v", 0, {0}, 0, NULL}, {"w", 4, {3, 3, 4, 6}, 0, NULL}},
     NODEN("q", "PadV2", "\"x\",\"p\",\"v\"", "") "," CONV_VALID("y", "\"q\"", "\"w\""),
     0},
};

/* Runs m on the naive kernels with input from `seed`; the caller frees. */
static gg_session *run_naive(gg_model *m, uint64_t seed) {
  gg_session *s = NULL;
  gg_session_opts on = {1, GG_ENGINE_NAIVE, 0};
  char err[512];
  if (gg_session_new(m, NULL, 0, &on, &s, err, sizeof err)) {
    fprintf(stderr, "  naive session: %s\n", err);
    return NULL;
  }
  gg_tensor_info ii;
  float *in = gg_session_input(s, 0, &ii);
  int64_t n = 1;
  for (int d = 0; d < ii.ndim; d++)
    n *= ii.shape[d];
  g_rng = seed;
  for (int64_t k = 0; k < n; k++)
    in[k] = frand() * 8.0f; /* past ReLU6's clamp */
  if (gg_session_run(s, err, sizeof err)) {
    fprintf(stderr, "  run: %s\n", err);
    gg_session_free(s);
    return NULL;
  }
  return s;
}

static void test_fusion_vs_unfused(void) {
  static const int64_t in_shape[4] = {1, 6, 6, 4};
  for (size_t i = 0; i < sizeof k_fuse / sizeof k_fuse[0]; i++) {
    const fcase *c = &k_fuse[i];
    gg_model *mf = NULL, *mu = NULL;
    g_rng = 99; /* both graphs get the same weights */
    int rf = build(in_shape, 4, c->c, c->nc, c->nodes, &mf);
    g_rng = 99;
    gg__fuse_disabled = 1;
    int ru = build(in_shape, 4, c->c, c->nc, c->nodes, &mu);
    gg__fuse_disabled = 0;
    if (rf || ru) {
      gg_model_free(mf), gg_model_free(mu);
      GG_T_FAIL("%s: build failed: %s / %s", c->what, gg_err_name(rf), gg_err_name(ru));
    }
    int nf = gg_model_n_ops(mf), nu = gg_model_n_ops(mu);
    gg_session *a = run_naive(mf, 7), *b = run_naive(mu, 7);
    double e = a && b && gg_model_n_outputs(mf) == gg_model_n_outputs(mu) ? 0 : NAN;
    for (int k = 0; a && b && k < gg_model_n_outputs(mf); k++) {
      int64_t n = gg_session_output_elems(a, k);
      if (n != gg_session_output_elems(b, k) || n == 0) e = NAN;
      const float *x = gg_session_output(a, k, NULL), *y = gg_session_output(b, k, NULL);
      for (int64_t j = 0; j < n && n == gg_session_output_elems(b, k); j++)
        e = gg_t_max_err(e, fabs((double)x[j] - y[j]) / fmax(1.0, fabs((double)y[j])));
    }
    fprintf(stderr, "  %-38s %d ops fused, %d unfused, max rel diff %.3g\n", c->what, nf, nu, e);
    gg_session_free(a), gg_session_free(b);
    gg_model_free(mf), gg_model_free(mu);
    if (!(e <= 1e-5)) GG_T_FAIL("%s: fused and unfused graphs differ: %g", c->what, e);
    if (c->must_fuse && !(nf < nu)) GG_T_FAIL("%s: nothing was fused (%d ops)", c->what, nf);
  }
}

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_ERROR);
  static const gg_test_case cases[] = {
      {"ops_xnn_vs_naive", test_ops_xnn_vs_naive},
      {"fusion_vs_unfused", test_fusion_vs_unfused},
      {0},
  };
  return gg_test_main(argc, argv, cases);
}
