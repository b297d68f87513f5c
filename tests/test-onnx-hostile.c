/* Hostile ONNX files: each must be refused with a clear error (a GG_E*
 * code and a message naming the thing), never a crash (this suite also runs
 * under ASan/UBSan). Truncated protobuf, dims past 2^40 elements, a cycle,
 * a short initializer, external data escaping the model's folder. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "test.h"

#ifdef GG_HAVE_ONNX
#include "onnx-build.h"

#include <sys/stat.h>
#include <unistd.h>

static char g_dir[64];

static const char *tmp_path(const char *name) {
  static char p[256];
  if (!g_dir[0]) {
    snprintf(g_dir, sizeof g_dir, "/tmp/gg-test-onnx-hostile-XXXXXX");
    if (!mkdtemp(g_dir)) abort();
  }
  snprintf(p, sizeof p, "%s/%s", g_dir, name);
  return p;
}

/* An opset-13 graph with one input x [1,4]; the caller adds the rest. */
static void x_model(ob_model *b) {
  ob_init(b, 13);
  int64_t xd[2] = {1, 4};
  ob_input(b, "x", 2, xd);
}

/* x [1,4] -> Add(x, w) -> y, with w the initializer the caller shapes. */
static void small_model(ob_model *b) {
  x_model(b);
  ob_node(b, "Add", "add", "x,w", "y");
  ob_output(b, "y");
}

/* small_model with a valid w: [1,4] = 1, 2, 3, 4. */
static void valid_model(ob_model *b) {
  small_model(b);
  int64_t wd[2] = {1, 4};
  float w[4] = {1, 2, 3, 4};
  ob_init_f(b, "w", 2, wd, w, 4);
}

static int load_model(ob_model *b, const char *name, size_t keep, char *err, size_t errlen) {
  const char *p = tmp_path(name);
  if (ob_write(b, p, keep)) return GG_EIO;
  gg_model *m = NULL;
  int rc = gg_model_load(p, &m, err, errlen);
  gg_model_free(m);
  return rc;
}

/* Writes b as `name`, loads it and frees b; the load must fail with
 * want_rc and a message containing want1 (and want2 unless NULL). */
static void expect_refused(ob_model *b, const char *name, int want_rc, const char *want1,
                           const char *want2) {
  char err[512] = "";
  int rc = load_model(b, name, 0, err, sizeof err);
  ob_free(b);
  if (rc != want_rc)
    GG_T_FAIL("%s: %s, want %s ('%s')", name, gg_err_name(rc), gg_err_name(want_rc), err);
  const char *missing = !strstr(err, want1) ? want1 : want2 && !strstr(err, want2) ? want2 : NULL;
  if (missing) GG_T_FAIL("%s: message '%s' lacks \"%s\"", name, err, missing);
}

static void test_valid_baseline(void) {
  ob_model b;
  valid_model(&b);
  char err[512] = "";
  int rc = load_model(&b, "ok.onnx", 0, err, sizeof err);
  ob_free(&b);
  if (rc) GG_T_FAIL("a valid model failed: %s", err);
}

static void test_truncated(void) {
  ob_model b;
  valid_model(&b);
  size_t n;
  uint8_t *full = ob_pack(&b, &n);
  free(full);
  int refused = 0;
  /* every prefix: a clear error each time (some prefixes happen to be
   * valid protobufs of a smaller model: they must still fail cleanly) */
  for (size_t keep = 1; keep < n; keep++) {
    char err[512] = "";
    int rc = load_model(&b, "trunc.onnx", keep, err, sizeof err);
    if (rc == 0) {
      ob_free(&b);
      GG_T_FAIL("a %zu-byte prefix of a %zu-byte model loaded", keep, n);
    }
    if (!err[0] || !strstr(err, "trunc.onnx")) {
      ob_free(&b);
      GG_T_FAIL("prefix %zu: error %s without a message naming the file: '%s'", keep,
                gg_err_name(rc), err);
    }
    refused += rc == GG_EPARSE;
  }
  ob_free(&b);
  ASSERT_GE(refused, 1);
  /* an empty file */
  FILE *f = fopen(tmp_path("empty.onnx"), "wb");
  if (f) fclose(f);
  gg_model *m = NULL;
  char err[256] = "";
  ASSERT_EQ(gg_model_load(tmp_path("empty.onnx"), &m, err, sizeof err), GG_EPARSE);
  ASSERT_TRUE(strstr(err, "empty") != NULL);
}

static void test_dims_past_2_40(void) {
  ob_model b;
  small_model(&b);
  int64_t wd[2] = {(int64_t)1 << 20, (int64_t)1 << 20};
  float w[4] = {0};
  ob_init_f(&b, "w", 2, wd, w, 4);
  expect_refused(&b, "huge.onnx", GG_ERANGE, "'w'", "1.1e+12");
  /* dims whose product overflows int64 */
  small_model(&b);
  int64_t wd2[4] = {(int64_t)1 << 40, (int64_t)1 << 40, (int64_t)1 << 40, 2};
  ob_init_f(&b, "w", 4, wd2, w, 4);
  expect_refused(&b, "huge2.onnx", GG_ERANGE, "'w'", NULL);
  /* an input declared past 2^31 elements: refused at session time */
  char err[512] = "";
  ob_init(&b, 13);
  int64_t xd[2] = {(int64_t)1 << 20, (int64_t)1 << 20};
  ob_input(&b, "x", 2, xd);
  ob_node(&b, "Relu", "r", "x", "y");
  ob_output(&b, "y");
  const char *p = tmp_path("bigin.onnx");
  ASSERT_EQ(ob_write(&b, p, 0), 0);
  ob_free(&b);
  gg_model *m = NULL;
  ASSERT_EQ(gg_model_load(p, &m, err, sizeof err), 0);
  gg_session *s = NULL;
  int rc = gg_session_new(m, NULL, 0, NULL, &s, err, sizeof err);
  gg_session_free(s);
  gg_model_free(m);
  ASSERT_EQ(rc, GG_ERANGE);
}

static void test_cycle(void) {
  ob_model b;
  x_model(&b);
  ob_node(&b, "Add", "first", "x,b", "a");
  ob_node(&b, "Relu", "second", "a", "b");
  ob_node(&b, "Relu", "out", "a", "y");
  ob_output(&b, "y");
  expect_refused(&b, "cycle.onnx", GG_EPARSE, "cycle", NULL);
  /* a node reading its own output */
  x_model(&b);
  ob_node(&b, "Add", "self", "x,z", "z");
  ob_output(&b, "z");
  expect_refused(&b, "self.onnx", GG_EPARSE, "self", NULL);
}

/* An Identity reading its own output (the layout pass must not see it). */
static void test_identity_self_loop(void) {
  ob_model b;
  x_model(&b);
  ob_node(&b, "Identity", "loop", "s", "s");
  ob_node(&b, "Mul", "mul", "s,x", "y");
  ob_output(&b, "y");
  expect_refused(&b, "selfid.onnx", GG_EPARSE, "cycle", NULL);
}

static void test_short_initializer(void) {
  ob_model b;
  small_model(&b);
  int64_t wd[2] = {1, 4};
  float w[3] = {1, 2, 3};
  ob_init_f(&b, "w", 2, wd, w, 3);
  expect_refused(&b, "short.onnx", GG_EPARSE, "'w'", "holds 3 values");
  /* raw_data shorter than the shape */
  small_model(&b);
  int64_t v[2] = {1, 2}, d1[1] = {4};
  ob_init_i64(&b, "w", 1, d1, v, 2);
  expect_refused(&b, "short_raw.onnx", GG_EPARSE, "'w'", NULL);
  /* an int64 outside int32 where it is not clamped (an Add operand) */
  small_model(&b);
  int64_t big[4] = {1, (int64_t)1 << 40, 3, 4};
  ob_init_i64(&b, "w", 1, d1, big, 4);
  expect_refused(&b, "big64.onnx", GG_ERANGE, "'w'", "int32");
}

/* uint64 / uint32 initializers are held as int32 like int64: a value past
 * int32 is an error naming the initializer, never a wrapped number. */
static void test_unsigned_out_of_range(void) {
  int64_t d1[1] = {4};
  static const uint64_t k_vals[] = {(uint64_t)1 << 31, UINT64_MAX, (uint64_t)1 << 40};
  for (int raw = 0; raw < 2; raw++)
    for (size_t i = 0; i < sizeof k_vals / sizeof k_vals[0]; i++) {
      ob_model b;
      small_model(&b);
      Onnx__TensorProto *t = ob_tensor(&b, "w", ONNX__TENSOR_PROTO__DATA_TYPE__UINT64, 1, d1);
      uint64_t v[4] = {1, k_vals[i], 3, 4};
      if (raw) {
        t->has_raw_data = 1, t->raw_data.len = sizeof v, t->raw_data.data = ob_alloc(&b, sizeof v);
        memcpy(t->raw_data.data, v, sizeof v);
      } else {
        t->n_uint64_data = 4, t->uint64_data = ob_alloc(&b, sizeof v);
        memcpy(t->uint64_data, v, sizeof v);
      }
      b.inits[b.g.n_initializer++] = t;
      expect_refused(&b, "big_u64.onnx", GG_ERANGE, "'w'",
                     "uint32/uint64 values outside the int32");
    }
  /* uint32 in raw_data: 4 bytes a value */
  ob_model b;
  small_model(&b);
  Onnx__TensorProto *t = ob_tensor(&b, "w", ONNX__TENSOR_PROTO__DATA_TYPE__UINT32, 1, d1);
  uint32_t v[4] = {1, 0x80000000u, 3, 4};
  t->has_raw_data = 1, t->raw_data.len = sizeof v, t->raw_data.data = ob_alloc(&b, sizeof v);
  memcpy(t->raw_data.data, v, sizeof v);
  b.inits[b.g.n_initializer++] = t;
  expect_refused(&b, "big_u32.onnx", GG_ERANGE, "'w'", "int32");
}

/* Einsum's general kernel is a naive loop: a form costing more than 2^32
 * multiply-adds is refused (GG_ETOO_LARGE, at the session) instead of
 * running for minutes; an output past 6 dims once the ellipsis is expanded
 * is refused at load, never truncated. */
static void test_einsum_cost(void) {
  ob_model b;
  ob_init(&b, 13);
  int64_t d1[1] = {(int64_t)1 << 17};
  ob_input(&b, "a", 1, d1);
  ob_input(&b, "c", 1, d1);
  Onnx__NodeProto *n = ob_node(&b, "Einsum", "outer_sum", "a,c", "y");
  ob_attr_s(&b, n, "equation", "i,j->");
  ob_output(&b, "y");
  const char *p = tmp_path("einsum-cost.onnx");
  ASSERT_EQ(ob_write(&b, p, 0), 0);
  ob_free(&b);
  gg_model *m = NULL;
  char err[512] = "";
  ASSERT_OK(gg_model_load(p, &m, err, sizeof err));
  gg_session *s = NULL;
  gg_session_opts o = {1, GG_ENGINE_NAIVE, 0};
  int rc = m ? gg_session_new_shapes(m, 0, NULL, NULL, &o, NULL, &s, err, sizeof err) : 0;
  gg_session_free(s);
  gg_model_free(m);
  ASSERT_EQ(rc, GG_ETOO_LARGE);
  ASSERT_CONTAINS(err, "'outer_sum'");
  ASSERT_CONTAINS(err, "2^32");
  ob_init(&b, 13);
  int64_t d6[6] = {2, 2, 2, 2, 2, 2}, d1b[1] = {2};
  ob_input(&b, "a", 6, d6);
  ob_input(&b, "c", 1, d1b);
  n = ob_node(&b, "Einsum", "wide", "a,c", "y");
  ob_attr_s(&b, n, "equation", "abcde...,f->abcdef...");
  ob_output(&b, "y");
  expect_refused(&b, "einsum-wide.onnx", GG_EUNSUPPORTED, "'wide' (Einsum)", "more than 6 dims");
}

/* STRING tensors are refused with the reason, wherever they appear: an
 * initializer, a graph input, a graph output, Cast's target. */
static void test_string_refused(void) {
  ob_model b;
  small_model(&b);
  int64_t d1[1] = {4};
  Onnx__TensorProto *t = ob_tensor(&b, "w", ONNX__TENSOR_PROTO__DATA_TYPE__STRING, 1, d1);
  b.inits[b.g.n_initializer++] = t;
  expect_refused(&b, "str_init.onnx", GG_EUNSUPPORTED, "'w' is STRING", "no string tensors");
  ob_init(&b, 13);
  ob_input_t(&b, "s", ONNX__TENSOR_PROTO__DATA_TYPE__STRING, 1, d1);
  ob_node(&b, "Identity", "id", "s", "y");
  ob_output(&b, "y");
  expect_refused(&b, "str_in.onnx", GG_EUNSUPPORTED, "input 's' is STRING", "no string tensors");
  x_model(&b);
  Onnx__NodeProto *n = ob_node(&b, "Cast", "to_str", "x", "y");
  ob_attr_i(&b, n, "to", ONNX__TENSOR_PROTO__DATA_TYPE__STRING);
  ob_output(&b, "y");
  expect_refused(&b, "str_cast.onnx", GG_EUNSUPPORTED, "'to_str' (Cast)", "no string tensors");
  x_model(&b);
  ob_node(&b, "Identity", "id", "x", "y");
  ob_output(&b, "y");
  b.outs[0]->type->tensor_type->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__STRING;
  expect_refused(&b, "str_out.onnx", GG_EUNSUPPORTED, "output 'y' is STRING", "no string tensors");
}

/* An initializer w whose data lives in an external file at `location`. */
static int external_model(const char *location, const char *name, char *err, size_t errlen) {
  ob_model b;
  small_model(&b);
  int64_t wd[2] = {1, 4};
  Onnx__TensorProto *t = ob_tensor(&b, "w", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, wd);
  t->has_data_location = 1;
  t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  t->n_external_data = 2;
  t->external_data = ob_alloc(&b, 2 * sizeof *t->external_data);
  const char *kv[2][2] = {{"location", location}, {"offset", "4"}};
  for (int i = 0; i < 2; i++) {
    Onnx__StringStringEntryProto *e = ob_alloc(&b, sizeof *e);
    onnx__string_string_entry_proto__init(e);
    e->key = ob_str(&b, kv[i][0]);
    e->value = ob_str(&b, kv[i][1]);
    t->external_data[i] = e;
  }
  b.inits[b.g.n_initializer++] = t;
  int rc = load_model(&b, name, 0, err, errlen);
  ob_free(&b);
  return rc;
}

static void test_external_data(void) {
  /* the data file: 4 bytes of offset, then 1, 2, 3, 4 */
  float data[5] = {0, 1, 2, 3, 4};
  tmp_path("x");
  char p[300], outside[300];
  snprintf(p, sizeof p, "%s/weights.bin", g_dir);
  FILE *f = fopen(p, "wb");
  ASSERT_TRUE(f != NULL);
  ASSERT_EQ(fwrite(data, 1, sizeof data, f), sizeof data);
  fclose(f);
  char err[512] = "";
  int rc = external_model("weights.bin", "ext.onnx", err, sizeof err);
  if (rc) GG_T_FAIL("valid external data: %s", err);
  /* ../ */
  rc = external_model("../weights.bin", "ext_dotdot.onnx", err, sizeof err);
  ASSERT_EQ(rc, GG_EPARSE);
  ASSERT_TRUE(strstr(err, "../weights.bin") && strstr(err, "model's folder"));
  /* absolute */
  rc = external_model(p, "ext_abs.onnx", err, sizeof err);
  ASSERT_EQ(rc, GG_EPARSE);
  ASSERT_TRUE(strstr(err, "must be relative") != NULL);
  /* a symlink inside the folder pointing outside it */
  snprintf(outside, sizeof outside, "%s-outside.bin", g_dir);
  f = fopen(outside, "wb");
  ASSERT_TRUE(f != NULL);
  ASSERT_EQ(fwrite(data, 1, sizeof data, f), sizeof data);
  fclose(f);
  char link[300];
  snprintf(link, sizeof link, "%s/link.bin", g_dir);
  ASSERT_EQ(symlink(outside, link), 0);
  rc = external_model("link.bin", "ext_link.onnx", err, sizeof err);
  unlink(outside);
  ASSERT_EQ(rc, GG_EPARSE);
  ASSERT_TRUE(strstr(err, "outside the model's folder") != NULL);
  /* a missing file, and a file too short for offset + length */
  rc = external_model("missing.bin", "ext_missing.onnx", err, sizeof err);
  ASSERT_EQ(rc, GG_EIO);
  ASSERT_TRUE(strstr(err, "missing.bin") != NULL);
  f = fopen(p, "wb");
  ASSERT_TRUE(f != NULL);
  ASSERT_EQ(fwrite(data, 1, 12, f), 12);
  fclose(f);
  rc = external_model("weights.bin", "ext_short.onnx", err, sizeof err);
  ASSERT_EQ(rc, GG_EPARSE);
  ASSERT_TRUE(strstr(err, "holds 12 bytes") != NULL);
}

/* Garbage and bit flips of a real-shaped model: errors, never crashes. */
static void test_bit_flips(void) {
  ob_model b;
  valid_model(&b);
  size_t n;
  uint8_t *buf = ob_pack(&b, &n);
  ob_free(&b);
  uint32_t seed = 1;
  int loaded = 0;
  for (int it = 0; it < 300; it++) {
    uint8_t *c = malloc(n);
    memcpy(c, buf, n);
    for (int k = 0; k < 3; k++) {
      seed = seed * 1664525u + 1013904223u;
      c[(seed >> 8) % n] ^= (uint8_t)(1u << ((seed >> 4) & 7));
    }
    gg_graph *g = NULL;
    char err[512] = "";
    int rc = gg__onnx_import(c, n, "flip.onnx", NULL, &g, err, sizeof err);
    free(c);
    if (rc == 0) {
      loaded++;
      gg__graph_free(g);
    } else if (!err[0]) {
      free(buf);
      GG_T_FAIL("iteration %d: %s without a message", it, gg_err_name(rc));
    }
  }
  free(buf);
  fprintf(stderr, "  300 mutants: %d still loaded, the rest refused with a message\n", loaded);
}

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_OFF);
  static const gg_test_case cases[] = {
      {"valid_baseline", test_valid_baseline},
      {"truncated", test_truncated},
      {"dims_past_2_40", test_dims_past_2_40},
      {"cycle", test_cycle},
      {"identity_self_loop", test_identity_self_loop},
      {"short_initializer", test_short_initializer},
      {"unsigned_out_of_range", test_unsigned_out_of_range},
      {"string_refused", test_string_refused},
      {"einsum_cost", test_einsum_cost},
      {"external_data", test_external_data},
      {"bit_flips", test_bit_flips},
      {0},
  };
  int rc = gg_test_main(argc, argv, cases);
  if (g_dir[0]) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd)) rc = rc ? rc : 0;
  }
  return rc;
}

#else
int main(void) {
  printf("SKIP: built without ONNX import (libprotobuf-c-dev, protobuf-c-compiler, libonnx-dev)\n");
  return 0;
}
#endif
