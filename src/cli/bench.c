/* gpuguard bench: median latency of each model's run stage on the CPU, and,
 * in the same run, the same model on TensorFlow.js with its WebAssembly
 * backend (XNNPACK compiled to wasm) when the pinned tfjs is installed. The
 * ratio is tfjs-wasm median / ours (> 1: gpuguard is faster). For the
 * interleaved multi-round numbers in bench/README.md use bench/bench-engine.sh. */
#include "cli/cli.h"
#include "core/opts.h"
#include "gpuguard/core.h"
#include "gpuguard/engine.h"
#include "gpuguard/error.h"
#include "gpuguard/log.h"

#include <jansson.h>

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct bench_opts {
  const char *models;
  const char *peer;
  int threads;
  int runs;
  int warmup;
  int json;
} bench_opts;

#define BO(f) offsetof(bench_opts, f)
static const gg_opt k_bench_opts[] = {
    {"models", NULL, GG_OPT_STR, BO(models), "blazeface,mobilefacenet,nanodet,faceres",
     "comma-separated model names or model.json paths", "LIST"},
    {"threads", "GPUGUARD_THREADS", GG_OPT_INT, BO(threads), "1", "CPU threads for gpuguard", "N"},
    {"runs", NULL, GG_OPT_INT, BO(runs), "20", "timed runs per model and implementation", "N"},
    {"warmup", NULL, GG_OPT_INT, BO(warmup), "3", "untimed runs first", "N"},
    {"peer", NULL, GG_OPT_STR, BO(peer), "auto",
     "tfjs-wasm (needs node and scripts/fetch-reference.sh), none, or auto (tfjs-wasm when "
     "installed)",
     "NAME"},
    {"json", NULL, GG_OPT_BOOL, BO(json), "false", "print one JSON object instead of a table",
     NULL},
    {0},
};

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct timing {
  double median_ms, min_ms, p90_ms;
  int n_ops, n_ops_xnnpack;
  uint64_t planned_bytes;
} timing;

/* Our side: load, prepare once, fill the input with fixed pseudo-random
 * values, time `runs` runs of gg_session_run. */
static int bench_ours(const char *path, const bench_opts *o, timing *t, char *err, size_t errlen) {
  gg_model *m = NULL;
  int rc = gg_model_load(path, &m, err, errlen);
  if (rc) return rc;
  gg_session_opts so;
  memset(&so, 0, sizeof so);
  so.threads = o->threads;
  so.backend = GG_ENGINE_AUTO;
  gg_session *s = NULL;
  if ((rc = gg_session_new(m, NULL, 0, &so, &s, err, errlen))) {
    gg_model_free(m);
    return rc;
  }
  gg_tensor_info in;
  float *x = gg_session_input(s, 0, &in);
  int64_t n = 1;
  for (int d = 0; d < in.ndim; d++)
    n *= in.shape[d] > 0 ? in.shape[d] : 1;
  uint32_t r = 12345;
  for (int64_t i = 0; i < n; i++) {
    r = r * 1664525u + 1013904223u;
    x[i] = (float)r / 4294967296.0f;
  }
  double *ts = calloc((size_t)o->runs, sizeof *ts);
  if (!ts) rc = GG_ENOMEM;
  for (int i = 0; i < o->warmup + o->runs && !rc; i++) {
    uint64_t a = gg_now_ns();
    rc = gg_session_run(s, err, errlen);
    if (i >= o->warmup) ts[i - o->warmup] = (double)(gg_now_ns() - a) / 1e6;
  }
  if (!rc) {
    qsort(ts, (size_t)o->runs, sizeof *ts, cmp_double);
    int k = o->runs;
    t->median_ms = k % 2 ? ts[k / 2] : (ts[k / 2 - 1] + ts[k / 2]) / 2;
    t->min_ms = ts[0];
    t->p90_ms = ts[(int)(0.9 * (k - 1))];
    gg_engine_mem mem;
    gg_session_memory(s, &mem);
    t->n_ops = mem.n_ops;
    t->n_ops_xnnpack = mem.n_ops_xnnpack;
    t->planned_bytes = mem.predicted;
  }
  free(ts);
  gg_session_free(s);
  gg_model_free(m);
  return rc;
}

/* The peer script, or "" when tfjs is not installed next to the sources. */
static const char *peer_script(void) {
  static char script[PATH_MAX];
  char wasm[PATH_MAX];
  snprintf(script, sizeof script, "%s/bench/tfjs/bench.js", GG_SOURCE_DIR);
  snprintf(wasm, sizeof wasm,
           "%s/tests/reference/node_modules/@tensorflow/tfjs-backend-wasm/package.json",
           GG_SOURCE_DIR);
  if (access(script, R_OK) || access(wasm, R_OK)) return "";
  if (system("node --version >/dev/null 2>&1") != 0) return "";
  return script;
}

/* Runs the tfjs-wasm side; reads its one JSON line. */
static int bench_peer(const char *script, const char *path, const bench_opts *o, timing *t,
                      char *err, size_t errlen) {
  char cmd[3 * PATH_MAX];
  snprintf(cmd, sizeof cmd,
           "node '%s' '%s' --backend wasm --threads 1 --runs %d --warmup %d 2>/dev/null", script,
           path, o->runs, o->warmup);
  FILE *f = popen(cmd, "r");
  if (!f) {
    snprintf(err, errlen, "cannot run node");
    return GG_EIO;
  }
  char line[4096], last[4096] = "";
  while (fgets(line, sizeof line, f))
    if (line[0] == '{') snprintf(last, sizeof last, "%s", line);
  int st = pclose(f);
  json_error_t je;
  json_t *j = last[0] ? json_loads(last, 0, &je) : NULL;
  if (st != 0 || !j) {
    snprintf(err, errlen, "tfjs-wasm failed on %.900s (exit status %d)", path, st);
    json_decref(j);
    return GG_EIO;
  }
  t->median_ms = json_number_value(json_object_get(j, "median_ms"));
  t->min_ms = json_number_value(json_object_get(j, "min_ms"));
  t->p90_ms = json_number_value(json_object_get(j, "p90_ms"));
  json_decref(j);
  return 0;
}

int gg_cli_bench(int argc, char **argv) {
  bench_opts o;
  memset(&o, 0, sizeof o);
  char err[1024] = "";
  static const char usage[] =
      "Usage: gpuguard bench [options]\n\n"
      "Times each model's run stage on the CPU (gpuguard's engine, XNNPACK) and, in the\n"
      "same run, on TensorFlow.js with its WebAssembly backend (1 thread), and prints the\n"
      "medians and the ratio tfjs-wasm / gpuguard (> 1: gpuguard is faster). Inputs are\n"
      "fixed pseudo-random tensors of each model's input shape.\n"
      "bench/bench-engine.sh runs the same comparison over interleaved rounds.\n\n";
  int rc = gg_opts_cli("bench", usage, k_bench_opts, &o, argc, argv);
  if (rc >= 0) return rc;
  if (o.runs < 1 || o.runs > 100000 || o.warmup < 0 || o.warmup > 1000 || o.threads < 1 ||
      o.threads > 256) {
    fprintf(stderr, "gpuguard bench: --runs 1..100000, --warmup 0..1000, --threads 1..256\n");
    return 2;
  }
  const char *script = "";
  if (!strcmp(o.peer, "tfjs-wasm") || !strcmp(o.peer, "auto")) {
    script = peer_script();
    if (!*script && !strcmp(o.peer, "tfjs-wasm")) {
      fprintf(stderr, "gpuguard bench: --peer tfjs-wasm needs node and the pinned tfjs "
                      "(scripts/fetch-reference.sh) next to the sources\n");
      return 2;
    }
  } else if (strcmp(o.peer, "none")) {
    fprintf(stderr, "gpuguard bench: --peer must be tfjs-wasm, none or auto, got '%s'\n", o.peer);
    return 2;
  }
  gg_log_set_level(GG_LOG_WARN);
  json_t *rows = json_array();
  if (!o.json) {
    printf("gpuguard bench: %d run(s) after %d warm-up, gpuguard %d thread(s)%s\n\n", o.runs,
           o.warmup, o.threads, *script ? ", tfjs-wasm 1 thread" : ", no peer");
    printf("%-14s %10s %10s %8s %12s %8s\n", "model", "ours ms", "tfjs ms", "ratio", "planned MiB",
           "xnn ops");
  }
  char list[1024];
  snprintf(list, sizeof list, "%s", o.models);
  int failed = 0;
  char *save = NULL;
  for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
    char path[PATH_MAX];
    if (gg_model_resolve(name, path, sizeof path)) {
      fprintf(stderr,
              "gpuguard bench: model '%s' not found (looked for %s); run "
              "scripts/fetch-models.sh\n",
              name, path);
      failed++;
      continue;
    }
    timing ours = {0}, peer = {0};
    if ((rc = bench_ours(path, &o, &ours, err, sizeof err))) {
      fprintf(stderr, "gpuguard bench: %s: %s (%s)\n", name, err, gg_err_name(rc));
      failed++;
      continue;
    }
    int have_peer = *script && bench_peer(script, path, &o, &peer, err, sizeof err) == 0;
    if (*script && !have_peer) fprintf(stderr, "gpuguard bench: %s: %s\n", name, err);
    double ratio = have_peer && ours.median_ms > 0 ? peer.median_ms / ours.median_ms : 0;
    json_t *row = json_pack("{s:s,s:f,s:f,s:f,s:I,s:i,s:i}", "model", name, "median_ms",
                            ours.median_ms, "min_ms", ours.min_ms, "p90_ms", ours.p90_ms,
                            "planned_bytes", (json_int_t)ours.planned_bytes, "n_ops", ours.n_ops,
                            "n_ops_xnnpack", ours.n_ops_xnnpack);
    if (have_peer) {
      json_object_set_new(row, "tfjs_wasm",
                          json_pack("{s:f,s:f,s:f}", "median_ms", peer.median_ms, "min_ms",
                                    peer.min_ms, "p90_ms", peer.p90_ms));
      json_object_set_new(row, "ratio", json_real(ratio));
    }
    json_array_append_new(rows, row);
    if (!o.json) {
      char tf[32] = "-", rt[32] = "-";
      if (have_peer) {
        snprintf(tf, sizeof tf, "%.2f", peer.median_ms);
        snprintf(rt, sizeof rt, "%.2fx", ratio);
      }
      printf("%-14s %10.2f %10s %8s %12.1f %4d/%-3d\n", name, ours.median_ms, tf, rt,
             (double)ours.planned_bytes / 1048576.0, ours.n_ops_xnnpack, ours.n_ops);
      fflush(stdout);
    }
  }
  if (o.json) {
    json_t *root =
        json_pack("{s:i,s:i,s:i,s:s,s:o}", "threads", o.threads, "runs", o.runs, "warmup", o.warmup,
                  "peer", *script ? "tfjs-wasm" : "none", "models", rows);
    char *txt = root ? json_dumps(root, JSON_INDENT(2)) : NULL;
    if (txt) printf("%s\n", txt);
    free(txt);
    json_decref(root);
  } else {
    json_decref(rows);
    if (*script) printf("\nratio = tfjs-wasm median / gpuguard median (> 1: gpuguard is faster)\n");
  }
  return failed ? 1 : 0;
}
