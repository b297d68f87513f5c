/* The CUDA compute backend (src/backend/cuda) against FAKE libcuda, libcudnn
 * and libcublas (tests/fixtures): host memory, not a GPU. The fakes compute
 * convolutions, pooling, softmax and SGEMM on the host pointers, so a
 * one-node model run on cuda:0 (fake) through the engine (buffers, uploads,
 * supports_node, algos, prepare, run_node, synchronize, downloads) is
 * compared with the naive kernels; the fake driver records kernel launches
 * (which compute nothing), so the epilogue and padding paths are checked by
 * their launch records. Also: dlopen failure paths, algorithm and workspace
 * choice for a budget (predicted == measured device bytes), an injected
 * CUDNN_STATUS_ALLOC_FAILED, CUBLAS_STATUS_ALLOC_FAILED, sticky launch
 * errors, a device reset, CUDA graph bookkeeping, and a bundled model.
 * Real-GPU behaviour comes from scripts/gpu-verify.sh. */
#include "engine/backend.h"
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/classify.h"
#include "gpuguard/device.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "gpuguard/memory.h"
#include "test.h"

#if GG_HAVE_CUDA_BACKEND
#include "backend/cuda/cu-impl.h"
#endif

#include <dlfcn.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef GG_FAKE_LIBCUDA
#define GG_FAKE_LIBCUDA ""
#define GG_FAKE_LIBCUDNN ""
#define GG_FAKE_LIBCUBLAS ""
#endif

#if GG_HAVE_CUDA_BACKEND

/* ---- one-op models (as test-engine-xnn builds them) ----------------------- */

typedef struct cdef {
  const char *name;
  int ndim;
  int64_t shape[4];
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

/* A model: Placeholder "x" of in_shape, float consts, and `nodes` (JSON). */
static gg_model *build(const int64_t *in_shape, int in_ndim, const cdef *c, int nc,
                       const char *nodes) {
  static char json[16384];
  size_t o = 0;
  o += (size_t)snprintf(json + o, sizeof json - o,
                        "{\"format\":\"graph-model\",\"modelTopology\":{\"node\":[{\"name\":\"x\","
                        "\"op\":\"Placeholder\",\"attr\":{\"shape\":{\"shape\":{\"dim\":[");
  for (int d = 0; d < in_ndim; d++)
    o += (size_t)snprintf(json + o, sizeof json - o, "%s{\"size\":\"%lld\"}", d ? "," : "",
                          (long long)in_shape[d]);
  o += (size_t)snprintf(json + o, sizeof json - o, "]}}}}");
  for (int i = 0; i < nc; i++)
    o += (size_t)snprintf(json + o, sizeof json - o, ",{\"name\":\"%s\",\"op\":\"Const\"}",
                          c[i].name);
  o += (size_t)snprintf(json + o, sizeof json - o,
                        ",%s]},\"weightsManifest\":[{\"paths\":[\"w.bin\"],\"weights\":[", nodes);
  g_bin_len = 0;
  for (int i = 0; i < nc; i++) {
    int64_t n = 1;
    o += (size_t)snprintf(json + o, sizeof json - o,
                          "%s{\"name\":\"%s\",\"dtype\":\"float32\",\"shape\":[", i ? "," : "",
                          c[i].name);
    for (int d = 0; d < c[i].ndim; d++) {
      o += (size_t)snprintf(json + o, sizeof json - o, "%s%lld", d ? "," : "",
                            (long long)c[i].shape[d]);
      n *= c[i].shape[d];
    }
    o += (size_t)snprintf(json + o, sizeof json - o, "]}");
    for (int64_t k = 0; k < n; k++) {
      float f = frand() * 0.5f;
      memcpy(g_bin + g_bin_len, &f, 4);
      g_bin_len += 4;
    }
  }
  o += (size_t)snprintf(json + o, sizeof json - o, "]}]}");
  gg_graph *g = NULL;
  gg_model *m = NULL;
  char err[512];
  int rc = gg__tfjs_import(json, o, "case.json", mem_reader, NULL, &g, err, sizeof err);
  if (!rc) rc = gg__model_from_graph(g, "case.json", &m);
  if (rc) fprintf(stderr, "  import: %s: %s\n", gg_err_name(rc), err);
  return m;
}

#define ATTR_SAME "\"padding\":{\"s\":\"U0FNRQ==\"}"
#define ATTR_VALID "\"padding\":{\"s\":\"VkFMSUQ=\"}"
#define STRIDE2 "\"strides\":{\"list\":{\"i\":[\"1\",\"2\",\"2\",\"1\"]}}"
#define STRIDE1 "\"strides\":{\"list\":{\"i\":[\"1\",\"1\",\"1\",\"1\"]}}"
#define BIAS_RELU                                                                                  \
  "\"num_args\":{\"i\":\"1\"},\"fused_ops\":{\"list\":{\"s\":[\"Qmlhc0FkZA==\",\"UmVsdQ==\"]}}"
#define KSIZE(k) "\"ksize\":{\"list\":{\"i\":[\"1\",\"" #k "\",\"" #k "\",\"1\"]}}"
#define NODE(name, op, inputs, attrs)                                                              \
  "{\"name\":\"" name "\",\"op\":\"" op "\",\"input\":[" inputs "],\"attr\":{" attrs "}}"

/* ---- fixture: the fake device, a pool per test ------------------------------ */

static gg_device *g_dev;
static void *g_fcuda, *g_fdnn, *g_fblas;

static int *fsym(void *lib, const char *name) {
  int *p = lib ? dlsym(lib, name) : NULL;
  if (!p) {
    fprintf(stderr, "  fake library has no %s\n", name);
    gg_t_failed_checks++;
  }
  static int zero;
  return p ? p : &zero;
}

/* 1 when cuda:0 (fake) is open and the backend registered, else 0 with a
 * SKIP reason. */
static int fixture(char *why, size_t len) {
  if (g_dev) return 1;
  if (!gg_backend_find("cuda")) {
    snprintf(why, len, "the cuda backend is not registered in this build");
    return 0;
  }
  int rc = gg_device_open("cuda:0", &g_dev);
  if (rc) {
    snprintf(why, len, "cannot open cuda:0 on the fake libcuda (%s)", gg_err_name(rc));
    return 0;
  }
  g_fcuda = dlopen(GG_FAKE_LIBCUDA, RTLD_NOW | RTLD_NOLOAD);
  return 1;
}

#define NEED_CUDA()                                                                                \
  do {                                                                                             \
    char why_[256];                                                                                \
    if (!fixture(why_, sizeof why_)) SKIP("%s", why_);                                             \
  } while (0)

static gg_pool *new_pool(uint64_t budget) {
  gg_pool *p = NULL;
  if (gg_pool_new(g_dev, NULL, &p)) return NULL;
  if (budget) gg_pool_set_budget(p, budget);
  return p;
}

static uint64_t pool_allocated(gg_pool *p) {
  gg_pool_stats st;
  memset(&st, 0, sizeof st);
  gg_pool_get_stats(p, &st);
  return st.allocated;
}

/* The fake libraries, once the backend has loaded them. */
static void *dnn(void) {
  if (!g_fdnn) g_fdnn = dlopen(GG_FAKE_LIBCUDNN, RTLD_NOW | RTLD_NOLOAD);
  return g_fdnn;
}
static void *blas(void) {
  if (!g_fblas) g_fblas = dlopen(GG_FAKE_LIBCUBLAS, RTLD_NOW | RTLD_NOLOAD);
  return g_fblas;
}

static void fill_input(gg_session *s, uint64_t seed) {
  gg_tensor_info ii;
  float *in = gg_session_input(s, 0, &ii);
  int64_t n = 1;
  for (int d = 0; d < ii.ndim; d++)
    n *= ii.shape[d];
  g_rng = seed;
  for (int64_t k = 0; k < n; k++)
    in[k] = frand() * 4.0f;
}

static void check_mem(gg_session *s, gg_pool *pool, uint64_t before) {
  gg_engine_mem mem;
  gg_session_memory(s, &mem);
  ASSERT_EQ(mem.n_devices, 2);
  ASSERT_U64_EQ(mem.dev[1].predicted, mem.dev[1].measured);
  ASSERT_U64_EQ(mem.dev[1].measured, pool_allocated(pool) - before);
}

/* A cuda session of m on pool; checks predicted == measured device bytes. */
static gg_session *cuda_session(gg_model *m, gg_pool *pool, char *err, size_t errlen) {
  gg_session *s = NULL;
  gg_session_opts o = {1, GG_ENGINE_NAIVE, 0};
  uint64_t before = pool_allocated(pool);
  int rc = gg_session_new_on(m, NULL, 0, &o, pool, &s, err, errlen);
  if (rc) return NULL;
  check_mem(s, pool, before);
  return s;
}

/* Max |cuda - naive| over output 0 and the tolerance 1e-3 * range. */
static double compare_naive(gg_model *m, gg_session *cs, double *tol) {
  gg_session *ns = NULL;
  gg_session_opts o = {1, GG_ENGINE_NAIVE, 0};
  char err[512];
  *tol = 0;
  if (gg_session_new(m, NULL, 0, &o, &ns, err, sizeof err)) return -1;
  fill_input(ns, 99);
  double e = -1;
  if (!gg_session_run(ns, err, sizeof err)) {
    int64_t n = gg_session_output_elems(ns, 0);
    const float *r = gg_session_output(ns, 0, NULL), *g = gg_session_output(cs, 0, NULL);
    double lo = 1e30, hi = -1e30;
    e = 0;
    for (int64_t k = 0; k < n; k++) {
      e = gg_t_max_err(e, fabs((double)r[k] - g[k]));
      lo = fmin(lo, r[k]), hi = fmax(hi, r[k]);
    }
    *tol = 1e-3 * (hi - lo) + 1e-6;
  }
  gg_session_free(ns);
  return e;
}

/* ---- dlopen failure paths (each in a fresh process: libraries load once) -- */

/* Child mode: open cuda:0, init the cuda backend and a session; print
 * "rc=<code> session=<code> err=<reason>". */
static int init_child(void) {
  gg_device *d = NULL;
  gg_pool *p = NULL;
  int rc = gg_device_open("cuda:0", &d);
  if (!rc) rc = gg_pool_new(d, NULL, &p);
  if (rc) {
    printf("rc=%d device\n", rc);
    return 0;
  }
  gg_backend *be = NULL;
  gg_backend_params bp = {d, p, 1, 1};
  char err[512] = "";
  rc = gg_backend_init_by_name("cuda", &bp, &be, err, sizeof err);
  gg_backend_free(be);
  static const int64_t shp[4] = {1, 6, 6, 4};
  cdef c[1] = {{"w", 4, {3, 3, 4, 8}}};
  gg_model *m = build(shp, 4, c, 1, NODE("y", "Conv2D", "\"x\",\"w\"", ATTR_VALID "," STRIDE1));
  gg_session *s = NULL;
  gg_session_opts o = {1, GG_ENGINE_NAIVE, 0};
  char serr[512] = "";
  int src = m ? gg_session_new_on(m, NULL, 0, &o, p, &s, serr, sizeof serr) : -999;
  int run = s ? gg_session_run(s, serr, sizeof serr) : -999;
  gg_session_free(s);
  gg_model_free(m);
  gg__cuda_libs l;
  gg__cuda_libs_probe(&l);
  gg__cuda_stats cs;
  gg__cuda_get_stats(&cs);
  printf("rc=%d session=%d cudnn=%d cublas=%d err=%s\nserr=%s\nrun=%d convs=%llu kx=%llu\n", rc,
         src, l.cudnn_loaded, l.cublas_loaded, err, serr, run, (unsigned long long)cs.cudnn_convs,
         (unsigned long long)cs.kx_nodes);
  gg_pool_free(p);
  gg_device_free(d);
  return 0;
}

static char *g_self;

/* Runs this binary in child mode with extra env "A=1 B=2 ..."; returns its
 * output (caller frees) and exit status. */
static char *child(const char *env, int *status) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "env %s '%s' --init-child 2>&1", env, g_self);
  FILE *f = popen(cmd, "r");
  if (!f) return NULL;
  char *buf = calloc(1, 8192);
  *status = -1;
  size_t n = buf ? fread(buf, 1, 8191, f) : 0;
  (void)n;
  int st = pclose(f);
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return buf;
}

static void test_dlopen_failures(void) {
  if (!g_self) SKIP("no path to this binary");
  int st = -1;
  /* the fakes load: init works, a session runs the conv on cuda */
  char *out = child("", &st);
  ASSERT_EQ(st, 0);
  ASSERT_CONTAINS(out, "rc=0 session=0 cudnn=1 cublas=1");
  free(out);
  /* no cuDNN at all: a broken install still computes on the device, the
   * convolution on gpuguard's own kernel, and the log says why */
  out = child("GPUGUARD_LIBCUDNN=/nonexistent/libcudnn.so.9", &st);
  ASSERT_EQ(st, 0);
  ASSERT_CONTAINS(out, "rc=0 session=0 cudnn=0 cublas=1");
  ASSERT_CONTAINS(out, "run=0 convs=0 kx=");
  if (strstr(out, "kx=0\n")) GG_T_FAIL("the convolution did not run on the kernels: %s", out);
  ASSERT_CONTAINS(out, "cannot load /nonexistent/libcudnn.so.9");
  ASSERT_CONTAINS(out, "set GPUGUARD_CUDNN_PATH");
  ASSERT_CONTAINS(out, "run on gpuguard's own CUDA kernels");
  free(out);
  /* a GPUGUARD_CUDNN_PATH folder without libcudnn.so.9 */
  out = child("GPUGUARD_LIBCUDNN= GPUGUARD_CUDNN_PATH=/tmp/gg-no-cudnn-here", &st);
  ASSERT_EQ(st, 0);
  ASSERT_CONTAINS(out, "cudnn=0");
  ASSERT_CONTAINS(out, "cannot load /tmp/gg-no-cudnn-here/libcudnn.so.9");
  free(out);
  /* GPUGUARD_CUDNN_PATH pointing at the folder that has it */
  char dir[512], env[1200];
  snprintf(dir, sizeof dir, "%s", GG_FAKE_LIBCUDNN);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = 0;
  snprintf(env, sizeof env, "GPUGUARD_LIBCUDNN= GPUGUARD_CUDNN_PATH='%s'", dir);
  out = child(env, &st);
  ASSERT_CONTAINS(out, "rc=0 session=0 cudnn=1");
  free(out);
  /* no cuBLAS: the same, for matrix products */
  out = child("GPUGUARD_LIBCUBLAS=/nonexistent/libcublas.so.13", &st);
  ASSERT_EQ(st, 0);
  ASSERT_CONTAINS(out, "rc=0 session=0 cudnn=1 cublas=0");
  ASSERT_CONTAINS(out, "cannot load /nonexistent/libcublas.so.13");
  ASSERT_CONTAINS(out, "matrix products run on gpuguard's own CUDA kernels");
  free(out);
  /* a library that is not cuDNN (no symbols): named, not a crash */
  snprintf(env, sizeof env, "GPUGUARD_LIBCUDNN='%s'", GG_FAKE_LIBCUBLAS);
  out = child(env, &st);
  ASSERT_EQ(st, 0);
  ASSERT_CONTAINS(out, "has no symbol cudnnGetVersion");
  free(out);
  /* cuDNN 8 is refused */
  out = child("FAKE_CUDNN_VERSION=8907", &st);
  ASSERT_CONTAINS(out, "gpuguard needs cuDNN 9");
  free(out);
}

static void test_probe(void) {
  NEED_CUDA();
  gg__cuda_libs l;
  gg__cuda_libs_probe(&l);
  ASSERT_EQ(l.cudnn_loaded, 1);
  ASSERT_EQ(l.cublas_loaded, 1);
  ASSERT_EQ(l.cudnn_version, 90100);
  ASSERT_EQ(l.cudnn_cudart_version, 13000);
  ASSERT_EQ(l.cublas_version, 130100);
  ASSERT_STREQ(l.cudnn_path, GG_FAKE_LIBCUDNN);
  /* doctor's validation: a real (fake-computed) convolution vs the host */
  char err[512];
  double e = -1;
  ASSERT_OK(gg__cuda_validate_conv(g_dev, err, sizeof err, &e));
  ASSERT_LE_F(e, 1e-4);
  ASSERT_CONTAINS(err, "matches the host");
  ASSERT_U64_EQ(gg_device_mem_in_use(g_dev), 0);
}

/* ---- numerics through the fake cuDNN / cuBLAS vs the naive kernels ------- */

typedef struct ncase {
  const char *what;
  int in_ndim;
  int64_t in_shape[4];
  int nc;
  cdef c[2];
  const char *node;
  int counter; /* which gg__cuda_stats counter must move */
} ncase;

enum { C_CONV, C_POOL, C_SOFTMAX, C_GEMM };

static const ncase k_num[] = {
    {"conv VALID 3x3",
     4,
     {1, 9, 9, 8},
     1,
     {{"w", 4, {3, 3, 8, 16}}},
     NODE("y", "Conv2D", "\"x\",\"w\"", ATTR_VALID "," STRIDE1),
     C_CONV},
    {"conv SAME 3x3 (pad 1 both sides)",
     4,
     {2, 7, 6, 4},
     1,
     {{"w", 4, {3, 3, 4, 6}}},
     NODE("y", "Conv2D", "\"x\",\"w\"", ATTR_SAME "," STRIDE1),
     C_CONV},
    {"conv SAME 3x3 s2 odd input",
     4,
     {1, 9, 9, 3},
     1,
     {{"w", 4, {3, 3, 3, 5}}},
     NODE("y", "Conv2D", "\"x\",\"w\"", ATTR_SAME "," STRIDE2),
     C_CONV},
    {"conv 1x1",
     4,
     {1, 5, 5, 8},
     1,
     {{"w", 4, {1, 1, 8, 12}}},
     NODE("y", "Conv2D", "\"x\",\"w\"", ATTR_VALID "," STRIDE1),
     C_CONV},
    {"conv 5x3 VALID s2",
     4,
     {1, 11, 8, 4},
     1,
     {{"w", 4, {5, 3, 4, 7}}},
     NODE("y", "Conv2D", "\"x\",\"w\"", ATTR_VALID "," STRIDE2),
     C_CONV},
    {"depthwise SAME 3x3",
     4,
     {1, 8, 8, 6},
     1,
     {{"w", 4, {3, 3, 6, 1}}},
     NODE("y", "DepthwiseConv2dNative", "\"x\",\"w\"", ATTR_SAME "," STRIDE1),
     C_CONV},
    {"depthwise x2 VALID s2",
     4,
     {1, 9, 7, 4},
     1,
     {{"w", 4, {3, 3, 4, 2}}},
     NODE("y", "DepthwiseConv2dNative", "\"x\",\"w\"", ATTR_VALID "," STRIDE2),
     C_CONV},
    {"matmul", 2, {3, 20}, 1, {{"w", 2, {20, 10}}}, NODE("y", "MatMul", "\"x\",\"w\"", ""), C_GEMM},
    {"matmul transpose_b",
     2,
     {2, 32},
     1,
     {{"w", 2, {10, 32}}},
     NODE("y", "MatMul", "\"x\",\"w\"", "\"transpose_b\":{\"b\":true}"),
     C_GEMM},
    {"matmul transpose_a",
     2,
     {12, 3},
     1,
     {{"w", 2, {12, 5}}},
     NODE("y", "MatMul", "\"x\",\"w\"", "\"transpose_a\":{\"b\":true}"),
     C_GEMM},
    {"maxpool VALID 2x2 s2",
     4,
     {1, 8, 8, 4},
     0,
     {{0}},
     NODE("y", "MaxPool", "\"x\"", ATTR_VALID "," STRIDE2 "," KSIZE(2)),
     C_POOL},
    {"maxpool SAME 3x3 s1",
     4,
     {1, 7, 7, 3},
     0,
     {{0}},
     NODE("y", "MaxPool", "\"x\"", ATTR_SAME "," STRIDE1 "," KSIZE(3)),
     C_POOL},
    {"softmax 2x100", 2, {2, 100}, 0, {{0}}, NODE("y", "Softmax", "\"x\"", ""), C_SOFTMAX},
    {"softmax 4d", 4, {1, 3, 4, 10}, 0, {{0}}, NODE("y", "Softmax", "\"x\"", ""), C_SOFTMAX},
};

static uint64_t counter(int which) {
  gg__cuda_stats st;
  gg__cuda_get_stats(&st);
  return which == C_CONV      ? st.cudnn_convs
         : which == C_POOL    ? st.cudnn_pools
         : which == C_SOFTMAX ? st.cudnn_softmax
                              : st.cublas_gemms;
}

static void test_numerics_vs_naive(void) {
  NEED_CUDA();
  setenv("GPUGUARD_CUDA_GRAPH", "0", 1);
  gg_pool *pool = new_pool(0);
  ASSERT_TRUE(pool != NULL);
  for (size_t i = 0; i < sizeof k_num / sizeof *k_num; i++) {
    const ncase *c = &k_num[i];
    gg_model *m = build(c->in_shape, c->in_ndim, c->c, c->nc, c->node);
    if (!m) GG_T_FAIL("%s: build failed", c->what);
    if (!m) continue;
    char err[512];
    gg_session *s = cuda_session(m, pool, err, sizeof err);
    if (!s) GG_T_FAIL("%s: cuda session: %s", c->what, err);
    if (s) {
      ASSERT_EQ(gg_session_ops_by_backend(s, "cuda"), 1);
      fill_input(s, 99);
      uint64_t before = counter(c->counter);
      int rc = gg_session_run(s, err, sizeof err);
      if (rc) GG_T_FAIL("%s: run: %s", c->what, err);
      ASSERT_U64_EQ(counter(c->counter), before + 1);
      double tol = 0, e = compare_naive(m, s, &tol);
      fprintf(stderr, "  %-34s max err %.3g (tol %.3g)\n", c->what, e, tol);
      if (!(e >= 0 && e <= tol)) GG_T_FAIL("%s: cuda vs naive error %g > %g", c->what, e, tol);
      gg_session_free(s);
    }
    gg_model_free(m);
  }
  ASSERT_U64_EQ(pool_allocated(pool), 0);
  /* FMA math asked of cuDNN (no TF32), pedantic math of cuBLAS */
  ASSERT_EQ(*fsym(dnn(), "fake_cudnn_last_math"), 3);
  ASSERT_EQ(*fsym(blas(), "fake_cublas_last_math"), 2);
  gg_pool_free(pool);
  unsetenv("GPUGUARD_CUDA_GRAPH");
}

/* ---- epilogue and padding paths: launch records ---------------------------- */

typedef struct fake_launch {
  char name[48];
  unsigned grid[3], block[3];
  int captured;
} fake_launch;

static const fake_launch *last_launch(void) {
  int n = *fsym(g_fcuda, "fake_launches");
  fake_launch *log = g_fcuda ? dlsym(g_fcuda, "fake_launch_log") : NULL;
  return n && log ? &log[(n - 1) % 256] : NULL;
}

static void test_epilogue_and_padding_launches(void) {
  NEED_CUDA();
  setenv("GPUGUARD_CUDA_GRAPH", "0", 1);
  gg_pool *pool = new_pool(0);
  char err[512];
  gg__cuda_stats st0, st1;
  /* 1. symmetric conv + bias + relu: cuDNN, then one gg_bias_act over
   * [M = 7*7 pixels, N = 16 channels] on a (16,4) block */
  static const int64_t s1[4] = {1, 9, 9, 8};
  cdef c1[2] = {{"w", 4, {3, 3, 8, 16}}, {"b", 1, {16}}};
  gg_model *m =
      build(s1, 4, c1, 2,
            NODE("y", "_FusedConv2D", "\"x\",\"w\",\"b\"", ATTR_VALID "," STRIDE1 "," BIAS_RELU));
  gg_session *s = m ? cuda_session(m, pool, err, sizeof err) : NULL;
  ASSERT_TRUE(s != NULL);
  if (s) {
    int before = *fsym(g_fcuda, "fake_launches");
    gg__cuda_get_stats(&st0);
    ASSERT_OK(gg_session_run(s, err, sizeof err));
    gg__cuda_get_stats(&st1);
    ASSERT_U64_EQ(st1.cudnn_convs, st0.cudnn_convs + 1);
    ASSERT_U64_EQ(st1.epilogues, st0.epilogues + 1);
    ASSERT_EQ(*fsym(g_fcuda, "fake_launches"), before + 1);
    const fake_launch *l = last_launch();
    ASSERT_TRUE(l != NULL);
    if (l) {
      ASSERT_STREQ(l->name, "gg_bias_act");
      ASSERT_EQ(l->grid[0], 1);  /* ceil(16 / 16) */
      ASSERT_EQ(l->grid[1], 13); /* ceil(49 / 4) */
      ASSERT_EQ(l->block[0], 16);
      ASSERT_EQ(l->block[1], 4);
    }
  }
  gg_session_free(s);
  gg_model_free(m);
  /* 2. SAME stride 2 on an even input: TF pads (0, 1), cuDNN cannot: the
   * direct kernel runs it (fused epilogue), no cuDNN call */
  static const int64_t s2[4] = {1, 8, 8, 4};
  cdef c2[2] = {{"w", 4, {3, 3, 4, 8}}, {"b", 1, {8}}};
  m = build(s2, 4, c2, 2,
            NODE("y", "_FusedConv2D", "\"x\",\"w\",\"b\"", ATTR_SAME "," STRIDE2 "," BIAS_RELU));
  s = m ? cuda_session(m, pool, err, sizeof err) : NULL;
  ASSERT_TRUE(s != NULL);
  if (s) {
    ASSERT_EQ(gg_session_ops_by_backend(s, "cuda"), 1);
    gg__cuda_get_stats(&st0);
    ASSERT_OK(gg_session_run(s, err, sizeof err));
    gg__cuda_get_stats(&st1);
    ASSERT_U64_EQ(st1.cudnn_convs, st0.cudnn_convs);
    ASSERT_U64_EQ(st1.kx_nodes, st0.kx_nodes + 1);
    const fake_launch *l = last_launch();
    ASSERT_TRUE(l != NULL);
    if (l) {
      ASSERT_STREQ(l->name, "gg_conv2d");
      /* global (ceil(8/4), OW 4, B*OH 4) on the (8,4,1) block */
      ASSERT_EQ(l->grid[0], 1);
      ASSERT_EQ(l->grid[1], 1);
      ASSERT_EQ(l->grid[2], 4);
      ASSERT_EQ(l->block[0], 8);
      ASSERT_EQ(l->block[1], 4);
      ASSERT_EQ(l->block[2], 1);
    }
  }
  gg_session_free(s);
  gg_model_free(m);
  /* 3. matmul + bias + relu: cuBLAS, then gg_bias_act over [3, 10] */
  static const int64_t s3[2] = {3, 64};
  cdef c3[2] = {{"w", 2, {64, 10}}, {"b", 1, {10}}};
  m = build(s3, 2, c3, 2, NODE("y", "_FusedMatMul", "\"x\",\"w\",\"b\"", BIAS_RELU));
  s = m ? cuda_session(m, pool, err, sizeof err) : NULL;
  ASSERT_TRUE(s != NULL);
  if (s) {
    gg__cuda_get_stats(&st0);
    ASSERT_OK(gg_session_run(s, err, sizeof err));
    gg__cuda_get_stats(&st1);
    ASSERT_U64_EQ(st1.cublas_gemms, st0.cublas_gemms + 1);
    const fake_launch *l = last_launch();
    ASSERT_TRUE(l != NULL);
    if (l) {
      ASSERT_STREQ(l->name, "gg_bias_act");
      ASSERT_EQ(l->grid[1], 1);
    }
  }
  gg_session_free(s);
  gg_model_free(m);
  /* 4. cuDNN has no algorithm for a convolution: the direct kernel runs it */
  setenv("FAKE_CUDNN_ALGOS", "none", 1);
  m = build(s1, 4, c1, 1, NODE("y", "Conv2D", "\"x\",\"w\"", ATTR_VALID "," STRIDE1));
  s = m ? cuda_session(m, pool, err, sizeof err) : NULL;
  ASSERT_TRUE(s != NULL);
  if (s) {
    ASSERT_EQ(gg_session_ops_by_backend(s, "cuda"), 1);
    gg__cuda_get_stats(&st0);
    ASSERT_OK(gg_session_run(s, err, sizeof err));
    gg__cuda_get_stats(&st1);
    ASSERT_U64_EQ(st1.cudnn_convs, st0.cudnn_convs);
    const fake_launch *l = last_launch();
    ASSERT_TRUE(l != NULL);
    if (l) ASSERT_STREQ(l->name, "gg_conv2d");
  }
  unsetenv("FAKE_CUDNN_ALGOS");
  gg_session_free(s);
  gg_model_free(m);
  /* 5. MaxPool SAME 3x3 s2 on an even input: TF pads (0, 1), so the kx
   * kernel runs it, not cuDNN */
  m = build(s2, 4, NULL, 0, NODE("y", "MaxPool", "\"x\"", ATTR_SAME "," STRIDE2 "," KSIZE(3)));
  s = m ? cuda_session(m, pool, err, sizeof err) : NULL;
  ASSERT_TRUE(s != NULL);
  if (s) {
    ASSERT_EQ(gg_session_ops_by_backend(s, "cuda"), 1);
    gg__cuda_get_stats(&st0);
    ASSERT_OK(gg_session_run(s, err, sizeof err));
    gg__cuda_get_stats(&st1);
    ASSERT_U64_EQ(st1.cudnn_pools, st0.cudnn_pools);
    const fake_launch *l = last_launch();
    ASSERT_TRUE(l != NULL);
    if (l) ASSERT_STREQ(l->name, "gg_maxpool");
  }
  gg_session_free(s);
  gg_model_free(m);
  ASSERT_U64_EQ(pool_allocated(pool), 0);
  gg_pool_free(pool);
  unsetenv("GPUGUARD_CUDA_GRAPH");
}

/* ---- algorithms and workspace for a budget ---------------------------------- */

static void test_plan_for_budget(void) {
  NEED_CUDA();
  setenv("GPUGUARD_CUDA_GRAPH", "0", 1);
  /* cuDNN lists a fast algorithm with a 64 MiB workspace, then IMPLICIT_GEMM */
  setenv("FAKE_CUDNN_ALGOS", "1:67108864,0:0", 1);
  static const int64_t shp[4] = {1, 9, 9, 8};
  cdef c[1] = {{"w", 4, {3, 3, 8, 16}}};
  gg_model *m = build(shp, 4, c, 1, NODE("y", "Conv2D", "\"x\",\"w\"", ATTR_VALID "," STRIDE1));
  ASSERT_TRUE(m != NULL);
  char err[512];
  gg_engine_mem mem;
  /* no budget: the fast plan, with the 64 MiB scratch (and the 4 KiB that
   * cudnnGetConvolutionForwardWorkspaceSize adds to the heuristics' figure) */
  setenv("FAKE_CUDNN_WS_EXTRA", "4096", 1);
  gg_pool *pool = new_pool(0);
  gg_session *s = m ? cuda_session(m, pool, err, sizeof err) : NULL;
  if (!s) GG_T_FAIL("fast session: %s", err);
  if (s) {
    gg_session_memory(s, &mem);
    ASSERT_STREQ(mem.plan, "fast");
    ASSERT_EQ(mem.n_lean_ops, 0);
    ASSERT_GE(mem.dev[1].workspace, 67108864 + 4096);
    ASSERT_U64_EQ(mem.plan_fast - mem.plan_lean, gg_backend_pool_bytes(67108864 + 4096));
    fill_input(s, 99);
    ASSERT_OK(gg_session_run(s, err, sizeof err));
    ASSERT_EQ(*fsym(dnn(), "fake_cudnn_last_algo"), 1);
    ASSERT_U64_EQ(*(size_t *)(void *)fsym(dnn(), "fake_cudnn_last_ws"), 67108864 + 4096);
    double tol, e = compare_naive(m, s, &tol);
    ASSERT_LE_F(e, tol);
  }
  gg_session_free(s);
  gg_pool_free(pool);
  unsetenv("FAKE_CUDNN_WS_EXTRA");
  /* a 32 MiB budget: the lean plan picks IMPLICIT_GEMM (no scratch) */
  pool = new_pool(32ull << 20);
  s = m ? cuda_session(m, pool, err, sizeof err) : NULL;
  if (!s) GG_T_FAIL("lean session: %s", err);
  if (s) {
    gg_session_memory(s, &mem);
    ASSERT_STREQ(mem.plan, "lean");
    ASSERT_EQ(mem.n_lean_ops, 1);
    ASSERT_LE(mem.dev[1].workspace, 65536); /* the repacked filter only */
    fill_input(s, 99);
    ASSERT_OK(gg_session_run(s, err, sizeof err));
    ASSERT_EQ(*fsym(dnn(), "fake_cudnn_last_algo"), 0);
    ASSERT_U64_EQ(*(size_t *)(void *)fsym(dnn(), "fake_cudnn_last_ws"), 0);
    double tol, e = compare_naive(m, s, &tol);
    ASSERT_LE_F(e, tol);
  }
  gg_session_free(s);
  ASSERT_U64_EQ(pool_allocated(pool), 0);
  gg_pool_free(pool);
  /* at most GG_BACKEND_MAX_ALGOS listed, and the zero-workspace one kept */
  setenv("FAKE_CUDNN_ALGOS", "1:4096,2:8192,6:16384,7:32768,5:65536,0:0", 1);
  pool = new_pool(0);
  gg_backend *be = NULL;
  gg_backend_params bp = {g_dev, pool, 1, 1};
  ASSERT_OK(gg_backend_init_by_name("cuda", &bp, &be, err, sizeof err));
  if (be && m) {
    const gg_graph *g = gg__model_graph(m);
    gg_tval *vals = calloc((size_t)g->n_tensors + 1, sizeof *vals);
    for (int t = 0; t < g->n_tensors; t++)
      vals[t] = g->tensors[t].v, vals[t].is_const = g->tensors[t].is_const;
    vals[g->inputs[0]].dtype = GG_DT_F32;
    for (int i = 0; i < g->n_order; i++)
      ASSERT_OK(gg__op_infer(&g->nodes[g->order[i]], vals, err, sizeof err));
    gg_backend_algo a[GG_BACKEND_MAX_ALGOS];
    const gg_node *n = &g->nodes[g->order[g->n_order - 1]];
    int na = be->iface->algos(be, n, vals, a);
    ASSERT_EQ(na, GG_BACKEND_MAX_ALGOS);
    ASSERT_STREQ(a[0].name, "implicit_precomp_gemm");
    ASSERT_U64_EQ(a[0].workspace, gg_backend_pool_bytes(4096));
    ASSERT_U64_EQ(a[na - 1].workspace, 0);
    ASSERT_STREQ(a[na - 1].name, "implicit_gemm");
    for (int i = 1; i < na; i++)
      ASSERT_TRUE(a[i].cost > a[i - 1].cost);
    /* a pool that refuses the fast algorithm's workspace at prepare: the
     * node takes the zero-workspace one, and only the filter is booked */
    gg_backend_free(be);
    be = NULL;
    gg_pool_free(pool);
    setenv("FAKE_CUDNN_ALGOS", "1:67108864,0:0", 1);
    pool = new_pool(32ull << 20);
    bp.pool = pool;
    ASSERT_OK(gg_backend_init_by_name("cuda", &bp, &be, err, sizeof err));
    gg__cuda_stats st0, st1;
    gg__cuda_get_stats(&st0);
    void *state = NULL;
    uint64_t ws = 0, before = pool_allocated(pool);
    ASSERT_OK(be->iface->prepare_algo(be, n, vals, 0, &state, &ws));
    gg__cuda_get_stats(&st1);
    ASSERT_U64_EQ(st1.prepare_fallbacks, st0.prepare_fallbacks + 1);
    ASSERT_U64_EQ(ws, pool_allocated(pool) - before);
    ASSERT_LE(ws, 65536);
    be->iface->release(be, state);
    free(vals);
  }
  gg_backend_free(be);
  gg_pool_free(pool);
  gg_model_free(m);
  unsetenv("FAKE_CUDNN_ALGOS");
  unsetenv("GPUGUARD_CUDA_GRAPH");
}

/* ---- injected failures ---------------------------------------------------------- */

static void test_cudnn_alloc_failed_switches(void) {
  NEED_CUDA();
  setenv("GPUGUARD_CUDA_GRAPH", "0", 1);
  setenv("FAKE_CUDNN_ALGOS", "1:4096,0:0", 1);
  static const int64_t shp[4] = {1, 9, 9, 8};
  cdef c[1] = {{"w", 4, {3, 3, 8, 16}}};
  gg_model *m = build(shp, 4, c, 1, NODE("y", "Conv2D", "\"x\",\"w\"", ATTR_VALID "," STRIDE1));
  gg_pool *pool = new_pool(0);
  char err[512];
  gg_session *s = m ? cuda_session(m, pool, err, sizeof err) : NULL;
  ASSERT_TRUE(s != NULL);
  if (s) {
    setenv("FAKE_CUDNN_ALLOC_FAILED", "1", 1);
    int fails0 = *fsym(dnn(), "fake_cudnn_alloc_failures");
    gg__cuda_stats a, b;
    gg__cuda_get_stats(&a);
    fill_input(s, 99);
    int rc = gg_session_run(s, err, sizeof err);
    if (rc) GG_T_FAIL("run after CUDNN_STATUS_ALLOC_FAILED: %s", err);
    gg__cuda_get_stats(&b);
    ASSERT_U64_EQ(b.algo_fallbacks, a.algo_fallbacks + 1);
    ASSERT_EQ(*fsym(dnn(), "fake_cudnn_alloc_failures"), fails0 + 1);
    ASSERT_EQ(*fsym(dnn(), "fake_cudnn_last_algo"), 0);
    double tol, e = compare_naive(m, s, &tol);
    ASSERT_LE_F(e, tol);
    /* the node stays on the zero-workspace algorithm: no second failure */
    ASSERT_OK(gg_session_run(s, err, sizeof err));
    ASSERT_EQ(*fsym(dnn(), "fake_cudnn_alloc_failures"), fails0 + 1);
    gg_session_free(s);
    /* both fail: out of device memory, the node named */
    setenv("FAKE_CUDNN_ALLOC_FAILED", "1,0", 1);
    s = cuda_session(m, pool, err, sizeof err);
    ASSERT_TRUE(s != NULL);
    if (s) {
      rc = gg_session_run(s, err, sizeof err);
      ASSERT_EQ(rc, GG_EDEV_OOM);
      ASSERT_CONTAINS(err, "node 'y' (Conv2D)");
      ASSERT_EQ(gg_classify_err(rc), GG_FAIL_OOM);
    }
    unsetenv("FAKE_CUDNN_ALLOC_FAILED");
  }
  gg_session_free(s);
  gg_model_free(m);
  gg_pool_free(pool);
  unsetenv("FAKE_CUDNN_ALGOS");
  unsetenv("GPUGUARD_CUDA_GRAPH");
}

/* The log line of a failure names node, call and status. */
static char g_log[2048];
static void sink(gg_log_level lv, const char *line, void *user) {
  (void)user;
  if (lv >= GG_LOG_ERROR && !g_log[0]) snprintf(g_log, sizeof g_log, "%s", line);
}

static void test_cublas_alloc_failed(void) {
  NEED_CUDA();
  setenv("GPUGUARD_CUDA_GRAPH", "0", 1);
  static const int64_t shp[2] = {3, 20};
  cdef c[1] = {{"w", 2, {20, 10}}};
  gg_model *m = build(shp, 2, c, 1, NODE("mm", "MatMul", "\"x\",\"w\"", ""));
  gg_pool *pool = new_pool(0);
  char err[512];
  gg_session *s = m ? cuda_session(m, pool, err, sizeof err) : NULL;
  ASSERT_TRUE(s != NULL);
  if (s) {
    setenv("FAKE_CUBLAS_RC", "3", 1); /* CUBLAS_STATUS_ALLOC_FAILED */
    g_log[0] = 0;
    gg_log_level lv = gg_log_get_level();
    gg_log_set_level(GG_LOG_ERROR);
    gg_log_set_sink(sink, NULL);
    int rc = gg_session_run(s, err, sizeof err);
    gg_log_set_sink(NULL, NULL);
    gg_log_set_level(lv);
    unsetenv("FAKE_CUBLAS_RC");
    ASSERT_EQ(rc, GG_EDEV_OOM);
    ASSERT_CONTAINS(err, "node 'mm' (MatMul)");
    ASSERT_CONTAINS(g_log, "node 'mm' (MatMul): cublasSgemm_v2: CUBLAS_STATUS_ALLOC_FAILED");
    /* an execution failure is a launch failure, not memory */
    setenv("FAKE_CUBLAS_RC", "13", 1);
    rc = gg_session_run(s, err, sizeof err);
    unsetenv("FAKE_CUBLAS_RC");
    ASSERT_EQ(gg_classify_err(rc), gg_classify_cublas(13));
    ASSERT_NE(rc, GG_EDEV_OOM);
    /* and the session works again afterwards */
    ASSERT_OK(gg_session_run(s, err, sizeof err));
  }
  gg_session_free(s);
  gg_model_free(m);
  gg_pool_free(pool);
  unsetenv("GPUGUARD_CUDA_GRAPH");
}

static void test_sticky_launch_and_reset(void) {
  NEED_CUDA();
  setenv("GPUGUARD_CUDA_GRAPH", "0", 1);
  static const int64_t shp[4] = {1, 5, 5, 8};
  gg_model *m = build(shp, 4, NULL, 0, NODE("act", "Relu", "\"x\"", ""));
  gg_pool *pool = new_pool(0);
  char err[512];
  gg_session *s = m ? cuda_session(m, pool, err, sizeof err) : NULL;
  ASSERT_TRUE(s != NULL);
  if (s) {
    ASSERT_EQ(gg_session_ops_by_backend(s, "cuda"), 1);
    ASSERT_OK(gg_session_run(s, err, sizeof err));
    /* a hang: CUDA_ERROR_LAUNCH_TIMEOUT */
    setenv("FAKE_CUDA_LAUNCH_RC", "702", 1);
    int rc = gg_session_run(s, err, sizeof err);
    ASSERT_EQ(rc, GG_ETIMEOUT);
    ASSERT_CONTAINS(err, "node 'act' (Relu)");
    /* CUDA_ERROR_ILLEGAL_ADDRESS: sticky, the worker must be recycled */
    setenv("FAKE_CUDA_LAUNCH_RC", "700", 1);
    g_log[0] = 0;
    gg_log_level lv = gg_log_get_level();
    gg_log_set_level(GG_LOG_ERROR);
    gg_log_set_sink(sink, NULL);
    rc = gg_session_run(s, err, sizeof err);
    gg_log_set_sink(NULL, NULL);
    gg_log_set_level(lv);
    unsetenv("FAKE_CUDA_LAUNCH_RC");
    ASSERT_EQ(rc, GG_EDEVICE_LOST);
    ASSERT_CONTAINS(g_log,
                    "node 'act' (Relu): cuLaunchKernel(gg_unary): CUDA_ERROR_ILLEGAL_ADDRESS");
    ASSERT_TRUE(gg_fail_class_is_sticky(gg_classify_err(rc)));
    ASSERT_EQ(gg_fail_class_recovery(gg_classify_err(rc)),
              gg_fail_class_recovery(GG_FAIL_DEVICE_LOST));
    /* still poisoned: every later call fails the same way */
    ASSERT_EQ(gg_session_run(s, err, sizeof err), GG_EDEVICE_LOST);
  }
  /* the reset clears it; the session prepared before it refuses to run */
  ASSERT_OK(gg_device_reset(g_dev));
  if (s) ASSERT_EQ(gg_session_run(s, err, sizeof err), GG_EDEVICE_LOST);
  /* (its blocks belong to the old context: the pool drops them) */
  gg_session_free(s);
  gg_model_free(m);
  gg_pool_drop_all(pool);
  gg_pool_free(pool);
  unsetenv("GPUGUARD_CUDA_GRAPH");
}

/* ---- CUDA graphs -------------------------------------------------------------- */

typedef struct gcount {
  int captures, instantiates, launches, kernel_launches;
  uint64_t convs;
} gcount;

static gcount gnow(void) {
  gcount g;
  gg__cuda_stats st;
  gg__cuda_get_stats(&st);
  g.captures = *fsym(g_fcuda, "fake_captures");
  g.instantiates = *fsym(g_fcuda, "fake_graph_instantiates");
  g.launches = *fsym(g_fcuda, "fake_graph_launches");
  g.kernel_launches = *fsym(g_fcuda, "fake_launches");
  g.convs = st.cudnn_convs;
  return g;
}

/* Runs a fresh session of m `runs` times; returns the counters' deltas. */
static gcount graph_runs(gg_model *m, gg_pool *pool, int runs, int *mode) {
  gcount a = gnow(), b;
  char err[512];
  gg_session *s = cuda_session(m, pool, err, sizeof err);
  if (!s) fprintf(stderr, "  session: %s\n", err), gg_t_failed_checks++;
  for (int i = 0; s && i < runs; i++) {
    fill_input(s, 7);
    int rc = gg_session_run(s, err, sizeof err);
    if (rc) fprintf(stderr, "  run %d: %s\n", i + 1, err), gg_t_failed_checks++;
  }
  gg__cuda_stats st;
  gg__cuda_get_stats(&st);
  *mode = st.graph_mode;
  gg_session_free(s);
  b = gnow();
  return (gcount){b.captures - a.captures, b.instantiates - a.instantiates, b.launches - a.launches,
                  b.kernel_launches - a.kernel_launches, b.convs - a.convs};
}

enum { G_FIRST = 0, G_CAPTURE, G_REPLAY, G_EAGER, G_OFF, G_TRIAL }; /* backend-cuda.c */

static void test_graph_bookkeeping(void) {
  NEED_CUDA();
  static const int64_t shp[4] = {1, 9, 9, 8};
  cdef c[2] = {{"w", 4, {3, 3, 8, 16}}, {"w2", 4, {3, 3, 16, 4}}};
  /* two cuDNN convolutions, then the epilogue-free softmax: one sequence */
  gg_model *m = build(shp, 4, c, 2,
                      NODE("c1", "Conv2D", "\"x\",\"w\"", ATTR_VALID "," STRIDE1) "," NODE(
                          "c2", "Conv2D", "\"c1\",\"w2\"",
                          ATTR_SAME "," STRIDE1) "," NODE("y", "Relu", "\"c2\"", ""));
  ASSERT_TRUE(m != NULL);
  if (!m) return;
  gg_pool *pool = new_pool(0);
  int mode = -1;
  /* graph faster (eager 2 ms, graph 1 ms): run 1 eager, run 2 captured
   * once and launched, run 3 replays it timed, runs 4-5 replay it (no
   * node work in runs 3-5) */
  unsetenv("GPUGUARD_CUDA_GRAPH");
  setenv("FAKE_CUDA_EVENT_MS", "2.0,1.0", 1);
  setenv("FAKE_CUDNN_NO_COMPUTE", "1", 1);
  gcount d = graph_runs(m, pool, 5, &mode);
  ASSERT_EQ(d.captures, 1);
  ASSERT_EQ(d.instantiates, 1);
  ASSERT_EQ(d.launches, 4);        /* the captured run + 3 replays */
  ASSERT_U64_EQ(d.convs, 4);       /* 2 nodes in run 1 and in the captured run 2 only */
  ASSERT_EQ(d.kernel_launches, 2); /* the relu of runs 1 and 2 */
  ASSERT_EQ(mode, G_REPLAY);
  int captured = *fsym(g_fcuda, "fake_captured_launches");
  ASSERT_GE(captured, 1);
  /* eager faster (1 ms vs 2 ms): captured once, tried once, then eager */
  setenv("FAKE_CUDA_EVENT_MS", "1.0,2.0", 1);
  d = graph_runs(m, pool, 5, &mode);
  ASSERT_EQ(d.captures, 1);
  ASSERT_EQ(d.launches, 2);  /* the captured run and the timed trial */
  ASSERT_U64_EQ(d.convs, 8); /* runs 1, 2, 4, 5 */
  ASSERT_EQ(mode, G_EAGER);
  /* GPUGUARD_CUDA_GRAPH=1: replays even when slower */
  setenv("GPUGUARD_CUDA_GRAPH", "1", 1);
  d = graph_runs(m, pool, 4, &mode);
  ASSERT_EQ(d.captures, 1);
  ASSERT_EQ(d.launches, 3);
  ASSERT_EQ(mode, G_REPLAY);
  /* GPUGUARD_CUDA_GRAPH=0: never captured */
  setenv("GPUGUARD_CUDA_GRAPH", "0", 1);
  d = graph_runs(m, pool, 4, &mode);
  ASSERT_EQ(d.captures, 0);
  ASSERT_EQ(d.launches, 0);
  ASSERT_U64_EQ(d.convs, 8);
  ASSERT_EQ(mode, G_OFF);
  /* the capture fails (a library allocating inside it invalidates it):
   * run 2 still computes (the segment runs again eagerly), then eager */
  unsetenv("GPUGUARD_CUDA_GRAPH");
  setenv("FAKE_CUDA_CAPTURE_RC", "901", 1);
  d = graph_runs(m, pool, 3, &mode);
  unsetenv("FAKE_CUDA_CAPTURE_RC");
  ASSERT_EQ(d.captures, 1);
  ASSERT_EQ(d.instantiates, 0);
  ASSERT_EQ(d.launches, 0);
  ASSERT_U64_EQ(d.convs, 8); /* 2 + (2 captured + 2 again) + 2 */
  ASSERT_EQ(mode, G_EAGER);
  unsetenv("FAKE_CUDA_EVENT_MS");
  gg_model_free(m);
  /* two outputs: the download between the two cuda nodes cuts the run
   * into two segments, one graph each */
  cdef c2[1] = {{"w", 4, {3, 3, 8, 4}}};
  m = build(shp, 4, c2, 1,
            NODE("p", "MaxPool", "\"x\"", ATTR_VALID "," STRIDE2 "," KSIZE(2)) "," NODE(
                "q", "Conv2D", "\"x\",\"w\"", ATTR_VALID "," STRIDE1));
  ASSERT_TRUE(m != NULL);
  if (m) {
    ASSERT_EQ(gg_model_n_outputs(m), 2);
    d = graph_runs(m, pool, 4, &mode);
    ASSERT_EQ(d.captures, 2);
    ASSERT_EQ(d.instantiates, 2);
    ASSERT_EQ(d.launches, 6); /* two per run in runs 2-4 */
    ASSERT_U64_EQ(d.convs, 2);
    ASSERT_EQ(mode, G_REPLAY);
  }
  gg_model_free(m);
  ASSERT_U64_EQ(pool_allocated(pool), 0);
  gg_pool_free(pool);
}

/* ---- a bundled model --------------------------------------------------------- */

static void test_model_session(void) {
  NEED_CUDA();
  static const char *const k_models[] = {"blazeface", "mobilefacenet", "nanodet", "faceres"};
  setenv("GPUGUARD_CUDA_GRAPH", "0", 1);
  setenv("FAKE_CUDNN_NO_COMPUTE", "1", 1); /* whole models: calls and bytes, not numbers */
  int found = 0;
  for (size_t i = 0; i < sizeof k_models / sizeof *k_models; i++) {
    char p[1024], err[1024];
    if (gg_model_resolve(k_models[i], p, sizeof p)) continue;
    found++;
    gg_model *m = NULL;
    ASSERT_OK(gg_model_load(p, &m, err, sizeof err));
    gg_pool *pool = new_pool(0);
    gg_session *s = m ? cuda_session(m, pool, err, sizeof err) : NULL;
    if (!s) GG_T_FAIL("%s on cuda:0 (fake): %s", k_models[i], err);
    if (s) {
      gg_engine_mem mem;
      gg_session_memory(s, &mem);
      int on = gg_session_ops_by_backend(s, "cuda");
      fprintf(stderr,
              "  %-14s %d of %d ops on cuda, device predicted %llu = measured %llu "
              "(plan %s)\n",
              k_models[i], on, mem.n_ops, (unsigned long long)mem.dev[1].predicted,
              (unsigned long long)mem.dev[1].measured, mem.plan);
      ASSERT_GE(on, mem.n_ops / 2);
      fill_input(s, 3);
      int rc = gg_session_run(s, err, sizeof err);
      if (rc) GG_T_FAIL("%s run: %s", k_models[i], err);
      gg_session_free(s);
    }
    ASSERT_U64_EQ(pool_allocated(pool), 0);
    gg_pool_free(pool);
    gg_model_free(m);
  }
  unsetenv("GPUGUARD_CUDA_GRAPH");
  unsetenv("FAKE_CUDNN_NO_COMPUTE");
  if (!found) SKIP("no models fetched (scripts/fetch-models.sh)");
}

/* The bundled models with graphs on (auto): each is captured once (one
 * graph per segment between downloads) and replayed. */
static void test_model_graphs(void) {
  NEED_CUDA();
  static const char *const k_models[] = {"blazeface", "mobilefacenet", "nanodet", "faceres"};
  unsetenv("GPUGUARD_CUDA_GRAPH");
  setenv("FAKE_CUDA_EVENT_MS", "2.0,1.0", 1);
  setenv("FAKE_CUDNN_NO_COMPUTE", "1", 1);
  int found = 0;
  for (size_t i = 0; i < sizeof k_models / sizeof *k_models; i++) {
    char p[1024], err[1024];
    if (gg_model_resolve(k_models[i], p, sizeof p)) continue;
    found++;
    gg_model *m = NULL;
    ASSERT_OK(gg_model_load(p, &m, err, sizeof err));
    gg_pool *pool = new_pool(0);
    int mode = -1;
    gcount d = graph_runs(m, pool, 4, &mode);
    fprintf(stderr, "  %-14s %d outputs: %s, %d segment graph(s), %d graph launches\n", k_models[i],
            gg_model_n_outputs(m), mode == G_REPLAY ? "replayed" : "eager", d.captures, d.launches);
    /* one graph per segment, launched in runs 2 (captured), 3 (trial), 4 */
    ASSERT_EQ(mode, G_REPLAY);
    ASSERT_GE(d.captures, 1);
    ASSERT_EQ(d.launches, 3 * d.captures);
    ASSERT_U64_EQ(pool_allocated(pool), 0);
    gg_pool_free(pool);
    gg_model_free(m);
  }
  unsetenv("FAKE_CUDA_EVENT_MS");
  unsetenv("FAKE_CUDNN_NO_COMPUTE");
  if (!found) SKIP("no models fetched (scripts/fetch-models.sh)");
}

#endif /* GG_HAVE_CUDA_BACKEND */

int main(int argc, char **argv) {
#if !GG_HAVE_CUDA_BACKEND
  (void)argc, (void)argv;
  printf("SKIP all: the CUDA compute backend is not in this build (-DGG_CUDA=OFF or no nvcc)\n");
  return 0;
#else
  if (!GG_FAKE_LIBCUDA[0]) {
    printf("SKIP all: built without the fake CUDA libraries (cmake/device.cmake)\n");
    return 0;
  }
  /* before the first cuda call: the libraries load once per process; the
   * child mode may override them from its environment */
  setenv("GPUGUARD_LIBCUDA", GG_FAKE_LIBCUDA, 0);
  setenv("GPUGUARD_LIBNVML", GG_FAKE_LIBCUDA, 0);
  if (!getenv("GPUGUARD_LIBCUDNN") && !getenv("GPUGUARD_CUDNN_PATH"))
    setenv("GPUGUARD_LIBCUDNN", GG_FAKE_LIBCUDNN, 1);
  setenv("GPUGUARD_LIBCUBLAS", GG_FAKE_LIBCUBLAS, 0);
  if (argc > 1 && !strcmp(argv[1], "--init-child")) {
    gg_log_set_level(GG_LOG_WARN);
    return init_child();
  }
  g_self = realpath("/proc/self/exe", NULL);
  unsetenv("FAKE_CUDA_INIT_RC");
  unsetenv("FAKE_CUDA_LAUNCH_RC");
  unsetenv("FAKE_CUDNN_ALGOS");
  unsetenv("FAKE_CUDNN_ALLOC_FAILED");
  unsetenv("FAKE_CUBLAS_RC");
  gg_log_set_level(GG_LOG_OFF);
  static const gg_test_case cases[] = {
      {"dlopen_failures", test_dlopen_failures},
      {"probe", test_probe},
      {"numerics_vs_naive", test_numerics_vs_naive},
      {"epilogue_and_padding_launches", test_epilogue_and_padding_launches},
      {"plan_for_budget", test_plan_for_budget},
      {"cudnn_alloc_failed_switches", test_cudnn_alloc_failed_switches},
      {"cublas_alloc_failed", test_cublas_alloc_failed},
      {"sticky_launch_and_reset", test_sticky_launch_and_reset},
      {"graph_bookkeeping", test_graph_bookkeeping},
      {"model_session", test_model_session},
      {"model_graphs", test_model_graphs},
      {0},
  };
  int rc = gg_test_main(argc, argv, cases);
  if (g_dev) gg_device_free(g_dev);
  free(g_self);
  return rc;
#endif
}
