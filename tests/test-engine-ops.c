/* Naive reference kernels against tiny hand-computed cases, one or more per
 * op and attribute the four models use. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "test.h"

/* One op evaluation: tensors 0..n_in-1 are inputs, then outputs. */
typedef struct opt {
  gg_node n;
  gg_tval v[10];
  int in[6], out[4];
  float obuf[4][64];
} opt;

static void tv_set(gg_tval *t, gg_dtype dt, void *data, int ndim, const int64_t *shape) {
  memset(t, 0, sizeof *t);
  t->dtype = dt;
  t->ndim = ndim;
  t->nelem = 1;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i], t->nelem *= shape[i];
  t->data = data;
}

static void op_init(opt *o, gg_op op, int n_in, int n_out) {
  memset(o, 0, sizeof *o);
  o->n.name = "t";
  o->n.src_op = gg__op_name(op);
  o->n.op = op;
  o->n.n_in = n_in, o->n.n_out = n_out;
  for (int i = 0; i < n_in; i++) o->in[i] = i;
  for (int i = 0; i < n_out; i++) o->out[i] = n_in + i;
  o->n.in = o->in, o->n.out = o->out;
  o->n.a.strides[0] = o->n.a.strides[1] = 1;
  o->n.a.dilations[0] = o->n.a.dilations[1] = 1;
}

#define S(...) ((const int64_t[]){__VA_ARGS__})
#define F(...) ((float[]){__VA_ARGS__})
#define I(...) ((int32_t[]){__VA_ARGS__})

/* Infers and runs; returns 0 or the error. */
static int op_eval(opt *o) {
  char err[256] = "";
  int rc = gg__op_infer(&o->n, o->v, err, sizeof err);
  if (rc) {
    fprintf(stderr, "  infer: %s %s\n", gg_err_name(rc), err);
    return rc;
  }
  for (int k = 0; k < o->n.n_out; k++) {
    if (o->v[o->out[k]].nelem > 64) return GG_ERANGE;
    o->v[o->out[k]].data = o->obuf[k];
  }
  return gg__op_run(&o->n, o->v, NULL);
}

static void expect(const opt *o, int k, const int64_t *shape, int ndim, const float *want) {
  const gg_tval *y = &o->v[o->out[k]];
  ASSERT_EQ(y->ndim, ndim);
  for (int d = 0; d < ndim; d++) ASSERT_EQ(y->shape[d], shape[d]);
  for (int64_t i = 0; i < y->nelem; i++) {
    float got = y->dtype == GG_DT_I32 ? (float)((int32_t *)y->data)[i] : ((float *)y->data)[i];
    if (!gg_t_near(got, want[i], 1e-5)) GG_T_FAIL("%s output %d[%lld] = %g, want %g", o->n.src_op, k, (long long)i, got, want[i]);
  }
}

static float x9[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

static void test_conv(void) {
  opt o;
  float ones4[4] = {1, 1, 1, 1}, ones9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  /* VALID 2x2 of ones over 1..9. */
  op_init(&o, GG_OP_CONV2D, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, x9, 4, S(1, 3, 3, 1));
  tv_set(&o.v[1], GG_DT_F32, ones4, 4, S(2, 2, 1, 1));
  o.n.a.padding = GG_PAD_VALID;
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(1, 2, 2, 1), 4, F(12, 16, 24, 28));
  /* SAME 3x3 stride 2, bias -20, relu. */
  op_init(&o, GG_OP_CONV2D, 3, 1);
  tv_set(&o.v[0], GG_DT_F32, x9, 4, S(1, 3, 3, 1));
  tv_set(&o.v[1], GG_DT_F32, ones9, 4, S(3, 3, 1, 1));
  tv_set(&o.v[2], GG_DT_F32, F(-20), 1, S(1));
  o.n.a.padding = GG_PAD_SAME, o.n.a.strides[0] = o.n.a.strides[1] = 2;
  o.n.a.has_bias = 1, o.n.a.act = GG_ACT_RELU;
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(1, 2, 2, 1), 4, F(0, 0, 4, 8));
  /* The same with a fused leaky ReLU (slope 0.25) keeps the negatives scaled. */
  o.n.a.act = GG_ACT_LEAKY, o.n.a.alpha = 0.25f;
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(1, 2, 2, 1), 4, F(-2, -1, 4, 8));
  /* EXPLICIT pads (top 1, bottom 0, left 0, right 1), 2x2 ones: out 3x3. */
  op_init(&o, GG_OP_CONV2D, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, x9, 4, S(1, 3, 3, 1));
  tv_set(&o.v[1], GG_DT_F32, ones4, 4, S(2, 2, 1, 1));
  o.n.a.padding = GG_PAD_EXPLICIT;
  o.n.a.pads[0] = 1, o.n.a.pads[1] = 0, o.n.a.pads[2] = 0, o.n.a.pads[3] = 1;
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(1, 3, 3, 1), 4, F(3, 5, 3, 12, 16, 9, 24, 28, 15));
  /* Dilation 2 over a 5x5 ramp. */
  float x25[25];
  for (int i = 0; i < 25; i++) x25[i] = (float)i;
  op_init(&o, GG_OP_CONV2D, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, x25, 4, S(1, 5, 5, 1));
  tv_set(&o.v[1], GG_DT_F32, ones4, 4, S(2, 2, 1, 1));
  o.n.a.padding = GG_PAD_VALID, o.n.a.dilations[0] = o.n.a.dilations[1] = 2;
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(1, 3, 3, 1), 4, F(24, 28, 32, 44, 48, 52, 64, 68, 72));
  /* Two input channels to two outputs, 1x1: a channel mixing matrix. */
  op_init(&o, GG_OP_CONV2D, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, F(1, 2, 3, 4), 4, S(1, 1, 2, 2));
  tv_set(&o.v[1], GG_DT_F32, F(1, 10, 100, 1000), 4, S(1, 1, 2, 2));
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(1, 1, 2, 2), 4, F(201, 2010, 403, 4030));
  /* Grouped: 2 groups of 1 channel (filter CI 1, CO 2). */
  op_init(&o, GG_OP_CONV2D, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, F(1, 2), 4, S(1, 1, 1, 2));
  tv_set(&o.v[1], GG_DT_F32, F(3, 5), 4, S(1, 1, 1, 2));
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(1, 1, 1, 2), 4, F(3, 10));
  /* Filter too big for VALID: a clear error, not a crash. */
  op_init(&o, GG_OP_CONV2D, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, F(1, 2), 4, S(1, 1, 2, 1));
  tv_set(&o.v[1], GG_DT_F32, ones9, 4, S(3, 3, 1, 1));
  ASSERT_EQ(op_eval(&o), GG_EPARSE);
}

static void test_depthwise(void) {
  opt o;
  op_init(&o, GG_OP_DEPTHWISE, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, F(1, 2, 3, 4), 4, S(1, 1, 2, 2));
  tv_set(&o.v[1], GG_DT_F32, F(1, 2, 3, 4, 5, 6, 7, 8), 4, S(1, 2, 2, 2));
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(1, 1, 1, 4), 4, F(16, 20, 34, 40));
  /* Multiplier 1, SAME, bias and relu6. */
  op_init(&o, GG_OP_DEPTHWISE, 3, 1);
  tv_set(&o.v[0], GG_DT_F32, x9, 4, S(1, 3, 3, 1));
  float k9[9] = {0, 0, 0, 0, 2, 0, 0, 0, 0};
  tv_set(&o.v[1], GG_DT_F32, k9, 4, S(3, 3, 1, 1));
  tv_set(&o.v[2], GG_DT_F32, F(-3), 1, S(1));
  o.n.a.padding = GG_PAD_SAME, o.n.a.has_bias = 1, o.n.a.act = GG_ACT_RELU6;
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(1, 3, 3, 1), 4, F(0, 1, 3, 5, 6, 6, 6, 6, 6));
  /* PReLU activation with per-channel alpha. */
  op_init(&o, GG_OP_DEPTHWISE, 4, 1);
  tv_set(&o.v[0], GG_DT_F32, F(-1, 2), 4, S(1, 1, 1, 2));
  tv_set(&o.v[1], GG_DT_F32, F(4, 4), 4, S(1, 1, 2, 1));
  tv_set(&o.v[2], GG_DT_F32, F(0, -10), 1, S(2));
  tv_set(&o.v[3], GG_DT_F32, F(0.5f, 0.25f), 1, S(2));
  o.n.a.has_bias = 1, o.n.a.act = GG_ACT_PRELU;
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(1, 1, 1, 2), 4, F(-2, -0.5f));
}

static void test_matmul(void) {
  opt o;
  op_init(&o, GG_OP_MATMUL, 3, 1);
  tv_set(&o.v[0], GG_DT_F32, F(1, 2, 3, 4, 5, 6), 2, S(2, 3));
  tv_set(&o.v[1], GG_DT_F32, F(1, 0, 1, 0, 1, 0), 2, S(2, 3));
  tv_set(&o.v[2], GG_DT_F32, F(1, -10), 1, S(2));
  o.n.a.transpose_b = 1, o.n.a.has_bias = 1, o.n.a.act = GG_ACT_RELU;
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(2, 2), 2, F(5, 0, 11, 0));
  op_init(&o, GG_OP_MATMUL, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, F(1, 2, 3, 4, 5, 6), 2, S(3, 2)); /* transposed: [[1,3,5],[2,4,6]] */
  tv_set(&o.v[1], GG_DT_F32, F(1, 1, 1), 2, S(3, 1));
  o.n.a.transpose_a = 1;
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(2, 1), 2, F(9, 12));
  op_init(&o, GG_OP_MATMUL, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, F(1, 2), 2, S(1, 2));
  tv_set(&o.v[1], GG_DT_F32, F(1, 2, 3), 2, S(3, 1));
  ASSERT_EQ(op_eval(&o), GG_EPARSE);
}

static void test_elementwise(void) {
  opt o;
  op_init(&o, GG_OP_ADD, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, F(1, 2, 3, 4, 5, 6), 2, S(2, 3));
  tv_set(&o.v[1], GG_DT_F32, F(10, 20, 30), 1, S(3));
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(2, 3), 2, F(11, 22, 33, 14, 25, 36));
  op_init(&o, GG_OP_SUB, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, F(1, 2, 3, 4, 5, 6), 2, S(2, 3));
  tv_set(&o.v[1], GG_DT_F32, F(1, 4), 2, S(2, 1));
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(2, 3), 2, F(0, 1, 2, 0, 1, 2));
  /* Both sides broadcast: [2,1] * [1,3]. */
  op_init(&o, GG_OP_MUL, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, F(2, 3), 2, S(2, 1));
  tv_set(&o.v[1], GG_DT_F32, F(1, 10, 100), 2, S(1, 3));
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(2, 3), 2, F(2, 20, 200, 3, 30, 300));
  op_init(&o, GG_OP_MAXIMUM, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, F(-1, 2, -3), 1, S(3));
  tv_set(&o.v[1], GG_DT_F32, F(0), 0, S(0));
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(3), 1, F(0, 2, 0));
  op_init(&o, GG_OP_MINIMUM, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, F(-1, 7, 3), 1, S(3));
  tv_set(&o.v[1], GG_DT_F32, F(6), 1, S(1));
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(3), 1, F(-1, 6, 3));
  op_init(&o, GG_OP_PRELU, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, F(-2, 3, -4, 5), 2, S(2, 2));
  tv_set(&o.v[1], GG_DT_F32, F(0.5f, 0.25f), 1, S(2));
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(2, 2), 2, F(-1, 3, -2, 5));
  /* Integer add (shape arithmetic folded at import). */
  op_init(&o, GG_OP_ADD, 2, 1);
  tv_set(&o.v[0], GG_DT_I32, I(1, 2, 3), 1, S(3));
  tv_set(&o.v[1], GG_DT_I32, I(0, 0, 0), 1, S(3));
  ((int32_t *)o.v[1].data)[2] = -5;
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(3), 1, F(1, 2, -2));
  op_init(&o, GG_OP_ADD, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, F(1, 2, 3), 1, S(3));
  tv_set(&o.v[1], GG_DT_F32, F(1, 2), 1, S(2));
  ASSERT_EQ(op_eval(&o), GG_EPARSE);
  /* Unary ops. */
  struct {
    gg_op op;
    float in, want;
  } u[] = {{GG_OP_ABS, -3, 3},   {GG_OP_SQUARE, -3, 9},       {GG_OP_RSQRT, 4, 0.5f},
           {GG_OP_RELU, -1, 0},  {GG_OP_RELU, 2, 2},          {GG_OP_RELU6, 7, 6},
           {GG_OP_RELU6, -7, 0}, {GG_OP_LEAKY_RELU, -2, -0.2f}, {GG_OP_SIGMOID, 0, 0.5f},
           {GG_OP_IDENTITY, 1.5f, 1.5f}};
  for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
    float in[1] = {u[i].in};
    op_init(&o, u[i].op, 1, 1);
    o.n.a.alpha = 0.1f;
    tv_set(&o.v[0], GG_DT_F32, in, 1, S(1));
    ASSERT_OK(op_eval(&o));
    expect(&o, 0, S(1), 1, &u[i].want);
  }
  op_init(&o, GG_OP_SOFTMAX, 1, 1);
  tv_set(&o.v[0], GG_DT_F32, F(0, logf(3.0f), 5, 5), 2, S(2, 2));
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(2, 2), 2, F(0.25f, 0.75f, 0.5f, 0.5f));
}

static void test_reduce(void) {
  opt o;
  op_init(&o, GG_OP_SUM, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, F(1, 2, 3, 4, 5, 6), 2, S(2, 3));
  tv_set(&o.v[1], GG_DT_I32, I(1), 1, S(1));
  o.n.a.keep_dims = 1;
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(2, 1), 2, F(6, 15));
  op_init(&o, GG_OP_MEAN, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, F(1, 2, 3, 4, 5, 6), 2, S(2, 3));
  tv_set(&o.v[1], GG_DT_I32, I(0, -1), 1, S(2));
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(0), 0, F(3.5f));
  /* Mean over H, W of NHWC (faceres's global pooling). */
  op_init(&o, GG_OP_MEAN, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, F(1, 10, 3, 30, 5, 50, 7, 70), 4, S(1, 2, 2, 2));
  tv_set(&o.v[1], GG_DT_I32, I(1, 2), 1, S(2));
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(1, 2), 2, F(4, 40));
  op_init(&o, GG_OP_SUM, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, F(1, 2), 1, S(2));
  tv_set(&o.v[1], GG_DT_I32, I(3), 1, S(1));
  ASSERT_EQ(op_eval(&o), GG_EPARSE);
}

static void test_pool(void) {
  opt o;
  op_init(&o, GG_OP_MAXPOOL, 1, 1);
  tv_set(&o.v[0], GG_DT_F32, x9, 4, S(1, 3, 3, 1));
  o.n.a.ksize[0] = o.n.a.ksize[1] = 2, o.n.a.strides[0] = o.n.a.strides[1] = 2;
  o.n.a.padding = GG_PAD_SAME;
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(1, 2, 2, 1), 4, F(5, 6, 8, 9));
  o.n.a.padding = GG_PAD_VALID;
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(1, 1, 1, 1), 4, F(5));
  /* Negative values with SAME padding: padding never wins. */
  float neg[4] = {-4, -3, -2, -1};
  op_init(&o, GG_OP_MAXPOOL, 1, 1);
  tv_set(&o.v[0], GG_DT_F32, neg, 4, S(1, 2, 2, 1));
  o.n.a.ksize[0] = o.n.a.ksize[1] = 3;
  o.n.a.padding = GG_PAD_SAME;
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(1, 2, 2, 1), 4, F(-1, -1, -1, -1));
}

static void test_resize(void) {
  opt o;
  float x4[4] = {0, 1, 2, 3};
  op_init(&o, GG_OP_RESIZE_BILINEAR, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, x4, 4, S(1, 2, 2, 1));
  tv_set(&o.v[1], GG_DT_I32, I(4, 4), 1, S(2));
  ASSERT_OK(op_eval(&o)); /* legacy: src = dst * 0.5 */
  expect(&o, 0, S(1, 4, 4, 1), 4,
         F(0, 0.5f, 1, 1, 1, 1.5f, 2, 2, 2, 2.5f, 3, 3, 2, 2.5f, 3, 3));
  o.n.a.half_pixel_centers = 1; /* src = (dst + 0.5) * 0.5 - 0.5 */
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(1, 4, 4, 1), 4,
         F(0, 0.25f, 0.75f, 1, 0.5f, 0.75f, 1.25f, 1.5f, 1.5f, 1.75f, 2.25f, 2.5f, 2, 2.25f,
           2.75f, 3));
  o.n.a.half_pixel_centers = 0, o.n.a.align_corners = 1; /* src = dst / 3 */
  ASSERT_OK(op_eval(&o));
  const float t = 1.0f / 3, t2 = 2.0f / 3;
  expect(&o, 0, S(1, 4, 4, 1), 4,
         F(0, t, t2, 1, 2 * t, 1, 4 * t, 5 * t, 4 * t, 5 * t, 2, 7 * t, 2, 7 * t, 8 * t, 3));
}

static void test_shape_ops(void) {
  opt o;
  float x6[6] = {1, 2, 3, 4, 5, 6};
  op_init(&o, GG_OP_PAD, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, F(1, 2), 2, S(1, 2));
  tv_set(&o.v[1], GG_DT_I32, I(1, 0, 0, 1), 2, S(2, 2));
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(2, 3), 2, F(0, 0, 0, 1, 2, 0));
  op_init(&o, GG_OP_PAD, 3, 1);
  tv_set(&o.v[0], GG_DT_F32, F(1, 2), 2, S(1, 2));
  tv_set(&o.v[1], GG_DT_I32, I(0, 0, 1, 1), 2, S(2, 2));
  tv_set(&o.v[2], GG_DT_F32, F(9), 0, S(0));
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(1, 4), 2, F(9, 1, 2, 9));
  op_init(&o, GG_OP_TRANSPOSE, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, x6, 2, S(2, 3));
  tv_set(&o.v[1], GG_DT_I32, I(1, 0), 1, S(2));
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(3, 2), 2, F(1, 4, 2, 5, 3, 6));
  /* NCHW -> NHWC as nanodet does. */
  op_init(&o, GG_OP_TRANSPOSE, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, F(1, 2, 3, 4, 10, 20, 30, 40), 4, S(1, 2, 2, 2));
  tv_set(&o.v[1], GG_DT_I32, I(0, 2, 3, 1), 1, S(4));
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(1, 2, 2, 2), 4, F(1, 10, 2, 20, 3, 30, 4, 40));
  op_init(&o, GG_OP_TRANSPOSE, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, x6, 2, S(2, 3));
  tv_set(&o.v[1], GG_DT_I32, I(0, 0), 1, S(2));
  ASSERT_EQ(op_eval(&o), GG_EPARSE);
  op_init(&o, GG_OP_CONCAT, 3, 1);
  tv_set(&o.v[0], GG_DT_F32, F(1, 2), 2, S(2, 1));
  tv_set(&o.v[1], GG_DT_F32, F(3, 4, 5, 6), 2, S(2, 2));
  tv_set(&o.v[2], GG_DT_I32, I(-1), 0, S(0));
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(2, 3), 2, F(1, 3, 4, 2, 5, 6));
  op_init(&o, GG_OP_SPLITV, 3, 2);
  tv_set(&o.v[0], GG_DT_F32, F(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 2, S(2, 5));
  tv_set(&o.v[1], GG_DT_I32, I(2, -1), 1, S(2));
  tv_set(&o.v[2], GG_DT_I32, I(1), 0, S(0));
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(2, 2), 2, F(1, 2, 6, 7));
  expect(&o, 1, S(2, 3), 2, F(3, 4, 5, 8, 9, 10));
  op_init(&o, GG_OP_RESHAPE, 2, 1);
  tv_set(&o.v[0], GG_DT_F32, x6, 2, S(2, 3));
  tv_set(&o.v[1], GG_DT_I32, I(3, -1), 1, S(2));
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(3, 2), 2, x6);
  tv_set(&o.v[1], GG_DT_I32, I(4, -1), 1, S(2));
  ASSERT_EQ(op_eval(&o), GG_EPARSE);
  op_init(&o, GG_OP_SQUEEZE, 1, 1);
  tv_set(&o.v[0], GG_DT_F32, F(1, 2), 4, S(1, 1, 1, 2));
  o.n.a.n_axes = 2, o.n.a.axes[0] = 1, o.n.a.axes[1] = 2;
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(1, 2), 2, F(1, 2));
  o.n.a.axes[1] = 3;
  ASSERT_EQ(op_eval(&o), GG_EPARSE);
  op_init(&o, GG_OP_SPARSE_TO_DENSE, 4, 1);
  tv_set(&o.v[0], GG_DT_I32, I(1, 3), 2, S(2, 1));
  tv_set(&o.v[1], GG_DT_I32, I(5), 1, S(1));
  tv_set(&o.v[2], GG_DT_I32, I(7, 8), 1, S(2));
  tv_set(&o.v[3], GG_DT_I32, I(0), 0, S(0));
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(5), 1, F(0, 7, 0, 8, 0));
  /* nanodet's form: no indices at all (Where of nothing) -> all default. */
  op_init(&o, GG_OP_SPARSE_TO_DENSE, 4, 1);
  tv_set(&o.v[0], GG_DT_I32, I(0), 2, S(0, 1));
  tv_set(&o.v[1], GG_DT_I32, I(3), 1, S(1));
  tv_set(&o.v[2], GG_DT_I32, I(0), 1, S(0));
  tv_set(&o.v[3], GG_DT_I32, I(0), 0, S(0));
  ASSERT_OK(op_eval(&o));
  expect(&o, 0, S(3), 1, F(0, 0, 0));
  /* An index outside the output is an error, not a write. */
  op_init(&o, GG_OP_SPARSE_TO_DENSE, 4, 1);
  tv_set(&o.v[0], GG_DT_I32, I(9), 2, S(1, 1));
  tv_set(&o.v[1], GG_DT_I32, I(5), 1, S(1));
  tv_set(&o.v[2], GG_DT_I32, I(7), 1, S(1));
  tv_set(&o.v[3], GG_DT_I32, I(0), 0, S(0));
  ASSERT_EQ(op_eval(&o), GG_ERANGE);
}

static void test_half_float(void) {
  ASSERT_NEAR(gg__half_to_float(0x3c00), 1.0, 0);
  ASSERT_NEAR(gg__half_to_float(0xc000), -2.0, 0);
  ASSERT_NEAR(gg__half_to_float(0x3555), 0.333251953125, 0);
  ASSERT_NEAR(gg__half_to_float(0x0001), 5.960464477539063e-08, 1e-20); /* smallest subnormal */
  ASSERT_NEAR(gg__half_to_float(0x7bff), 65504.0, 0);
  ASSERT_TRUE(isinf(gg__half_to_float(0x7c00)));
  ASSERT_TRUE(isnan(gg__half_to_float(0x7e00)));
}

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_ERROR);
  static const gg_test_case cases[] = {
      {"conv", test_conv},         {"depthwise", test_depthwise},   {"matmul", test_matmul},
      {"elementwise", test_elementwise}, {"reduce", test_reduce}, {"pool", test_pool},
      {"resize", test_resize},     {"shape_ops", test_shape_ops},   {"half_float", test_half_float},
      {0},
  };
  return gg_test_main(argc, argv, cases);
}
