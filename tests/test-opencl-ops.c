/* The OpenCL backend's kernels (src/backend/opencl) against the naive
 * reference kernels (gg__op_run): every op on random shapes and attributes
 * on opencl:0.0, tensors at random offsets inside one pool block; the four
 * bundled models node by node; the program cache; error classification; and
 * a deliberately wrong kernel (-DGG_MUTATE) that the comparison must catch.
 * SKIPs visibly when there is no OpenCL platform.
 *
 * Tolerance: |ocl - ref| <= 1e-4 * range(ref) + 1e-6 per output, where range
 * is max - min of the reference output; NaN anywhere fails. GG_TEST_SEED
 * changes the random cases (default 1). */
#include "test.h"

#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/device.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "gpuguard/memory.h"

#if GG_HAVE_OPENCL_BACKEND
#include "backend/opencl/ocl-impl.h"
#endif

#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if GG_HAVE_OPENCL_BACKEND

/* ---- fixture: one device, pool and kernel set per process ---------------- */

static gg_device *g_dev;
static gg_pool *g_pool;
static gg_ocl *g_ocl;
static gg_block *g_ws;
static int g_tried;
static char g_skip[256];

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- the CUDA build's kernel signatures ------------------------------------
 * The CUDA backend launches the same kernels with the argument lists
 * kx-ops.c builds here. cuLaunchKernel takes only addresses, so an argument
 * of the wrong size would go unnoticed until a GPU computes garbage. When
 * nvcc built the kernels (GG_CUDA_KERNELS_PTX), every launch these tests
 * make is checked against the parameter list of the kernel's PTX entry:
 * same count, same size each (.u64/.f64 8, .u32/.s32/.f32 4, .b8 [N] N). */

#ifndef GG_CUDA_KERNELS_PTX
#define GG_CUDA_KERNELS_PTX ""
#endif

#define SIG_MAX 40
typedef struct ptx_sig {
  char name[48];
  int n;
  int size[SIG_MAX];
} ptx_sig;

static ptx_sig g_sig[K_COUNT];
static int g_sig_loaded, g_sig_checked, g_sig_bad;
static int (*g_real_launch)(gg_kx *, const gg_node *, gg_kx_kernel, int, const size_t *,
                            const size_t *, const gg_karg *, int, char *, size_t);

/* Parses the .entry blocks of a PTX text into sig (indexed by kernel).
 * Returns how many of the K_COUNT kernels were found. */
static int ptx_parse(const char *ptx, ptx_sig *sig) {
  int found = 0;
  memset(sig, 0, sizeof *sig * K_COUNT);
  for (const char *p = strstr(ptx, ".entry "); p; p = strstr(p + 1, ".entry ")) {
    char name[48] = "";
    if (sscanf(p, ".entry %47[A-Za-z0-9_]", name) != 1) continue;
    int k = 0;
    while (k < K_COUNT && strcmp(gg__kx_kernel_name(k), name)) k++;
    if (k == K_COUNT) continue;
    ptx_sig *g = &sig[k];
    snprintf(g->name, sizeof g->name, "%s", name);
    const char *end = strchr(p, ')');
    for (const char *q = strstr(p, ".param"); q && end && q < end; q = strstr(q + 1, ".param")) {
      const char *nl = strchr(q, '\n'), *br = strchr(q, '[');
      int sz = 0;
      if (!strncmp(q, ".param .u64", 11) || !strncmp(q, ".param .f64", 11) ||
          !strncmp(q, ".param .s64", 11) || !strncmp(q, ".param .b64", 11))
        sz = 8;
      else if (!strncmp(q, ".param .u32", 11) || !strncmp(q, ".param .s32", 11) ||
               !strncmp(q, ".param .f32", 11) || !strncmp(q, ".param .b32", 11))
        sz = 4;
      else if (br && (!nl || br < nl))
        sz = atoi(br + 1);
      if (g->n < SIG_MAX) g->size[g->n] = sz;
      g->n++;
    }
    found++;
  }
  return found;
}

/* 0 when args match kernel k's PTX signature, else 1 with the difference
 * in msg. */
static int sig_check(const ptx_sig *sig, gg_kx_kernel k, const gg_karg *args, int nargs,
                     char *msg, size_t len) {
  const ptx_sig *g = &sig[k];
  if (!g->name[0]) return snprintf(msg, len, "%s: no PTX entry", gg__kx_kernel_name(k)), 1;
  if (g->n != nargs)
    return snprintf(msg, len, "%s: %d arguments, the CUDA kernel takes %d", g->name, nargs, g->n), 1;
  for (int i = 0; i < nargs && i < SIG_MAX; i++)
    if ((int)args[i].size != g->size[i])
      return snprintf(msg, len, "%s: argument %d is %zu bytes, the CUDA kernel's is %d", g->name,
                      i, args[i].size, g->size[i]), 1;
  return 0;
}

static int checked_launch(gg_kx *x, const gg_node *n, gg_kx_kernel k, int dims,
                          const size_t *global, const size_t *local, const gg_karg *args,
                          int nargs, char *err, size_t errlen) {
  char msg[256];
  g_sig_checked++;
  if (sig_check(g_sig, k, args, nargs, msg, sizeof msg)) {
    g_sig_bad++;
    fprintf(stderr, "  CUDA signature mismatch (node '%s'): %s\n", n ? n->name : "?", msg);
  }
  return g_real_launch(x, n, k, dims, global, local, args, nargs, err, errlen);
}

/* Loads the PTX once; 1 when the check is on. */
static int sig_load(void) {
  if (g_sig_loaded) return g_sig_loaded > 0;
  g_sig_loaded = -1;
  if (!GG_CUDA_KERNELS_PTX[0]) return 0;
  FILE *f = fopen(GG_CUDA_KERNELS_PTX, "rb");
  if (!f) return 0;
  static char buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  if (ptx_parse(buf, g_sig) == K_COUNT) g_sig_loaded = 1;
  return g_sig_loaded > 0;
}

/* 1 when opencl:0.0 and the kernels are ready, else 0 with g_skip set. */
static int fixture(void) {
  if (g_tried) return g_ocl != NULL;
  g_tried = 1;
  if (gg_device_open("opencl:0.0", &g_dev)) {
    snprintf(g_skip, sizeof g_skip, "no OpenCL platform/device opencl:0.0 (install "
                                    "pocl-opencl-icd; 'gpuguard doctor' says why)");
    return 0;
  }
  if (gg_pool_new(g_dev, NULL, &g_pool)) {
    snprintf(g_skip, sizeof g_skip, "cannot create a pool on opencl:0.0");
    return 0;
  }
  char err[1024];
  double t0 = now_ms();
  /* The random op cases check the built-in GEMM; matmul_clblast and the
   * sessions check CLBlast (its first call compiles for seconds). A small
   * im2col scratch makes the convolutions run in several chunks. */
  gg_ocl_params p = {.gemm = GG_OCL_GEMM_OWN};
  int rc = gg__ocl_new(g_dev, &p, &g_ocl, err, sizeof err);
  if (!rc) rc = gg_pool_alloc(g_pool, 64 << 10, "test/im2col", &g_ws);
  if (rc) {
    fprintf(stderr, "  gg__ocl_new: %s (%s)\n", err, gg_err_name(rc));
    return 0;
  }
  gg__ocl_set_workspace(g_ocl, gg_block_devmem(g_ws)->handle, gg_block_offset(g_ws), 64 << 10);
  if (sig_load()) { /* every kx launch below is checked against the CUDA build */
    g_real_launch = g_ocl->kx.launch;
    g_ocl->kx.launch = checked_launch;
  }
  gg_ocl_stats st;
  gg__ocl_get_stats(g_ocl, &st);
  printf("  kernels %s in %.0f ms; GEMM: %s%s%s\n", st.from_cache ? "loaded from cache" : "built",
         now_ms() - t0, st.gemm, st.clblast_error[0] ? "; CLBlast off: " : "", st.clblast_error);
  return 1;
}

#define NEED_OPENCL()                                                                           \
  do {                                                                                          \
    if (!fixture()) {                                                                           \
      if (g_skip[0]) SKIP("%s", g_skip);                                                        \
      GG_T_FAIL("the OpenCL backend failed to start on an available device");                 \
    }                                                                                           \
  } while (0)

static uint64_t g_rng;
static uint32_t rnd(void) {
  g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
  return (uint32_t)(g_rng >> 11);
}
static int rint_in(int lo, int hi) { return lo + (int)(rnd() % (uint32_t)(hi - lo + 1)); }
static float rfloat(void) { return (float)(rnd() % 2000001) / 1e6f - 1.0f; }
static void seed(int salt) {
  const char *s = getenv("GG_TEST_SEED");
  g_rng = 0x9E3779B97F4A7C15ull * (uint64_t)((s ? atoi(s) : 1) * 1000 + salt) + 1;
}

/* The signature check itself: the PTX has every kernel, a right argument
 * list passes, a list with one argument of the wrong size or one missing
 * is caught. Then every launch the other cases made matched. */
static void test_views(void);
static void test_cuda_signatures(void) {
  NEED_OPENCL();
  if (!GG_CUDA_KERNELS_PTX[0]) SKIP("nvcc did not build the CUDA kernels in this build");
  if (!sig_load()) GG_T_FAIL("cannot read/parse all %d kernels in %s", K_COUNT, GG_CUDA_KERNELS_PTX);
  char msg[256];
  void *m = NULL;
  uint64_t off = 0;
  int nn = 4, ni = 1;
  float alpha = 0.5f;
  gg_karg ok[] = {KA(m),  KA(off), KA(m),     KA(off),
                  KA(nn), KA(ni),  KA(alpha), KA(alpha)}; /* gg_unary */
  ASSERT_EQ(sig_check(g_sig, K_UNARY, ok, 8, msg, sizeof msg), 0);
  gg_karg bad[] = {KA(m), KA(nn), KA(m), KA(off), KA(nn), KA(ni), KA(alpha), KA(alpha)};
  ASSERT_EQ(sig_check(g_sig, K_UNARY, bad, 8, msg, sizeof msg), 1);
  ASSERT_EQ(sig_check(g_sig, K_UNARY, ok, 7, msg, sizeof msg), 1);
  ASSERT_EQ(g_sig[K_BINARY].size[8], 32); /* an int8 shape: 32 bytes */
  /* run a few ops through the checked launcher, then require no mismatch */
  int before = g_sig_checked;
  test_views();
  ASSERT_GE(g_sig_checked, before + 1);
  ASSERT_EQ(g_sig_bad, 0);
}

/* ---- one node with its tensors -------------------------------------------- */

#define MAXT 12
typedef struct tcase {
  gg_node n;
  int ids[MAXT];
  gg_tval v[MAXT];
  int nt;
  int same_view; /* Reshape & co: output shares the input's storage */
  char desc[256];
} tcase;

static void tc_init(tcase *t, gg_op op, int n_in, int n_out) {
  memset(t, 0, sizeof *t);
  t->n.name = "t";
  t->n.op = op;
  t->n.src_op = gg__op_name(op);
  t->n.n_in = n_in, t->n.n_out = n_out;
  t->nt = n_in + n_out;
  for (int i = 0; i < t->nt; i++) t->ids[i] = i, t->v[i].ndim = 0;
  t->n.in = t->ids, t->n.out = t->ids + n_in;
  t->n.a.strides[0] = t->n.a.strides[1] = 1;
  t->n.a.dilations[0] = t->n.a.dilations[1] = 1;
}

static void tc_desc(tcase *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->desc, sizeof t->desc, fmt, ap);
  va_end(ap);
}

static void set_dims(gg_tval *v, gg_dtype dt, int nd, const int64_t *d) {
  v->dtype = dt, v->ndim = nd, v->nelem = 1;
  for (int i = 0; i < nd; i++) v->shape[i] = d[i], v->nelem *= d[i];
}

/* Input k: random floats of the given shape. */
static void tc_f32(tcase *t, int k, int nd, const int64_t *d) {
  set_dims(&t->v[k], GG_DT_F32, nd, d);
  float *p = malloc((size_t)t->v[k].nelem * 4 + 4);
  for (int64_t i = 0; i < t->v[k].nelem; i++) p[i] = rfloat();
  t->v[k].data = p;
}

/* Input k: an int32 parameter vector. */
static void tc_i32(tcase *t, int k, int nv, const int32_t *vals) {
  int64_t d = nv;
  set_dims(&t->v[k], GG_DT_I32, 1, &d);
  int32_t *p = malloc((size_t)nv * 4 + 4);
  memcpy(p, vals, (size_t)nv * 4);
  t->v[k].data = p;
}

static void tc_free(tcase *t) {
  for (int i = 0; i < t->nt; i++) free(t->v[i].data);
}

/* Comparison of one output: worst |diff| and the tolerance. */
typedef struct verdict {
  double err, tol;
  int out;
} verdict;

static void compare(const gg_tval *ref, const void *got, int k, verdict *vd) {
  double lo = INFINITY, hi = -INFINITY, e = 0;
  if (ref->dtype == GG_DT_I32) {
    for (int64_t i = 0; i < ref->nelem; i++)
      e = gg_t_max_err(e, ((const int32_t *)ref->data)[i] != ((const int32_t *)got)[i]);
    lo = hi = 0;
  } else {
    const float *r = ref->data, *g = got;
    for (int64_t i = 0; i < ref->nelem; i++) {
      if (isfinite(r[i])) lo = fmin(lo, r[i]), hi = fmax(hi, r[i]);
      /* equal infinities (MaxPool's -inf padding) match; NaN never does */
      e = gg_t_max_err(e, r[i] == g[i] ? 0.0 : fabs((double)r[i] - (double)g[i]));
      if (isnan(r[i])) e = NAN;
    }
  }
  double tol = hi >= lo ? 1e-4 * (hi - lo) + 1e-6 : 1e-6;
  if (isnan(vd->err) || isnan(e) || e / tol > vd->err / vd->tol || !vd->tol)
    vd->err = e, vd->tol = tol, vd->out = k;
}

/* Device copy of the node's tensors in one pool block at unaligned (4-byte)
 * offsets, so every kernel is exercised with non-zero element offsets. */
typedef struct devside {
  gg_block *blk;
  gg_ocl_arg args[MAXT];
} devside;

static int dev_place(const gg_node *n, gg_tval *v, int nt, int same_view, devside *ds) {
  uint64_t off = 4u * (uint64_t)rint_in(1, 40), offs[MAXT];
  for (int i = 0; i < nt; i++) {
    int param = i < n->n_in && gg__ocl_param_input(n, i);
    offs[i] = off;
    if (same_view && i == n->n_in) offs[i] = offs[0];
    else if (!param) off += ((uint64_t)v[i].nelem * 4 + 63) / 64 * 64 + 4u * (uint64_t)rint_in(0, 3);
  }
  int rc = gg_pool_alloc(g_pool, (size_t)off + 64, "test/opencl", &ds->blk);
  if (rc) return rc;
  gg_devmem *m = gg_block_devmem(ds->blk);
  for (int i = 0; i < nt; i++) {
    ds->args[i].v = &v[i];
    ds->args[i].mem = m->handle;
    ds->args[i].off = gg_block_offset(ds->blk) + offs[i];
    int param = i < n->n_in && gg__ocl_param_input(n, i);
    if (i < n->n_in && !param && v[i].nelem &&
        (rc = gg_block_copy_to(ds->blk, offs[i], v[i].data, (size_t)v[i].nelem * 4)))
      return rc;
  }
  return 0;
}

/* Runs node n on OpenCL with inputs v[0..n_in) (host data) and compares
 * each output with ref (host data, same shapes). */
static int run_compare(gg_ocl *o, const gg_node *n, gg_tval *v, const gg_tval *ref, int same_view,
                       verdict *vd, char *err, size_t errlen) {
  int nt = n->n_in + n->n_out;
  devside ds = {0};
  int rc = dev_place(n, v, nt, same_view, &ds);
  if (!rc) rc = gg__ocl_run(o, n, ds.args, ds.args + n->n_in, err, errlen);
  if (!rc) rc = gg__ocl_finish(o, err, errlen);
  for (int k = 0; !rc && k < n->n_out; k++) {
    const gg_tval *r = &ref[k];
    void *got = malloc((size_t)r->nelem * 4 + 4);
    rc = gg_block_copy_from(ds.blk, got, ds.args[n->n_in + k].off - gg_block_offset(ds.blk),
                            (size_t)r->nelem * 4);
    if (!rc) compare(r, got, k, vd);
    free(got);
  }
  gg_block_free(ds.blk);
  return rc;
}

/* Infers shapes, runs the reference, then OpenCL; fills *vd. */
static int check_case(gg_ocl *o, tcase *t, verdict *vd) {
  char err[1024];
  memset(vd, 0, sizeof *vd);
  int rc = gg__op_infer(&t->n, t->v, err, sizeof err);
  if (rc) {
    fprintf(stderr, "  case %s: shape rule refused it: %s\n", t->desc, err);
    return rc;
  }
  for (int k = 0; k < t->n.n_out; k++) {
    gg_tval *y = &t->v[t->n.n_in + k];
    y->data = calloc((size_t)y->nelem + 1, 4);
  }
  if ((rc = gg__op_run(&t->n, t->v, NULL))) return rc;
  gg_tval ref[4];
  for (int k = 0; k < t->n.n_out; k++) ref[k] = t->v[t->n.n_in + k];
  rc = run_compare(o, &t->n, t->v, ref, t->same_view, vd, err, sizeof err);
  if (rc) fprintf(stderr, "  case %s: %s\n", t->desc, err);
  return rc;
}

#define CHECK_CASE(t)                                                                            \
  do {                                                                                           \
    verdict cc_vd;                                                                                 \
    int cc_rc = check_case(g_ocl, &(t), &cc_vd);                                                     \
    if (cc_rc || !(cc_vd.err <= cc_vd.tol))                                                            \
      fprintf(stderr, "  case %s: output %d max |diff| %.3g, tolerance %.3g\n", (t).desc,        \
              cc_vd.out, cc_vd.err, cc_vd.tol);                                                        \
    tc_free(&(t));                                                                               \
    ASSERT_OK(cc_rc);                                                                            \
    ASSERT_LE_F(cc_vd.err, cc_vd.tol);                                                               \
  } while (0)

/* ---- the ops -------------------------------------------------------------- */

/* A conv-like node: input [B,H,W,CI], filter, optional bias and PReLU alpha. */
static void make_conv(tcase *t, gg_op op, int force_1x1) {
  int kh = force_1x1 ? 1 : rint_in(1, 4), kw = force_1x1 ? 1 : rint_in(1, 4);
  int ci = rint_in(1, 9), mult = rint_in(1, 3), groups = 1, co;
  if (op == GG_OP_CONV2D && !force_1x1 && rint_in(0, 3) == 0) groups = 2, ci = 2 * rint_in(1, 4);
  co = op == GG_OP_DEPTHWISE ? ci * mult : (groups > 1 ? groups * 4 * rint_in(1, 2) : rint_in(1, 13));
  int has_bias = rint_in(0, 1), act = rint_in(0, GG_ACT_COUNT - 1);
  tc_init(t, op, 2 + has_bias + (act == GG_ACT_PRELU), 1);
  gg_attrs *a = &t->n.a;
  a->has_bias = has_bias, a->act = (gg_act)act, a->alpha = 0.1f + (float)rint_in(0, 5) / 10;
  if (!force_1x1) {
    a->strides[0] = rint_in(1, 2), a->strides[1] = rint_in(1, 2);
    a->dilations[0] = rint_in(1, 2), a->dilations[1] = rint_in(1, 2);
    a->padding = (gg_padding)rint_in(0, 2);
    for (int i = 0; i < 4; i++) a->pads[i] = a->padding == GG_PAD_EXPLICIT ? rint_in(0, 2) : 0;
  }
  int64_t x[4] = {rint_in(1, 2), rint_in(6, 15), rint_in(6, 15), ci};
  int64_t w[4] = {kh, kw, op == GG_OP_DEPTHWISE ? ci : ci / groups, op == GG_OP_DEPTHWISE ? mult : co};
  int64_t b[1] = {co}, p1[1] = {rint_in(0, 1) ? co : 1};
  tc_f32(t, 0, 4, x);
  tc_f32(t, 1, 4, w);
  if (has_bias) tc_f32(t, 2, 1, b);
  if (act == GG_ACT_PRELU) tc_f32(t, 2 + has_bias, 1, p1);
  tc_desc(t, "%s x[%lld,%lld,%lld,%d] k%dx%d co%d g%d s%d,%d d%d,%d pad%d(%d,%d,%d,%d) bias%d act%d",
          gg__op_name(op), (long long)x[0], (long long)x[1], (long long)x[2], ci, kh, kw, co,
          groups, a->strides[0], a->strides[1], a->dilations[0], a->dilations[1], a->padding,
          a->pads[0], a->pads[1], a->pads[2], a->pads[3], has_bias, act);
}

static void test_conv2d(void) {
  NEED_OPENCL();
  gg_ocl_stats a, b;
  gg__ocl_get_stats(g_ocl, &a);
  seed(1);
  for (int i = 0; i < 24; i++) {
    tcase t;
    make_conv(&t, GG_OP_CONV2D, 0);
    CHECK_CASE(t);
  }
  gg__ocl_get_stats(g_ocl, &b);
  ASSERT_GE(b.conv_im2col - a.conv_im2col, 10);
}

/* The direct kernel: what runs without im2col scratch. */
static void test_conv2d_direct(void) {
  NEED_OPENCL();
  gg_ocl_stats before, st;
  gg__ocl_get_stats(g_ocl, &before);
  gg__ocl_set_workspace(g_ocl, NULL, 0, 0);
  seed(15);
  for (int i = 0; i < 16; i++) {
    tcase t;
    make_conv(&t, GG_OP_CONV2D, 0);
    verdict vd;
    int rc = check_case(g_ocl, &t, &vd);
    tc_free(&t);
    if (rc || !(vd.err <= vd.tol)) {
      fprintf(stderr, "  case %s: max |diff| %.3g, tolerance %.3g\n", t.desc, vd.err, vd.tol);
      gg__ocl_set_workspace(g_ocl, gg_block_devmem(g_ws)->handle, gg_block_offset(g_ws), 64 << 10);
      ASSERT_OK(rc);
      ASSERT_LE_F(vd.err, vd.tol);
    }
  }
  gg__ocl_set_workspace(g_ocl, gg_block_devmem(g_ws)->handle, gg_block_offset(g_ws), 64 << 10);
  gg__ocl_get_stats(g_ocl, &st);
  ASSERT_GE(st.conv_direct - before.conv_direct, 10);
}

static void test_conv1x1_gemm(void) {
  NEED_OPENCL();
  seed(2);
  for (int i = 0; i < 8; i++) {
    tcase t;
    make_conv(&t, GG_OP_CONV2D, 1);
    CHECK_CASE(t);
  }
}

static void test_depthwise(void) {
  NEED_OPENCL();
  seed(3);
  for (int i = 0; i < 16; i++) {
    tcase t;
    make_conv(&t, GG_OP_DEPTHWISE, 0);
    CHECK_CASE(t);
  }
}

static void make_matmul(tcase *t, int M, int N, int K) {
  int has_bias = rint_in(0, 1), act = rint_in(0, GG_ACT_COUNT - 1);
  tc_init(t, GG_OP_MATMUL, 2 + has_bias + (act == GG_ACT_PRELU), 1);
  gg_attrs *a = &t->n.a;
  a->transpose_a = rint_in(0, 1), a->transpose_b = rint_in(0, 1);
  a->has_bias = has_bias, a->act = (gg_act)act, a->alpha = 0.2f;
  int64_t da[2] = {a->transpose_a ? K : M, a->transpose_a ? M : K};
  int64_t db[2] = {a->transpose_b ? N : K, a->transpose_b ? K : N}, b[1] = {N}, p1[1] = {N};
  tc_f32(t, 0, 2, da);
  tc_f32(t, 1, 2, db);
  if (has_bias) tc_f32(t, 2, 1, b);
  if (act == GG_ACT_PRELU) tc_f32(t, 2 + has_bias, 1, p1);
  tc_desc(t, "MatMul %dx%dx%d ta%d tb%d bias%d act%d", M, N, K, a->transpose_a, a->transpose_b,
          has_bias, act);
}

static void test_matmul(void) {
  NEED_OPENCL();
  seed(4);
  for (int i = 0; i < 12; i++) {
    tcase t;
    make_matmul(&t, rint_in(1, 40), rint_in(1, 40), rint_in(1, 70));
    CHECK_CASE(t);
  }
}

/* CLBlast forced on for MatMul and a 1x1 convolution (its first call per
 * device compiles for seconds on a cold PoCL cache: one size only). */
static void test_matmul_clblast(void) {
  NEED_OPENCL();
  gg_ocl_stats st;
  gg__ocl_get_stats(g_ocl, &st);
  if (st.clblast_error[0]) SKIP("CLBlast not loaded: %s", st.clblast_error);
  gg_ocl_params p = {.gemm = GG_OCL_GEMM_CLBLAST};
  gg_ocl *o = NULL;
  char err[1024];
  ASSERT_OK(gg__ocl_new(g_dev, &p, &o, err, sizeof err));
  gg__ocl_set_workspace(o, gg_block_devmem(g_ws)->handle, gg_block_offset(g_ws), 64 << 10);
  gg_ocl *saved = g_ocl;
  g_ocl = o;
  seed(5);
  for (int i = 0; i < 3; i++) {
    tcase t;
    make_matmul(&t, 64 + rint_in(0, 9), 48 + rint_in(0, 9), 96 + rint_in(0, 9));
    CHECK_CASE(t);
  }
  tcase t;
  make_conv(&t, GG_OP_CONV2D, 1);
  CHECK_CASE(t);
  tcase t3;
  do { /* an im2col convolution: its chunks' GEMMs go through CLBlast too */
    make_conv(&t3, GG_OP_CONV2D, 0);
    if (t3.n.a.act == GG_ACT_NONE && t3.v[1].shape[0] * t3.v[1].shape[1] > 1 &&
        t3.v[0].shape[3] == t3.v[1].shape[2])
      break;
    tc_free(&t3);
  } while (1);
  CHECK_CASE(t3);
  g_ocl = saved;
  gg__ocl_get_stats(o, &st);
  gg__ocl_free(o);
  ASSERT_EQ(st.gemm_own, 0);
  ASSERT_GE(st.gemm_clblast, 5);
  ASSERT_EQ(st.conv_im2col, 1);
}

/* A CLBlast that fails: with its own status (as when its kernels do not
 * build on a device) AUTO falls back to the built-in GEMM and the result is
 * still right; with a device status (out of resources) the node fails with
 * that class, named. */
static int g_fake_status;
static int fake_sgemm(int layout, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                      cl_mem a, size_t ao, size_t lda, cl_mem b, size_t bo, size_t ldb,
                      float beta, cl_mem c, size_t co, size_t ldc, cl_command_queue *queue,
                      cl_event *event) {
  return g_fake_status;
}

static void test_clblast_failure(void) {
  NEED_OPENCL();
  const int statuses[3] = {-2048 /* CLBlast's own */, -11 /* build failure */,
                           -5 /* CL_OUT_OF_RESOURCES */};
  for (int i = 0; i < 3; i++) {
    gg_ocl *o = NULL;
    char err[1024];
    ASSERT_OK(gg__ocl_new(g_dev, NULL, &o, err, sizeof err));
    o->clblast_sgemm = fake_sgemm;
    g_fake_status = statuses[i];
    seed(50 + i);
    tcase t;
    make_matmul(&t, 40, 40, 40);
    verdict vd;
    gg_log_level lv = gg_log_get_level();
    gg_log_set_level(GG_LOG_OFF);
    int rc = check_case(o, &t, &vd);
    gg_log_set_level(lv);
    tc_free(&t);
    gg_ocl_stats st;
    gg__ocl_get_stats(o, &st);
    gg__ocl_free(o);
    if (i < 2) {
      ASSERT_OK(rc);
      ASSERT_LE_F(vd.err, vd.tol);
      ASSERT_STREQ(st.gemm, "own");
      ASSERT_EQ(st.gemm_own, 1);
      ASSERT_CONTAINS(st.clblast_error, "CLBlastSgemm failed");
    } else {
      ASSERT_EQ(rc, GG_EOUT_OF_RESOURCES);
    }
  }
}

/* CLBlast vs the built-in GEMM on the shapes the models use. Times are
 * printed, never asserted; only run when GG_OCL_BENCH=1 (CLBlast's first
 * call compiles for seconds on a cold PoCL cache). The two results must
 * agree. */
static void test_gemm_speed(void) {
  NEED_OPENCL();
  const char *on = getenv("GG_OCL_BENCH");
  if (!on || strcmp(on, "1")) SKIP("timing run: GG_OCL_BENCH=1 build-ocl/test-opencl-ops gemm_speed");
  gg_ocl_stats st;
  gg__ocl_get_stats(g_ocl, &st);
  if (st.clblast_error[0]) SKIP("CLBlast not loaded: %s", st.clblast_error);
  static const int k_mnk[][3] = {{16, 16, 16},    {32, 32, 32},    {64, 64, 64},
                                 {256, 256, 256}, {512, 512, 512}, {2704, 96, 96},
                                 {10816, 48, 48}, {3136, 128, 128}, {1820, 128, 1152},
                                 {1, 1024, 1024}};
  gg_ocl_params p = {.gemm = GG_OCL_GEMM_CLBLAST};
  gg_ocl *o[2] = {g_ocl, NULL};
  char err[1024];
  ASSERT_OK(gg__ocl_new(g_dev, &p, &o[1], err, sizeof err));
  double worst = 0;
  for (size_t s = 0; s < sizeof k_mnk / sizeof *k_mnk; s++) {
    int M = k_mnk[s][0], N = k_mnk[s][1], K = k_mnk[s][2];
    size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N;
    gg_block *b = NULL;
    if (gg_pool_alloc(g_pool, (na + nb + 2 * nc) * 4, "test/gemm", &b)) break;
    float *h = malloc((na > nb ? na : nb) * 4), *c[2] = {malloc(nc * 4), malloc(nc * 4)};
    for (size_t i = 0; i < (na > nb ? na : nb); i++) h[i] = rfloat();
    gg_block_copy_to(b, 0, h, na * 4);
    gg_block_copy_to(b, na * 4, h, nb * 4);
    double ms[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
      uint64_t base = gg_block_offset(b) / 4;
      void *m = gg_block_devmem(b)->handle;
      gg_ocl_gemm_args g = {m, m, m, m, m, base, base + na, base + na + nb + i * nc, 0, 0,
                            K, N, 0, 0, M, N, K, 0, 0, 0, 0};
      gg__ocl_gemm(o[i], NULL, &g, err, sizeof err); /* warm-up: compiles */
      gg__ocl_finish(o[i], err, sizeof err);
      double t0 = now_ms();
      for (int r = 0; r < 5; r++) gg__ocl_gemm(o[i], NULL, &g, err, sizeof err);
      gg__ocl_finish(o[i], err, sizeof err);
      ms[i] = (now_ms() - t0) / 5;
      gg_block_copy_from(b, c[i], (na + nb + i * nc) * 4, nc * 4);
    }
    for (size_t i = 0; i < nc; i++)
      worst = gg_t_max_err(worst, fabs((double)c[0][i] - c[1][i]) / (1e-4 * sqrt((double)K)));
    printf("  %5dx%-5dx%-5d own %8.2f ms %6.2f GFLOP/s   CLBlast %8.2f ms %6.2f GFLOP/s\n", M,
           N, K, ms[0], 2.0 * M * N * K / ms[0] / 1e6, ms[1], 2.0 * M * N * K / ms[1] / 1e6);
    free(h), free(c[0]), free(c[1]);
    gg_block_free(b);
  }
  gg__ocl_free(o[1]);
  ASSERT_LE_F(worst, 1.0);
}

/* Operand b's shape: a suffix of a's with some dims set to 1 (broadcast). */
static void make_binary(tcase *t, gg_op op) {
  tc_init(t, op, 2, 1);
  int nd = rint_in(1, 5), ndb = rint_in(1, nd);
  int64_t da[6], db[6];
  for (int i = 0; i < nd; i++) da[i] = rint_in(1, 5);
  for (int i = 0; i < ndb; i++) db[i] = rint_in(0, 2) ? da[nd - ndb + i] : 1;
  int swap = rint_in(0, 1);
  tc_f32(t, swap, nd, da);
  tc_f32(t, !swap, ndb, db);
  if (op != GG_OP_PRELU) t->n.a.act = (gg_act)rint_in(0, 2);
  tc_desc(t, "%s nd %d/%d swap%d act%d", gg__op_name(op), nd, ndb, swap, t->n.a.act);
}

static void test_binary(void) {
  NEED_OPENCL();
  seed(6);
  const gg_op ops[] = {GG_OP_ADD, GG_OP_SUB, GG_OP_MUL, GG_OP_MAXIMUM, GG_OP_MINIMUM, GG_OP_PRELU};
  for (int o = 0; o < 6; o++)
    for (int i = 0; i < 6; i++) {
      tcase t;
      make_binary(&t, ops[o]);
      CHECK_CASE(t);
    }
}

static void test_unary(void) {
  NEED_OPENCL();
  seed(7);
  const gg_op ops[] = {GG_OP_ABS,   GG_OP_SQUARE,     GG_OP_RSQRT,  GG_OP_RELU,
                       GG_OP_RELU6, GG_OP_LEAKY_RELU, GG_OP_SIGMOID, GG_OP_SOFTMAX};
  for (int o = 0; o < 8; o++)
    for (int i = 0; i < 3; i++) {
      tcase t;
      tc_init(&t, ops[o], 1, 1);
      t.n.a.alpha = 0.3f;
      int64_t d[4] = {rint_in(1, 4), rint_in(1, 9), rint_in(1, 9), rint_in(1, 30)};
      tc_f32(&t, 0, rint_in(1, 4), d);
      float *x = t.v[0].data;
      for (int64_t k = 0; k < t.v[0].nelem; k++)
        if (ops[o] == GG_OP_RSQRT) x[k] = fabsf(x[k]) + 0.05f; /* range stays finite */
        else x[k] *= 8;                                        /* crosses 0 and 6 */
      tc_desc(&t, "%s of %lld", gg__op_name(ops[o]), (long long)t.v[0].nelem);
      CHECK_CASE(t);
    }
}

/* The ONNX-era ops' kernels (one or more cases each; test-backend-ops has
 * the many random ones): here at unaligned offsets and, with nvcc, through
 * the CUDA signature check. */
static void onnx_unary(gg_op op, float scale, float shift) {
  tcase t;
  tc_init(&t, op, 1, 1);
  int64_t d[3] = {rint_in(1, 4), rint_in(1, 9), rint_in(1, 30)};
  tc_f32(&t, 0, 3, d);
  float *x = t.v[0].data;
  for (int64_t k = 0; k < t.v[0].nelem; k++)
    x[k] = x[k] * scale + shift;
  t.n.a.alpha = 0.2f, t.n.a.beta = 0.5f, t.n.a.clip_min = -1.5f, t.n.a.clip_max = 2.0f;
  t.n.a.approximate = rint_in(0, 1);
  tc_desc(&t, "%s of %lld", gg__op_name(op), (long long)t.v[0].nelem);
  CHECK_CASE(t);
}

static void test_onnx_ops(void) {
  NEED_OPENCL();
  seed(13);
  const gg_op un[] = {GG_OP_EXP,          GG_OP_NEG,        GG_OP_ERF,  GG_OP_TANH, GG_OP_SOFTPLUS,
                      GG_OP_HARD_SIGMOID, GG_OP_HARD_SWISH, GG_OP_GELU, GG_OP_CLIP};
  for (int o = 0; o < (int)(sizeof un / sizeof *un); o++)
    onnx_unary(un[o], 6.0f, 0.0f);
  onnx_unary(GG_OP_SQRT, 1.0f, 1.01f); /* rfloat is in [-1, 1]: positive */
  onnx_unary(GG_OP_LOG, 1.0f, 1.01f);
  onnx_unary(GG_OP_RECIPROCAL, 1.0f, 1.01f);
  const gg_op bin[] = {GG_OP_DIV, GG_OP_POW, GG_OP_EQUAL, GG_OP_GREATER, GG_OP_LESS};
  for (int o = 0; o < 5; o++) {
    tcase t;
    make_binary(&t, bin[o]);
    for (int k = 0; k < 2; k++) /* positive: a Pow base, a Div divisor */
      for (int64_t i = 0; i < t.v[k].nelem; i++)
        ((float *)t.v[k].data)[i] += 1.5f;
    CHECK_CASE(t);
  }
  { /* Where (cond broadcast), Not, Cast */
    tcase t;
    tc_init(&t, GG_OP_WHERE, 3, 1);
    int32_t c[7] = {1, 0, 0, 1, 1, 0, 1};
    int64_t d[2] = {3, 7};
    tc_i32(&t, 0, 7, c);
    tc_f32(&t, 1, 2, d);
    tc_f32(&t, 2, 1, d + 1);
    tc_desc(&t, "Where [7] [3,7] [7]");
    CHECK_CASE(t);
    tc_init(&t, GG_OP_NOT, 1, 1);
    tc_i32(&t, 0, 7, c);
    tc_desc(&t, "Not [7]");
    CHECK_CASE(t);
    tc_init(&t, GG_OP_CAST, 1, 1);
    tc_f32(&t, 0, 2, d);
    for (int64_t i = 0; i < t.v[0].nelem; i++)
      ((float *)t.v[0].data)[i] *= 1e3f;
    t.n.a.to = GG_DT_I32;
    tc_desc(&t, "Cast [3,7] to int");
    CHECK_CASE(t);
  }
  { /* Slice with a negative step, Gather with constant indices */
    tcase t;
    tc_init(&t, GG_OP_SLICE, 1, 1);
    int64_t d[3] = {4, 5, 6};
    tc_f32(&t, 0, 3, d);
    t.n.a.n_slice = 2;
    t.n.a.slice_axes[0] = 2, t.n.a.slice_starts[0] = -1, t.n.a.slice_ends[0] = 0,
    t.n.a.slice_steps[0] = -2;
    t.n.a.slice_axes[1] = 0, t.n.a.slice_starts[1] = 1, t.n.a.slice_ends[1] = 9,
    t.n.a.slice_steps[1] = 2;
    tc_desc(&t, "Slice [4,5,6]");
    CHECK_CASE(t);
    tc_init(&t, GG_OP_GATHER, 2, 1);
    int32_t ix[3] = {4, -1, 0};
    tc_f32(&t, 0, 3, d);
    tc_i32(&t, 1, 3, ix);
    t.v[1].is_const = 1, t.n.a.axis = 1;
    tc_desc(&t, "Gather [4,5,6] axis 1");
    CHECK_CASE(t);
  }
  { /* AvgPool (ceil_mode, count_include_pad 0), ConvTranspose (groups 2) */
    tcase t;
    tc_init(&t, GG_OP_AVGPOOL, 1, 1);
    int64_t d[4] = {2, 7, 6, 5};
    tc_f32(&t, 0, 4, d);
    t.n.a.ksize[0] = 3, t.n.a.ksize[1] = 2, t.n.a.strides[0] = 2, t.n.a.strides[1] = 2;
    t.n.a.padding = GG_PAD_EXPLICIT, t.n.a.pads[0] = 1, t.n.a.pads[3] = 1;
    t.n.a.ceil_mode = 1;
    tc_desc(&t, "AvgPool [2,7,6,5] 3x2 s2 ceil");
    CHECK_CASE(t);
    tc_init(&t, GG_OP_CONV_TRANSPOSE, 3, 1);
    int64_t x[4] = {1, 4, 5, 4}, w[4] = {3, 2, 3, 4}, b = 6;
    tc_f32(&t, 0, 4, x);
    tc_f32(&t, 1, 4, w);
    tc_f32(&t, 2, 1, &b);
    t.n.a.groups = 2, t.n.a.strides[0] = 2, t.n.a.strides[1] = 3, t.n.a.pads[0] = 1;
    t.n.a.output_padding[1] = 1, t.n.a.act = GG_ACT_RELU;
    tc_desc(&t, "ConvTranspose [1,4,5,4] [3,2,3,4] groups 2");
    CHECK_CASE(t);
  }
  { /* BatchMatMul with broadcast batch dims, LayerNorm with its optional outputs */
    tcase t;
    tc_init(&t, GG_OP_BATCH_MATMUL, 2, 1);
    int64_t a[4] = {2, 1, 19, 21}, b[3] = {3, 21, 17};
    tc_f32(&t, 0, 4, a);
    tc_f32(&t, 1, 3, b);
    tc_desc(&t, "BatchMatMul [2,1,19,21] [3,21,17]");
    CHECK_CASE(t);
    tc_init(&t, GG_OP_LAYER_NORM, 3, 3);
    int64_t x[3] = {3, 4, 10};
    tc_f32(&t, 0, 3, x);
    tc_f32(&t, 1, 1, x + 2);
    tc_f32(&t, 2, 2, x + 1);
    t.n.a.axis = 1, t.n.a.epsilon = 1e-5f;
    tc_desc(&t, "LayerNorm [3,4,10] axis 1");
    CHECK_CASE(t);
  }
  { /* LogSoftmax, ReduceMax / L2 over axes, Expand, Tile, GroupNorm */
    tcase t;
    int64_t d[3] = {3, 4, 9}, one[3] = {3, 1, 9};
    onnx_unary(GG_OP_LOG_SOFTMAX, 6.0f, 0.0f);
    for (int k = 0; k < 2; k++) {
      tc_init(&t, k ? GG_OP_REDUCE_L2 : GG_OP_REDUCE_MAX, 2, 1);
      int32_t ax[2] = {0, -1};
      tc_f32(&t, 0, 3, d);
      tc_i32(&t, 1, 2, ax);
      t.n.a.keep_dims = k;
      tc_desc(&t, "%s [3,4,9] axes 0,-1", gg__op_name(t.n.op));
      CHECK_CASE(t);
    }
    tc_init(&t, GG_OP_EXPAND, 2, 1);
    int32_t shp[4] = {2, 3, 4, 9};
    tc_f32(&t, 0, 3, one);
    tc_i32(&t, 1, 4, shp);
    tc_desc(&t, "Expand [3,1,9] to [2,3,4,9]");
    CHECK_CASE(t);
    tc_init(&t, GG_OP_TILE, 2, 1);
    int32_t rep[3] = {2, 3, 1};
    tc_f32(&t, 0, 3, one);
    tc_i32(&t, 1, 3, rep);
    tc_desc(&t, "Tile [3,1,9] x [2,3,1]");
    CHECK_CASE(t);
    tc_init(&t, GG_OP_GROUP_NORM, 3, 1);
    int64_t x[4] = {2, 6, 5, 7}, c = 6;
    tc_f32(&t, 0, 4, x);
    tc_f32(&t, 1, 1, &c);
    tc_f32(&t, 2, 1, &c);
    t.n.a.groups = 3, t.n.a.epsilon = 1e-5f;
    tc_desc(&t, "GroupNorm [2,6,5,7] groups 3");
    CHECK_CASE(t);
  }
  { /* the TF.js ops that had no kernel: DepthToSpace, ResizeNearestNeighbor */
    tcase t;
    tc_init(&t, GG_OP_DEPTH_TO_SPACE, 1, 1);
    int64_t d[4] = {2, 3, 4, 12};
    tc_f32(&t, 0, 4, d);
    t.n.a.block_size = 2;
    tc_desc(&t, "DepthToSpace [2,3,4,12] bs 2");
    CHECK_CASE(t);
    tc_init(&t, GG_OP_RESIZE_NEAREST, 2, 1);
    int32_t sz[2] = {7, 9};
    tc_f32(&t, 0, 4, d);
    tc_i32(&t, 1, 2, sz);
    t.n.a.half_pixel_centers = 1;
    tc_desc(&t, "ResizeNearestNeighbor [2,3,4,12] -> 7x9 half-pixel");
    CHECK_CASE(t);
  }
  for (int mode = 0; mode < 2; mode++) { /* Resize nearest / linear */
    tcase t;
    tc_init(&t, GG_OP_RESIZE, 1, 1);
    int64_t d[4] = {1, 3, 5, 7}; /* 7 channels: a full and a partial group of 4 */
    tc_f32(&t, 0, 4, d);
    t.n.a.resize_mode = (gg_resize_mode)mode;
    t.n.a.coord_mode = mode ? GG_COORD_HALF_PIXEL : GG_COORD_ASYMMETRIC;
    t.n.a.out_hw[0] = 6, t.n.a.out_hw[1] = 7;
    tc_desc(&t, "Resize mode %d [1,3,5,7] -> 6x7", mode);
    CHECK_CASE(t);
  }
}

static void test_reduce(void) {
  NEED_OPENCL();
  seed(8);
  for (int i = 0; i < 16; i++) {
    tcase t;
    gg_op op = i % 2 ? GG_OP_MEAN : GG_OP_SUM;
    tc_init(&t, op, 2, 1);
    int nd = rint_in(1, 4), nax = rint_in(1, nd);
    int64_t d[4] = {rint_in(1, 5), rint_in(1, 9), rint_in(1, 9), rint_in(1, 9)};
    int32_t ax[4], used = 0;
    for (int k = 0; k < nax; k++) {
      int a;
      do a = rint_in(0, nd - 1);
      while (used & (1 << a));
      used |= 1 << a;
      ax[k] = rint_in(0, 1) ? a - nd : a; /* negative axes too */
    }
    tc_f32(&t, 0, nd, d);
    tc_i32(&t, 1, nax, ax);
    t.n.a.keep_dims = rint_in(0, 1);
    tc_desc(&t, "%s nd %d axes-mask %d keep %d", gg__op_name(op), nd, used, t.n.a.keep_dims);
    CHECK_CASE(t);
  }
}

static void test_maxpool(void) {
  NEED_OPENCL();
  seed(9);
  for (int i = 0; i < 12; i++) {
    tcase t;
    tc_init(&t, GG_OP_MAXPOOL, 1, 1);
    gg_attrs *a = &t.n.a;
    a->ksize[0] = rint_in(1, 3), a->ksize[1] = rint_in(1, 3);
    a->strides[0] = rint_in(1, 3), a->strides[1] = rint_in(1, 3);
    a->padding = (gg_padding)rint_in(0, 1);
    int64_t d[4] = {rint_in(1, 2), rint_in(3, 12), rint_in(3, 12), rint_in(1, 9)};
    tc_f32(&t, 0, 4, d);
    tc_desc(&t, "MaxPool k%dx%d s%d,%d pad%d", a->ksize[0], a->ksize[1], a->strides[0],
            a->strides[1], a->padding);
    CHECK_CASE(t);
  }
}

static void test_pad(void) {
  NEED_OPENCL();
  seed(10);
  for (int i = 0; i < 10; i++) {
    tcase t;
    int with_value = rint_in(0, 1);
    tc_init(&t, GG_OP_PAD, 2 + with_value, 1);
    int nd = rint_in(1, 5);
    int64_t d[5];
    int32_t p[10];
    for (int k = 0; k < nd; k++) d[k] = rint_in(1, 6), p[2 * k] = rint_in(0, 2), p[2 * k + 1] = rint_in(0, 2);
    tc_f32(&t, 0, nd, d);
    tc_i32(&t, 1, 2 * nd, p);
    t.v[1].ndim = 2, t.v[1].shape[0] = nd, t.v[1].shape[1] = 2;
    if (with_value) {
      int64_t one = 1;
      tc_f32(&t, 2, 0, &one);
    }
    tc_desc(&t, "Pad nd %d value %d", nd, with_value);
    CHECK_CASE(t);
  }
}

static void test_transpose(void) {
  NEED_OPENCL();
  seed(11);
  for (int i = 0; i < 18; i++) {
    tcase t;
    tc_init(&t, GG_OP_TRANSPOSE, 2, 1);
    int nd = rint_in(1, 6);
    int64_t d[6];
    int32_t perm[6];
    for (int k = 0; k < nd; k++) d[k] = rint_in(1, 5), perm[k] = k;
    for (int k = nd - 1; k > 0; k--) {
      int j = rint_in(0, k);
      int32_t s = perm[k];
      perm[k] = perm[j], perm[j] = s;
    }
    if (i % 3 == 0) { /* NHWC <-> NCHW, larger than one 16x16 tile (the tiled kernel) */
      static const int32_t k_perm[2][4] = {{0, 3, 1, 2}, {0, 2, 3, 1}};
      nd = 4;
      d[0] = rint_in(1, 2), d[1] = rint_in(1, 40), d[2] = rint_in(1, 9), d[3] = rint_in(1, 40);
      memcpy(perm, k_perm[i % 2], sizeof k_perm[0]);
    }
    tc_f32(&t, 0, nd, d);
    tc_i32(&t, 1, nd, perm);
    tc_desc(&t, "Transpose nd %d", nd);
    CHECK_CASE(t);
  }
}

static void test_concat_split(void) {
  NEED_OPENCL();
  seed(12);
  for (int i = 0; i < 12; i++) {
    tcase t;
    int nd = rint_in(1, 4), ax = rint_in(0, nd - 1), parts = rint_in(1, 4);
    int64_t d[4];
    for (int k = 0; k < nd; k++) d[k] = rint_in(1, 5);
    if (i % 2 == 0) {
      tc_init(&t, GG_OP_CONCAT, parts + 1, 1);
      for (int k = 0; k < parts; k++) {
        d[ax] = rint_in(1, 4);
        tc_f32(&t, k, nd, d);
      }
      int32_t a = rint_in(0, 1) ? ax - nd : ax;
      tc_i32(&t, parts, 1, &a);
      tc_desc(&t, "ConcatV2 %d parts nd %d axis %d", parts, nd, a);
    } else {
      tc_init(&t, GG_OP_SPLITV, 3, parts);
      int32_t sizes[4], tot = 0, a = ax, neg = rint_in(0, 1) ? rint_in(0, parts - 1) : -1;
      for (int k = 0; k < parts; k++) sizes[k] = k == neg ? -1 : rint_in(0, 3);
      for (int k = 0; k < parts; k++) tot += k == neg ? 0 : sizes[k];
      d[ax] = tot + (neg >= 0 ? rint_in(0, 3) : 0);
      tc_f32(&t, 0, nd, d);
      tc_i32(&t, 1, parts, sizes);
      tc_i32(&t, 2, 1, &a);
      tc_desc(&t, "SplitV %d parts nd %d axis %d dim %lld", parts, nd, a, (long long)d[ax]);
    }
    CHECK_CASE(t);
  }
}

static void test_resize_bilinear(void) {
  NEED_OPENCL();
  seed(13);
  for (int i = 0; i < 12; i++) {
    tcase t;
    tc_init(&t, GG_OP_RESIZE_BILINEAR, 2, 1);
    int mode = i % 3; /* legacy, align_corners, half_pixel_centers */
    t.n.a.align_corners = mode == 1, t.n.a.half_pixel_centers = mode == 2;
    int64_t d[4] = {rint_in(1, 2), rint_in(1, 9), rint_in(1, 9), rint_in(1, 5)};
    int32_t size[2] = {rint_in(1, 20), rint_in(1, 20)};
    tc_f32(&t, 0, 4, d);
    tc_i32(&t, 1, 2, size);
    tc_desc(&t, "ResizeBilinear mode %d %lldx%lld -> %dx%d", mode, (long long)d[1],
            (long long)d[2], size[0], size[1]);
    CHECK_CASE(t);
  }
}

/* Reshape / Squeeze / Identity: a no-op on a shared view, a copy otherwise. */
static void test_views(void) {
  NEED_OPENCL();
  seed(14);
  for (int i = 0; i < 6; i++) {
    tcase t;
    int64_t d[4] = {rint_in(1, 4), 1, rint_in(1, 6), rint_in(1, 6)};
    if (i % 3 == 0) {
      tc_init(&t, GG_OP_RESHAPE, 2, 1);
      int32_t shp[2] = {-1, (int32_t)d[3]};
      tc_f32(&t, 0, 4, d);
      tc_i32(&t, 1, 2, shp);
    } else {
      tc_init(&t, i % 3 == 1 ? GG_OP_SQUEEZE : GG_OP_IDENTITY, 1, 1);
      tc_f32(&t, 0, 4, d);
    }
    t.same_view = i % 2;
    tc_desc(&t, "%s shared view %d", gg__op_name(t.n.op), t.same_view);
    CHECK_CASE(t);
  }
}

/* ---- a wrong kernel must fail the comparison ------------------------------ */

static void test_mutation_is_caught(void) {
  NEED_OPENCL();
  gg_ocl_params p = {.build_options = "-DGG_MUTATE", .cache_dir = ""};
  gg_ocl *bad = NULL;
  char err[1024];
  ASSERT_OK(gg__ocl_new(g_dev, &p, &bad, err, sizeof err));
  seed(6);
  int caught = 0, total = 0;
  for (int i = 0; i < 6; i++) {
    tcase t;
    make_binary(&t, GG_OP_ADD);
    verdict vd;
    int rc = check_case(bad, &t, &vd);
    tc_free(&t);
    if (rc) break;
    total++;
    caught += !(vd.err <= vd.tol);
  }
  gg__ocl_free(bad);
  printf("  the mutated Add kernel failed %d of %d comparisons\n", caught, total);
  ASSERT_EQ(total, 6);
  ASSERT_EQ(caught, total);
}

/* ---- the program cache ---------------------------------------------------- */

static int file_flip(const char *path, long at, int set_garbage) {
  FILE *f = fopen(path, "r+b");
  if (!f) return -1;
  if (set_garbage) {
    /* keep the header and checksum valid over a payload the driver cannot
     * load: the same length, FNV-1a recomputed */
    fseek(f, 8, SEEK_SET);
    uint64_t n = 0;
    if (fread(&n, 8, 1, f) != 1) n = 0;
    unsigned char *b = malloc(n ? n : 1);
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint64_t i = 0; i < n; i++) b[i] = (unsigned char)(i * 7 + 3), h = (h ^ b[i]) * 0x100000001b3ull;
    fseek(f, 16, SEEK_SET);
    fwrite(&h, 8, 1, f);
    fwrite(b, 1, n, f);
    free(b);
  } else {
    fseek(f, at, SEEK_SET);
    int c = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(c ^ 0x5a, f);
  }
  return fclose(f);
}

static int cache_round(const char *dir, gg_ocl_stats *st) {
  gg_ocl_params p = {.cache_dir = dir};
  gg_ocl *o = NULL;
  char err[1024];
  int rc = gg__ocl_new(g_dev, &p, &o, err, sizeof err);
  if (rc) return rc;
  gg__ocl_get_stats(o, st);
  /* the program must work whichever way it was made */
  seed(20);
  tcase t;
  make_conv(&t, GG_OP_CONV2D, 0);
  verdict vd;
  rc = check_case(o, &t, &vd);
  tc_free(&t);
  gg__ocl_free(o);
  if (!rc && !(vd.err <= vd.tol)) rc = GG_ERANGE;
  return rc;
}

static void test_program_cache(void) {
  NEED_OPENCL();
  char dir[] = "/tmp/gg-ocl-cache-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir) != NULL);
  char sub[64];
  snprintf(sub, sizeof sub, "%s/a/b", dir); /* created on demand */
  gg_ocl_stats s1, s2, s3, s4, s5;
  ASSERT_OK(cache_round(sub, &s1));
  ASSERT_OK(cache_round(sub, &s2));
  ASSERT_OK(file_flip(s2.cache_path, 100, 0)); /* one byte of the payload */
  ASSERT_OK(cache_round(sub, &s3));
  ASSERT_OK(file_flip(s3.cache_path, 0, 1)); /* valid checksum, garbage binary */
  ASSERT_OK(cache_round(sub, &s4));
  ASSERT_OK(cache_round(sub, &s5));
  printf("  build %.0f ms, from cache %.0f ms (%s)\n", s1.build_ms, s2.build_ms, s1.cache_path);
  unlink(s1.cache_path);
  char p[96];
  snprintf(p, sizeof p, "%s/a/b", dir), rmdir(p);
  snprintf(p, sizeof p, "%s/a", dir), rmdir(p);
  rmdir(dir);
  ASSERT_EQ(s1.from_cache, 0);
  ASSERT_EQ(s1.cache_rejected, 0);
  ASSERT_EQ(s2.from_cache, 1);
  ASSERT_EQ(s3.from_cache, 0); /* checksum mismatch: rebuilt */
  ASSERT_EQ(s3.cache_rejected, 1);
  ASSERT_EQ(s4.from_cache, 0); /* the driver refused it: rebuilt */
  ASSERT_EQ(s4.cache_rejected, 1);
  ASSERT_EQ(s5.from_cache, 1); /* and rewritten */
}

/* ---- errors --------------------------------------------------------------- */

static void test_errors_classified(void) {
  NEED_OPENCL();
  gg_node n = {.name = "conv_57", .src_op = "Conv2D", .op = GG_OP_CONV2D};
  char err[512];
  const struct {
    int cl, gg;
  } k[] = {{-5, GG_EOUT_OF_RESOURCES}, {-4, GG_EDEV_OOM}, {-14, GG_EDEVICE_LOST},
           {-11, GG_ECOMPILE},        {-36, GG_EDEVICE_LOST}};
  for (size_t i = 0; i < sizeof k / sizeof *k; i++) {
    ASSERT_EQ(gg__ocl_fail(g_ocl, &n, k[i].cl, "clEnqueueNDRangeKernel", err, sizeof err), k[i].gg);
    ASSERT_CONTAINS(err, "node 'conv_57' (Conv2D)");
  }
  ASSERT_CONTAINS(err, "CL_INVALID_COMMAND_QUEUE");
  /* a real build failure: classified, with the compiler's log */
  gg_ocl_params p = {.build_options = "-DGG_BREAK_BUILD", .cache_dir = ""};
  gg_ocl *o = NULL;
  gg_log_level lv = gg_log_get_level();
  gg_log_set_level(GG_LOG_OFF); /* the expected build log is long */
  int rc = gg__ocl_new(g_dev, &p, &o, err, sizeof err);
  gg_log_set_level(lv);
  ASSERT_TRUE(o == NULL);
  ASSERT_EQ(rc, GG_ECOMPILE);
  ASSERT_CONTAINS(err, "CL_BUILD_PROGRAM_FAILURE");
  ASSERT_CONTAINS(err, "GG_BREAK_BUILD");
  /* an op the backend has no kernel for is refused by name */
  gg_node s = {.name = "s2d", .src_op = "SparseToDense", .op = GG_OP_SPARSE_TO_DENSE};
  ASSERT_EQ(gg__ocl_run(g_ocl, &s, NULL, NULL, err, sizeof err), GG_EUNSUPPORTED);
  ASSERT_CONTAINS(err, "s2d");
}

/* ---- the four bundled models, node by node -------------------------------- */

static void run_model(const char *name) {
  char path[512], rel[128];
  snprintf(rel, sizeof rel, "models/human-models-3.0.4/models/%s.json", name);
  gg_t_cache_path(path, sizeof path, rel);
  if (access(path, R_OK)) SKIP("%s not fetched (scripts/fetch-models.sh)", path);
  gg_model *m = NULL;
  char err[1024];
  ASSERT_OK(gg_model_load(path, &m, err, sizeof err));
  const gg_graph *g = gg__model_graph(m);
  gg_tval *v = calloc((size_t)g->n_tensors, sizeof *v);
  void **own = calloc((size_t)g->n_tensors, sizeof *own);
  for (int i = 0; i < g->n_tensors; i++) v[i] = g->tensors[i].v;
  seed(30);
  for (int i = 0; i < g->n_inputs; i++) {
    gg_tval *x = &v[g->inputs[i]];
    for (int d = 0; d < x->ndim; d++) /* batch -1 in the file: run one */
      if (x->shape[d] < 0) x->shape[d] = 1;
    x->dtype = GG_DT_F32;
    ASSERT_OK(gg__shape_nelem(x->shape, x->ndim, &x->nelem));
    float *p = malloc((size_t)x->nelem * 4 + 64);
    for (int64_t k = 0; k < x->nelem; k++) p[k] = (rfloat() + 1) / 2;
    x->data = own[g->inputs[i]] = p;
  }
  int rc = 0, unsupported = 0;
  double worst = 0, t_ocl = 0, t_ref = 0;
  const char *worst_node = "";
  for (int s = 0; s < g->n_order && !rc; s++) {
    const gg_node *n = &g->nodes[g->order[s]];
    if ((rc = gg__op_infer(n, v, err, sizeof err))) break;
    gg_tval ref[8];
    for (int k = 0; k < n->n_out; k++) {
      gg_tval *y = &v[n->out[k]];
      y->data = own[n->out[k]] = calloc((size_t)y->nelem + 16, 4);
      ref[k] = *y;
    }
    double t0 = now_ms();
    if ((rc = gg__op_run(n, v, NULL))) break;
    t_ref += now_ms() - t0;
    gg_tval loc[MAXT];
    gg_node ln = *n;
    int ids[MAXT];
    if (n->n_in + n->n_out > MAXT) {
      rc = GG_ERANGE;
      break;
    }
    for (int k = 0; k < n->n_in; k++) loc[k] = v[n->in[k]], ids[k] = k;
    for (int k = 0; k < n->n_out; k++) loc[n->n_in + k] = v[n->out[k]], ids[n->n_in + k] = n->n_in + k;
    ln.in = ids, ln.out = ids + n->n_in;
    gg_ocl_arg sa[MAXT];
    const char *why = NULL;
    for (int k = 0; k < n->n_in + n->n_out; k++) sa[k].v = &loc[k];
    if (!gg__ocl_supports(&ln, sa, sa + n->n_in, &why)) {
      fprintf(stderr, "  %s node '%s' (%s): not on OpenCL: %s\n", name, n->name, n->src_op, why);
      unsupported++;
      continue;
    }
    verdict vd = {0};
    t0 = now_ms();
    rc = run_compare(g_ocl, &ln, loc, ref, 0, &vd, err, sizeof err);
    t_ocl += now_ms() - t0;
    if (rc) break;
    double rel_err = vd.err / vd.tol;
    if (!(rel_err <= worst)) worst_node = n->name;
    worst = gg_t_max_err(worst, rel_err);
    if (!(vd.err <= vd.tol))
      fprintf(stderr, "  %s node %d '%s' (%s) output %d: max |diff| %.3g > tolerance %.3g\n",
              name, s, n->name, n->src_op, vd.out, vd.err, vd.tol);
  }
  if (rc) fprintf(stderr, "  %s: %s (%s)\n", name, err, gg_err_name(rc));
  printf("  %s: %d ops on OpenCL, worst error %.3f of the tolerance (node %s); naive %.0f ms, "
         "OpenCL incl. transfers %.0f ms\n",
         name, g->n_order, worst, worst_node, t_ref, t_ocl);
  for (int i = 0; i < g->n_tensors; i++) free(own[i]);
  free(own);
  free(v);
  gg_model_free(m);
  ASSERT_OK(rc);
  ASSERT_EQ(unsupported, 0);
  ASSERT_LE_F(worst, 1.0);
}

static void test_model_blazeface(void) {
  NEED_OPENCL();
  run_model("blazeface");
}
static void test_model_mobilefacenet(void) {
  NEED_OPENCL();
  run_model("mobilefacenet");
}
static void test_model_nanodet(void) {
  NEED_OPENCL();
#if defined(__SANITIZE_ADDRESS__)
  /* its naive reference alone takes ~25 s under ASan; session_nanodet runs
   * the whole model there */
  SKIP("nanodet node by node is release-build only (slow naive oracle under ASan)");
#endif
  run_model("nanodet");
}
static void test_model_faceres(void) {
  NEED_OPENCL();
  run_model("faceres");
}

/* The whole model through the engine's scheduler on opencl:0.0 (the
 * "opencl" backend registered by backend-opencl.c) against the CPU session
 * (XNNPACK where available): every op on OpenCL, each output within 1e-4 of
 * its range, predicted == measured on each device. */
static void run_session(const char *name) {
  char path[512], rel[128], err[1024];
  snprintf(rel, sizeof rel, "models/human-models-3.0.4/models/%s.json", name);
  gg_t_cache_path(path, sizeof path, rel);
  if (access(path, R_OK)) SKIP("%s not fetched (scripts/fetch-models.sh)", path);
  gg_model *m = NULL;
  gg_session *cpu = NULL, *ocl = NULL;
  ASSERT_OK(gg_model_load(path, &m, err, sizeof err));
  int rc = gg_session_new(m, NULL, 0, NULL, &cpu, err, sizeof err);
  if (!rc) rc = gg_session_new_on(m, NULL, 0, NULL, g_pool, &ocl, err, sizeof err);
  if (rc) fprintf(stderr, "  %s: %s\n", name, err);
  gg_tensor_info ti;
  float *xc = rc ? NULL : gg_session_input(cpu, 0, &ti), *xo = rc ? NULL : gg_session_input(ocl, 0, NULL);
  int64_t ne = 1;
  for (int d = 0; xc && d < ti.ndim; d++) ne *= ti.shape[d];
  seed(40);
  for (int64_t i = 0; xc && xo && i < ne; i++) xc[i] = xo[i] = (rfloat() + 1) / 2;
  double t0 = now_ms(), t1 = 0, t2 = 0;
  if (!rc) rc = gg_session_run(cpu, err, sizeof err);
  t1 = now_ms();
  if (!rc) rc = gg_session_run(ocl, err, sizeof err); /* first run: PoCL specializes kernels */
  t2 = now_ms();
  if (!rc) rc = gg_session_run(ocl, err, sizeof err);
  double t3 = now_ms();
  double worst = 0;
  int nout = 0;
  gg_engine_mem mem = {0};
  for (int i = 0; !rc && gg_session_output(cpu, i, &ti); i++, nout++) {
    gg_tval ref = {.dtype = GG_DT_F32, .nelem = gg_session_output_elems(cpu, i),
                   .data = (void *)gg_session_output(cpu, i, NULL)};
    verdict vd = {0};
    compare(&ref, gg_session_output(ocl, i, NULL), i, &vd);
    worst = gg_t_max_err(worst, vd.err / vd.tol);
  }
  int on_ocl = rc ? 0 : gg_session_ops_by_backend(ocl, "opencl");
  if (!rc) gg_session_memory(ocl, &mem);
  if (rc) fprintf(stderr, "  %s: %s (%s)\n", name, err, gg_err_name(rc));
  else
    printf("  %s: %d of %d ops on opencl, %d outputs, worst error %.3f of the tolerance; "
           "cpu %.0f ms, opencl first run %.0f ms, second %.0f ms\n",
           name, on_ocl, mem.n_ops, nout, worst, t1 - t0, t2 - t1, t3 - t2);
  for (int d = 0; d < mem.n_devices; d++)
    printf("    %-10s predicted %llu measured %llu\n", mem.dev[d].device,
           (unsigned long long)mem.dev[d].predicted, (unsigned long long)mem.dev[d].measured);
  gg_session_free(ocl);
  gg_session_free(cpu);
  gg_model_free(m);
  ASSERT_OK(rc);
  ASSERT_EQ(on_ocl, mem.n_ops);
  ASSERT_GE(nout, 1);
  ASSERT_LE_F(worst, 1.0);
  /* The im2col scratch is backend workspace on the device; the scheduler
   * (exec.c) books all workspace on the host for now, so the per-device
   * split can differ while the total must not. */
  ASSERT_U64_EQ(mem.predicted, mem.measured);
}

static void test_session_blazeface(void) {
  NEED_OPENCL();
  run_session("blazeface");
}
static void test_session_mobilefacenet(void) {
  NEED_OPENCL();
  run_session("mobilefacenet");
}
static void test_session_nanodet(void) {
  NEED_OPENCL();
  run_session("nanodet");
}
static void test_session_faceres(void) {
  NEED_OPENCL();
  run_session("faceres");
}

/* The lean plan of the convolutions: on a pool whose budget holds the
 * arena and the weights but not the im2col scratch, nanodet still runs
 * entirely on OpenCL (its convolutions then take smaller scratch chunks or
 * the direct kernel, which needs no memory) and still matches the CPU. With
 * large_segment 1 every large block gets a segment of its own rounded to
 * 2 MiB, so the budget below is the arena's and the weights' segments and
 * only their tails are left for scratch. */
static uint64_t seg2m(uint64_t b) { return (b + (2u << 20) - 1) / (2u << 20) * (2u << 20); }

static void test_session_lean_scratch(void) {
  NEED_OPENCL();
  char path[512], err[1024];
  gg_t_cache_path(path, sizeof path, "models/human-models-3.0.4/models/nanodet.json");
  if (access(path, R_OK)) SKIP("%s not fetched (scripts/fetch-models.sh)", path);
  gg_pool_config cfg;
  gg_pool_config_default(&cfg);
  cfg.large_segment = 1;
  gg_pool *pool = NULL;
  gg_model *m = NULL;
  gg_session *fast = NULL, *lean = NULL, *cpu = NULL;
  ASSERT_OK(gg_pool_new(g_dev, &cfg, &pool));
  ASSERT_OK(gg_model_load(path, &m, err, sizeof err));
  int rc = gg_session_new_on(m, NULL, 0, NULL, pool, &fast, err, sizeof err);
  gg_pool_stats st = {0};
  gg_pool_get_stats(pool, &st);
  uint64_t scratch = gg_pool_owner_bytes(pool, "engine/opencl-im2col");
  uint64_t budget = st.reserved_small + seg2m(gg_pool_owner_bytes(pool, "engine/arena")) +
                    seg2m(gg_pool_owner_bytes(pool, "engine/weights"));
  gg_session_free(fast);
  gg_pool_trim(pool, NULL);
  gg_pool_set_budget(pool, budget);
  if (!rc) rc = gg_session_new_on(m, NULL, 0, NULL, pool, &lean, err, sizeof err);
  if (!rc) rc = gg_session_new(m, NULL, 0, NULL, &cpu, err, sizeof err);
  uint64_t lean_scratch = gg_pool_owner_bytes(pool, "engine/opencl-im2col");
  gg_tensor_info ti;
  float *xc = rc ? NULL : gg_session_input(cpu, 0, &ti), *xl = rc ? NULL : gg_session_input(lean, 0, NULL);
  int64_t ne = 1;
  for (int d = 0; xc && d < ti.ndim; d++) ne *= ti.shape[d];
  seed(41);
  for (int64_t i = 0; xc && xl && i < ne; i++) xc[i] = xl[i] = (rfloat() + 1) / 2;
  if (!rc) rc = gg_session_run(cpu, err, sizeof err);
  if (!rc) rc = gg_session_run(lean, err, sizeof err);
  double worst = 0;
  for (int i = 0; !rc && gg_session_output(cpu, i, NULL); i++) {
    gg_tval ref = {.dtype = GG_DT_F32, .nelem = gg_session_output_elems(cpu, i),
                   .data = (void *)gg_session_output(cpu, i, NULL)};
    verdict vd = {0};
    compare(&ref, gg_session_output(lean, i, NULL), i, &vd);
    worst = gg_t_max_err(worst, vd.err / vd.tol);
  }
  int on_ocl = rc ? 0 : gg_session_ops_by_backend(lean, "opencl");
  gg_engine_mem mem = {0};
  if (!rc) gg_session_memory(lean, &mem);
  if (rc) fprintf(stderr, "  %s (%s)\n", err, gg_err_name(rc));
  printf("  nanodet: im2col scratch %llu bytes; under a %llu-byte budget (arena + weights "
         "segments): scratch %llu bytes, %d of %d ops on opencl, worst error %.3f of the "
         "tolerance\n", (unsigned long long)scratch, (unsigned long long)budget,
         (unsigned long long)lean_scratch, on_ocl, mem.n_ops, worst);
  gg_session_free(lean);
  gg_session_free(cpu);
  gg_model_free(m);
  gg_pool_free(pool);
  ASSERT_OK(rc);
  ASSERT_GE(scratch, 1);
  ASSERT_LE(lean_scratch + 1, scratch);
  ASSERT_EQ(on_ocl, mem.n_ops);
  ASSERT_LE_F(worst, 1.0);
  ASSERT_U64_EQ(mem.predicted, mem.measured);
}

static void teardown(void) {
  gg__ocl_free(g_ocl);
  gg_block_free(g_ws);
  gg_pool_free(g_pool);
  gg_device_free(g_dev);
}

#else /* !GG_HAVE_OPENCL_BACKEND */

static void test_opencl_backend(void) { SKIP("built with -DGG_OPENCL=OFF: no OpenCL backend"); }
static void teardown(void) {}

#endif

static const gg_test_case k_cases[] = {
#if GG_HAVE_OPENCL_BACKEND
    {"conv2d", test_conv2d},
    {"conv2d_direct", test_conv2d_direct},
    {"conv1x1_gemm", test_conv1x1_gemm},
    {"depthwise", test_depthwise},
    {"matmul", test_matmul},
    {"matmul_clblast", test_matmul_clblast},
    {"clblast_failure", test_clblast_failure},
    {"gemm_speed", test_gemm_speed},
    {"binary", test_binary},
    {"unary", test_unary},
    {"reduce", test_reduce},
    {"maxpool", test_maxpool},
    {"pad", test_pad},
    {"transpose", test_transpose},
    {"concat_split", test_concat_split},
    {"resize_bilinear", test_resize_bilinear},
    {"onnx_ops", test_onnx_ops},
    {"views", test_views},
    {"mutation_is_caught", test_mutation_is_caught},
    {"program_cache", test_program_cache},
    {"errors_classified", test_errors_classified},
    {"model_blazeface", test_model_blazeface},
    {"model_mobilefacenet", test_model_mobilefacenet},
    {"model_nanodet", test_model_nanodet},
    {"model_faceres", test_model_faceres},
    {"session_blazeface", test_session_blazeface},
    {"session_mobilefacenet", test_session_mobilefacenet},
    {"session_nanodet", test_session_nanodet},
    {"session_faceres", test_session_faceres},
    {"session_lean_scratch", test_session_lean_scratch},
    {"cuda_signatures", test_cuda_signatures},
#else
    {"opencl_backend", test_opencl_backend},
#endif
    {NULL, NULL}};

int main(int argc, char **argv) {
  int rc = gg_test_main(argc, argv, k_cases);
#if GG_HAVE_OPENCL_BACKEND
  if (g_sig_bad) {
    fprintf(stderr, "FAIL: %d of %d launches did not match the CUDA kernels' signatures\n",
            g_sig_bad, g_sig_checked);
    rc = 1;
  } else if (g_sig_checked) {
    printf("  %d launches matched the CUDA kernels' signatures\n", g_sig_checked);
  }
#endif
  teardown();
  return rc;
}
