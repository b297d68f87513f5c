/* A harness for one IR op's shape rule and naive kernel (tests/test-ops-elem.c,
 * tests/test-ops-extra.c): a node whose inputs are tensors 0..n_in-1 and
 * outputs follow, ev() runs the shape rule then the kernel on outputs filled
 * with garbage (every value must be written), EXPECT_* compare float
 * outputs NaN- and inf-aware and int outputs exactly. Define OPT_NODE_NAME
 * (the node's name, seen in error messages) before including. Test-only. */
#ifndef GG_TEST_OP_HARNESS_H
#define GG_TEST_OP_HARNESS_H

#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "test.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef OPT_NODE_NAME
#define OPT_NODE_NAME "op_node"
#endif

/* One node: inputs are tensors 0..n_in-1 (borrowed data), outputs follow
 * (allocated by ev(), freed by done()). */
typedef struct opt {
  gg_node n;
  gg_tval v[8];
  int in[4], out[3];
  char err[256];
} opt;

#define S(...) ((const int64_t[]){__VA_ARGS__})
#define F(...) ((float[]){__VA_ARGS__})
#define I(...) ((int32_t[]){__VA_ARGS__})

static void init(opt *o, gg_op op, int n_in, int n_out) {
  memset(o, 0, sizeof *o);
  o->n.name = OPT_NODE_NAME;
  o->n.src_op = gg__op_name(op);
  o->n.op = op;
  o->n.n_in = n_in, o->n.n_out = n_out;
  for (int i = 0; i < n_in; i++) o->in[i] = i;
  for (int i = 0; i < n_out; i++) o->out[i] = n_in + i;
  o->n.in = o->in, o->n.out = o->out;
}

static void set(opt *o, int k, gg_dtype dt, void *data, int ndim, const int64_t *shape) {
  gg_tval *t = &o->v[k];
  memset(t, 0, sizeof *t);
  t->dtype = dt, t->ndim = ndim, t->nelem = 1, t->data = data;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i], t->nelem *= shape[i];
}

static void done(opt *o) {
  for (int k = 0; k < o->n.n_out; k++) free(o->v[o->out[k]].data), o->v[o->out[k]].data = NULL;
}

/* Shape rule, then the kernel (pool may be NULL). Returns 0 or the error;
 * the message is in o->err. */
static int ev_pool(opt *o, const gg__kctx *ctx) {
  int rc = gg__op_infer(&o->n, o->v, o->err, sizeof o->err);
  if (rc) return rc;
  for (int k = 0; k < o->n.n_out; k++) {
    gg_tval *y = &o->v[o->out[k]];
    y->data = malloc((size_t)y->nelem * 4 + 4);
    memset(y->data, 0xA5, (size_t)y->nelem * 4 + 4); /* garbage: every value must be written */
  }
  return gg__op_run(&o->n, o->v, ctx);
}
static int ev(opt *o) {
  return ev_pool(o, NULL);
}

static float *fout(opt *o, int k) {
  return (float *)o->v[o->out[k]].data;
}
static int32_t *iout(opt *o, int k) {
  return (int32_t *)o->v[o->out[k]].data;
}

/* Same value, NaN matching NaN, infinities exact, else |d| <= tol*max(1,|w|). */
static int same(double got, double want, double tol) {
  if (isnan(want)) return isnan(got);
  if (isinf(want)) return got == want;
  return gg_t_near(got, want, tol * fmax(1.0, fabs(want)));
}

#define EXPECT_F(o, k, want, count, tol)                                                           \
  do {                                                                                             \
    const float *_g = fout(o, k);                                                                  \
    const double *_w = (want);                                                                     \
    ASSERT_EQ((o)->v[(o)->out[k]].nelem, (count));                                                 \
    ASSERT_EQ((o)->v[(o)->out[k]].dtype, GG_DT_F32);                                               \
    for (int64_t _i = 0; _i < (count); _i++)                                                       \
      if (!same(_g[_i], _w[_i], (tol)))                                                            \
        GG_T_FAIL("%s output %d [%lld] = %.9g, want %.9g", (o)->n.src_op, k, (long long)_i,        \
                  (double)_g[_i], _w[_i]);                                                         \
  } while (0)

#define EXPECT_I(o, k, want, count)                                                                \
  do {                                                                                             \
    const int32_t *_g = iout(o, k), *_w = (want);                                                  \
    ASSERT_EQ((o)->v[(o)->out[k]].nelem, (count));                                                 \
    ASSERT_EQ((o)->v[(o)->out[k]].dtype, GG_DT_I32);                                               \
    for (int64_t _i = 0; _i < (count); _i++)                                                       \
      if (_g[_i] != _w[_i])                                                                        \
        GG_T_FAIL("%s output %d [%lld] = %d, want %d", (o)->n.src_op, k, (long long)_i, _g[_i],    \
                  _w[_i]);                                                                         \
  } while (0)

#define EXPECT_SHAPE(o, k, nd, ...)                                                                \
  do {                                                                                             \
    const int64_t _s[] = {__VA_ARGS__};                                                            \
    const gg_tval *_y = &(o)->v[(o)->out[k]];                                                      \
    ASSERT_EQ(_y->ndim, (nd));                                                                     \
    for (int _d = 0; _d < (nd); _d++) ASSERT_EQ(_y->shape[_d], _s[_d]);                            \
  } while (0)

static uint64_t g_rng = 88172645463325252ull;
static float frand(float lo, float hi) {
  g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
  return lo + (hi - lo) * (float)((g_rng >> 11) % 1000003) / 1000003.0f;
}
static float *rnd_buf(int64_t n, float lo, float hi) {
  float *p = malloc((size_t)(n ? n : 1) * 4);
  for (int64_t i = 0; i < n; i++) p[i] = frand(lo, hi);
  return p;
}

#endif
