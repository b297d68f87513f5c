/* The ONNX-era group S ops (src/engine/ops-shape.c) and the Pad modes /
 * MaxPool ceil_mode, each against expectations computed independently of
 * the kernels: hand-written arrays (several taken from ONNX's own node-test
 * data), or direct loops written the other way round (ConvTranspose as a
 * scatter, AvgPool over an explicitly padded image, BatchMatMul as a
 * dot product per output). The heavy kernels also run on a thread pool and
 * must give the same bits as serially. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/error.h"
#include "test.h"

#include <float.h>
#include <stdint.h>

#if defined(__has_include)
#if __has_include(<pthreadpool.h>)
#include <pthreadpool.h>
#define HAVE_POOL 1
#endif
#endif

/* One node with its tensors (inputs then the output), host data owned. */
typedef struct tn {
  gg_node n;
  gg_tval v[8];
  int in[6], out[1], nt;
  char err[256];
} tn;

static void tn_init(tn *t, gg_op op) {
  memset(t, 0, sizeof *t);
  t->n.name = "node7";
  t->n.op = op;
  t->n.src_op = gg__op_name(op);
  t->n.in = t->in, t->n.out = t->out;
  t->n.a.strides[0] = t->n.a.strides[1] = 1;
  t->n.a.dilations[0] = t->n.a.dilations[1] = 1;
}

/* Adds an input of shape/dtype with data copied (NULL: zeros). */
static int tn_in(tn *t, gg_dtype dt, int nd, const int64_t *shape, const void *data) {
  gg_tval *v = &t->v[t->nt];
  v->dtype = dt, v->ndim = nd, v->nelem = 1, v->is_const = 1;
  for (int i = 0; i < nd; i++) v->shape[i] = shape[i], v->nelem *= shape[i];
  v->data = calloc((size_t)v->nelem + 16, 4);
  if (data && v->nelem) memcpy(v->data, data, (size_t)v->nelem * 4);
  t->in[t->n.n_in++] = t->nt;
  return t->nt++;
}

static int tn_ints(tn *t, int n, const int32_t *vals) {
  int64_t s = n;
  return tn_in(t, GG_DT_I32, 1, &s, vals);
}

/* Shape inference, then an output buffer filled with a canary. */
static int tn_infer(tn *t) {
  t->out[0] = t->nt++;
  t->n.n_out = 1;
  gg_tval *o = &t->v[t->out[0]];
  memset(o, 0, sizeof *o);
  int rc = gg__op_infer(&t->n, t->v, t->err, sizeof t->err);
  if (rc) return rc;
  o->data = malloc(((size_t)o->nelem + 16) * 4);
  memset(o->data, 0x7f, ((size_t)o->nelem + 16) * 4);
  return 0;
}

static int tn_run(tn *t, void *pool) {
  gg__kctx kc = {pool};
  return gg__op_run(&t->n, t->v, &kc);
}

static void tn_free(tn *t) {
  for (int i = 0; i < t->nt; i++) free(t->v[i].data);
  memset(t, 0, sizeof *t);
}

static gg_tval *OUTV(tn *t) {
  return &t->v[t->out[0]];
}
static float *OUTF(tn *t) {
  return (float *)t->v[t->out[0]].data;
}
static int32_t *OUTI(tn *t) {
  return (int32_t *)t->v[t->out[0]].data;
}

/* Index of the first element off by more than tol (relative to max(1,|want|),
 * NaN fails), printing it; -1 when all match. */
static int64_t first_off(const float *got, const float *want, int64_t n, double tol) {
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - (double)want[i]) / fmax(1.0, fabs((double)want[i]));
    if (!(d <= tol)) {
      fprintf(stderr, "    element %lld: got %.9g, want %.9g\n", (long long)i, (double)got[i],
              (double)want[i]);
      return i;
    }
  }
  return -1;
}
static int64_t first_off_i(const int32_t *got, const int32_t *want, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (got[i] != want[i]) {
      fprintf(stderr, "    element %lld: got %d, want %d\n", (long long)i, got[i], want[i]);
      return i;
    }
  return -1;
}

/* first_off over t's float output, then frees want (malloc'd) and t. */
static int64_t first_off_free(tn *t, float *want, int64_t n, double tol) {
  int64_t bad = first_off(OUTF(t), want, n, tol);
  free(want);
  tn_free(t);
  return bad;
}

#define ASSERT_SHAPE(t, ...)                                                                       \
  do {                                                                                             \
    const int64_t _w[] = {__VA_ARGS__};                                                            \
    int _n = (int)(sizeof _w / sizeof _w[0]);                                                      \
    ASSERT_EQ(OUTV(t)->ndim, _n);                                                                  \
    for (int _i = 0; _i < _n; _i++) ASSERT_EQ(OUTV(t)->shape[_i], _w[_i]);                         \
  } while (0)

static void fill_seq(float *p, int64_t n, float scale, float off) {
  for (int64_t i = 0; i < n; i++) p[i] = (float)((i * 37) % 23) * scale + off;
}

/* A pool of 3 threads when the build has pthreadpool (else NULL: serial). */
static void *make_pool(void) {
#ifdef HAVE_POOL
  return pthreadpool_create(3);
#else
  return NULL;
#endif
}
static void free_pool(void *p) {
#ifdef HAVE_POOL
  if (p) pthreadpool_destroy(p);
#else
  (void)p;
#endif
}

/* Runs t serially and on a pool; both outputs must be bit-identical. */
static int run_both(tn *t) {
  int rc = tn_run(t, NULL);
  if (rc) return rc;
  gg_tval *o = OUTV(t);
  size_t bytes = (size_t)o->nelem * 4;
  void *serial = malloc(bytes + 4);
  memcpy(serial, o->data, bytes);
  void *pool = make_pool();
  memset(o->data, 0x7f, bytes);
  rc = tn_run(t, pool);
  free_pool(pool);
  if (!rc && bytes && memcmp(serial, o->data, bytes)) {
    fprintf(stderr, "    threaded result differs from the serial one\n");
    rc = GG_EINVAL;
  }
  free(serial);
  return rc;
}

/* ------------------------------------------------------------ BatchMatMul */

/* a [.., M, K] x b [.., K, N] by a dot product per output element; batch
 * dims as given (already broadcast by the caller's index maps). */
static void check_bmm(int na, const int64_t *sa, int nb, const int64_t *sb, int want_nd,
                      const int64_t *want_shape) {
  tn t;
  tn_init(&t, GG_OP_BATCH_MATMUL);
  int ia = tn_in(&t, GG_DT_F32, na, sa, NULL), ib = tn_in(&t, GG_DT_F32, nb, sb, NULL);
  fill_seq(t.v[ia].data, t.v[ia].nelem, 0.25f, -2.0f);
  fill_seq(t.v[ib].data, t.v[ib].nelem, -0.125f, 1.0f);
  t.v[ia].is_const = 0;
  ASSERT_OK(tn_infer(&t));
  ASSERT_EQ(OUTV(&t)->ndim, want_nd);
  for (int i = 0; i < want_nd; i++) ASSERT_EQ(OUTV(&t)->shape[i], want_shape[i]);
  ASSERT_OK(run_both(&t));
  /* Promote 1-D operands, left-pad batch dims to a common rank. */
  int64_t A[GG_MAX_DIMS + 2], B[GG_MAX_DIMS + 2];
  int ra = na == 1 ? 2 : na, rb = nb == 1 ? 2 : nb;
  if (na == 1) A[0] = 1, A[1] = sa[0];
  else memcpy(A, sa, (size_t)na * 8);
  if (nb == 1) B[0] = sb[0], B[1] = 1;
  else memcpy(B, sb, (size_t)nb * 8);
  int nbat = (ra > rb ? ra : rb) - 2;
  int64_t M = A[ra - 2], K = A[ra - 1], N = B[rb - 1], nbt = 1, bs[GG_MAX_DIMS];
  for (int d = 0; d < nbat; d++) {
    int da = d - (nbat - (ra - 2)), db = d - (nbat - (rb - 2));
    int64_t x = da >= 0 ? A[da] : 1, y = db >= 0 ? B[db] : 1;
    bs[d] = x > y ? x : y;
    nbt *= bs[d];
  }
  float *want = calloc((size_t)(nbt * M * N) + 1, 4);
  const float *pa = t.v[ia].data, *pb = t.v[ib].data;
  for (int64_t bi = 0; bi < nbt; bi++) {
    int64_t rem = bi, oa = 0, ob = 0, sta = 1, stb = 1;
    for (int d = nbat - 1; d >= 0; d--) {
      int64_t id = rem % bs[d];
      rem /= bs[d];
      int da = d - (nbat - (ra - 2)), db = d - (nbat - (rb - 2));
      int64_t xa = da >= 0 ? A[da] : 1, xb = db >= 0 ? B[db] : 1;
      oa += (xa == 1 ? 0 : id) * sta, ob += (xb == 1 ? 0 : id) * stb;
      sta *= xa, stb *= xb;
    }
    for (int64_t m = 0; m < M; m++)
      for (int64_t n2 = 0; n2 < N; n2++) {
        double acc = 0;
        for (int64_t k = 0; k < K; k++)
          acc += (double)pa[(oa * M + m) * K + k] * (double)pb[(ob * K + k) * N + n2];
        want[(bi * M + m) * N + n2] = (float)acc;
      }
  }
  ASSERT_EQ(first_off_free(&t, want, OUTV(&t)->nelem, 1e-5), -1);
}

static void test_batch_matmul(void) {
  const int64_t a1[] = {2, 1, 3, 4}, b1[] = {3, 4, 5}, o1[] = {2, 3, 3, 5};
  check_bmm(4, a1, 3, b1, 4, o1);
  const int64_t a2[] = {4}, b2[] = {2, 4, 3}, o2[] = {2, 3};
  check_bmm(1, a2, 3, b2, 2, o2);
  const int64_t a3[] = {2, 3, 4}, b3[] = {4}, o3[] = {2, 3};
  check_bmm(3, a3, 1, b3, 2, o3);
  const int64_t a4[] = {5}, b4[] = {5};
  check_bmm(1, a4, 1, b4, 0, NULL);
  /* Past every block size (rows 16, K 128, N 256), threaded. */
  const int64_t a5[] = {2, 37, 300}, b5[] = {300, 270}, o5[] = {2, 37, 270};
  check_bmm(3, a5, 2, b5, 3, o5);
  const int64_t a6[] = {3, 1, 2, 7}, b6[] = {1, 2, 7, 1}, o6[] = {3, 2, 2, 1};
  check_bmm(4, a6, 4, b6, 4, o6);
}

static void test_batch_matmul_errors(void) {
  tn t;
  tn_init(&t, GG_OP_BATCH_MATMUL);
  const int64_t sa[] = {2, 3, 4}, sb[] = {5, 6};
  tn_in(&t, GG_DT_F32, 3, sa, NULL);
  tn_in(&t, GG_DT_F32, 2, sb, NULL);
  int rc = tn_infer(&t);
  ASSERT_EQ(rc, GG_EPARSE);
  ASSERT_CONTAINS(t.err, "node7");
  ASSERT_CONTAINS(t.err, "inner dims");
  tn_free(&t);
  tn_init(&t, GG_OP_BATCH_MATMUL);
  const int64_t sc[] = {2, 3, 4}, sd[] = {3, 4, 6};
  tn_in(&t, GG_DT_F32, 3, sc, NULL);
  tn_in(&t, GG_DT_F32, 3, sd, NULL);
  rc = tn_infer(&t);
  tn_free(&t);
  ASSERT_EQ(rc, GG_EPARSE);
}

/* ------------------------------------------------------------------ Slice */

static void slice_set(tn *t, int i, int64_t axis, int64_t start, int64_t end, int64_t step) {
  t->n.a.slice_axes[i] = axis, t->n.a.slice_starts[i] = start;
  t->n.a.slice_ends[i] = end, t->n.a.slice_steps[i] = step;
  if (t->n.a.n_slice < i + 1) t->n.a.n_slice = i + 1;
}

static void test_slice(void) {
  tn t;
  /* ONNX's Slice example 1: [[1,2,3,4],[5,6,7,8]], axes 0,1 starts 1,0
   * ends 2,3 steps 1,2 -> [[5,7]]. */
  const float d1[] = {1, 2, 3, 4, 5, 6, 7, 8};
  const int64_t s1[] = {2, 4};
  tn_init(&t, GG_OP_SLICE);
  tn_in(&t, GG_DT_F32, 2, s1, d1);
  slice_set(&t, 0, 0, 1, 2, 1);
  slice_set(&t, 1, 1, 0, 3, 2);
  ASSERT_OK(tn_infer(&t));
  ASSERT_SHAPE(&t, 1, 2);
  ASSERT_OK(tn_run(&t, NULL));
  const float w1[] = {5, 7};
  ASSERT_EQ(first_off(OUTF(&t), w1, 2, 0), -1);
  tn_free(&t);
  /* Example 2: starts 0,1 ends -1,1000 (clamped) -> [[2,3,4]]. */
  tn_init(&t, GG_OP_SLICE);
  tn_in(&t, GG_DT_F32, 2, s1, d1);
  slice_set(&t, 0, 0, 0, -1, 1);
  slice_set(&t, 1, 1, 1, 1000, 1);
  ASSERT_OK(tn_infer(&t));
  ASSERT_SHAPE(&t, 1, 3);
  ASSERT_OK(tn_run(&t, NULL));
  const float w2[] = {2, 3, 4};
  ASSERT_EQ(first_off(OUTF(&t), w2, 3, 0), -1);
  tn_free(&t);
  /* Negative steps on int32 0..9. */
  int32_t r10[10];
  for (int i = 0; i < 10; i++) r10[i] = i;
  const int64_t s10[] = {10};
  struct {
    int64_t start, end, step, n;
    int32_t want[10];
  } cs[] = {
      {-1, INT64_MIN, -3, 4, {9, 6, 3, 0}},
      {20, -20, -1, 10, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
      {5, 5, -1, 0, {0}},
      {-3, 1, -2, 3, {7, 5, 3}},
      {8, -100, -4, 3, {8, 4, 0}},
      {-100, 100, 4, 3, {0, 4, 8}},
      {2, INT64_MAX, INT64_MAX, 1, {2}},
      {-2, -1, 1, 1, {8}},
      {0, 10, -1, 0, {0}},
  };
  for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
    tn_init(&t, GG_OP_SLICE);
    tn_in(&t, GG_DT_I32, 1, s10, r10);
    slice_set(&t, 0, -1, cs[k].start, cs[k].end, cs[k].step);
    ASSERT_OK(tn_infer(&t));
    if (OUTV(&t)->shape[0] != cs[k].n)
      fprintf(stderr, "    case %zu: %lld elements, want %lld\n", k, (long long)OUTV(&t)->shape[0],
              (long long)cs[k].n);
    ASSERT_EQ(OUTV(&t)->shape[0], cs[k].n);
    ASSERT_OK(tn_run(&t, NULL));
    ASSERT_EQ(first_off_i(OUTI(&t), cs[k].want, cs[k].n), -1);
    tn_free(&t);
  }
  /* ONNX test_slice_neg_steps geometry: x [20,10,5], starts 20,10,4 ends
   * 0,0,1 steps -1,-3,-2 -> [19,3,2]; y[i,j,k] = x[19-i, 9-3j, 4-2k]. */
  const int64_t s3[] = {20, 10, 5};
  tn_init(&t, GG_OP_SLICE);
  int ix = tn_in(&t, GG_DT_F32, 3, s3, NULL);
  for (int i = 0; i < 1000; i++) ((float *)t.v[ix].data)[i] = (float)i;
  slice_set(&t, 0, 0, 20, 0, -1);
  slice_set(&t, 1, 1, 10, 0, -3);
  slice_set(&t, 2, 2, 4, 1, -2);
  ASSERT_OK(tn_infer(&t));
  ASSERT_SHAPE(&t, 19, 3, 2);
  ASSERT_OK(tn_run(&t, NULL));
  float want[19 * 3 * 2];
  for (int i = 0; i < 19; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 2; k++) want[(i * 3 + j) * 2 + k] = (float)((19 - i) * 50 + (9 - 3 * j) * 5 + 4 - 2 * k);
  ASSERT_EQ(first_off(OUTF(&t), want, 19 * 3 * 2, 0), -1);
  tn_free(&t);
}

static void test_slice_errors(void) {
  tn t;
  const int64_t s[] = {4, 4};
  tn_init(&t, GG_OP_SLICE);
  tn_in(&t, GG_DT_F32, 2, s, NULL);
  slice_set(&t, 0, 0, 0, 4, 0);
  ASSERT_EQ(tn_infer(&t), GG_EPARSE);
  ASSERT_CONTAINS(t.err, "node7");
  ASSERT_CONTAINS(t.err, "step");
  tn_free(&t);
  tn_init(&t, GG_OP_SLICE);
  tn_in(&t, GG_DT_F32, 2, s, NULL);
  slice_set(&t, 0, 1, 0, 4, 1);
  slice_set(&t, 1, -1, 0, 4, 1);
  ASSERT_EQ(tn_infer(&t), GG_EPARSE);
  ASSERT_CONTAINS(t.err, "twice");
  tn_free(&t);
  tn_init(&t, GG_OP_SLICE);
  tn_in(&t, GG_DT_F32, 2, s, NULL);
  slice_set(&t, 0, 2, 0, 4, 1);
  ASSERT_EQ(tn_infer(&t), GG_EPARSE);
  ASSERT_CONTAINS(t.err, "axis 2");
  tn_free(&t);
}

/* ----------------------------------------------------------------- Gather */

static void test_gather(void) {
  tn t;
  float d[12];
  for (int i = 0; i < 12; i++) d[i] = (float)i;
  const int64_t s[] = {3, 4};
  /* axis 0, indices [2, -1, 0] -> rows 2, 2, 0 */
  tn_init(&t, GG_OP_GATHER);
  tn_in(&t, GG_DT_F32, 2, s, d);
  const int32_t i0[] = {2, -1, 0};
  tn_ints(&t, 3, i0);
  ASSERT_OK(tn_infer(&t));
  ASSERT_SHAPE(&t, 3, 4);
  ASSERT_OK(tn_run(&t, NULL));
  const float w0[] = {8, 9, 10, 11, 8, 9, 10, 11, 0, 1, 2, 3};
  ASSERT_EQ(first_off(OUTF(&t), w0, 12, 0), -1);
  tn_free(&t);
  /* axis 1 (given as -1), indices [[-1, 0], [1, 1]] -> [3, 2, 2] */
  tn_init(&t, GG_OP_GATHER);
  t.n.a.axis = -1;
  tn_in(&t, GG_DT_F32, 2, s, d);
  const int32_t i1[] = {-1, 0, 1, 1};
  const int64_t si1[] = {2, 2};
  tn_in(&t, GG_DT_I32, 2, si1, i1);
  ASSERT_OK(tn_infer(&t));
  ASSERT_SHAPE(&t, 3, 2, 2);
  ASSERT_OK(tn_run(&t, NULL));
  const float w1[] = {3, 0, 1, 1, 7, 4, 5, 5, 11, 8, 9, 9};
  ASSERT_EQ(first_off(OUTF(&t), w1, 12, 0), -1);
  tn_free(&t);
  /* A scalar index drops the axis: data[:, -2] */
  tn_init(&t, GG_OP_GATHER);
  t.n.a.axis = 1;
  tn_in(&t, GG_DT_F32, 2, s, d);
  const int32_t i2 = -2;
  tn_in(&t, GG_DT_I32, 0, NULL, &i2);
  ASSERT_OK(tn_infer(&t));
  ASSERT_SHAPE(&t, 3);
  ASSERT_OK(tn_run(&t, NULL));
  const float w2[] = {2, 6, 10};
  ASSERT_EQ(first_off(OUTF(&t), w2, 3, 0), -1);
  tn_free(&t);
  /* int32 data, 3-D, middle axis */
  int32_t d3[24];
  for (int i = 0; i < 24; i++) d3[i] = 100 + i;
  const int64_t s3[] = {2, 3, 4};
  tn_init(&t, GG_OP_GATHER);
  t.n.a.axis = 1;
  tn_in(&t, GG_DT_I32, 3, s3, d3);
  const int32_t i3[] = {-3, 2};
  tn_ints(&t, 2, i3);
  ASSERT_OK(tn_infer(&t));
  ASSERT_SHAPE(&t, 2, 2, 4);
  ASSERT_OK(tn_run(&t, NULL));
  const int32_t w3[] = {100, 101, 102, 103, 108, 109, 110, 111,
                        112, 113, 114, 115, 120, 121, 122, 123};
  ASSERT_EQ(first_off_i(OUTI(&t), w3, 16), -1);
  tn_free(&t);
}

static void test_gather_out_of_range(void) {
  tn t;
  float d[12] = {0};
  const int64_t s[] = {3, 4};
  const int32_t bad[][2] = {{0, 4}, {-5, 1}, {INT32_MAX, 0}, {INT32_MIN, 0}};
  for (int k = 0; k < 4; k++) {
    tn_init(&t, GG_OP_GATHER);
    t.n.a.axis = 1;
    tn_in(&t, GG_DT_F32, 2, s, d);
    tn_ints(&t, 2, bad[k]);
    ASSERT_OK(tn_infer(&t));
    int rc = tn_run(&t, NULL);
    uint32_t first;
    memcpy(&first, OUTF(&t), 4);
    tn_free(&t);
    ASSERT_EQ(rc, GG_ERANGE);
    ASSERT_EQ(first, 0x7f7f7f7fu); /* nothing written */
  }
  tn_init(&t, GG_OP_GATHER);
  t.n.a.axis = 2;
  tn_in(&t, GG_DT_F32, 2, s, d);
  tn_ints(&t, 1, bad[0]);
  ASSERT_EQ(tn_infer(&t), GG_EPARSE);
  ASSERT_CONTAINS(t.err, "node7");
  ASSERT_CONTAINS(t.err, "axis 2");
  tn_free(&t);
}

/* ------------------------------------------------------ Expand, Tile, Shape */

static void test_expand(void) {
  tn t;
  const float x[] = {1, 2, 3};
  const int64_t sx[] = {3, 1};
  tn_init(&t, GG_OP_EXPAND);
  tn_in(&t, GG_DT_F32, 2, sx, x);
  const int32_t sh[] = {2, 1, 4};
  tn_ints(&t, 3, sh);
  ASSERT_OK(tn_infer(&t));
  ASSERT_SHAPE(&t, 2, 3, 4);
  ASSERT_OK(tn_run(&t, NULL));
  float want[24];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 4; k++) want[(i * 3 + j) * 4 + k] = x[j];
  ASSERT_EQ(first_off(OUTF(&t), want, 24, 0), -1);
  tn_free(&t);
  /* ONNX test_expand_dim_unchanged: [3,1] to (3, 4); a shorter shape [1] keeps x */
  tn_init(&t, GG_OP_EXPAND);
  tn_in(&t, GG_DT_F32, 2, sx, x);
  const int32_t sh2[] = {1};
  tn_ints(&t, 1, sh2);
  ASSERT_OK(tn_infer(&t));
  ASSERT_SHAPE(&t, 3, 1);
  ASSERT_OK(tn_run(&t, NULL));
  ASSERT_EQ(first_off(OUTF(&t), x, 3, 0), -1);
  tn_free(&t);
  /* [3] cannot become [2] */
  const int64_t s3[] = {3};
  tn_init(&t, GG_OP_EXPAND);
  tn_in(&t, GG_DT_F32, 1, s3, x);
  const int32_t sh3[] = {2};
  tn_ints(&t, 1, sh3);
  ASSERT_EQ(tn_infer(&t), GG_EPARSE);
  ASSERT_CONTAINS(t.err, "node7");
  tn_free(&t);
}

static void test_tile(void) {
  tn t;
  const int32_t x[] = {1, 2, 3, 4, 5, 6};
  const int64_t sx[] = {2, 3};
  tn_init(&t, GG_OP_TILE);
  tn_in(&t, GG_DT_I32, 2, sx, x);
  const int32_t r[] = {2, 2};
  tn_ints(&t, 2, r);
  ASSERT_OK(tn_infer(&t));
  ASSERT_SHAPE(&t, 4, 6);
  ASSERT_OK(tn_run(&t, NULL));
  int32_t want[24];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 6; j++) want[i * 6 + j] = x[(i % 2) * 3 + j % 3];
  ASSERT_EQ(first_off_i(OUTI(&t), want, 24), -1);
  tn_free(&t);
  /* repeats 3, 1: rows repeated, no column copies */
  tn_init(&t, GG_OP_TILE);
  tn_in(&t, GG_DT_I32, 2, sx, x);
  const int32_t r2[] = {3, 1};
  tn_ints(&t, 2, r2);
  ASSERT_OK(tn_infer(&t));
  ASSERT_SHAPE(&t, 6, 3);
  ASSERT_OK(tn_run(&t, NULL));
  for (int i = 0; i < 18; i++) want[i] = x[i % 6];
  ASSERT_EQ(first_off_i(OUTI(&t), want, 18), -1);
  tn_free(&t);
  /* a zero repeat is an empty tensor; a wrong count is refused */
  tn_init(&t, GG_OP_TILE);
  tn_in(&t, GG_DT_I32, 2, sx, x);
  const int32_t r3[] = {0, 2};
  tn_ints(&t, 2, r3);
  ASSERT_OK(tn_infer(&t));
  ASSERT_EQ(OUTV(&t)->nelem, 0);
  ASSERT_OK(tn_run(&t, NULL));
  tn_free(&t);
  tn_init(&t, GG_OP_TILE);
  tn_in(&t, GG_DT_I32, 2, sx, x);
  tn_ints(&t, 1, r3);
  ASSERT_EQ(tn_infer(&t), GG_EPARSE);
  ASSERT_CONTAINS(t.err, "repeats");
  tn_free(&t);
}

static void test_shape(void) {
  const int64_t sx[] = {2, 3, 4, 5};
  struct {
    int n_slice;
    int64_t start, end;
    int n;
    int32_t want[4];
  } cs[] = {
      {0, 0, 0, 4, {2, 3, 4, 5}},  {1, 1, INT64_MAX, 3, {3, 4, 5}}, {1, -1, INT64_MAX, 1, {5}},
      {1, 0, -1, 3, {2, 3, 4}},    {1, 10, INT64_MAX, 0, {0}},      {1, -10, 2, 2, {2, 3}},
      {1, 1, 2, 1, {3}},           {1, 3, 1, 0, {0}},
  };
  for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
    tn t;
    tn_init(&t, GG_OP_SHAPE);
    tn_in(&t, GG_DT_F32, 4, sx, NULL);
    t.v[0].is_const = 0;
    t.n.a.n_slice = cs[k].n_slice;
    t.n.a.slice_starts[0] = cs[k].start, t.n.a.slice_ends[0] = cs[k].end;
    ASSERT_OK(tn_infer(&t));
    ASSERT_EQ(OUTV(&t)->dtype, GG_DT_I32);
    ASSERT_EQ(OUTV(&t)->shape[0], cs[k].n);
    ASSERT_OK(tn_run(&t, NULL));
    ASSERT_EQ(first_off_i(OUTI(&t), cs[k].want, cs[k].n), -1);
    tn_free(&t);
  }
}

/* ------------------------------------------------ Range, ConstantOfShape */

/* Range over the scalars start, limit, delta (sld, dtype dt) must give a
 * dt vector of n values equal to want. Prints what differs; 0 when all match. */
static int range_off(gg_dtype dt, const void *sld, int n, const void *want) {
  tn t;
  tn_init(&t, GG_OP_RANGE);
  for (int i = 0; i < 3; i++) tn_in(&t, dt, 0, NULL, (const char *)sld + 4 * i);
  int rc = tn_infer(&t);
  const gg_tval *o = OUTV(&t);
  if (!rc && (o->dtype != dt || o->ndim != 1 || o->shape[0] != n)) {
    fprintf(stderr, "    output dtype %d, %d dims, %lld elements; want dtype %d, 1 dim, %d\n",
            (int)o->dtype, o->ndim, o->ndim ? (long long)o->shape[0] : 0LL, (int)dt, n);
    rc = GG_EINVAL;
  }
  if (!rc) rc = tn_run(&t, NULL);
  if (!rc && (dt == GG_DT_F32 ? first_off(OUTF(&t), want, n, 1e-6)
                              : first_off_i(OUTI(&t), want, n)) != -1)
    rc = GG_EINVAL;
  tn_free(&t);
  return rc;
}

static void test_range(void) {
  tn t;
  const float f[][3] = {{1.0f, 3.0f, 0.5f}, {0.0f, 1.0f, 0.3f}, {2.0f, -1.0f, -1.25f}, {1, 1, 1}};
  const float fw[][4] = {{1, 1.5f, 2, 2.5f}, {0, 0.3f, 0.6f, 0.9f}, {2, 0.75f, -0.5f}, {0}};
  const int fn[] = {4, 4, 3, 0};
  /* ONNX test_range_int32_type_negative_delta: 10, 6, -3 -> [10, 7] */
  const int32_t iv[][3] = {{10, 6, -3}, {-3, 4, 2}, {5, 5, 1}, {0, 10, -1}};
  const int32_t iw[][4] = {{10, 7}, {-3, -1, 1, 3}, {0}, {0}};
  const int in_[] = {2, 4, 0, 0};
  for (int k = 0; k < 4; k++) {
    int rc = range_off(GG_DT_F32, f[k], fn[k], fw[k]);
    if (rc)
      GG_T_FAIL("float case %d: Range(%g, %g, %g): %s", k, (double)f[k][0], (double)f[k][1],
                (double)f[k][2], gg_err_name(rc));
    rc = range_off(GG_DT_I32, iv[k], in_[k], iw[k]);
    if (rc)
      GG_T_FAIL("int case %d: Range(%d, %d, %d): %s", k, iv[k][0], iv[k][1], iv[k][2],
                gg_err_name(rc));
  }
  const int32_t z[] = {0, 4, 0};
  tn_init(&t, GG_OP_RANGE);
  for (int i = 0; i < 3; i++) tn_in(&t, GG_DT_I32, 0, NULL, &z[i]);
  ASSERT_EQ(tn_infer(&t), GG_EPARSE);
  ASSERT_CONTAINS(t.err, "delta");
  tn_free(&t);
}

static void test_constant_of_shape(void) {
  tn t;
  const int32_t s[] = {2, 3};
  tn_init(&t, GG_OP_CONSTANT_OF_SHAPE);
  tn_ints(&t, 2, s);
  t.n.a.to = GG_DT_F32, t.n.a.fill = 1.5f;
  ASSERT_OK(tn_infer(&t));
  ASSERT_SHAPE(&t, 2, 3);
  ASSERT_OK(tn_run(&t, NULL));
  const float wf[] = {1.5f, 1.5f, 1.5f, 1.5f, 1.5f, 1.5f};
  ASSERT_EQ(first_off(OUTF(&t), wf, 6, 0), -1);
  tn_free(&t);
  tn_init(&t, GG_OP_CONSTANT_OF_SHAPE);
  tn_ints(&t, 2, s);
  t.n.a.to = GG_DT_I32, t.n.a.fill = -7.0f;
  ASSERT_OK(tn_infer(&t));
  ASSERT_EQ(OUTV(&t)->dtype, GG_DT_I32);
  ASSERT_OK(tn_run(&t, NULL));
  const int32_t wi[] = {-7, -7, -7, -7, -7, -7};
  ASSERT_EQ(first_off_i(OUTI(&t), wi, 6), -1);
  tn_free(&t);
  /* shape [] -> a scalar; shape [0] -> no elements (ONNX int_shape_zero) */
  tn_init(&t, GG_OP_CONSTANT_OF_SHAPE);
  tn_ints(&t, 0, s);
  t.n.a.fill = 2.0f;
  ASSERT_OK(tn_infer(&t));
  ASSERT_EQ(OUTV(&t)->ndim, 0);
  ASSERT_EQ(OUTV(&t)->nelem, 1);
  ASSERT_OK(tn_run(&t, NULL));
  ASSERT_NEAR(OUTF(&t)[0], 2.0f, 0);
  tn_free(&t);
  const int32_t zero = 0, neg = -1;
  tn_init(&t, GG_OP_CONSTANT_OF_SHAPE);
  tn_ints(&t, 1, &zero);
  ASSERT_OK(tn_infer(&t));
  ASSERT_SHAPE(&t, 0);
  ASSERT_OK(tn_run(&t, NULL));
  tn_free(&t);
  tn_init(&t, GG_OP_CONSTANT_OF_SHAPE);
  tn_ints(&t, 1, &neg);
  ASSERT_EQ(tn_infer(&t), GG_EPARSE);
  ASSERT_CONTAINS(t.err, "negative");
  tn_free(&t);
}

/* ---------------------------------------------------------------- Pooling */

/* AvgPool the way ONNX's reference does it: pad the image explicitly with
 * NaN (excluded) or 0 (counted), slide the window, clip it at the padded
 * image's end, average what is not NaN. x NHWC with C channels. */
static void avgpool_ref(const float *x, int64_t N, int64_t H, int64_t W, int64_t C, int kh, int kw,
                        int sh, int sw, const int *pads, int include, int64_t OH, int64_t OW,
                        float *y) {
  int64_t PH = H + pads[0] + pads[1], PW = W + pads[2] + pads[3];
  double *pad = malloc((size_t)(PH * PW) * sizeof(double));
  for (int64_t b = 0; b < N; b++)
    for (int64_t c = 0; c < C; c++) {
      for (int64_t i = 0; i < PH; i++)
        for (int64_t j = 0; j < PW; j++) {
          int64_t iy = i - pads[0], ix = j - pads[2];
          int in = iy >= 0 && iy < H && ix >= 0 && ix < W;
          pad[i * PW + j] = in ? x[((b * H + iy) * W + ix) * C + c] : (include ? 0.0 : NAN);
        }
      for (int64_t oy = 0; oy < OH; oy++)
        for (int64_t ox = 0; ox < OW; ox++) {
          double s = 0;
          int cnt = 0;
          for (int64_t i = oy * sh; i < oy * sh + kh && i < PH; i++)
            for (int64_t j = ox * sw; j < ox * sw + kw && j < PW; j++)
              if (!isnan(pad[i * PW + j])) s += pad[i * PW + j], cnt++;
          y[((b * OH + oy) * OW + ox) * C + c] = (float)(s / cnt);
        }
    }
  free(pad);
}

static void check_avgpool(const int64_t *xs, int kh, int kw, int sh, int sw, const int *pads,
                          int include, int ceil_mode, int64_t want_oh, int64_t want_ow) {
  tn t;
  tn_init(&t, GG_OP_AVGPOOL);
  int ix = tn_in(&t, GG_DT_F32, 4, xs, NULL);
  fill_seq(t.v[ix].data, t.v[ix].nelem, 0.5f, -3.0f);
  t.v[ix].is_const = 0;
  t.n.a.ksize[0] = kh, t.n.a.ksize[1] = kw, t.n.a.strides[0] = sh, t.n.a.strides[1] = sw;
  t.n.a.padding = GG_PAD_EXPLICIT;
  memcpy(t.n.a.pads, pads, 4 * sizeof(int));
  t.n.a.count_include_pad = include, t.n.a.ceil_mode = ceil_mode;
  ASSERT_OK(tn_infer(&t));
  ASSERT_SHAPE(&t, xs[0], want_oh, want_ow, xs[3]);
  ASSERT_OK(run_both(&t));
  float *want = malloc((size_t)OUTV(&t)->nelem * 4 + 4);
  avgpool_ref(t.v[ix].data, xs[0], xs[1], xs[2], xs[3], kh, kw, sh, sw, pads, include, want_oh,
              want_ow, want);
  ASSERT_EQ(first_off_free(&t, want, OUTV(&t)->nelem, 1e-6), -1);
}

/* ONNX's *pool_2d_ceil geometry: op on a 4x4 image of 1..16, kernel 3,
 * stride 2, ceil_mode. */
static void pool_2d_ceil(tn *t, gg_op op) {
  float x[16];
  for (int i = 0; i < 16; i++) x[i] = (float)(i + 1);
  const int64_t s4[] = {1, 4, 4, 1};
  tn_init(t, op);
  tn_in(t, GG_DT_F32, 4, s4, x);
  t->n.a.ksize[0] = t->n.a.ksize[1] = 3, t->n.a.strides[0] = t->n.a.strides[1] = 2;
  t->n.a.ceil_mode = 1;
}

static void test_avgpool(void) {
  /* ONNX test_averagepool_2d_ceil: 4x4 1..16, k3 s2 ceil -> [[6,7.5],[12,13.5]] */
  tn t;
  pool_2d_ceil(&t, GG_OP_AVGPOOL);
  ASSERT_OK(tn_infer(&t));
  ASSERT_SHAPE(&t, 1, 2, 2, 1);
  ASSERT_OK(tn_run(&t, NULL));
  const float w[] = {6, 7.5f, 12, 13.5f};
  ASSERT_EQ(first_off(OUTF(&t), w, 4, 1e-6), -1);
  tn_free(&t);
  /* ONNX test_averagepool_2d_pads_count_include_pad geometry and others */
  const int64_t a[] = {1, 5, 5, 2}, b[] = {2, 7, 6, 3}, c6[] = {1, 6, 6, 2};
  const int p0[] = {0, 0, 0, 0}, p2[] = {2, 2, 2, 2}, pa[] = {1, 0, 1, 1}, pc[] = {0, 2, 0, 2};
  check_avgpool(a, 3, 3, 1, 1, p2, 1, 0, 7, 7);
  check_avgpool(a, 3, 3, 1, 1, p2, 0, 0, 7, 7);
  check_avgpool(b, 3, 2, 2, 3, pa, 0, 0, 3, 3);
  check_avgpool(b, 3, 2, 2, 3, pa, 1, 0, 3, 3);
  check_avgpool(b, 3, 2, 2, 3, pa, 0, 1, 4, 3);
  check_avgpool(b, 3, 2, 2, 3, pa, 1, 1, 4, 3);
  check_avgpool(b, 2, 2, 2, 2, p0, 0, 1, 4, 3);
  /* ceil_mode's last window would start in the trailing pad: dropped (3, not 4) */
  check_avgpool(c6, 3, 3, 2, 2, pc, 1, 1, 3, 3);
  check_avgpool(c6, 3, 3, 2, 2, pc, 0, 1, 3, 3);
}

static void test_avgpool_errors(void) {
  tn t;
  tn_init(&t, GG_OP_AVGPOOL);
  const int64_t s[] = {1, 2, 2, 1};
  tn_in(&t, GG_DT_F32, 4, s, NULL);
  t.n.a.ksize[0] = t.n.a.ksize[1] = 3;
  ASSERT_EQ(tn_infer(&t), GG_ERANGE);
  ASSERT_CONTAINS(t.err, "node7");
  tn_free(&t);
  tn_init(&t, GG_OP_AVGPOOL);
  const int64_t s3[] = {2, 2, 2};
  tn_in(&t, GG_DT_F32, 3, s3, NULL);
  t.n.a.ksize[0] = t.n.a.ksize[1] = 1;
  ASSERT_EQ(tn_infer(&t), GG_EPARSE);
  tn_free(&t);
}

static void test_maxpool_ceil(void) {
  /* ONNX test_maxpool_2d_ceil: 4x4 1..16, k3 s2 ceil -> [[11,12],[15,16]] */
  tn t;
  pool_2d_ceil(&t, GG_OP_MAXPOOL);
  ASSERT_OK(tn_infer(&t));
  ASSERT_SHAPE(&t, 1, 2, 2, 1);
  ASSERT_OK(tn_run(&t, NULL));
  const float w[] = {11, 12, 15, 16};
  ASSERT_EQ(first_off(OUTF(&t), w, 4, 0), -1);
  tn_free(&t);
  /* without ceil_mode: 1x1 */
  pool_2d_ceil(&t, GG_OP_MAXPOOL);
  t.n.a.ceil_mode = 0;
  ASSERT_OK(tn_infer(&t));
  ASSERT_SHAPE(&t, 1, 1, 1, 1);
  tn_free(&t);
  /* 6x6, k3 s2, pads bottom/right 2: windows at 0, 2, 4 (the one at 6 would
   * start in the pad) -> 3x3; the last row/column see rows/cols 4-5 alone. */
  float x36[36];
  for (int i = 0; i < 36; i++) x36[i] = (float)(i + 1);
  const int64_t s6[] = {1, 6, 6, 1};
  tn_init(&t, GG_OP_MAXPOOL);
  tn_in(&t, GG_DT_F32, 4, s6, x36);
  t.n.a.ksize[0] = t.n.a.ksize[1] = 3, t.n.a.strides[0] = t.n.a.strides[1] = 2;
  t.n.a.padding = GG_PAD_EXPLICIT;
  t.n.a.pads[1] = t.n.a.pads[3] = 2;
  t.n.a.ceil_mode = 1;
  ASSERT_OK(tn_infer(&t));
  ASSERT_SHAPE(&t, 1, 3, 3, 1);
  ASSERT_OK(tn_run(&t, NULL));
  const float w5[] = {15, 17, 18, 27, 29, 30, 33, 35, 36};
  ASSERT_EQ(first_off(OUTF(&t), w5, 9, 0), -1);
  tn_free(&t);
}

/* ------------------------------------------------------------------- Pad */

static void check_pad(gg_pad_mode mode, const float *want) {
  tn t;
  float x[12];
  for (int i = 0; i < 12; i++) x[i] = (float)(i + 1);
  const int64_t s[] = {3, 4};
  tn_init(&t, GG_OP_PAD);
  tn_in(&t, GG_DT_F32, 2, s, x);
  const int32_t p[] = {1, 2, 2, 1};
  tn_ints(&t, 4, p);
  t.n.a.pad_mode = mode;
  ASSERT_OK(tn_infer(&t));
  ASSERT_SHAPE(&t, 6, 7);
  ASSERT_OK(tn_run(&t, NULL));
  ASSERT_EQ(first_off(OUTF(&t), want, 42, 0), -1);
  tn_free(&t);
}

static void test_pad_modes(void) {
  const float reflect[] = {7,  6,  5, 6,  7,  8,  7,  3, 2, 1, 2, 3, 4, 3, 7, 6, 5, 6, 7, 8, 7,
                           11, 10, 9, 10, 11, 12, 11, 7, 6, 5, 6, 7, 8, 7, 3, 2, 1, 2, 3, 4, 3};
  const float edge[] = {1, 1, 1, 2,  3,  4,  4,  1, 1, 1, 2,  3,  4,  4,  5, 5, 5, 6,  7,  8,  8,
                        9, 9, 9, 10, 11, 12, 12, 9, 9, 9, 10, 11, 12, 12, 9, 9, 9, 10, 11, 12, 12};
  check_pad(GG_PADMODE_REFLECT, reflect);
  check_pad(GG_PADMODE_EDGE, edge);
  /* ONNX test_reflect_pad / test_edge_pad geometry: NCHW [1,3,4,5], pads on H, W */
  tn t;
  const int64_t s[] = {1, 3, 4, 5};
  for (int mode = GG_PADMODE_REFLECT; mode <= GG_PADMODE_EDGE; mode++) {
    tn_init(&t, GG_OP_PAD);
    int ix = tn_in(&t, GG_DT_F32, 4, s, NULL);
    fill_seq(t.v[ix].data, 60, 1.0f, 0.0f);
    const int32_t p[] = {0, 0, 0, 0, 2, 1, 1, 3};
    tn_ints(&t, 8, p);
    t.n.a.pad_mode = (gg_pad_mode)mode;
    ASSERT_OK(tn_infer(&t));
    ASSERT_SHAPE(&t, 1, 3, 7, 9);
    ASSERT_OK(tn_run(&t, NULL));
    const float *xv = t.v[ix].data;
    float want[3 * 7 * 9];
    for (int c = 0; c < 3; c++)
      for (int i = 0; i < 7; i++)
        for (int j = 0; j < 9; j++) {
          int si = i - 2, sj = j - 1;
          if (mode == GG_PADMODE_REFLECT) {
            si = si < 0 ? -si : (si > 3 ? 6 - si : si);
            sj = sj < 0 ? -sj : (sj > 4 ? 8 - sj : sj);
          } else {
            si = si < 0 ? 0 : (si > 3 ? 3 : si);
            sj = sj < 0 ? 0 : (sj > 4 ? 4 : sj);
          }
          want[(c * 7 + i) * 9 + j] = xv[(c * 4 + si) * 5 + sj];
        }
    ASSERT_EQ(first_off(OUTF(&t), want, 3 * 7 * 9, 0), -1);
    tn_free(&t);
  }
  /* reflect needs pads < dim */
  const int64_t s2[] = {2, 3};
  tn_init(&t, GG_OP_PAD);
  tn_in(&t, GG_DT_F32, 2, s2, NULL);
  const int32_t p2[] = {2, 0, 0, 0};
  tn_ints(&t, 4, p2);
  t.n.a.pad_mode = GG_PADMODE_REFLECT;
  ASSERT_EQ(tn_infer(&t), GG_EUNSUPPORTED);
  ASSERT_CONTAINS(t.err, "node7");
  ASSERT_CONTAINS(t.err, "reflect");
  tn_free(&t);
}

/* --------------------------------------------------------- ConvTranspose */

enum { CT_BIAS = 1, CT_RELU = 2, CT_RELU6 = 4 };

static void check_convt(const int64_t *xs, int kh, int kw, int cog, int groups, int sh, int sw,
                        int dh, int dw, const int *pads, int oph, int opw, int flags) {
  /* flags: CT_BIAS adds a bias input; CT_RELU / CT_RELU6 fuse that activation
   * (what fold.c's ConvTranspose + Relu fusion produces). */
  int bias = flags & CT_BIAS;
  tn t;
  tn_init(&t, GG_OP_CONV_TRANSPOSE);
  int64_t ws[4] = {kh, kw, cog, xs[3]}, co = (int64_t)cog * groups;
  int ix = tn_in(&t, GG_DT_F32, 4, xs, NULL), iw = tn_in(&t, GG_DT_F32, 4, ws, NULL), ib = -1;
  fill_seq(t.v[ix].data, t.v[ix].nelem, 0.25f, -2.5f);
  fill_seq(t.v[iw].data, t.v[iw].nelem, -0.5f, 3.0f);
  t.v[ix].is_const = 0;
  if (bias) {
    ib = tn_in(&t, GG_DT_F32, 1, &co, NULL);
    fill_seq(t.v[ib].data, co, 1.0f, -5.0f);
  }
  gg_attrs *a = &t.n.a;
  a->groups = groups, a->strides[0] = sh, a->strides[1] = sw, a->dilations[0] = dh;
  a->dilations[1] = dw, a->output_padding[0] = oph, a->output_padding[1] = opw;
  memcpy(a->pads, pads, 4 * sizeof(int));
  a->act = (flags & CT_RELU) ? GG_ACT_RELU : (flags & CT_RELU6) ? GG_ACT_RELU6 : GG_ACT_NONE;
  ASSERT_OK(tn_infer(&t));
  int64_t OH = (xs[1] - 1) * sh + (kh - 1) * dh + 1 - pads[0] - pads[1] + oph;
  int64_t OW = (xs[2] - 1) * sw + (kw - 1) * dw + 1 - pads[2] - pads[3] + opw;
  ASSERT_SHAPE(&t, xs[0], OH, OW, co);
  ASSERT_OK(run_both(&t));
  /* Scatter: every input pixel adds its weighted kernel into the output. */
  int64_t nel = xs[0] * OH * OW * co, cig = xs[3] / groups;
  double *acc = calloc((size_t)nel, sizeof(double));
  const float *X = t.v[ix].data, *Wt = t.v[iw].data;
  for (int64_t b = 0; b < xs[0]; b++)
    for (int64_t iy = 0; iy < xs[1]; iy++)
      for (int64_t ixx = 0; ixx < xs[2]; ixx++)
        for (int64_t ci = 0; ci < xs[3]; ci++) {
          double xv = X[((b * xs[1] + iy) * xs[2] + ixx) * xs[3] + ci];
          int64_t g = ci / cig;
          for (int ky = 0; ky < kh; ky++)
            for (int kx = 0; kx < kw; kx++) {
              int64_t oy = iy * sh + ky * dh - pads[0], ox = ixx * sw + kx * dw - pads[2];
              if (oy < 0 || oy >= OH || ox < 0 || ox >= OW) continue;
              for (int o = 0; o < cog; o++)
                acc[((b * OH + oy) * OW + ox) * co + g * cog + o] +=
                    xv * Wt[((ky * kw + kx) * cog + o) * xs[3] + ci];
            }
        }
  float *want = malloc((size_t)nel * 4 + 4);
  for (int64_t i = 0; i < nel; i++) {
    double v = acc[i] + (bias ? ((float *)t.v[ib].data)[i % co] : 0.0);
    if (flags & (CT_RELU | CT_RELU6)) v = v < 0 ? 0 : v;
    if ((flags & CT_RELU6) && v > 6) v = 6;
    want[i] = (float)v;
  }
  free(acc);
  ASSERT_EQ(first_off_free(&t, want, nel, 1e-5), -1);
}

static void test_conv_transpose(void) {
  /* ONNX test_convtranspose: x 1x1x3x3 = 0..8, W [1,2,3,3] ones -> [1,2,5,5] */
  tn t;
  tn_init(&t, GG_OP_CONV_TRANSPOSE);
  float x[9], w[18];
  for (int i = 0; i < 9; i++) x[i] = (float)i;
  for (int i = 0; i < 18; i++) w[i] = 1.0f;
  const int64_t xs[] = {1, 3, 3, 1}, ws[] = {3, 3, 2, 1};
  tn_in(&t, GG_DT_F32, 4, xs, x);
  tn_in(&t, GG_DT_F32, 4, ws, w);
  t.n.a.groups = 1;
  ASSERT_OK(tn_infer(&t));
  ASSERT_SHAPE(&t, 1, 5, 5, 2);
  ASSERT_OK(tn_run(&t, NULL));
  const float ch[25] = {0, 1,  3,  3,  2,  3, 8,  15, 12, 7,  9, 21, 36,
                        27, 15, 9, 20, 33, 24, 13, 6, 13, 21, 15, 8};
  float want[50];
  for (int i = 0; i < 25; i++) want[2 * i] = want[2 * i + 1] = ch[i];
  ASSERT_EQ(first_off(OUTF(&t), want, 50, 0), -1);
  tn_free(&t);
  const int64_t a[] = {1, 4, 5, 3}, b[] = {2, 3, 4, 4}, c[] = {1, 5, 3, 6};
  const int p0[] = {0, 0, 0, 0}, p1[] = {1, 0, 2, 1}, p2[] = {1, 1, 1, 1};
  check_convt(a, 3, 3, 2, 1, 1, 1, 1, 1, p0, 0, 0, 0);
  check_convt(a, 3, 2, 4, 1, 2, 2, 1, 1, p1, 1, 0, 1); /* stride 2, output_padding */
  check_convt(b, 2, 3, 3, 2, 2, 1, 1, 2, p2, 1, 0, 1); /* groups 2, dilation */
  check_convt(b, 3, 3, 1, 2, 3, 2, 2, 1, p1, 2, 1, 0);
  check_convt(c, 1, 1, 5, 3, 2, 2, 1, 1, p0, 1, 1, 1); /* groups 3, 1x1 */
  check_convt(a, 3, 2, 4, 1, 2, 2, 1, 1, p1, 1, 0, CT_BIAS | CT_RELU); /* fused Relu */
  check_convt(b, 2, 3, 3, 2, 2, 1, 1, 2, p2, 1, 0, CT_BIAS | CT_RELU6);
  check_convt(c, 1, 1, 5, 3, 2, 2, 1, 1, p0, 1, 1, CT_RELU6);
}

static void test_conv_transpose_errors(void) {
  tn t;
  tn_init(&t, GG_OP_CONV_TRANSPOSE);
  const int64_t xs[] = {1, 3, 3, 3}, ws[] = {3, 3, 2, 3};
  tn_in(&t, GG_DT_F32, 4, xs, NULL);
  tn_in(&t, GG_DT_F32, 4, ws, NULL);
  t.n.a.groups = 2; /* 3 channels do not split in 2 */
  ASSERT_EQ(tn_infer(&t), GG_EPARSE);
  ASSERT_CONTAINS(t.err, "node7");
  tn_free(&t);
  tn_init(&t, GG_OP_CONV_TRANSPOSE);
  tn_in(&t, GG_DT_F32, 4, xs, NULL);
  tn_in(&t, GG_DT_F32, 4, ws, NULL);
  t.n.a.pads[0] = t.n.a.pads[1] = 3; /* 5 - 6 rows */
  ASSERT_EQ(tn_infer(&t), GG_ERANGE);
  tn_free(&t);
}

/* ----------------------------------------------------------------- Resize */

/* Runs Resize on a 1-channel NHWC image (same bytes as ONNX's [1,1,H,W]). */
static void check_resize(const float *x, int64_t H, int64_t W, int64_t OH, int64_t OW,
                         float scale_h, float scale_w, gg_resize_mode mode, gg_coord_mode coord,
                         gg_nearest_mode nm, float cubic_a, int excl, const float *want,
                         double tol) {
  tn t;
  tn_init(&t, GG_OP_RESIZE);
  const int64_t xs[] = {1, H, W, 1};
  tn_in(&t, GG_DT_F32, 4, xs, x);
  gg_attrs *a = &t.n.a;
  a->out_hw[0] = OH, a->out_hw[1] = OW, a->scale_hw[0] = scale_h, a->scale_hw[1] = scale_w;
  a->resize_mode = mode, a->coord_mode = coord, a->nearest_mode = nm, a->cubic_a = cubic_a;
  a->exclude_outside = excl;
  ASSERT_OK(tn_infer(&t));
  ASSERT_SHAPE(&t, 1, OH, OW, 1);
  ASSERT_OK(run_both(&t));
  int64_t bad = first_off(OUTF(&t), want, OH * OW, tol);
  tn_free(&t);
  ASSERT_EQ(bad, -1);
}

static const float k_x16[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static void test_resize_nearest(void) {
  /* The expected arrays are the outputs of ONNX's node tests
   * (onnx/backend/test/data/node/test_resize_*). */
  const float up_ceil_hp[64] = {
      1,  2,  2,  3,  3,  4,  4,  4,  5,  6,  6,  7,  7,  8,  8,  8,  5,  6,  6,  7,  7,  8,
      8,  8,  9,  10, 10, 11, 11, 12, 12, 12, 9,  10, 10, 11, 11, 12, 12, 12, 13, 14, 14,
      15, 15, 16, 16, 16, 13, 14, 14, 15, 15, 16, 16, 16, 13, 14, 14, 15, 15, 16, 16, 16};
  check_resize(k_x16, 4, 4, 8, 8, 0, 0, GG_RESIZE_NEAREST, GG_COORD_HALF_PIXEL,
               GG_NEAREST_CEIL, -0.75f, 0, up_ceil_hp, 0);
  const float up_floor_ac[64] = {
      1, 1, 1, 2,  2,  3,  3,  4,  1,  1,  1,  2,  2,  3,  3,  4,  1,  1,  1,  2,  2,  3,
      3, 4, 5, 5,  5,  6,  6,  7,  7,  8,  5,  5,  5,  6,  6,  7,  7,  8,  9,  9,  9,  10,
      10, 11, 11, 12, 9, 9, 9, 10, 10, 11, 11, 12, 13, 13, 13, 14, 14, 15, 15, 16};
  check_resize(k_x16, 4, 4, 8, 8, 0, 0, GG_RESIZE_NEAREST, GG_COORD_ALIGN_CORNERS,
               GG_NEAREST_FLOOR, -0.75f, 0, up_floor_ac, 0);
  /* round_prefer_ceil + asymmetric gives the same array as ceil + half_pixel */
  check_resize(k_x16, 4, 4, 8, 8, 0, 0, GG_RESIZE_NEAREST, GG_COORD_ASYMMETRIC,
               GG_NEAREST_ROUND_PREFER_CEIL, -0.75f, 0, up_ceil_hp, 0);
  /* round_prefer_floor (default), half_pixel, scales 0.6 */
  const float x8[8] = {1, 2, 3, 4, 5, 6, 7, 8}, dn[2] = {1, 3};
  check_resize(x8, 2, 4, 1, 2, 0.6f, 0.6f, GG_RESIZE_NEAREST, GG_COORD_HALF_PIXEL,
               GG_NEAREST_ROUND_PREFER_FLOOR, -0.75f, 0, dn, 0);
  /* tf_half_pixel_for_nn, sizes 3x2 */
  const float tfnn[6] = {6, 8, 10, 12, 14, 16};
  check_resize(k_x16, 4, 4, 3, 2, 0, 0, GG_RESIZE_NEAREST, GG_COORD_TF_HALF_PIXEL_FOR_NN,
               GG_NEAREST_ROUND_PREFER_FLOOR, -0.75f, 0, tfnn, 0);
  /* upsample_scales_nearest: [[1,2],[3,4]] x (2, 3) */
  const float x4[4] = {1, 2, 3, 4};
  const float up23[24] = {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4};
  check_resize(x4, 2, 2, 4, 6, 2, 3, GG_RESIZE_NEAREST, GG_COORD_HALF_PIXEL,
               GG_NEAREST_ROUND_PREFER_FLOOR, -0.75f, 0, up23, 0);
  /* The nearest modes differ on exact halves: 1-D [0..3] x2, asymmetric:
   * source x/2 = 0, .5, 1, 1.5, ... */
  const float r4[4] = {10, 11, 12, 13};
  const float pf[8] = {10, 10, 11, 11, 12, 12, 13, 13}, pc[8] = {10, 11, 11, 12, 12, 13, 13, 13};
  check_resize(r4, 1, 4, 1, 8, 0, 0, GG_RESIZE_NEAREST, GG_COORD_ASYMMETRIC,
               GG_NEAREST_ROUND_PREFER_FLOOR, -0.75f, 0, pf, 0);
  check_resize(r4, 1, 4, 1, 8, 0, 0, GG_RESIZE_NEAREST, GG_COORD_ASYMMETRIC,
               GG_NEAREST_ROUND_PREFER_CEIL, -0.75f, 0, pc, 0);
  check_resize(r4, 1, 4, 1, 8, 0, 0, GG_RESIZE_NEAREST, GG_COORD_ASYMMETRIC, GG_NEAREST_FLOOR,
               -0.75f, 0, pf, 0);
  check_resize(r4, 1, 4, 1, 8, 0, 0, GG_RESIZE_NEAREST, GG_COORD_ASYMMETRIC, GG_NEAREST_CEIL,
               -0.75f, 0, pc, 0);
}

static void test_resize_linear(void) {
  const float x4[4] = {1, 2, 3, 4};
  const float up[16] = {1, 1.25f, 1.75f, 2, 1.5f, 1.75f, 2.25f, 2.5f,
                        2.5f, 2.75f, 3.25f, 3.5f, 3, 3.25f, 3.75f, 4};
  check_resize(x4, 2, 2, 4, 4, 2, 2, GG_RESIZE_LINEAR, GG_COORD_HALF_PIXEL, 0, -0.75f, 0, up,
               1e-6);
  const float x8[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  const float dn[2] = {2.6666665f, 4.3333331f}, dn_ac[2] = {1, 3.142857f};
  check_resize(x8, 2, 4, 1, 2, 0.6f, 0.6f, GG_RESIZE_LINEAR, GG_COORD_HALF_PIXEL, 0, -0.75f, 0,
               dn, 1e-6);
  /* align_corners with scales: ONNX uses the float size (scale * in) */
  check_resize(x8, 2, 4, 1, 2, 0.6f, 0.6f, GG_RESIZE_LINEAR, GG_COORD_ALIGN_CORNERS, 0, -0.75f,
               0, dn_ac, 1e-6);
  const float up_ac[16] = {1,         1.3333333f, 1.6666667f, 2,          1.6666667f, 2,
                           2.3333333f, 2.6666667f, 2.3333333f, 2.6666667f, 3,          3.3333333f,
                           3,         3.3333333f, 3.6666667f, 4};
  check_resize(x4, 2, 2, 4, 4, 2, 2, GG_RESIZE_LINEAR, GG_COORD_ALIGN_CORNERS, 0, -0.75f, 0,
               up_ac, 1e-6);
  /* half_pixel_symmetric, scale 0.6 on width 4 (float size 2.4, 2 pixels):
   * offset 2 * (1 - 2/2.4) = 1/3, sources 1/3 + (x + 0.5)/0.6 - 0.5 =
   * 2/3 and 7/3, so 1 + 2/3 and 1 + 7/3 */
  const float r4[4] = {1, 2, 3, 4}, sym[2] = {1.6666666f, 3.3333333f};
  check_resize(r4, 1, 4, 1, 2, 1.0f, 0.6f, GG_RESIZE_LINEAR, GG_COORD_HALF_PIXEL_SYMMETRIC, 0,
               -0.75f, 0, sym, 1e-6);
  /* pytorch_half_pixel, sizes 3x1: a 1-wide output samples at -0.5 */
  const float pt[3] = {1.6666666f, 7, 12.333333f};
  check_resize(k_x16, 4, 4, 3, 1, 0, 0, GG_RESIZE_LINEAR, GG_COORD_PYTORCH_HALF_PIXEL, 0, -0.75f,
               0, pt, 1e-6);
  /* tf_crop_and_resize, roi (0.4, 0.6)-(1.2, 1.7), extrapolation 10 */
  tn t;
  tn_init(&t, GG_OP_RESIZE);
  const int64_t xs[] = {1, 4, 4, 1};
  tn_in(&t, GG_DT_F32, 4, xs, k_x16);
  gg_attrs *a = &t.n.a;
  a->out_hw[0] = a->out_hw[1] = 3;
  a->resize_mode = GG_RESIZE_LINEAR, a->coord_mode = GG_COORD_TF_CROP_AND_RESIZE;
  a->roi[0] = 0.4f, a->roi[1] = 0.6f, a->roi[2] = 1.2f, a->roi[3] = 1.7f;
  a->extrapolation = 10.0f;
  ASSERT_OK(tn_infer(&t));
  ASSERT_OK(tn_run(&t, NULL));
  const float tf[9] = {7.6000004f, 10, 10, 12.400001f, 10, 10, 10, 10, 10};
  ASSERT_EQ(first_off(OUTF(&t), tf, 9, 1e-6), -1);
  tn_free(&t);
}

static void test_resize_cubic(void) {
  const float up[64] = {
      0.47265625f, 0.76953125f, 1.24609375f, 1.875f,      2.28125f,    2.91015625f, 3.38671875f,
      3.68359375f, 1.66015625f, 1.95703125f, 2.43359375f, 3.0625f,     3.46875f,    4.09765625f,
      4.57421875f, 4.87109375f, 3.56640625f, 3.86328125f, 4.33984375f, 4.96875f,    5.375f,
      6.00390625f, 6.48046875f, 6.77734375f, 6.08203125f, 6.37890625f, 6.85546875f, 7.484375f,
      7.890625f,   8.51953125f, 8.99609375f, 9.29296875f, 7.70703125f, 8.00390625f, 8.48046875f,
      9.109375f,   9.515625f,   10.14453125f, 10.62109375f, 10.91796875f, 10.22265625f,
      10.51953125f, 10.99609375f, 11.625f,    12.03125f,   12.66015625f, 13.13671875f,
      13.43359375f, 12.12890625f, 12.42578125f, 12.90234375f, 13.53125f,  13.9375f,
      14.56640625f, 15.04296875f, 15.33984375f, 13.31640625f, 13.61328125f, 14.08984375f,
      14.71875f,   15.125f,     15.75390625f, 16.23046875f, 16.52734375f};
  check_resize(k_x16, 4, 4, 8, 8, 2, 2, GG_RESIZE_CUBIC, GG_COORD_HALF_PIXEL, 0, -0.75f, 0, up,
               1e-6);
  const float asym[64] = {
      1,      1.40625f, 2,      2.5f,   3,      3.59375f, 4,      4.09375f, 2.625f,  3.03125f,
      3.625f, 4.125f,   4.625f, 5.21875f, 5.625f, 5.71875f, 5,    5.40625f, 6,       6.5f,
      7,      7.59375f, 8,      8.09375f, 7,    7.40625f, 8,      8.5f,     9,       9.59375f,
      10,     10.09375f, 9,     9.40625f, 10,   10.5f,    11,     11.59375f, 12,     12.09375f,
      11.375f, 11.78125f, 12.375f, 12.875f, 13.375f, 13.96875f, 14.375f, 14.46875f, 13, 13.40625f,
      14,     14.5f,    15,     15.59375f, 16,  16.09375f, 13.375f, 13.78125f, 14.375f, 14.875f,
      15.375f, 15.96875f, 16.375f, 16.46875f};
  check_resize(k_x16, 4, 4, 8, 8, 2, 2, GG_RESIZE_CUBIC, GG_COORD_ASYMMETRIC, 0, -0.75f, 0, asym,
               1e-6);
  const float dn_ac[9] = {1,         2.3951917f, 3.7903838f, 6.5807662f, 7.9759579f,
                          9.3711491f, 12.161532f, 13.556724f, 14.951916f};
  check_resize(k_x16, 4, 4, 3, 3, 0.8f, 0.8f, GG_RESIZE_CUBIC, GG_COORD_ALIGN_CORNERS, 0, -0.75f,
               0, dn_ac, 1e-6);
  /* pytorch_half_pixel with a 1-pixel output samples at -0.5: taps -2..1
   * clamped to 0, 0, 0, 1 with weights -0.09375, 0.59375, 0.59375, -0.09375
   * on [1, 2, 3, 4]: 1.09375 - 0.1875 = 0.90625 (0 would give 1) */
  const float r4[4] = {1, 2, 3, 4}, one[1] = {0.90625f};
  check_resize(r4, 1, 4, 1, 1, 0, 0, GG_RESIZE_CUBIC, GG_COORD_PYTORCH_HALF_PIXEL, 0, -0.75f, 0,
               one, 1e-6);
  const float excl[9] = {1.3681276f, 2.6695015f, 4.0133367f, 6.5736248f, 7.875f,
                         9.2188349f, 11.948966f, 13.250341f, 14.594176f};
  check_resize(k_x16, 4, 4, 3, 3, 0.8f, 0.8f, GG_RESIZE_CUBIC, GG_COORD_HALF_PIXEL, 0, -0.5f, 1,
               excl, 1e-6);
}

/* out_hw -1 (scale_hw), -2 (scales input), -3 (sizes input) as the ONNX
 * importer emits them. */
static void test_resize_sizes_from_inputs(void) {
  const float x8[8] = {1, 2, 3, 4, 5, 6, 7, 8}, dn[2] = {2.6666665f, 4.3333331f};
  const float sc[4] = {1, 1, 0.6f, 0.6f};
  const int64_t xs[] = {1, 2, 4, 1}, four = 4;
  for (int mode = -2; mode <= -1; mode++) {
    tn t;
    tn_init(&t, GG_OP_RESIZE);
    tn_in(&t, GG_DT_F32, 4, xs, x8);
    if (mode == -2) tn_in(&t, GG_DT_F32, 1, &four, sc);
    else t.n.a.scale_hw[0] = t.n.a.scale_hw[1] = 0.6f;
    t.n.a.out_hw[0] = t.n.a.out_hw[1] = mode;
    t.n.a.resize_mode = GG_RESIZE_LINEAR;
    ASSERT_OK(tn_infer(&t));
    ASSERT_SHAPE(&t, 1, 1, 2, 1);
    ASSERT_OK(tn_run(&t, NULL));
    ASSERT_EQ(first_off(OUTF(&t), dn, 2, 1e-6), -1);
    tn_free(&t);
  }
  tn t;
  const int64_t x4[] = {1, 4, 4, 1};
  const int32_t sz[4] = {1, 1, 3, 1}, bad[4] = {2, 1, 3, 1};
  const float pt[3] = {1.6666666f, 7, 12.333333f};
  tn_init(&t, GG_OP_RESIZE);
  tn_in(&t, GG_DT_F32, 4, x4, k_x16);
  tn_ints(&t, 4, sz);
  t.n.a.out_hw[0] = t.n.a.out_hw[1] = -3;
  t.n.a.resize_mode = GG_RESIZE_LINEAR, t.n.a.coord_mode = GG_COORD_PYTORCH_HALF_PIXEL;
  ASSERT_OK(tn_infer(&t));
  ASSERT_SHAPE(&t, 1, 3, 1, 1);
  ASSERT_OK(tn_run(&t, NULL));
  ASSERT_EQ(first_off(OUTF(&t), pt, 3, 1e-6), -1);
  tn_free(&t);
  /* sizes that change N; scales not known when the session is made */
  tn_init(&t, GG_OP_RESIZE);
  tn_in(&t, GG_DT_F32, 4, x4, k_x16);
  tn_ints(&t, 4, bad);
  t.n.a.out_hw[0] = t.n.a.out_hw[1] = -3;
  ASSERT_EQ(tn_infer(&t), GG_EUNSUPPORTED);
  ASSERT_CONTAINS(t.err, "node7");
  tn_free(&t);
  tn_init(&t, GG_OP_RESIZE);
  tn_in(&t, GG_DT_F32, 4, x4, k_x16);
  int is = tn_in(&t, GG_DT_F32, 1, &four, sc);
  free(t.v[is].data);
  t.v[is].data = NULL, t.v[is].is_const = 0;
  t.n.a.out_hw[0] = t.n.a.out_hw[1] = -2;
  ASSERT_EQ(tn_infer(&t), GG_EUNSUPPORTED);
  ASSERT_CONTAINS(t.err, "scales");
  tn_free(&t);
}

static void test_resize_errors(void) {
  tn t;
  tn_init(&t, GG_OP_RESIZE);
  const int64_t xs[] = {1, 4, 4, 1};
  tn_in(&t, GG_DT_F32, 4, xs, k_x16);
  t.n.a.out_hw[0] = 0, t.n.a.out_hw[1] = 3;
  ASSERT_EQ(tn_infer(&t), GG_ERANGE);
  ASSERT_CONTAINS(t.err, "node7");
  tn_free(&t);
  tn_init(&t, GG_OP_RESIZE);
  const int64_t x3[] = {4, 4, 1};
  tn_in(&t, GG_DT_F32, 3, x3, k_x16);
  t.n.a.out_hw[0] = t.n.a.out_hw[1] = 3;
  ASSERT_EQ(tn_infer(&t), GG_EPARSE);
  tn_free(&t);
}

int main(int argc, char **argv) {
  static const gg_test_case cases[] = {
      {"batch_matmul", test_batch_matmul},
      {"batch_matmul_errors", test_batch_matmul_errors},
      {"slice", test_slice},
      {"slice_errors", test_slice_errors},
      {"gather", test_gather},
      {"gather_out_of_range", test_gather_out_of_range},
      {"expand", test_expand},
      {"tile", test_tile},
      {"shape", test_shape},
      {"range", test_range},
      {"constant_of_shape", test_constant_of_shape},
      {"avgpool", test_avgpool},
      {"avgpool_errors", test_avgpool_errors},
      {"maxpool_ceil", test_maxpool_ceil},
      {"pad_modes", test_pad_modes},
      {"conv_transpose", test_conv_transpose},
      {"conv_transpose_errors", test_conv_transpose_errors},
      {"resize_nearest", test_resize_nearest},
      {"resize_linear", test_resize_linear},
      {"resize_cubic", test_resize_cubic},
      {"resize_sizes_from_inputs", test_resize_sizes_from_inputs},
      {"resize_errors", test_resize_errors},
      {NULL, NULL},
  };
  return gg_test_main(argc, argv, cases);
}
