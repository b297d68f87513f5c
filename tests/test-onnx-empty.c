/* Zero-size tensors in ONNX models: an input with a 0 dim ([0, 3] is a
 * batch of no rows, a detector that found nothing) must flow through the
 * graph on every backend (naive, XNNPACK, sim, OpenCL when it opens) and
 * give the right shapes, and the right values where an output is not empty
 * (Concat with a non-empty part, a sum over an empty axis is 0, a max is
 * -inf, a mean NaN, Pad fills, MatMul over an empty inner dim is 0). What
 * has no defined answer (a 2-D pool over an empty image) is a clear error.
 * This suite also runs under ASan/UBSan. */
#include "gpuguard/device.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/memory.h"
#include "test.h"

#ifdef GG_HAVE_ONNX
#include "onnx-build.h"
#include "test-backends.h"

#include <math.h>
#include <unistd.h>

#define I64 ONNX__TENSOR_PROTO__DATA_TYPE__INT64


static gg_model *load_free(ob_model *b, const char *name) {
  const char *p = ob_tmp_path("gg-onnx-empty", name);
  gg_model *m = NULL;
  char err[512] = "";
  if (ob_write(b, p, 0) || gg_model_load(p, &m, err, sizeof err))
    fprintf(stderr, "  %s: %s\n", name, err);
  ob_free(b);
  unlink(p);
  return m;
}

/* One case: model m with n_in float inputs of shapes sh[i] (nd[i] dims),
 * filled with 1, 2, 3, ...; output 0 must have shape want_sh (want_nd
 * dims) and, when want is not NULL, those values (NaN matches NaN, inf
 * matches inf). want_err: the session or the run must fail instead, with
 * that code. Runs on every backend that opened; 0 or -1 after printing. */
static int check(gg_model *m, const char *what, int n_in, const int64_t *const *sh, const int *nd,
                 const int64_t *want_sh, int want_nd, const float *want, int want_err) {
  int bad = 0;
  for (int b = 0; b < N_BE && !bad; b++) {
    if (g_be[b].spec && !g_be[b].pool) continue;
    gg_session_opts o = {1, g_be[b].be, 0};
    gg_session *s = NULL;
    char err[512] = "";
    int rc = gg_session_new_shapes(m, n_in, sh, nd, &o, g_be[b].pool, &s, err, sizeof err);
    for (int i = 0; !rc && i < n_in; i++) {
      gg_tensor_info ti;
      float *x = gg_session_input(s, i, &ti);
      int64_t ne = 1;
      for (int d = 0; d < ti.ndim; d++)
        ne *= ti.shape[d];
      for (int64_t k = 0; k < ne; k++)
        x[k] = (float)(k + 1);
    }
    if (!rc) rc = gg_session_run(s, err, sizeof err);
    if (want_err) {
      if (rc != want_err || !err[0]) {
        fprintf(stderr, "  %s on %s: rc %s, expected %s (%s)\n", what, g_be[b].name,
                gg_err_name(rc), gg_err_name(want_err), err);
        bad = 1;
      }
      gg_session_free(s);
      continue;
    }
    if (rc) {
      fprintf(stderr, "  %s on %s: %s\n", what, g_be[b].name, err);
      gg_session_free(s);
      bad = 1;
      break;
    }
    gg_engine_mem mem; /* the plan holds to the byte with empty tensors too */
    gg_session_memory(s, &mem);
    for (int d = 0; d < mem.n_devices && !bad; d++)
      if (mem.dev[d].predicted != mem.dev[d].measured) {
        fprintf(stderr, "  %s on %s: memory on %s predicted %llu, measured %llu\n", what,
                g_be[b].name, mem.dev[d].device, (unsigned long long)mem.dev[d].predicted,
                (unsigned long long)mem.dev[d].measured);
        bad = 1;
      }
    gg_tensor_info ti;
    const float *y = gg_session_output(s, 0, &ti);
    int64_t ne = gg_session_output_elems(s, 0);
    int same = ti.ndim == want_nd;
    for (int d = 0; same && d < want_nd; d++)
      same = ti.shape[d] == want_sh[d];
    if (!same) {
      fprintf(stderr, "  %s on %s: output rank %d, dim 0 %lld: not the expected shape\n", what,
              g_be[b].name, ti.ndim, ti.ndim ? (long long)ti.shape[0] : -1LL);
      bad = 1;
    }
    for (int64_t k = 0; !bad && want && k < ne; k++) {
      int ok = isnan(want[k])   ? isnan(y[k])
               : isinf(want[k]) ? y[k] == want[k]
                                : gg_t_near(y[k], want[k], 1e-5);
      if (!ok) {
        fprintf(stderr, "  %s on %s: y[%lld] = %g, expected %g\n", what, g_be[b].name, (long long)k,
                y[k], want[k]);
        bad = 1;
      }
    }
    gg_session_free(s);
  }
  return bad ? -1 : 0;
}

/* x [N, 3] -> Relu -> Add(k [3]) -> Softmax -> Transpose: N = 0 gives
 * [3, 0]; N = 2 still works (the same model). */
static void test_elementwise_chain(void) {
  ob_model b;
  ob_init(&b, 13);
  int64_t d[2] = {-1, 3}, kd[1] = {3};
  float k[3] = {1, 2, 3};
  ob_input(&b, "x", 2, d);
  ob_init_f(&b, "k", 1, kd, k, 3);
  ob_node(&b, "Relu", "r", "x", "r");
  ob_node(&b, "Add", "a", "r,k", "a");
  ob_node(&b, "Softmax", "s", "a", "s");
  ob_node(&b, "Transpose", "t", "s", "y");
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "chain.onnx");
  if (!m) GG_T_FAIL("load");
  int64_t s0[2] = {0, 3}, s2[2] = {2, 3}, w0[2] = {3, 0}, w2[2] = {3, 2};
  const int64_t *sh0[1] = {s0}, *sh2[1] = {s2};
  int nd[1] = {2};
  int bad = check(m, "chain N=0", 1, sh0, nd, w0, 2, NULL, 0);
  bad |= check(m, "chain N=2", 1, sh2, nd, w2, 2, NULL, 0);
  gg_model_free(m);
  ASSERT_FALSE(bad);
}

/* Concat of an empty part and a constant: the constant. */
static void test_concat(void) {
  ob_model b;
  ob_init(&b, 13);
  int64_t d[2] = {-1, 3}, cd[2] = {2, 3};
  float c[6] = {6, 5, 4, 3, 2, 1};
  ob_input(&b, "x", 2, d);
  ob_init_f(&b, "c", 2, cd, c, 6);
  Onnx__NodeProto *n = ob_node(&b, "Concat", "cat", "x,c", "y");
  ob_attr_i(&b, n, "axis", 0);
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "concat.onnx");
  if (!m) GG_T_FAIL("load");
  int64_t s0[2] = {0, 3};
  const int64_t *sh[1] = {s0};
  int nd[1] = {2};
  int bad = check(m, "concat", 1, sh, nd, cd, 2, c, 0);
  gg_model_free(m);
  ASSERT_FALSE(bad);
}

/* An empty initializer (a [0, 3] constant) concatenated to x: y = x, and
 * the constant's bytes counted as allocated. */
static void test_empty_initializer(void) {
  ob_model b;
  ob_init(&b, 13);
  int64_t d[2] = {2, 3}, ed[2] = {0, 3};
  ob_input(&b, "x", 2, d);
  ob_init_f(&b, "e", 2, ed, NULL, 0);
  Onnx__NodeProto *n = ob_node(&b, "Concat", "cat", "e,x", "y");
  ob_attr_i(&b, n, "axis", 0);
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "empty-init.onnx");
  if (!m) GG_T_FAIL("load");
  const int64_t *sh[1] = {d};
  int nd[1] = {2};
  float want[6] = {1, 2, 3, 4, 5, 6};
  int bad = check(m, "empty initializer", 1, sh, nd, d, 2, want, 0);
  gg_model_free(m);
  ASSERT_FALSE(bad);
}

/* A Constant node's value_floats added to x: its bytes counted as allocated
 * (they were 4 bytes short once). */
static void test_constant_floats(void) {
  ob_model b;
  ob_init(&b, 13);
  int64_t d[1] = {3};
  float k[3] = {10, 20, 30};
  ob_input(&b, "x", 1, d);
  Onnx__NodeProto *n = ob_node(&b, "Constant", "k", "", "k");
  Onnx__AttributeProto *a =
      ob_attr(&b, n, "value_floats", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
  a->n_floats = 3;
  a->floats = ob_alloc(&b, sizeof k);
  memcpy(a->floats, k, sizeof k);
  ob_node(&b, "Add", "add", "x,k", "y");
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "constant-floats.onnx");
  if (!m) GG_T_FAIL("load");
  const int64_t *sh[1] = {d};
  int nd[1] = {1};
  float want[3] = {11, 22, 33};
  int bad = check(m, "constant floats", 1, sh, nd, d, 1, want, 0);
  gg_model_free(m);
  ASSERT_FALSE(bad);
}

/* Reductions over an empty axis: [2, 0] -> [2]. */
static void reduce_case(const char *op, float want, int *bad) {
  ob_model b;
  ob_init(&b, 18);
  int64_t d[2] = {2, -1}, ad[1] = {1}, ax[1] = {1};
  ob_input(&b, "x", 2, d);
  ob_init_i64(&b, "axes", 1, ad, ax, 1);
  Onnx__NodeProto *n = ob_node(&b, op, "r", "x,axes", "y");
  ob_attr_i(&b, n, "keepdims", 0);
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "reduce.onnx");
  if (!m) {
    *bad = 1;
    return;
  }
  int64_t s0[2] = {2, 0}, w[1] = {2};
  const int64_t *sh[1] = {s0};
  int nd[1] = {2};
  float wv[2] = {want, want};
  *bad |= check(m, op, 1, sh, nd, w, 1, wv, 0);
  gg_model_free(m);
}

static void test_reduce_empty_axis(void) {
  int bad = 0;
  reduce_case("ReduceSum", 0.0f, &bad);
  reduce_case("ReduceMax", -INFINITY, &bad);
  reduce_case("ReduceMin", INFINITY, &bad);
  reduce_case("ReduceL2", 0.0f, &bad);
  reduce_case("ReduceMean", NAN, &bad);
  ASSERT_FALSE(bad);
}

/* MatMul [2, K] x [K, 3] with K = 0: zeros; with M = 0: [0, 3]. */
static void test_matmul(void) {
  ob_model b;
  ob_init(&b, 13);
  int64_t da[2] = {-1, -1}, db[2] = {-1, 3};
  ob_input(&b, "a", 2, da);
  ob_input(&b, "b", 2, db);
  ob_node(&b, "MatMul", "mm", "a,b", "y");
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "matmul.onnx");
  if (!m) GG_T_FAIL("load");
  int64_t a0[2] = {2, 0}, b0[2] = {0, 3}, w0[2] = {2, 3};
  const int64_t *sh[2] = {a0, b0};
  int nd[2] = {2, 2};
  float zeros[6] = {0};
  int bad = check(m, "matmul K=0", 2, sh, nd, w0, 2, zeros, 0);
  int64_t a1[2] = {0, 4}, b1[2] = {4, 3}, w1[2] = {0, 3};
  const int64_t *sh1[2] = {a1, b1};
  bad |= check(m, "matmul M=0", 2, sh1, nd, w1, 2, NULL, 0);
  gg_model_free(m);
  ASSERT_FALSE(bad);
}

/* Pad [0, 3] by one row above and below with 7: [2, 3] of 7. */
static void test_pad(void) {
  ob_model b;
  ob_init(&b, 13);
  int64_t d[2] = {-1, 3}, pd[1] = {4}, cd[1] = {1};
  int64_t pads[4] = {1, 0, 1, 0};
  float seven = 7;
  ob_input(&b, "x", 2, d);
  ob_init_i64(&b, "pads", 1, pd, pads, 4);
  ob_init_f(&b, "v", 0, cd, &seven, 1);
  ob_node(&b, "Pad", "p", "x,pads,v", "y");
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "pad.onnx");
  if (!m) GG_T_FAIL("load");
  int64_t s0[2] = {0, 3}, w[2] = {2, 3};
  const int64_t *sh[1] = {s0};
  int nd[1] = {2};
  float sevens[6] = {7, 7, 7, 7, 7, 7};
  int bad = check(m, "pad", 1, sh, nd, w, 2, sevens, 0);
  gg_model_free(m);
  ASSERT_FALSE(bad);
}

/* A conv net on a batch of 0 images: Conv -> Relu -> GlobalAveragePool ->
 * Flatten -> Gemm gives [0, 2]; the same model on 1 image still runs. */
static void test_conv_batch0(void) {
  ob_model b;
  ob_init(&b, 13);
  int64_t d[4] = {-1, 2, 5, 5}, wd[4] = {4, 2, 3, 3}, gd[2] = {2, 4};
  float w[72], g[8];
  for (int i = 0; i < 72; i++)
    w[i] = (float)((i * 7) % 11) / 10.0f - 0.5f;
  for (int i = 0; i < 8; i++)
    g[i] = (float)i / 8.0f;
  ob_input(&b, "x", 4, d);
  ob_init_f(&b, "w", 4, wd, w, 72);
  ob_init_f(&b, "g", 2, gd, g, 8);
  Onnx__NodeProto *c = ob_node(&b, "Conv", "conv", "x,w", "c");
  int64_t pads[4] = {1, 1, 1, 1};
  ob_attr_ints(&b, c, "pads", 4, pads);
  ob_node(&b, "Relu", "r", "c", "r");
  ob_node(&b, "GlobalAveragePool", "gap", "r", "p");
  ob_node(&b, "Flatten", "f", "p", "f");
  Onnx__NodeProto *gm = ob_node(&b, "Gemm", "gemm", "f,g", "y");
  ob_attr_i(&b, gm, "transB", 1);
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "convnet.onnx");
  if (!m) GG_T_FAIL("load");
  int64_t s0[4] = {0, 2, 5, 5}, s1[4] = {1, 2, 5, 5}, w0[2] = {0, 2}, w1[2] = {1, 2};
  const int64_t *sh0[1] = {s0}, *sh1[1] = {s1};
  int nd[1] = {4};
  int bad = check(m, "convnet N=0", 1, sh0, nd, w0, 2, NULL, 0);
  bad |= check(m, "convnet N=1", 1, sh1, nd, w1, 2, NULL, 0);
  gg_model_free(m);
  ASSERT_FALSE(bad);
}

/* Shape and Size of an empty input are ordinary values: Size [0, 3] = 0,
 * computed into an output through Cast. */
static void test_size(void) {
  ob_model b;
  ob_init(&b, 13);
  int64_t d[2] = {-1, 3};
  ob_input(&b, "x", 2, d);
  ob_node(&b, "Size", "sz", "x", "n");
  Onnx__NodeProto *c = ob_node(&b, "Cast", "c", "n", "y");
  ob_attr_i(&b, c, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "size.onnx");
  if (!m) GG_T_FAIL("load");
  int64_t s0[2] = {0, 3};
  const int64_t *sh[1] = {s0};
  int nd[1] = {2};
  float zero = 0;
  int bad = check(m, "size", 1, sh, nd, NULL, 0, &zero, 0);
  gg_model_free(m);
  ASSERT_FALSE(bad);
}

/* A 2x2 MaxPool over an image of height 0 has no output size: refused when
 * the session is made, naming the node. */
static void test_pool_empty_image(void) {
  ob_model b;
  ob_init(&b, 13);
  int64_t d[4] = {1, 1, -1, 4};
  ob_input(&b, "x", 4, d);
  Onnx__NodeProto *p = ob_node(&b, "MaxPool", "pool", "x", "y");
  int64_t k[2] = {2, 2};
  ob_attr_ints(&b, p, "kernel_shape", 2, k);
  ob_output(&b, "y");
  gg_model *m = load_free(&b, "pool.onnx");
  if (!m) GG_T_FAIL("load");
  int64_t s0[4] = {1, 1, 0, 4};
  const int64_t *sh[1] = {s0};
  int nd[1] = {4};
  int bad = check(m, "pool", 1, sh, nd, NULL, 0, NULL, GG_EPARSE);
  gg_model_free(m);
  ASSERT_FALSE(bad);
}

int main(int argc, char **argv) {
  open_devices();
  static const gg_test_case cases[] = {
      {"elementwise_chain", test_elementwise_chain},
      {"concat", test_concat},
      {"empty_initializer", test_empty_initializer},
      {"constant_floats", test_constant_floats},
      {"reduce_empty_axis", test_reduce_empty_axis},
      {"matmul", test_matmul},
      {"pad", test_pad},
      {"conv_batch0", test_conv_batch0},
      {"size", test_size},
      {"pool_empty_image", test_pool_empty_image},
      {0},
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
