/* Engine tests: importer on the real models and on hostile inputs, memory
 * planner properties, planned == measured, reuse vs no-reuse equality,
 * XNNPACK vs naive on whole models, and end-to-end gpuguard infer. */
#include "engine/engine-impl.h"
#include "engine/graph.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "test.h"

#include <jansson.h>

#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *k_models[] = {"blazeface", "mobilefacenet", "nanodet", "faceres"};

static int model_path(const char *name, char *out, size_t n) {
  return gg_model_resolve(name, out, n) == 0;
}

static char g_tmp[256];

static const char *tmpdir(void) {
  if (!g_tmp[0]) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/gg-test-engine-XXXXXX");
    if (!mkdtemp(g_tmp)) abort();
  }
  return g_tmp;
}

static int write_bytes(const char *path, const void *d, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = n ? fwrite(d, 1, n, f) : 0;
  fclose(f);
  return w == n ? 0 : -1;
}

static char *read_text(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  if (b) b[n] = 0;
  if (len) *len = (size_t)n;
  fclose(f);
  return b;
}

/* ------------------------------------------------------------ real models */

static void test_import_real_models(void) {
  int found = 0;
  for (size_t i = 0; i < 4; i++) {
    char p[1024];
    if (!model_path(k_models[i], p, sizeof p)) continue;
    found++;
    /* Count nodes per the file itself, independently of the importer. */
    json_error_t je;
    json_t *root = json_load_file(p, 0, &je);
    ASSERT_TRUE(root != NULL);
    json_t *nodes = json_object_get(json_object_get(root, "modelTopology"), "node");
    size_t n_json = json_array_size(nodes), n_const = 0, n_ph = 0;
    for (size_t k = 0; k < n_json; k++) {
      const char *op = json_string_value(json_object_get(json_array_get(nodes, k), "op"));
      n_const += !strcmp(op, "Const");
      n_ph += !strcmp(op, "Placeholder");
    }
    json_t *sig = json_object_get(json_object_get(root, "signature"), "outputs");
    size_t n_sig = json_object_size(sig);
    gg_model *m = NULL;
    char err[512];
    ASSERT_OK(gg_model_load(p, &m, err, sizeof err));
    const gg_graph *g = gg__model_graph(m);
    ASSERT_EQ(g->n_nodes, n_json);
    ASSERT_EQ(gg_model_n_inputs(m), n_ph);
    if (n_sig) ASSERT_EQ(gg_model_n_outputs(m), n_sig);
    ASSERT_GE(gg_model_n_ops(m), 1);
    ASSERT_LE(gg_model_n_ops(m), (long long)(n_json - n_const - n_ph));
    ASSERT_GE(gg_model_weights_bytes(m), 1000);
    /* Every executable node has a resolved op and only live inputs. */
    for (int k = 0; k < g->n_order; k++) {
      const gg_node *nd = &g->nodes[g->order[k]];
      ASSERT_FALSE(nd->dead);
      ASSERT_TRUE(nd->op != GG_OP_CONST && nd->op < GG_OP_COUNT);
    }
    /* Output shapes after inference match the signature where there is one. */
    gg_session *s = NULL;
    gg_session_opts o = {1, GG_ENGINE_NAIVE, 0};
    ASSERT_OK(gg_session_new(m, NULL, 0, &o, &s, err, sizeof err));
    size_t matched = 0; /* outputs found in the signature: all, when there is one */
    for (int k = 0; k < gg_model_n_outputs(m); k++) {
      gg_tensor_info oi;
      ASSERT_TRUE(gg_session_output(s, k, &oi) != NULL);
      json_t *e = json_object_get(sig, oi.name);
      if (!e) continue;
      matched++;
      json_t *dims = json_object_get(json_object_get(e, "tensorShape"), "dim");
      ASSERT_EQ(json_array_size(dims), oi.ndim);
      for (int d = 0; d < oi.ndim; d++) {
        json_t *sz = json_object_get(json_array_get(dims, (size_t)d), "size");
        ASSERT_EQ(atoll(json_string_value(sz)), oi.shape[d]);
      }
    }
    if (n_sig) ASSERT_EQ(matched, n_sig);
    fprintf(stderr, "  %s: %zu nodes in the file, %d ops per run after folding and fusion\n",
            k_models[i], n_json, gg_model_n_ops(m));
    gg_session_free(s);
    gg_model_free(m);
    json_decref(root);
  }
  if (!found) SKIP("no models under ~/.cache/gpuguard (run scripts/fetch-models.sh)");
}

/* Blazeface / mobilefacenet output shapes are not in a signature: check
 * the known architecture outputs. */
static void test_known_output_shapes(void) {
  char p[1024];
  if (!model_path("blazeface", p, sizeof p)) SKIP("blazeface not fetched");
  gg_model *m;
  gg_session *s;
  ASSERT_OK(gg_model_load(p, &m, NULL, 0));
  ASSERT_OK(gg_session_new(m, NULL, 0, NULL, &s, NULL, 0));
  static const int64_t want[4][3] = {{1, 512, 1}, {1, 384, 1}, {1, 512, 16}, {1, 384, 16}};
  ASSERT_EQ(gg_model_n_outputs(m), 4);
  for (int k = 0; k < 4; k++) {
    gg_tensor_info oi;
    gg_session_output(s, k, &oi);
    ASSERT_EQ(oi.ndim, 3);
    for (int d = 0; d < 3; d++)
      ASSERT_EQ(oi.shape[d], want[k][d]);
  }
  gg_session_free(s);
  gg_model_free(m);
}

/* ------------------------------------------------------------ synthetic */

/* A small valid model: conv (bias+relu) -> reshape -> identity. Weight
 * bytes: w [3,3,2,3] f32 (216 B), b [3] f32 (12 B), shape [2] i32 (8 B). */
static const char *k_tiny =
    "{\"format\":\"graph-model\",\"modelTopology\":{\"node\":["
    "{\"name\":\"x\",\"op\":\"Placeholder\",\"attr\":{\"shape\":{\"shape\":{\"dim\":[{\"size\":"
    "\"1\"},{\"size\":\"4\"},{\"size\":\"4\"},{\"size\":\"2\"}]}},\"dtype\":{\"type\":\"DT_FLOAT\"}"
    "}},"
    "{\"name\":\"w\",\"op\":\"Const\"},{\"name\":\"b\",\"op\":\"Const\"},{\"name\":\"shape\","
    "\"op\":\"Const\"},"
    "{\"name\":\"conv\",\"op\":\"_FusedConv2D\",\"input\":[\"x\",\"w\",\"b\"],\"attr\":{"
    "\"padding\":{\"s\":\"U0FNRQ==\"},\"strides\":{\"list\":{\"i\":[\"1\",\"1\",\"1\",\"1\"]}},"
    "\"data_format\":{\"s\":\"TkhXQw==\"},\"num_args\":{\"i\":\"1\"},"
    "\"fused_ops\":{\"list\":{\"s\":[\"Qmlhc0FkZA==\",\"UmVsdQ==\"]}}}},"
    "{\"name\":\"flat\",\"op\":\"Reshape\",\"input\":[\"conv\",\"shape\"]},"
    "{\"name\":\"out\",\"op\":\"OPNAME\",\"input\":[\"INPUTREF\"]}"
    "]},\"weightsManifest\":[{\"paths\":[\"tiny.bin\"],\"weights\":["
    "{\"name\":\"w\",\"shape\":[3,3,2,WDIM],\"dtype\":\"WDTYPE\"},"
    "{\"name\":\"b\",\"shape\":[3],\"dtype\":\"float32\"},"
    "{\"name\":\"shape\",\"shape\":[2],\"dtype\":\"int32\"}]}]}";

/* Replaces every occurrence of `a` by `b` (caller frees). */
static char *subst(const char *s, const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b), n = 0;
  for (const char *p = strstr(s, a); p; p = strstr(p + la, a))
    n++;
  char *o = malloc(strlen(s) + n * (lb + 1) + 1), *w = o;
  for (const char *p = s;;) {
    const char *q = strstr(p, a);
    if (!q) {
      strcpy(w, p);
      break;
    }
    memcpy(w, p, (size_t)(q - p));
    w += q - p;
    memcpy(w, b, lb);
    w += lb;
    p = q + la;
  }
  return o;
}

static char *tiny_json(const char *op, const char *inref, const char *wdim, const char *wdtype) {
  char *a = subst(k_tiny, "OPNAME", op), *b = subst(a, "INPUTREF", inref);
  char *c = subst(b, "WDIM", wdim), *d = subst(c, "WDTYPE", wdtype);
  free(a), free(b), free(c);
  return d;
}

static uint8_t g_bin[256];
static size_t g_bin_len;

static void tiny_bin(void) {
  float w[54], b[3] = {0.5f, -1.0f, 0.25f};
  for (int i = 0; i < 54; i++)
    w[i] = (float)((i % 7) - 3) / 4.0f;
  int32_t shape[2] = {1, -1};
  memcpy(g_bin, w, sizeof w);
  memcpy(g_bin + sizeof w, b, sizeof b);
  memcpy(g_bin + sizeof w + sizeof b, shape, sizeof shape);
  g_bin_len = sizeof w + sizeof b + sizeof shape;
}

/* Writes dir/name.json and dir/tiny.bin (first bin_len bytes) and loads. */
static int load_variant(const char *json, size_t bin_len, int write_bin, char *err, size_t errlen,
                        gg_model **out) {
  char jp[512], bp[512];
  snprintf(jp, sizeof jp, "%s/model.json", tmpdir());
  snprintf(bp, sizeof bp, "%s/tiny.bin", tmpdir());
  unlink(bp);
  if (write_bytes(jp, json, strlen(json))) return -12345;
  if (write_bin && write_bytes(bp, g_bin, bin_len)) return -12345;
  return gg_model_load(jp, out, err, errlen);
}

static void test_tiny_model_runs(void) {
  tiny_bin();
  char *j = tiny_json("Identity", "flat", "3", "float32");
  gg_model *m = NULL;
  char err[512] = "";
  int rc = load_variant(j, g_bin_len, 1, err, sizeof err, &m);
  free(j);
  if (rc) GG_T_FAIL("load: %s %s", gg_err_name(rc), err);
  gg_session *s = NULL;
  gg_session_opts o = {1, GG_ENGINE_NAIVE, 0};
  ASSERT_OK(gg_session_new(m, NULL, 0, &o, &s, err, sizeof err));
  float *in = gg_session_input(s, 0, NULL);
  for (int i = 0; i < 32; i++)
    in[i] = (float)(i % 5) - 2.0f;
  ASSERT_OK(gg_session_run(s, err, sizeof err));
  gg_tensor_info oi;
  const float *y = gg_session_output(s, 0, &oi);
  ASSERT_EQ(oi.ndim, 2);
  ASSERT_EQ(oi.shape[1], 48);
  /* Recompute the conv here: SAME 3x3, bias, relu, NHWC/HWIO. */
  const float *w = (const float *)g_bin, *b = (const float *)(g_bin + 216);
  for (int oy = 0; oy < 4; oy++)
    for (int ox = 0; ox < 4; ox++)
      for (int co = 0; co < 3; co++) {
        double acc = b[co];
        for (int ky = 0; ky < 3; ky++)
          for (int kx = 0; kx < 3; kx++) {
            int iy = oy + ky - 1, ix = ox + kx - 1;
            if (iy < 0 || iy > 3 || ix < 0 || ix > 3) continue;
            for (int ci = 0; ci < 2; ci++)
              acc += in[(iy * 4 + ix) * 2 + ci] * w[((ky * 3 + kx) * 2 + ci) * 3 + co];
          }
        if (acc < 0) acc = 0;
        ASSERT_NEAR(y[(oy * 4 + ox) * 3 + co], acc, 1e-5);
      }
  gg_session_free(s);
  gg_model_free(m);
}

typedef struct hostile {
  const char *what;
  const char *op, *inref, *wdim, *wdtype;
  long bin_len; /* -1: full; -2: no file */
  int want;
  const char *needle1, *needle2;
} hostile;

static void test_hostile_models(void) {
  tiny_bin();
  const hostile cases[] = {
      {"truncated .bin", "Identity", "flat", "3", "float32", 100, GG_EPARSE, "model.json", "'w'"},
      {"longer .bin", "Identity", "flat", "3", "float32", -3, GG_EPARSE, "model.json",
       "mismatched"},
      {"missing .bin", "Identity", "flat", "3", "float32", -2, GG_EIO, "tiny.bin", "model.json"},
      {"wrong dtype", "Identity", "flat", "3", "float64", -1, GG_EUNSUPPORTED, "'w'", "float64"},
      {"shape overflow", "Identity", "flat", "2147483647,2147483647", "float32", -1, GG_ERANGE,
       "'w'", "too large"},
      {"negative dim", "Identity", "flat", "-3", "float32", -1, GG_EPARSE, "'w'", "shape"},
      {"byte count vs shape", "Identity", "flat", "4", "float32", -1, GG_EPARSE, "'w'", "bytes"},
      {"unknown op", "FancyOp", "flat", "3", "float32", -1, GG_EUNSUPPORTED, "'out'", "FancyOp"},
      {"unresolved input", "Identity", "nosuchnode", "3", "float32", -1, GG_EPARSE, "'out'",
       "nosuchnode"},
      {"bad output index", "Identity", "flat:3", "3", "float32", -1, GG_EPARSE, "'out'", "flat:3"},
      {"cycle", "Identity", "out", "3", "float32", -1, GG_EPARSE, "cycle", "'out'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const hostile *c = &cases[i];
    char *j = tiny_json(c->op, c->inref, c->wdim, c->wdtype);
    gg_model *m = NULL;
    char err[512] = "";
    size_t bl = c->bin_len >= 0 ? (size_t)c->bin_len : g_bin_len;
    if (c->bin_len == -3) {
      g_bin[g_bin_len] = 7;
      bl = g_bin_len + 4;
    }
    int rc = load_variant(j, bl, c->bin_len != -2, err, sizeof err, &m);
    free(j);
    fprintf(stderr, "  %-20s -> %s: %s\n", c->what, gg_err_name(rc), err);
    if (rc != c->want)
      GG_T_FAIL("%s: got %s, want %s (%s)", c->what, gg_err_name(rc), gg_err_name(c->want), err);
    ASSERT_TRUE(m == NULL);
    ASSERT_CONTAINS(err, c->needle1);
    ASSERT_CONTAINS(err, c->needle2);
  }
}

static int mem_reader(void *user, const char *path, uint8_t **data, size_t *len, char *err,
                      size_t errlen) {
  (void)user, (void)path, (void)err, (void)errlen;
  *data = malloc(g_bin_len + 1);
  memcpy(*data, g_bin, g_bin_len);
  *len = g_bin_len;
  return 0;
}

static void test_hostile_json(void) {
  gg_graph *g = NULL;
  char err[512];
  /* Not JSON. */
  const char *junk = "this is not json {";
  ASSERT_EQ(gg__tfjs_import(junk, strlen(junk), "junk.json", mem_reader, NULL, &g, err, sizeof err),
            GG_EPARSE);
  ASSERT_CONTAINS(err, "junk.json");
  ASSERT_TRUE(g == NULL);
  /* Valid JSON, wrong structure. */
  const char *arr = "[1,2,3]";
  ASSERT_EQ(gg__tfjs_import(arr, strlen(arr), "arr.json", mem_reader, NULL, &g, err, sizeof err),
            GG_EPARSE);
  ASSERT_CONTAINS(err, "modelTopology");
  /* Deep nesting: 200000 levels. */
  size_t depth = 200000;
  char *deep = malloc(2 * depth + 1);
  memset(deep, '[', depth);
  memset(deep + depth, ']', depth);
  deep[2 * depth] = 0;
  ASSERT_EQ(gg__tfjs_import(deep, 2 * depth, "deep.json", mem_reader, NULL, &g, err, sizeof err),
            GG_EPARSE);
  free(deep);
  /* Embedded NUL / truncated text. */
  char *j = tiny_json("Identity", "flat", "3", "float32");
  ASSERT_EQ(gg__tfjs_import(j, strlen(j) / 2, "half.json", mem_reader, NULL, &g, err, sizeof err),
            GG_EPARSE);
  /* Duplicate node name. */
  char *dup = subst(j, "{\"name\":\"b\",\"op\":\"Const\"}", "{\"name\":\"w\",\"op\":\"Const\"}");
  ASSERT_EQ(gg__tfjs_import(dup, strlen(dup), "dup.json", mem_reader, NULL, &g, err, sizeof err),
            GG_EPARSE);
  ASSERT_CONTAINS(err, "'w'");
  free(dup);
  /* Weight path escaping the model folder (file loader). */
  char *esc = subst(j, "tiny.bin", "../../etc/passwd");
  gg_model *m = NULL;
  tiny_bin();
  ASSERT_EQ(load_variant(esc, g_bin_len, 1, err, sizeof err, &m), GG_EPARSE);
  ASSERT_CONTAINS(err, "../../etc/passwd");
  free(esc);
  /* A Reshape that cannot hold: found when the session infers shapes. */
  g_bin[216 + 12] = 5; /* shape = [5, -1]: 48 elements do not split by 5 */
  ASSERT_OK(gg__tfjs_import(j, strlen(j), "reshape.json", mem_reader, NULL, &g, err, sizeof err));
  gg__graph_free(g);
  g = NULL;
  ASSERT_OK(load_variant(j, g_bin_len, 1, err, sizeof err, &m));
  gg_session *s = NULL;
  ASSERT_EQ(gg_session_new(m, NULL, 0, NULL, &s, err, sizeof err), GG_EPARSE);
  ASSERT_CONTAINS(err, "'flat'");
  ASSERT_CONTAINS(err, "Reshape");
  gg_model_free(m);
  /* A wrong input shape is refused with both shapes in the message. */
  tiny_bin();
  ASSERT_OK(load_variant(j, g_bin_len, 1, err, sizeof err, &m));
  int64_t bad[4] = {1, 5, 4, 2};
  ASSERT_EQ(gg_session_new(m, bad, 4, NULL, &s, err, sizeof err), GG_EINVAL);
  ASSERT_CONTAINS(err, "[1,4,4,2]");
  gg_model_free(m);
  free(j);
}

/* Corrupt copies of a real model: truncated shard, flipped JSON bytes. */
static void test_real_model_corruptions(void) {
  char p[1024];
  if (!model_path("blazeface", p, sizeof p)) SKIP("blazeface not fetched");
  size_t jl = 0, bl = 0;
  char *json = read_text(p, &jl);
  char bp[1100];
  snprintf(bp, sizeof bp, "%.*s.bin", (int)(strlen(p) - 5), p);
  char *bin = read_text(bp, &bl);
  ASSERT_TRUE(json && bin);
  char jp[512], tp[512];
  snprintf(jp, sizeof jp, "%s/blazeface.json", tmpdir());
  snprintf(tp, sizeof tp, "%s/blazeface.bin", tmpdir());
  ASSERT_EQ(write_bytes(jp, json, jl), 0);
  size_t cuts[] = {0, 1, bl / 2, bl - 1};
  for (size_t i = 0; i < 4; i++) {
    ASSERT_EQ(write_bytes(tp, bin, cuts[i]), 0);
    gg_model *m = NULL;
    char err[512] = "";
    ASSERT_EQ(gg_model_load(jp, &m, err, sizeof err), GG_EPARSE);
    ASSERT_CONTAINS(err, "blazeface.json");
    ASSERT_CONTAINS(err, "truncated");
  }
  /* Flip bytes through the JSON: never a crash, always 0 or an error. */
  ASSERT_EQ(write_bytes(tp, bin, bl), 0);
  uint64_t rng = 42;
  int errors = 0;
  for (int it = 0; it < 60; it++) {
    char *c = malloc(jl + 1);
    memcpy(c, json, jl + 1);
    for (int k = 0; k < 8; k++) {
      rng = rng * 6364136223846793005ull + 1442695040888963407ull;
      c[(rng >> 33) % jl] = (char)(rng >> 20);
    }
    gg_graph *g = NULL;
    char err[512];
    int rc = gg__tfjs_import(c, jl, "flipped.json", mem_reader, NULL, &g, err, sizeof err);
    if (rc)
      errors++;
    else
      gg__graph_free(g);
    free(c);
  }
  fprintf(stderr, "  60 corrupted JSON copies: %d rejected, none crashed\n", errors);
  ASSERT_GE(errors, 1);
  free(json);
  free(bin);
}

/* ------------------------------------------------------------ planner */

static void check_plan(const gg_graph *g, const gg_tval *vals, const gg__plan *p) {
  uint64_t maxsz = 0;
  for (int t = 0; t < g->n_tensors; t++) {
    if (p->offset[t] < 0) continue;
    ASSERT_GE(p->size[t], (long long)(vals[t].nelem * 4));
    ASSERT_EQ(p->offset[t] % GG_ARENA_ALIGN, 0);
    ASSERT_LE(p->offset[t] + p->size[t], (long long)p->peak);
    if ((uint64_t)p->size[t] > maxsz) maxsz = (uint64_t)p->size[t];
    if (g->tensors[t].is_output || g->tensors[t].is_input) ASSERT_EQ(p->last[t], g->n_order);
    if (g->tensors[t].is_input) ASSERT_EQ(p->first[t], 0);
    for (int u = t + 1; u < g->n_tensors; u++) {
      if (p->offset[u] < 0) continue;
      int live_together = !(p->last[t] < p->first[u] || p->last[u] < p->first[t]);
      int overlap =
          p->offset[t] < p->offset[u] + p->size[u] && p->offset[u] < p->offset[t] + p->size[t];
      if (live_together && overlap)
        GG_T_FAIL("tensors '%s' [%d,%d]@%lld+%lld and '%s' [%d,%d]@%lld+%lld overlap",
                  g->tensors[t].name, p->first[t], p->last[t], (long long)p->offset[t],
                  (long long)p->size[t], g->tensors[u].name, p->first[u], p->last[u],
                  (long long)p->offset[u], (long long)p->size[u]);
    }
  }
  ASSERT_GE(p->peak, maxsz);
  ASSERT_LE(p->peak, p->sum);
  /* Every consumer reads inside the producer's lifetime. */
  for (int s = 0; s < g->n_order; s++) {
    const gg_node *n = &g->nodes[g->order[s]];
    for (int k = 0; k < n->n_in; k++)
      if (p->offset[n->in[k]] >= 0) {
        ASSERT_LE(p->first[n->in[k]], s);
        ASSERT_GE(p->last[n->in[k]], s);
      }
  }
}

static void test_planner_properties(void) {
  int found = 0;
  for (size_t i = 0; i < 4; i++) {
    char p[1024];
    if (!model_path(k_models[i], p, sizeof p)) continue;
    found++;
    gg_model *m;
    gg_session *s;
    gg_session_opts o = {1, GG_ENGINE_NAIVE, 0};
    ASSERT_OK(gg_model_load(p, &m, NULL, 0));
    ASSERT_OK(gg_session_new(m, NULL, 0, &o, &s, NULL, 0));
    const gg_graph *g = gg__model_graph(m);
    /* Re-plan from the session's inferred shapes and check the properties. */
    gg_tval *vals = calloc((size_t)g->n_tensors, sizeof *vals);
    for (int t = 0; t < g->n_tensors; t++)
      vals[t] = g->tensors[t].v;
    for (int k = 0; k < g->n_inputs; k++) {
      gg_tval *iv = &vals[g->inputs[k]];
      for (int d = 0; d < iv->ndim; d++)
        if (iv->shape[d] < 0) iv->shape[d] = 1;
      ASSERT_OK(gg__shape_nelem(iv->shape, iv->ndim, &iv->nelem));
    }
    for (int k = 0; k < g->n_order; k++)
      ASSERT_OK(gg__op_infer(&g->nodes[g->order[k]], vals, NULL, 0));
    gg__plan plan, flat;
    ASSERT_OK(gg__plan_memory(g, vals, 1, &plan));
    ASSERT_OK(gg__plan_memory(g, vals, 0, &flat));
    check_plan(g, vals, &plan);
    check_plan(g, vals, &flat);
    ASSERT_U64_EQ(flat.peak, flat.sum);
    ASSERT_LE(plan.peak, flat.peak);
    gg_engine_mem mem;
    gg_session_memory(s, &mem);
    ASSERT_U64_EQ(mem.arena_peak, plan.peak);
    fprintf(stderr, "  %-13s arena %llu bytes planned vs %llu without reuse (%.1fx)\n", k_models[i],
            (unsigned long long)plan.peak, (unsigned long long)flat.peak,
            (double)flat.peak / (double)plan.peak);
    gg__plan_free(&plan);
    gg__plan_free(&flat);
    free(vals);
    gg_session_free(s);
    gg_model_free(m);
  }
  if (!found) SKIP("no models fetched");
}

/* planned == measured: the prediction equals what the allocators counted. */
static void test_planned_equals_measured(void) {
  int found = 0;
  for (size_t i = 0; i < 4; i++) {
    char p[1024];
    if (!model_path(k_models[i], p, sizeof p)) continue;
    found++;
    for (int b = 0; b < 2; b++) {
      gg_model *m;
      gg_session *s;
      gg_session_opts o = {2, b ? GG_ENGINE_AUTO : GG_ENGINE_NAIVE, 0};
      ASSERT_OK(gg_model_load(p, &m, NULL, 0));
      ASSERT_OK(gg_session_new(m, NULL, 0, &o, &s, NULL, 0));
      gg_engine_mem mem;
      gg_session_memory(s, &mem);
      ASSERT_U64_EQ(mem.predicted, mem.weights + mem.arena + mem.workspace);
      ASSERT_U64_EQ(mem.predicted, mem.measured);
      ASSERT_U64_EQ(mem.weights, gg_model_weights_bytes(m));
      ASSERT_GE(mem.arena, mem.arena_peak);
      if (!b) ASSERT_U64_EQ(mem.workspace, 0);
      fprintf(stderr,
              "  %-13s %-5s predicted %llu measured %llu (weights %llu arena %llu workspace %llu, "
              "%d/%d ops on XNNPACK)\n",
              k_models[i], b ? "auto" : "naive", (unsigned long long)mem.predicted,
              (unsigned long long)mem.measured, (unsigned long long)mem.weights,
              (unsigned long long)mem.arena, (unsigned long long)mem.workspace, mem.n_ops_xnnpack,
              mem.n_ops);
      gg_session_free(s);
      gg_model_free(m);
    }
  }
  if (!found) SKIP("no models fetched");
}

static void fill_input(gg_session *s, uint64_t seed) {
  gg_tensor_info ii;
  float *in = gg_session_input(s, 0, &ii);
  int64_t n = 1;
  for (int d = 0; d < ii.ndim; d++)
    n *= ii.shape[d];
  for (int64_t k = 0; k < n; k++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    in[k] = (float)((seed >> 40) & 0xffff) / 65535.0f;
  }
}

/* Reusing memory must not change a single bit of any output (naive, 1 thread). */
static void test_reuse_is_bit_exact(void) {
  int found = 0;
  for (size_t i = 0; i < 4; i++) {
    char p[1024];
    if (!model_path(k_models[i], p, sizeof p)) continue;
    found++;
    gg_model *m;
    gg_session *a, *b;
    gg_session_opts oa = {1, GG_ENGINE_NAIVE, 0}, ob = {1, GG_ENGINE_NAIVE, 1};
    ASSERT_OK(gg_model_load(p, &m, NULL, 0));
    ASSERT_OK(gg_session_new(m, NULL, 0, &oa, &a, NULL, 0));
    ASSERT_OK(gg_session_new(m, NULL, 0, &ob, &b, NULL, 0));
    fill_input(a, 7);
    fill_input(b, 7);
    ASSERT_OK(gg_session_run(a, NULL, 0));
    ASSERT_OK(gg_session_run(b, NULL, 0));
    for (int k = 0; k < gg_model_n_outputs(m); k++) {
      int64_t n = gg_session_output_elems(a, k);
      ASSERT_EQ(n, gg_session_output_elems(b, k));
      ASSERT_TRUE(
          memcmp(gg_session_output(a, k, NULL), gg_session_output(b, k, NULL), (size_t)n * 4) == 0);
    }
    /* Running twice gives the same bits (inputs are never overwritten). */
    float *first = malloc((size_t)gg_session_output_elems(a, 0) * 4);
    memcpy(first, gg_session_output(a, 0, NULL), (size_t)gg_session_output_elems(a, 0) * 4);
    ASSERT_OK(gg_session_run(a, NULL, 0));
    ASSERT_TRUE(memcmp(first, gg_session_output(a, 0, NULL),
                       (size_t)gg_session_output_elems(a, 0) * 4) == 0);
    free(first);
    gg_session_free(a);
    gg_session_free(b);
    gg_model_free(m);
  }
  if (!found) SKIP("no models fetched");
}

/* XNNPACK against the naive kernels on whole models. */
static void test_xnnpack_vs_naive_models(void) {
  gg_session_opts ox = {2, GG_ENGINE_XNNPACK, 0}, on = {1, GG_ENGINE_NAIVE, 0};
  int found = 0;
  for (size_t i = 0; i < 4; i++) {
    char p[1024];
    if (!model_path(k_models[i], p, sizeof p)) continue;
    gg_model *m;
    gg_session *a, *b;
    ASSERT_OK(gg_model_load(p, &m, NULL, 0));
    int rc = gg_session_new(m, NULL, 0, &ox, &a, NULL, 0);
    if (rc == GG_ENOTIMPL) {
      gg_model_free(m);
      SKIP("XNNPACK not in this build");
    }
    found++;
    ASSERT_OK(rc);
    ASSERT_OK(gg_session_new(m, NULL, 0, &on, &b, NULL, 0));
    fill_input(a, 11);
    fill_input(b, 11);
    ASSERT_OK(gg_session_run(a, NULL, 0));
    ASSERT_OK(gg_session_run(b, NULL, 0));
    for (int k = 0; k < gg_model_n_outputs(m); k++) {
      int64_t n = gg_session_output_elems(a, k);
      const float *x = gg_session_output(a, k, NULL), *y = gg_session_output(b, k, NULL);
      double lo = y[0], hi = y[0], md = 0;
      for (int64_t e = 0; e < n; e++) {
        if (y[e] < lo) lo = y[e];
        if (y[e] > hi) hi = y[e];
        ASSERT_TRUE(isfinite(x[e]) && isfinite(y[e]));
      }
      for (int64_t e = 0; e < n; e++)
        md = gg_t_max_err(md, fabs((double)x[e] - y[e]));
      double tol = 1e-3 * fmax(hi - lo, 1e-3);
      fprintf(stderr, "  %-13s out %d: max |xnn - naive| = %.3g (range %.3g, tolerance %.3g)\n",
              k_models[i], k, md, hi - lo, tol);
      ASSERT_LE_F(md, tol);
    }
    gg_session_free(a);
    gg_session_free(b);
    gg_model_free(m);
  }
  if (!found) SKIP("no models fetched");
}

/* Every graph rewrite (bias/scale folding, PReLU and ReLU6 patterns,
 * activation fusion, transpose cancellation) against the unfused graph. */
static void test_fusion_preserves_results(void) {
  int found = 0;
  for (size_t i = 0; i < 4; i++) {
    char p[1024];
    if (!model_path(k_models[i], p, sizeof p)) continue;
    found++;
    gg_model *mf, *mu;
    gg_session *a, *b;
    gg_session_opts o = {1, GG_ENGINE_NAIVE, 0};
    ASSERT_OK(gg_model_load(p, &mf, NULL, 0));
    gg__fuse_disabled = 1;
    int rc = gg_model_load(p, &mu, NULL, 0);
    gg__fuse_disabled = 0;
    ASSERT_OK(rc);
    ASSERT_LE(gg_model_n_ops(mf), gg_model_n_ops(mu));
    ASSERT_OK(gg_session_new(mf, NULL, 0, &o, &a, NULL, 0));
    ASSERT_OK(gg_session_new(mu, NULL, 0, &o, &b, NULL, 0));
    fill_input(a, 5);
    fill_input(b, 5);
    ASSERT_OK(gg_session_run(a, NULL, 0));
    ASSERT_OK(gg_session_run(b, NULL, 0));
    for (int k = 0; k < gg_model_n_outputs(mf); k++) {
      int64_t n = gg_session_output_elems(a, k);
      ASSERT_EQ(n, gg_session_output_elems(b, k));
      const float *x = gg_session_output(a, k, NULL), *y = gg_session_output(b, k, NULL);
      double lo = y[0], hi = y[0], md = 0;
      for (int64_t e = 0; e < n; e++) {
        lo = fmin(lo, y[e]), hi = fmax(hi, y[e]);
        md = gg_t_max_err(md, fabs((double)x[e] - y[e]));
      }
      ASSERT_LE_F(md, 1e-4 * fmax(hi - lo, 1e-2));
      if (k == 0)
        fprintf(stderr,
                "  %-13s %d ops fused vs %d unfused, max |diff| %.3g on output 0 (range %.3g)\n",
                k_models[i], gg_model_n_ops(mf), gg_model_n_ops(mu), md, hi - lo);
    }
    gg_session_free(a);
    gg_session_free(b);
    gg_model_free(mf);
    gg_model_free(mu);
  }
  if (!found) SKIP("no models fetched");
}

/* ------------------------------------------------------------ CLI */

static void test_cli_infer_end_to_end(void) {
  char p[1024];
  char img[1024];
  gg_t_cache_path(img, sizeof img, "models/face-api-1.7.15/demo/sample1.jpg");
  if (access(img, R_OK)) SKIP("sample images not fetched (%s)", img);
  int found = 0;
  for (size_t i = 0; i < 4; i++) {
    if (!model_path(k_models[i], p, sizeof p)) continue;
    found++;
    char cmd[3000], dump[512];
    snprintf(dump, sizeof dump, "%s/dump-%s", tmpdir(), k_models[i]);
    snprintf(cmd, sizeof cmd, "%s infer --model %s --image %s --threads 2 --json --dump-dir %s",
             GG_BIN, k_models[i], img, dump);
    FILE *f = popen(cmd, "r");
    ASSERT_TRUE(f != NULL);
    json_error_t je;
    json_t *r = json_loadf(f, 0, &je);
    int st = pclose(f);
    ASSERT_EQ(st, 0);
    if (!r) GG_T_FAIL("%s: not JSON: %s", k_models[i], je.text);
    json_t *outs = json_object_get(r, "outputs");
    static const size_t n_out[4] = {4, 1, 6, 3}; /* blazeface, mobilefacenet, nanodet, faceres */
    ASSERT_EQ(json_array_size(outs), n_out[i]);
    for (size_t k = 0; k < json_array_size(outs); k++) {
      json_t *o = json_array_get(outs, k);
      ASSERT_TRUE(json_is_true(json_object_get(o, "finite")));
      ASSERT_GE(json_array_size(json_object_get(o, "shape")), 2);
    }
    json_t *mem = json_object_get(r, "memory");
    ASSERT_TRUE(json_is_true(json_object_get(mem, "equal")));
    /* The dump holds exactly the sizes the manifest declares. */
    char mp[700];
    snprintf(mp, sizeof mp, "%s/manifest.json", dump);
    json_t *man = json_load_file(mp, 0, &je);
    ASSERT_TRUE(man != NULL);
    json_t *in = json_object_get(man, "input");
    long long n = 1;
    json_t *sh = json_object_get(in, "shape");
    for (size_t d = 0; d < json_array_size(sh); d++)
      n *= json_integer_value(json_array_get(sh, d));
    char fp[800];
    snprintf(fp, sizeof fp, "%s/%s", dump, json_string_value(json_object_get(in, "file")));
    struct stat stt;
    ASSERT_EQ(stat(fp, &stt), 0);
    ASSERT_EQ(stt.st_size, n * 4);
    ASSERT_EQ(json_array_size(json_object_get(man, "outputs")), json_array_size(outs));
    ASSERT_CONTAINS(json_string_value(json_object_get(man, "model")), k_models[i]);
    json_decref(man);
    json_decref(r);
  }
  if (!found) SKIP("no models fetched");
}

static void test_cli_errors(void) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "%s infer --model nosuchmodel --image /nonexistent.jpg 2>&1", GG_BIN);
  FILE *f = popen(cmd, "r");
  char buf[2048] = "";
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  int st = pclose(f);
  ASSERT_NE(st, 0);
  ASSERT_CONTAINS(buf, "nosuchmodel");
  ASSERT_CONTAINS(buf, "fetch-models");
  snprintf(cmd, sizeof cmd, "%s infer --help", GG_BIN);
  f = popen(cmd, "r");
  static char help[16384];
  n = fread(help, 1, sizeof help - 1, f);
  help[n] = 0;
  ASSERT_EQ(pclose(f), 0);
  ASSERT_CONTAINS(help, "--dump-dir");
  ASSERT_CONTAINS(help, "--fallback");
}

/* gpuguard bench: a real measurement of each model (no peer here: the
 * tfjs-wasm side is bench/README.md's business), and usage errors. */
/* Runs `gpuguard bench ARGS --json`; returns its parsed output (NULL if
 * none) and its exit status in *status. */
static json_t *bench_json(const char *args, int *status) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "%s bench %s --json 2>/dev/null", GG_BIN, args);
  FILE *f = popen(cmd, "r");
  json_error_t je;
  json_t *r = f ? json_loadf(f, 0, &je) : NULL;
  int st = f ? pclose(f) : -1;
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

static void test_cli_bench(void) {
  char p[1024];
  if (!model_path("blazeface", p, sizeof p)) SKIP("no models fetched");
  char cmd[1200];
  int st;
  json_t *r = bench_json("--models blazeface,nosuchmodel --runs 2 --warmup 0 --peer none", &st);
  ASSERT_TRUE(r != NULL);
  ASSERT_EQ(st, 1); /* nosuchmodel failed, blazeface measured */
  json_t *rows = json_object_get(r, "models");
  ASSERT_EQ(json_array_size(rows), 1);
  json_t *b = json_array_get(rows, 0);
  ASSERT_STREQ(json_string_value(json_object_get(b, "model")), "blazeface");
  ASSERT_GT_F(json_real_value(json_object_get(b, "median_ms")), 0);
  ASSERT_EQ(json_integer_value(json_object_get(b, "n_ops")), 113);
  ASSERT_GE(json_integer_value(json_object_get(b, "planned_bytes")), 546096); /* > weights */
  ASSERT_TRUE(json_object_get(b, "ratio") == NULL);
  json_decref(r);
  snprintf(cmd, sizeof cmd, "%s bench --peer bogus >/dev/null 2>&1", GG_BIN);
  ASSERT_EQ(WEXITSTATUS(system(cmd)), 2);
}

/* gpuguard bench --device: each first request (cold caches, only gpuguard's
 * cold, warm) measured in a process of its own, then the steady median, all
 * on the device. On the sim (every op one launch on sim memory) it shows the
 * mechanism without an OpenCL runtime's compile times; bench/README.md has
 * the opencl:0.0 numbers. */
static void test_cli_bench_device(void) {
  char p[1024];
  if (!model_path("blazeface", p, sizeof p)) SKIP("no models fetched");
  char cmd[1200];
  int st;
  json_t *r = bench_json("--device sim:mem=4560M --models blazeface --runs 2 --warmup 0", &st);
  ASSERT_TRUE(r != NULL);
  ASSERT_EQ(st, 0);
  ASSERT_STREQ(json_string_value(json_object_get(r, "device")), "sim:mem=4560M");
  json_t *b = json_array_get(json_object_get(r, "models"), 0);
  const char *phases[] = {"cold", "ours_cold", "warm"};
  for (int i = 0; i < 3; i++) {
    json_t *ph = json_object_get(b, phases[i]);
    double setup = json_real_value(json_object_get(ph, "setup_ms"));
    double run = json_real_value(json_object_get(ph, "first_run_ms"));
    ASSERT_GT_F(setup, 0);
    ASSERT_GT_F(run, 0);
    ASSERT_NEAR(json_real_value(json_object_get(ph, "first_request_ms")), setup + run, 1e-6);
  }
  ASSERT_GT_F(json_real_value(json_object_get(b, "median_ms")), 0);
  ASSERT_STREQ(json_string_value(json_object_get(b, "ops_by_backend")), "sim 113");
  json_decref(r);
  snprintf(cmd, sizeof cmd, "%s bench --device sim --peer tfjs-wasm >/dev/null 2>&1", GG_BIN);
  ASSERT_EQ(WEXITSTATUS(system(cmd)), 2);
  /* --shape (and the PP-OCR default shapes) apply on a device too: the
   * plan for cls at 48x96 is smaller than at its usual 48x192 */
  char cls[512], args[700];
  gg_t_cache_path(cls, sizeof cls, "models/ocr-models-1.4.2/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx");
  if (access(cls, R_OK)) return;
  double planned[2];
  for (int i = 0; i < 2; i++) {
    snprintf(args, sizeof args, "--device sim --models %s --runs 1 --warmup 0%s", cls,
             i ? " --shape 1x3x48x96" : "");
    r = bench_json(args, &st);
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ(st, 0);
    b = json_array_get(json_object_get(r, "models"), 0);
    planned[i] = json_number_value(json_object_get(b, "planned_bytes"));
    json_decref(r);
  }
  ASSERT_GT_F(planned[1], 0);
  ASSERT_GT_F(planned[0], planned[1]);
}

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_ERROR);
  static const gg_test_case cases[] = {
      {"import_real_models", test_import_real_models},
      {"known_output_shapes", test_known_output_shapes},
      {"tiny_model_runs", test_tiny_model_runs},
      {"hostile_models", test_hostile_models},
      {"hostile_json", test_hostile_json},
      {"real_model_corruptions", test_real_model_corruptions},
      {"planner_properties", test_planner_properties},
      {"planned_equals_measured", test_planned_equals_measured},
      {"reuse_is_bit_exact", test_reuse_is_bit_exact},
      {"xnnpack_vs_naive_models", test_xnnpack_vs_naive_models},
      {"fusion_preserves_results", test_fusion_preserves_results},
      {"cli_infer_end_to_end", test_cli_infer_end_to_end},
      {"cli_errors", test_cli_errors},
      {"cli_bench", test_cli_bench},
      {"cli_bench_device", test_cli_bench_device},
      {0},
  };
  int rc = gg_test_main(argc, argv, cases);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
  if (g_tmp[0] && system(cmd)) rc = rc ? rc : 0;
  return rc;
}
