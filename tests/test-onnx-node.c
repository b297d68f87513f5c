/* ONNX's own backend node tests (Debian libonnx-testdata 1.12:
 * /usr/share/libonnx-testdata/data/node/TEST/model.onnx with
 * test_data_set_0/input_N.pb and output_N.pb) through gg_model_load and a
 * session, on every engine backend built in: naive, xnnpack (the default
 * CPU path), sim, and opencl or cuda when a device opens (PoCL, a GPU).
 * Outputs are compared as ONNX's runner does: |got - want| <= atol + rtol *
 * |want| with rtol 1e-3, atol 1e-7, NaN equal to NaN; integer and bool
 * outputs exactly, and the float16 / bfloat16 outputs of Cast exactly too
 * (bfloat16 within one unit in the last place: see nt_compare). The engine
 * holds float16, bfloat16 and double as float32 and uint32 / uint64 as
 * int32: the test data is converted at the boundary as a caller would
 * (double, float16, bfloat16 -> float; uint32, uint64 -> int32, a value
 * outside int32 skipping the test).
 *
 * Each test is classified: pass; fail (with the first mismatch); skip with a
 * reason: an op not in our set (docs/ONNX.md), a dtype we do not take
 * (double, string, float16, ... inputs or outputs), or the importer refusing
 * it with GG_EUNSUPPORTED (its message). Tests run in worker processes (one
 * per backend and shard, two at a time), each test under an alarm, so a
 * crash or a hang is one failed test and the worker restarts after it.
 *
 * Failing rule: tests/onnx-node-expected.txt lists the tests expected not to
 * pass ("NAME[:BACKEND] reason"). The case fails when a test not listed
 * fails, crashes or times out; listed tests that now pass are printed so the
 * list can be trimmed. A full run writes the per-test table to
 * ./onnx-node-table.md (the build folder under ctest) and regenerates the
 * per-op table in docs/ONNX.md between <!-- node-tests:begin --> and
 * <!-- node-tests:end -->.
 *
 *   build/test-onnx-node [pb_reader|allclose|expected_list|node_tests]
 *   GG_ONNX_NODE_DIR      the node tests' folder (default: Debian's); another
 *                         suite's folder (pytorch-converted, pytorch-operator,
 *                         simple: CTest's test-onnx-SUITE) writes
 *                         onnx-SUITE-table.md and docs/ONNX.md's SUITE-tests
 *                         section instead
 *   GG_ONNX_NODE_FILTER   run only tests whose name contains this (no docs)
 *   GG_ONNX_NODE_BACKENDS comma list among naive,xnnpack,sim,opencl,cuda (no docs)
 *   GG_ONNX_NODE_TIMEOUT  seconds per test (default 30)
 *   GG_ONNX_NODE_JOBS     workers at a time (default 2)
 *   GG_ONNX_NODE_EXPECTED another expected-not-to-pass list
 *   GG_ONNX_NODE_SELFTEST crash:NAME / hang:NAME makes test NAME crash / hang
 *                         in its worker (checks the harness itself)
 *   GG_ONNX_MD            file to regenerate instead of docs/ONNX.md
 *   GG_ONNX_NODE_TABLE    per-test table path (default ./onnx-node-table.md) */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/backend.h"
#include "gpuguard/device.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"
#include "gpuguard/memory.h"
#include "reference-util.h"
#include "test.h"

#ifdef GG_HAVE_ONNX
#include "onnx.pb-c.h"
#endif

#define NT_RTOL 1e-3
#define NT_ATOL 1e-7
#define NT_MAX_DIMS 16
#define NT_MAX_IO 16
#define NT_MSG 320

/* ONNX TensorProto.DataType values used here (onnx.proto). */
enum {
  DT_FLOAT = 1,
  DT_UINT8 = 2,
  DT_INT8 = 3,
  DT_UINT16 = 4,
  DT_INT16 = 5,
  DT_INT32 = 6,
  DT_INT64 = 7,
  DT_STRING = 8,
  DT_BOOL = 9,
  DT_FLOAT16 = 10,
  DT_DOUBLE = 11,
  DT_UINT32 = 12,
  DT_UINT64 = 13,
  DT_BFLOAT16 = 16
};

/* ---- one TensorProto (.pb) ------------------------------------------------ */
typedef struct nt_tensor {
  char name[128];
  int dt; /* ONNX data type */
  int ndim;
  int64_t dims[NT_MAX_DIMS];
  int64_t n;
  float *f;   /* FLOAT data, and DOUBLE / FLOAT16 / BFLOAT16 as float (n values) */
  int64_t *i; /* integer/bool data (n values); NULL for other types */
  int exact;  /* compare exactly (a Cast's float16 / bfloat16 output) */
} nt_tensor;

#ifdef GG_HAVE_ONNX
/* The ops the importer maps: its own table (gg__onnx_op_name), so the
 * runner's set never drifts from what gg_model_load takes. */
static int n_our_ops(void) {
  int n = 0;
  while (gg__onnx_op_name((size_t)n))
    n++;
  return n;
}

static int our_op(const char *op) {
  for (size_t i = 0; gg__onnx_op_name(i); i++)
    if (!strcmp(gg__onnx_op_name(i), op)) return 1;
  return 0;
}

/* ONNX TensorProto.DataType names (onnx.proto's enum values). */
static const char *dt_name(int dt) {
  static const char *const n[] = {"undefined",  "float",   "uint8",  "int8",   "uint16",
                                  "int16",      "int32",   "int64",  "string", "bool",
                                  "float16",    "double",  "uint32", "uint64", "complex64",
                                  "complex128", "bfloat16"};
  return dt >= 0 && dt < (int)(sizeof n / sizeof n[0]) ? n[dt] : "unknown";
}
/* The element types the importer maps to the IR (F32, or I32 for the
 * integers and bool). */
static int dt_taken(int dt) {
  return dt == DT_FLOAT || dt == DT_UINT8 || dt == DT_INT8 || dt == DT_UINT16 || dt == DT_INT16 ||
         dt == DT_INT32 || dt == DT_INT64 || dt == DT_BOOL || dt == DT_FLOAT16 || dt == DT_DOUBLE ||
         dt == DT_BFLOAT16 || dt == DT_UINT32 || dt == DT_UINT64;
}

static int dt_is_float(int dt) {
  return dt == DT_FLOAT || dt == DT_FLOAT16 || dt == DT_DOUBLE || dt == DT_BFLOAT16;
}

/* IEEE binary16 bits -> float (exact). */
static float nt_half(uint16_t h) {
  int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  float v = e == 0    ? ldexpf((float)m, -24)
            : e == 31 ? (m ? NAN : INFINITY)
                      : ldexpf((float)(m | 0x400), e - 25);
  return (h & 0x8000) ? -v : v;
}

/* bfloat16 bits -> float (exact: the high half of a float). */
static float nt_bf16(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* A double test value as float, the nearest (+-inf past the float range:
 * C leaves that conversion undefined). */
static float nt_d2f(double d) {
  if (d >= 0x1.ffffffp127) return INFINITY;
  if (d <= -0x1.ffffffp127) return -INFINITY;
  return (float)d;
}

static void nt_tensor_free(nt_tensor *t) {
  free(t->f);
  free(t->i);
  t->f = NULL;
  t->i = NULL;
}

static uint64_t rd_le(const uint8_t *p, int size) {
  uint64_t v = 0;
  for (int k = size - 1; k >= 0; k--)
    v = (v << 8) | p[k];
  return v;
}

/* Parses a TensorProto from buf (len bytes) into *t. Data is kept for FLOAT
 * and the integer/bool types; other types keep only the shape. Returns 0, or
 * -1 with a reason in err. */
static int nt_tensor_parse(const uint8_t *buf, size_t len, nt_tensor *t, char *err, size_t errlen) {
  memset(t, 0, sizeof *t);
  Onnx__TensorProto *p = onnx__tensor_proto__unpack(NULL, len, buf);
  if (!p) {
    snprintf(err, errlen, "not a TensorProto");
    return -1;
  }
  int rc = -1;
  snprintf(t->name, sizeof t->name, "%s", p->name ? p->name : "");
  t->dt = p->data_type;
  if (p->n_dims > NT_MAX_DIMS) {
    snprintf(err, errlen, "%zu dims", p->n_dims);
    goto out;
  }
  t->ndim = (int)p->n_dims;
  t->n = 1;
  for (size_t k = 0; k < p->n_dims; k++) {
    t->dims[k] = p->dims[k];
    if (p->dims[k] < 0 || (p->dims[k] && t->n > ((int64_t)1 << 40) / p->dims[k])) {
      snprintf(err, errlen, "dim %zu is %lld", k, (long long)p->dims[k]);
      goto out;
    }
    t->n *= p->dims[k];
  }
  const size_t n = (size_t)t->n;
  int esize = 0;
  switch (t->dt) {
  case DT_FLOAT: esize = 4; break;
  case DT_UINT8:
  case DT_INT8:
  case DT_BOOL: esize = 1; break;
  case DT_UINT16:
  case DT_INT16: esize = 2; break;
  case DT_INT32: esize = 4; break;
  case DT_INT64: esize = 8; break;
  case DT_FLOAT16:
  case DT_BFLOAT16: esize = 2; break;
  case DT_UINT32: esize = 4; break;
  case DT_DOUBLE:
  case DT_UINT64: esize = 8; break;
  default: rc = 0; goto out; /* shape only */
  }
  if (p->has_raw_data && p->raw_data.len != n * (size_t)esize) {
    snprintf(err, errlen, "raw_data has %zu bytes, want %zu", p->raw_data.len, n * (size_t)esize);
    goto out;
  }
  if (t->dt == DT_FLOAT) {
    t->f = malloc((n ? n : 1) * sizeof(float));
    if (!t->f) goto oom;
    if (p->has_raw_data) {
      for (size_t k = 0; k < n; k++) {
        uint32_t u = (uint32_t)rd_le(p->raw_data.data + 4 * k, 4);
        memcpy(&t->f[k], &u, 4);
      }
    } else if (p->n_float_data == n) {
      memcpy(t->f, p->float_data, n * sizeof(float));
    } else {
      snprintf(err, errlen, "%zu float_data, want %zu", p->n_float_data, n);
      goto out;
    }
  } else if (dt_is_float(t->dt)) { /* double, float16, bfloat16 -> float */
    t->f = malloc((n ? n : 1) * sizeof(float));
    if (!t->f) goto oom;
    size_t have = p->has_raw_data ? n : t->dt == DT_DOUBLE ? p->n_double_data : p->n_int32_data;
    if (have != n) {
      snprintf(err, errlen, "%zu values, want %zu", have, n);
      goto out;
    }
    for (size_t k = 0; k < n; k++) {
      uint64_t u = p->has_raw_data      ? rd_le(p->raw_data.data + (size_t)esize * k, esize)
                   : t->dt == DT_DOUBLE ? 0
                                        : (uint16_t)p->int32_data[k];
      double d = 0;
      if (t->dt == DT_DOUBLE) {
        if (p->has_raw_data)
          memcpy(&d, &u, 8);
        else
          d = p->double_data[k];
        t->f[k] = nt_d2f(d);
      } else
        t->f[k] = t->dt == DT_FLOAT16 ? nt_half((uint16_t)u) : nt_bf16((uint16_t)u);
    }
  } else {
    t->i = malloc((n ? n : 1) * sizeof(int64_t));
    if (!t->i) goto oom;
    if (p->has_raw_data) {
      for (size_t k = 0; k < n; k++) {
        uint64_t u = rd_le(p->raw_data.data + (size_t)esize * k, esize);
        if (t->dt == DT_INT8)
          t->i[k] = (int8_t)u;
        else if (t->dt == DT_INT16)
          t->i[k] = (int16_t)u;
        else if (t->dt == DT_INT32)
          t->i[k] = (int32_t)u;
        else if (t->dt == DT_INT64)
          t->i[k] = (int64_t)u;
        else if (t->dt == DT_UINT64)
          t->i[k] = u > INT64_MAX ? INT64_MAX : (int64_t)u; /* out of int32 either way */
        else
          t->i[k] = (int64_t)u; /* uint8, uint16, uint32, bool */
      }
    } else if (t->dt == DT_INT64 && p->n_int64_data == n) {
      memcpy(t->i, p->int64_data, n * sizeof(int64_t));
    } else if ((t->dt == DT_UINT32 || t->dt == DT_UINT64) && p->n_uint64_data == n) {
      for (size_t k = 0; k < n; k++)
        t->i[k] = p->uint64_data[k] > INT64_MAX ? INT64_MAX : (int64_t)p->uint64_data[k];
    } else if (t->dt != DT_INT64 && p->n_int32_data == n) {
      for (size_t k = 0; k < n; k++)
        t->i[k] = p->int32_data[k];
    } else {
      snprintf(err, errlen, "%zu int32_data / %zu int64_data, want %zu", p->n_int32_data,
               p->n_int64_data, n);
      goto out;
    }
  }
  rc = 0;
  goto out;
oom:
  snprintf(err, errlen, "out of memory");
out:
  onnx__tensor_proto__free_unpacked(p, NULL);
  if (rc) nt_tensor_free(t);
  return rc;
}

static int nt_tensor_load(const char *path, nt_tensor *t, char *err, size_t errlen) {
  size_t len = 0;
  FILE *fp = fopen(path, "rb");
  uint8_t *buf = NULL;
  if (fp && !fseek(fp, 0, SEEK_END)) {
    long n = ftell(fp);
    rewind(fp);
    buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
      free(buf);
      buf = NULL;
    }
    len = n > 0 ? (size_t)n : 0;
  }
  if (fp) fclose(fp);
  if (!buf) {
    snprintf(err, errlen, "%s: cannot read", path);
    return -1;
  }
  char why[200];
  int rc = nt_tensor_parse(buf, len, t, why, sizeof why);
  free(buf);
  if (rc) snprintf(err, errlen, "%s: %s", path, why);
  return rc;
}
#endif

/* ---- comparison -------------------------------------------------------------- */
/* ONNX's assert_allclose for one value: NaN equals NaN, infinities equal
 * when both are the same infinity. */
static int nt_close(double got, double want) {
  if (isnan(want) || isnan(got)) return isnan(want) && isnan(got);
  if (isinf(want) || isinf(got)) return got == want;
  return fabs(got - want) <= NT_ATOL + NT_RTOL * fabs(want);
}

/* An int32 output read back as the narrow integer type the model declares
 * (the importer holds uint8/int8/uint16/int16/uint32 as int32: narrowing them is the
 * caller's part of the contract, as widening the inputs is). */
static int64_t nt_narrow(int32_t v, int dt) {
  switch (dt) {
  case DT_UINT8: return (uint8_t)v;
  case DT_INT8: return (int8_t)v;
  case DT_UINT16: return (uint16_t)v;
  case DT_INT16: return (int16_t)v;
  case DT_UINT32: return (uint32_t)v;
  default: return v;
  }
}

/* Compares an output (got: float or int32 values, exactly one non-NULL) with
 * the expected tensor. Returns 1 when equal within the rule, else 0 with the
 * first mismatch in msg. */
static int nt_compare(const nt_tensor *want, const float *gf, const int32_t *gi, int gndim,
                      const int64_t *gdims, char *msg, size_t msglen) {
  int same = gndim == want->ndim;
  for (int k = 0; same && k < gndim; k++)
    same = gdims[k] == want->dims[k];
  if (!same) {
    char a[128] = "", b[128] = "";
    for (int k = 0; k < gndim; k++)
      snprintf(a + strlen(a), sizeof a - strlen(a), "%s%lld", k ? "," : "", (long long)gdims[k]);
    for (int k = 0; k < want->ndim; k++)
      snprintf(b + strlen(b), sizeof b - strlen(b), "%s%lld", k ? "," : "",
               (long long)want->dims[k]);
    snprintf(msg, msglen, "shape [%s], want [%s]", a, b);
    return 0;
  }
  for (int64_t k = 0; k < want->n; k++) {
    double g = gf ? (double)gf[k] : (double)nt_narrow(gi[k], want->dt);
    if (want->f && want->exact && gf) {
      /* A Cast to float16 / bfloat16: our float must be that type's value
       * exactly. bfloat16 may differ from the data by one unit in the last
       * place: ONNX 1.12 made its expected values by truncating the float
       * (onnx/backend/test/case/node/cast.py), later ONNX versions and
       * gpuguard round to nearest even (test-onnx cast_f16 checks that). */
      uint32_t ub, uw;
      memcpy(&ub, &gf[k], 4), memcpy(&uw, &want->f[k], 4);
      int ok = ub == uw || (isnan(gf[k]) && isnan(want->f[k]));
      if (!ok && want->dt == DT_BFLOAT16 && !(ub & 0xffff) && (ub ^ uw) >> 31 == 0)
        ok = ub - uw == 0x10000 || uw - ub == 0x10000;
      if (ok) continue;
      snprintf(msg, msglen, "[%lld] = %.9g (0x%08x), want %.9g (0x%08x) (exact, %s)", (long long)k,
               g, ub, (double)want->f[k], uw, dt_name(want->dt));
      return 0;
    }
    if (want->f) {
      if (nt_close(g, want->f[k])) continue;
      snprintf(msg, msglen, "[%lld] = %.9g, want %.9g (|diff| %.3g > %.0e + %.0e*|want|)",
               (long long)k, g, (double)want->f[k], fabs(g - (double)want->f[k]), NT_ATOL, NT_RTOL);
      return 0;
    }
    if (g == (double)want->i[k]) continue;
    snprintf(msg, msglen, "[%lld] = %.9g, want %lld (exact)", (long long)k, g,
             (long long)want->i[k]);
    return 0;
  }
  return 1;
}

/* ---- expected-not-to-pass list --------------------------------------------- */
typedef struct nt_expect {
  char name[128];
  char backend[16]; /* "" = every backend */
  char reason[200];
  int seen; /* a test with this name exists */
  int hit;  /* it failed where listed */
} nt_expect;

/* Parses the list's text (NUL-terminated, modified). Lines: "NAME[:BACKEND]
 * reason", '#' comments and blank lines ignored. Returns the count (>= 0)
 * stored in out (at most max), or -1 with the bad line in err. */
static int nt_expect_parse(char *text, nt_expect *out, int max, char *err, size_t errlen) {
  int n = 0, line = 0;
  for (char *s = text; s && *s;) {
    char *nl = strchr(s, '\n');
    if (nl) *nl = 0;
    line++;
    while (*s == ' ' || *s == '\t')
      s++;
    if (*s && *s != '#' && *s != '\r') {
      if (n >= max) {
        snprintf(err, errlen, "line %d: more than %d entries", line, max);
        return -1;
      }
      nt_expect *e = &out[n];
      memset(e, 0, sizeof *e);
      size_t w = strcspn(s, " \t\r");
      char tok[160];
      if (w == 0 || w >= sizeof tok || strncmp(s, "test_", 5)) {
        snprintf(err, errlen, "line %d: want 'test_NAME[:BACKEND] reason'", line);
        return -1;
      }
      memcpy(tok, s, w);
      tok[w] = 0;
      char *colon = strchr(tok, ':');
      if (colon) {
        *colon = 0;
        if (strcmp(colon + 1, "naive") && strcmp(colon + 1, "xnnpack") &&
            strcmp(colon + 1, "sim") && strcmp(colon + 1, "opencl") && strcmp(colon + 1, "cuda")) {
          snprintf(err, errlen, "line %d: backend '%s' is not naive, xnnpack, sim, opencl or cuda",
                   line, colon + 1);
          return -1;
        }
        snprintf(e->backend, sizeof e->backend, "%s", colon + 1);
      }
      snprintf(e->name, sizeof e->name, "%.127s", tok);
      s += w;
      while (*s == ' ' || *s == '\t')
        s++;
      size_t r = strcspn(s, "\r");
      if (r == 0) {
        snprintf(err, errlen, "line %d: %s has no reason", line, e->name);
        return -1;
      }
      snprintf(e->reason, sizeof e->reason, "%.*s", (int)r, s);
      n++;
    }
    s = nl ? nl + 1 : NULL;
  }
  return n;
}

/* Reads and parses the list at path: the entry count, or -1 with the reason
 * (naming path) in err. */
static int nt_expect_load(const char *path, nt_expect *out, int max, char *err, size_t errlen) {
  char *text = slurp(path, NULL), why[200] = "cannot read";
  int n = text ? nt_expect_parse(text, out, max, why, sizeof why) : -1;
  free(text);
  if (n < 0) snprintf(err, errlen, "%.90s: %.200s", path, why);
  return n;
}

/* The entry covering test `name` on `backend`, or NULL. */
static nt_expect *nt_expect_find(nt_expect *list, int n, const char *name, const char *backend) {
  for (int k = 0; k < n; k++)
    if (!strcmp(list[k].name, name) && (!list[k].backend[0] || !strcmp(list[k].backend, backend)))
      return &list[k];
  return NULL;
}

/* ---- unit cases -------------------------------------------------------------- */
static void test_allclose(void) {
  nt_tensor w = {.dt = DT_FLOAT, .ndim = 1, .dims = {4}, .n = 4};
  float wf[4] = {1.0f, NAN, INFINITY, 0.0f};
  w.f = wf;
  char msg[NT_MSG];
  int64_t d4[1] = {4}, d3[1] = {3};
  float ok[4] = {1.0009f, NAN, INFINITY, 1e-8f};
  ASSERT_TRUE(nt_compare(&w, ok, NULL, 1, d4, msg, sizeof msg));
  float off[4] = {1.0011f, NAN, INFINITY, 0.0f}; /* rtol 1e-3 of 1.0, plus atol */
  ASSERT_FALSE(nt_compare(&w, off, NULL, 1, d4, msg, sizeof msg));
  ASSERT_CONTAINS(msg, "[0] = 1.001");
  float nan_where_num[4] = {NAN, NAN, INFINITY, 0.0f};
  ASSERT_FALSE(nt_compare(&w, nan_where_num, NULL, 1, d4, msg, sizeof msg));
  float num_where_nan[4] = {1.0f, 0.0f, INFINITY, 0.0f};
  ASSERT_FALSE(nt_compare(&w, num_where_nan, NULL, 1, d4, msg, sizeof msg));
  ASSERT_CONTAINS(msg, "[1]");
  float neg_inf[4] = {1.0f, NAN, -INFINITY, 0.0f};
  ASSERT_FALSE(nt_compare(&w, neg_inf, NULL, 1, d4, msg, sizeof msg));
  float atol_off[4] = {1.0f, NAN, INFINITY, 2e-7f};
  ASSERT_FALSE(nt_compare(&w, atol_off, NULL, 1, d4, msg, sizeof msg));
  ASSERT_FALSE(nt_compare(&w, ok, NULL, 1, d3, msg, sizeof msg));
  ASSERT_CONTAINS(msg, "shape [3], want [4]");
  /* Integers: exact. */
  int64_t wi[3] = {1, -2, 2147483647};
  nt_tensor t = {.dt = DT_INT64, .ndim = 1, .dims = {3}, .n = 3, .i = wi};
  int32_t gi[3] = {1, -2, 2147483647};
  ASSERT_TRUE(nt_compare(&t, NULL, gi, 1, d3, msg, sizeof msg));
  gi[1] = -3;
  ASSERT_FALSE(nt_compare(&t, NULL, gi, 1, d3, msg, sizeof msg));
  ASSERT_CONTAINS(msg, "[1] = -3, want -2 (exact)");
  float gf[3] = {1.0f, -2.0001f, 2147483647.0f};
  ASSERT_FALSE(nt_compare(&t, gf, NULL, 1, d3, msg, sizeof msg));
}

static void test_expected_list(void) {
  char text[] = "# comment\n"
                "\n"
                "test_a  refused: mode 'cubic'\n"
                "  test_b:opencl\tPoCL rounding\r\n"
                "test_c:sim reason with  spaces\n";
  nt_expect l[4];
  char err[200] = "";
  int n = nt_expect_parse(text, l, 4, err, sizeof err);
  ASSERT_EQ(n, 3);
  ASSERT_STREQ(l[0].name, "test_a");
  ASSERT_STREQ(l[0].backend, "");
  ASSERT_STREQ(l[0].reason, "refused: mode 'cubic'");
  ASSERT_STREQ(l[1].name, "test_b");
  ASSERT_STREQ(l[1].backend, "opencl");
  ASSERT_STREQ(l[1].reason, "PoCL rounding");
  ASSERT_STREQ(l[2].reason, "reason with  spaces");
  ASSERT_TRUE(nt_expect_find(l, n, "test_a", "naive") == &l[0]);
  ASSERT_TRUE(nt_expect_find(l, n, "test_b", "opencl") == &l[1]);
  ASSERT_TRUE(nt_expect_find(l, n, "test_b", "naive") == NULL);
  ASSERT_TRUE(nt_expect_find(l, n, "test_x", "naive") == NULL);
  char bad1[] = "test_a\n";
  ASSERT_EQ(nt_expect_parse(bad1, l, 4, err, sizeof err), -1);
  ASSERT_CONTAINS(err, "has no reason");
  char bad2[] = "test_a:vulkan why\n";
  ASSERT_EQ(nt_expect_parse(bad2, l, 4, err, sizeof err), -1);
  ASSERT_CONTAINS(err, "backend 'vulkan'");
  char bad3[] = "abs why\n";
  ASSERT_EQ(nt_expect_parse(bad3, l, 4, err, sizeof err), -1);
  ASSERT_CONTAINS(err, "line 1");
  char many[] = "test_a x\ntest_b y\n";
  ASSERT_EQ(nt_expect_parse(many, l, 1, err, sizeof err), -1);
}

/* The checked-in list parses, and every entry names an existing test. */
static void test_expected_file(void) {
  char path[1024];
  snprintf(path, sizeof path, "%s/onnx-node-expected.txt", GG_TEST_DIR);
  static nt_expect l[1024];
  char err[300];
  int n = nt_expect_load(path, l, 1024, err, sizeof err);
  if (n < 0) GG_T_FAIL("%s", err);
  const char *dir = getenv("GG_ONNX_NODE_DIR");
  if (!dir || !*dir) dir = "/usr/share/libonnx-testdata/data/node";
  int missing = 0;
  for (int k = 0; k < n; k++) {
    char p[1200];
    snprintf(p, sizeof p, "%.900s/%.127s/model.onnx", dir, l[k].name);
    struct stat st;
    if (stat(dir, &st)) SKIP("%s missing (apt-get install libonnx-testdata)", dir);
    if (stat(p, &st)) {
      fprintf(stderr, "  %s: '%s' is not a node test in %s\n", path, l[k].name, dir);
      missing++;
    }
  }
  ASSERT_EQ(missing, 0);
}

#ifdef GG_HAVE_ONNX
/* ---- the engine's side: model, session, inputs, outputs ---------------------
 * Everything the node tests ask of the public API is in this section. */
typedef struct nt_backend {
  const char *name;
  gg_engine_backend eb; /* host kernels */
  const char *spec;     /* device to open, NULL for host backends */
} nt_backend;
static const nt_backend k_backends[] = {
    {"naive", GG_ENGINE_NAIVE, NULL},        {"xnnpack", GG_ENGINE_AUTO, NULL},
    {"sim", GG_ENGINE_AUTO, "sim:mem=256M"}, {"opencl", GG_ENGINE_AUTO, "opencl:0.0"},
    {"cuda", GG_ENGINE_AUTO, "cuda:0"},
};
#define NB ((int)(sizeof k_backends / sizeof k_backends[0]))

/* One node test, as the parent read it. */
typedef struct nt_test {
  char name[128];
  char op[48];       /* the op the test is about (from its name) */
  char ops[200];     /* every op type in its graph, comma-separated */
  char skip[NT_MSG]; /* why it is not run; "" when it runs */
  int decl_in[NT_MAX_IO], decl_out[NT_MAX_IO]; /* the types the graph declares (0: unsaid) */
  int n_in, n_out;
  nt_tensor in[NT_MAX_IO], out[NT_MAX_IO];
  char res[NB]; /* per backend: 0 not run, 'P' pass, 'p' pass with operands as constants,
                   'F' fail, 'S' refused, 'C' crash, 'T' timeout */
  char msg[NB][NT_MSG];
} nt_test;

static char g_dir[1024];
static int g_timeout = 30;
/* The folder's last component: "node" for the node tests, else another
 * suite of ONNX's backend test data (pytorch-converted, pytorch-operator,
 * simple), which gets its own docs section and per-test table. */
static char g_suite[64] = "node";

static void set_suite(void) {
  size_t l = strlen(g_dir);
  while (l > 1 && g_dir[l - 1] == '/') l--;
  size_t b = l;
  while (b > 0 && g_dir[b - 1] != '/') b--;
  snprintf(g_suite, sizeof g_suite, "%.*s", (int)(l - b), g_dir + b);
  if (!g_suite[0]) snprintf(g_suite, sizeof g_suite, "node");
}

static int int_range_ok(const nt_tensor *t) {
  for (int64_t k = 0; t->i && k < t->n; k++)
    if (t->i[k] < INT32_MIN || t->i[k] > INT32_MAX) return 0;
  return 1;
}

/* Runs test t from the model at path, feeding its first n_fed inputs, on
 * backend b (pool: its device's, or NULL). Returns 'P', 'F' or 'S' with the
 * reason in msg. */
static char run_one(const nt_test *t, const char *path, int n_fed, const nt_backend *b,
                    gg_pool *pool, char *msg, size_t msglen) {
  char err[512] = "";
  gg_model *m = NULL;
  gg_session *s = NULL;
  char st = 'F';
  int rc = gg_model_load(path, &m, err, sizeof err);
  if (rc) {
    st = rc == GG_EUNSUPPORTED ? 'S' : 'F';
    snprintf(msg, msglen, "%s at load: %s", gg_err_name(rc), err);
    goto out;
  }
  int nin = gg_model_n_inputs(m);
  if (nin != n_fed) {
    snprintf(msg, msglen, "the model has %d inputs, the test feeds %d", nin, n_fed);
    goto out;
  }
  /* Model input k takes the test input of the same name, else the k-th. */
  int map[NT_MAX_IO];
  for (int k = 0; k < nin; k++) {
    gg_tensor_info info;
    gg_model_input(m, k, &info);
    map[k] = k;
    for (int j = 0; j < n_fed; j++)
      if (info.name && t->in[j].name[0] && !strcmp(info.name, t->in[j].name)) map[k] = j;
  }
  gg_session_opts o = {.threads = 1, .backend = b->eb};
  const int64_t *shapes[NT_MAX_IO];
  int ndims[NT_MAX_IO];
  for (int k = 0; k < nin; k++)
    shapes[k] = t->in[map[k]].dims, ndims[k] = t->in[map[k]].ndim;
  rc = gg_session_new_shapes(m, nin, shapes, ndims, &o, pool, &s, err, sizeof err);
  if (rc) {
    st = rc == GG_EUNSUPPORTED ? 'S' : 'F';
    snprintf(msg, msglen, "%s at session: %s", gg_err_name(rc), err);
    goto out;
  }
  for (int k = 0; k < nin; k++) {
    const nt_tensor *x = &t->in[map[k]];
    gg_tensor_info info;
    void *dst = gg_session_input_data(s, k, &info);
    if (!dst) {
      snprintf(msg, msglen, "no buffer for input %d", k);
      goto out;
    }
    for (int64_t e = 0; e < x->n; e++) {
      if (info.dtype == GG_TENSOR_I32)
        ((int32_t *)dst)[e] = x->i ? (int32_t)x->i[e] : (int32_t)x->f[e];
      else
        ((float *)dst)[e] = x->f ? x->f[e] : (float)x->i[e];
    }
  }
  if ((rc = gg_session_run(s, err, sizeof err))) {
    snprintf(msg, msglen, "%s at run: %s", gg_err_name(rc), err);
    goto out;
  }
  int nout = gg_model_n_outputs(m);
  if (nout != t->n_out) {
    snprintf(msg, msglen, "the model has %d outputs, the test expects %d", nout, t->n_out);
    goto out;
  }
  for (int j = 0; j < t->n_out; j++) {
    const nt_tensor *w = &t->out[j];
    int k = j;
    gg_tensor_info info;
    for (int q = 0; q < nout; q++)
      if (gg_session_output_data(s, q, &info) && info.name && w->name[0] &&
          !strcmp(info.name, w->name))
        k = q;
    const void *got = gg_session_output_data(s, k, &info);
    if (!got) {
      snprintf(msg, msglen, "no output %d ('%s')", k, w->name);
      goto out;
    }
    char why[NT_MSG];
    int is_int = info.dtype == GG_TENSOR_I32;
    if (!nt_compare(w, is_int ? NULL : got, is_int ? got : NULL, info.ndim, info.shape, why,
                    sizeof why)) {
      snprintf(msg, msglen, "output '%.60s' (%s): %.200s", w->name, b->name, why);
      goto out;
    }
  }
  /* The plan's prediction stays exact for ONNX models. */
  gg_engine_mem mem;
  gg_session_memory(s, &mem);
  for (int d = 0; d < mem.n_devices; d++)
    if (mem.dev[d].predicted != mem.dev[d].measured) {
      snprintf(msg, msglen, "memory on %s: predicted %llu, measured %llu", mem.dev[d].device,
               (unsigned long long)mem.dev[d].predicted, (unsigned long long)mem.dev[d].measured);
      goto out;
    }
  st = 'P';
  msg[0] = 0;
  /* How many ops ran on the backend under test (the summary counts the
   * tests that put at least one there, so its column is not vacuous). */
  if (strcmp(b->name, "naive"))
    snprintf(msg, msglen, "%d ops on %s", gg_session_ops_by_backend(s, b->name), b->name);
out:
  gg_session_free(s);
  gg_model_free(m);
  return st;
}

/* Test t's model.onnx, parsed (the caller frees it with
 * onnx__model_proto__free_unpacked), or NULL. */
static Onnx__ModelProto *test_model(const nt_test *t) {
  char path[1400];
  snprintf(path, sizeof path, "%s/%s/model.onnx", g_dir, t->name);
  size_t len = 0;
  char *buf = slurp(path, &len);
  Onnx__ModelProto *m = buf ? onnx__model_proto__unpack(NULL, len, (const uint8_t *)buf) : NULL;
  free(buf);
  return m;
}

/* ONNX's node tests feed every operand as a graph input, where real models
 * hold weights, pads, axes, shapes as initializers, and the importer takes
 * those only as constants. This writes the test's model to out_path with
 * inputs first.. turned into initializers holding the test's values (first
 * 1: input 0 stays an input; first 0: every input, for tests whose input 0
 * is itself a shape or a Range bound). Returns 0, or -1 with a reason in
 * err. */
static int write_frozen(const nt_test *t, int first, const char *out_path, char *err,
                        size_t errlen) {
  Onnx__ModelProto *m = test_model(t);
  int rc = -1;
  uint8_t *packed = NULL;
  if (!m || !m->graph) {
    snprintf(err, errlen, "model.onnx does not parse");
    goto out;
  }
  Onnx__GraphProto *g = m->graph;
  /* The graph's real inputs (not initializers), in order: the test's. */
  int real[NT_MAX_IO], nreal = 0;
  for (size_t k = 0; k < g->n_input && nreal < NT_MAX_IO; k++) {
    int init = 0;
    for (size_t q = 0; q < g->n_initializer; q++)
      init |= g->input[k]->name && g->initializer[q]->name &&
              !strcmp(g->input[k]->name, g->initializer[q]->name);
    if (!init) real[nreal++] = (int)k;
  }
  if (nreal != t->n_in || nreal < first + 1) {
    snprintf(err, errlen, "%d graph inputs for %d test inputs", nreal, t->n_in);
    goto out;
  }
  Onnx__TensorProto **inits =
      realloc(g->initializer, (g->n_initializer + (size_t)nreal) * sizeof *inits);
  if (!inits) goto out;
  g->initializer = inits;
  for (int k = first; k < nreal; k++) {
    char pb[1500];
    snprintf(pb, sizeof pb, "%s/%s/test_data_set_0/input_%d.pb", g_dir, t->name, k);
    size_t plen = 0;
    char *pbuf = slurp(pb, &plen);
    Onnx__TensorProto *tp =
        pbuf ? onnx__tensor_proto__unpack(NULL, plen, (const uint8_t *)pbuf) : NULL;
    free(pbuf);
    const char *name = g->input[real[k]]->name;
    char *dup = name ? strdup(name) : NULL;
    if (!tp || !dup) {
      free(dup);
      if (tp) onnx__tensor_proto__free_unpacked(tp, NULL);
      snprintf(err, errlen, "input_%d.pb does not parse", k);
      goto out;
    }
    /* The test data must have the type the graph declares (ONNX 1.12
     * stores bfloat16 test data as uint16: freezing that would change the
     * model's meaning). */
    const Onnx__TypeProto *ty = g->input[real[k]]->type;
    if (ty && ty->tensor_type && ty->tensor_type->elem_type == DT_BFLOAT16 &&
        tp->data_type == DT_UINT16)
      tp->data_type = DT_BFLOAT16; /* the same bits (see read_data) */
    if (!ty || !ty->tensor_type || ty->tensor_type->elem_type != tp->data_type) {
      free(dup);
      snprintf(err, errlen, "input_%d.pb is %s, the graph declares another type", k,
               dt_name(tp->data_type));
      onnx__tensor_proto__free_unpacked(tp, NULL);
      goto out;
    }
    free(tp->name);
    tp->name = dup;
    g->initializer[g->n_initializer++] = tp;
  }
  /* Drop inputs first.. from the graph's inputs (IR >= 4 lets initializers
   * stand alone). */
  size_t w = 0;
  for (size_t k = 0; k < g->n_input; k++) {
    int frozen = 0;
    for (int q = first; q < nreal; q++)
      frozen |= real[q] == (int)k;
    if (frozen)
      onnx__value_info_proto__free_unpacked(g->input[k], NULL);
    else
      g->input[w++] = g->input[k];
  }
  g->n_input = w;
  if (m->has_ir_version && m->ir_version < 4) m->ir_version = 4;
  size_t plen = onnx__model_proto__get_packed_size(m);
  packed = malloc(plen ? plen : 1);
  if (!packed) goto out;
  onnx__model_proto__pack(m, packed);
  FILE *fp = fopen(out_path, "wb");
  int ok = fp && fwrite(packed, 1, plen, fp) == plen;
  if (fp && fclose(fp)) ok = 0;
  if (!ok) {
    snprintf(err, errlen, "cannot write %.200s", out_path);
    goto out;
  }
  rc = 0;
out:
  free(packed);
  if (m) onnx__model_proto__free_unpacked(m, NULL);
  return rc;
}

/* Runs t from the model with inputs first.. as constants (write_frozen, in
 * tmpdir). Returns 'P', 'F' or 'S' with the reason in msg, or 0 when the
 * model could not be written. */
static char run_frozen(const nt_test *t, int first, const nt_backend *b, gg_pool *pool,
                       const char *tmpdir, char *msg, size_t msglen) {
  char fpath[1400], why[NT_MSG];
  snprintf(fpath, sizeof fpath, "%s/%s-%d.onnx", tmpdir, t->name, (int)getpid());
  if (write_frozen(t, first, fpath, why, sizeof why)) return 0;
  char st = run_one(t, fpath, first, b, pool, msg, msglen);
  unlink(fpath);
  /* Messages name the temporary file: say model.onnx, as the first try. */
  char *at = strstr(msg, fpath);
  if (at)
    memmove(at + 10, at + strlen(fpath), strlen(at + strlen(fpath)) + 1),
        memcpy(at, "model.onnx", 10);
  return st;
}

/* Whether every input of t is a scalar or a 1-D tensor of at most 6 values
 * (a shape, a Range bound of any type): such a test may be tried with every
 * input as a constant. */
static int inputs_shape_like(const nt_test *t) {
  for (int k = 0; k < t->n_in; k++)
    if (t->in[k].ndim > 1 || (t->in[k].ndim == 1 && t->in[k].n > 6)) return 0;
  return t->n_in > 0;
}

/* Runs test t on backend b: as ONNX gives it, then, when that is refused and
 * it has operand inputs, with those as constants; then, when that is refused
 * too (or it has none) and its input 0 is an integer tensor (a shape, a
 * Range bound) or every input is a scalar or shape-like (inputs_shape_like:
 * range_float_type_positive_delta), with every input as a constant. A pass
 * either way is 'p'. */
static char run_test(const nt_test *t, const nt_backend *b, gg_pool *pool, const char *tmpdir,
                     char *msg, size_t msglen) {
  char path[1400];
  snprintf(path, sizeof path, "%s/%s/model.onnx", g_dir, t->name);
  char st = run_one(t, path, t->n_in, b, pool, msg, msglen);
  if (st != 'S') return st;
  for (int first = 1; first >= 0; first--) {
    if (first == 1 && t->n_in < 2) continue;
    if (first == 0 && (t->n_in < 1 || !(t->in[0].i || inputs_shape_like(t)))) continue;
    char m2[NT_MSG] = "";
    char st2 = run_frozen(t, first, b, pool, tmpdir, m2, sizeof m2);
    if (st2 == 'P') {
      snprintf(msg, msglen, "%s", m2); /* the device ops count, if any */
      return 'p';
    }
    if (st2 == 'F') {
      snprintf(msg, msglen, "with %s as constants: %.200s", first ? "inputs 1.." : "every input",
               m2);
      return 'F';
    }
  }
  return st; /* refused that way too: the first reason */
}

/* ---- worker processes ------------------------------------------------------- */
/* Writes one line with a single write() so a crash right after loses nothing. */
static void put_line(int fd, const char *line) {
  size_t n = strlen(line), off = 0;
  while (off < n) {
    ssize_t w = write(fd, line + off, n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    off += (size_t)w;
  }
}

/* The worker: runs tests idx[from..n) (every `step`-th is ours) on backend
 * b, appending "B i" before and "R i S msg" after each to fd. Opens the
 * device first; "U reason" when it cannot. Never returns. */
static void worker(nt_test *tests, const int *idx, int n, int from, int b, int fd,
                   const char *tmpdir) {
  const nt_backend *be = &k_backends[b];
  gg_device *dev = NULL;
  gg_pool *pool = NULL;
  char line[NT_MSG + 64];
  if (be->spec) {
    int rc = gg_device_open(be->spec, &dev);
    if (!rc) rc = gg_pool_new(dev, NULL, &pool);
    if (rc) {
      snprintf(line, sizeof line, "U cannot open %s (%s)\n", be->spec, gg_err_name(rc));
      put_line(fd, line);
      gg_device_free(dev);
      exit(0);
    }
  }
  for (int k = from; k < n; k++) {
    nt_test *t = &tests[idx[k]];
    snprintf(line, sizeof line, "B %d\n", k);
    put_line(fd, line);
    alarm((unsigned)g_timeout);
    /* Harness self-test: GG_ONNX_NODE_SELFTEST=crash:NAME or hang:NAME. */
    const char *selftest = getenv("GG_ONNX_NODE_SELFTEST");
    if (selftest && !strncmp(selftest, "crash:", 6) && !strcmp(selftest + 6, t->name))
      raise(SIGSEGV);
    if (selftest && !strncmp(selftest, "hang:", 5) && !strcmp(selftest + 5, t->name))
      for (;;)
        pause();
    char msg[NT_MSG] = "";
    char st = run_test(t, be, pool, tmpdir, msg, sizeof msg);
    alarm(0);
    for (char *c = msg; *c; c++)
      if ((unsigned char)*c < 0x20 || (unsigned char)*c == 0x7f) *c = '?';
    snprintf(line, sizeof line, "R %d %c %s\n", k, st, msg);
    put_line(fd, line);
  }
  gg_pool_free(pool);
  gg_device_free(dev);
  close(fd);
  exit(0); /* a normal exit: LeakSanitizer checks the worker too */
}

typedef struct nt_job {
  int b;       /* backend */
  int *idx, n; /* its tests (indices into tests[]) */
  int next;    /* first not yet done */
  char file[1100];
  const char *tmpdir; /* for the worker's frozen models */
  off_t read_off;
  pid_t pid;
  int started_k; /* "B k" seen without its "R k" */
  int done, unavailable;
  char why[NT_MSG];
} nt_job;

/* Reads the job's new lines into the tests. */
static void job_collect(nt_job *j, nt_test *tests) {
  FILE *fp = fopen(j->file, "r");
  if (!fp) return;
  fseeko(fp, j->read_off, SEEK_SET);
  char line[NT_MSG + 64];
  while (fgets(line, sizeof line, fp)) {
    size_t len = strlen(line);
    if (!len || line[len - 1] != '\n') break; /* partial: the worker died mid-write */
    line[len - 1] = 0;
    j->read_off += (off_t)len;
    int k;
    char st;
    int off = 0;
    if (line[0] == 'B' && sscanf(line, "B %d", &k) == 1) {
      j->started_k = k;
    } else if (line[0] == 'R' && sscanf(line, "R %d %c %n", &k, &st, &off) >= 2 && k >= 0 &&
               k < j->n) {
      nt_test *t = &tests[j->idx[k]];
      t->res[j->b] = st;
      snprintf(t->msg[j->b], NT_MSG, "%s", off ? line + off : "");
      j->started_k = -1;
      j->next = k + 1;
    } else if (line[0] == 'U') {
      j->unavailable = 1;
      snprintf(j->why, sizeof j->why, "%.300s", line + 2);
    }
  }
  fclose(fp);
}

static pid_t job_spawn(nt_job *j, nt_test *tests) {
  fflush(stdout);
  fflush(stderr);
  int fd = open(j->file, O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd < 0) return -1;
  pid_t pid = fork();
  if (pid == 0) worker(tests, j->idx, j->n, j->next, j->b, fd, j->tmpdir);
  close(fd);
  j->started_k = -1;
  return pid;
}

/* Runs every job, at most `par` workers at a time, restarting a worker after
 * the test that crashed or hung it. */
static void run_jobs(nt_job *jobs, int nj, nt_test *tests, int par) {
  int running = 0, next_job = 0;
  for (;;) {
    while (running < par && next_job < nj) {
      nt_job *j = &jobs[next_job++];
      if (j->n == 0) {
        j->done = 1;
        continue;
      }
      j->pid = job_spawn(j, tests);
      if (j->pid < 0) {
        j->done = 1, j->unavailable = 1;
        snprintf(j->why, sizeof j->why, "fork: %s", strerror(errno));
        continue;
      }
      running++;
    }
    if (!running) break;
    int status;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    nt_job *j = NULL;
    for (int k = 0; k < nj; k++)
      if (jobs[k].pid == pid && !jobs[k].done) j = &jobs[k];
    if (!j) continue;
    job_collect(j, tests);
    int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (j->started_k >= 0) { /* died inside a test */
      nt_test *t = &tests[j->idx[j->started_k]];
      int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
      t->res[j->b] = sig == SIGALRM ? 'T' : 'C';
      if (sig == SIGALRM)
        snprintf(t->msg[j->b], NT_MSG, "timed out after %d s", g_timeout);
      else if (sig)
        snprintf(t->msg[j->b], NT_MSG, "crashed: signal %d (%s)", sig, strsignal(sig));
      else
        snprintf(t->msg[j->b], NT_MSG,
                 "worker exited with status %d inside the test (a sanitizer report or an "
                 "exit() in the library: see the log)",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
      j->next = j->started_k + 1;
    } else if (!clean && !j->unavailable) {
      /* Exited after its tests: a leak report or a crash at exit. */
      snprintf(j->why, sizeof j->why, "worker for %s exited with %s %d after its tests",
               k_backends[j->b].name, WIFSIGNALED(status) ? "signal" : "status",
               WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    } else if (!j->unavailable && j->next < j->n) {
      snprintf(j->why, sizeof j->why, "worker for %s stopped after %d of its %d tests",
               k_backends[j->b].name, j->next, j->n);
    }
    if (j->next < j->n && !j->unavailable && j->started_k >= 0) {
      j->pid = job_spawn(j, tests); /* carry on after the crash */
      if (j->pid > 0) continue;
    }
    j->done = 1;
    running--;
  }
}
#endif

#ifdef GG_HAVE_ONNX
/* ---- discovery and classification --------------------------------------------- */
/* Every op type seen in any node test: the candidates for naming a test's op. */
static char g_universe[512][48];
static int g_n_universe;

static void universe_add(const char *op) {
  for (int k = 0; k < g_n_universe; k++)
    if (!strcmp(g_universe[k], op)) return;
  if (g_n_universe < 512) snprintf(g_universe[g_n_universe++], 48, "%.47s", op);
}

/* "ReduceMean" -> "reducemean"; "test_reduce_mean_x" -> "reducemeanx". */
static void squash(const char *s, char *out, size_t len) {
  size_t o = 0;
  for (; *s && o + 1 < len; s++)
    if (*s != '_') out[o++] = (char)(*s >= 'A' && *s <= 'Z' ? *s - 'A' + 'a' : *s);
  out[o] = 0;
}

/* The op a test is about: its graph's op when it has one op type; else the
 * longest op name (ours, or any op seen in the node tests) that its name
 * starts with ("test_layer_normalization_2d_axis0_expanded": the graph has
 * ReduceMean, Sub, ...; the test is about LayerNormalization); else its
 * graph's first op. */
static void name_op(nt_test *t, const char *first_op) {
  char tn[160], on[64];
  if (t->ops[0] && !strchr(t->ops, ',')) {
    snprintf(t->op, sizeof t->op, "%.47s", t->ops);
    return;
  }
  squash(t->name + 5, tn, sizeof tn);
  size_t best = 0;
  snprintf(t->op, sizeof t->op, "%s", first_op);
  for (int pass = 0; pass < 2; pass++) {
    int n = pass ? g_n_universe : n_our_ops();
    for (int k = 0; k < n; k++) {
      const char *op = pass ? g_universe[k] : gg__onnx_op_name((size_t)k);
      squash(op, on, sizeof on);
      size_t l = strlen(on);
      if (l > best && !strncmp(tn, on, l)) best = l, snprintf(t->op, sizeof t->op, "%s", op);
    }
  }
}

/* Appends op to the comma-separated list unless it is there already. */
static void ops_add(char *list, size_t len, const char *op) {
  size_t ol = strlen(op);
  for (const char *p = list; *p;) {
    size_t w = strcspn(p, ",");
    if (w == ol && !strncmp(p, op, ol)) return;
    p += w;
    if (*p == ',') p++;
  }
  size_t l = strlen(list);
  if (l + ol + 2 > len) return;
  snprintf(list + l, len - l, "%s%s", l ? "," : "", op);
}

/* Reads the model's op types (graph nodes, and the domain when it is not
 * ONNX's) into t->ops; sets t->skip when one is not ours. Returns the first
 * op in first. */
static void read_model(nt_test *t, char *first, size_t firstlen) {
  Onnx__ModelProto *m = test_model(t);
  first[0] = 0;
  if (!m || !m->graph) {
    snprintf(t->skip, sizeof t->skip, "model.onnx does not parse");
    snprintf(first, firstlen, "?");
    if (m) onnx__model_proto__free_unpacked(m, NULL);
    return;
  }
  char notours[200] = "";
  /* declared types of the real inputs (not initializers) and the outputs */
  int nreal = 0;
  for (size_t k = 0; k < m->graph->n_input && nreal < NT_MAX_IO; k++) {
    const Onnx__ValueInfoProto *vi = m->graph->input[k];
    int init = 0;
    for (size_t q = 0; q < m->graph->n_initializer; q++)
      init |= vi->name && m->graph->initializer[q]->name &&
              !strcmp(vi->name, m->graph->initializer[q]->name);
    if (!init)
      t->decl_in[nreal++] =
          vi->type && vi->type->tensor_type ? vi->type->tensor_type->elem_type : 0;
  }
  for (size_t k = 0; k < m->graph->n_output && k < NT_MAX_IO; k++) {
    const Onnx__ValueInfoProto *vi = m->graph->output[k];
    t->decl_out[k] = vi->type && vi->type->tensor_type ? vi->type->tensor_type->elem_type : 0;
  }
  for (size_t k = 0; k < m->graph->n_node; k++) {
    const Onnx__NodeProto *nd = m->graph->node[k];
    char op[96];
    const char *dom = nd->domain && *nd->domain && strcmp(nd->domain, "ai.onnx") ? nd->domain : "";
    snprintf(op, sizeof op, "%s%s%s", dom, *dom ? "." : "", nd->op_type ? nd->op_type : "?");
    if (!first[0]) snprintf(first, firstlen, "%s", op);
    ops_add(t->ops, sizeof t->ops, op);
    universe_add(op);
    if (*dom || !our_op(op)) ops_add(notours, sizeof notours, op);
  }
  if (notours[0]) snprintf(t->skip, sizeof t->skip, "op not in our set: %s", notours);
  onnx__model_proto__free_unpacked(m, NULL);
}

/* Loads input_N.pb / output_N.pb of test_data_set_0; sets t->skip for a
 * dtype we do not take or an int64 input outside int32. */
static void read_data(nt_test *t) {
  char err[400];
  for (int io = 0; io < 2 && !t->skip[0]; io++) {
    for (int k = 0; k < NT_MAX_IO; k++) {
      char path[1500];
      snprintf(path, sizeof path, "%s/%s/test_data_set_0/%s_%d.pb", g_dir, t->name,
               io ? "output" : "input", k);
      if (!file_exists(path)) break;
      nt_tensor *x = io ? &t->out[k] : &t->in[k];
      if (nt_tensor_load(path, x, err, sizeof err)) {
        const char *why = strstr(err, ".pb: ");
        snprintf(t->skip, sizeof t->skip, "test data %s_%d.pb is not a tensor we read (%.200s)",
                 io ? "output" : "input", k, why ? why + 5 : err);
        return;
      }
      io ? t->n_out++ : t->n_in++;
      /* ONNX 1.12 stores bfloat16 test data as uint16 (the bits): read it
       * as the graph declares it. */
      int decl = io ? t->decl_out[k] : t->decl_in[k];
      if (x->dt == DT_UINT16 && decl == DT_BFLOAT16 && x->i) {
        x->f = malloc((size_t)(x->n ? x->n : 1) * sizeof(float));
        if (!x->f) {
          snprintf(t->skip, sizeof t->skip, "out of memory");
          return;
        }
        for (int64_t e = 0; e < x->n; e++)
          x->f[e] = nt_bf16((uint16_t)x->i[e]);
        free(x->i);
        x->i = NULL;
        x->dt = DT_BFLOAT16;
      }
      if (io && (x->dt == DT_FLOAT16 || x->dt == DT_BFLOAT16) && strstr(t->ops, "Cast"))
        x->exact = 1;
      if (!dt_taken(x->dt)) {
        snprintf(t->skip, sizeof t->skip, "dtype %s %s %d ('%s') not taken%s", dt_name(x->dt),
                 io ? "output" : "input", k, x->name,
                 x->dt == DT_STRING ? " (gpuguard has no string tensors)" : "");
        return;
      }
      if (!io && !int_range_ok(x)) {
        snprintf(t->skip, sizeof t->skip, "%s input %d ('%s') has values outside int32",
                 dt_name(x->dt), k, x->name);
        return;
      }
    }
  }
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(((const nt_test *)a)->name, ((const nt_test *)b)->name);
}

/* All node tests in g_dir (sorted), classified. NULL when the folder is
 * missing. */
static nt_test *discover(int *count, const char *filter) {
  DIR *d = opendir(g_dir);
  if (!d) return NULL;
  int cap = 1024, n = 0;
  nt_test *tests = calloc((size_t)cap, sizeof *tests);
  struct dirent *e;
  while (tests && (e = readdir(d))) {
    if (strncmp(e->d_name, "test_", 5) || strlen(e->d_name) >= sizeof tests->name) continue;
    if (filter && *filter && !strstr(e->d_name, filter)) continue;
    if (n == cap) {
      nt_test *bigger = realloc(tests, (size_t)cap * 2 * sizeof *tests);
      if (!bigger) break;
      tests = bigger;
      memset(tests + cap, 0, (size_t)cap * sizeof *tests);
      cap *= 2;
    }
    snprintf(tests[n++].name, sizeof tests->name, "%.127s", e->d_name); /* checked above */
  }
  closedir(d);
  if (!tests) return NULL;
  qsort(tests, (size_t)n, sizeof *tests, cmp_name);
  static char firsts[4096][96];
  for (int k = 0; k < n; k++)
    read_model(&tests[k], firsts[k < 4096 ? k : 4095], sizeof firsts[0]);
  for (int k = 0; k < n; k++)
    name_op(&tests[k], firsts[k < 4096 ? k : 4095]);
  /* "test_X_expanded" is about the op of test_X (its function body's ops
   * replace it: test_mvn_expanded is MeanVarianceNormalization). */
  for (int k = 0; k < n; k++) {
    size_t l = strlen(tests[k].name);
    if (l < 10 || strcmp(tests[k].name + l - 9, "_expanded")) continue;
    for (int q = 0; q < n; q++)
      if (strlen(tests[q].name) == l - 9 && !strncmp(tests[q].name, tests[k].name, l - 9))
        snprintf(tests[k].op, sizeof tests[k].op, "%s", tests[q].op);
  }
  for (int k = 0; k < n; k++)
    if (!tests[k].skip[0]) read_data(&tests[k]);
  *count = n;
  return tests;
}

static void free_tests(nt_test *tests, int n) {
  for (int k = 0; tests && k < n; k++) {
    for (int q = 0; q < NT_MAX_IO; q++) {
      nt_tensor_free(&tests[k].in[q]);
      nt_tensor_free(&tests[k].out[q]);
    }
  }
  free(tests);
}
#endif

#ifdef GG_HAVE_ONNX
/* ---- verdicts, tables ------------------------------------------------------------ */
static int is_fail(char r) {
  return r == 'F' || r == 'C' || r == 'T';
}

/* 'P' pass, 'p' pass with operands as constants (on some backend), 'F'
 * fail, 'S' skipped (t->skip or a refusal), 0 not run. */
static char verdict(const nt_test *t, const char *why_out[1]) {
  char v = 0;
  *why_out = t->skip[0] ? t->skip : NULL;
  if (t->skip[0]) return 'S';
  for (int b = 0; b < NB; b++)
    if (is_fail(t->res[b])) {
      *why_out = t->msg[b];
      return 'F';
    }
  for (int b = 0; b < NB; b++)
    if (t->res[b] == 'S') {
      *why_out = t->msg[b];
      v = 'S';
    }
  if (v) return v;
  for (int b = 0; b < NB; b++)
    if (t->res[b] == 'p') return 'p';
  for (int b = 0; b < NB; b++)
    if (t->res[b] == 'P') return 'P';
  return 0;
}

/* Short reason for the docs: "op not in our set: X", "refused: <message>". */
static void short_reason(const char *why, char *out, size_t len) {
  const char *p = strstr(why, " at load: ");
  if (p && !strncmp(why, "GG_EUNSUPPORTED", 15))
    snprintf(out, len, "refused: %s", p + 10);
  else if (!strncmp(why, "GG_EUNSUPPORTED at session: ", 28))
    snprintf(out, len, "refused at session: %s", why + 28);
  else
    snprintf(out, len, "%s", why);
  /* Paths make the docs machine-specific: keep what follows the model path. */
  char *mp = strstr(out, "model.onnx");
  if (mp) {
    char *start = mp;
    while (start > out && start[-1] != ' ')
      start--;
    memmove(start, mp, strlen(mp) + 1);
  }
  for (char *c = out; *c; c++)
    if (*c == '|') *c = '/';
}

typedef struct op_row {
  char op[48];
  int tests, pass, pass_const, fail, skip;
  char reasons[700];
} op_row;

static void add_reason(op_row *r, const char *test, const char *why) {
  char sr[300];
  short_reason(why, sr, sizeof sr);
  char item[400];
  snprintf(item, sizeof item, "`%s`: %s", test + 5, sr);
  size_t l = strlen(r->reasons);
  if (l + strlen(item) + 8 >= sizeof r->reasons) {
    if (!strstr(r->reasons, "; ...")) snprintf(r->reasons + l, sizeof r->reasons - l, "; ...");
    return;
  }
  snprintf(r->reasons + l, sizeof r->reasons - l, "%s%s", l ? "; " : "", item);
}

static int cmp_row(const void *a, const void *b) {
  return strcmp(((const op_row *)a)->op, ((const op_row *)b)->op);
}

/* Fills rows: one per op of our set, one per other op some test of which ran;
 * the rest counted into *others_tests / others list. Returns the row count. */
static int op_rows(const nt_test *tests, int n, op_row *rows, int max, int *others_tests,
                   char *others, size_t olen) {
  int nr = 0;
  for (int k = 0; k < n_our_ops() && nr < max; k++) {
    memset(&rows[nr], 0, sizeof rows[nr]);
    snprintf(rows[nr++].op, sizeof rows->op, "%s", gg__onnx_op_name((size_t)k));
  }
  *others_tests = 0;
  others[0] = 0;
  for (int k = 0; k < n; k++) {
    const nt_test *t = &tests[k];
    const char *why = NULL;
    char v = verdict(t, &why);
    int ours = our_op(t->op);
    if (!ours && v == 'S' && !strncmp(t->skip, "op not in our set", 17)) {
      (*others_tests)++;
      ops_add(others, olen, t->op);
      continue;
    }
    op_row *r = NULL;
    for (int q = 0; q < nr; q++)
      if (!strcmp(rows[q].op, t->op)) r = &rows[q];
    if (!r && nr < max) {
      r = &rows[nr++];
      memset(r, 0, sizeof *r);
      snprintf(r->op, sizeof r->op, "%s", t->op);
    }
    if (!r) continue;
    r->tests++;
    if (v == 'P' || v == 'p') r->pass++;
    if (v == 'p')
      r->pass_const++;
    else if (v == 'F')
      r->fail++, add_reason(r, t->name, why ? why : "?");
    else if (v == 'S')
      r->skip++, add_reason(r, t->name, why ? why : "?");
  }
  qsort(rows, (size_t)nr, sizeof *rows, cmp_row);
  return nr;
}

/* The generated docs section (between the markers). */
static char *docs_section(const nt_test *tests, int n, const char *backends_run,
                          const char *ops_on) {
  static op_row rows[400];
  char others[4000];
  int others_tests = 0;
  int nr = op_rows(tests, n, rows, 400, &others_tests, others, sizeof others);
  size_t cap = 1 << 18, len = 0;
  char *s = malloc(cap);
  if (!s) return NULL;
  int tp = 0, tpc = 0, tf = 0, ts = 0, tt = 0;
  for (int k = 0; k < nr; k++)
    tp += rows[k].pass, tpc += rows[k].pass_const, tf += rows[k].fail, ts += rows[k].skip,
        tt += rows[k].tests;
#define PUT(...) (len += (size_t)snprintf(s + len, len < cap ? cap - len : 0, __VA_ARGS__))
  PUT("\nGENERATED by `tests/test-onnx-node.c` (`ctest -R test-onnx-node`): do not edit by "
      "hand.\nONNX 1.12 node tests (Debian `libonnx-testdata`): %d tests, %d of them about an "
      "op in our set or made only of our ops. Backends run: %s. A test passes when it passes on "
      "every backend; tolerance rtol 1e-3, atol 1e-7 (integers exact; a Cast's float16 / "
      "bfloat16 output exact, bfloat16 within one unit in the last place as ONNX 1.12 "
      "truncated where gpuguard rounds to nearest even). The engine computes in float32 and "
      "int32: the test data is converted at the boundary as a caller would, double, float16 "
      "and bfloat16 to float32 (ONNX 1.12 stores bfloat16 data as uint16 bits: read as the "
      "graph declares), uint32 and uint64 to int32 (a value outside int32 skips the test); "
      "string tensors are skipped (gpuguard has none). \"as constants\": "
      "passed once its operand inputs (all but input 0) were made initializers holding the "
      "test's values, after the importer refused them as graph inputs (or every input, "
      "when input 0 is itself an integer tensor such as a shape or a Range bound, or when "
      "every input is a scalar or a 1-D tensor of at most 6 values of any type, and that "
      "was refused too).\n\n"
      "Totals over the rows below: %d tests, %d passed (%d as constants), %d failed, %d "
      "skipped. Passing tests that ran at least one op on the backend under test: %s.\n\n"
      "| op | tests | passed | as constants | failed | skipped | reasons (failed / skipped tests) "
      "|\n"
      "|---|---|---|---|---|---|---|\n",
      n, tt, backends_run, tt, tp, tpc, tf, ts, ops_on[0] ? ops_on : "-");
  for (int k = 0; k < nr; k++) {
    const op_row *r = &rows[k];
    if (!r->tests) {
      PUT("| %s%s | 0 | - | - | - | - | no node test in ONNX 1.12 |\n", r->op,
          our_op(r->op) ? "" : " (expanded)");
      continue;
    }
    PUT("| %s%s | %d | %d | %d | %s%d%s | %d | %s |\n", r->op, our_op(r->op) ? "" : " (expanded)",
        r->tests, r->pass, r->pass_const, r->fail ? "**" : "", r->fail, r->fail ? "**" : "",
        r->skip, r->reasons[0] ? r->reasons : "");
  }
  PUT("\nNot in our set (skipped): %d tests of %s.\n\n", others_tests, others);
#undef PUT
  if (len >= cap) s[cap - 1] = 0;
  return s;
}

/* The docs section of a suite other than the node tests: its totals and
 * every test that did not pass, with the reason. */
static char *suite_section(const nt_test *tests, int n, const char *backends_run) {
  size_t cap = 1 << 17, len = 0;
  char *s = malloc(cap);
  if (!s) return NULL;
  int np = 0, nf = 0, ns = 0, nr = 0;
  for (int k = 0; k < n; k++) {
    const char *why = NULL;
    char v = verdict(&tests[k], &why);
    nr += !tests[k].skip[0];
    np += v == 'P' || v == 'p', nf += is_fail(v), ns += v == 'S';
  }
#define PUT(...) (len += (size_t)snprintf(s + len, len < cap ? cap - len : 0, __VA_ARGS__))
  PUT("\nGENERATED by `tests/test-onnx-node.c` (`ctest -R test-onnx-%s`): do not edit by hand.\n"
      "ONNX 1.12 `%s` tests (Debian `libonnx-testdata`), run as the node tests are. Backends "
      "run: %s. %d tests, %d run: %d passed, %d failed, %d skipped or refused.\n\n",
      g_suite, g_suite, backends_run, n, nr, np, nf, ns);
  if (np < n) PUT("| test | result | reason |\n|---|---|---|\n");
  for (int k = 0; k < n; k++) {
    const char *why = NULL;
    char v = verdict(&tests[k], &why), sr[400] = "";
    if (v == 'P' || v == 'p') continue;
    if (why) short_reason(why, sr, sizeof sr);
    PUT("| %s | %s | %s |\n", tests[k].name, is_fail(v) ? "**FAIL**" : v ? "skip" : "-", sr);
  }
#undef PUT
  if (len >= cap) s[cap - 1] = 0;
  return s;
}

/* Replaces the text between the markers in path. Returns 0, 1 when unchanged,
 * -1 with a note printed when the file or the markers are missing. */
static int docs_update(const char *path, const char *section) {
  char kb[128], ke[128];
  snprintf(kb, sizeof kb, "<!-- %s-tests:begin -->", g_suite);
  snprintf(ke, sizeof ke, "<!-- %s-tests:end -->", g_suite);
  size_t len = 0;
  char *old = slurp(path, &len);
  if (!old) {
    fprintf(stderr, "  note: %s not found; node-test table not written there\n", path);
    return -1;
  }
  char *b = strstr(old, kb), *e = b ? strstr(b, ke) : NULL;
  if (!b || !e) {
    fprintf(stderr, "  note: %s has no '%s' ... '%s' markers; table not written there\n", path, kb,
            ke);
    free(old);
    return -1;
  }
  size_t head = (size_t)(b - old) + strlen(kb);
  if ((size_t)(e - old) - head == strlen(section) &&
      !memcmp(old + head, section, strlen(section))) {
    free(old);
    return 1;
  }
  char tmp[1100];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *fp = fopen(tmp, "w");
  int ok = fp && fwrite(old, 1, head, fp) == head && fputs(section, fp) >= 0 && fputs(e, fp) >= 0;
  if (fp && fclose(fp)) ok = 0;
  free(old);
  if (!ok || rename(tmp, path)) {
    fprintf(stderr, "  note: cannot write %s: %s\n", path, strerror(errno));
    unlink(tmp);
    return -1;
  }
  return 0;
}

static void write_table(const char *path, const nt_test *tests, int n, const int *avail) {
  FILE *fp = fopen(path, "w");
  if (!fp) {
    fprintf(stderr, "  note: cannot write %s: %s\n", path, strerror(errno));
    return;
  }
  fprintf(fp, "# ONNX node tests, per test\n\nGENERATED by tests/test-onnx-node.c. "
              "P pass, p pass with operand inputs as constants, F fail, C crash, T timeout, S "
              "refused, - not run.\n\n| test | op |");
  for (int b = 0; b < NB; b++)
    if (avail[b]) fprintf(fp, " %s |", k_backends[b].name);
  fprintf(fp, " result | reason |\n|---|---|");
  for (int b = 0; b < NB; b++)
    if (avail[b]) fprintf(fp, "---|");
  fprintf(fp, "---|---|\n");
  for (int k = 0; k < n; k++) {
    const nt_test *t = &tests[k];
    const char *why = NULL;
    char v = verdict(t, &why);
    fprintf(fp, "| %s | %s |", t->name, t->op);
    for (int b = 0; b < NB; b++)
      if (avail[b]) fprintf(fp, " %c |", t->res[b] ? t->res[b] : '-');
    char sr[400] = "";
    if (why && v != 'P' && v != 'p') short_reason(why, sr, sizeof sr);
    fprintf(fp, " %s | %s |\n",
            v == 'P'   ? "pass"
            : v == 'p' ? "pass (as constants)"
            : v == 'F' ? "**FAIL**"
            : v == 'S' ? "skip"
                       : "-",
            sr);
  }
  fclose(fp);
}

/* ---- the node tests ---------------------------------------------------------------- */
static void test_node_tests(void) {
  const char *dir = getenv("GG_ONNX_NODE_DIR");
  snprintf(g_dir, sizeof g_dir, "%s", dir && *dir ? dir : "/usr/share/libonnx-testdata/data/node");
  set_suite();
  const char *to = getenv("GG_ONNX_NODE_TIMEOUT");
  if (to && atoi(to) > 0) g_timeout = atoi(to);
  const char *filter = getenv("GG_ONNX_NODE_FILTER");
  const char *bsel = getenv("GG_ONNX_NODE_BACKENDS");
  int full = !(filter && *filter) && !(bsel && *bsel);
  struct stat st;
  if (stat(g_dir, &st)) SKIP("%s missing (apt-get install libonnx-testdata)", g_dir);

  char lpath[1024];
  const char *lenv = getenv("GG_ONNX_NODE_EXPECTED");
  if (lenv && *lenv)
    snprintf(lpath, sizeof lpath, "%s", lenv);
  else
    snprintf(lpath, sizeof lpath, "%s/onnx-node-expected.txt", GG_TEST_DIR);
  static nt_expect expect[1024];
  char err[300];
  int ne = nt_expect_load(lpath, expect, 1024, err, sizeof err);
  if (ne < 0) GG_T_FAIL("%s", err);

  int n = 0;
  nt_test *tests = discover(&n, filter);
  if (!tests) GG_T_FAIL("cannot read %s", g_dir);
  int *idx = calloc((size_t)n + 1, sizeof *idx), nrun = 0;
  for (int k = 0; k < n; k++)
    if (!tests[k].skip[0]) idx[nrun++] = k;

  /* Jobs: two shards per backend, two workers at a time. */
  nt_job jobs[NB * 2];
  int nj = 0, avail[NB] = {0};
  char tmpl[] = "/tmp/gg-onnx-node-XXXXXX";
  char *tdir = mkdtemp(tmpl);
  for (int b = 0; b < NB && tdir; b++) {
    const char *nm = k_backends[b].name;
    if (bsel && *bsel) {
      char padded[200], key[40];
      snprintf(padded, sizeof padded, ",%s,", bsel);
      snprintf(key, sizeof key, ",%s,", nm);
      if (!strstr(padded, key)) continue;
    }
    if (!gg_backend_find(nm)) {
      fprintf(stderr, "  SKIP backend %s: not registered in this build\n", nm);
      continue;
    }
    avail[b] = 1;
    for (int sh = 0; sh < 2; sh++) {
      nt_job *j = &jobs[nj++];
      memset(j, 0, sizeof *j);
      j->b = b;
      j->idx = malloc(((size_t)nrun / 2 + 1) * sizeof *j->idx);
      for (int k = sh; k < nrun && j->idx; k += 2)
        j->idx[j->n++] = idx[k];
      j->started_k = -1;
      snprintf(j->file, sizeof j->file, "%s/%s-%d", tdir, nm, sh);
      j->tmpdir = tdir;
    }
  }
  const char *pj = getenv("GG_ONNX_NODE_JOBS");
  run_jobs(jobs, nj, tests, pj && atoi(pj) > 0 ? atoi(pj) : 2);

  int worker_bad = 0;
  char backends_run[200] = "";
  for (int q = 0; q < nj; q++) {
    nt_job *j = &jobs[q];
    if (j->unavailable) {
      if (avail[j->b]) fprintf(stderr, "  SKIP backend %s: %s\n", k_backends[j->b].name, j->why);
      avail[j->b] = 0;
    } else if (j->why[0]) {
      fprintf(stderr, "  %s\n", j->why);
      worker_bad++;
    }
    unlink(j->file);
    free(j->idx);
  }
  /* A worker that died between writing and removing a frozen model leaves
   * it behind. */
  DIR *td = tdir ? opendir(tdir) : NULL;
  for (struct dirent *de; td && (de = readdir(td));) {
    char f[1400];
    snprintf(f, sizeof f, "%s/%.300s", tdir, de->d_name);
    if (de->d_name[0] != '.') unlink(f);
  }
  if (td) closedir(td);
  if (tdir) rmdir(tdir);
  for (int b = 0; b < NB; b++)
    if (avail[b])
      snprintf(backends_run + strlen(backends_run), sizeof backends_run - strlen(backends_run),
               "%s%s", backends_run[0] ? ", " : "", k_backends[b].name);

  /* Per backend counts; failures against the list. */
  int unexpected = 0, now_pass = 0, any = 0;
  char ops_on[200] = "";
  for (int b = 0; b < NB; b++) {
    if (!avail[b]) continue;
    any = 1;
    int c[256] = {0}, on_dev = 0;
    for (int k = 0; k < n; k++) {
      c[(unsigned char)tests[k].res[b]]++;
      int nd = 0;
      if ((tests[k].res[b] == 'P' || tests[k].res[b] == 'p') &&
          sscanf(tests[k].msg[b], "%d ops on", &nd) == 1 && nd > 0)
        on_dev++;
    }
    if (strcmp(k_backends[b].name, "naive"))
      snprintf(ops_on + strlen(ops_on), sizeof ops_on - strlen(ops_on), "%s%s %d",
               ops_on[0] ? ", " : "", k_backends[b].name, on_dev);
    if (strcmp(k_backends[b].name, "naive"))
      fprintf(stderr, "  %-8s %d passing tests ran at least one op on %s\n", k_backends[b].name,
              on_dev, k_backends[b].name);
    fprintf(stderr,
            "  %-8s %d passed (%d as constants), %d failed, %d crashed, %d timed out, %d refused "
            "(of %d run)\n",
            k_backends[b].name, c['P'] + c['p'], c['p'], c['F'], c['C'], c['T'], c['S'], nrun);
  }
  for (int k = 0; k < n; k++) {
    nt_test *t = &tests[k];
    for (int b = 0; b < NB; b++) {
      if (!avail[b]) continue;
      nt_expect *e = nt_expect_find(expect, ne, t->name, k_backends[b].name);
      if (e) e->seen = 1;
      if (is_fail(t->res[b])) {
        if (e) {
          e->hit = 1;
        } else {
          fprintf(stderr, "  UNEXPECTED %s on %s: %c %s\n", t->name, k_backends[b].name, t->res[b],
                  t->msg[b]);
          unexpected++;
        }
      }
    }
  }
  for (int q = 0; q < ne; q++) {
    nt_expect *e = &expect[q];
    if (!e->seen || e->hit) continue;
    int ran = 0, passed = 1;
    for (int k = 0; k < n; k++) {
      if (strcmp(tests[k].name, e->name)) continue;
      for (int b = 0; b < NB; b++) {
        if (!avail[b] || (e->backend[0] && strcmp(e->backend, k_backends[b].name))) continue;
        if (tests[k].res[b]) ran = 1;
        if (tests[k].res[b] != 'P' && tests[k].res[b] != 'p') passed = 0;
      }
    }
    if (ran && passed) {
      fprintf(stderr, "  NOW PASSES (trim %s): %s%s%s\n", lpath, e->name, e->backend[0] ? ":" : "",
              e->backend);
      now_pass++;
    }
  }

  if (full && any) {
    const char *tp = getenv("GG_ONNX_NODE_TABLE");
    char tpath[1024];
    if (tp && *tp)
      snprintf(tpath, sizeof tpath, "%s", tp);
    else
      snprintf(tpath, sizeof tpath, "onnx-%s-table.md", g_suite);
    write_table(tpath, tests, n, avail);
    char *sec = strcmp(g_suite, "node") ? suite_section(tests, n, backends_run)
                                        : docs_section(tests, n, backends_run, ops_on);
    const char *mdenv = getenv("GG_ONNX_MD");
    char md[1024];
    if (mdenv && *mdenv)
      snprintf(md, sizeof md, "%s", mdenv);
    else
      snprintf(md, sizeof md, "%s/../docs/ONNX.md", GG_TEST_DIR);
    int rc = sec ? docs_update(md, sec) : -1;
    fprintf(stderr, "  per-test table: %s; per-op table: %s (%s)\n", tpath, md,
            rc == 0   ? "updated"
            : rc == 1 ? "unchanged"
                      : "not written");
    free(sec);
  }
  fprintf(stderr, "  %d node tests, %d run; %d unexpected failures, %d listed tests now pass\n", n,
          nrun, unexpected, now_pass);
  free(idx);
  free_tests(tests, n);
  if (!any) SKIP("no backend could run (%s)", bsel && *bsel ? bsel : "none registered");
  ASSERT_EQ(worker_bad, 0);
  ASSERT_EQ(unexpected, 0);
}

static void test_pb_reader(void) {
  const char *dir = getenv("GG_ONNX_NODE_DIR");
  snprintf(g_dir, sizeof g_dir, "%s", dir && *dir ? dir : "/usr/share/libonnx-testdata/data/node");
  char p[1200], err[400];
  snprintf(p, sizeof p, "%s/test_abs/test_data_set_0/input_0.pb", g_dir);
  if (!file_exists(p)) SKIP("%s missing (apt-get install libonnx-testdata)", p);
  nt_tensor x;
  ASSERT_OK(nt_tensor_load(p, &x, err, sizeof err));
  int ok = x.dt == DT_FLOAT && x.ndim == 3 && x.dims[0] == 3 && x.dims[1] == 4 && x.dims[2] == 5 &&
           x.n == 60 && x.f && !strcmp(x.name, "x");
  nt_tensor y;
  snprintf(p, sizeof p, "%s/test_abs/test_data_set_0/output_0.pb", g_dir);
  int rc = nt_tensor_load(p, &y, err, sizeof err);
  int abs_ok = !rc && y.f && y.n == 60;
  for (int64_t k = 0; abs_ok && k < 60; k++)
    abs_ok = y.f[k] == fabsf(x.f[k]);
  nt_tensor_free(&x);
  if (!rc) nt_tensor_free(&y);
  ASSERT_TRUE(ok);
  ASSERT_OK(rc);
  ASSERT_TRUE(abs_ok);
  /* int64 data (Shape's output) and bool. */
  snprintf(p, sizeof p, "%s/test_shape/test_data_set_0/output_0.pb", g_dir);
  ASSERT_OK(nt_tensor_load(p, &y, err, sizeof err));
  ok = y.dt == DT_INT64 && y.ndim == 1 && y.n == 3 && y.i && y.i[0] == 3 && y.i[1] == 4 &&
       y.i[2] == 5;
  nt_tensor_free(&y);
  ASSERT_TRUE(ok);
  snprintf(p, sizeof p, "%s/test_not_2d/test_data_set_0/input_0.pb", g_dir);
  ASSERT_OK(nt_tensor_load(p, &y, err, sizeof err));
  ok = y.dt == DT_BOOL && y.n == 12 && y.i;
  for (int64_t k = 0; ok && k < y.n; k++)
    ok = y.i[k] == 0 || y.i[k] == 1;
  nt_tensor_free(&y);
  ASSERT_TRUE(ok);
  /* Garbage and a truncated file are errors, not crashes. */
  static const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
  ASSERT_EQ(nt_tensor_parse(junk, sizeof junk, &y, err, sizeof err), -1);
  static const uint8_t short_raw[] = {0x08, 0x04, 0x10, 0x01, 0x4a, 0x04, 0, 0, 0x80, 0x3f};
  ASSERT_EQ(nt_tensor_parse(short_raw, sizeof short_raw, &y, err, sizeof err), -1);
  ASSERT_CONTAINS(err, "raw_data has 4 bytes, want 16");
}

/* A test's op comes from its name; its ops from the graph. */
static void test_classify(void) {
  const char *dir = getenv("GG_ONNX_NODE_DIR");
  snprintf(g_dir, sizeof g_dir, "%s", dir && *dir ? dir : "/usr/share/libonnx-testdata/data/node");
  struct stat st;
  if (stat(g_dir, &st)) SKIP("%s missing (apt-get install libonnx-testdata)", g_dir);
  int n = 0;
  nt_test *t = discover(&n, "test_l");
  if (!t) GG_T_FAIL("discover failed");
  int seen = 0;
  for (int k = 0; k < n; k++) {
    const nt_test *x = &t[k];
    if (!strcmp(x->name, "test_log_example")) {
      seen++;
      ASSERT_STREQ(x->op, "Log");
      ASSERT_STREQ(x->skip, "");
      ASSERT_EQ(x->n_in, 1);
    } else if (!strcmp(x->name, "test_logsoftmax_axis_0")) {
      seen++;
      ASSERT_STREQ(x->op, "LogSoftmax");
    } else if (!strcmp(x->name, "test_layer_normalization_2d_axis0_expanded")) {
      seen++;
      ASSERT_STREQ(x->op, "LayerNormalization");
    } else if (!strcmp(x->name, "test_lstm_defaults")) {
      seen++;
      ASSERT_STREQ(x->op, "LSTM");
      ASSERT_CONTAINS(x->skip, "op not in our set: LSTM");
    }
  }
  free_tests(t, n);
  ASSERT_EQ(seen, 4);
  /* Every op the importer maps is in the runner's set (Max, Min and
   * GlobalMaxPool were once mapped but listed as not ours). */
  ASSERT_TRUE(n_our_ops() >= 60);
  static const char *const mapped[] = {"test_max_example", "test_min_example",
                                       "test_globalmaxpool"};
  for (size_t q = 0; q < sizeof mapped / sizeof mapped[0]; q++) {
    t = discover(&n, mapped[q]);
    if (!t) GG_T_FAIL("discover failed");
    ASSERT_TRUE(n >= 1);
    for (int k = 0; k < n; k++) {
      if (strncmp(t[k].name, mapped[q], strlen(mapped[q])) ||
          strncmp(t[k].skip, "op not in our set", 17))
        continue;
      fprintf(stderr, "%s: %s\n", t[k].name, t[k].skip);
      free_tests(t, n);
      GG_T_FAIL("an op the importer maps is listed as not in our set");
    }
    free_tests(t, n);
  }
  /* The "every input as a constant" retry: float scalars (Range's bounds)
   * qualify, a float tensor operand does not. */
  static const struct {
    const char *name;
    int like;
  } k_like[] = {{"test_range_float_type_positive_delta", 1}, {"test_add_bcast", 0}};
  for (size_t q = 0; q < sizeof k_like / sizeof k_like[0]; q++) {
    t = discover(&n, k_like[q].name);
    if (!t) GG_T_FAIL("discover failed");
    int found = -1;
    for (int k = 0; k < n; k++)
      if (!strcmp(t[k].name, k_like[q].name)) found = inputs_shape_like(&t[k]);
    free_tests(t, n);
    ASSERT_EQ(found, k_like[q].like);
  }
}
#else
static void test_node_tests(void) {
  SKIP("built without ONNX import (GG_HAVE_ONNX off: install libprotobuf-c-dev "
       "protobuf-c-compiler libonnx-dev)");
}
static void test_pb_reader(void) {
  SKIP("built without ONNX import");
}
static void test_classify(void) {
  SKIP("built without ONNX import");
}
#endif

int main(int argc, char **argv) {
  gg_log_set_level(GG_LOG_ERROR);
  static const gg_test_case cases[] = {
      {"allclose", test_allclose},
      {"expected_list", test_expected_list},
      {"expected_file", test_expected_file},
      {"pb_reader", test_pb_reader},
      {"classify", test_classify},
      {"node_tests", test_node_tests},
      {NULL, NULL},
  };
  return gg_test_main(argc, argv, cases);
}
